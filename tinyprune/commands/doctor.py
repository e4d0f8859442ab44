"""``tinyprune doctor``: check that the toolchain and emulator tinyprune drives really work."""

from __future__ import annotations

import argparse

from tinyprune.boards import list_boards, load_board
from tinyprune.commands._common import add_boards_dir_option
from tinyprune.errors import CheckFailed

HELP = "check the cross compiler and QEMU by running a tiny firmware"
DESCRIPTION = """\
Check the tools tinyprune drives: arm-none-eabi-gcc and qemu-system-arm.

Builds a tiny firmware (startup code + a linker script generated from the board's
flash and RAM) for one board of each core, runs it under QEMU with semihosting
and reads back the line it prints.

Examples:
  tinyprune doctor
  tinyprune doctor --board rpi-pico
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--board", action="append", default=[], metavar="NAME",
                        help="check this board only (repeatable); default: one board per core")
    add_boards_dir_option(parser)


def run(args: argparse.Namespace) -> int:
    from tinyprune.selfcheck import run_hello, tool_version

    print(f"cross compiler : {tool_version('arm-none-eabi-gcc')}")
    print(f"emulator       : {tool_version('qemu-system-arm')}")
    if args.board:
        boards = [load_board(name, args.boards_dir) for name in args.board]
    else:
        one_per_core = {}
        for b in list_boards(args.boards_dir):
            one_per_core.setdefault(b.core, b)
        boards = list(one_per_core.values())
    failed = []
    for board in boards:
        result = run_hello(board)
        ok = result.exit_code == 0 and result.line.startswith("hello from tinyprune")
        status = "ok " if ok else "FAIL"
        print(f"[{status}] {board.name:<20} {board.core:<14} on {board.qemu_machine:<17} "
              f"flash {result.flash_bytes:>5} B  stack used {result.stack_used_bytes} B  "
              f"-> {result.line!r}")
        if not ok:
            failed.append(board.name)
    if failed:
        raise CheckFailed(f"the test firmware did not run on: {', '.join(failed)}")
    print(f"all {len(boards)} checks passed")
    return 0
