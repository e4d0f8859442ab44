"""Byte sizes as users write them: ``65536``, ``64K``, ``64KB``, ``64KiB``, ``1M``, ``1MiB``.

All suffixes are binary multiples (a microcontroller's "64 KB" of flash is 65536 bytes).
"""

from __future__ import annotations

import re

from tinyprune.errors import BadInput

_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3}
_SIZE_RE = re.compile(r"^\s*(\d+)\s*([KMG]?)(I?B)?\s*$", re.IGNORECASE)
ACCEPTED = "65536, 64K, 64KB, 64KiB, 1M, 1MiB"
MAX_BYTES = 4 * 1024**3  # a Cortex-M's whole address space


def parse_size(value: str | int, what: str = "size", allow_zero: bool = False) -> int:
    """Return the number of bytes ``value`` denotes, or raise BadInput naming ``what``."""
    if isinstance(value, bool):  # bool is an int subclass; True bytes means nothing
        raise BadInput(f"{what}: expected a size such as {ACCEPTED}, got {value!r}")
    if isinstance(value, int):
        n = value
    elif isinstance(value, str):
        m = _SIZE_RE.match(value)
        if not m or (m.group(3) and m.group(3).upper() == "IB" and not m.group(2)):
            raise BadInput(
                f"{what}: {value!r} is not a size",
                hint=f"write it as a whole number of bytes with an optional binary suffix: {ACCEPTED}",
            )
        n = int(m.group(1)) * _UNITS[m.group(2).upper()]
    else:
        raise BadInput(f"{what}: expected a size such as {ACCEPTED}, got {value!r}")
    if n < 0 or (n == 0 and not allow_zero):
        raise BadInput(f"{what}: a size must be {'zero or ' if allow_zero else ''}positive, got {value!r}")
    if n > MAX_BYTES:
        raise BadInput(f"{what}: {value!r} is more than a 32-bit microcontroller can address (4 GiB)")
    return n


def format_size(n: int) -> str:
    """Short human form: ``512 B``, ``48.0 KiB``, ``1.50 MiB``."""
    if n < 1024:
        return f"{n} B"
    if n < 1024**2:
        return f"{n / 1024:.1f} KiB"
    return f"{n / 1024**2:.2f} MiB"
