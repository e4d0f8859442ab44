"""Progress bars for long work (training, calibration, search, emulation), on stderr.

Set ``TINYPRUNE_PROGRESS=0`` to silence them (tests and CI logs do).
"""

from __future__ import annotations

import os
import sys
from typing import Iterable, TypeVar

from tqdm import tqdm

T = TypeVar("T")


def enabled() -> bool:
    return os.environ.get("TINYPRUNE_PROGRESS", "1") not in ("0", "false", "no")


def bar(iterable: Iterable[T] | None = None, *, total: int | None = None, desc: str = "", unit: str = "it",
        leave: bool = False) -> tqdm:
    """A tqdm bar on stderr that disappears when done (``leave=False``) unless asked to stay."""
    return tqdm(iterable, total=total, desc=desc, unit=unit, leave=leave, file=sys.stderr,
                disable=not enabled(), dynamic_ncols=True)
