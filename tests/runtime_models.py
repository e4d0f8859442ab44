"""Models for the runtime tests, and the oracle comparison.

Two sources of tiny int8 models:

* ``Graph``: writes a TFLite flatbuffer directly (TFLite's own schema classes), so a test can
  choose any shape and any quantization (random scales over decades, random zero points,
  per-channel weights) - broad, fast coverage of the arithmetic.
* ``convert_keras``: the real TFLite converter (full-integer, representative dataset, int8 or
  float32 interface), for the layouts and options the converter actually writes. Converted
  models are cached on disk per group (``cached_models``), keyed by the TensorFlow version and this
  file's bytes, with a lock so that pytest-xdist workers share the work.

``compare`` runs random inputs through the ``tflite_micro`` interpreter (the oracle) and the micro
runtime and counts differing output bytes.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # before anything imports TensorFlow

import fcntl
import hashlib
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve()
TYPES = {"float32": 0, "int32": 2, "int8": 9}


def _schema():
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as s

    return s


# ---- direct flatbuffer models -------------------------------------------------------------------

class Graph:
    """A one-subgraph TFLite model under construction."""

    def __init__(self):
        s = _schema()
        self.s = s
        self.tensors: list = []
        self.buffers: list = [s.BufferT()]  # buffer 0: the empty sentinel
        self.operators: list = []
        self.opcodes: dict[tuple[int, int], int] = {}

    def tensor(self, shape, dtype="int8", scale=None, zero_point=None, data=None, qdim=0, name=None) -> int:
        s = self.s
        t = s.TensorT()
        t.shape = np.array(shape, dtype=np.int32)
        t.type = TYPES[dtype]
        t.name = (name or f"t{len(self.tensors)}").encode()
        t.buffer = 0
        if data is not None:
            b = _AlignedBufferT()
            b.data = np.ascontiguousarray(data).tobytes()
            self.buffers.append(b)
            t.buffer = len(self.buffers) - 1
        if scale is not None:
            q = s.QuantizationParametersT()
            q.scale = np.atleast_1d(np.asarray(scale, dtype=np.float32))
            zp = np.zeros(len(q.scale), dtype=np.int64) if zero_point is None else zero_point
            q.zeroPoint = np.atleast_1d(np.asarray(zp, dtype=np.int64))
            q.quantizedDimension = qdim
            t.quantization = q
        self.tensors.append(t)
        return len(self.tensors) - 1

    def op(self, code: int, inputs, outputs, options_type: int = 0, options=None, version: int = 1) -> None:
        s = self.s
        key = (code, version)
        if key not in self.opcodes:
            self.opcodes[key] = len(self.opcodes)
        o = s.OperatorT()
        o.opcodeIndex = self.opcodes[key]
        o.inputs = np.array(inputs, dtype=np.int32)
        o.outputs = np.array(outputs, dtype=np.int32)
        o.builtinOptionsType = options_type
        o.builtinOptions = options
        self.operators.append(o)

    def build(self, inputs, outputs) -> bytes:
        import flatbuffers

        s = self.s
        sg = s.SubGraphT()
        sg.tensors = self.tensors
        sg.operators = self.operators
        sg.inputs = np.array(inputs, dtype=np.int32)
        sg.outputs = np.array(outputs, dtype=np.int32)
        m = s.ModelT()
        m.version = 3
        m.subgraphs = [sg]
        m.buffers = self.buffers
        m.description = b"tinyprune runtime test"
        codes = []
        for (code, version), _ in sorted(self.opcodes.items(), key=lambda kv: kv[1]):
            oc = s.OperatorCodeT()
            oc.builtinCode = code
            oc.deprecatedBuiltinCode = min(code, 127)
            oc.version = version
            codes.append(oc)
        m.operatorCodes = codes
        b = flatbuffers.Builder(1024)
        b.Finish(m.Pack(b), file_identifier=b"TFL3")
        return bytes(b.Output())


def _aligned_bytes(builder, data: bytes, align: int = 16) -> int:
    builder.StartVector(1, len(data), align)
    builder.head = builder.head - len(data)
    builder.Bytes[builder.head: builder.head + len(data)] = data
    builder.vectorNumElems = len(data)
    return builder.EndVector()


class _AlignedBufferT:
    """A Buffer whose data is 16-byte aligned, as the TFLite converter writes it."""

    def __init__(self):
        self.data = None

    def Pack(self, builder):
        s = _schema()
        off = _aligned_bytes(builder, self.data) if self.data is not None else None
        s.BufferStart(builder)
        if off is not None:
            s.BufferAddData(builder, off)
        return s.BufferEnd(builder)


def opts(name: str, **fields):
    """A builtin options object, e.g. opts('Conv2DOptions', padding=0, strideW=1): (type, object)."""
    s = _schema()
    obj = getattr(s, name + "T")()
    for k, v in fields.items():
        if not hasattr(obj, k):
            raise AttributeError(f"{name} has no field {k}")
        setattr(obj, k, v)
    return getattr(s.BuiltinOptions, name), obj


# ---- random quantization --------------------------------------------------------------------------

def log_uniform(rng, lo: float, hi: float, size=None):
    return np.exp(rng.uniform(np.log(lo), np.log(hi), size=size)).astype(np.float32)


def rand_q(rng, lo=1e-3, hi=0.5):
    """(scale, zero point) of an int8 activation."""
    return float(log_uniform(rng, lo, hi)), int(rng.integers(-128, 128))


def weights(rng, shape):
    return rng.integers(-127, 128, size=shape, dtype=np.int64).astype(np.int8)


# ---- the converter ----------------------------------------------------------------------------------

def convert_keras(model, input_shapes, seed: int = 0, float_io: bool = False, samples: int = 16,
                  scale: float = 1.0) -> bytes:
    """Full-integer conversion with a random representative dataset (normal, std ``scale``)."""
    import tensorflow as tf

    rng = np.random.default_rng(seed)

    def rep():
        for _ in range(samples):
            yield [(rng.normal(size=(1, *s)) * scale).astype(np.float32) for s in input_shapes]

    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = rep
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    if not float_io:
        conv.inference_input_type = tf.int8
        conv.inference_output_type = tf.int8
    return conv.convert()


def quiet_tensorflow():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import logging

    import tensorflow as tf

    tf.get_logger().setLevel(logging.ERROR)
    logging.getLogger("absl").setLevel(logging.ERROR)
    return tf


def _cache_root() -> Path:
    from tinyprune.data import cache_dir

    return cache_dir() / "runtime-test-models"


def cached_models(group: str, make, count: int) -> list[bytes]:
    """``make(i) -> bytes`` for i < count, cached on disk (see the module docstring)."""
    import tensorflow as tf

    key = hashlib.sha256(HERE.read_bytes() + tf.__version__.encode() + group.encode()).hexdigest()[:16]
    root = _cache_root()
    final = root / f"{group}-{key}"
    if not (final / "done").exists():
        root.mkdir(parents=True, exist_ok=True)
        with open(root / f"{group}-{key}.lock", "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                if not (final / "done").exists():
                    tmp = Path(tempfile.mkdtemp(dir=root, prefix=f".{group}-"))
                    for i in range(count):
                        (tmp / f"{i:04d}.tflite").write_bytes(make(i))
                    (tmp / "done").write_text("ok")
                    if final.exists():
                        shutil.rmtree(final)
                    os.replace(tmp, final)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
    return [(final / f"{i:04d}.tflite").read_bytes() for i in range(count)]


# ---- the oracle comparison ------------------------------------------------------------------------

@dataclass
class Comparison:
    samples: int = 0
    bytes_compared: int = 0
    differing: int = 0
    details: list[str] = field(default_factory=list)
    runtime_arena: int = 0

    def __bool__(self) -> bool:
        return self.differing == 0


def _tflm_interpreter(model: bytes):
    from tinyprune.tflm import make_interpreter

    return make_interpreter(model, max(64 * 1024, len(model) * 4 + 256 * 1024))


def random_input(rng, shape, dtype, float_range=4.0):
    if np.dtype(dtype) == np.int8:
        return rng.integers(-128, 128, size=shape, dtype=np.int64).astype(np.int8)
    return (rng.uniform(-float_range, float_range, size=shape)).astype(np.float32)


def runtime_library():
    """The host runtime library compare() uses (tests may swap in another build)."""
    from tinyprune import runtime

    return runtime.load_library()


def compare(model: bytes, samples: int = 4, seed: int = 0, float_range: float = 4.0,
            fast: bool = False) -> Comparison:
    """Random inputs through TFLM and the runtime; counts differing output bytes (exact).

    ``fast``: in the runtime's fast arena (tpr_fast_arena_bytes: the multipliers are computed once
    by tpr_init and read from the arena), else in the smallest one (computed on every invoke)."""
    from tinyprune import runtime

    rng = np.random.default_rng(seed)
    lib = runtime_library()
    ours = runtime.Model(model, lib=lib, arena_bytes=runtime.required_arena_bytes(model, lib, fast=True) if fast else None)
    oracle = _tflm_interpreter(model)
    ins, outs = ours.inputs, ours.outputs
    result = Comparison(runtime_arena=ours.arena_bytes)
    for k in range(samples):
        xs = [random_input(rng, io.shape, np.dtype(io.dtype), float_range) for io in ins]
        for i, x in enumerate(xs):
            oracle.set_input(x, i)
        oracle.invoke()
        expected = [np.array(oracle.get_output(j)) for j in range(len(outs))]
        got = ours.run(xs)
        result.samples += 1
        for j, (e, g) in enumerate(zip(expected, got)):
            e = e.reshape(g.shape) if e.size == g.size else e
            if e.shape != g.shape or e.dtype != g.dtype:
                result.differing += max(e.nbytes, 1)
                result.details.append(f"sample {k} output {j}: shape/dtype {g.shape} {g.dtype} vs {e.shape} {e.dtype}")
                continue
            diff = e.view(np.uint8) != g.view(np.uint8)
            n = int(diff.sum())
            result.bytes_compared += e.nbytes
            if n:
                result.differing += n
                idx = np.argwhere(e != g)[:3].tolist()
                result.details.append(
                    f"sample {k} output {j}: {n} bytes differ, e.g. at {idx}: "
                    f"runtime {[g[tuple(i)] for i in idx]} vs TFLM {[e[tuple(i)] for i in idx]}")
    return result


# ---- direct single-op models with random shapes and quantization ------------------------------------
# Each builder takes a numpy Generator and returns the bytes of a one-operator model. Scales span
# decades; output scales are chosen around the spread of the real result, so that outputs use
# the int8 range and sometimes saturate.

ACTS = (0, 1, 2, 3)  # none, relu, relu_n1_to_1, relu6
PADDING = {"SAME": 0, "VALID": 1}


def _out_size(n, k, stride, dil, padding):
    eff = (k - 1) * dil + 1
    return (n + stride - 1) // stride if padding == 0 else (n - eff + stride) // stride


def conv_quantization(rng, taps: int, cout: int):
    """(input scale, input zero point, weight scales, output scale, output zero point) for a
    convolution summing ``taps`` products per output: per-channel weights 80 % of the time, and
    an output scale that keeps typical accumulations inside int8 without saturating them all."""
    per_channel = rng.random() < 0.8
    s_in, z_in = rand_q(rng)
    ws = log_uniform(rng, 2e-3, 0.05, cout if per_channel else 1)
    spread = np.sqrt(taps) * 60 * 70 * s_in * float(ws.mean())
    s_out, z_out = float(spread * log_uniform(rng, 0.003, 0.05)), int(rng.integers(-128, 128))
    return s_in, z_in, ws, s_out, z_out


def _conv_like(rng, depthwise: bool) -> bytes:
    for _ in range(100):
        h, w = (int(x) for x in rng.integers(1, 11, size=2))
        kh, kw = (int(x) for x in rng.integers(1, 5, size=2))
        sh, sw = (int(x) for x in rng.integers(1, 4, size=2))
        dh, dw = (int(x) for x in rng.integers(1, 3, size=2)) if rng.random() < 0.3 else (1, 1)
        padding = int(rng.integers(0, 2))
        oh, ow = _out_size(h, kh, sh, dh, padding), _out_size(w, kw, sw, dw, padding)
        if oh >= 1 and ow >= 1:
            break
    n = int(rng.integers(1, 3))
    cin = int(rng.integers(1, 7))
    if depthwise:
        dm = int(rng.integers(1, 4))
        cout, fic, wshape, qdim = cin * dm, 1, (1, kh, kw, cin * dm), 3
    else:
        groups = int(rng.choice([g for g in (1, 2, 3) if cin % g == 0])) if rng.random() < 0.2 else 1
        cout = groups * int(rng.integers(1, 5))
        fic, wshape, qdim = cin // groups, None, 0
        wshape = (cout, kh, kw, fic)
    s_in, z_in, ws, s_out, z_out = conv_quantization(rng, kh * kw * fic, cout)
    g = Graph()
    ti = g.tensor((n, h, w, cin), scale=s_in, zero_point=z_in)
    tw = g.tensor(wshape, scale=ws, data=weights(rng, wshape), qdim=qdim)
    ins = [ti, tw]
    if rng.random() < 0.85:
        bias = rng.integers(-20000, 20000, size=cout).astype(np.int32)
        ins.append(g.tensor((cout,), "int32", scale=np.float32(s_in) * ws, data=bias))
    to = g.tensor((n, oh, ow, cout), scale=s_out, zero_point=z_out)
    act = int(rng.choice(ACTS))
    if depthwise:
        t, o = opts("DepthwiseConv2DOptions", padding=padding, strideW=sw, strideH=sh, depthMultiplier=dm,
                    fusedActivationFunction=act, dilationWFactor=dw, dilationHFactor=dh)
        g.op(4, ins, [to], t, o, version=3)
    else:
        t, o = opts("Conv2DOptions", padding=padding, strideW=sw, strideH=sh, fusedActivationFunction=act,
                    dilationWFactor=dw, dilationHFactor=dh)
        g.op(3, ins, [to], t, o, version=3)
    return g.build([ti], [to])


def direct_conv_2d(rng):
    return _conv_like(rng, False)


def direct_depthwise_conv_2d(rng):
    return _conv_like(rng, True)


def direct_fully_connected(rng):
    d, u, b = int(rng.integers(1, 48)), int(rng.integers(1, 24)), int(rng.integers(1, 4))
    per_channel = rng.random() < 0.5
    s_in, z_in = rand_q(rng)
    ws = log_uniform(rng, 1e-3, 0.05, u if per_channel else 1)
    spread = np.sqrt(d) * 60 * 70 * s_in * float(ws.mean())
    s_out, z_out = float(spread * log_uniform(rng, 0.003, 0.05)), int(rng.integers(-128, 128))
    g = Graph()
    ti = g.tensor((b, d), scale=s_in, zero_point=z_in)
    tw = g.tensor((u, d), scale=ws, data=weights(rng, (u, d)))
    ins = [ti, tw]
    if rng.random() < 0.85:
        bias = rng.integers(-20000, 20000, size=u).astype(np.int32)
        ins.append(g.tensor((u,), "int32", scale=np.float32(s_in) * ws, data=bias))
    to = g.tensor((b, u), scale=s_out, zero_point=z_out)
    t, o = opts("FullyConnectedOptions", fusedActivationFunction=int(rng.choice(ACTS)))
    g.op(9, ins, [to], t, o, version=4 if len(ins) == 3 else 6)
    return g.build([ti], [to])


def _pool(rng, code):
    for _ in range(100):
        h, w = (int(x) for x in rng.integers(1, 12, size=2))
        fh, fw = (int(x) for x in rng.integers(1, 5, size=2))
        sh, sw = (int(x) for x in rng.integers(1, 4, size=2))
        padding = int(rng.integers(0, 2))
        oh, ow = _out_size(h, fh, sh, 1, padding), _out_size(w, fw, sw, 1, padding)
        if oh >= 1 and ow >= 1:
            break
    n, c = int(rng.integers(1, 3)), int(rng.integers(1, 6))
    s, z = rand_q(rng)
    g = Graph()
    ti = g.tensor((n, h, w, c), scale=s, zero_point=z)
    to = g.tensor((n, oh, ow, c), scale=s, zero_point=z)
    t, o = opts("Pool2DOptions", padding=padding, strideW=sw, strideH=sh, filterWidth=fw, filterHeight=fh,
                fusedActivationFunction=int(rng.choice(ACTS)))
    g.op(code, [ti], [to], t, o, version=2)
    return g.build([ti], [to])


def direct_average_pool_2d(rng):
    return _pool(rng, 1)


def direct_max_pool_2d(rng):
    return _pool(rng, 17)


def _broadcast_shapes(rng):
    rank = int(rng.integers(1, 5))
    out = [int(x) for x in rng.integers(1, 6, size=rank)]
    a = [d if rng.random() < 0.7 else 1 for d in out]
    b = [d if rng.random() < 0.5 else 1 for d in out]
    if rng.random() < 0.2 and rank > 1:  # lower rank second input
        b = b[int(rng.integers(1, rank)):]
    bb = [1] * (rank - len(b)) + b
    out = [max(x, y) for x, y in zip(a, bb)]
    return a, b, out


def _binary(rng, code, options):
    a, b, out = _broadcast_shapes(rng)
    sa, za = rand_q(rng)
    sb, zb = rand_q(rng)
    g = Graph()
    ta = g.tensor(a, scale=sa, zero_point=za)
    tb = g.tensor(b, scale=sb, zero_point=zb)
    if code == 0:  # ADD: output range near the sum of the ranges
        so = float((sa + sb) * log_uniform(rng, 0.5, 2.0))
    else:  # MUL
        so = float(sa * sb * 128 * log_uniform(rng, 0.1, 2.0))
    to = g.tensor(out, scale=so, zero_point=int(rng.integers(-128, 128)))
    t, o = opts(options, fusedActivationFunction=int(rng.choice(ACTS)))
    g.op(code, [ta, tb], [to], t, o, version=2)
    return g.build([ta, tb], [to])


def direct_add(rng):
    return _binary(rng, 0, "AddOptions")


def direct_mul(rng):
    return _binary(rng, 18, "MulOptions")


def direct_softmax(rng):
    rank = int(rng.integers(1, 4))
    shape = [int(x) for x in rng.integers(1, 12, size=rank)]
    s, z = rand_q(rng, 0.01, 0.5)
    g = Graph()
    ti = g.tensor(shape, scale=s, zero_point=z)
    to = g.tensor(shape, scale=1 / 256, zero_point=-128)
    t, o = opts("SoftmaxOptions", beta=float(rng.choice([1.0, float(log_uniform(rng, 0.3, 3.0))])))
    g.op(25, [ti], [to], t, o, version=2)
    return g.build([ti], [to])


def _unary(rng, code, out_q, options=None):
    shape = [int(x) for x in rng.integers(1, 9, size=int(rng.integers(1, 5)))]
    s, z = rand_q(rng, 0.005, 0.3)
    g = Graph()
    ti = g.tensor(shape, scale=s, zero_point=z)
    so, zo = out_q if out_q else rand_q(rng, 0.005, 0.3)
    to = g.tensor(shape, scale=so, zero_point=zo)
    t, o = opts(options) if options else (0, None)
    g.op(code, [ti], [to], t, o, version=2 if code in (14, 28) else 1)
    return g.build([ti], [to])


def direct_logistic(rng):
    return _unary(rng, 14, (1 / 256, -128))


def direct_tanh(rng):
    return _unary(rng, 28, (1 / 128, 0))


def direct_hard_swish(rng):
    return _unary(rng, 117, None, "HardSwishOptions")


def direct_mean(rng):
    rank = int(rng.integers(1, 5))
    shape = [int(x) for x in rng.integers(1, 8, size=rank)]
    axes = sorted(set(int(a) for a in rng.integers(0, rank, size=int(rng.integers(1, rank + 1)))))
    keep = bool(rng.random() < 0.5)
    out = [1 if i in axes else d for i, d in enumerate(shape)] if keep else [d for i, d in enumerate(shape) if i not in axes]
    axes_data = np.array([a - rank if rng.random() < 0.3 else a for a in axes], dtype=np.int32)
    s, z = rand_q(rng)
    g = Graph()
    ti = g.tensor(shape, scale=s, zero_point=z)
    ta = g.tensor((len(axes),), "int32", data=axes_data)
    so, zo = (s, z) if rng.random() < 0.3 else rand_q(rng)
    to = g.tensor(out or [1], scale=so, zero_point=zo)
    t, o = opts("ReducerOptions", keepDims=keep)
    g.op(40, [ti, ta], [to], t, o, version=2)
    return g.build([ti], [to])


def direct_pad(rng):
    rank = int(rng.integers(1, 5))
    shape = [int(x) for x in rng.integers(1, 6, size=rank)]
    pads = rng.integers(0, 3, size=(rank, 2)).astype(np.int32)
    out = [d + int(p.sum()) for d, p in zip(shape, pads)]
    s, z = rand_q(rng)
    g = Graph()
    ti = g.tensor(shape, scale=s, zero_point=z)
    tp = g.tensor((rank, 2), "int32", data=pads)
    to = g.tensor(out, scale=s, zero_point=z)
    if rng.random() < 0.5:
        t, o = opts("PadOptions")
        g.op(34, [ti, tp], [to], t, o, version=2)
    else:
        tc = g.tensor((1,), scale=s, zero_point=z, data=np.array([rng.integers(-128, 128)], np.int8))
        t, o = opts("PadV2Options")
        g.op(60, [ti, tp, tc], [to], t, o, version=2)
    return g.build([ti], [to])


def direct_concatenation(rng):
    rank = int(rng.integers(1, 5))
    shape = [int(x) for x in rng.integers(1, 5, size=rank)]
    axis = int(rng.integers(0, rank))
    k = int(rng.integers(1, 4))
    s, z = rand_q(rng)
    g = Graph()
    ins, total = [], 0
    for _ in range(k):
        sh = list(shape)
        sh[axis] = int(rng.integers(1, 4))
        total += sh[axis]
        ins.append(g.tensor(sh, scale=s, zero_point=z))
    out = list(shape)
    out[axis] = total
    to = g.tensor(out, scale=s, zero_point=z)
    t, o = opts("ConcatenationOptions", axis=axis - rank if rng.random() < 0.3 else axis)
    g.op(2, ins, [to], t, o, version=2)
    return g.build(ins, [to])


def direct_reshape(rng):
    """RESHAPE -> EXPAND_DIMS -> SQUEEZE -> QUANTIZE (the last one so the chain ends in a real op)."""
    shape = [int(x) for x in rng.integers(1, 6, size=int(rng.integers(1, 4)))]
    n = int(np.prod(shape))
    s, z = rand_q(rng)
    g = Graph()
    ti = g.tensor(shape, scale=s, zero_point=z)
    t1 = g.tensor((n,), scale=s, zero_point=z)
    shp = g.tensor((1,), "int32", data=np.array([n], np.int32))
    t, o = opts("ReshapeOptions", newShape=np.array([n], np.int32))
    g.op(22, [ti, shp], [t1], t, o)
    t2 = g.tensor((1, n), scale=s, zero_point=z)
    ax = g.tensor((1,), "int32", data=np.array([0], np.int32))
    t, o = opts("ExpandDimsOptions")
    g.op(70, [t1, ax], [t2], t, o)
    t3 = g.tensor((n,), scale=s, zero_point=z)
    t, o = opts("SqueezeOptions", squeezeDims=np.array([0], np.int32))
    g.op(43, [t2], [t3], t, o)
    so, zo = rand_q(rng)
    t4 = g.tensor((n,), scale=so, zero_point=zo)
    t, o = opts("QuantizeOptions")
    g.op(114, [t3], [t4], t, o)
    outs = [t4, t1] if rng.random() < 0.5 else [t4]  # an aliased tensor as a graph output too
    return g.build([ti], outs)


def direct_quantize(rng):
    """float32 -> QUANTIZE -> int8 -> DEQUANTIZE -> float32, and an int8 -> int8 requantize."""
    shape = [int(x) for x in rng.integers(1, 9, size=int(rng.integers(1, 4)))]
    s, z = rand_q(rng, 0.005, 0.1)
    g = Graph()
    ti = g.tensor(shape, "float32")
    tq = g.tensor(shape, scale=s, zero_point=z)
    t, o = opts("QuantizeOptions")
    g.op(114, [ti], [tq], t, o)
    so, zo = rand_q(rng, 0.005, 0.1)
    tr = g.tensor(shape, scale=so, zero_point=zo)
    g.op(114, [tq], [tr], t, o)
    td = g.tensor(shape, "float32")
    g.op(6, [tr], [td], version=2)
    return g.build([ti], [td, tq])


DIRECT = {
    "CONV_2D": direct_conv_2d,
    "DEPTHWISE_CONV_2D": direct_depthwise_conv_2d,
    "FULLY_CONNECTED": direct_fully_connected,
    "AVERAGE_POOL_2D": direct_average_pool_2d,
    "MAX_POOL_2D": direct_max_pool_2d,
    "ADD": direct_add,
    "MUL": direct_mul,
    "SOFTMAX": direct_softmax,
    "LOGISTIC": direct_logistic,
    "TANH": direct_tanh,
    "HARD_SWISH": direct_hard_swish,
    "MEAN": direct_mean,
    "PAD": direct_pad,
    "CONCATENATION": direct_concatenation,
    "RESHAPE": direct_reshape,
    "QUANTIZE": direct_quantize,
}


# ---- converter-built models --------------------------------------------------------------------------
# Each builder takes a Generator and returns (keras model, input shapes without batch, convert kwargs).
# Batch size 1, as TFLite Micro models are.

def _keras():
    return quiet_tensorflow().keras


def _act(rng):
    return str(rng.choice([None, "relu", "relu6"]))


def keras_conv_2d(rng):
    k = _keras()
    for _ in range(100):
        h, w = (int(x) for x in rng.integers(3, 12, size=2))
        kh, kw = (int(x) for x in rng.integers(1, 5, size=2))
        stride = int(rng.integers(1, 4))
        dil = int(rng.integers(2, 3)) if stride == 1 and rng.random() < 0.3 else 1
        padding = str(rng.choice(["same", "valid"]))
        if padding == "same" or (h >= (kh - 1) * dil + 1 and w >= (kw - 1) * dil + 1):
            break
    cin, cout = int(rng.integers(1, 7)), int(rng.integers(1, 9))
    act = _act(rng)
    x = inp = k.Input((h, w, cin), batch_size=1)
    x = k.layers.Conv2D(cout, (kh, kw), strides=stride, dilation_rate=dil, padding=padding,
                        use_bias=bool(rng.random() < 0.8), activation=None if act == "None" else act)(x)
    return k.Model(inp, x), [(h, w, cin)], {}


def keras_depthwise_conv_2d(rng):
    k = _keras()
    h, w = (int(x) for x in rng.integers(3, 12, size=2))
    kh, kw = (int(x) for x in rng.integers(1, 4, size=2))
    stride = int(rng.integers(1, 3))
    cin, dm = int(rng.integers(1, 7)), int(rng.integers(1, 3))
    act = _act(rng)
    x = inp = k.Input((h, w, cin), batch_size=1)
    x = k.layers.DepthwiseConv2D((kh, kw), strides=stride, depth_multiplier=dm, padding="same",
                                 activation=None if act == "None" else act)(x)
    return k.Model(inp, x), [(h, w, cin)], {}


def keras_fully_connected(rng):
    k = _keras()
    shape = (int(rng.integers(1, 40)),) if rng.random() < 0.7 else (int(rng.integers(1, 4)), int(rng.integers(1, 20)))
    act = _act(rng)
    x = inp = k.Input(shape, batch_size=1)
    x = k.layers.Dense(int(rng.integers(1, 24)), activation=None if act == "None" else act,
                       use_bias=bool(rng.random() < 0.8))(x)
    return k.Model(inp, x), [shape], {}


def _keras_pool(rng, layer):
    k = _keras()
    h, w = (int(x) for x in rng.integers(2, 12, size=2))
    p = int(rng.integers(1, min(h, w, 4) + 1))
    stride = int(rng.integers(1, 3))
    x = inp = k.Input((h, w, int(rng.integers(1, 6))), batch_size=1)
    x = layer(p, strides=stride, padding=str(rng.choice(["same", "valid"])))(x)
    return k.Model(inp, x), [tuple(inp.shape[1:])], {}


def keras_average_pool_2d(rng):
    return _keras_pool(rng, _keras().layers.AveragePooling2D)


def keras_max_pool_2d(rng):
    return _keras_pool(rng, _keras().layers.MaxPooling2D)


def _keras_binary(rng, layer, relu):
    k = _keras()
    h, w, c = (int(x) for x in rng.integers(1, 6, size=3))
    # the converter fails on some broadcasting ADDs (TFLite reshape.cc during calibration), so
    # ADD gets equal shapes here; the direct models cover ADD's broadcasting
    shape_b = (h, w, c) if relu or rng.random() < 0.4 else (1, 1, c) if rng.random() < 0.5 else (h, 1, c)
    a, b = k.Input((h, w, c), batch_size=1), k.Input(shape_b, batch_size=1)
    x = layer()([a, b])
    if relu and rng.random() < 0.5:
        x = k.layers.ReLU()(x)
    return k.Model([a, b], x), [(h, w, c), shape_b], {}


def keras_add(rng):
    return _keras_binary(rng, _keras().layers.Add, True)


def keras_mul(rng):
    return _keras_binary(rng, _keras().layers.Multiply, False)


def keras_softmax(rng):
    k = _keras()
    shape = (int(rng.integers(1, 30)),) if rng.random() < 0.6 else (int(rng.integers(1, 5)), int(rng.integers(2, 12)))
    x = inp = k.Input(shape, batch_size=1)
    x = k.layers.Dense(shape[-1])(x)  # a learned-looking input range
    x = k.layers.Softmax()(x)
    return k.Model(inp, x), [shape], {"scale": float(log_uniform(rng, 0.3, 5.0))}


def _keras_activation(rng, fn):
    k = _keras()
    shape = tuple(int(x) for x in rng.integers(1, 8, size=int(rng.integers(1, 4))))
    x = inp = k.Input(shape, batch_size=1)
    x = k.layers.Activation(fn)(x)
    return k.Model(inp, x), [shape], {"scale": float(log_uniform(rng, 0.2, 8.0))}


def keras_logistic(rng):
    return _keras_activation(rng, "sigmoid")


def keras_tanh(rng):
    return _keras_activation(rng, "tanh")


def keras_hard_swish(rng):
    tf = quiet_tensorflow()
    k = tf.keras
    shape = tuple(int(x) for x in rng.integers(1, 8, size=int(rng.integers(1, 4))))
    x = inp = k.Input(shape, batch_size=1)
    x = k.layers.Lambda(lambda t: t * tf.nn.relu6(t + 3.0) / 6.0)(x)
    return k.Model(inp, x), [shape], {"scale": float(log_uniform(rng, 0.5, 6.0))}


def keras_mean(rng):
    tf = quiet_tensorflow()
    k = tf.keras
    h, w, c = (int(x) for x in rng.integers(1, 8, size=3))
    x = inp = k.Input((h, w, c), batch_size=1)
    x = k.layers.Conv2D(c, 1)(x)  # MEAN with an output scale of its own
    if rng.random() < 0.5:
        x = k.layers.GlobalAveragePooling2D(keepdims=bool(rng.random() < 0.5))(x)
    else:
        axes = [int(a) for a in sorted(set(rng.integers(1, 4, size=int(rng.integers(1, 3)))))]
        keep = bool(rng.random() < 0.5)
        x = k.layers.Lambda(lambda t: tf.reduce_mean(t, axis=axes, keepdims=keep))(x)
    return k.Model(inp, x), [(h, w, c)], {}


def keras_pad(rng):
    tf = quiet_tensorflow()
    k = tf.keras
    h, w, c = (int(x) for x in rng.integers(1, 7, size=3))
    x = inp = k.Input((h, w, c), batch_size=1)
    if rng.random() < 0.5:
        x = k.layers.ZeroPadding2D(((int(rng.integers(0, 3)), int(rng.integers(0, 3))),
                                    (int(rng.integers(0, 3)), int(rng.integers(0, 3)))))(x)
    else:
        pads = [[0, 0]] + [[int(a), int(b)] for a, b in rng.integers(0, 3, size=(3, 2))]
        x = k.layers.Lambda(lambda t: tf.pad(t, pads))(x)
    return k.Model(inp, x), [(h, w, c)], {}


def keras_concatenation(rng):
    k = _keras()
    h, w = (int(x) for x in rng.integers(1, 6, size=2))
    n = int(rng.integers(2, 4))
    ins = [k.Input((h, w, int(rng.integers(1, 5))), batch_size=1) for _ in range(n)]
    x = k.layers.Concatenate(axis=-1)(ins)
    return k.Model(ins, x), [tuple(i.shape[1:]) for i in ins], {}


def keras_reshape(rng):
    k = _keras()
    h, w, c = (int(x) for x in rng.integers(1, 6, size=3))
    x = inp = k.Input((h, w, c), batch_size=1)
    x = k.layers.Conv2D(int(rng.integers(1, 5)), 1)(x)
    x = k.layers.Flatten()(x)
    x = k.layers.Dense(int(rng.integers(2, 12)))(x)
    x = k.layers.Reshape((1, -1))(x)
    return k.Model(inp, x), [(h, w, c)], {}


def keras_conv_1d(rng):
    """Conv1D: TFLite writes EXPAND_DIMS (or RESHAPE) + CONV_2D + SQUEEZE (or RESHAPE)."""
    k = _keras()
    length, cin = int(rng.integers(8, 40)), int(rng.integers(1, 5))
    x = inp = k.Input((length, cin), batch_size=1)
    x = k.layers.Conv1D(int(rng.integers(2, 9)), int(rng.integers(2, 6)), strides=int(rng.integers(1, 3)),
                        padding=str(rng.choice(["same", "valid"])), activation="relu")(x)
    x = k.layers.Conv1D(int(rng.integers(2, 9)), 3, padding="same")(x)
    return k.Model(inp, x), [(length, cin)], {}


def keras_float_io(rng):
    """float32 interface: QUANTIZE in, DEQUANTIZE out."""
    k = _keras()
    shape = (int(rng.integers(2, 30)),)
    x = inp = k.Input(shape, batch_size=1)
    x = k.layers.Dense(int(rng.integers(2, 12)), activation="relu")(x)
    x = k.layers.Dense(int(rng.integers(2, 12)))(x)
    return k.Model(inp, x), [shape], {"float_io": True}


KERAS = {
    "CONV_2D": keras_conv_2d,
    "DEPTHWISE_CONV_2D": keras_depthwise_conv_2d,
    "FULLY_CONNECTED": keras_fully_connected,
    "AVERAGE_POOL_2D": keras_average_pool_2d,
    "MAX_POOL_2D": keras_max_pool_2d,
    "ADD": keras_add,
    "MUL": keras_mul,
    "SOFTMAX": keras_softmax,
    "LOGISTIC": keras_logistic,
    "TANH": keras_tanh,
    "HARD_SWISH": keras_hard_swish,
    "MEAN": keras_mean,
    "PAD": keras_pad,
    "CONCATENATION": keras_concatenation,
    "RESHAPE": keras_reshape,
    "CONV_1D": keras_conv_1d,
    "FLOAT_IO": keras_float_io,
}


def keras_case(op: str, i: int) -> bytes:
    """Case i of op's converter-built models (deterministic in op and i)."""
    rng = np.random.default_rng(int(hashlib.sha256(f"{op}/{i}".encode()).hexdigest()[:8], 16))
    model, shapes, kwargs = KERAS[op](rng)
    return convert_keras(model, shapes, seed=i, **kwargs)


