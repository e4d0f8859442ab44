"""Fuzzing the firmware runtime's model reader and invoke path with libFuzzer.

Two fuzzers share one target (``firmware/runtime/host/fuzz_model.c``: arbitrary bytes as a model,
init + invoke, the trust model's invariants checked, AddressSanitizer and UndefinedBehavior-
Sanitizer on):

* ``fuzz_model``: libFuzzer's own byte-level mutations;
* ``fuzz_mutate``: plus a custom mutator (``host/fuzz_mutate.c``) that rewrites the fields of
  valid models that carry meaning: shapes, buffer and tensor indices, operator codes and
  versions, quantization, options.

    from tinyprune import fuzz
    seeds = fuzz.seed_corpus(Path("seeds"))            # zoo models + small direct models
    run = fuzz.run_fuzzer(fuzz.build_fuzzer("fuzz_mutate"), Path("corpus"), [Path("seeds")],
                          seconds=60, artifacts_dir=Path("crashes"), keep_going=True)
    run.executions, run.crashes                         # keep_going: -fork=1, findings do not stop it
    fuzz.coverage([Path("corpus"), Path("seeds")], Path("cov"))   # lines of tpr_reader.c, ...

Builds go to the cache directory (``tinyprune.data.cache_dir()/fuzz/<hash>/``), like the host
runtime (``tinyprune.runtime``): the hash covers the sources, the flags and the compiler.
``build_replay()`` is the same target as a plain program (``-DTPR_FUZZ_MAIN``) that runs files
and directories, with gcc when clang is missing: the regression replay of
``tests/data/fuzz-regressions/`` needs nothing but the host compiler.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tinyprune.errors import CheckFailed, ToolMissing
from tinyprune.paths import PROJECT_DIR
from tinyprune.runtime import RUNTIME_DIR, SANITIZE, _locked

HOST_DIR = RUNTIME_DIR / "host"
FUZZERS = {"fuzz_model": ("fuzz_model.c",), "fuzz_mutate": ("fuzz_model.c", "fuzz_mutate.c")}
READER_FILES = ("tpr_reader.c", "tpr_flatbuf.c", "tpr_runtime.c")
REGRESSIONS_DIR = PROJECT_DIR / "tests" / "data" / "fuzz-regressions"
CLANG_NAMES = ("clang-14", "clang")
CLANG_HINT = ("sudo apt-get install clang-14 libclang-rt-14-dev libfuzzer-14-dev llvm-14 "
              "(`make setup` installs them as root)")
COMMON_FLAGS = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-g", "-DTPR_ERROR_DETAIL=1"]
MAX_SEED_BYTES = 512 * 1024  # libFuzzer's -max_len: no seed is truncated
ARTIFACT_KINDS = ("crash", "leak", "timeout", "oom")  # libFuzzer's artifact prefixes (slow-unit-*: a note only)
_SANITIZER_ENV = {"ASAN_OPTIONS": "detect_leaks=1:abort_on_error=1:symbolize=1:allocator_may_return_null=1",
                  "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1"}


# ---- tools -------------------------------------------------------------------------------------

def find_clang() -> str:
    """Debian's clang (14) with libFuzzer and the sanitizer runtimes, or ToolMissing."""
    for name in CLANG_NAMES:
        path = shutil.which(name)
        if path:
            return path
    raise ToolMissing("clang is not installed (libFuzzer builds need it)", hint=CLANG_HINT)


def llvm_tool(name: str) -> str:
    """``llvm-profdata``/``llvm-cov`` matching the clang in use (``-14`` suffix first)."""
    for candidate in (f"{name}-14", name):
        path = shutil.which(candidate)
        if path:
            return path
    raise ToolMissing(f"{name} is not installed (coverage reports need it)", hint=CLANG_HINT)


