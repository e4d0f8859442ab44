"""The bare harness (startup + semihosting) per core, before any model: the floor under every figure."""

from __future__ import annotations

from tinyprune.boards import list_boards
from tinyprune.selfcheck import run_hello


def run() -> list[dict]:
    rows, seen = [], set()
    for board in list_boards():
        if board.core in seen:
            continue
        seen.add(board.core)
        r = run_hello(board)
        rows.append({"core": board.core, "board": board.name, "machine": board.qemu_machine,
                     "flash_bytes": r.flash_bytes, "stack_used_bytes": r.stack_used_bytes,
                     "ran": r.exit_code == 0})
    return [{"title": "Bare firmware (startup + semihosting) per core", "rows": rows,
             "notes": ["flash from arm-none-eabi-size; stack from the painted-stack high-water mark"]}]
