"""Prove the cross toolchain and the emulator work: build a tiny firmware for a board and run it.

Used by ``tinyprune doctor``, ``make demo`` and the tests.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tinyprune.boards import Board
from tinyprune.firmware import COMMON_DIR, FIRMWARE_DIR, build_elf, uart_defines
from tinyprune.qemu import run_elf
from tinyprune.toolchain import find_tool

HELLO_SOURCE = FIRMWARE_DIR / "hello" / "hello.c"
_STACK_RE = re.compile(r"stack used: (\d+) of (\d+) bytes")


@dataclass(frozen=True)
class HelloRun:
    board: str
    core: str
    machine: str
    line: str  # the greeting the firmware printed
    flash_bytes: int
    ram_bytes: int
    stack_used_bytes: int
    exit_code: int | None


def build_hello(board: Board, out_dir: Path, pad_bytes: int = 0, uart: bool = False):
    defines = {"TP_BOARD_NAME": f'"{board.name}"', "TP_CORE_NAME": f'"{board.core}"'}
    sources = [HELLO_SOURCE]
    if pad_bytes:
        defines["TP_HELLO_PAD_BYTES"] = str(pad_bytes)
    if uart:
        defines.update(uart_defines(board), TP_CONSOLE_UART="1")
        sources.append(COMMON_DIR / "uart.c")
    return build_elf(board, sources, out_dir, name="hello", defines=defines)


def run_hello(board: Board, timeout_s: float = 30.0) -> HelloRun:
    with tempfile.TemporaryDirectory(prefix="tinyprune-hello-") as tmp:
        build = build_hello(board, Path(tmp))
        run = run_elf(build.elf, board.qemu_machine, timeout_s=timeout_s)
    lines = run.stdout.splitlines()
    stack = _STACK_RE.search(run.stdout)
    return HelloRun(
        board=board.name,
        core=board.core,
        machine=board.qemu_machine,
        line=lines[0] if lines else "",
        flash_bytes=build.flash_bytes,
        ram_bytes=build.ram_bytes,
        stack_used_bytes=int(stack.group(1)) if stack else 0,
        exit_code=run.exit_code,
    )


def tool_version(name: str) -> str:
    out = subprocess.run([find_tool(name), "--version"], capture_output=True, text=True).stdout
    return out.splitlines()[0] if out else "?"


CALIBRATE_SOURCE = FIRMWARE_DIR / "calibrate" / "calibrate.c"
_SPIN_RE = re.compile(r"spin (\d+) ticks (\d+)")


def calibrate_instruction_counter(board: Board, timeout_s: float = 60.0,
                                  reload: int = 0xFFFFFF) -> list[tuple[int, int, float]]:
    """Time loops of 2*n instructions with SysTick under -icount; (n, ticks, measured instructions).

    Measured instructions = ticks x the machine's instructions per tick; a correct conversion
    gives 2*n to within a tick.
    """
    from tinyprune import emulators

    machine = emulators.qemu_machine(board.qemu_machine)
    with tempfile.TemporaryDirectory(prefix="tinyprune-calibrate-") as tmp:
        build = build_elf(board, [CALIBRATE_SOURCE, COMMON_DIR / "timer.c"], Path(tmp), name="calibrate",
                          defines={"SYST_RELOAD": f"0x{reload:x}u"})
        run = run_elf(build.elf, board.qemu_machine, timeout_s=timeout_s)
    if run.exit_code != 0:
        raise RuntimeError(f"calibration firmware failed on {board.qemu_machine}: {run.stdout} {run.stderr}")
    return [(int(n), int(t), int(t) * machine.instructions_per_tick) for n, t in _SPIN_RE.findall(run.stdout)]
