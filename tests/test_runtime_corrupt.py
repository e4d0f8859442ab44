"""Untrusted model bytes: corrupt models give an error status, never a crash or an out-of-bounds
access. Checked with the host driver (firmware/runtime/host/tpr_run.c) built with
AddressSanitizer and UndefinedBehaviorSanitizer (-fno-sanitize-recover: the first finding aborts
the run). The driver copies each file into a buffer of exactly its size and runs the model in an
arena of exactly the size the runtime asked for, so a read or write past either is caught.

Corruptions of several valid models: truncation at every 1/16th of the length, random byte
flips (the models that still validate are also run), a wrong file identifier, out-of-range
buffer/opcode/tensor indices, and every 32-bit word of the header region set to 0xFFFFFFFF."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest

from runtime_models import DIRECT, direct_network

pytestmark = pytest.mark.compile


def _schema():
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as s

    return s


def _repack(model: bytes, edit) -> bytes:
    import flatbuffers

    s = _schema()
    m = s.ModelT.InitFromPackedBuf(bytearray(model), 0)
    edit(m)
    b = flatbuffers.Builder(1024)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def _bad_buffer_index(m):
    tensors = m.subgraphs[0].tensors
    t = next((t for t in tensors if t.buffer > 0), tensors[0])
    t.buffer = len(m.buffers) + 7


def _huge_buffer_index(m):
    m.subgraphs[0].tensors[0].buffer = 0xFFFFFFF0


def _bad_opcode_index(m):
    m.subgraphs[0].operators[0].opcodeIndex = len(m.operatorCodes) + 3


def _bad_tensor_index(m):
    m.subgraphs[0].operators[-1].inputs[0] = len(m.subgraphs[0].tensors) + 100


def _negative_tensor_index(m):
    m.subgraphs[0].operators[0].outputs[0] = -5


def _bad_graph_output(m):
    m.subgraphs[0].outputs[0] = len(m.subgraphs[0].tensors)


def _negative_dim(m):
    m.subgraphs[0].tensors[0].shape[0] = -3


def _huge_dims(m):
    t = m.subgraphs[0].tensors[0]
    t.shape = np.array([65536, 65536, 65536, 1], dtype=np.int32)


EDITS = {
    "bad-buffer-index": (_bad_buffer_index, "TPR_ERR_INDEX"),
    "huge-buffer-index": (_huge_buffer_index, "TPR_ERR_INDEX"),
    "bad-opcode-index": (_bad_opcode_index, "TPR_ERR_INDEX"),
    "bad-tensor-index": (_bad_tensor_index, "TPR_ERR_INDEX"),
    "negative-tensor-index": (_negative_tensor_index, "TPR_ERR_INDEX"),
    "bad-graph-output": (_bad_graph_output, "TPR_ERR_INDEX"),
    "negative-dim": (_negative_dim, "TPR_ERR_SHAPE"),
    "huge-dims": (_huge_dims, "TPR_ERR_LIMIT"),
}


def _base_models() -> dict[str, bytes]:
    rng = np.random.default_rng(11)
    models = {"network": direct_network(rng)}
    for name, build in DIRECT.items():
        models[name.lower()] = build(rng)
    return models


@pytest.fixture(scope="module")
def driver():
    from tinyprune.runtime import host_driver

    return host_driver(sanitize=True)


def _run(driver, paths, invoke=2, max_arena=200_000) -> dict[str, tuple[str, str]]:
    proc = subprocess.run([str(driver), "--invoke", str(invoke), "--max-arena", str(max_arena), *map(str, paths)],
                          capture_output=True, text=True, timeout=600)
    assert "Sanitizer" not in proc.stderr and "runtime error" not in proc.stderr, proc.stderr[-6000:]
    assert proc.returncode == 0, proc.stderr[-6000:]
    results = {}
    for line in proc.stdout.splitlines():
        path, status, _arena, detail = line.split(" ", 3)
        results[path] = (status, detail)
    assert len(results) == len(paths), proc.stdout[-2000:]
    return results


def test_corrupt_models_are_rejected_without_memory_errors(tmp_path, driver):
    rng = np.random.default_rng(2024)
    expect: dict[str, str | None] = {}  # path -> required status (None: any)
    paths = []

    def add(name: str, data: bytes, status: str | None):
        p = tmp_path / f"{name}.tflite"
        p.write_bytes(data)
        paths.append(p)
        expect[str(p)] = status

    for base_name, model in _base_models().items():
        add(f"{base_name}-valid", model, "TPR_OK")
        n = len(model)
        for k in range(16):  # truncated at every 1/16th
            add(f"{base_name}-trunc{k:02d}", model[: n * k // 16], "not-ok")
        bad_id = bytearray(model)
        bad_id[4:8] = b"TFL2"
        add(f"{base_name}-identifier", bytes(bad_id), "TPR_ERR_IDENTIFIER")
        for edit_name, (edit, status) in EDITS.items():
            add(f"{base_name}-{edit_name}", _repack(model, edit), status)
        for k in range(0, min(n, 256) - 3, 4):  # each header word set to all ones
            b = bytearray(model)
            b[k:k + 4] = b"\xff\xff\xff\xff"
            add(f"{base_name}-word{k:03d}", bytes(b), None)
        for k in range(40):  # random byte flips
            b = bytearray(model)
            for _ in range(int(rng.integers(1, 5))):
                b[int(rng.integers(0, n))] ^= int(rng.integers(1, 256))
            add(f"{base_name}-flip{k:02d}", bytes(b), None)

    results = _run(driver, paths)
    wrong = []
    for path, want in expect.items():
        status, detail = results[path]
        if want == "not-ok" and status == "TPR_OK" or want not in (None, "not-ok") and status != want:
            wrong.append(f"{path.rsplit('/', 1)[-1]}: {status} ({detail}), expected {want}")
    assert not wrong, "\n".join(wrong[:20])
    rejected = sum(1 for s, _ in results.values() if s != "TPR_OK")
    assert rejected > len(paths) // 3


def test_every_error_has_a_message(tmp_path, driver):
    """A detail message names the problem (and the operator or tensor where there is one)."""
    model = _base_models()["network"]
    p = tmp_path / "m.tflite"
    p.write_bytes(_repack(model, _bad_buffer_index))
    status, detail = _run(driver, [p])[str(p)]
    assert status == "TPR_ERR_INDEX"
    assert "tensor" in detail and "buffer index out of range" in detail


def test_concatenation_of_one_input_repeated_until_the_sizes_wrap(tmp_path, driver):
    """4096 x 2^20 + 1 axis elements wrap a 32-bit sum to the output's 1: rejected, not copied."""
    from runtime_models import Graph, opts

    g = Graph()
    big = g.tensor((1 << 20,), scale=0.1, zero_point=0)
    one = g.tensor((1,), scale=0.1, zero_point=0)
    out = g.tensor((1,), scale=0.1, zero_point=0)
    t, o = opts("ConcatenationOptions", axis=0)
    g.op(2, [big] * 4096 + [one], [out], t, o, version=2)
    p = tmp_path / "concat-wrap.tflite"
    p.write_bytes(g.build([big, one], [out]))
    status, detail = _run(driver, [p])[str(p)]
    assert status == "TPR_ERR_SHAPE" and "axis sizes do not add up" in detail, detail