# ---- the zoo's architectures in Keras (NHWC), until the converter stage lands ---------------------------
# Same layers, shapes and padding as tinyprune/zoo.py (PyTorch's explicit padding becomes a PAD
# op where TF's SAME would place it differently), BatchNorm folded by the converter.

def _cbr(k, x, filters, kernel, stride=1, pad=None, depthwise=False):
    if pad:
        x = k.layers.ZeroPadding2D(pad)(x)
    padding = "valid" if pad is not None else "same"
    if depthwise:
        x = k.layers.DepthwiseConv2D(kernel, strides=stride, padding=padding, use_bias=False)(x)
    else:
        x = k.layers.Conv2D(filters, kernel, strides=stride, padding=padding, use_bias=False)(x)
    x = k.layers.BatchNormalization()(x)
    return k.layers.ReLU()(x)


def zoo_digits_cnn(k):
    x = inp = k.Input((8, 8, 1), batch_size=1)
    x = _cbr(k, x, 16, 3)
    x = _cbr(k, x, 32, 3)
    x = k.layers.MaxPooling2D(2)(x)
    x = _cbr(k, x, 32, 3)
    x = k.layers.Flatten()(x)
    x = k.layers.Dense(64, activation="relu")(x)
    return k.Model(inp, k.layers.Dense(10)(x))


