#!/usr/bin/env python3
"""`make fuzz FUZZ_SECONDS=N`: fuzz the firmware runtime's model reader and invoke path.

Both libFuzzer targets (``fuzz_model``: byte-level mutations; ``fuzz_mutate``: structural
mutations of valid models) run side by side for N seconds each, under AddressSanitizer and
UndefinedBehaviorSanitizer, from a seed corpus of the zoo models and small per-operator models
(tinyprune.fuzz.seed_corpus). Then the corpora are minimized (libFuzzer -merge), the reader's
line coverage is measured with clang's coverage tools, and the regression inputs of
tests/data/fuzz-regressions/ are replayed. Prints executions, crashes, corpus size and coverage
and writes bench/fuzz_results.json (read by `make bench BENCH=reliability`).

Corpora persist in the cache (``$TINYPRUNE_CACHE/fuzz/corpus/``), so each run continues from
the last; --fresh starts from the seeds alone. A crash's input is minimized and kept under
``$TINYPRUNE_CACHE/fuzz/findings/``: fix the bug, then add the input to
tests/data/fuzz-regressions/ (the replay test runs every file there).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "bench" / "fuzz_results.json"


def _minimize_corpus(binary: Path, corpus: Path, max_len: int) -> None:
    """libFuzzer -merge=1: keep the smallest set of inputs with the same coverage."""
    merged = corpus.with_name(corpus.name + ".merged")
    shutil.rmtree(merged, ignore_errors=True)
    merged.mkdir()
    proc = subprocess.run([str(binary), "-merge=1", f"-max_len={max_len}", "-timeout=60", str(merged), str(corpus)],
                          capture_output=True, text=True, timeout=3600)
    if proc.returncode == 0 and any(merged.iterdir()):
        shutil.rmtree(corpus)
        merged.rename(corpus)
    else:
        shutil.rmtree(merged, ignore_errors=True)


def _minimize_crash(binary: Path, artifact: Path) -> Path:
    out = artifact.with_name(artifact.name + ".min")
    subprocess.run([str(binary), "-minimize_crash=1", "-runs=20000", f"-exact_artifact_path={out}", str(artifact)],
                   capture_output=True, text=True, timeout=900)
    return out if out.exists() else artifact


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=300, help="wall time per fuzzer (default 300)")
    parser.add_argument("--fresh", action="store_true", help="start from the seed corpus alone")
    parser.add_argument("--no-zoo", action="store_true", help="seed with the small direct models only (no TensorFlow)")
    parser.add_argument("--no-merge", action="store_true", help="keep the corpora unminimized")
    parser.add_argument("--json", type=Path, default=RESULTS, help=f"results file (default {RESULTS.relative_to(ROOT)})")
    args = parser.parse_args(argv)
    if not args.seconds > 0:
        parser.error("--seconds must be positive")

    from tinyprune import fuzz
    from tinyprune.data import cache_dir
    from tinyprune.errors import TinypruneError

    try:
        binaries = {name: fuzz.build_fuzzer(name) for name in fuzz.FUZZERS}
        replay_bin = fuzz.build_replay()
    except TinypruneError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        if exc.hint:
            print(f"hint: {exc.hint}", file=sys.stderr)
        return 2
    clang_version = subprocess.run([fuzz.find_clang(), "--version"], capture_output=True, text=True).stdout.splitlines()[0]

    root = cache_dir() / "fuzz"
    seeds = root / "seeds"
    shutil.rmtree(seeds, ignore_errors=True)
    print("seed corpus: zoo models (TFLite converter, cached), direct per-operator models ...", flush=True)
    seed_info = fuzz.seed_corpus(seeds, zoo=not args.no_zoo)
    print(f"  {seed_info['files']} files, {seed_info['bytes']} bytes ({seed_info['sources']})")
    max_len = min(fuzz.MAX_SEED_BYTES, max(seed_info["max_file_bytes"], 4096))
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S")
    findings_dir = root / "findings" / stamp
    corpora = {name: root / "corpus" / name for name in binaries}
    for corpus in corpora.values():
        if args.fresh:
            shutil.rmtree(corpus, ignore_errors=True)
        corpus.mkdir(parents=True, exist_ok=True)

    print(f"fuzzing: {', '.join(binaries)} in parallel, {args.seconds:g} s each (ASan + UBSan) ...", flush=True)
    start = time.monotonic()
    with ThreadPoolExecutor(max_workers=len(binaries)) as pool:
        futures = {name: pool.submit(fuzz.run_fuzzer, binary, corpora[name], [seeds], args.seconds,
                                     findings_dir / name, max_len=max_len, log_dir=findings_dir / "logs",
                                     keep_going=True)
                   for name, binary in binaries.items()}
        runs = {name: f.result() for name, f in futures.items()}
    wall = time.monotonic() - start

    # Regression inputs that still fail (a bug found earlier and not fixed yet) are known: the
    # fuzzers may well find them again; only other signatures are new findings.
    regressions = sorted(p for p in fuzz.REGRESSIONS_DIR.glob("*") if p.is_file() and p.suffix != ".md") \
        if fuzz.REGRESSIONS_DIR.is_dir() else []
    replay_failed, known = [], set()
    for path in regressions:
        for variant, binary in (("gcc", replay_bin), ("libfuzzer", binaries["fuzz_model"])):
            proc = fuzz.replay(binary, [path])
            if proc.returncode != 0:
                replay_failed.append(f"{path.name} ({variant})")
                known.add(fuzz.signature(proc.stderr + proc.stdout))
    replay_ok = not replay_failed

    minimized, seen = [], set()  # one minimized input per new signature
    for name, run in runs.items():
        for finding in run.crashes + run.timeouts:
            if finding.signature in known or finding.signature in seen:
                continue
            seen.add(finding.signature)
            minimized.append({"fuzzer": name, "kind": finding.kind, "signature": finding.signature,
                              "input": str(_minimize_crash(binaries[name], Path(finding.artifact)))})
    if not args.no_merge:
        print("minimizing the corpora (libFuzzer -merge=1) ...", flush=True)
        for name, binary in binaries.items():
            _minimize_corpus(binary, corpora[name], max_len)
    corpus_files = [p for c in corpora.values() for p in c.iterdir() if p.is_file()]

    print("coverage of the reader (clang source-based coverage over seeds + corpora) ...", flush=True)
    cov = fuzz.coverage([seeds, *corpora.values()], root / "coverage")

    executions = sum(r.executions for r in runs.values())
    crashes = [f for r in runs.values() for f in r.crashes]
    new_crashes = [f for f in crashes if f.signature not in known]
    results = {
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "seconds_per_fuzzer": args.seconds,
        "wall_seconds": round(wall, 1),
        "clang": clang_version,
        "sanitizers": "address,undefined (-fno-sanitize-recover=all), leak detection on",
        "seed_corpus": seed_info,
        "fuzzers": {name: r.to_dict() for name, r in runs.items()},
        "executions": executions,
        "crashes": len(crashes),
        "unique_crashes": sorted({f.signature for f in crashes}),
        "new_crashes": len(new_crashes),
        "known_unfixed": sorted(known),
        "timeouts": sum(len(r.timeouts) for r in runs.values()),
        "findings": minimized,
        "corpus": {"files": len(corpus_files), "bytes": sum(p.stat().st_size for p in corpus_files),
                   "minimized": not args.no_merge},
        "coverage": {k: v for k, v in cov.items() if k != "report"},
        "coverage_report": cov["report"],
        "regressions": {"files": len(regressions), "names": [p.name for p in regressions],
                        "replay_ok": replay_ok, "failing": replay_failed},
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2) + "\n")

    print()
    print(f"executions        {executions:,} in {wall:.0f} s ({', '.join(f'{n} {r.executions:,}' for n, r in runs.items())})")
    print(f"crashes           {len(crashes)} ({len(results['unique_crashes'])} unique; "
          f"{len(new_crashes)} not already known from tests/data/fuzz-regressions), "
          f"timeouts {results['timeouts']}, leaks/UB included in crashes")
    for sig in sorted(known):
        print(f"  known, not fixed yet (tests/data/fuzz-regressions): {sig}")
    for f in minimized:
        print(f"  NEW {f['kind']}: {f['signature']}\n    minimized input: {f['input']}")
    print(f"corpus            {len(corpus_files)} files, {results['corpus']['bytes']:,} bytes "
          f"(seeds: {seed_info['files']} files)")
    print(f"reader coverage   {cov['percent']} % of {cov['lines']} lines "
          + ", ".join(f"{n} {v['percent']} %" for n, v in cov["files"].items()))
    print(cov["report"].rstrip())
    print(f"regressions       {len(regressions)} inputs replayed (gcc and libFuzzer builds): "
          + ("ok" if replay_ok else f"still failing (not fixed yet): {', '.join(replay_failed)}"))
    print(f"written to {args.json}")
    return 0 if not new_crashes else 1


if __name__ == "__main__":
    sys.exit(main())
