"""libFuzzer on the runtime's model reader and invoke path (tinyprune/fuzz.py).

The fuzz target (firmware/runtime/host/fuzz_model.c) checks the trust model's invariants
on every input under AddressSanitizer and UndefinedBehaviorSanitizer: model, planning work area
and arena in heap blocks of exactly their size, tpr_required_arena_bytes and tpr_init agreeing,
inputs/outputs inside the arena, outputs independent of what the arena held before.

* a short pass of both fuzzers (byte-level and structural mutations) finds nothing;
* every input in tests/data/fuzz-regressions/ (crashes found earlier, minimized) replays
  cleanly, through the plain replay build (gcc) and the libFuzzer build (clang);
* the seed corpus (zoo models and per-operator models) replays cleanly: models that pass
  the reader run without touching memory outside the model or the arena;
* the coverage tooling works and the seeds alone cover most of the reader.

Skipped with the reason when clang/libFuzzer is not installed (`make setup` installs them).
The long run is `make fuzz FUZZ_SECONDS=N` (scripts/fuzz.py).
"""

from __future__ import annotations

import pytest

from tinyprune import fuzz
from tinyprune.errors import ToolMissing

pytestmark = pytest.mark.compile

SHORT_PASS_SECONDS = 30  # per fuzzer; the two run one after the other (about a minute in CI)
REGRESSIONS = sorted(p for p in fuzz.REGRESSIONS_DIR.glob("*") if p.is_file() and p.suffix != ".md") \
    if fuzz.REGRESSIONS_DIR.is_dir() else []
# Regression inputs whose bug is not fixed yet: name -> (reason, the replays that still fail: "gcc"
# and/or "libfuzzer"). Those replays are expected failures until the fix lands (then they XPASS:
# remove the entry).
KNOWN_FAILURES: dict[str, tuple[str, tuple[str, ...]]] = {}


def _clang_or_skip():
    try:
        return fuzz.find_clang()
    except ToolMissing as exc:
        pytest.skip(f"{exc.message}; {exc.hint}")


@pytest.fixture(scope="module")
def fuzzers():
    _clang_or_skip()
    return {name: fuzz.build_fuzzer(name) for name in fuzz.FUZZERS}


@pytest.fixture(scope="module")
def replay_gcc():
    return fuzz.build_replay()


@pytest.fixture(scope="module")
def seeds(tmp_path_factory):
    out = tmp_path_factory.mktemp("seeds")
    info = fuzz.seed_corpus(out)
    assert info["sources"]["zoo"] >= 6 and info["sources"]["direct"] >= 40
    return out


def _clean(proc) -> None:
    text = proc.stderr + proc.stdout
    assert "Sanitizer" not in text and "runtime error" not in text, text[-4000:]
    assert proc.returncode == 0, text[-4000:]


def _known_signatures(binary) -> set[str]:
    """What the not-yet-fixed regression inputs report (a fuzz pass may well hit them again)."""
    return {fuzz.signature(fuzz.replay(binary, [fuzz.REGRESSIONS_DIR / name]).stderr)
            for name, (_, failing) in KNOWN_FAILURES.items() if "libfuzzer" in failing}


@pytest.mark.slow
def test_short_fuzz_pass_finds_nothing_new(fuzzers, seeds, tmp_path):
    """Both fuzzers, one after the other, in libFuzzer's -fork mode (a finding does not stop the
    pass). Any finding fails the test unless it is a known, not yet fixed bug (KNOWN_FAILURES)."""
    known = _known_signatures(fuzzers["fuzz_model"])
    runs = {}
    for name, binary in fuzzers.items():
        runs[name] = fuzz.run_fuzzer(binary, tmp_path / f"corpus-{name}", [seeds], SHORT_PASS_SECONDS,
                                     tmp_path / f"findings-{name}", log_dir=tmp_path / "logs", keep_going=True)
    for name, run in runs.items():
        new = [(f.kind, f.signature, f.artifact) for f in run.findings if f.signature not in known]
        assert not new, (name, new)
        assert run.executions > 1000, (name, run.to_dict())
        assert run.coverage_edges > 300 and run.corpus_files > 0
    # (execution counts depend on the machine's load: in `make test` other workers share the cores)