def zoo_mnist1d_cnn(k):
    x = inp = k.Input((40, 1), batch_size=1)
    for filters, kernel in ((32, 5), (64, 3), (64, 3)):
        x = k.layers.ZeroPadding1D(1)(x)
        x = k.layers.Conv1D(filters, kernel, strides=2, use_bias=False)(x)
        x = k.layers.BatchNormalization()(x)
        x = k.layers.ReLU()(x)
    x = k.layers.Flatten()(x)
    return k.Model(inp, k.layers.Dense(10)(x))


def zoo_ds_cnn(k):
    x = inp = k.Input((49, 10, 1), batch_size=1)
    x = _cbr(k, x, 64, (10, 4), stride=2, pad=((5, 5), (1, 1)))
    for _ in range(4):
        x = _cbr(k, x, 64, 3, depthwise=True)
        x = _cbr(k, x, 64, 1)
    x = k.layers.GlobalAveragePooling2D()(x)
    return k.Model(inp, k.layers.Dense(12)(x))


def zoo_resnet8(k):
    x = inp = k.Input((32, 32, 3), batch_size=1)
    x = _cbr(k, x, 16, 3)
    cin = 16
    for cout, stride in ((16, 1), (32, 2), (64, 2)):
        y = _cbr(k, x, cout, 3, stride=stride, pad=((1, 1), (1, 1)) if stride > 1 else None)
        y = k.layers.Conv2D(cout, 3, padding="same", use_bias=False)(y)
        y = k.layers.BatchNormalization()(y)
        s = x
        if stride != 1 or cin != cout:
            s = k.layers.Conv2D(cout, 1, strides=stride, use_bias=False)(x)
            s = k.layers.BatchNormalization()(s)
        x = k.layers.ReLU()(k.layers.Add()([y, s]))
        cin = cout
    x = k.layers.GlobalAveragePooling2D()(x)
    return k.Model(inp, k.layers.Dense(10)(x))


