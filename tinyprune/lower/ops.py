"""Lowering handlers: one per ONNX operator on activations, registered in HANDLERS by op type;
each emits Keras layers and records the output activations in the context."""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from tinyprune.lower.context import Lowering, bad_node, node_attrs
from tinyprune.lower.fold import onnx_axes
from tinyprune.lower.keras_layers import keras_ns
from tinyprune.lower.values import BATCH, Act, act_from_keras, default_perm, memory_order


HANDLERS: dict[str, Callable[[Lowering, Any], None]] = {}


def _handles(*ops: str):
    def register(fn):
        for op in ops:
            HANDLERS[op] = fn
        return fn

    return register


def _activation_of(lw: Lowering, node) -> str | None:
    """'relu' or 'relu6' when ``node`` is one (ReLU, or Clip to [0, inf) / [0, 6]), else None."""
    if node.op_type == "Relu":
        return "relu"
    if node.op_type != "Clip":
        return None
    a = node_attrs(node)
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


def _bn_affine(lw: Lowering, node) -> tuple[np.ndarray, np.ndarray] | None:
    params = [lw.maybe_const(name) for name in node.input[1:5]]
    if len(params) != 4 or any(p is None for p in params) or len(node.output) > 1 and any(node.output[1:]):
        return None
    gamma, beta, mean, var = (np.asarray(p, np.float64) for p in params)
    scale = gamma / np.sqrt(var + node_attrs(node).get("epsilon", 1e-5))
    return scale.astype(np.float32), (beta - mean * scale).astype(np.float32)


