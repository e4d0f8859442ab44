"""`tinyprune arrays`: the generated C/C++ compiles with the cross compiler, carries the file's exact
bytes, and states arena sizes measured with the real TFLite Micro interpreter."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

pytestmark = [pytest.mark.compile]


@pytest.fixture(scope="module")
def small_tflite(tmp_path_factory) -> Path:
    """A small int8 model made with TensorFlow's converter in the test (conv, dense, softmax)."""
    import runtime_models

    tf = runtime_models.quiet_tensorflow()
    k = tf.keras
    inp = k.Input((8, 8, 1), batch_size=1, name="input")
    x = k.layers.Conv2D(6, 3, padding="same", activation="relu", name="conv")(inp)
    x = k.layers.Reshape((8 * 8 * 6,), name="flatten")(x)
    x = k.layers.Dense(10, name="dense")(x)
    x = k.layers.Softmax(name="softmax")(x)
    model = k.Model(inp, x, name="small")
    path = tmp_path_factory.mktemp("arrays") / "small.tflite"
    path.write_bytes(runtime_models.convert_keras(model, [(8, 8, 1)], samples=8))
    return path


def _array_bytes(cc_text: str) -> bytes:
    body = cc_text.split("= {", 1)[1].split("};", 1)[0]
    return bytes(int(h, 16) for h in re.findall(r"0x([0-9a-f]{2})", body))


def test_arrays_cli_files_compile_and_hold_the_model(cli, tmp_path, small_tflite):
    out = tmp_path / "gen"
    r = cli("arrays", small_tflite, "--out", out)
    assert r.code == 0, r.stderr
    for name in ("model_data.h", "model_data.cc", "model_ops.h", "model_io.h", "arrays_report.json"):
        assert (out / name).is_file(), name
    model = small_tflite.read_bytes()
    cc = (out / "model_data.cc").read_text()
    assert _array_bytes(cc) == model
    assert f"g_model_data_len = {len(model)}u" in cc

    # C++ (as TFLM applications compile it) and C (as the tinyprune runtime's firmware does)
    flags = ["-mcpu=cortex-m4", "-mthumb", "-Wall", "-Wextra", "-Werror", "-pedantic", "-c", "-I", str(out)]
    obj_cpp = tmp_path / "model_cpp.o"
    subprocess.run(["arm-none-eabi-g++", "-std=c++11", *flags, str(out / "model_data.cc"), "-o", str(obj_cpp)],
                   check=True, capture_output=True)
    subprocess.run(["arm-none-eabi-gcc", "-std=c99", "-x", "c", *flags, str(out / "model_data.cc"),
                    "-o", str(tmp_path / "model_c.o")], check=True, capture_output=True)
    user = tmp_path / "user.c"
    user.write_text('#include "model_data.h"\n#include "model_io.h"\n#include "model_ops.h"\n'
                    "unsigned f(void) { return g_model_data_len + MODEL_INPUT0_BYTES + MODEL_OP_COUNT"
                    " + MODEL_TFLM_ARENA_BYTES + MODEL_TPR_ARENA_BYTES; }\n")
    subprocess.run(["arm-none-eabi-gcc", "-std=c99", *flags, str(user), "-o", str(tmp_path / "user.o")],
                   check=True, capture_output=True)
    # the array is 16-byte aligned and in read-only data (flash)
    sections = subprocess.run(["arm-none-eabi-objdump", "-h", str(obj_cpp)], capture_output=True, text=True).stdout
    rodata = [line for line in sections.splitlines() if ".rodata" in line]
    assert rodata and rodata[0].split()[-1] == "2**4", sections
    symbols = subprocess.run(["arm-none-eabi-nm", "-S", str(obj_cpp)], capture_output=True, text=True).stdout
    size = next(int(line.split()[1], 16) for line in symbols.splitlines() if line.endswith(" g_model_data"))
    assert size == len(model), symbols

    report = json.loads((out / "arrays_report.json").read_text())
    assert report["model_bytes"] == len(model)
    assert report["ops"] == ["CONV_2D", "RESHAPE", "FULLY_CONNECTED", "SOFTMAX"]
    assert not report["unsupported_ops"]
    ops_h = (out / "model_ops.h").read_text()
    assert "MicroMutableOpResolver<4>" in ops_h
    for method in ("AddConv2D", "AddReshape", "AddFullyConnected", "AddSoftmax"):
        assert f"resolver.{method}()" in ops_h