def _host_cc() -> str:
    for name in (os.environ.get("CC", "gcc"), "gcc", *CLANG_NAMES):
        path = shutil.which(name) if name else None
        if path:
            return path
    raise ToolMissing("no host C compiler (gcc or clang) on PATH", hint="sudo apt-get install gcc")


def runtime_sources(runtime_dir: Path = RUNTIME_DIR) -> list[Path]:
    return sorted(runtime_dir.glob("*.c")) + sorted((runtime_dir / "kernels").glob("*.c"))


def _cache_root() -> Path:
    from tinyprune.data import cache_dir

    return cache_dir() / "fuzz"


def _build(name: str, compiler: str, flags: list[str], host_files: tuple[str, ...],
           runtime_dir: Path = RUNTIME_DIR) -> Path:
    """Compile the runtime plus ``host_files`` into the cache (locked, renamed into place)."""
    srcs = [HOST_DIR / f for f in host_files] + runtime_sources(runtime_dir)
    h = hashlib.sha256()
    h.update(subprocess.run([compiler, "--version"], capture_output=True, text=True).stdout.encode())
    h.update(repr((name, flags)).encode())
    for path in srcs + sorted(runtime_dir.glob("*.h")) + sorted((runtime_dir / "kernels").glob("*.h")):
        h.update(path.name.encode())
        h.update(path.read_bytes())
    key = h.hexdigest()[:20]
    target = _cache_root() / key / name
    if target.exists():
        return target
    with _locked(_cache_root() / f"{key}.lock"):
        if target.exists():
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=target.parent, prefix=".build-") as tmp:
            out = Path(tmp) / name
            cmd = [compiler, *flags, f"-I{runtime_dir}", f"-I{runtime_dir / 'kernels'}", *map(str, srcs), "-o", str(out)]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                raise CheckFailed(f"building {name} with {Path(compiler).name} failed:\n{proc.stderr[-4000:]}")
            os.replace(out, target)
    return target


def build_fuzzer(name: str = "fuzz_model", runtime_dir: Path = RUNTIME_DIR) -> Path:
    """A libFuzzer binary (``fuzz_model`` or ``fuzz_mutate``) under ASan + UBSan."""
    flags = [*COMMON_FLAGS, "-O1", "-fsanitize=fuzzer", *SANITIZE]
    return _build(name, find_clang(), flags, FUZZERS[name], runtime_dir)


def build_replay(compiler: str | None = None, runtime_dir: Path = RUNTIME_DIR) -> Path:
    """The fuzz target as a plain program over files/directories, under ASan + UBSan; built with
    ``compiler`` (default: the host compiler, gcc when present)."""
    cc = compiler or _host_cc()
    flags = [*COMMON_FLAGS, "-O1", "-DTPR_FUZZ_MAIN=1", *SANITIZE]
    return _build(f"fuzz_replay-{Path(cc).name}", cc, flags, FUZZERS["fuzz_model"], runtime_dir)


def build_coverage(runtime_dir: Path = RUNTIME_DIR) -> Path:
    """The plain program with clang's source-based coverage (no sanitizers)."""
    flags = [*COMMON_FLAGS, "-O0", "-DTPR_FUZZ_MAIN=1", "-fprofile-instr-generate", "-fcoverage-mapping"]
    return _build("fuzz_coverage", find_clang(), flags, FUZZERS["fuzz_model"], runtime_dir)


# ---- seed corpus -------------------------------------------------------------------------------

def _test_models():
    """tests/runtime_models.py: the zoo's architectures through TFLite's converter (cached on disk,
    shared with the tests) and small models written directly with TFLite's schema."""
    tests = str(PROJECT_DIR / "tests")
    if tests not in sys.path:
        sys.path.insert(0, tests)
    import runtime_models

    return runtime_models


