"""`make bench`: prints the project's figures and writes them to bench/results.json.

Each section is a function returning rows; sections for later stages add themselves here.
Figures are measured (arm-none-eabi-size, QEMU instruction counts), never estimated.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tinyprune.boards import list_boards
from tinyprune.selfcheck import run_hello

RESULTS = Path(__file__).with_name("results.json")


def firmware_baseline() -> list[dict]:
    """Flash and stack of the bare harness (startup + semihosting) per core, before any model."""
    rows, seen = [], set()
    for board in list_boards():
        if board.core in seen:
            continue
        seen.add(board.core)
        r = run_hello(board)
        rows.append({"core": board.core, "board": board.name, "machine": board.qemu_machine,
                     "flash_bytes": r.flash_bytes, "stack_used_bytes": r.stack_used_bytes,
                     "ran": r.exit_code == 0})
    return rows


def print_table(title: str, rows: list[dict]) -> None:
    print(f"\n## {title}")
    if not rows:
        return
    keys = list(rows[0])
    widths = {k: max(len(k), *(len(str(r[k])) for r in rows)) for k in keys}
    print("  ".join(k.ljust(widths[k]) for k in keys))
    for r in rows:
        print("  ".join(str(r[k]).ljust(widths[k]) for k in keys))


def main() -> int:
    sections = {"firmware_baseline": firmware_baseline()}
    for title, rows in sections.items():
        print_table(title, rows)
    RESULTS.write_text(json.dumps(sections, indent=2) + "\n")
    print(f"\nwritten to {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
