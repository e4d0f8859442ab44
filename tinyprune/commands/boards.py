"""``tinyprune boards [NAME] [--json]``: what can I deploy to?"""

from __future__ import annotations

import argparse

from tinyprune.boards import Board, list_boards, load_board
from tinyprune.commands._common import add_boards_dir_option, print_json
from tinyprune.sizes import format_size

HELP = "list the boards tinyprune knows, or show one in full"
DESCRIPTION = """\
List the boards tinyprune knows (boards/*.toml plus --boards-dir / $TINYPRUNE_BOARDS),
or show one board in full.

The budget a deploy aims at is flash_bytes - reserved_flash_bytes and
ram_bytes - reserved_ram_bytes: the reserve is room left for your own application.

Examples:
  tinyprune boards
  tinyprune boards --json
  tinyprune boards nucleo-f446re
  tinyprune boards --boards-dir my_boards/ my-custom-board
"""

JSON_KEYS = (
    "name", "vendor", "mcu", "core", "fpu", "dsp", "clock_hz",
    "flash_bytes", "ram_bytes", "budget_flash_bytes", "budget_ram_bytes",
    "qemu_machine", "renode_platform",
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", nargs="?", help="show this board in full")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    add_boards_dir_option(parser)


def run(args: argparse.Namespace) -> int:
    if args.name:
        board = load_board(args.name, args.boards_dir)
        if args.json:
            print_json(board.to_dict())
        else:
            print(describe(board))
        return 0
    boards = list_boards(args.boards_dir)
    if args.json:
        print_json([{k: b.to_dict()[k] for k in JSON_KEYS} for b in boards])
    else:
        print(table(boards))
    return 0


def table(boards: list[Board]) -> str:
    header = ("board", "mcu", "core", "fpu", "clock", "flash", "ram", "budget flash/ram", "qemu machine")
    rows = [
        (
            b.name,
            b.mcu,
            b.core,
            b.fpu,
            f"{b.clock_hz / 1e6:g} MHz",
            format_size(b.flash_bytes),
            format_size(b.ram_bytes),
            f"{format_size(b.budget_flash_bytes)} / {format_size(b.budget_ram_bytes)}",
            b.qemu_machine,
        )
        for b in boards
    ]
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip() for row in [header, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines.append(f"\n{len(boards)} boards. `tinyprune boards NAME` shows one in full.")
    return "\n".join(lines)


def describe(b: Board) -> str:
    def size(n: int) -> str:
        return f"{n} ({format_size(n)})"

    fields = [
        ("name", b.name),
        ("vendor", b.vendor),
        ("mcu", b.mcu),
        ("core", b.core),
        ("fpu", b.fpu),
        ("dsp", "yes" if b.dsp else "no"),
        ("clock_hz", f"{b.clock_hz} ({b.clock_hz / 1e6:g} MHz)"),
        ("flash_bytes", size(b.flash_bytes)),
        ("flash_origin", f"0x{b.flash_origin:08x}"),
        ("ram_bytes", size(b.ram_bytes)),
        ("ram_origin", f"0x{b.ram_origin:08x}"),
        ("reserved_flash_bytes", size(b.reserved_flash_bytes)),
        ("reserved_ram_bytes", size(b.reserved_ram_bytes)),
        ("budget flash", size(b.budget_flash_bytes)),
        ("budget ram", size(b.budget_ram_bytes)),
        ("qemu_machine", b.qemu_machine),
        ("renode_platform", b.renode_platform),
        ("renode_uart", b.renode_uart),
        ("uart", f"{b.uart_kind} at 0x{b.uart_base:08x}"),
        ("url", b.url),
    ]
    if b.notes:
        fields.append(("notes", b.notes))
    fields.append(("file", b.source))
    width = max(len(k) for k, _ in fields)
    lines = []
    for key, value in fields:
        field = key.split()[0] if key.endswith("_bytes") or key == "dsp" else key
        mark = "  (default)" if field in b.defaulted else ""
        lines.append(f"{key.ljust(width)}  {value}{mark}")
    return "\n".join(lines)
