"""Read a GNU ld map file: which object put how many bytes into which output section.

``arm-none-eabi-size`` gives section totals; the map file splits them by object, so the model
array, the runtime's code and the harness can be told apart.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

_OUTPUT_RE = re.compile(r"^(\.[\w.]+)\s+0x[0-9a-fA-F]+\s+0x[0-9a-fA-F]+")
_INPUT_RE = re.compile(r"^ (\.[^\s]+|COMMON)(?:\s+(0x[0-9a-fA-F]+)\s+(0x[0-9a-fA-F]+)\s+(.+))?$")
_CONT_RE = re.compile(r"^\s+(0x[0-9a-fA-F]+)\s+(0x[0-9a-fA-F]+)\s+(.+)$")


@dataclass(frozen=True)
class MapEntry:
    output_section: str  # .text, .data, .bss, ...
    input_section: str  # .text.tpr_invoke, .rodata.tp_model_data, ...
    address: int
    size: int
    object: str  # object file path, or "lib.a(member.o)"


def parse_map(path: Path) -> list[MapEntry]:
    lines = Path(path).read_text(encoding="utf-8", errors="replace").splitlines()
    try:
        start = lines.index("Linker script and memory map")
    except ValueError:
        return []
    entries: list[MapEntry] = []
    output = ""
    pending: str | None = None
    for line in lines[start + 1 :]:
        m = _OUTPUT_RE.match(line)
        if m:
            output, pending = m.group(1), None
            continue
        if line.startswith(".") or line.startswith("/DISCARD/"):
            output, pending = line.split()[0], None
            continue
        if pending is not None:
            c = _CONT_RE.match(line)
            if c:
                entries.append(MapEntry(output, pending, int(c.group(1), 16), int(c.group(2), 16), c.group(3).strip()))
            pending = None
            continue
        m = _INPUT_RE.match(line)
        if m:
            if m.group(2) is None:
                pending = m.group(1)  # long name: address, size and object follow on the next line
            else:
                entries.append(MapEntry(output, m.group(1), int(m.group(2), 16), int(m.group(3), 16), m.group(4).strip()))
    return [e for e in entries if e.size > 0 and e.output_section != "/DISCARD/"]


def bytes_by(entries: list[MapEntry], key, sections: tuple[str, ...]) -> dict[str, int]:
    """Sum sizes of entries in ``sections`` grouped by ``key(entry)``."""
    out: dict[str, int] = defaultdict(int)
    for e in entries:
        if e.output_section in sections:
            out[key(e)] += e.size
    return dict(out)
