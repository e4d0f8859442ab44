"""`make demo`: the product as a user meets it, on this machine, in about a minute.

Deploys the MNIST-1D CNN (trained from scratch into tinyprune's cache the first time) onto an
STM32 Nucleo-F446RE under a budget tight enough to force pruning: prune -> int8 -> firmware ->
run on the emulated Cortex-M4 (QEMU), bit-exact against TFLite Micro, then prints the summary.
"""

import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "demo-out"
TINYPRUNE = [str(Path(sys.executable).with_name("tinyprune"))]


def step(title: str, *args: str) -> None:
    print(f"\n=== {title}\n$ tinyprune {' '.join(args)}", flush=True)
    code = subprocess.call(TINYPRUNE + list(args), cwd=ROOT)
    if code != 0:
        sys.exit(code)


start = time.monotonic()
step("The boards tinyprune can target", "boards")
step("Deploy mnist1d-cnn onto a Nucleo-F446RE with 32 KiB of flash and 12 KiB of RAM to spare",
     "deploy", "--model", "mnist1d-cnn", "--dataset", "mnist1d", "--board", "nucleo-f446re",
     "--flash", "32K", "--ram", "12K", "--out", str(OUT / "nucleo-f446re"), "--force")
print(f"\nDemo finished in {time.monotonic() - start:.0f} s. Open {OUT / 'nucleo-f446re' / 'report.html'} "
      f"for the full report; the firmware and the C arrays are beside it.")
