"""`make bench`: prints the project's figures and writes them to bench/results.json.

Every ``bench/bench_*.py`` module provides ``run() -> list[dict]``: sections of the form
``{"title": str, "rows": [dict, ...], "notes": [str, ...]}``. Notes carry targets and whether
they were met. Figures are measured (arm-none-eabi-size, QEMU instruction counts, real
training runs), never estimated. ``make bench BENCH=name`` runs ``bench_name.py`` only.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
RESULTS = BENCH_DIR / "results.json"


def print_section(section: dict) -> None:
    print(f"\n## {section['title']}")
    rows = section.get("rows", [])
    if rows:
        keys = list(rows[0])
        widths = {k: max(len(k), *(len(_fmt(r.get(k))) for r in rows)) for k in keys}
        print("  ".join(k.ljust(widths[k]) for k in keys))
        for r in rows:
            print("  ".join(_fmt(r.get(k)).ljust(widths[k]) for k in keys))
    for note in section.get("notes", []):
        print(f"  {note}")


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return "" if v is None else str(v)


def main() -> int:
    only = os.environ.get("BENCH")
    modules = sorted(BENCH_DIR.glob("bench_*.py"))
    if only:
        modules = [m for m in modules if m.stem == f"bench_{only}"]
    results = {}
    for path in modules:
        spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        start = time.monotonic()
        sections = module.run()
        for section in sections:
            print_section(section)
        results[path.stem.removeprefix("bench_")] = {"sections": sections, "seconds": round(time.monotonic() - start, 1)}
        sys.stdout.flush()
    if only and RESULTS.exists():  # one bench: keep the others' last figures
        try:
            results = {**json.loads(RESULTS.read_text()), **results}
        except json.JSONDecodeError:
            pass
    RESULTS.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(f"\nwritten to {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
