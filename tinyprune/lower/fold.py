"""Constant folding: ONNX nodes whose inputs are all constants (shape plumbing) computed with
numpy."""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from tinyprune.lower.context import Lowering, bad_node, node_attrs
from tinyprune.lower.values import BATCH


def onnx_axes(node, inputs, attrs, k: int = 1):
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
    raise bad_node(node, f"unsupported Constant attribute {sorted(a)}")


def _fold_reshape(node, ins, a):
    data, shape = ins[0], [int(d) for d in ins[1]]
    if not a.get("allowzero", 0):
        shape = [data.shape[i] if d == 0 else d for i, d in enumerate(shape)]
    return data.reshape(shape)


def _fold_unsqueeze(node, ins, a):
    x = ins[0]
    axes = sorted(ax % (x.ndim + len(onnx_axes(node, ins, a))) for ax in onnx_axes(node, ins, a))
    for ax in axes:
        x = np.expand_dims(x, ax)
    return x


def _fold_squeeze(node, ins, a):
    axes = onnx_axes(node, ins, a)
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

FOLDERS: dict[str, Callable] = {
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


def fold(lw: Lowering, node) -> None:
    ins = [lw.values[name] if name else None for name in node.input]
    if node.op_type in _ARITHMETIC and any(isinstance(x, np.ndarray) and x.dtype.kind == "i" and (x == BATCH).any()
                                           for x in ins):
        raise bad_node(node, "arithmetic on the batch size is not supported",
                   hint="use x.flatten(1) or x.view(x.size(0), -1) instead of computing shapes from the batch")
    out = FOLDERS[node.op_type](node, ins, node_attrs(node))
    lw.set(node.output[0], np.asarray(out))