def test_arena_sizes_are_tflms_own(small_tflite):
    """The host figure is the smallest arena TFLM accepts: one that size runs, 16 bytes less does not."""
    from tinyprune import runtime, tflm
    from tinyprune.arrays import make_arrays

    model = small_tflite.read_bytes()
    arrays = make_arrays(model)
    a = arrays.arena
    assert tflm._allocates_and_runs(model, a.tflm_host_bytes)
    assert not tflm._allocates_and_runs(model, a.tflm_host_bytes - 16)
    assert a.tflm_32bit_bytes < a.tflm_host_bytes  # smaller pointers on a 32-bit core
    assert a.tflm_recommended_bytes >= a.tflm_32bit_bytes + 16
    assert a.tpr_bytes == runtime.required_arena_bytes(model)
    io_h = arrays.files["model_io.h"]
    assert f"#define MODEL_TFLM_ARENA_BYTES {a.tflm_recommended_bytes}" in io_h
    assert f"#define MODEL_TFLM_ARENA_BYTES_HOST64 {a.tflm_host_bytes}" in io_h
    assert f"#define MODEL_TPR_ARENA_BYTES {a.tpr_bytes}" in io_h
    assert "#define MODEL_INPUT0_DIMS { 1, 8, 8, 1 }" in io_h


def test_io_header_quantization_matches_the_model(small_tflite):
    from tinyprune.arrays import make_arrays
    from tinyprune.tflite_info import read_model

    model = small_tflite.read_bytes()
    info = read_model(model)
    io_h = make_arrays(model).files["model_io.h"]
    scale = float(re.search(r"MODEL_OUTPUT0_SCALE ([0-9.e-]+)f", io_h).group(1))
    zp = int(re.search(r"MODEL_OUTPUT0_ZERO_POINT (-?\d+)", io_h).group(1))
    assert np.float32(scale) == np.float32(info.outputs[0].scales[0])
    assert zp == info.outputs[0].zero_points[0]


def test_tflm_method_names():
    from tinyprune.arrays import tflm_method

    assert tflm_method("DEPTHWISE_CONV_2D") == "AddDepthwiseConv2D"
    assert tflm_method("HARD_SWISH") == "AddHardSwish"
    assert tflm_method("PADV2") == "AddPadV2"
    assert tflm_method("LEAKY_RELU") == "AddLeakyRelu"


def test_arrays_bad_inputs(cli, tmp_path, small_tflite):
    not_model = tmp_path / "x.tflite"
    not_model.write_bytes(b"hello world, not a flatbuffer")
    r = cli("arrays", not_model, "--out", tmp_path / "o1")
    assert r.code == 2 and "TFL3" in r.stderr and not (tmp_path / "o1").exists()
    r = cli("arrays", tmp_path / "missing.tflite", "--out", tmp_path / "o2")
    assert r.code == 2 and "does not exist" in r.stderr
    r = cli("arrays", small_tflite, "--out", tmp_path / "o3", "--symbol", "3bad")
    assert r.code == 2 and "C identifier" in r.stderr and not (tmp_path / "o3").exists()
    truncated = tmp_path / "cut.tflite"
    truncated.write_bytes(small_tflite.read_bytes()[:200])
    r = cli("arrays", truncated, "--out", tmp_path / "o4")
    assert r.code == 2 and not (tmp_path / "o4").exists(), r.stderr