def _absorb(lw: Lowering, node, w: np.ndarray, b: np.ndarray | None, rank: int, axis: int):
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
        raise bad_node(node, f"negative pads {pads} (cropping) are not supported")
    eff = []
    for n, k, s, d, pb, pe in zip(sizes, kernel, strides, dilations, pads[:nd], pads[nd:]):
        ek = (k - 1) * d + 1
        span = n + pb + pe - ek
        out = (-(-span // s) if ceil else span // s) + 1
        if ceil and (out - 1) * s >= n + pb:  # torch drops a last window that starts in the padding
            out -= 1
        if out < 1:
            raise bad_node(node, f"the window ({ek}) is larger than the padded input ({n + pb + pe})")
        eff.append((pb, max((out - 1) * s + ek - n - pb, 0)))
    if all(p == (0, 0) for p in eff):
        return "valid", eff
    if all(p == _same_pads(*q) for p, q in zip(eff, zip(sizes, kernel, strides, dilations))):
        return "same", eff
    return "pad", eff


def _spatial(lw: Lowering, node, x: Act, pads, layer) -> Any:
    """Apply a 2-D Keras ``layer`` to a 1-D or 2-D channels-last tensor, zero-padding first."""
    L = keras_ns().layers
    t = x.tensor
    nd = len(x.shape) - 1
    if pads:  # explicit PAD: torch's zeros are not where TF's SAME would put them
        t = (L.ZeroPadding1D(tuple(pads[0]), name=lw.name(node, "_pad")) if nd == 1
             else L.ZeroPadding2D(tuple(tuple(p) for p in pads), name=lw.name(node, "_pad")))(t)
    if nd == 1:  # 1-D as 2-D: (L, C) -> (1, L, C)
        t = keras_ns().Reshape((1, *t.shape[1:]), name=lw.name(node, "_expand"))(t)
    t = layer(t)
    if nd == 1:
        t = keras_ns().Reshape(tuple(t.shape[2:]), name=lw.name(node, "_squeeze"))(t)
    return t


def _as_2d(v, nd: int) -> tuple[int, ...]:
    return (1, *v) if nd == 1 else tuple(v)


@_handles("Conv")
def _conv(lw: Lowering, node) -> None:
    L = keras_ns().layers
    a = node_attrs(node)
    w = lw.const(node, 1, "the weight").astype(np.float32)
    nd = w.ndim - 2
    if nd not in (1, 2):
        raise bad_node(node, f"{nd}-D convolutions are not supported (1-D and 2-D are)")
    x = lw.as_layout(lw.act(node), default_perm(nd + 1), node, "channels-last")
    if len(x.shape) != nd + 1:
        raise bad_node(node, f"input of shape {x.shape} for a {nd}-D convolution")
    b = lw.opt_const(node, 2)
    group = int(a.get("group", 1))
    strides = _pair_list(a.get("strides"), nd, 1)
    dil = _pair_list(a.get("dilations"), nd, 1)
    kernel = list(w.shape[2:])
    if any(d != 1 for d in dil) and any(s != 1 for s in strides):
        raise bad_node(node, f"dilation {dil} together with stride {strides} is not supported")
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
    lw.set(out, act_from_keras(t, x.perm, nonneg=act is not None))


def _dense(lw: Lowering, node, x: Act, w: np.ndarray, b: np.ndarray | None) -> None:
    """x @ w.T + b over the last torch axis; w is (out, in)."""
    rank = len(x.shape)
    if rank > 1 and x.perm[-1] != rank - 1:
        x = lw.as_layout(x, tuple(range(rank)), node, "with the contracted axis last")
    w, b, act, out = _absorb(lw, node, w, b, rank=rank, axis=rank - 1)
    if x.order is not None:  # a flattened channels-last map: permute the weight columns instead
        w = w[:, x.order]
    layer = keras_ns().layers.Dense(w.shape[0], activation=act, use_bias=b is not None, name=lw.name(node))
    t = layer(x.tensor)
    layer.set_weights([np.ascontiguousarray(w.T)] + ([b] if b is not None else []))
    lw.set(out, Act(t, x.shape[:-1] + (w.shape[0],), x.perm, None, act is not None, dense=layer))


@_handles("Gemm")
def _gemm(lw: Lowering, node) -> None:
    a = node_attrs(node)
    x = lw.act(node)
    if a.get("transA", 0) or len(x.shape) != 1:
        raise bad_node(node, "only Gemm(A, B, C) with A of shape (batch, features) is supported")
    bmat = lw.const(node, 1, "B").astype(np.float32)
    w = (bmat if a.get("transB", 0) else bmat.T) * np.float32(a.get("alpha", 1.0))
    c = lw.opt_const(node, 2)
    b = None
    if c is not None:
        b = _per_channel(c * np.float32(a.get("beta", 1.0)), 1, 0, w.shape[0])
        if b is None:
            raise bad_node(node, f"C of shape {c.shape} is not a per-output bias")
    _dense(lw, node, x, w, b)


@_handles("MatMul")
def _matmul(lw: Lowering, node) -> None:
    x = lw.act(node)
    wmat = lw.value(node.input[1], node)
    if not isinstance(wmat, np.ndarray) or wmat.ndim != 2:
        raise bad_node(node, "only activation @ constant 2-D matrix is supported (no BATCH_MATMUL in the runtime)")
    _dense(lw, node, x, wmat.astype(np.float32).T, None)


def _pool(lw: Lowering, node, kind: str) -> None:
    L = keras_ns().layers
    a = node_attrs(node)
    x = lw.act(node)
    nd = len(x.shape) - 1
    if nd not in (1, 2):
        raise bad_node(node, f"{nd}-D pooling is not supported (1-D and 2-D are)")
    x = lw.as_layout(x, default_perm(nd + 1), node, "channels-last")
    if len(node.output) > 1 and node.output[1] and lw.consumers.get(node.output[1]):
        raise bad_node(node, "the Indices output is not supported")
    kernel = [int(k) for k in a["kernel_shape"]]
    strides = _pair_list(a.get("strides"), nd, 1)
    if any(d != 1 for d in _pair_list(a.get("dilations"), nd, 1)):
        raise bad_node(node, "dilated pooling is not supported")
    ceil = bool(a.get("ceil_mode", 0))
    mode, pads = _spatial_padding(node, x.shape[1:], kernel, strides, [1] * nd, a, ceil=ceil and kind == "max")
    if ceil and kind == "avg" and _spatial_padding(node, x.shape[1:], kernel, strides, [1] * nd, a, ceil=True)[1] != pads:
        raise bad_node(node, "ceil_mode=1 changes the output size; its partial windows are not supported")
    if kind == "max":
        # TF's SAME max pooling ignores padding like torch's -inf; zeros only do so for inputs >= 0
        if mode == "pad" and not x.nonneg:
            raise bad_node(node, f"padding {pads} that TF's SAME does not reproduce, on an input that may be negative",
                       hint="pad with -inf is not available; put the ReLU before the pooling")
        cls = L.MaxPooling2D
    else:
        include = bool(a.get("count_include_pad", 0))
        if mode == "same" and include:
            mode = "pad"  # TF's SAME averages over real elements only: pad zeros explicitly
        if mode == "pad" and not include:
            raise bad_node(node, f"padding {pads} with count_include_pad=0 that TF's SAME does not reproduce")
        cls = L.AveragePooling2D
    layer = cls(_as_2d(kernel, nd), strides=_as_2d(strides, nd), padding="same" if mode == "same" else "valid",
                name=lw.name(node))
    t = _spatial(lw, node, x, pads if mode == "pad" else None, layer)
    lw.set(node.output[0], act_from_keras(t, x.perm, nonneg=x.nonneg))


_handles("MaxPool")(lambda lw, node: _pool(lw, node, "max"))
_handles("AveragePool")(lambda lw, node: _pool(lw, node, "avg"))


@_handles("GlobalAveragePool")
def _global_average_pool(lw: Lowering, node) -> None:
    L = keras_ns().layers
    x = lw.act(node)
    nd = len(x.shape) - 1
    if nd not in (1, 2):
        raise bad_node(node, f"input of shape {x.shape}: 1-D or 2-D feature maps expected")
    x = lw.as_layout(x, default_perm(nd + 1), node, "channels-last")
    cls = L.GlobalAveragePooling1D if nd == 1 else L.GlobalAveragePooling2D
    t = cls(keepdims=True, name=lw.name(node))(x.tensor)
    lw.set(node.output[0], act_from_keras(t, x.perm, nonneg=x.nonneg))


@_handles("ReduceMean")
def _reduce_mean(lw: Lowering, node) -> None:
    a = node_attrs(node)
    x = lw.act(node)
    axes = onnx_axes(node, [None] + [lw.maybe_const(n) for n in node.input[1:]], a)
    rank = len(x.shape) + 1
    if axes is None or not axes:
        if a.get("noop_with_empty_axes", 0) and axes is not None:
            lw.alias(node.output[0], x)
            return
        raise bad_node(node, "a mean over all axes would average over the batch")
    axes = sorted({ax % rank for ax in axes})
    if 0 in axes:
        raise bad_node(node, "a mean over the batch axis is not supported")
    sample_axes = [ax - 1 for ax in axes]
    keep = bool(a.get("keepdims", 1))
    keras_axes = sorted(x.perm.index(s) + 1 for s in sample_axes)
    t = keras_ns().Mean(keras_axes, keep, name=lw.name(node))(x.tensor)
    if keep:
        shape = tuple(1 if i in sample_axes else d for i, d in enumerate(x.shape))
        lw.set(node.output[0], Act(t, shape, x.perm, None, x.nonneg))
        return
    kept = [i for i in range(len(x.shape)) if i not in sample_axes]
    renumber = {old: new for new, old in enumerate(kept)}
    perm = tuple(renumber[p] for p in x.perm if p in renumber)
    lw.set(node.output[0], Act(t, tuple(x.shape[i] for i in kept), perm, None, x.nonneg))


def _reshape_to(lw: Lowering, node, x: Act, shape: tuple[int, ...]) -> Act:
    """``x`` reinterpreted (row-major, torch order) as per-sample ``shape``, preferring the default
    (channels-last) layout, then the torch layout, without ever moving data."""
    if math.prod(shape) != math.prod(x.shape):
        raise bad_node(node, f"cannot reshape {x.shape} to {shape}")
    mem = x.memory()
    default = default_perm(len(shape))
    target = memory_order(shape, default)
    if np.array_equal(mem, target):
        return lw.reshape(x, shape, default, node)
    if x.dense is not None and len(x.shape) == 1 and lw.data_readers(node.input[0]) == 1 \
            and node.input[0] not in lw.graph_outputs:
        # Linear -> view as a feature map: let the Dense write its units in channels-last order
        kernel, *bias = x.dense.get_weights()
        x.dense.set_weights([kernel[:, target]] + [b[target] for b in bias])
        return lw.reshape(x, shape, default, node)
    identity = tuple(range(len(shape)))
    if np.array_equal(mem, memory_order(shape, identity)):
        return lw.reshape(x, shape, identity, node)
    if len(shape) == 1:  # a flat vector in Keras order: remember the permutation for the next Gemm
        return lw.reshape(x, shape, (0,), node, order=mem)
    raise bad_node(node, f"reshaping {x.shape} (layout {x.perm}) to {shape} would need a TRANSPOSE",
               hint="flatten feature maps only right before a Linear layer")


@_handles("Flatten")
def _flatten(lw: Lowering, node) -> None:
    x = lw.act(node)
    axis = node_attrs(node).get("axis", 1) % (len(x.shape) + 1)
    if axis == 0:
        raise bad_node(node, "Flatten with axis 0 would merge the batch")
    shape = (math.prod(x.shape),) if axis == 1 else (math.prod(x.shape[:axis - 1]), math.prod(x.shape[axis - 1:]))
    lw.set(node.output[0], _reshape_to(lw, node, x, shape))


@_handles("Reshape")
def _reshape(lw: Lowering, node) -> None:
    x = lw.act(node)
    target = [int(d) for d in lw.const(node, 1, "the shape")]
    full = (BATCH, *x.shape)
    if not node_attrs(node).get("allowzero", 0):
        target = [full[i] if d == 0 and i < len(full) else d for i, d in enumerate(target)]
    numel = math.prod(x.shape)
    if target and target[0] == -1 and -1 not in target[1:] and BATCH not in target and math.prod(target[1:]) == numel:
        target[0] = BATCH  # x.reshape(-1, ...) keeping the batch
    if target and lw.static_batch is not None and target[0] == lw.static_batch:
        target[0] = BATCH  # a graph exported with a fixed batch size
    if not target or target[0] != BATCH or BATCH in target[1:] or any(d < -1 for d in target[1:]):
        raise bad_node(node, "the first output dimension must be the batch and no other may depend on it",
                   hint="use x.flatten(1) or x.view(x.size(0), ...)")
    rest = target[1:]
    if rest.count(-1) == 1:
        known = math.prod(d for d in rest if d != -1)
        rest[rest.index(-1)] = numel // known if known else 0
    lw.set(node.output[0], _reshape_to(lw, node, x, tuple(rest)))


@_handles("Squeeze", "Unsqueeze")
def _squeeze(lw: Lowering, node) -> None:
    x = lw.act(node)
    a = node_attrs(node)
    axes = onnx_axes(node, [None] + [lw.maybe_const(n) for n in node.input[1:]], a)
    full = [-1, *x.shape]
    if node.op_type == "Squeeze":
        rank = len(full)
        drop = {ax % rank for ax in axes} if axes else {i for i, d in enumerate(full) if d == 1 and i}
        if 0 in drop or any(full[i] != 1 for i in drop):
            raise bad_node(node, f"cannot squeeze axes {sorted(drop)} of {tuple(full)}")
        shape = [d for i, d in enumerate(full) if i not in drop]
    else:
        rank = len(full) + len(axes)
        shape = list(full)
        for ax in sorted(ax % rank for ax in axes):
            if ax == 0:
                raise bad_node(node, "cannot insert an axis before the batch")
            shape.insert(ax, 1)
    lw.set(node.output[0], _reshape_to(lw, node, x, tuple(shape[1:])))


@_handles("Transpose")
def _transpose(lw: Lowering, node) -> None:
    """Only relabels the layout: Keras data stays where it is."""
    x = lw.act(node)
    p = list(node_attrs(node).get("perm", reversed(range(len(x.shape) + 1))))
    if p[0] != 0:
        raise bad_node(node, f"perm {p} moves the batch axis")
    ps = [q - 1 for q in p[1:]]
    inverse = np.argsort(ps)
    perm = tuple(int(inverse[j]) for j in x.perm)
    lw.set(node.output[0], Act(x.tensor, tuple(x.shape[q] for q in ps), perm, x.order, x.nonneg))


@_handles("Concat")
def _concat(lw: Lowering, node) -> None:
    parts = [lw.value(n, node) for n in node.input]
    if not all(isinstance(p, Act) for p in parts):
        raise bad_node(node, "concatenating activations with constants is not supported")
    first = parts[0]
    rank = len(first.shape)
    axis = node_attrs(node)["axis"] % (rank + 1)
    if axis == 0:
        raise bad_node(node, "concatenation over the batch axis is not supported")
    if any(len(p.shape) != rank for p in parts):
        raise bad_node(node, "inputs of different ranks")
    shape = list(first.shape)
    shape[axis - 1] = sum(p.shape[axis - 1] for p in parts)
    if any(p.order is not None for p in parts):  # flat vectors: concatenated permutations
        orders, offset = [], 0
        for p in parts:
            orders.append((p.order if p.order is not None else np.arange(p.shape[0])) + offset)
            offset += p.shape[0]
        order = np.concatenate(orders)
        t = keras_ns().layers.Concatenate(axis=-1, name=lw.name(node))([p.tensor for p in parts])
        lw.set(node.output[0], Act(t, tuple(shape), (0,), order, all(p.nonneg for p in parts)))
        return
    parts = [lw.as_layout(p, first.perm, node, "in one layout") for p in parts]
    t = keras_ns().layers.Concatenate(axis=first.perm.index(axis - 1) + 1, name=lw.name(node))([p.tensor for p in parts])
    lw.set(node.output[0], Act(t, tuple(shape), first.perm, None, all(p.nonneg for p in parts)))


def _const_for(lw: Lowering, node, x: Act, c: np.ndarray) -> np.ndarray:
    """A torch-layout constant operand of ``x`` rearranged to broadcast against its Keras tensor."""
    c = np.asarray(c, np.float32)
    rank = len(x.shape)
    if c.ndim == rank + 1:
        if c.shape[0] != 1:
            raise bad_node(node, f"a constant of shape {c.shape} with a batch dimension")
        c = c[0]
    if c.ndim > rank or np.broadcast_shapes(c.shape, x.shape) != x.shape:
        raise bad_node(node, f"a constant of shape {c.shape} that does not broadcast into {x.shape}")
    if c.size == 1:
        return c.reshape(())
    c = c.reshape((1,) * (rank - c.ndim) + c.shape)
    if x.order is not None:
        return np.broadcast_to(c, x.shape)[x.order]
    return np.ascontiguousarray(c.transpose(x.perm))


def _like(lw: Lowering, node, x: Act, ref: Act) -> Act:
    """``x`` in ``ref``'s layout for an elementwise op (same layout, or a broadcastable shape)."""
    if len(x.shape) != len(ref.shape):
        raise bad_node(node, f"operands of ranks {len(x.shape)} and {len(ref.shape)}")
    if x.perm == ref.perm and x.order is None and ref.order is None:
        return x
    if x.shape == ref.shape and np.array_equal(x.memory(), ref.memory()):
        return lw.reshape(x, ref.shape, ref.perm, node, order=ref.order)
    raise bad_node(node, "operands in different layouts would need a TRANSPOSE")


@_handles("Add", "Sub", "Mul", "Div")
def _binary(lw: Lowering, node) -> None:
    op = node.op_type
    va, vb = (lw.value(n, node) for n in node.input[:2])
    if isinstance(va, Act) and isinstance(vb, Act):
        if op not in ("Add", "Mul"):
            raise bad_node(node, f"{op} of two activations is not executed by the tinyprune runtime (no SUB/DIV kernel)")
        shape = np.broadcast_shapes(va.shape, vb.shape)
        big, small = (va, vb) if va.shape == shape else (vb, va)
        if big.shape != shape:
            raise bad_node(node, f"neither operand has the broadcast shape {shape}")
        small = _like(lw, node, small, big)
        L = keras_ns().layers
        if op == "Mul":
            t = L.Multiply(name=lw.name(node))([big.tensor, small.tensor])
            lw.set(node.output[0], Act(t, big.shape, big.perm, big.order, va.nonneg and vb.nonneg))
            return
        t = L.Add(name=lw.name(node))([big.tensor, small.tensor])
        out, act = node.output[0], None
        if (nxt := lw.sole_consumer(out)) is not None and (act := _activation_of(lw, nxt[1])) is not None:
            lw.skip.add(nxt[0])
            out = nxt[1].output[0]
            # a ReLU layer right after Add: the converter fuses it into ADD
            t = L.ReLU(max_value=6.0 if act == "relu6" else None, name=lw.name(node, "_" + act))(t)
        lw.set(out, Act(t, big.shape, big.perm, big.order, act is not None or (va.nonneg and vb.nonneg)))
        return
    x_first = isinstance(va, Act)
    x, c = (va, vb) if x_first else (vb, va)
    if not isinstance(x, Act):
        raise bad_node(node, "no activation operand")
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
        raise bad_node(node, "constant / activation is not supported (no DIV kernel in the runtime)")
    t = keras_ns().Affine(scale, shift, name=lw.name(node))(x.tensor)
    nonneg = x.nonneg and op in ("Mul", "Div") and bool(np.all(kc >= 0))
    lw.set(node.output[0], Act(t, x.shape, x.perm, x.order, nonneg))


@_handles("BatchNormalization")
def _batchnorm(lw: Lowering, node) -> None:
    """A BatchNorm no weighted layer absorbed: MUL by the scale, ADD the shift."""
    x = lw.act(node)
    ab = _bn_affine(lw, node)
    if ab is None:
        raise bad_node(node, "only inference-mode BatchNormalization with constant statistics is supported")
    s, t = ab
    cshape = (len(s),) + (1,) * (len(x.shape) - 1)
    layer = keras_ns().Affine(_const_for(lw, node, x, s.reshape(cshape)), _const_for(lw, node, x, t.reshape(cshape)),
                        name=lw.name(node))
    lw.set(node.output[0], Act(layer(x.tensor), x.shape, x.perm, x.order, False))


def _unit_depthwise(lw: Lowering, node, x: Act, activation: str) -> Act:
    """ReLU/ReLU6 on its own as a 1x1 depthwise convolution with unit weights and a fused activation
    (exact in float and in int8; the runtime has no RELU kernel)."""
    ks = x.keras_shape
    t = x.tensor
    shape4 = ks if len(ks) == 3 else (1, math.prod(ks[:-1]) if len(ks) > 1 else 1, ks[-1])
    if shape4 != ks:
        t = keras_ns().Reshape(shape4, name=lw.name(node, "_expand"))(t)
    layer = keras_ns().layers.DepthwiseConv2D(1, activation=activation, use_bias=False, name=lw.name(node))
    t = layer(t)
    layer.set_weights([np.ones((1, 1, shape4[-1], 1), np.float32)])
    if shape4 != ks:
        t = keras_ns().Reshape(ks, name=lw.name(node, "_squeeze"))(t)
    return Act(t, x.shape, x.perm, x.order, True)


@_handles("Relu", "Clip")
def _relu(lw: Lowering, node) -> None:
    act = _activation_of(lw, node)
    if act is None:
        raise bad_node(node, "only Clip(0, 6) (ReLU6) and Clip(0, inf) (ReLU) are supported",
                   hint="other clipping ranges have no fused activation in the runtime")
    x = lw.act(node)
    if act == "relu" and x.nonneg:  # already >= 0: ReLU is the identity
        lw.alias(node.output[0], x)
        return
    lw.set(node.output[0], _unit_depthwise(lw, node, x, act))


def _activation_layer(keras_name: str, nonneg: bool):
    def handler(lw: Lowering, node) -> None:
        x = lw.act(node)
        t = keras_ns().layers.Activation(keras_name, name=lw.name(node))(x.tensor)
        lw.set(node.output[0], Act(t, x.shape, x.perm, x.order, nonneg))

    return handler


_handles("Sigmoid")(_activation_layer("sigmoid", True))
_handles("Tanh")(_activation_layer("tanh", False))
_handles("HardSwish")(_activation_layer("hard_swish", False))


@_handles("Softmax")
def _softmax(lw: Lowering, node) -> None:
    x = lw.act(node)
    rank = len(x.shape) + 1
    axis = node_attrs(node).get("axis", -1 if lw.opset >= 13 else 1) % rank
    if axis == 0:
        raise bad_node(node, "softmax over the batch axis")
    if lw.opset < 13 and axis != rank - 1:
        raise bad_node(node, "opset < 13 Softmax flattens trailing axes; only the last axis is supported")
    if x.perm[-1] != axis - 1:  # TFLite's SOFTMAX works on the innermost axis only
        x = lw.as_layout(x, tuple(p for p in x.perm if p != axis - 1) + (axis - 1,), node, "with the softmax axis last")
    t = keras_ns().layers.Softmax(axis=-1, name=lw.name(node))(x.tensor)
    lw.set(node.output[0], Act(t, x.shape, x.perm, x.order, True))


@_handles("Pad")
def _pad(lw: Lowering, node) -> None:
    a = node_attrs(node)
    x = lw.act(node)
    if a.get("mode", "constant") != "constant":
        raise bad_node(node, f"mode '{a['mode']}' (only constant padding is supported)")
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
        raise bad_node(node, "padding the batch axis is not supported")
    if any(p < 0 for p in begin + end):
        raise bad_node(node, "negative pads (cropping) are not supported")
    if x.order is not None and any(begin + end):
        raise bad_node(node, "padding a flattened channels-last map is not supported")
    sample = [(begin[i + 1], end[i + 1]) for i in range(rank - 1)]
    kpads = [sample[p] for p in x.perm]
    shape = tuple(d + b + e for d, (b, e) in zip(x.shape, sample))
    L = keras_ns().layers
    spatial_only = kpads[-1] == (0, 0)
    if value == 0.0 and spatial_only and len(kpads) == 2:
        layer = L.ZeroPadding1D(kpads[0], name=lw.name(node))
    elif value == 0.0 and spatial_only and len(kpads) == 3:
        layer = L.ZeroPadding2D(tuple(kpads[:2]), name=lw.name(node))
    else:
        layer = keras_ns().Pad(kpads, value, name=lw.name(node))
    lw.set(node.output[0], Act(layer(x.tensor), shape, x.perm, x.order, x.nonneg and value >= 0))


@_handles("Identity", "Dropout")
def _identity(lw: Lowering, node) -> None:
    if any(lw.consumers.get(n) for n in node.output[1:] if n):
        raise bad_node(node, "the Dropout mask output is not supported")
    lw.alias(node.output[0], lw.act(node))


@_handles("Shape")
def _shape(lw: Lowering, node) -> None:
    """The shape of an activation is static except for the batch, which folds to BATCH."""
    x = lw.act(node)
    a = node_attrs(node)
    lw.set(node.output[0], np.asarray((BATCH, *x.shape), np.int64)[a.get("start", 0):a.get("end")])