def seed_corpus(out_dir: Path, zoo: bool = True, regressions: bool = True) -> dict:
    """Write the seed corpus into ``out_dir``: every zoo model (``zoo``: converted with the TFLite
    converter, cached), small models of every operator written directly (three random variants
    each, plus a network touching most kernels), the converter-built per-operator models the
    runtime tests cached (when present) and the regression inputs. Returns counts by source."""
    import numpy as np

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rm = _test_models()
    sources: dict[str, int] = {}

    def put(kind: str, name: str, data: bytes) -> None:
        (out_dir / f"{kind}-{name}").write_bytes(data)
        sources[kind] = sources.get(kind, 0) + 1

    rng = np.random.default_rng(2024)
    for op, build in rm.DIRECT.items():
        for k in range(3):
            put("direct", f"{op.lower()}-{k}.tflite", build(rng))
    for k in range(2):
        put("direct", f"network-{k}.tflite", rm.direct_network(rng))
    if zoo:
        for name, data in rm.zoo_models().items():
            put("zoo", f"{name}.tflite", data)
    cache = rm._cache_root()
    for group in sorted(cache.glob("op-*")) if cache.is_dir() else []:
        if (group / "done").exists():
            for f in sorted(group.glob("*.tflite")):
                put("converter", f"{group.name.rsplit('-', 1)[0]}-{f.name}", f.read_bytes())
    if regressions and REGRESSIONS_DIR.is_dir():
        for f in sorted(REGRESSIONS_DIR.iterdir()):
            if f.is_file() and not f.name.startswith(".") and f.suffix != ".md":
                put("regression", f.name, f.read_bytes())
    files = [p for p in out_dir.iterdir() if p.is_file()]
    return {"files": len(files), "bytes": sum(p.stat().st_size for p in files), "sources": sources,
            "max_file_bytes": max((p.stat().st_size for p in files), default=0)}


# ---- running -----------------------------------------------------------------------------------

@dataclass
class Finding:
    kind: str  # crash, leak, timeout, oom
    signature: str  # the sanitizer's summary or the first frame in the runtime
    artifact: str  # the input that triggers it


@dataclass
class FuzzRun:
    name: str
    seconds: float
    executions: int = 0
    exec_per_s: float = 0.0
    coverage_edges: int = 0  # libFuzzer's "cov": instrumented edges reached
    features: int = 0
    new_units: int = 0
    corpus_files: int = 0
    corpus_bytes: int = 0
    peak_rss_mb: int = 0
    restarts: int = 0
    findings: list[Finding] = field(default_factory=list)
    slow_units: int = 0

    @property
    def crashes(self) -> list[Finding]:
        return [f for f in self.findings if f.kind in ("crash", "leak", "oom")]

    @property
    def timeouts(self) -> list[Finding]:
        return [f for f in self.findings if f.kind == "timeout"]

    def to_dict(self) -> dict:
        d = asdict(self)
        d["crashes"] = len(self.crashes)
        d["timeouts"] = len(self.timeouts)
        d["unique_crashes"] = sorted({f.signature for f in self.crashes})
        return d


_STAT_RE = re.compile(r"^stat::(\w+):\s+(\d+)", re.M)
_PROGRESS_RE = re.compile(r"^#(\d+)\s+\w+\s+cov: (\d+) ft: (\d+) corp: (\d+)/\S+(?:.*?exec/s: (\d+))?(?:.*?rss: (\d+)Mb)?",
                          re.M)


_FORK_RE = re.compile(r"^#(\d+): cov: (\d+) ft: (\d+) corp: (\d+) exec/s (\d+) oom/timeout/crash: (\d+)/(\d+)/(\d+)",
                      re.M)


