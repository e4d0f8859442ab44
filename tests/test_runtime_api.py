"""The runtime's C API through the host library, its memory planner, and `tinyprune inspect`."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest

from runtime_models import DIRECT, Graph, compare, direct_network, opts

pytestmark = pytest.mark.compile


@pytest.fixture(scope="module")
def network():
    return direct_network(np.random.default_rng(21))


def _leaky_relu_model() -> bytes:
    g = Graph()
    ti = g.tensor((1, 8), scale=0.1, zero_point=0)
    to = g.tensor((1, 8), scale=0.1, zero_point=0)
    g.op(98, [ti], [to], *opts("LeakyReluOptions", alpha=0.1))
    return g.build([ti], [to])


def _repack(model: bytes, edit) -> bytes:
    import flatbuffers
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as s

    m = s.ModelT.InitFromPackedBuf(bytearray(model), 0)
    edit(m)
    b = flatbuffers.Builder(1024)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


# ---- arena -------------------------------------------------------------------------------------------

def test_arena_too_small_reports_the_exact_requirement(network):
    from tinyprune import runtime

    need = runtime.required_arena_bytes(network)
    small = runtime.Model(network, arena_bytes=need - 4, check=False)
    assert runtime.status_name(small.status) == "TPR_ERR_ARENA_TOO_SMALL"
    exact = runtime.Model(network, arena_bytes=need)
    assert exact.ok
    x = np.arange(exact.inputs[0].nbytes, dtype=np.int64).astype(np.int8).reshape(exact.inputs[0].shape)
    assert [o.tolist() for o in exact.run([x])] == [o.tolist() for o in runtime.Model(network, arena_bytes=need * 2).run([x])]


def test_required_arena_with_a_tiny_work_area(network):
    """A work area too small for the plan's metadata gets the size to retry with."""
    import ctypes

    from tinyprune import runtime

    lib = runtime.load_library()
    data = ctypes.create_string_buffer(network, len(network))
    work = (ctypes.c_uint8 * 16)()
    need = ctypes.c_uint32(0)
    st = lib.tpr_required_arena_bytes(data, len(network), work, 16, ctypes.byref(need))
    assert runtime.status_name(st) == "TPR_ERR_ARENA_TOO_SMALL"
    work = (ctypes.c_uint8 * need.value)()
    retry = ctypes.c_uint32(0)
    assert lib.tpr_required_arena_bytes(data, len(network), work, need.value, ctypes.byref(retry)) == 0
    assert retry.value == runtime.required_arena_bytes(network)


def _two_fully_connected(units: int) -> bytes:
    """FULLY_CONNECTED with per-channel weights (``units`` multipliers), then one with per-tensor
    weights (one multiplier)."""
    rng = np.random.default_rng(4)
    g = Graph()
    ti = g.tensor((1, 16), scale=0.05, zero_point=3)
    w1 = g.tensor((units, 16), scale=np.linspace(0.004, 0.02, units).astype(np.float32),
                  zero_point=np.zeros(units, np.int64), data=rng.integers(-127, 128, size=(units, 16)).astype(np.int8))
    t1 = g.tensor((1, units), scale=0.2, zero_point=-5)
    w2 = g.tensor((4, units), scale=0.01, data=rng.integers(-127, 128, size=(4, units)).astype(np.int8))
    to = g.tensor((1, 4), scale=0.3, zero_point=1)
    g.op(9, [ti, w1], [t1], *opts("FullyConnectedOptions"), version=4)
    g.op(9, [t1, w2], [to], *opts("FullyConnectedOptions"), version=4)
    return g.build([ti], [to])