def test_fully_connected_whose_batches_times_depth_wraps(tmp_path, driver):
    """65536 batches x 65537 deep is 2^32 + 65536: a 32-bit product wraps to the input's 65536
    elements. Rejected, not run (the loops would read 4 GB past the input)."""
    from runtime_models import Graph, opts

    g = Graph()
    ti = g.tensor((1 << 16,), scale=0.1, zero_point=0)
    tw = g.tensor((1, (1 << 16) + 1), scale=0.01, data=np.ones((1, (1 << 16) + 1), np.int8))
    to = g.tensor((1 << 16, 1), scale=0.5, zero_point=0)
    t, o = opts("FullyConnectedOptions")
    g.op(9, [ti, tw], [to], t, o, version=6)
    p = tmp_path / "fc-wrap.tflite"
    p.write_bytes(g.build([ti], [to]))
    status, detail = _run(driver, [p])[str(p)]
    assert status == "TPR_ERR_SHAPE" and "shapes disagree" in detail, detail


def _conv_with_unrelated_large_steps(in_shape, strides, dil, depthwise):
    """A 1x1 CONV_2D or DEPTHWISE_CONV_2D (SAME) whose stride or dilation times a large width or
    channel count exceeds int32: the step is never taken (the second position or kernel row lies
    outside the input), and TFLite Micro accepts the model."""
    from runtime_models import Graph, opts

    g = Graph()
    n, h, w, cin = in_shape
    (sh, sw), (dh, dw) = strides, dil
    oh, ow = (h + sh - 1) // sh, (w + sw - 1) // sw
    ti = g.tensor(in_shape, scale=0.1, zero_point=0)
    fields = dict(padding=0, strideW=sw, strideH=sh, dilationWFactor=dw, dilationHFactor=dh)
    if depthwise:
        tw = g.tensor((1, 1, 1, cin), scale=np.full(cin, 0.01, np.float32), data=np.ones((1, 1, 1, cin), np.int8),
                      qdim=3)
        to = g.tensor((n, oh, ow, cin), scale=0.5, zero_point=0)
        t, o = opts("DepthwiseConv2DOptions", depthMultiplier=1, **fields)
        g.op(4, [ti, tw], [to], t, o, version=3)
    else:
        tw = g.tensor((1, 1, 1, cin), scale=np.full(1, 0.01, np.float32), data=np.ones((1, 1, 1, cin), np.int8),
                      qdim=0)
        to = g.tensor((n, oh, ow, 1), scale=0.5, zero_point=0)
        t, o = opts("Conv2DOptions", **fields)
        g.op(3, [ti, tw], [to], t, o, version=3)
    return g.build([ti], [to])


