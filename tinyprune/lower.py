"""ONNX -> Keras (channels-last) lowering, written for the operators tinyprune's runtime executes.

The ONNX graph comes from ``tinyprune.export`` (PyTorch layout: (N, C, H, W), (N, C, L), (N, F)).
Each node is lowered by a handler in ``_HANDLERS`` (keyed by ONNX op type) into Keras layers
whose int8 TFLite conversion uses only CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED, pooling,
ADD, MUL, RESHAPE, SOFTMAX, MEAN, PAD(V2), CONCATENATION, LOGISTIC, TANH and HARD_SWISH.

Layout rules
------------
Every ONNX value is either a constant (numpy; shape plumbing is folded by ``_FOLDERS``) or an
activation, ``_Act``, which records how its Keras tensor holds the torch tensor of one sample:

* ``shape``: the torch shape of one sample (no batch dimension);
* ``perm``: Keras axis j (after the batch) is torch axis ``perm[j]``. The default layout is
  channels-last for rank >= 2 ((C, H, W) -> (H, W, C), (C, L) -> (L, C)), identity for rank 1;
* ``order``: rank 1 only: Keras feature j is torch feature ``order[j]``. Flatten of a
  channels-last map gives such a permuted vector; the next Gemm/MatMul absorbs the permutation
  into its weight columns, so no TRANSPOSE is ever emitted.

Two layouts hold the same bytes when their memory maps (Keras position -> torch flat index)
agree; then a RESHAPE (an alias in the runtime) converts one into the other. A layout change that
would need a real transpose raises BadInput. Transpose nodes only relabel ``perm``; the axes of
Concat, Softmax, ReduceMean and Pad are mapped through it.

Operator choices
----------------
* BatchNormalization, bias Adds and per-channel Muls that follow a Conv/Gemm/MatMul are folded
  into its weights; a following ReLU/ReLU6 becomes the layer's activation (fused by the
  converter). Add + ReLU becomes Keras Add + ReLU, which the converter fuses into ADD.
* A ReLU that nothing can absorb is dropped when its input is known to be non-negative, else it
  becomes a 1x1 depthwise convolution with unit weights and a fused activation (exact; the
  runtime has no stand-alone RELU kernel).
* Padding: TF's SAME is used when it places the zeros exactly where torch does; otherwise an
  explicit ZeroPadding (PAD) holding only the pad rows a window actually reads, then VALID.
* 1-D convolutions and pools: RESHAPE (N, L, C) -> (N, 1, L, C), the 2-D op, RESHAPE back.
* Reshapes keep the batch as -1 in a constant shape: Keras's own Reshape/Flatten compute the
  batch at run time (SHAPE, STRIDED_SLICE, PACK), which the runtime does not execute.
* Layers get names derived from ONNX node names, so repeated lowerings convert to identical
  bytes (Keras's automatic names carry per-process counters).
"""

from __future__ import annotations

import functools
import math
import os
import re
from collections import defaultdict
from dataclasses import dataclass, field, replace
from types import SimpleNamespace
from typing import Any, Callable

import numpy as np

from tinyprune.errors import BadInput, CheckFailed

BATCH = -(2 ** 62) + 7  # stands for the dynamic batch size inside folded shape constants


# ---- values ---------------------------------------------------------------------------------

def _default_perm(rank: int) -> tuple[int, ...]:
    return tuple(range(rank)) if rank < 2 else tuple(range(1, rank)) + (0,)


def _memory(shape: tuple[int, ...], perm: tuple[int, ...]) -> np.ndarray:
    """Torch flat index of each Keras element of one sample, in Keras memory order."""
    return np.arange(math.prod(shape)).reshape(shape).transpose(perm).ravel()


@dataclass(frozen=True, eq=False)
class _Act:
    tensor: Any  # a symbolic Keras tensor, batch first
    shape: tuple[int, ...]
    perm: tuple[int, ...]
    order: np.ndarray | None = field(default=None)
    nonneg: bool = False  # known >= 0 (after ReLU, sigmoid, ...): zero padding acts as -inf for max
    dense: Any = None  # the Dense layer that wrote this tensor, while its output units may still be permuted

    @property
    def keras_shape(self) -> tuple[int, ...]:
        return tuple(self.shape[p] for p in self.perm)

    def memory(self) -> np.ndarray:
        return self.order if self.order is not None else _memory(self.shape, self.perm)


def _act_from_keras(t, perm: tuple[int, ...], nonneg: bool = False) -> _Act:
    kshape = tuple(int(d) for d in t.shape[1:])
    shape = [0] * len(perm)
    for j, p in enumerate(perm):
        shape[p] = kshape[j]
    return _Act(t, tuple(shape), perm, None, nonneg)


# ---- the public result ----------------------------------------------------------------------

@dataclass(frozen=True)
class LoweredModel:
    keras_model: Any  # tf.keras.Model: channels-last input, batch dimension None
    torch_input_shape: tuple[int, ...]  # one sample, PyTorch layout, e.g. (1, 40), (3, 32, 32), (640,)
    keras_input_shape: tuple[int, ...]  # one sample, channels-last, e.g. (40, 1), (32, 32, 3), (640,)
    output_shape: tuple[int, ...]  # one sample, PyTorch layout
    onnx_ops: tuple[str, ...]  # ONNX op types seen, in order of first use
    keras_output_shape: tuple[int, ...] = ()  # one sample, channels-last (= output_shape for rank <= 1)

    def to_keras_layout(self, x: np.ndarray) -> np.ndarray:
        """(N, *torch_input_shape) -> (N, *keras_input_shape)."""
        x = np.asarray(x, dtype=np.float32)
        if tuple(x.shape[1:]) != self.torch_input_shape:
            raise BadInput(f"input batch has per-sample shape {tuple(x.shape[1:])}, the model expects "
                           f"{self.torch_input_shape} (PyTorch layout)")
        return np.ascontiguousarray(np.transpose(x, (0, *(p + 1 for p in _default_perm(x.ndim - 1)))))

    def to_torch_layout(self, y: np.ndarray) -> np.ndarray:
        """A Keras output batch (N, *keras_output_shape) -> (N, *output_shape)."""
        y = np.asarray(y)
        inverse = np.argsort(_default_perm(y.ndim - 1))
        return np.transpose(y, (0, *(int(p) + 1 for p in inverse)))

    def run(self, x: np.ndarray, batch: int = 256) -> np.ndarray:
        """Float inference: torch-layout inputs in, torch-layout outputs out."""
        xk = self.to_keras_layout(x)
        outs = [np.asarray(self.keras_model(xk[i:i + batch], training=False)) for i in range(0, len(xk), batch)]
        y = np.concatenate(outs) if outs else np.zeros((0, *self.keras_output_shape), np.float32)
        return self.to_torch_layout(y)


def compare_with_onnxruntime(lowered: LoweredModel, onnx_bytes: bytes, x_torch_layout: np.ndarray) -> float:
    """Max |TensorFlow - onnxruntime| over a batch of torch-layout inputs."""
    from tinyprune.export import run_onnx

    x = np.asarray(x_torch_layout, dtype=np.float32)
    expected = run_onnx(onnx_bytes, x)
    got = lowered.run(x)
    if got.shape != expected.shape:
        raise CheckFailed(f"lowered model output shape {got.shape} differs from onnxruntime's {expected.shape}")
    return float(np.max(np.abs(got - expected))) if got.size else 0.0


