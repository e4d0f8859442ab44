"""Hostile inputs at the CLI, across every stage: each gives one message naming the problem, a
non-zero exit status (2 bad input, 1 a check failed), no traceback, and no output directory
(nor a temporary one) left behind; a user's own directory is never touched.

The table ``CASES`` covers the issue's list systematically across ``train``, ``prune``,
``convert``, ``arrays``, ``inspect``, ``build``, ``verify`` and ``deploy`` with cheap inputs
(``make_inputs``): a small valid model, small datasets broken one way each, broken board files.
Cases already tested elsewhere are left out here and named in the comments. Disk-full cases
run with a file-size limit (every write past it fails with EFBIG) and, where the machine lets
this test mount one, a 256 KiB tmpfs (ENOSPC).

``bench/bench_reliability.py`` runs the same table and prints the outcomes.
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.compile  # `build` cases run the cross compiler up to the refusal

PROJECT_DIR = Path(__file__).resolve().parents[1]
TMP_TAG = ".tinyprune-tmp-"


# ---- inputs ------------------------------------------------------------------------------------

def make_inputs(d: Path) -> Path:
    """Write every hostile (and the few valid) inputs the cases use into ``d``."""
    from zoo_tflite import zoo_tflite_models

    d.mkdir(parents=True, exist_ok=True)
    model = zoo_tflite_models()["digits-cnn"]  # input (1, 8, 8, 1) int8, 10 outputs
    (d / "digits.tflite").write_bytes(model)
    (d / "truncated.tflite").write_bytes(model[: len(model) // 3])
    rng = np.random.default_rng(0)
    (d / "garbage.tflite").write_bytes(b"\x1c\x00\x00\x00TFL3" + rng.integers(0, 256, 400, dtype=np.uint8).tobytes())
    (d / "junk.pt").write_bytes(b"this is not a PyTorch file\n")
    (d / "raises.py").write_text("def build():\n    raise RuntimeError('boom in the factory')\n")

    def arr(n, shape=(1, 8, 8)):
        return rng.random((n, *shape), dtype=np.float32)

    good = dict(x_train=arr(40), y_train=np.arange(40) % 10, x_test=arr(20), y_test=np.arange(20) % 10)
    variants = {
        "good": {},
        "nokey": {"y_test": None},
        "extra": {"x_extra": arr(3)},
        "f64": {"x_train": arr(40).astype(np.float64)},
        "nan": {"x_train": np.where(np.arange(40 * 64).reshape(40, 1, 8, 8) == 7, np.nan, arr(40)).astype(np.float32)},
        "inf": {"x_test": np.where(np.arange(20 * 64).reshape(20, 1, 8, 8) == 3, np.inf, arr(20)).astype(np.float32)},
        "shape": {"x_test": arr(20, (1, 5, 5))},
        "label15": {"y_test": np.where(np.arange(20) == 4, 15, np.arange(20) % 10)},  # above the model's 10 outputs
        "negative": {"y_train": np.where(np.arange(40) == 1, -1, np.arange(40) % 10)},
        "float-labels": {"y_train": (np.arange(40) % 10).astype(np.float32)},
    }
    for name, change in variants.items():
        arrays = {k: v for k, v in {**good, **change}.items() if v is not None}
        np.savez(d / f"{name}.npz", **arrays)
    (d / "notzip.npz").write_bytes(b"PK but not really a zip archive")
    (d / "adir.npz").mkdir(exist_ok=True)
    link = d / "dangling.npz"
    if not link.is_symlink():
        link.symlink_to(d / "gone.npz")

    import onnx
    from onnx import TensorProto, helper

    node = helper.make_node("Erf", ["input"], ["output"], name="my_erf")
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [None, 1, 8, 8])],
                              [helper.make_tensor_value_info("output", TensorProto.FLOAT, [None, 10])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(d / "erf.onnx"))

    pico = (PROJECT_DIR / "boards" / "rpi-pico.toml").read_text()
    boards = {  # directory: (board name, file text)
        "syntax": ("rpi-pico", pico + "core = [\n"),
        "field": ("rpi-pico", pico.replace('core = "cortex-m0plus"', 'core = "cortex-m5"')),
        "tiny": ("tiny-ram", pico.replace('name = "rpi-pico"', 'name = "tiny-ram"')
                 .replace('reserved_ram_bytes = "32KiB"', f"reserved_ram_bytes = {264 * 1024 - 6144}")),  # 6 KiB left
    }
    for sub, (name, text) in boards.items():
        (d / f"boards-{sub}").mkdir(exist_ok=True)
        (d / f"boards-{sub}" / f"{name}.toml").write_text(text)
    return d


# ---- cases -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Case:
    id: str
    category: str
    argv: tuple[str, ...]  # "{d}": the inputs directory, "{mine}": a directory of the user's
    code: int
    message: str  # must appear in stderr
    out: str | None = "out"  # the output directory that must not exist afterwards


D = "{d}"
DIG = f"{D}/digits.tflite"
MODEL = ("--model", "digits-cnn")


def _c(id, category, code, message, *argv, out="out"):
    return Case(id, category, tuple(argv), code, message, out)


CASES = [
    # unknown board. Elsewhere: boards (test_boards.py::test_cli_unknown_board_exit_2), prune
    # (test_prune_cli.py::test_bad_prune_input_exits_2_with_a_message), verify
    # (test_verify.py::test_cli_verify_bad_inputs), deploy (test_deploy.py::test_bad_deploy_inputs).
    _c("build-unknown-board", "unknown board", 2, "unknown board 'rpi-pic'", "build", DIG, "--board", "rpi-pic",
       "--out", "out"),
    # malformed board TOML. `boards` itself: test_boards.py::test_cli_malformed_board_file_exit_2.
    _c("prune-board-syntax", "malformed board TOML", 2, "rpi-pico.toml: not valid TOML", "prune", *MODEL,
       "--dataset", "digits", "--board", "rpi-pico", "--boards-dir", f"{D}/boards-syntax", "--out", "out"),
    _c("build-board-syntax", "malformed board TOML", 2, "not valid TOML", "build", DIG, "--board", "rpi-pico",
       "--boards-dir", f"{D}/boards-syntax", "--out", "out"),
    _c("verify-board-field", "malformed board TOML", 2, "field 'core': expected one of cortex-m0", "verify", DIG,
       "--board", "rpi-pico", "--boards-dir", f"{D}/boards-field", "--random", "2", out=None),
    _c("deploy-board-field", "malformed board TOML", 2, "field 'core'", "deploy", *MODEL, "--dataset", "digits",
       "--board", "rpi-pico", "--boards-dir", f"{D}/boards-field", "--out", "out"),
    # sizes and numbers. prune --flash 12Q / 0: test_prune_cli.py; convert --calibration-samples 0:
    # test_convert.py::test_convert_bad_inputs; train --epochs/--batch-size/--lr 0: test_prune_cli.py.
    _c("deploy-negative-flash", "negative/zero/garbage sizes", 2, "'-5K' is not a size", "deploy", *MODEL,
       "--dataset", "digits", "--board", "rpi-pico", "--flash=-5K", "--out", "out"),
    _c("prune-negative-flash-spaced", "negative/zero/garbage sizes", 2, "'-5K' is not a size", "prune", *MODEL,
       "--dataset", "digits", "--flash", "-5K", "--ram", "8K", "--out", "out"),
    _c("deploy-zero-ram", "negative/zero/garbage sizes", 2, "a size must be positive", "deploy", *MODEL,
       "--dataset", "digits", "--board", "rpi-pico", "--ram", "0", "--out", "out"),
    _c("deploy-garbage-ram", "negative/zero/garbage sizes", 2, "'lots' is not a size", "deploy", *MODEL,
       "--dataset", "digits", "--board", "rpi-pico", "--ram", "lots", "--out", "out"),
    _c("prune-huge-flash", "negative/zero/garbage sizes", 2, "more than a 32-bit microcontroller can address",
       "prune", *MODEL, "--dataset", "digits", "--flash", "99999999999G", "--ram", "8K", "--out", "out"),
    _c("deploy-zero-limit", "negative/zero/garbage sizes", 2, "--limit must be at least 1", "deploy", *MODEL,
       "--dataset", "digits", "--board", "rpi-pico", "--limit", "0", "--out", "out"),
    _c("deploy-negative-timeout", "negative/zero/garbage sizes", 2, "--timeout must be a positive number", "deploy",
       *MODEL, "--dataset", "digits", "--board", "rpi-pico", "--timeout", "-1", "--out", "out"),
    _c("verify-nan-timeout", "negative/zero/garbage sizes", 2, "--timeout must be a positive number", "verify", DIG,
       "--board", "rpi-pico", "--random", "2", "--timeout", "nan", out=None),
    _c("verify-zero-random", "negative/zero/garbage sizes", 2, "expected a positive number, got 0", "verify", DIG,
       "--board", "rpi-pico", "--random", "0", out=None),
    _c("train-infinite-lr", "negative/zero/garbage sizes", 2, "--lr must be positive, got inf", "train",
       *MODEL, "--dataset", "digits", "--lr", "inf", "--out", "out"),
    _c("prune-infinite-lr", "negative/zero/garbage sizes", 2, "--lr must be positive, got inf", "prune", *MODEL,
       "--dataset", "digits", "--flash", "48K", "--ram", "8K", "--lr", "inf", "--out", "out"),
    # missing or unreadable dataset (load_npz itself: test_data.py)
    _c("train-missing-dataset", "missing/unreadable dataset", 2, "missing.npz does not exist", "train", *MODEL,
       "--dataset", f"{D}/missing.npz", "--out", "out"),
    _c("prune-dataset-is-a-directory", "missing/unreadable dataset", 2, "adir.npz is not a file", "prune", *MODEL,
       "--dataset", f"{D}/adir.npz", "--flash", "48K", "--ram", "8K", "--out", "out"),
    _c("convert-dataset-not-a-zip", "missing/unreadable dataset", 2, "is not a readable .npz file", "convert",
       "digits-cnn", "--dataset", f"{D}/notzip.npz", "--out", "out"),
    _c("verify-dataset-dangling-link", "missing/unreadable dataset", 2, "dangling.npz does not exist", "verify", DIG,
       "--board", "rpi-pico", "--dataset", f"{D}/dangling.npz", out=None),
    _c("deploy-unknown-dataset", "missing/unreadable dataset", 2, "unknown dataset 'cifar'", "deploy", *MODEL,
       "--dataset", "cifar", "--board", "rpi-pico", "--out", "out"),
    # .npz with wrong keys, shapes, dtypes, NaN/Inf, labels out of range
    _c("deploy-npz-missing-key", "bad .npz", 2, "lacks y_test", "deploy", *MODEL, "--dataset", f"{D}/nokey.npz",
       "--board", "rpi-pico", "--out", "out"),
    _c("train-npz-extra-key", "bad .npz", 2, "unexpected key(s) x_extra", "train", *MODEL, "--dataset",
       f"{D}/extra.npz", "--out", "out"),
    _c("prune-npz-float64", "bad .npz", 2, "x_train has dtype float64, expected float32", "prune", *MODEL,
       "--dataset", f"{D}/f64.npz", "--flash", "48K", "--ram", "8K", "--out", "out"),
    _c("deploy-npz-nan", "bad .npz", 2, "x_train contains 1 NaN or infinite value", "deploy", *MODEL, "--dataset",
       f"{D}/nan.npz", "--board", "rpi-pico", "--out", "out"),
    _c("convert-npz-inf", "bad .npz", 2, "x_test contains 1 NaN or infinite value", "convert", "digits-cnn",
       "--dataset", f"{D}/inf.npz", "--out", "out"),
    _c("verify-npz-shape", "bad .npz", 2, "x_test samples have shape (1, 5, 5)", "verify", DIG, "--board",
       "rpi-pico", "--dataset", f"{D}/shape.npz", out=None),
    _c("train-npz-float-labels", "bad .npz", 2, "y_train has dtype float32; expected integer", "train", *MODEL,
       "--dataset", f"{D}/float-labels.npz", "--out", "out"),
    _c("prune-npz-negative-label", "bad .npz", 2, "negative label (-1)", "prune", *MODEL, "--dataset",
       f"{D}/negative.npz", "--flash", "48K", "--ram", "8K", "--out", "out"),
    _c("train-labels-beyond-outputs", "bad .npz", 2, "outputs shape (10,) but", "train",
       *MODEL, "--dataset", f"{D}/label15.npz", "--out", "out"),
    _c("convert-labels-beyond-outputs", "bad .npz", 2, "labels go up to 15 but the model has 10 outputs", "convert",
       "digits-cnn", "--dataset", f"{D}/label15.npz", "--out", "out"),
    _c("verify-labels-beyond-outputs", "bad .npz", 2, "labels go up to 15 but the model has 10 outputs", "verify",
       DIG, "--board", "rpi-pico", "--dataset", f"{D}/label15.npz", out=None),
    # a model file that is not a model. arrays/verify with a non-TFL3 file: test_arrays.py::test_arrays_bad_inputs,
    # test_verify.py::test_cli_verify_bad_inputs.
    _c("train-junk-model", "not a model", 2, "junk.pt is not a saved PyTorch model", "train", "--model",
       f"{D}/junk.pt", "--dataset", "digits", "--out", "out"),
    _c("convert-junk-model", "not a model", 2, "junk.pt is not a saved PyTorch model", "convert", f"{D}/junk.pt",
       "--dataset", "digits", "--out", "out"),
    _c("deploy-tflite-as-torch-model", "not a model", 2, "digits.tflite is not a saved PyTorch model", "deploy",
       "--model", DIG, "--dataset", "digits", "--board", "rpi-pico", "--out", "out"),
    _c("inspect-junk", "not a model", 2, "not a TFLite model", "inspect", f"{D}/junk.pt", out=None),
    _c("build-junk", "not a model", 2, "is not a TFLite model (no 'TFL3' identifier)", "build", f"{D}/junk.pt",
       "--board", "rpi-pico", "--out", "out"),
    _c("arrays-garbage-flatbuffer", "not a model", 2, "the micro runtime rejects the model: model truncated", "arrays",
       f"{D}/garbage.tflite", "--out", "out"),
    _c("inspect-garbage-flatbuffer", "not a model", 2, "model truncated (offset outside the data)", "inspect",
       f"{D}/garbage.tflite", out=None),
    _c("verify-garbage-flatbuffer", "not a model", 2, "the micro runtime rejects the model: model truncated", "verify",
       f"{D}/garbage.tflite", "--board", "rpi-pico", "--random", "2", out=None),
    # .py:factory that raises (load_model itself: test_models.py::test_model_spec_errors)
    _c("train-factory-raises", ".py:factory raises", 2, "the factory raised RuntimeError: boom in the factory",
       "train", "--model", f"{D}/raises.py:build", "--dataset", "digits", "--out", "out"),
    _c("prune-factory-raises", ".py:factory raises", 2, "the factory raised RuntimeError", "prune", "--model",
       f"{D}/raises.py:build", "--dataset", "digits", "--flash", "48K", "--ram", "8K", "--out", "out"),
    _c("deploy-factory-raises", ".py:factory raises", 2, "the factory raised RuntimeError", "deploy", "--model",
       f"{D}/raises.py:build", "--dataset", "digits", "--board", "rpi-pico", "--out", "out"),
    # an ONNX with an unsupported op: convert names op and node in
    # test_convert.py::test_unsupported_onnx_op_exits_2_naming_it; the stages that take torch models say so:
    _c("deploy-onnx-model", "unsupported ONNX", 2, "erf.onnx is not a saved PyTorch model", "deploy", "--model",
       f"{D}/erf.onnx", "--dataset", "digits", "--board", "rpi-pico", "--out", "out"),
    # a truncated .tflite (arrays: test_arrays.py::test_arrays_bad_inputs)
    _c("inspect-truncated", "truncated .tflite", 2, "model truncated (offset outside the data)", "inspect",
       f"{D}/truncated.tflite", "--no-tflm", out=None),
    _c("build-truncated", "truncated .tflite", 2, "the micro runtime rejects the model: model truncated", "build",
       f"{D}/truncated.tflite", "--board", "rpi-pico", "--out", "out"),
    _c("verify-truncated", "truncated .tflite", 2, "the micro runtime rejects the model: model truncated", "verify",
       f"{D}/truncated.tflite", "--board", "rpi-pico", "--random", "2", out=None),
    # a budget no pruning can reach: prune (test_prune_cli.py::test_impossible_budget_exits_2_before_any_work)
    # and deploy (test_deploy.py::test_impossible_budget_exits_2_before_any_work); a model whose arena is
    # more than a board's RAM is refused before compiling:
    _c("build-arena-over-ram", "budget", 1, "more than tiny-ram's RAM budget of 6144 bytes", "build", DIG,
       "--board", "tiny-ram", "--boards-dir", f"{D}/boards-tiny", "--out", "out"),
    # an output directory that exists (prune: test_prune_cli.py::test_an_existing_out_is_never_replaced_without_force)
    _c("train-out-exists", "output exists", 2, "already exists", "train", *MODEL, "--dataset", "digits",
       "--epochs", "1", "--out", "{mine}", out=None),
    _c("convert-out-exists", "output exists", 2, "already exists", "convert", "digits-cnn", "--dataset", "digits",
       "--out", "{mine}", out=None),
    _c("build-out-exists", "output exists", 2, "already exists", "build", DIG, "--board", "rpi-pico", "--out",
       "{mine}", out=None),
    _c("arrays-force-foreign-dir", "output exists", 2, "was not created by tinyprune; refusing", "arrays", DIG,
       "--out", "{mine}", "--force", out=None),
    _c("deploy-force-foreign-dir", "output exists", 2, "was not created by tinyprune; refusing", "deploy", *MODEL,
       "--dataset", "digits", "--board", "rpi-pico", "--out", "{mine}", "--force", out=None),
    _c("verify-keep-foreign-dir", "output exists", 2, "already exists", "verify", DIG, "--board", "rpi-pico",
       "--random", "2", "--keep", "{mine}", out=None),
    _c("arrays-out-under-a-file", "output exists", 2, "is not a directory", "arrays", DIG, "--out",
       "{mine}/notes.txt/out", out=None),
    _c("arrays-json-in-missing-dir", "output exists", 2, "directory nodir does not exist", "arrays", DIG,
       "--out", "out", "--json", "nodir/r.json"),
    _c("deploy-json-is-a-directory", "output exists", 2, "is a directory", "deploy", *MODEL, "--dataset", "digits",
       "--board", "rpi-pico", "--out", "out", "--json", "{mine}"),
]


# ---- running -----------------------------------------------------------------------------------

def _argv(case: Case, d: Path, mine: Path) -> list[str]:
    return [a.replace("{d}", str(d)).replace("{mine}", str(mine)) for a in case.argv]


def _mine(cwd: Path) -> Path:
    mine = cwd / "mine"
    mine.mkdir(exist_ok=True)
    (mine / "notes.txt").write_text("a user's own work\n")
    return mine


def _check_nothing_left(cwd: Path, case: Case, mine: Path) -> None:
    if case.out:
        assert not (cwd / case.out).exists(), f"{case.out} was left behind"
    assert not [p.name for p in cwd.iterdir() if TMP_TAG in p.name], "a temporary directory was left behind"
    assert [p.name for p in mine.iterdir()] == ["notes.txt"] and (mine / "notes.txt").read_text() == "a user's own work\n"


# One process runs the whole table (tinyprune.cli.main per case, each in a directory of its own),
# so the cases share one start-up of torch instead of paying it sixty times; REAL_PROCESS cases
# also run as separate `python -m tinyprune` processes through the cli fixture.
REAL_PROCESS = ("build-unknown-board", "prune-board-syntax", "train-missing-dataset", "convert-labels-beyond-outputs",
                "arrays-garbage-flatbuffer", "inspect-truncated", "verify-labels-beyond-outputs",
                "deploy-negative-timeout")


def run_table(cases: list[Case], inputs: Path, base: Path) -> dict[str, dict]:
    """Run ``cases`` in one child process; per case: exit status, stdout, stderr, its directory."""
    import json

    spec = base / "cases.json"
    spec.write_text(json.dumps({"inputs": str(inputs), "base": str(base),
                                "cases": [{"id": c.id, "argv": list(c.argv)} for c in cases]}))
    proc = subprocess.run([sys.executable, __file__, "--table", str(spec)], capture_output=True, text=True,
                          timeout=1800, env={**os.environ, "TINYPRUNE_PROGRESS": "0"},
                          cwd=base)
    results = base / "results.json"
    assert proc.returncode == 0 and results.exists(), proc.stdout[-2000:] + proc.stderr[-4000:]
    return json.loads(results.read_text())


def _table_main(spec_path: str) -> int:
    import contextlib
    import io
    import json
    import traceback

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from tinyprune.cli import main

    spec = json.loads(Path(spec_path).read_text())
    results = {}
    for c in spec["cases"]:
        cwd = Path(spec["base"]) / c["id"]
        cwd.mkdir(parents=True, exist_ok=True)
        mine = _mine(cwd)
        argv = [a.replace("{d}", spec["inputs"]).replace("{mine}", str(mine)) for a in c["argv"]]
        os.chdir(cwd)
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(argv)
            except SystemExit as exc:  # argparse errors
                code = exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 2
            except BaseException:  # what a user would see as a traceback
                traceback.print_exc(file=err)
                code = "traceback"
        results[c["id"]] = {"code": code, "stdout": out.getvalue(), "stderr": err.getvalue(), "cwd": str(cwd)}
    Path(spec["base"], "results.json").write_text(json.dumps(results))
    return 0


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    return make_inputs(tmp_path_factory.mktemp("hostile"))


@pytest.fixture(scope="module")
def table(tmp_path_factory, inputs):
    return run_table(CASES, inputs, tmp_path_factory.mktemp("table"))


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_input(table, case):
    r = table[case.id]
    cwd = Path(r["cwd"])
    assert r["code"] == case.code, (r["code"], r["stdout"][-1500:], r["stderr"][-3000:])
    assert case.message in r["stderr"], r["stderr"][-3000:]
    assert "Traceback" not in r["stderr"] and "error:" in r["stderr"]
    _check_nothing_left(cwd, case, cwd / "mine")


@pytest.mark.parametrize("case", [c for c in CASES if c.id in REAL_PROCESS], ids=lambda c: c.id)
def test_hostile_input_in_a_real_process(cli, tmp_path, inputs, case):
    mine = _mine(tmp_path)
    r = cli(*_argv(case, inputs, mine))
    assert r.code == case.code, (r.code, r.stdout[-1500:], r.stderr[-3000:])
    assert case.message in r.stderr and "Traceback" not in r.stderr, r.stderr[-3000:]
    _check_nothing_left(tmp_path, case, mine)


def test_force_replaces_only_an_earlier_tinyprune_output(cli, tmp_path, inputs):
    """The other side of the rule: --force replaces a directory tinyprune wrote."""
    r = cli("arrays", inputs / "digits.tflite", "--out", "out")
    assert r.code == 0, r.stderr
    (tmp_path / "out" / "model_data.cc").write_text("stale")
    r = cli("arrays", inputs / "digits.tflite", "--out", "out")
    assert r.code == 2 and "already exists" in r.stderr and "--force" in r.stderr
    r = cli("arrays", inputs / "digits.tflite", "--out", "out", "--force")
    assert r.code == 0, r.stderr
    assert (tmp_path / "out" / "model_data.cc").read_text() != "stale"
    assert not [p.name for p in tmp_path.iterdir() if TMP_TAG in p.name]


def _limited(limit_bytes: int):
    def preexec():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))

    return preexec


def test_disk_full_while_writing_leaves_no_output(tmp_path, inputs):
    """Every write past 64 KiB fails (RLIMIT_FSIZE: EFBIG, as a full disk fails with ENOSPC):
    model_data.cc is larger, so the stage fails while writing its output."""
    mine = _mine(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "tinyprune", "arrays", str(inputs / "digits.tflite"), "--out", "out"],
                          cwd=tmp_path, capture_output=True, text=True, preexec_fn=_limited(64 * 1024),
                          env={**os.environ, "TINYPRUNE_PROGRESS": "0"}, timeout=300)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "cannot write out: File too large; nothing was written" in proc.stderr
    assert "Traceback" not in proc.stderr
    _check_nothing_left(tmp_path, Case("x", "", (), 2, ""), mine)


def test_disk_full_keeps_the_previous_output(tmp_path, inputs):
    """With --force over an earlier output, a failed write leaves the earlier output as it was."""
    from tinyprune.outdir import MARKER

    out = tmp_path / "out"
    out.mkdir()
    (out / MARKER).write_text("")
    (out / "model_data.cc").write_text("earlier output\n")
    proc = subprocess.run([sys.executable, "-m", "tinyprune", "arrays", str(inputs / "digits.tflite"), "--out", "out",
                           "--force"], cwd=tmp_path, capture_output=True, text=True, preexec_fn=_limited(64 * 1024),
                          env={**os.environ, "TINYPRUNE_PROGRESS": "0"}, timeout=300)
    assert proc.returncode == 2 and "cannot write out" in proc.stderr, proc.stderr[-3000:]
    assert sorted(p.name for p in out.iterdir()) == [MARKER, "model_data.cc"]
    assert (out / "model_data.cc").read_text() == "earlier output\n"
    assert not [p.name for p in tmp_path.iterdir() if TMP_TAG in p.name]


@pytest.fixture
def tiny_tmpfs(tmp_path):
    mount = tmp_path / "small"
    mount.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tinyprune-test", str(mount)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], capture_output=True)


def test_disk_full_on_a_tiny_file_system(cli, tmp_path, inputs, tiny_tmpfs):
    """A real full disk (ENOSPC): a 256 KiB tmpfs, and arrays of a 54 KB model need more."""
    r = cli("arrays", inputs / "digits.tflite", "--out", tiny_tmpfs / "out")
    assert r.code == 2 and "No space left on device" in r.stderr and "Traceback" not in r.stderr, r.stderr[-3000:]
    assert list(tiny_tmpfs.iterdir()) == []


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--table":
        sys.exit(_table_main(sys.argv[2]))
    print("usage: test_hostile.py --table CASES.json (run by the tests and bench/bench_reliability.py)")
    sys.exit(2)