def parse_log(text: str) -> dict:
    """Executions, coverage and memory from one libFuzzer run's output (plain or -fork mode)."""
    fork = _FORK_RE.findall(text)
    if fork:
        last = fork[-1]
        return {"executions": int(last[0]), "exec_per_s": int(last[4]),
                "coverage_edges": max(int(p[1]) for p in fork), "features": max(int(p[2]) for p in fork),
                "new_units": int(last[3]), "peak_rss_mb": 0}
    stats = {k: int(v) for k, v in _STAT_RE.findall(text)}
    progress = _PROGRESS_RE.findall(text)
    last = progress[-1] if progress else None
    executions = stats.get("number_of_executed_units", int(last[0]) if last else 0)
    return {
        "executions": executions,
        "exec_per_s": stats.get("average_exec_per_sec", int(last[4] or 0) if last else 0),
        "coverage_edges": max((int(p[1]) for p in progress), default=0),
        "features": max((int(p[2]) for p in progress), default=0),
        "new_units": stats.get("new_units_added", 0),
        "peak_rss_mb": stats.get("peak_rss_mb", max((int(p[5] or 0) for p in progress), default=0)),
    }


def signature(text: str) -> str:
    """What went wrong, in one line stable across inputs hitting the same bug."""
    m = re.search(r"^SUMMARY: (\w+Sanitizer: .*)$", text, re.M)
    if m:
        return re.sub(r"\s+\(.*?\)$", "", m.group(1).strip())
    m = re.search(r"^(\S+:\d+:\d+): runtime error: (.*)$", text, re.M)
    if m:
        return f"UndefinedBehaviorSanitizer: {m.group(2).split(':')[0]} at {Path(m.group(1)).name}"
    for frame in re.findall(r"^\s+#\d+ 0x[0-9a-f]+ in (\S+) (\S+?):(\d+)", text, re.M):
        func, path, line = frame
        if "firmware/runtime" in path and func not in ("abort", "check"):
            return f"{func} at {Path(path).name}:{line}"
    m = re.search(r"^==\d+== ERROR: libFuzzer: (.*)$", text, re.M)
    return f"libFuzzer: {m.group(1).strip()}" if m else "unknown failure"


def run_fuzzer(binary: Path, corpus_dir: Path, seed_dirs: list[Path], seconds: float, artifacts_dir: Path, *,
               max_len: int | None = None, timeout_s: int = 30, rss_limit_mb: int = 2048, log_dir: Path | None = None,
               max_restarts: int = 50, keep_going: bool = False, extra_args: list[str] = ()) -> FuzzRun:
    """Fuzz for ``seconds`` of wall time. New inputs go to ``corpus_dir``; ``seed_dirs`` are read
    only. A finding (crash, leak, timeout, out-of-memory) stops libFuzzer: its input is kept in
    ``artifacts_dir``, it is recorded, and fuzzing resumes for the time that is left.
    ``keep_going``: libFuzzer's -fork=1 mode instead (jobs in child processes, findings collected
    without stopping): the whole time goes to fuzzing even when a known bug is hit again and
    again; each finding's signature comes from replaying its input."""
    if keep_going:
        return _run_forked(Path(binary), Path(corpus_dir), seed_dirs, seconds, Path(artifacts_dir), max_len=max_len,
                           timeout_s=timeout_s, rss_limit_mb=rss_limit_mb, log_dir=log_dir, extra_args=extra_args)
    binary, corpus_dir, artifacts_dir = Path(binary), Path(corpus_dir), Path(artifacts_dir)
    corpus_dir.mkdir(parents=True, exist_ok=True)
    artifacts_dir.mkdir(parents=True, exist_ok=True)
    if max_len is None:
        sizes = [p.stat().st_size for d in seed_dirs for p in Path(d).iterdir() if p.is_file()]
        max_len = min(MAX_SEED_BYTES, max(sizes, default=4096))
    run = FuzzRun(name=binary.name, seconds=float(seconds))
    deadline = time.monotonic() + seconds
    env = {**os.environ, **_SANITIZER_ENV}
    while True:
        remaining = int(deadline - time.monotonic())
        if remaining < 1:
            break
        before = {p.name for p in artifacts_dir.iterdir()}
        cmd = [str(binary), f"-max_total_time={remaining}", f"-max_len={max_len}", f"-timeout={timeout_s}",
               f"-rss_limit_mb={rss_limit_mb}", "-print_final_stats=1", "-reload=0",
               f"-artifact_prefix={artifacts_dir}/", *extra_args, str(corpus_dir), *map(str, seed_dirs)]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=remaining + timeout_s + 300)
        log = proc.stderr + proc.stdout
        if log_dir is not None:
            log_dir.mkdir(parents=True, exist_ok=True)
            (log_dir / f"{binary.name}-{run.restarts}.log").write_text(log)
        stats = parse_log(log)
        run.executions += stats["executions"]
        run.coverage_edges = max(run.coverage_edges, stats["coverage_edges"])
        run.features = max(run.features, stats["features"])
        run.new_units += stats["new_units"]
        run.peak_rss_mb = max(run.peak_rss_mb, stats["peak_rss_mb"])
        new = sorted({p.name for p in artifacts_dir.iterdir()} - before)
        run.slow_units += sum(1 for n in new if n.startswith("slow-unit-"))
        found = [n for n in new if n.split("-", 1)[0] in ARTIFACT_KINDS]
        for name in found:
            kind = name.split("-", 1)[0]
            run.findings.append(Finding(kind, signature(log) if kind != "timeout" else "libFuzzer: timeout",
                                        str(artifacts_dir / name)))
        if proc.returncode != 0 and not found:
            raise CheckFailed(f"{binary.name} failed without a finding (exit {proc.returncode}):\n{log[-3000:]}")
        # done: the time is up, a seed itself fails (it would fail again at once), or too many restarts
        if not found or "INITED" not in log or run.restarts >= max_restarts:
            break
        run.restarts += 1
    elapsed = seconds
    run.exec_per_s = round(run.executions / elapsed, 1) if elapsed else 0.0
    files = [p for p in corpus_dir.iterdir() if p.is_file()]
    run.corpus_files, run.corpus_bytes = len(files), sum(p.stat().st_size for p in files)
    return run