@pytest.mark.parametrize("units", [1, 3, 4, 7])
def test_fast_arena_holds_every_multiplier_in_groups_of_four(units):
    """tpr_fast_arena_bytes: the smallest arena + 20 bytes per four multipliers (one per output
    channel of a per-channel layer, one for a per-tensor layer)."""
    from tinyprune import runtime

    model = _two_fully_connected(units)
    multipliers = units + 1
    assert (runtime.required_arena_bytes(model, fast=True) - runtime.required_arena_bytes(model)
            == 20 * ((multipliers + 3) // 4))
    assert compare(model, samples=3, fast=True) and compare(model, samples=3)


def test_multipliers_are_read_from_the_spare_arena(network):
    """The arena beyond the smallest keeps the multipliers tpr_init computed, four per 20 bytes from
    its top down, and tpr_invoke reads them (zeroing them changes the outputs): none with 19 spare
    bytes, the first four with 20, all of them with tpr_fast_arena_bytes and more. Odd arena sizes
    keep the 4-byte grid; the outputs are TFLM's in every one."""
    import ctypes

    from tinyprune import runtime

    need, fast = runtime.required_arena_bytes(network), runtime.required_arena_bytes(network, fast=True)
    assert fast > need + 20
    rng = np.random.default_rng(0)
    m = runtime.Model(network)
    xs = [rng.integers(-128, 128, size=io.shape).astype(np.int8) for io in m.inputs]
    want = m.run(xs)
    assert compare(network, samples=2) and compare(network, samples=2, fast=True)
    for arena, read in ((need + 19, False), (need + 20, True), (fast - 4, True), (fast, True), (fast + 3, True)):
        m = runtime.Model(network, arena_bytes=arena)
        assert all(np.array_equal(a, b) for a, b in zip(m.run(xs), want)), arena
        ctypes.memset(ctypes.addressof(m._arena) + need, 0, arena - need)
        same = all(np.array_equal(a, b) for a, b in zip(m.run(xs), want))
        assert same != read, f"arena {arena} (smallest {need}, fast {fast}): multipliers read from it: {not same}"


def test_fast_arena_with_a_tiny_work_area(network):
    """As tpr_required_arena_bytes: the work size to retry with, then the fast size."""
    import ctypes

    from tinyprune import runtime

    lib = runtime.load_library()
    data = ctypes.create_string_buffer(network, len(network))
    need = ctypes.c_uint32(0)
    st = lib.tpr_fast_arena_bytes(data, len(network), (ctypes.c_uint8 * 16)(), 16, ctypes.byref(need))
    assert runtime.status_name(st) == "TPR_ERR_ARENA_TOO_SMALL"
    fast = ctypes.c_uint32(0)
    assert lib.tpr_fast_arena_bytes(data, len(network), (ctypes.c_uint8 * need.value)(), need.value,
                                    ctypes.byref(fast)) == 0
    assert fast.value == runtime.required_arena_bytes(network, fast=True) > runtime.required_arena_bytes(network)


def test_reshape_shares_its_input_memory():
    """RESHAPE (like EXPAND_DIMS and SQUEEZE) outputs alias their input: they add 4 bytes of
    metadata per tensor to the arena and no activation bytes."""
    from tinyprune import runtime

    def chain(with_reshape: bool) -> bytes:
        g = Graph()
        ti = g.tensor((1, 64), "float32")
        t1 = g.tensor((1, 64), scale=0.05, zero_point=3)
        g.op(114, [ti], [t1], *opts("QuantizeOptions"))
        if with_reshape:
            t2 = g.tensor((8, 8), scale=0.05, zero_point=3)
            g.op(22, [t1], [t2], *opts("ReshapeOptions", newShape=np.array([8, 8], np.int32)))
            t3 = g.tensor((64,), scale=0.05, zero_point=3)
            g.op(22, [t2], [t3], *opts("ReshapeOptions", newShape=np.array([64], np.int32)))
            t1 = t3
        to = g.tensor(g.tensors[t1].shape, scale=0.1, zero_point=-2)
        g.op(114, [t1], [to], *opts("QuantizeOptions"))
        return g.build([ti], [to])

    plain, reshaped = chain(False), chain(True)
    assert runtime.required_arena_bytes(reshaped) - runtime.required_arena_bytes(plain) == 2 * 4
    assert compare(reshaped, samples=3)


def test_reshape_of_a_constant_is_copied():
    """A RESHAPE whose input is a constant cannot alias it: its output gets arena bytes and the
    constant is copied on every invoke (the aliased case returns at once on invoke)."""
    g = Graph()
    ti = g.tensor((1, 8, 8), "float32")
    t1 = g.tensor((1, 8, 8), scale=0.05, zero_point=3)
    g.op(114, [ti], [t1], *opts("QuantizeOptions"))
    const = np.random.default_rng(7).integers(-128, 128, size=(1, 64)).astype(np.int8)
    tc = g.tensor((1, 64), scale=0.04, zero_point=-1, data=const)
    t2 = g.tensor((1, 8, 8), scale=0.04, zero_point=-1)
    g.op(22, [tc], [t2], *opts("ReshapeOptions", newShape=np.array([1, 8, 8], np.int32)))
    to = g.tensor((1, 8, 8), scale=0.1, zero_point=-2)
    g.op(0, [t1, t2], [to], *opts("AddOptions"))
    model = g.build([ti], [to])
    assert compare(model, samples=3)  # TFLite Micro's outputs: the constant did reach the ADD


def test_two_models_interleaved(network):
    from tinyprune import runtime

    other = DIRECT["CONV_2D"](np.random.default_rng(5))
    a1, b1 = runtime.Model(network), runtime.Model(other)
    rng = np.random.default_rng(0)
    xa = rng.integers(-128, 128, size=a1.inputs[0].shape).astype(np.int8)
    xb = rng.integers(-128, 128, size=b1.inputs[0].shape).astype(np.int8)
    a1.set_input(0, xa)
    b1.set_input(0, xb)
    b1.invoke()
    a1.invoke()
    alone_a, alone_b = runtime.Model(network).run([xa]), runtime.Model(other).run([xb])
    assert np.array_equal(a1.get_output(0), alone_a[0])
    assert np.array_equal(b1.get_output(0), alone_b[0])


def test_io_describes_the_model(network):
    from tinyprune import runtime
    from tinyprune.tflite_info import read_model

    m, info = runtime.Model(network), read_model(network)
    for ours, theirs in zip(m.inputs + m.outputs, info.inputs + info.outputs):
        assert ours.shape == theirs.shape and ours.dtype == theirs.dtype
        assert ours.zero_point == theirs.zero_points[0]
        assert ours.scale == pytest.approx(theirs.scales[0], rel=0, abs=0)


# ---- rejection ---------------------------------------------------------------------------------------

def _schema_version_2(m):
    m.version = 2


def _int16_tensor(m):
    m.subgraphs[0].tensors[0].type = 7


def _op_version_99(m):
    m.operatorCodes[0].version = 99


@pytest.mark.parametrize("edit, status, words", [
    (_schema_version_2, "TPR_ERR_SCHEMA_VERSION", "schema version"),
    (_int16_tensor, "TPR_ERR_TYPE", "not int8, int32 or float32"),
    (_op_version_99, "TPR_ERR_OP_VERSION", "version 99) version not implemented"),
])
def test_rejections_name_the_problem(network, edit, status, words):
    from tinyprune import runtime

    name, detail = runtime.check_model(_repack(network, edit))
    assert name == status and words in detail, detail


def test_unsupported_op_message():
    from tinyprune import runtime

    name, detail = runtime.check_model(_leaky_relu_model())
    assert name == "TPR_ERR_UNSUPPORTED_OP"
    assert detail.startswith("unsupported op LEAKY_RELU (builtin code 98)")
    assert runtime.op_support(98, 1) != "ok" and runtime.op_support(3, 3) == "ok"
    assert runtime.op_support(3, 7) == "unsupported operator version"


# ---- planner -------------------------------------------------------------------------------------------

PLANNER_TEST_C = r"""
#include <stdio.h>
#include "tpr_internal.h"
/* random buffer sets: no two buffers alive at the same time overlap, and the plan is at least
   the lower bound (largest sum of live sizes at one time) */
int main(void)
{
    uint32_t seed = 1, trial;
    for (trial = 0; trial < 300; ++trial) {
        uint32_t n = 1 + trial % 60, i, j, size[64], off[64], peak, lb = 0, t;
        uint16_t first[64], last[64], order[64];
        for (i = 0; i < n; ++i) {
            seed = seed * 1103515245u + 12345u; first[i] = (uint16_t)((seed >> 16) % 40);
            seed = seed * 1103515245u + 12345u; last[i] = (uint16_t)(first[i] + (seed >> 16) % 8);
            seed = seed * 1103515245u + 12345u; size[i] = 4u * (1u + (seed >> 16) % 300);
            if ((seed >> 8) % 10 == 0) first[i] = TPR_LIFE_UNUSED;
        }
        peak = tpr_plan(n, first, last, size, off, order);
        for (t = 0; t < 48; ++t) {
            uint32_t live = 0;
            for (i = 0; i < n; ++i) if (first[i] != TPR_LIFE_UNUSED && first[i] <= t && t <= last[i]) live += size[i];
            if (live > lb) lb = live;
        }
        for (i = 0; i < n; ++i) {
            if (first[i] == TPR_LIFE_UNUSED) continue;
            if (off[i] % 4 || off[i] + size[i] > peak) { printf("bad offset %u\n", trial); return 1; }
            for (j = i + 1; j < n; ++j) {
                if (first[j] == TPR_LIFE_UNUSED || first[i] > last[j] || first[j] > last[i]) continue;
                if (off[i] < off[j] + size[j] && off[j] < off[i] + size[i]) { printf("overlap %u\n", trial); return 1; }
            }
        }
        if (peak < lb) { printf("below bound %u\n", trial); return 1; }
    }
    printf("ok\n");
    return 0;
}
"""


def test_planner_never_overlaps_live_buffers(tmp_path):
    from tinyprune import runtime

    src = tmp_path / "planner_test.c"
    src.write_text(PLANNER_TEST_C)
    exe = tmp_path / "planner_test"
    cmd = [runtime._host_gcc(), "-std=c99", "-O1", "-fsanitize=address,undefined", "-fno-sanitize-recover=all",
           *(f"-I{d}" for d in runtime.include_dirs()), str(src), str(runtime.RUNTIME_DIR / "tpr_planner.c"),
           "-o", str(exe)]
    subprocess.run(cmd, check=True, capture_output=True)
    proc = subprocess.run([str(exe)], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stdout + proc.stderr


# ---- tinyprune inspect ---------------------------------------------------------------------------------

def test_inspect_valid_model(cli, tmp_path, network):
    path = tmp_path / "net.tflite"
    path.write_bytes(network)
    r = cli("inspect", path)
    assert r.code == 0, r.stderr
    for words in ("CONV_2D", "SOFTMAX", "MACs per inference", "runtime arena", "TFLM arena", "valid: the tinyprune runtime"):
        assert words in r.stdout
    r = cli("inspect", path, "--json")
    assert r.code == 0, r.stderr
    doc = json.loads(r.stdout)
    from tinyprune import runtime

    assert doc["valid"] and doc["all_ops_supported"]
    assert doc["arena_bytes"] == runtime.required_arena_bytes(network)
    assert doc["arena_bytes"] <= doc["tflm_arena_bytes_32bit"] <= doc["tflm_arena_bytes"]
    assert doc["macs"] == sum(op["macs"] for op in doc["operators"]) > 0
    assert {t["kind"] for t in doc["tensors"]} == {"input", "output", "constant", "activation"}


def test_inspect_rejects_malformed_and_unsupported(cli, tmp_path, network):
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(network[: len(network) // 3])
    r = cli("inspect", bad, "--no-tflm")
    assert r.code == 2 and "error:" in r.stderr and "truncated" in r.stderr and "Traceback" not in r.stderr
    unsupported = tmp_path / "leaky.tflite"
    unsupported.write_bytes(_leaky_relu_model())
    r = cli("inspect", unsupported, "--no-tflm")
    assert r.code == 2 and "unsupported op LEAKY_RELU (builtin code 98)" in r.stderr
    assert "LEAKY_RELU" in r.stdout  # the table still shows which operator
    r = cli("inspect", tmp_path / "missing.tflite")
    assert r.code == 2 and "does not exist" in r.stderr
