"""Reliability: the fuzzing figures of the last `make fuzz` (bench/fuzz_results.json, when present)
and every hostile CLI input of tests/test_hostile.py, run now, with its outcome.

`make bench BENCH=reliability`. The fuzz run itself is `make fuzz FUZZ_SECONDS=N` (it takes as
long as it is given); this bench only reads its results.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FUZZ_RESULTS = ROOT / "bench" / "fuzz_results.json"
EXECUTIONS_TARGET = 1_000_000


def _fuzz_sections() -> list[dict]:
    if not FUZZ_RESULTS.exists():
        return [{"title": "Fuzzing the runtime's model reader (make fuzz)", "rows": [],
                 "notes": [f"no {FUZZ_RESULTS.relative_to(ROOT)} yet: run `make fuzz FUZZ_SECONDS=600`"]}]
    r = json.loads(FUZZ_RESULTS.read_text())
    rows = [{"fuzzer": name, "executions": f["executions"], "exec_per_s": f["exec_per_s"], "crashes": f["crashes"],
             "timeouts": f["timeouts"], "corpus_files": f["corpus_files"], "libfuzzer_edges": f["coverage_edges"]}
            for name, f in r["fuzzers"].items()]
    cov = r["coverage"]
    cov_rows = [{"file": name, "lines": v["lines"], "covered": v["covered"], "percent": v["percent"]}
                for name, v in cov["files"].items()]
    cov_rows.append({"file": "reader total", "lines": cov["lines"], "covered": cov["covered"],
                     "percent": cov["percent"]})
    reg = r["regressions"]
    notes = [
        f"{r['executions']:,} executions in {r['wall_seconds']:.0f} s ({r['seconds_per_fuzzer']:g} s per fuzzer, "
        f"run {r['created']}, {r['clang']}, {r['sanitizers']}); target >= {EXECUTIONS_TARGET:,} with 0 crashes: "
        + ("met" if r["executions"] >= EXECUTIONS_TARGET and r["crashes"] == 0 else
           "met but for known, unfixed bugs" if r["executions"] >= EXECUTIONS_TARGET and not r.get("new_crashes")
           else "NOT met"),
        f"crashes {r['crashes']} ({len(r['unique_crashes'])} unique, {r.get('new_crashes', r['crashes'])} new), "
        f"timeouts {r['timeouts']}; leaks and UB reports count as crashes",
        f"seed corpus {r['seed_corpus']['files']} files ({r['seed_corpus']['sources']}); corpus after the run "
        f"{r['corpus']['files']} files, {r['corpus']['bytes']:,} bytes (minimized: {r['corpus']['minimized']})",
        f"regression inputs (tests/data/fuzz-regressions): {reg['files']}, replayed "
        + ("cleanly (every bug they found is fixed)" if reg["replay_ok"] else
           f"still failing, bug not fixed yet: {', '.join(reg['failing'])}"),
    ] + [f"unique crash{' (known, not fixed yet)' if s in r.get('known_unfixed', []) else ''}: {s}"
         for s in r["unique_crashes"]]
    return [
        {"title": "Fuzzing the runtime's model reader (last make fuzz)", "rows": rows, "notes": notes},
        {"title": "Line coverage of the reader (llvm-cov over seeds + corpora)", "rows": cov_rows,
         "notes": [f"{cov['inputs']} inputs run once each through the coverage build"]},
    ]


def _first_error(stderr: str) -> str:
    for line in stderr.splitlines():
        if "error:" in line:
            return line.split("error:", 1)[1].strip()[:110]
    return stderr.strip().splitlines()[-1][:110] if stderr.strip() else ""


def _hostile_section() -> dict:
    sys.path.insert(0, str(ROOT / "tests"))
    os.environ.setdefault("TINYPRUNE_PROGRESS", "0")
    import test_hostile

    with tempfile.TemporaryDirectory(prefix="tinyprune-hostile-") as tmp:
        inputs = test_hostile.make_inputs(Path(tmp) / "inputs")
        base = Path(tmp) / "runs"
        base.mkdir()
        results = test_hostile.run_table(test_hostile.CASES, inputs, base)
        rows, failed = [], []
        for case in test_hostile.CASES:
            res = results[case.id]
            cwd = Path(res["cwd"])
            left = (case.out is not None and (cwd / case.out).exists()) or any(
                test_hostile.TMP_TAG in p.name for p in cwd.iterdir())
            ok = res["code"] == case.code and case.message in res["stderr"] and "Traceback" not in res["stderr"] \
                and not left
            if not ok:
                failed.append(case.id)
            message = _first_error(res["stderr"].replace(f"{inputs}/", "").replace(f"{cwd}/", ""))
            rows.append({"input": case.id, "command": case.argv[0], "category": case.category, "exit": res["code"],
                         "left_behind": "yes" if left else "no", "message": message})
    return {"title": "Hostile CLI inputs (tests/test_hostile.py, run now)", "rows": rows,
            "notes": [f"{len(rows)} inputs, {len(rows) - len(failed)} with the expected exit status and message, "
                      "no traceback and nothing left behind" + (f"; unexpected: {', '.join(failed)}" if failed else ""),
                      "also tested: SIGINT/SIGKILL during deploy (tests/test_interrupt.py), disk full "
                      "(RLIMIT_FSIZE and a tiny tmpfs), a corrupted model in the firmware on QEMU "
                      "(tests/test_target_corrupt.py), byte-identical reruns (tests/test_reproducible.py)"]}


def run() -> list[dict]:
    return _fuzz_sections() + [_hostile_section()]


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "bench"))
    from run import print_section

    for section in run():
        print_section(section)
