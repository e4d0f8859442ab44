"""Run an ELF on a QEMU machine with semihosting, under a timeout and an output cap."""

from __future__ import annotations

import subprocess
import tempfile
import time
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
    uart: str = ""  # what the firmware wrote to the machine's first UART, when captured
    output_capped: bool = False  # stopped because its output passed MAX_OUTPUT_BYTES


def qemu_command(elf: Path, machine: str, console: Path, icount: bool = True,
                 serial: Path | None = None) -> list[str]:
    """The QEMU command line; semihosting console output goes to the file ``console``, the
    machine's first UART to the file ``serial`` (or nowhere)."""
    cmd = [
        find_tool("qemu-system-arm"),
        "-M", machine,
        "-nographic",
        "-monitor", "none",
        "-serial", f"file:{serial}" if serial else "none",
        "-chardev", f"file,id=semihost,path={console}",
        "-semihosting-config", "enable=on,target=native,chardev=semihost",
        "-kernel", str(elf),
    ]
    if icount:
        # One instruction = 1 ns of virtual time: timers then count instructions, deterministically.
        cmd += ["-icount", "shift=0"]
    return cmd


def run_elf(elf: Path, machine: str, *, cwd: Path | None = None, timeout_s: float = 60.0,
            icount: bool = True, extra_args: list[str] = (), capture_uart: bool = False) -> QemuRun:
    with tempfile.TemporaryDirectory(prefix="tinyprune-qemu-") as tmp:
        console = Path(tmp) / "console.txt"
        serial = Path(tmp) / "uart.txt" if capture_uart else None
        cmd = qemu_command(Path(elf).resolve(), machine, console, icount, serial) + list(extra_args)
        with open(Path(tmp) / "qemu.err", "w+b") as err:
            proc = subprocess.Popen(cmd, cwd=cwd, stdout=err, stderr=err, stdin=subprocess.DEVNULL)
            try:
                code, timed_out, capped = _wait(proc, timeout_s, [console, serial, Path(tmp) / "qemu.err"])
            except BaseException:  # interrupted: never leave an emulator running
                proc.kill()
                proc.wait()
                raise
            err.seek(0)
            stderr = err.read(MAX_OUTPUT_BYTES).decode("utf-8", "replace")
        stdout = _read_capped(console)
        uart = _read_capped(serial).replace("\r\n", "\n") if serial else ""
    return QemuRun(exit_code=code, stdout=stdout, stderr=stderr, timed_out=timed_out, command=tuple(cmd), uart=uart,
                   output_capped=capped)


def _wait(proc: subprocess.Popen, timeout_s: float, outputs: list[Path | None]) -> tuple[int | None, bool, bool]:
    """(exit code, timed out, output capped): wait for QEMU, killing it when the time is up or when
    one of its output files grows past MAX_OUTPUT_BYTES (a firmware printing in a loop)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return proc.wait(timeout=max(0.0, min(0.2, deadline - time.monotonic()))), False, False
        except subprocess.TimeoutExpired:
            pass
        over = any(p is not None and p.exists() and p.stat().st_size > MAX_OUTPUT_BYTES for p in outputs)
        if over or time.monotonic() >= deadline:
            proc.kill()
            proc.wait()
            return None, not over, over


def _read_capped(path: Path | None) -> str:
    if path is None or not path.exists():
        return ""
    with open(path, "rb") as f:
        return f.read(MAX_OUTPUT_BYTES).decode("utf-8", "replace")
