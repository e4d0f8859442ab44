"""Stage reports: ``<stage>_report.json`` files with stable keys.

Everything in a report is a pure function of the stage's inputs except the single field
``created`` (a timestamp), so two identical runs give reports that differ only there.
"""

from __future__ import annotations

import datetime as _dt
import json
from pathlib import Path
from typing import Any

from tinyprune import __version__
from tinyprune.outdir import write_file_atomic


def new_report(stage: str, **fields: Any) -> dict[str, Any]:
    report: dict[str, Any] = {
        "stage": stage,
        "tinyprune_version": __version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    report.update(fields)
    return report


def to_json(report: dict[str, Any]) -> str:
    return json.dumps(report, indent=2, default=_default) + "\n"


def write_report(path: Path, report: dict[str, Any]) -> None:
    write_file_atomic(Path(path), to_json(report))


def _default(obj: Any) -> Any:
    # numpy scalars and arrays, Paths and tuples-as-keys end up here
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot put a {type(obj).__name__} in a report")