def zoo_mobilenetv1_025(k):
    blocks = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)] + [(512, 1)] * 5 + [(1024, 2), (1024, 1)]
    x = inp = k.Input((96, 96, 3), batch_size=1)
    x = _cbr(k, x, 8, 3, stride=2, pad=((1, 1), (1, 1)))
    for cout, stride in blocks:
        x = _cbr(k, x, 0, 3, stride=stride, pad=((1, 1), (1, 1)) if stride > 1 else None, depthwise=True)
        x = _cbr(k, x, cout // 4, 1)
    x = k.layers.GlobalAveragePooling2D()(x)
    return k.Model(inp, k.layers.Dense(2)(x))


def zoo_fc_autoencoder(k):
    x = inp = k.Input((640,), batch_size=1)
    for width in (128, 128, 128, 128, 8, 128, 128, 128, 128):
        x = k.layers.Dense(width)(x)
        x = k.layers.BatchNormalization()(x)
        x = k.layers.ReLU()(x)
    return k.Model(inp, k.layers.Dense(640)(x))


ZOO_KERAS = {
    "digits-cnn": (zoo_digits_cnn, (8, 8, 1)),
    "mnist1d-cnn": (zoo_mnist1d_cnn, (40, 1)),
    "ds-cnn": (zoo_ds_cnn, (49, 10, 1)),
    "resnet8": (zoo_resnet8, (32, 32, 3)),
    "mobilenetv1-025": (zoo_mobilenetv1_025, (96, 96, 3)),
    "fc-autoencoder": (zoo_fc_autoencoder, (640,)),
}


def _randomize_batchnorm(model, rng):
    """Random BatchNorm statistics, so the folded weights look like a trained network's."""
    for layer in model.layers:
        if layer.__class__.__name__ == "BatchNormalization":
            n = layer.gamma.shape[0]
            layer.set_weights([rng.uniform(0.5, 1.5, n).astype(np.float32), rng.normal(0, 0.2, n).astype(np.float32),
                               rng.normal(0, 0.3, n).astype(np.float32), rng.uniform(0.5, 2.0, n).astype(np.float32)])


def zoo_keras_model(name: str, seed: int = 0) -> bytes:
    """The zoo architecture with random weights, converted to int8."""
    tf = quiet_tensorflow()
    tf.keras.utils.set_random_seed(seed)
    build, shape = ZOO_KERAS[name]
    model = build(tf.keras)
    _randomize_batchnorm(model, np.random.default_rng(seed))
    return convert_keras(model, [shape], seed=seed, samples=8)


def digits_cnn_trained() -> bytes:
    """The digits CNN trained for a few epochs on scikit-learn's digits, calibrated on real data."""
    tf = quiet_tensorflow()
    from tinyprune.data import load_dataset

    data = load_dataset("digits")
    tf.keras.utils.set_random_seed(0)
    model = zoo_digits_cnn(tf.keras)
    x = np.transpose(data.x_train, (0, 2, 3, 1))
    model.compile(optimizer="adam", loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, data.y_train, epochs=12, batch_size=32, verbose=0)

    def rep():
        for i in range(64):
            yield [x[i:i + 1]]

    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = rep
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    return conv.convert()


def direct_network(rng) -> bytes:
    """A small network touching most kernels: CONV_2D, DEPTHWISE_CONV_2D, PAD, ADD, MUL,
    AVERAGE_POOL_2D, MAX_POOL_2D, CONCATENATION, HARD_SWISH, MEAN, RESHAPE, FULLY_CONNECTED,
    TANH, LOGISTIC, SOFTMAX, with random quantization."""
    g = Graph()

    def act(shape, lo=0.02, hi=0.2):
        s, z = rand_q(rng, lo, hi)
        return g.tensor(shape, scale=s, zero_point=z)

    def conv(x, cin, cout, stride, shape_out, depthwise=False):
        s_in = float(g.tensors[x].quantization.scale[0])
        ws = log_uniform(rng, 0.005, 0.03, cout)
        wshape = (1, 3, 3, cout) if depthwise else (cout, 3, 3, cin)
        w = g.tensor(wshape, scale=ws, data=weights(rng, wshape), qdim=3 if depthwise else 0)
        b = g.tensor((cout,), "int32", scale=np.float32(s_in) * ws,
                     data=rng.integers(-3000, 3000, size=cout).astype(np.int32))
        y = act(shape_out, 0.05, 0.3)
        if depthwise:
            t, o = opts("DepthwiseConv2DOptions", padding=0, strideW=stride, strideH=stride, depthMultiplier=1,
                        fusedActivationFunction=1, dilationWFactor=1, dilationHFactor=1)
            g.op(4, [x, w, b], [y], t, o, version=3)
        else:
            t, o = opts("Conv2DOptions", padding=0, strideW=stride, strideH=stride, fusedActivationFunction=3,
                        dilationWFactor=1, dilationHFactor=1)
            g.op(3, [x, w, b], [y], t, o, version=3)
        return y

    x = act((1, 10, 10, 3))
    pads = g.tensor((4, 2), "int32", data=np.array([[0, 0], [1, 1], [1, 1], [0, 0]], np.int32))
    xp = g.tensor((1, 12, 12, 3), scale=g.tensors[x].quantization.scale, zero_point=g.tensors[x].quantization.zeroPoint)
    g.op(34, [x, pads], [xp], *opts("PadOptions"), version=2)
    c1 = conv(xp, 3, 8, 2, (1, 6, 6, 8))
    c2 = conv(c1, 8, 8, 1, (1, 6, 6, 8), depthwise=True)
    s = act((1, 6, 6, 8), 0.1, 0.5)
    g.op(0, [c1, c2], [s], *opts("AddOptions", fusedActivationFunction=1), version=2)
    m = act((1, 6, 6, 8), 0.1, 1.0)
    g.op(18, [s, c2], [m], *opts("MulOptions"), version=2)
    q = g.tensors[m].quantization
    ap = g.tensor((1, 3, 3, 8), scale=q.scale, zero_point=q.zeroPoint)
    g.op(1, [m], [ap], *opts("Pool2DOptions", padding=1, strideW=2, strideH=2, filterWidth=2, filterHeight=2), version=2)
    mp = g.tensor((1, 3, 3, 8), scale=q.scale, zero_point=q.zeroPoint)
    g.op(17, [m], [mp], *opts("Pool2DOptions", padding=1, strideW=2, strideH=2, filterWidth=2, filterHeight=2), version=2)
    cat = g.tensor((1, 3, 3, 16), scale=q.scale, zero_point=q.zeroPoint)
    g.op(2, [ap, mp], [cat], *opts("ConcatenationOptions", axis=3), version=2)
    hs = act((1, 3, 3, 16), 0.05, 0.5)
    g.op(117, [cat], [hs], *opts("HardSwishOptions"))
    axes = g.tensor((2,), "int32", data=np.array([1, 2], np.int32))
    mean = act((1, 1, 1, 16))
    g.op(40, [hs, axes], [mean], *opts("ReducerOptions", keepDims=True), version=2)
    qm = g.tensors[mean].quantization
    flat = g.tensor((1, 16), scale=qm.scale, zero_point=qm.zeroPoint)
    shp = g.tensor((2,), "int32", data=np.array([1, 16], np.int32))
    g.op(22, [mean, shp], [flat], *opts("ReshapeOptions", newShape=np.array([1, 16], np.int32)))
    s_in = float(qm.scale[0])
    ws = log_uniform(rng, 0.005, 0.03, 10)
    w = g.tensor((10, 16), scale=ws, data=weights(rng, (10, 16)))
    b = g.tensor((10,), "int32", scale=np.float32(s_in) * ws, data=rng.integers(-500, 500, size=10).astype(np.int32))
    fc = act((1, 10), 0.02, 0.1)
    g.op(9, [flat, w, b], [fc], *opts("FullyConnectedOptions"), version=4)
    th = g.tensor((1, 10), scale=1 / 128, zero_point=0)
    g.op(28, [fc], [th], version=2)
    lg = g.tensor((1, 10), scale=1 / 256, zero_point=-128)
    g.op(14, [fc], [lg], version=2)
    sm = g.tensor((1, 10), scale=1 / 256, zero_point=-128)
    g.op(25, [th], [sm], *opts("SoftmaxOptions", beta=1.0), version=2)
    return g.build([x], [sm, lg])


def zoo_models() -> dict[str, bytes]:
    """Every ZOO_KERAS architecture (random weights) and the trained digits CNN, cached."""
    names = list(ZOO_KERAS)
    models = cached_models("zoo", lambda i: zoo_keras_model(names[i]) if i < len(names) else digits_cnn_trained(),
                           len(names) + 1)
    return {**dict(zip(names, models)), "digits-cnn-trained": models[-1]}
