"""Stage reports: ``<stage>_report.json`` files with stable keys.

Everything in a report is a pure function of the stage's inputs except the single field
``run``: when the stage ran (``run.created``, a UTC timestamp) and how long it took
(``run.seconds``, and where a stage measures its parts, ``run.timings_s`` and the like). Two
runs with the same inputs and ``--seed`` therefore write reports that differ only in ``run``
(``without_run`` drops it for a comparison). A report that nests another stage's report (deploy
holds prune's and convert's) moves the nested ``run`` fields into its own, under
``run.stages``, so there is still exactly one field that varies.
"""

from __future__ import annotations

import datetime as _dt
import json
from pathlib import Path
from typing import Any

from tinyprune import __version__
from tinyprune.outdir import write_file_atomic

RUN = "run"  # the one key whose value varies from run to run


def new_report(stage: str, run: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
    """A report for ``stage``; ``run`` adds durations to the run field (which holds ``created``)."""
    report: dict[str, Any] = {
        "stage": stage,
        "tinyprune_version": __version__,
        RUN: {"created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), **(run or {})},
    }
    report.update(fields)
    return report


def without_run(report: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``report`` without its ``run`` field (and without those of nested reports)."""
    out = {k: v for k, v in report.items() if k != RUN}
    return {k: without_run(v) if isinstance(v, dict) and RUN in v and "stage" in v else v for k, v in out.items()}


def hoist_runs(report: dict[str, Any], *keys: str) -> dict[str, Any]:
    """Move the ``run`` field of each nested report ``report[key]`` into ``report["run"]["stages"]``."""
    stages = report[RUN].setdefault("stages", {})
    for key in keys:
        nested = report.get(key)
        if isinstance(nested, dict) and RUN in nested:
            report[key] = {k: v for k, v in nested.items() if k != RUN}
            stages[key] = nested[RUN]
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
