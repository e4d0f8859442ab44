"""`make demo`: the project's main job end to end, as far as it exists today.

Today: the boards tinyprune knows, then a firmware built from the board file's flash/RAM
numbers for one board of every core, run under QEMU. Later stages add themselves here.
"""

import subprocess
import sys
from pathlib import Path

TINYPRUNE = [str(Path(sys.executable).with_name("tinyprune"))]


def step(title: str, *args: str) -> None:
    print(f"\n=== {title}\n$ tinyprune {' '.join(args)}", flush=True)
    code = subprocess.call(TINYPRUNE + list(args))
    if code != 0:
        sys.exit(code)


step("The boards tinyprune can target", "boards")
step("One board in full", "boards", "nucleo-f446re")
step("Cross compiler + QEMU: a firmware for one board of every core", "doctor")