def _run_forked(binary: Path, corpus_dir: Path, seed_dirs: list[Path], seconds: float, artifacts_dir: Path, *,
                max_len: int | None, timeout_s: int, rss_limit_mb: int, log_dir: Path | None,
                extra_args) -> FuzzRun:
    corpus_dir.mkdir(parents=True, exist_ok=True)
    artifacts_dir.mkdir(parents=True, exist_ok=True)
    if max_len is None:
        sizes = [p.stat().st_size for d in seed_dirs for p in Path(d).iterdir() if p.is_file()]
        max_len = min(MAX_SEED_BYTES, max(sizes, default=4096))
    before = {p.name for p in artifacts_dir.iterdir()}
    corpus_before = sum(1 for p in corpus_dir.iterdir() if p.is_file())
    cmd = [str(binary), "-fork=1", "-ignore_crashes=1", "-ignore_timeouts=1", "-ignore_ooms=1",
           f"-max_total_time={int(seconds)}", f"-max_len={max_len}", f"-timeout={timeout_s}",
           f"-rss_limit_mb={rss_limit_mb}", f"-artifact_prefix={artifacts_dir}/", *extra_args, str(corpus_dir),
           *map(str, seed_dirs)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **_SANITIZER_ENV},
                          timeout=seconds + timeout_s + 600)
    log = proc.stderr + proc.stdout
    if log_dir is not None:
        log_dir.mkdir(parents=True, exist_ok=True)
        (log_dir / f"{binary.name}-fork.log").write_text(log)
    stats = parse_log(log)
    if proc.returncode != 0 and "INFO: exiting:" not in log:  # it exits non-zero when a job crashed
        raise CheckFailed(f"{binary.name} -fork=1 failed (exit {proc.returncode}):\n{log[-3000:]}")
    run = FuzzRun(name=binary.name, seconds=float(seconds), executions=stats["executions"],
                  exec_per_s=round(stats["executions"] / seconds, 1) if seconds else 0.0,
                  coverage_edges=stats["coverage_edges"], features=stats["features"])
    for name in sorted({p.name for p in artifacts_dir.iterdir()} - before):
        kind = name.split("-", 1)[0]
        if kind == "slow":
            run.slow_units += 1
        elif kind in ARTIFACT_KINDS:
            path = artifacts_dir / name
            sig = "libFuzzer: timeout" if kind == "timeout" else signature(_replay_log(binary, path))
            run.findings.append(Finding(kind, sig, str(path)))
    files = [p for p in corpus_dir.iterdir() if p.is_file()]
    run.corpus_files, run.corpus_bytes = len(files), sum(p.stat().st_size for p in files)
    run.new_units = run.corpus_files - corpus_before
    return run


