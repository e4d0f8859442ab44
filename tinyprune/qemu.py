"""Run an ELF on a QEMU machine with semihosting, under a timeout and an output cap."""

from __future__ import annotations

import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tinyprune.toolchain import find_tool

MAX_OUTPUT_BYTES = 4 * 1024 * 1024  # a runaway firmware printing forever is cut here


@dataclass(frozen=True)
class QemuRun:
    exit_code: int | None  # None when the run timed out
    stdout: str  # the firmware's semihosting console
    stderr: str  # QEMU's own messages
    timed_out: bool
    command: tuple[str, ...]


def qemu_command(elf: Path, machine: str, console: Path, icount: bool = True) -> list[str]:
    """The QEMU command line; semihosting console output goes to the file ``console``."""
    cmd = [
        find_tool("qemu-system-arm"),
        "-M", machine,
        "-nographic",
        "-monitor", "none",
        "-serial", "none",
        "-chardev", f"file,id=semihost,path={console}",
        "-semihosting-config", "enable=on,target=native,chardev=semihost",
        "-kernel", str(elf),
    ]
    if icount:
        # One instruction = 1 ns of virtual time: timers then count instructions, deterministically.
        cmd += ["-icount", "shift=0"]
    return cmd


def run_elf(elf: Path, machine: str, *, cwd: Path | None = None, timeout_s: float = 60.0,
            icount: bool = True, extra_args: list[str] = ()) -> QemuRun:
    with tempfile.TemporaryDirectory(prefix="tinyprune-qemu-") as tmp:
        console = Path(tmp) / "console.txt"
        cmd = qemu_command(Path(elf).resolve(), machine, console, icount) + list(extra_args)
        with open(Path(tmp) / "qemu.err", "w+b") as err:
            proc = subprocess.Popen(cmd, cwd=cwd, stdout=err, stderr=err, stdin=subprocess.DEVNULL)
            try:
                code: int | None = proc.wait(timeout=timeout_s)
                timed_out = False
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                code, timed_out = None, True
            err.seek(0)
            stderr = err.read(MAX_OUTPUT_BYTES).decode("utf-8", "replace")
        stdout = _read_capped(console)
    return QemuRun(exit_code=code, stdout=stdout, stderr=stderr, timed_out=timed_out, command=tuple(cmd))


def _read_capped(path: Path) -> str:
    if not path.exists():
        return ""
    with open(path, "rb") as f:
        return f.read(MAX_OUTPUT_BYTES).decode("utf-8", "replace")