# ---- Keras, imported on first use -----------------------------------------------------------

@functools.cache
def _k() -> SimpleNamespace:
    """Keras plus the few custom layers we need (constant-shape reshape, affine, mean, pad)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import logging

    import tensorflow as tf
    import keras

    tf.get_logger().setLevel(logging.ERROR)
    logging.getLogger("absl").setLevel(logging.ERROR)
    # plain Python in call(): autograph would rewrite it into temporary files under /tmp
    plain = tf.autograph.experimental.do_not_convert

    class Reshape(keras.layers.Layer):
        """Reshape with the batch as -1 in a constant shape: one RESHAPE op, no shape arithmetic."""

        def __init__(self, target, **kw):
            super().__init__(**kw)
            self.target = tuple(int(d) for d in target)

        @plain
        def call(self, x):
            return keras.ops.reshape(x, (-1, *self.target))

        def compute_output_shape(self, input_shape):
            return (input_shape[0], *self.target)

    class Affine(keras.layers.Layer):
        """x * scale + shift with constant operands: MUL and/or ADD."""

        def __init__(self, scale=None, shift=None, **kw):
            super().__init__(**kw)
            self.scale = None if scale is None else np.asarray(scale, np.float32)
            self.shift = None if shift is None else np.asarray(shift, np.float32)

        @plain
        def call(self, x):
            if self.scale is not None:
                x = keras.ops.multiply(x, self.scale)
            if self.shift is not None:
                x = keras.ops.add(x, self.shift)
            return x

    class Mean(keras.layers.Layer):
        def __init__(self, axes, keepdims, **kw):
            super().__init__(**kw)
            self.axes, self.keepdims = tuple(axes), bool(keepdims)

        @plain
        def call(self, x):
            return keras.ops.mean(x, axis=self.axes, keepdims=self.keepdims)

    class Pad(keras.layers.Layer):
        """Constant padding of any axes: PAD, or PADV2 for a non-zero value."""

        def __init__(self, pads, value, **kw):
            super().__init__(**kw)
            self.pads, self.value = [list(p) for p in pads], float(value)

        @plain
        def call(self, x):
            return keras.ops.pad(x, [[0, 0], *self.pads], constant_values=self.value or None)

    return SimpleNamespace(keras=keras, layers=keras.layers, Reshape=Reshape, Affine=Affine, Mean=Mean, Pad=Pad)


# ---- the lowering context -------------------------------------------------------------------

class _Names:
    """Unique Keras layer names derived from ONNX node names, deterministically."""

    def __init__(self):
        self.used = {"input"}

    def get(self, base: str) -> str:
        name = base
        k = 2
        while name in self.used:
            name = f"{base}_{k}"
            k += 1
        self.used.add(name)
        return name


def _node_base_name(node, index: int) -> str:
    """'/features/features.0/features.0.0/Conv' -> 'features.0.0_Conv'."""
    parts = [p for p in node.name.split("/") if p]
    parts = [p for i, p in enumerate(parts) if not (i + 1 < len(parts) and parts[i + 1].startswith(p))]
    base = re.sub(r"[^A-Za-z0-9_.\-]", "_", "_".join(parts)).strip("_.-")
    return base or f"{node.op_type.lower()}_{index}"


class _Lowering:
    def __init__(self, model):
        self.graph = model.graph
        self.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 17)
        self.nodes = list(self.graph.node)
        self.values: dict[str, Any] = {}
        self.skip: set[int] = set()  # nodes already absorbed into an earlier layer
        self.consumers: dict[str, list[int]] = defaultdict(list)
        for i, n in enumerate(self.nodes):
            for name in n.input:
                if name:
                    self.consumers[name].append(i)
        self.graph_outputs = {o.name for o in self.graph.output}
        self.names = _Names()
        self.node_names: dict[int, str] = {}
        self.index = 0  # the node being lowered
        self.static_batch: int | None = None  # the input's batch size when the graph fixes it

    # values
    def value(self, name: str, node) -> Any:
        if name not in self.values:
            raise BadInput(f"ONNX node '{node.name}' ({node.op_type}) reads '{name}', which no earlier node produces",
                           hint="the graph must be topologically sorted (onnx.checker.check_model)")
        return self.values[name]

    def act(self, node, k: int = 0) -> _Act:
        v = self.value(node.input[k], node)
        if not isinstance(v, _Act):
            raise BadInput(f"{node.op_type} node '{node.name}': expected an activation at input {k}, got a constant")
        return v

    def const(self, node, k: int, what: str = "") -> np.ndarray:
        v = self.value(node.input[k], node) if k < len(node.input) and node.input[k] else None
        if not isinstance(v, np.ndarray):
            raise BadInput(f"{node.op_type} node '{node.name}': {what or f'input {k}'} must be a constant")
        return v

    def opt_const(self, node, k: int) -> np.ndarray | None:
        if k >= len(node.input) or not node.input[k]:
            return None
        return self.const(node, k)

    def maybe_const(self, name: str) -> np.ndarray | None:
        v = self.values.get(name)
        return v if isinstance(v, np.ndarray) else None

    def set(self, name: str, value: Any) -> None:
        self.values[name] = value

    def alias(self, name: str, x: _Act) -> None:
        """``name`` holds the same tensor; the Dense that wrote it may have other readers now."""
        self.values[name] = replace(x, dense=None)

    # names
    def name(self, node, suffix: str = "") -> str:
        base = self.node_names.get(self.index)
        if base is None:
            base = self.node_names[self.index] = self.names.get(_node_base_name(node, self.index))
        return self.names.get(base + suffix) if suffix else base

    def sole_consumer(self, name: str) -> tuple[int, Any] | None:
        """The one node reading ``name``, if exactly one does and it is not a graph output."""
        users = self.consumers.get(name, [])
        if len(users) != 1 or name in self.graph_outputs:
            return None
        return users[0], self.nodes[users[0]]

    def data_readers(self, name: str) -> int:
        """How many nodes read the values of ``name`` (Shape reads only its static shape)."""
        return sum(self.nodes[i].op_type != "Shape" for i in self.consumers.get(name, []))

    # layouts
    def reshape(self, x: _Act, shape: tuple[int, ...], perm: tuple[int, ...], node, order=None) -> _Act:
        """The same bytes seen as torch ``shape`` in Keras layout ``perm``: a RESHAPE, or nothing."""
        target = tuple(shape[p] for p in perm)
        t = x.tensor
        if target != x.keras_shape:
            t = _k().Reshape(target, name=self.name(node, "_reshape"))(t)
        return _Act(t, tuple(shape), tuple(perm), order, x.nonneg)

    def as_layout(self, x: _Act, perm: tuple[int, ...], node, why: str) -> _Act:
        if x.perm == tuple(perm) and x.order is None:
            return x
        if np.array_equal(x.memory(), _memory(x.shape, perm)):
            return self.reshape(x, x.shape, perm, node)
        raise BadInput(f"{node.op_type} node '{node.name}' needs its input {why}, which would take a TRANSPOSE "
                       f"(not executed by the tinyprune runtime)",
                       hint="keep tensors in the layout torch convolutions produce, or move the permute/flatten")


def _attrs(node) -> dict[str, Any]:
    import onnx

    out = {}
    for a in node.attribute:
        v = onnx.helper.get_attribute_value(a)
        out[a.name] = v.decode() if isinstance(v, bytes) else v
    return out


def _bad(node, message: str, hint: str | None = None) -> BadInput:
    return BadInput(f"{node.op_type} node '{node.name}': {message}", hint=hint)


# ---- constant folding -------------------------------------------------------------------------

def _axes(node, inputs, attrs, k: int = 1):
    if k < len(inputs) and inputs[k] is not None:
        return [int(a) for a in np.asarray(inputs[k]).ravel()]
    return list(attrs["axes"]) if "axes" in attrs else None


def _fold_constant(node, ins, a):
    from onnx import numpy_helper

    if "value" in a:
        return numpy_helper.to_array(a["value"])
    for key, dtype in (("value_float", np.float32), ("value_floats", np.float32),
                       ("value_int", np.int64), ("value_ints", np.int64)):
        if key in a:
            return np.asarray(a[key], dtype=dtype)
    raise _bad(node, f"unsupported Constant attribute {sorted(a)}")


def _fold_reshape(node, ins, a):
    data, shape = ins[0], [int(d) for d in ins[1]]
    if not a.get("allowzero", 0):
        shape = [data.shape[i] if d == 0 else d for i, d in enumerate(shape)]
    return data.reshape(shape)


def _fold_unsqueeze(node, ins, a):
    x = ins[0]
    axes = sorted(ax % (x.ndim + len(_axes(node, ins, a))) for ax in _axes(node, ins, a))
    for ax in axes:
        x = np.expand_dims(x, ax)
    return x


def _fold_squeeze(node, ins, a):
    axes = _axes(node, ins, a)
    return np.squeeze(ins[0], axis=None if axes is None else tuple(axes))


def _fold_slice(node, ins, a):
    data, starts, ends = ins[0], ins[1], ins[2]
    axes = ins[3] if len(ins) > 3 and ins[3] is not None else range(len(starts))
    steps = ins[4] if len(ins) > 4 and ins[4] is not None else [1] * len(starts)
    index = [slice(None)] * data.ndim
    for s, e, ax, st in zip(starts, ends, axes, steps):
        index[int(ax)] = slice(int(s), int(e), int(st))
    return data[tuple(index)]


def _fold_cast(node, ins, a):
    import onnx

    return ins[0].astype(onnx.helper.tensor_dtype_to_np_dtype(a["to"]))


def _fold_constant_of_shape(node, ins, a):
    from onnx import numpy_helper

    value = numpy_helper.to_array(a["value"]) if "value" in a else np.zeros(1, np.float32)
    return np.full([int(d) for d in ins[0]], value.ravel()[0], dtype=value.dtype)


def _fold_flatten(node, ins, a):
    x, axis = ins[0], a.get("axis", 1) % max(ins[0].ndim, 1)
    return x.reshape(math.prod(x.shape[:axis]), -1)


def _fold_shape(node, ins, a):
    return np.asarray(ins[0].shape, np.int64)[a.get("start", 0):a.get("end")]


# Arithmetic on a folded shape that holds BATCH would silently give a wrong number.
_ARITHMETIC = {"Add", "Sub", "Mul", "Div", "Mod", "Neg", "Sqrt", "Range", "Expand", "ConstantOfShape"}


def _divide(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """ONNX Div: integers truncate toward zero (numpy's // floors)."""
    if x.dtype.kind in "iu" and np.asarray(y).dtype.kind in "iu":
        return (np.sign(x) * np.sign(y) * (np.abs(x) // np.abs(y))).astype(x.dtype)
    return x / y

_FOLDERS: dict[str, Callable] = {
    "Constant": _fold_constant,
    "Identity": lambda n, ins, a: ins[0],
    "Cast": _fold_cast,
    "Shape": _fold_shape,
    "Gather": lambda n, ins, a: np.take(ins[0], ins[1], axis=a.get("axis", 0)),
    "Unsqueeze": _fold_unsqueeze,
    "Squeeze": _fold_squeeze,
    "Concat": lambda n, ins, a: np.concatenate([np.atleast_1d(x) for x in ins], axis=a["axis"]),
    "Reshape": _fold_reshape,
    "Transpose": lambda n, ins, a: np.transpose(ins[0], a.get("perm")),
    "Slice": _fold_slice,
    "Flatten": _fold_flatten,
    "Add": lambda n, ins, a: ins[0] + ins[1],
    "Sub": lambda n, ins, a: ins[0] - ins[1],
    "Mul": lambda n, ins, a: ins[0] * ins[1],
    "Div": lambda n, ins, a: _divide(ins[0], ins[1]),
    "Mod": lambda n, ins, a: np.fmod(ins[0], ins[1]) if a.get("fmod", 0) else np.mod(ins[0], ins[1]),
    "Neg": lambda n, ins, a: -ins[0],
    "Sqrt": lambda n, ins, a: np.sqrt(ins[0]),
    "Range": lambda n, ins, a: np.arange(ins[0], ins[1], ins[2]),
    "Expand": lambda n, ins, a: np.broadcast_to(ins[0], np.broadcast_shapes(ins[0].shape, tuple(ins[1]))).copy(),
    "ConstantOfShape": _fold_constant_of_shape,
}


def _fold(lw: _Lowering, node) -> None:
    ins = [lw.values[name] if name else None for name in node.input]
    if node.op_type in _ARITHMETIC and any(isinstance(x, np.ndarray) and x.dtype.kind == "i" and (x == BATCH).any()
                                           for x in ins):
        raise _bad(node, "arithmetic on the batch size is not supported",
                   hint="use x.flatten(1) or x.view(x.size(0), -1) instead of computing shapes from the batch")
    out = _FOLDERS[node.op_type](node, ins, _attrs(node))
    lw.set(node.output[0], np.asarray(out))


# ---- lowering handlers ------------------------------------------------------------------------

_HANDLERS: dict[str, Callable[[_Lowering, Any], None]] = {}


def _handles(*ops: str):
    def register(fn):
        for op in ops:
            _HANDLERS[op] = fn
        return fn

    return register


def _activation_of(lw: _Lowering, node) -> str | None:
    """'relu' or 'relu6' when ``node`` is one (ReLU, or Clip to [0, inf) / [0, 6]), else None."""
    if node.op_type == "Relu":
        return "relu"
    if node.op_type != "Clip":
        return None
    a = _attrs(node)
    bounds = [a.get("min"), a.get("max")]  # opset < 11: attributes; later: optional inputs
    for k in (1, 2):
        if len(node.input) > k and node.input[k]:
            c = lw.maybe_const(node.input[k])
            if c is None:
                return None
            bounds[k - 1] = float(c)
    lo, hi = bounds
    if lo != 0.0:
        return None
    if hi is None or hi == float("inf"):
        return "relu"
    return "relu6" if hi == 6.0 else None


def _per_channel(c: np.ndarray, rank: int, axis: int, n: int) -> np.ndarray | None:
    """``c`` as an (n,) vector if, against a (batch, *sample) tensor of per-sample rank ``rank``,
    it varies only along per-sample axis ``axis``; else None."""
    c = np.asarray(c, np.float32)
    if c.ndim > rank + 1:
        return None
    full = (1,) * (rank + 1 - c.ndim) + c.shape
    if any(d != 1 for k, d in enumerate(full) if k != axis + 1) or full[axis + 1] not in (1, n):
        return None
    return np.broadcast_to(c.reshape(-1), (n,)).astype(np.float32)


def _bn_affine(lw: _Lowering, node) -> tuple[np.ndarray, np.ndarray] | None:
    params = [lw.maybe_const(name) for name in node.input[1:5]]
    if len(params) != 4 or any(p is None for p in params) or len(node.output) > 1 and any(node.output[1:]):
        return None
    gamma, beta, mean, var = (np.asarray(p, np.float64) for p in params)
    scale = gamma / np.sqrt(var + _attrs(node).get("epsilon", 1e-5))
    return scale.astype(np.float32), (beta - mean * scale).astype(np.float32)


def _absorb(lw: _Lowering, node, w: np.ndarray, b: np.ndarray | None, rank: int, axis: int):
    """Fold what follows a weighted layer into it: Identity/Dropout, BatchNormalization, constant
    per-channel Add/Sub/Mul/Div, and finally one ReLU/ReLU6. Returns (w, b, activation, output
    name). ``w`` has the output channel first; the output has per-sample rank ``rank`` with
    channels on per-sample axis ``axis``."""
    n_out = w.shape[0]
    cur, activation = node.output[0], None
    while (nxt := lw.sole_consumer(cur)) is not None:
        i, n = nxt
        op = n.op_type
        if op in ("Identity", "Dropout") and not any(n.output[1:]):
            pass
        elif op == "BatchNormalization" and n.input[0] == cur and (ab := _bn_affine(lw, n)) is not None:
            s, t = ab
            w = w * s.reshape(-1, *([1] * (w.ndim - 1)))
            b = (np.zeros(n_out, np.float32) if b is None else b) * s + t
        elif op in ("Add", "Sub", "Mul", "Div") and len(n.input) == 2 and n.input[0] != n.input[1]:
            other = n.input[1] if n.input[0] == cur else n.input[0]
            c = lw.maybe_const(other)
            v = None if c is None else _per_channel(c, rank, axis, n_out)
            if v is None or (op in ("Sub", "Div") and n.input[0] != cur):
                break
            if op in ("Add", "Sub"):
                b = (np.zeros(n_out, np.float32) if b is None else b) + (v if op == "Add" else -v)
            else:
                s = v if op == "Mul" else 1.0 / v
                w = w * s.reshape(-1, *([1] * (w.ndim - 1)))
                b = None if b is None else b * s
        elif (activation := _activation_of(lw, n)) is not None:
            lw.skip.add(i)
            cur = n.output[0]
            break
        else:
            break
        lw.skip.add(i)
        cur = n.output[0]
    return w.astype(np.float32), None if b is None else np.asarray(b, np.float32), activation, cur


def _pair_list(v, nd: int, default: int) -> list[int]:
    return [int(x) for x in v] if v is not None else [default] * nd


def _same_pads(n: int, k: int, s: int, d: int) -> tuple[int, int]:
    """TF's SAME: output ceil(n / s), the odd padding row at the end."""
    eff = (k - 1) * d + 1
    total = max((-(-n // s) - 1) * s + eff - n, 0)
    return total // 2, total - total // 2


def _spatial_padding(node, sizes, kernel, strides, dilations, a, ceil: bool = False):
    """('valid' | 'same' | 'pad', per-axis (begin, end) pads a window actually reads)."""
    nd = len(sizes)
    auto = a.get("auto_pad", "NOTSET")
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        same = [_same_pads(*p) for p in zip(sizes, kernel, strides, dilations)]
        if auto == "SAME_UPPER":
            return "same", same
        pads = [p[1] for p in same] + [p[0] for p in same]
    elif auto == "VALID":
        pads = [0] * 2 * nd
    else:
        pads = _pair_list(a.get("pads"), 2 * nd, 0)
    if any(p < 0 for p in pads):
        raise _bad(node, f"negative pads {pads} (cropping) are not supported")
    eff = []
    for n, k, s, d, pb, pe in zip(sizes, kernel, strides, dilations, pads[:nd], pads[nd:]):
        ek = (k - 1) * d + 1
        span = n + pb + pe - ek
        out = (-(-span // s) if ceil else span // s) + 1
        if ceil and (out - 1) * s >= n + pb:  # torch drops a last window that starts in the padding
            out -= 1
        if out < 1:
            raise _bad(node, f"the window ({ek}) is larger than the padded input ({n + pb + pe})")
        eff.append((pb, max((out - 1) * s + ek - n - pb, 0)))
    if all(p == (0, 0) for p in eff):
        return "valid", eff
    if all(p == _same_pads(*q) for p, q in zip(eff, zip(sizes, kernel, strides, dilations))):
        return "same", eff
    return "pad", eff


def _spatial(lw: _Lowering, node, x: _Act, pads, layer) -> Any:
    """Apply a 2-D Keras ``layer`` to a 1-D or 2-D channels-last tensor, zero-padding first."""
    L = _k().layers
    t = x.tensor
    nd = len(x.shape) - 1
    if pads:  # explicit PAD: torch's zeros are not where TF's SAME would put them
        t = (L.ZeroPadding1D(tuple(pads[0]), name=lw.name(node, "_pad")) if nd == 1
             else L.ZeroPadding2D(tuple(tuple(p) for p in pads), name=lw.name(node, "_pad")))(t)
    if nd == 1:  # 1-D as 2-D: (L, C) -> (1, L, C)
        t = _k().Reshape((1, *t.shape[1:]), name=lw.name(node, "_expand"))(t)
    t = layer(t)
    if nd == 1:
        t = _k().Reshape(tuple(t.shape[2:]), name=lw.name(node, "_squeeze"))(t)
    return t


def _as_2d(v, nd: int) -> tuple[int, ...]:
    return (1, *v) if nd == 1 else tuple(v)


@_handles("Conv")
def _conv(lw: _Lowering, node) -> None:
    L = _k().layers
    a = _attrs(node)
    w = lw.const(node, 1, "the weight").astype(np.float32)
    nd = w.ndim - 2
    if nd not in (1, 2):
        raise _bad(node, f"{nd}-D convolutions are not supported (1-D and 2-D are)")
    x = lw.as_layout(lw.act(node), _default_perm(nd + 1), node, "channels-last")
    if len(x.shape) != nd + 1:
        raise _bad(node, f"input of shape {x.shape} for a {nd}-D convolution")
    b = lw.opt_const(node, 2)
    group = int(a.get("group", 1))
    strides = _pair_list(a.get("strides"), nd, 1)
    dil = _pair_list(a.get("dilations"), nd, 1)
    kernel = list(w.shape[2:])
    if any(d != 1 for d in dil) and any(s != 1 for s in strides):
        raise _bad(node, f"dilation {dil} together with stride {strides} is not supported")
    cin, cout = x.shape[0], w.shape[0]
    mode, pads = _spatial_padding(node, x.shape[1:], kernel, strides, dil, a)
    w, b, act, out = _absorb(lw, node, w, b, rank=nd + 1, axis=0)
    name = lw.name(node)
    common = dict(strides=_as_2d(strides, nd), padding="same" if mode == "same" else "valid",
                  dilation_rate=_as_2d(dil, nd), activation=act, use_bias=b is not None, name=name)
    if group == cin and group > 1 and w.shape[1] == 1:  # depthwise: output channel c*m + j
        m = cout // cin
        kern = w.reshape(cin, m, *kernel)
        kern = kern.transpose(2, 3, 0, 1) if nd == 2 else kern.transpose(2, 0, 1)[None]
        layer = L.DepthwiseConv2D(_as_2d(kernel, nd), depth_multiplier=m, **common)
    else:
        kern = w.transpose(2, 3, 1, 0) if nd == 2 else w.transpose(2, 1, 0)[None]
        layer = L.Conv2D(cout, _as_2d(kernel, nd), groups=group, **common)
    t = _spatial(lw, node, x, pads if mode == "pad" else None, layer)
    layer.set_weights([kern] + ([b] if b is not None else []))
    lw.set(out, _act_from_keras(t, x.perm, nonneg=act is not None))


def _dense(lw: _Lowering, node, x: _Act, w: np.ndarray, b: np.ndarray | None) -> None:
    """x @ w.T + b over the last torch axis; w is (out, in)."""
    rank = len(x.shape)
    if rank > 1 and x.perm[-1] != rank - 1:
        x = lw.as_layout(x, tuple(range(rank)), node, "with the contracted axis last")
    w, b, act, out = _absorb(lw, node, w, b, rank=rank, axis=rank - 1)
    if x.order is not None:  # a flattened channels-last map: permute the weight columns instead
        w = w[:, x.order]
    layer = _k().layers.Dense(w.shape[0], activation=act, use_bias=b is not None, name=lw.name(node))
    t = layer(x.tensor)
    layer.set_weights([np.ascontiguousarray(w.T)] + ([b] if b is not None else []))
    lw.set(out, _Act(t, x.shape[:-1] + (w.shape[0],), x.perm, None, act is not None, dense=layer))


@_handles("Gemm")
def _gemm(lw: _Lowering, node) -> None:
    a = _attrs(node)
    x = lw.act(node)
    if a.get("transA", 0) or len(x.shape) != 1:
        raise _bad(node, "only Gemm(A, B, C) with A of shape (batch, features) is supported")
    bmat = lw.const(node, 1, "B").astype(np.float32)
    w = (bmat if a.get("transB", 0) else bmat.T) * np.float32(a.get("alpha", 1.0))
    c = lw.opt_const(node, 2)
    b = None
    if c is not None:
        b = _per_channel(c * np.float32(a.get("beta", 1.0)), 1, 0, w.shape[0])
        if b is None:
            raise _bad(node, f"C of shape {c.shape} is not a per-output bias")
    _dense(lw, node, x, w, b)


@_handles("MatMul")
def _matmul(lw: _Lowering, node) -> None:
    x = lw.act(node)
    wmat = lw.value(node.input[1], node)
    if not isinstance(wmat, np.ndarray) or wmat.ndim != 2:
        raise _bad(node, "only activation @ constant 2-D matrix is supported (no BATCH_MATMUL in the runtime)")
    _dense(lw, node, x, wmat.astype(np.float32).T, None)


def _pool(lw: _Lowering, node, kind: str) -> None:
    L = _k().layers
    a = _attrs(node)
    x = lw.act(node)
    nd = len(x.shape) - 1
    if nd not in (1, 2):
        raise _bad(node, f"{nd}-D pooling is not supported (1-D and 2-D are)")
    x = lw.as_layout(x, _default_perm(nd + 1), node, "channels-last")
    if len(node.output) > 1 and node.output[1] and lw.consumers.get(node.output[1]):
        raise _bad(node, "the Indices output is not supported")
    kernel = [int(k) for k in a["kernel_shape"]]
    strides = _pair_list(a.get("strides"), nd, 1)
    if any(d != 1 for d in _pair_list(a.get("dilations"), nd, 1)):
        raise _bad(node, "dilated pooling is not supported")
    ceil = bool(a.get("ceil_mode", 0))
    mode, pads = _spatial_padding(node, x.shape[1:], kernel, strides, [1] * nd, a, ceil=ceil and kind == "max")
    if ceil and kind == "avg" and _spatial_padding(node, x.shape[1:], kernel, strides, [1] * nd, a, ceil=True)[1] != pads:
        raise _bad(node, "ceil_mode=1 changes the output size; its partial windows are not supported")
    if kind == "max":
        # TF's SAME max pooling ignores padding like torch's -inf; zeros only do so for inputs >= 0
        if mode == "pad" and not x.nonneg:
            raise _bad(node, f"padding {pads} that TF's SAME does not reproduce, on an input that may be negative",
                       hint="pad with -inf is not available; put the ReLU before the pooling")
        cls = L.MaxPooling2D
    else:
        include = bool(a.get("count_include_pad", 0))
        if mode == "same" and include:
            mode = "pad"  # TF's SAME averages over real elements only: pad zeros explicitly
        if mode == "pad" and not include:
            raise _bad(node, f"padding {pads} with count_include_pad=0 that TF's SAME does not reproduce")
        cls = L.AveragePooling2D
    layer = cls(_as_2d(kernel, nd), strides=_as_2d(strides, nd), padding="same" if mode == "same" else "valid",
                name=lw.name(node))
    t = _spatial(lw, node, x, pads if mode == "pad" else None, layer)
    lw.set(node.output[0], _act_from_keras(t, x.perm, nonneg=x.nonneg))


_handles("MaxPool")(lambda lw, node: _pool(lw, node, "max"))
_handles("AveragePool")(lambda lw, node: _pool(lw, node, "avg"))


@_handles("GlobalAveragePool")
def _global_average_pool(lw: _Lowering, node) -> None:
    L = _k().layers
    x = lw.act(node)
    nd = len(x.shape) - 1
    if nd not in (1, 2):
        raise _bad(node, f"input of shape {x.shape}: 1-D or 2-D feature maps expected")
    x = lw.as_layout(x, _default_perm(nd + 1), node, "channels-last")
    cls = L.GlobalAveragePooling1D if nd == 1 else L.GlobalAveragePooling2D
    t = cls(keepdims=True, name=lw.name(node))(x.tensor)
    lw.set(node.output[0], _act_from_keras(t, x.perm, nonneg=x.nonneg))


@_handles("ReduceMean")
def _reduce_mean(lw: _Lowering, node) -> None:
    a = _attrs(node)
    x = lw.act(node)
    axes = _axes(node, [None] + [lw.maybe_const(n) for n in node.input[1:]], a)
    rank = len(x.shape) + 1
    if axes is None or not axes:
        if a.get("noop_with_empty_axes", 0) and axes is not None:
            lw.alias(node.output[0], x)
            return
        raise _bad(node, "a mean over all axes would average over the batch")
    axes = sorted({ax % rank for ax in axes})
    if 0 in axes:
        raise _bad(node, "a mean over the batch axis is not supported")
    sample_axes = [ax - 1 for ax in axes]
    keep = bool(a.get("keepdims", 1))
    keras_axes = sorted(x.perm.index(s) + 1 for s in sample_axes)
    t = _k().Mean(keras_axes, keep, name=lw.name(node))(x.tensor)
    if keep:
        shape = tuple(1 if i in sample_axes else d for i, d in enumerate(x.shape))
        lw.set(node.output[0], _Act(t, shape, x.perm, None, x.nonneg))
        return
    kept = [i for i in range(len(x.shape)) if i not in sample_axes]
    renumber = {old: new for new, old in enumerate(kept)}
    perm = tuple(renumber[p] for p in x.perm if p in renumber)
    lw.set(node.output[0], _Act(t, tuple(x.shape[i] for i in kept), perm, None, x.nonneg))


def _reshape_to(lw: _Lowering, node, x: _Act, shape: tuple[int, ...]) -> _Act:
    """``x`` reinterpreted (row-major, torch order) as per-sample ``shape``, preferring the default
    (channels-last) layout, then the torch layout, without ever moving data."""
    if math.prod(shape) != math.prod(x.shape):
        raise _bad(node, f"cannot reshape {x.shape} to {shape}")
    mem = x.memory()
    default = _default_perm(len(shape))
    target = _memory(shape, default)
    if np.array_equal(mem, target):
        return lw.reshape(x, shape, default, node)
    if x.dense is not None and len(x.shape) == 1 and lw.data_readers(node.input[0]) == 1 \
            and node.input[0] not in lw.graph_outputs:
        # Linear -> view as a feature map: let the Dense write its units in channels-last order
        kernel, *bias = x.dense.get_weights()
        x.dense.set_weights([kernel[:, target]] + [b[target] for b in bias])
        return lw.reshape(x, shape, default, node)
    identity = tuple(range(len(shape)))
    if np.array_equal(mem, _memory(shape, identity)):
        return lw.reshape(x, shape, identity, node)
    if len(shape) == 1:  # a flat vector in Keras order: remember the permutation for the next Gemm
        return lw.reshape(x, shape, (0,), node, order=mem)
    raise _bad(node, f"reshaping {x.shape} (layout {x.perm}) to {shape} would need a TRANSPOSE",
               hint="flatten feature maps only right before a Linear layer")


@_handles("Flatten")
def _flatten(lw: _Lowering, node) -> None:
    x = lw.act(node)
    axis = _attrs(node).get("axis", 1) % (len(x.shape) + 1)
    if axis == 0:
        raise _bad(node, "Flatten with axis 0 would merge the batch")
    shape = (math.prod(x.shape),) if axis == 1 else (math.prod(x.shape[:axis - 1]), math.prod(x.shape[axis - 1:]))
    lw.set(node.output[0], _reshape_to(lw, node, x, shape))


@_handles("Reshape")
def _reshape(lw: _Lowering, node) -> None:
    x = lw.act(node)
    target = [int(d) for d in lw.const(node, 1, "the shape")]
    full = (BATCH, *x.shape)
    if not _attrs(node).get("allowzero", 0):
        target = [full[i] if d == 0 and i < len(full) else d for i, d in enumerate(target)]
    numel = math.prod(x.shape)
    if target and target[0] == -1 and -1 not in target[1:] and BATCH not in target and math.prod(target[1:]) == numel:
        target[0] = BATCH  # x.reshape(-1, ...) keeping the batch
    if target and lw.static_batch is not None and target[0] == lw.static_batch:
        target[0] = BATCH  # a graph exported with a fixed batch size
    if not target or target[0] != BATCH or BATCH in target[1:] or any(d < -1 for d in target[1:]):
        raise _bad(node, "the first output dimension must be the batch and no other may depend on it",
                   hint="use x.flatten(1) or x.view(x.size(0), ...)")
    rest = target[1:]
    if rest.count(-1) == 1:
        known = math.prod(d for d in rest if d != -1)
        rest[rest.index(-1)] = numel // known if known else 0
    lw.set(node.output[0], _reshape_to(lw, node, x, tuple(rest)))


@_handles("Squeeze", "Unsqueeze")
def _squeeze(lw: _Lowering, node) -> None:
    x = lw.act(node)
    a = _attrs(node)
    axes = _axes(node, [None] + [lw.maybe_const(n) for n in node.input[1:]], a)
    full = [-1, *x.shape]
    if node.op_type == "Squeeze":
        rank = len(full)
        drop = {ax % rank for ax in axes} if axes else {i for i, d in enumerate(full) if d == 1 and i}
        if 0 in drop or any(full[i] != 1 for i in drop):
            raise _bad(node, f"cannot squeeze axes {sorted(drop)} of {tuple(full)}")
        shape = [d for i, d in enumerate(full) if i not in drop]
    else:
        rank = len(full) + len(axes)
        shape = list(full)
        for ax in sorted(ax % rank for ax in axes):
            if ax == 0:
                raise _bad(node, "cannot insert an axis before the batch")
            shape.insert(ax, 1)
    lw.set(node.output[0], _reshape_to(lw, node, x, tuple(shape[1:])))


@_handles("Transpose")
def _transpose(lw: _Lowering, node) -> None:
    """Only relabels the layout: Keras data stays where it is."""
    x = lw.act(node)
    p = list(_attrs(node).get("perm", reversed(range(len(x.shape) + 1))))
    if p[0] != 0:
        raise _bad(node, f"perm {p} moves the batch axis")
    ps = [q - 1 for q in p[1:]]
    inverse = np.argsort(ps)
    perm = tuple(int(inverse[j]) for j in x.perm)
    lw.set(node.output[0], _Act(x.tensor, tuple(x.shape[q] for q in ps), perm, x.order, x.nonneg))


@_handles("Concat")
def _concat(lw: _Lowering, node) -> None:
    parts = [lw.value(n, node) for n in node.input]
    if not all(isinstance(p, _Act) for p in parts):
        raise _bad(node, "concatenating activations with constants is not supported")
    first = parts[0]
    rank = len(first.shape)
    axis = _attrs(node)["axis"] % (rank + 1)
    if axis == 0:
        raise _bad(node, "concatenation over the batch axis is not supported")
    if any(len(p.shape) != rank for p in parts):
        raise _bad(node, "inputs of different ranks")
    shape = list(first.shape)
    shape[axis - 1] = sum(p.shape[axis - 1] for p in parts)
    if any(p.order is not None for p in parts):  # flat vectors: concatenated permutations
        orders, offset = [], 0
        for p in parts:
            orders.append((p.order if p.order is not None else np.arange(p.shape[0])) + offset)
            offset += p.shape[0]
        order = np.concatenate(orders)
        t = _k().layers.Concatenate(axis=-1, name=lw.name(node))([p.tensor for p in parts])
        lw.set(node.output[0], _Act(t, tuple(shape), (0,), order, all(p.nonneg for p in parts)))
        return
    parts = [lw.as_layout(p, first.perm, node, "in one layout") for p in parts]
    t = _k().layers.Concatenate(axis=first.perm.index(axis - 1) + 1, name=lw.name(node))([p.tensor for p in parts])
    lw.set(node.output[0], _Act(t, tuple(shape), first.perm, None, all(p.nonneg for p in parts)))


def _const_for(lw: _Lowering, node, x: _Act, c: np.ndarray) -> np.ndarray:
    """A torch-layout constant operand of ``x`` rearranged to broadcast against its Keras tensor."""
    c = np.asarray(c, np.float32)
    rank = len(x.shape)
    if c.ndim == rank + 1:
        if c.shape[0] != 1:
            raise _bad(node, f"a constant of shape {c.shape} with a batch dimension")
        c = c[0]
    if c.ndim > rank or np.broadcast_shapes(c.shape, x.shape) != x.shape:
        raise _bad(node, f"a constant of shape {c.shape} that does not broadcast into {x.shape}")
    if c.size == 1:
        return c.reshape(())
    c = c.reshape((1,) * (rank - c.ndim) + c.shape)
    if x.order is not None:
        return np.broadcast_to(c, x.shape)[x.order]
    return np.ascontiguousarray(c.transpose(x.perm))


def _like(lw: _Lowering, node, x: _Act, ref: _Act) -> _Act:
    """``x`` in ``ref``'s layout for an elementwise op (same layout, or a broadcastable shape)."""
    if len(x.shape) != len(ref.shape):
        raise _bad(node, f"operands of ranks {len(x.shape)} and {len(ref.shape)}")
    if x.perm == ref.perm and x.order is None and ref.order is None:
        return x
    if x.shape == ref.shape and np.array_equal(x.memory(), ref.memory()):
        return lw.reshape(x, ref.shape, ref.perm, node, order=ref.order)
    raise _bad(node, "operands in different layouts would need a TRANSPOSE")


@_handles("Add", "Sub", "Mul", "Div")
def _binary(lw: _Lowering, node) -> None:
    op = node.op_type
    va, vb = (lw.value(n, node) for n in node.input[:2])
    if isinstance(va, _Act) and isinstance(vb, _Act):
        if op not in ("Add", "Mul"):
            raise _bad(node, f"{op} of two activations is not executed by the tinyprune runtime (no SUB/DIV kernel)")
        shape = np.broadcast_shapes(va.shape, vb.shape)
        big, small = (va, vb) if va.shape == shape else (vb, va)
        if big.shape != shape:
            raise _bad(node, f"neither operand has the broadcast shape {shape}")
        small = _like(lw, node, small, big)
        L = _k().layers
        if op == "Mul":
            t = L.Multiply(name=lw.name(node))([big.tensor, small.tensor])
            lw.set(node.output[0], _Act(t, big.shape, big.perm, big.order, va.nonneg and vb.nonneg))
            return
        t = L.Add(name=lw.name(node))([big.tensor, small.tensor])
        out, act = node.output[0], None
        if (nxt := lw.sole_consumer(out)) is not None and (act := _activation_of(lw, nxt[1])) is not None:
            lw.skip.add(nxt[0])
            out = nxt[1].output[0]
            # a ReLU layer right after Add: the converter fuses it into ADD
            t = L.ReLU(max_value=6.0 if act == "relu6" else None, name=lw.name(node, "_" + act))(t)
        lw.set(out, _Act(t, big.shape, big.perm, big.order, act is not None or (va.nonneg and vb.nonneg)))
        return
    x_first = isinstance(va, _Act)
    x, c = (va, vb) if x_first else (vb, va)
    if not isinstance(x, _Act):
        raise _bad(node, "no activation operand")
    kc = _const_for(lw, node, x, c)
    scale = shift = None
    if op == "Add":
        shift = kc
    elif op == "Sub":
        scale, shift = (None, -kc) if x_first else (np.float32(-1.0), kc)
    elif op == "Mul":
        scale = kc
    elif x_first:
        scale = (1.0 / kc).astype(np.float32)
    else:
        raise _bad(node, "constant / activation is not supported (no DIV kernel in the runtime)")
    t = _k().Affine(scale, shift, name=lw.name(node))(x.tensor)
    nonneg = x.nonneg and op in ("Mul", "Div") and bool(np.all(kc >= 0))
    lw.set(node.output[0], _Act(t, x.shape, x.perm, x.order, nonneg))


@_handles("BatchNormalization")
def _batchnorm(lw: _Lowering, node) -> None:
    """A BatchNorm no weighted layer absorbed: MUL by the scale, ADD the shift."""
    x = lw.act(node)
    ab = _bn_affine(lw, node)
    if ab is None:
        raise _bad(node, "only inference-mode BatchNormalization with constant statistics is supported")
    s, t = ab
    cshape = (len(s),) + (1,) * (len(x.shape) - 1)
    layer = _k().Affine(_const_for(lw, node, x, s.reshape(cshape)), _const_for(lw, node, x, t.reshape(cshape)),
                        name=lw.name(node))
    lw.set(node.output[0], _Act(layer(x.tensor), x.shape, x.perm, x.order, False))


def _unit_depthwise(lw: _Lowering, node, x: _Act, activation: str) -> _Act:
    """ReLU/ReLU6 on its own as a 1x1 depthwise convolution with unit weights and a fused activation
    (exact in float and in int8; the runtime has no RELU kernel)."""
    ks = x.keras_shape
    t = x.tensor
    shape4 = ks if len(ks) == 3 else (1, math.prod(ks[:-1]) if len(ks) > 1 else 1, ks[-1])
    if shape4 != ks:
        t = _k().Reshape(shape4, name=lw.name(node, "_expand"))(t)
    layer = _k().layers.DepthwiseConv2D(1, activation=activation, use_bias=False, name=lw.name(node))
    t = layer(t)
    layer.set_weights([np.ones((1, 1, shape4[-1], 1), np.float32)])
    if shape4 != ks:
        t = _k().Reshape(ks, name=lw.name(node, "_squeeze"))(t)
    return _Act(t, x.shape, x.perm, x.order, True)


@_handles("Relu", "Clip")
def _relu(lw: _Lowering, node) -> None:
    act = _activation_of(lw, node)
    if act is None:
        raise _bad(node, "only Clip(0, 6) (ReLU6) and Clip(0, inf) (ReLU) are supported",
                   hint="other clipping ranges have no fused activation in the runtime")
    x = lw.act(node)
    if act == "relu" and x.nonneg:  # already >= 0: ReLU is the identity
        lw.alias(node.output[0], x)
        return
    lw.set(node.output[0], _unit_depthwise(lw, node, x, act))


def _activation_layer(keras_name: str, nonneg: bool):
    def handler(lw: _Lowering, node) -> None:
        x = lw.act(node)
        t = _k().layers.Activation(keras_name, name=lw.name(node))(x.tensor)
        lw.set(node.output[0], _Act(t, x.shape, x.perm, x.order, nonneg))

    return handler


_handles("Sigmoid")(_activation_layer("sigmoid", True))
_handles("Tanh")(_activation_layer("tanh", False))
_handles("HardSwish")(_activation_layer("hard_swish", False))


@_handles("Softmax")
def _softmax(lw: _Lowering, node) -> None:
    x = lw.act(node)
    rank = len(x.shape) + 1
    axis = _attrs(node).get("axis", -1 if lw.opset >= 13 else 1) % rank
    if axis == 0:
        raise _bad(node, "softmax over the batch axis")
    if lw.opset < 13 and axis != rank - 1:
        raise _bad(node, "opset < 13 Softmax flattens trailing axes; only the last axis is supported")
    if x.perm[-1] != axis - 1:  # TFLite's SOFTMAX works on the innermost axis only
        x = lw.as_layout(x, tuple(p for p in x.perm if p != axis - 1) + (axis - 1,), node, "with the softmax axis last")
    t = _k().layers.Softmax(axis=-1, name=lw.name(node))(x.tensor)
    lw.set(node.output[0], _Act(t, x.shape, x.perm, x.order, True))


@_handles("Pad")
def _pad(lw: _Lowering, node) -> None:
    a = _attrs(node)
    x = lw.act(node)
    if a.get("mode", "constant") != "constant":
        raise _bad(node, f"mode '{a['mode']}' (only constant padding is supported)")
    rank = len(x.shape) + 1
    pads = [int(p) for p in (lw.const(node, 1, "pads") if lw.opset >= 11 else a["pads"])]
    value = lw.opt_const(node, 2) if lw.opset >= 11 else a.get("value", 0.0)
    value = 0.0 if value is None or np.size(value) == 0 else float(np.asarray(value).ravel()[0])
    axes = lw.opt_const(node, 3)
    axes = list(range(rank)) if axes is None else [int(ax) % rank for ax in axes]
    begin, end = [0] * rank, [0] * rank
    for k, ax in enumerate(axes):
        begin[ax], end[ax] = pads[k], pads[k + len(axes)]
    if begin[0] or end[0]:
        raise _bad(node, "padding the batch axis is not supported")
    if any(p < 0 for p in begin + end):
        raise _bad(node, "negative pads (cropping) are not supported")
    if x.order is not None and any(begin + end):
        raise _bad(node, "padding a flattened channels-last map is not supported")
    sample = [(begin[i + 1], end[i + 1]) for i in range(rank - 1)]
    kpads = [sample[p] for p in x.perm]
    shape = tuple(d + b + e for d, (b, e) in zip(x.shape, sample))
    L = _k().layers
    spatial_only = kpads[-1] == (0, 0)
    if value == 0.0 and spatial_only and len(kpads) == 2:
        layer = L.ZeroPadding1D(kpads[0], name=lw.name(node))
    elif value == 0.0 and spatial_only and len(kpads) == 3:
        layer = L.ZeroPadding2D(tuple(kpads[:2]), name=lw.name(node))
    else:
        layer = _k().Pad(kpads, value, name=lw.name(node))
    lw.set(node.output[0], _Act(layer(x.tensor), shape, x.perm, x.order, x.nonneg and value >= 0))


@_handles("Identity", "Dropout")
def _identity(lw: _Lowering, node) -> None:
    if any(lw.consumers.get(n) for n in node.output[1:] if n):
        raise _bad(node, "the Dropout mask output is not supported")
    lw.alias(node.output[0], lw.act(node))


@_handles("Shape")
def _shape(lw: _Lowering, node) -> None:
    """The shape of an activation is static except for the batch, which folds to BATCH."""
    x = lw.act(node)
    a = _attrs(node)
    lw.set(node.output[0], np.asarray((BATCH, *x.shape), np.int64)[a.get("start", 0):a.get("end")])


SUPPORTED_OPS: tuple[str, ...] = tuple(sorted(set(_HANDLERS) | set(_FOLDERS)))
CONSTANT_ONLY_OPS: tuple[str, ...] = tuple(sorted(set(_FOLDERS) - set(_HANDLERS)))


# ---- driver -----------------------------------------------------------------------------------

def _load(onnx_bytes: bytes):
    import onnx

    try:
        return onnx.load_from_string(bytes(onnx_bytes))
    except Exception as exc:  # protobuf raises DecodeError and others for garbage
        raise BadInput(f"not an ONNX model: {type(exc).__name__}: {exc}",
                       hint="give the bytes of a .onnx file (tinyprune export writes model.onnx)") from None


def _graph_input(lw: _Lowering):
    from onnx import numpy_helper

    for init in lw.graph.initializer:
        arr = numpy_helper.to_array(init)
        lw.set(init.name, arr.astype(np.float32) if arr.dtype.kind == "f" else arr)
    inputs = [i for i in lw.graph.input if i.name not in lw.values]
    if len(inputs) != 1 or len(lw.graph.output) != 1:
        raise BadInput(f"the ONNX model has {len(inputs)} inputs and {len(lw.graph.output)} outputs; "
                       "tinyprune lowers single-input, single-output models")
    inp = inputs[0]
    tt = inp.type.tensor_type
    if tt.elem_type != 1:
        raise BadInput(f"ONNX input '{inp.name}' has element type {tt.elem_type}, float32 (1) expected")
    dims = tt.shape.dim
    shape = tuple(int(d.dim_value) if d.HasField("dim_value") else -1 for d in dims[1:])
    if not dims or any(d <= 0 for d in shape):
        raise BadInput(f"ONNX input '{inp.name}' needs a batch axis and static other dimensions, "
                       f"got {[d.dim_param or d.dim_value for d in dims]}")
    if dims[0].HasField("dim_value"):
        lw.static_batch = int(dims[0].dim_value)
    return inp.name, shape


def lower_onnx(onnx_bytes: bytes, name: str = "model") -> LoweredModel:
    """Lower an ONNX model (PyTorch layout, as written by ``tinyprune.export``) to a Keras model in
    channels-last layout. Unsupported operators raise BadInput naming the op and the node."""
    model = _load(onnx_bytes)
    lw = _Lowering(model)
    input_name, torch_shape = _graph_input(lw)
    k = _k()
    perm = _default_perm(len(torch_shape))
    keras_shape = tuple(torch_shape[p] for p in perm)
    inp = k.keras.Input(keras_shape, name="input")
    lw.set(input_name, _Act(inp, torch_shape, perm))
    _prefold(lw)
    seen: dict[str, None] = {}
    for i, node in enumerate(lw.nodes):
        seen.setdefault(node.op_type, None)
        if i in lw.skip:
            continue
        lw.index = i
        if node.domain not in ("", "ai.onnx"):
            raise _unsupported(node)
        ins = [lw.value(n, node) if n else None for n in node.input]
        if node.op_type in _FOLDERS and all(v is None or isinstance(v, np.ndarray) for v in ins):
            _fold(lw, node)
        elif node.op_type in _HANDLERS:
            _HANDLERS[node.op_type](lw, node)
        elif node.op_type in _FOLDERS:
            raise _bad(node, "is only supported on constant inputs (shape plumbing), not on activations",
                       hint="supported ONNX operators: " + ", ".join(SUPPORTED_OPS))
        else:
            raise _unsupported(node)
    out_name = lw.graph.output[0].name
    out = lw.values.get(out_name)
    if not isinstance(out, _Act):
        raise BadInput(f"the ONNX output '{out_name}' does not depend on the input")
    fake = SimpleNamespace(op_type="output", name=out_name)
    out = lw.as_layout(out, _default_perm(len(out.shape)), fake, "channels-last (or in torch order)")
    keras_model = k.keras.Model(inp, out.tensor, name=re.sub(r"[^A-Za-z0-9_.\-]", "_", name) or "model")
    return LoweredModel(keras_model, torch_shape, keras_shape, out.shape, tuple(seen), out.keras_shape)


def _prefold(lw: _Lowering) -> None:
    """Fold every node computable from initializers alone first, so that look-ahead (a Clip's
    bounds, a BatchNorm's statistics) sees constants that come later in node order."""
    for i, node in enumerate(lw.nodes):
        if node.op_type in _FOLDERS and node.domain in ("", "ai.onnx") and all(
                not n or isinstance(lw.values.get(n), np.ndarray) for n in node.input):
            lw.index = i
            _fold(lw, node)
            lw.skip.add(i)


def _unsupported(node) -> BadInput:
    domain = f" (domain '{node.domain}')" if node.domain else ""
    return BadInput(f"unsupported ONNX operator {node.op_type}{domain} at node '{node.name}'; "
                    f"supported operators: {', '.join(SUPPORTED_OPS)}",
                    hint="replace the layer in the torch model with a supported one, "
                         "or add a handler to tinyprune/lower.py")