def test_steps_of_unrelated_sizes_do_not_overflow(tmp_path, driver):
    """Found by fuzzing: tpr_conv_run and the depthwise walk computed stride x channels,
    dilation x row bytes and stride x width in int32 although only steps inside the input are
    taken (UBSan: signed overflow). Clean under the sanitizers, and equal to TFLite Micro."""
    from runtime_models import compare

    cases = {
        "conv-sw-x-ic": ((1, 1, 2, 65536), (1, 65535), (1, 1), False),
        "conv-dh-x-iw-ic": ((1, 2, 1, 65536), (1, 1), (65535, 1), False),
        "conv-dw-x-ic": ((1, 1, 2, 65536), (1, 1), (1, 65535), False),
        "dw-sh-x-iw": ((1, 2, 65536, 1), (65535, 1), (1, 1), True),
        "dw-sw-x-ch": ((1, 1, 2, 65536), (1, 65535), (1, 1), True),
        "dw-dh-x-iw": ((1, 2, 65536, 1), (1, 1), (65535, 1), True),
    }
    paths = []
    for name, args in cases.items():
        model = _conv_with_unrelated_large_steps(*args)
        r = compare(model, samples=1, seed=0)
        assert r and r.bytes_compared > 0, (name, r.details[:2])
        paths.append(tmp_path / f"{name}.tflite")
        paths[-1].write_bytes(model)
    assert {status for status, _ in _run(driver, paths, max_arena=1 << 20).values()} == {"TPR_OK"}


@pytest.mark.slow
def test_corrupt_converted_models(tmp_path, driver):
    """The same on models the TFLite converter wrote (its layout: metadata, signatures, 16-byte
    aligned buffers at the end), most of them still valid after a flip and then run."""
    import re

    from runtime_models import zoo_models

    rng = np.random.default_rng(77)
    paths = []
    for name, model in zoo_models().items():
        for k in range(16):
            p = tmp_path / f"{name}-trunc{k:02d}.tflite"
            p.write_bytes(model[: len(model) * k // 16])
            paths.append(p)
        for k in range(30):
            b = bytearray(model)
            for _ in range(int(rng.integers(1, 6))):  # half in the header region, half anywhere
                b[int(rng.integers(0, min(len(model), 4096) if k % 2 else len(model)))] ^= int(rng.integers(1, 256))
            p = tmp_path / f"{name}-flip{k:02d}.tflite"
            p.write_bytes(bytes(b))
            paths.append(p)
    results = _run(driver, paths, invoke=1)
    truncated_ok = [p for p, (s, _) in results.items() if re.search(r"-trunc\d+\.tflite$", p) and s == "TPR_OK"]
    assert not truncated_ok
    assert sum(1 for s, _ in results.values() if s == "TPR_OK") > 0  # flipped weights still run