def test_seed_corpus_replays_clean(replay_gcc, seeds):
    proc = fuzz.replay(replay_gcc, [seeds])
    _clean(proc)
    assert proc.stdout.count("ok ") == sum(1 for p in seeds.iterdir() if p.is_file())


def _regression_params(variant: str):
    if not REGRESSIONS:
        return [pytest.param(None, marks=pytest.mark.skip(reason="tests/data/fuzz-regressions/ holds no inputs"))]
    params = []
    for p in REGRESSIONS:
        reason, failing = KNOWN_FAILURES.get(p.name, ("", ()))
        marks = [pytest.mark.xfail(reason=reason, strict=False)] if variant in failing else []
        params.append(pytest.param(p, id=p.name, marks=marks))
    return params


@pytest.mark.parametrize("path", _regression_params("gcc"))
def test_regression_input_replays_clean(path, replay_gcc):
    _clean(fuzz.replay(replay_gcc, [path]))


@pytest.mark.parametrize("path", _regression_params("libfuzzer"))
def test_regression_input_replays_clean_under_libfuzzer(path, fuzzers):
    _clean(fuzz.replay(fuzzers["fuzz_model"], [path]))


@pytest.mark.parametrize("path", _regression_params("python"))
def test_python_reader_agrees_with_the_runtime_on_regression_inputs(path):
    """tinyprune's own reader (inspect, verify, arrays) accepts what tpr_init accepts: both read
    only the tensors an operator or the graph uses, so a corrupt unused one stops neither."""
    from tinyprune import runtime
    from tinyprune.errors import BadInput
    from tinyprune.tflite_info import read_model

    data = path.read_bytes()
    try:
        runtime.required_arena_bytes(data)
    except BadInput as exc:
        if getattr(exc, "status_name", "") in ("TPR_ERR_SHAPE", "TPR_ERR_QUANT", "TPR_ERR_OPTIONS") \
                and "operator" in exc.detail:
            # an operator's kernel rejected its shapes, quantization or options, which tinyprune's
            # reader does not check: it may read the model
            try:
                read_model(data)
            except BadInput:
                pass
            return
        with pytest.raises(BadInput):
            read_model(data)
        return
    info = read_model(data)
    assert info.operators and all(0 <= t.index < len(info.tensors) for t in info.inputs + info.outputs)


def test_reader_coverage_from_the_seeds(seeds, tmp_path):
    _clang_or_skip()
    try:
        cov = fuzz.coverage([seeds], tmp_path)
    except ToolMissing as exc:
        pytest.skip(f"{exc.message}; {exc.hint}")
    assert set(cov["files"]) == set(fuzz.READER_FILES)
    assert cov["lines"] > 500 and cov["percent"] > 60, cov
    assert "tpr_reader.c" in cov["report"]


def test_signature_and_log_parsing():
    log = ("#2\tINITED cov: 10 ft: 20 corp: 3/1Kb exec/s: 0 rss: 30Mb\n"
           "#5000\tNEW    cov: 120 ft: 300 corp: 40/9Kb lim: 4096 exec/s: 2500 rss: 41Mb L: 9/40 MS: 1 ...\n"
           "==1== ERROR: AddressSanitizer: heap-buffer-overflow on address 0x1\n"
           "    #0 0x55 in tpr_fb_scalar /w/firmware/runtime/tpr_flatbuf.c:90:5\n"
           "SUMMARY: AddressSanitizer: heap-buffer-overflow /w/firmware/runtime/tpr_flatbuf.c:90:5 in tpr_fb_scalar\n"
           "stat::number_of_executed_units: 5123\nstat::average_exec_per_sec:     2561\nstat::peak_rss_mb: 44\n")
    stats = fuzz.parse_log(log)
    assert stats["executions"] == 5123 and stats["coverage_edges"] == 120 and stats["peak_rss_mb"] == 44
    assert fuzz.signature(log) == ("AddressSanitizer: heap-buffer-overflow /w/firmware/runtime/tpr_flatbuf.c:90:5 "
                                   "in tpr_fb_scalar")
    ub = "/w/firmware/runtime/kernels/add.c:12:9: runtime error: signed integer overflow: 1 + 2147483647\n"
    assert fuzz.signature(ub) == "UndefinedBehaviorSanitizer: signed integer overflow at add.c:12:9"
