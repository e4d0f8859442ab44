"""`tinyprune convert`: torch -> ONNX -> TensorFlow -> int8 TFLite -> arrays, each step checked against
onnxruntime, TensorFlow Lite and the tflite_micro interpreter."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

pytestmark = [pytest.mark.slow]

REPORT_KEYS = ("accuracy_float", "accuracy_onnx", "accuracy_tflite_int8", "accuracy_tflm", "model_bytes",
               "tflm_arena_bytes", "ops")


def _convert(cli, out: Path, *args: str) -> dict:
    r = cli("convert", *args, "--out", out, timeout=900)
    assert r.code == 0, r.stdout + r.stderr
    return json.loads((out / "convert_report.json").read_text())


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """digits-cnn and mnist1d-cnn with their cached trained weights, converted by the CLI."""
    import os
    import sys

    from tinyprune.train import trained_zoo_checkpoint

    base = tmp_path_factory.mktemp("convert")
    results = {}
    for name, dataset in (("digits-cnn", "digits"), ("mnist1d-cnn", "mnist1d")):
        out = base / name
        weights = trained_zoo_checkpoint(name, dataset)
        proc = subprocess.run([sys.executable, "-m", "tinyprune", "convert", name, "--weights", str(weights),
                               "--dataset", dataset, "--out", str(out)], capture_output=True, text=True,
                              timeout=900, env={**os.environ, "TINYPRUNE_PROGRESS": "0"})
        assert proc.returncode == 0, proc.stdout + proc.stderr
        results[name] = (out, json.loads((out / "convert_report.json").read_text()), proc.stdout)
    return results


@pytest.mark.parametrize("name", ["digits-cnn", "mnist1d-cnn"])
def test_int8_accuracy_within_one_point_of_float(trained, name):
    out, r, stdout = trained[name]
    for key in REPORT_KEYS:
        assert key in r, key
    assert r["accuracy_float"] > 0.85, r["accuracy_float"]
    assert abs(r["accuracy_onnx"] - r["accuracy_float"]) < 1e-9  # same float model
    assert abs(r["accuracy_tflite_int8"] - r["accuracy_float"]) <= 0.01, r
    assert abs(r["accuracy_tflm"] - r["accuracy_float"]) <= 0.01, r
    assert r["tflm_vs_tflite_ref_mismatches"] == 0
    assert r["parity_max_abs_diff"]["onnx_vs_torch"] < 1e-3
    assert r["parity_max_abs_diff"]["tensorflow_vs_onnx"] < 1e-3
    assert "Conversion summary" in stdout and "TFLite Micro" in stdout
    for f in ("model.onnx", "model_int8.tflite", "model_int8_metadata.tflite", "model_data.h", "model_data.cc",
              "model_ops.h", "model_io.h"):
        assert (out / f).is_file(), f
    assert r["model_bytes"] == (out / "model_int8.tflite").stat().st_size


@pytest.mark.parametrize("name", ["digits-cnn", "mnist1d-cnn"])
def test_tflite_is_full_integer_with_per_channel_weights(trained, name):
    from tinyprune.tflite_info import read_model

    out, r, _ = trained[name]
    info = read_model((out / "model_int8.tflite").read_bytes())
    assert info.inputs[0].dtype == "int8" and info.outputs[0].dtype == "int8"
    convs = [op for op in info.operators if op.name in ("CONV_2D", "FULLY_CONNECTED", "DEPTHWISE_CONV_2D")]
    assert convs
    for op in convs:
        weights = info.tensors[op.inputs[1]]
        assert weights.dtype == "int8"
        if op.name == "CONV_2D":
            assert len(weights.scales) == weights.shape[0] > 1  # one scale per output channel
        if len(op.inputs) > 2 and op.inputs[2] >= 0:
            assert info.tensors[op.inputs[2]].dtype == "int32"
    from tinyprune import runtime

    assert set(info.op_names) <= set(runtime.op_list()), info.op_names  # the firmware runtime runs it


def test_tflm_equals_tflite_reference_kernels_exactly(trained):
    """The oracle relation the whole firmware side relies on, checked directly on random inputs."""
    from tinyprune import tflm
    from tinyprune.quantize import tflite_run

    model = (trained["mnist1d-cnn"][0] / "model_int8.tflite").read_bytes()
    x = np.random.default_rng(1).integers(-128, 128, size=(50, 1, 40, 1), dtype=np.int8)
    from tinyprune.tflite_info import read_model

    x = x.reshape((50,) + tuple(read_model(model).inputs[0].shape[1:]))
    ours = tflm.run_batch(model, x)
    ref = tflite_run(model, x, reference_kernels=True)
    assert np.array_equal(ours.reshape(ref.shape), ref)


def test_metadata_copy(trained):
    from tinyprune.metadata import associated_files, read_metadata_json

    out, r, _ = trained["digits-cnn"]
    plain = (out / "model_int8.tflite").read_bytes()
    with_md = (out / "model_int8_metadata.tflite").read_bytes()
    assert r["metadata_bytes"] == len(with_md) - len(plain) > 0
    md = json.loads(read_metadata_json(with_md))
    assert md["name"] == "digits-cnn"
    assert md["subgraph_metadata"][0]["input_tensor_metadata"][0]["process_units"][0]["options"]["std"] == [16.0]
    assert associated_files(with_md)["labels.txt"].decode().split() == [str(i) for i in range(10)]


@pytest.mark.parametrize("name", ["digits-cnn", "mnist1d-cnn"])
def test_cost_model_flash_estimate_within_ten_percent(trained, name):
    """Feed-back of the measured size into the pruning cost model."""
    from tinyprune import cost, zoo

    out, r, _ = trained[name]
    real = (out / "model_int8.tflite").stat().st_size
    entry = zoo.get(name)
    est = cost.estimate(entry.build(), entry.input_shape)
    assert abs(est.model_bytes - real) <= 0.10 * real, (est.model_bytes, real)
    assert r["cost_estimate"]["model_bytes"] == est.model_bytes


def test_conversion_is_deterministic(cli, tmp_path, trained):
    """A second process with the same inputs writes byte-identical files."""
    from tinyprune.train import trained_zoo_checkpoint

    out, _, _ = trained["digits-cnn"]
    again = tmp_path / "again"
    _convert(cli, again, "digits-cnn", "--weights", str(trained_zoo_checkpoint("digits-cnn", "digits")),
             "--dataset", "digits")
    for f in ("model_int8.tflite", "model.onnx", "model_data.cc", "model_io.h", "model_ops.h"):
        assert (again / f).read_bytes() == (out / f).read_bytes(), f


def test_onnx_input_and_calibration_option(cli, tmp_path, trained):
    out, first, _ = trained["mnist1d-cnn"]
    r = _convert(cli, tmp_path / "from-onnx", str(out / "model.onnx"), "--dataset", "mnist1d",
                 "--calibration-samples", "50", "--limit", "200", "--float")
    assert r["calibration_samples"] == 50 and r["eval_samples"] == 200
    assert r["accuracy_float"] is None  # no torch model behind an .onnx
    assert r["accuracy_tflm"] > 0.85
    assert (tmp_path / "from-onnx" / "model_float.tflite").is_file()


def test_unsupported_onnx_op_exits_2_naming_it(cli, tmp_path):
    import onnx
    from onnx import TensorProto, helper

    node = helper.make_node("Erf", ["input"], ["output"], name="my_erf")
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [None, 1, 40])],
                              [helper.make_tensor_value_info("output", TensorProto.FLOAT, [None, 1, 40])])
    path = tmp_path / "erf.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    r = cli("convert", path, "--dataset", "mnist1d", "--out", tmp_path / "out")
    assert r.code == 2, r.stderr
    assert "Erf" in r.stderr and "my_erf" in r.stderr and "Conv" in r.stderr  # names the op, node, supported list
    assert not (tmp_path / "out").exists()


def test_convert_bad_inputs(cli, tmp_path):
    r = cli("convert", "no-such-model", "--dataset", "digits", "--out", tmp_path / "o")
    assert r.code == 2 and "unknown" in r.stderr.lower()
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not onnx")
    r = cli("convert", junk, "--dataset", "digits", "--out", tmp_path / "o")
    assert r.code == 2 and "not an ONNX model" in r.stderr
    r = cli("convert", "digits-cnn", "--dataset", "mnist1d", "--out", tmp_path / "o")
    assert r.code == 2 and "shape" in r.stderr
    r = cli("convert", "digits-cnn", "--dataset", "digits", "--calibration-samples", "0", "--out", tmp_path / "o")
    assert r.code == 2
    assert not (tmp_path / "o").exists()
