"""Sweep executors: wall time of one 12-point ``tinyprune sweep`` (digits-cnn on three boards at
four flash budgets, every point a real prune -> convert -> build -> QEMU run) with the local pool
at ``--jobs 1`` and ``--jobs 2``, and with Ray on a local instance with 2 CPUs.

Each run starts from an empty output directory, so from an empty stage cache; a one-point sweep
first (not measured) warms what a user's machine would have cached anyway (the trained float
model, the host runtime library). The ratios are
the speed-up from running two points at once on this machine's two cores, and Ray's overhead
against the local pool at the same parallelism (its start-up, object store and task dispatch).
The three runs must give the same rows, timings aside. ``TINYPRUNE_BENCH_QUICK=1`` sweeps 4 points.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BOARDS = ("rpi-pico", "stm32vldiscovery", "microbit-v1")
FLASH = ("40K", "48K", "64K", "96K")
OPTIONS = ("--model", "digits-cnn", "--dataset", "digits", "--limit", "40", "--finetune-epochs", "2", "--steps", "2",
           "--step-epochs", "0", "--calibration-samples", "50")
RUNS = (("local, --jobs 1", ("--executor", "local", "--jobs", "1")),
        ("local, --jobs 2", ("--executor", "local", "--jobs", "2")),
        ("ray, 2 CPUs", ("--executor", "ray", "--jobs", "2")))
SPEEDUP_TARGET = 1.5  # two points at once on two cores, against one
QUIET_CORES = 0.2  # background load (cores busy while the bench runs nothing) above which the ratios mean little


def _busy_seconds() -> float:
    """CPU time all cores spent busy since boot (/proc/stat), in seconds."""
    with open("/proc/stat") as f:
        user, nice, system, _idle, _iowait, irq, softirq = (int(v) for v in f.readline().split()[1:8])
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


def _background_load(seconds: float = 3.0) -> float:
    """Cores kept busy by other programs, sampled while the bench itself is idle."""
    start, busy = time.monotonic(), _busy_seconds()
    time.sleep(seconds)
    return (_busy_seconds() - busy) / (time.monotonic() - start)


def _sweep(out: Path, boards, flash, extra) -> tuple[float, list[dict], str]:
    env = {**os.environ, "TINYPRUNE_PROGRESS": "0", "RAY_USAGE_STATS_ENABLED": "0"}
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "tinyprune", "sweep", *OPTIONS, "--boards", ",".join(boards),
                           "--flash", ",".join(flash), *extra, "--out", str(out)], capture_output=True, text=True,
                          env=env, cwd=out.parent, timeout=3600)
    wall = time.monotonic() - start
    if proc.returncode != 0:
        raise RuntimeError(f"sweep {' '.join(extra)} failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n"
                           f"{proc.stderr[-2000:]}")
    return wall, json.loads((out / "sweep.json").read_text()), proc.stdout


def run() -> list[dict]:
    quick = os.environ.get("TINYPRUNE_BENCH_QUICK", "") not in ("", "0")
    boards, flash = (BOARDS[:2], FLASH[-2:]) if quick else (BOARDS, FLASH)
    results, load = {}, {}
    with tempfile.TemporaryDirectory(prefix="tinyprune-bench-sweep-") as tmp:
        # warm-up, not measured: builds what every run would otherwise find cached (the host runtime
        # library, the trained float model, Python's bytecode caches)
        _sweep(Path(tmp) / "warmup", boards[:1], flash[:1], ("--jobs", "1"))
        for i, (label, extra) in enumerate(RUNS):
            before = _background_load()
            results[label] = _sweep(Path(tmp) / f"run{i}", boards, flash, extra)
            load[label] = (before + _background_load()) / 2
    base = results["local, --jobs 1"][0]
    pool2 = results["local, --jobs 2"][0]
    rows = []
    for label, (wall, doc, _) in results.items():
        ok = [p for p in doc["rows"] if p["status"] == "ok"]
        rows.append({"executor": label, "points": len(doc["rows"]), "fit": len(ok), "wall_s": round(wall, 1),
                     "sum_of_point_s": round(sum(p["seconds"] for p in doc["run"]["points"].values()), 1),
                     "speedup_vs_jobs1": round(base / wall, 2), "vs_local_jobs2": round(wall / pool2, 2),
                     "background_cores": round(load[label], 2)})

    reference = results["local, --jobs 1"][1]["rows"]  # rows hold no timings: they must be equal
    same = all(doc["rows"] == reference for _, doc, _ in results.values())
    speedup = base / pool2
    ray_overhead = results["ray, 2 CPUs"][0] / pool2 - 1
    notes = [f"{len(reference)}-point grid: digits-cnn x {', '.join(boards)} x flash {', '.join(flash)}; "
             f"{' '.join(OPTIONS[4:])}; {os.cpu_count()} cores" + (" (TINYPRUNE_BENCH_QUICK)" if quick else ""),
             f"parallel speed-up, local --jobs 2 against --jobs 1: {speedup:.2f}x (target >= {SPEEDUP_TARGET}x: "
             + ("met)" if speedup >= SPEEDUP_TARGET else "MISSED)"),
             f"Ray (local instance, 2 CPUs) against the local pool with 2 jobs: {100 * ray_overhead:+.1f} % wall time",
             "the same rows (accuracy, sizes, instructions per inference) from all three runs: "
             + ("yes" if same else "NO")]
    busiest = max(load.values())
    if busiest > QUIET_CORES:
        notes.append(f"WARNING: other programs kept up to {busiest:.2f} cores busy around the runs "
                     "(background_cores, sampled while the bench was idle): the ratios are not reliable; "
                     "rerun on a quiet machine")
    return [{"title": "Sweep: wall time of a 12-point grid per executor", "rows": rows, "notes": notes}]


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "bench"))
    from run import print_section

    for section in run():
        print_section(section)