def _replay_log(binary: Path, path: Path) -> str:
    proc = subprocess.run([str(binary), str(path)], capture_output=True, text=True, timeout=300,
                          env={**os.environ, **_SANITIZER_ENV})
    return proc.stderr + proc.stdout



def replay(binary: Path, paths: list[Path], timeout_s: float = 600) -> subprocess.CompletedProcess:
    """Run inputs through a replay build (``build_replay``) or a libFuzzer binary (which then
    executes each file once)."""
    return subprocess.run([str(binary), *map(str, paths)], capture_output=True, text=True, timeout=timeout_s,
                          env={**os.environ, **_SANITIZER_ENV})


# ---- coverage ----------------------------------------------------------------------------------

def coverage(input_dirs: list[Path], work_dir: Path, files: tuple[str, ...] = READER_FILES,
             runtime_dir: Path = RUNTIME_DIR) -> dict:
    """Line coverage of ``files`` (default the reader: tpr_reader.c, tpr_flatbuf.c, tpr_runtime.c)
    when every input in ``input_dirs`` runs through the target once: clang's source-based
    coverage, ``llvm-profdata merge``, ``llvm-cov export -summary-only`` (and ``report`` text)."""
    binary = build_coverage(runtime_dir)
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    raw = work_dir / "fuzz.profraw"
    proc = subprocess.run([str(binary), *map(str, input_dirs)], capture_output=True, text=True, timeout=3600,
                          env={**os.environ, "LLVM_PROFILE_FILE": str(raw)})
    if proc.returncode != 0 or not raw.exists():
        raise CheckFailed(f"the coverage run failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    profdata = work_dir / "fuzz.profdata"
    subprocess.run([llvm_tool("llvm-profdata"), "merge", "-sparse", str(raw), "-o", str(profdata)], check=True,
                   capture_output=True)
    sources = [str(runtime_dir / f) for f in files]
    exported = subprocess.run([llvm_tool("llvm-cov"), "export", "-summary-only", str(binary),
                               f"-instr-profile={profdata}", *sources], check=True, capture_output=True, text=True).stdout
    report = subprocess.run([llvm_tool("llvm-cov"), "report", str(binary), f"-instr-profile={profdata}", *sources],
                            check=True, capture_output=True, text=True).stdout
    per_file = {}
    for entry in json.loads(exported)["data"][0]["files"]:
        if Path(entry["filename"]).name not in files:
            continue
        lines = entry["summary"]["lines"]
        per_file[Path(entry["filename"]).name] = {"lines": lines["count"], "covered": lines["covered"],
                                                  "percent": round(lines["percent"], 1)}
    total_lines = sum(v["lines"] for v in per_file.values())
    total_covered = sum(v["covered"] for v in per_file.values())
    inputs = sum(1 for d in input_dirs for p in Path(d).iterdir() if p.is_file())
    return {"files": per_file, "lines": total_lines, "covered": total_covered,
            "percent": round(100.0 * total_covered / total_lines, 1) if total_lines else 0.0,
            "inputs": inputs, "report": report}
