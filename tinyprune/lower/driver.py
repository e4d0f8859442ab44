"""The driver: loads the ONNX model, binds its input, folds what it can, and runs each node's
handler in order."""

from __future__ import annotations

import re
from types import SimpleNamespace

import numpy as np

from tinyprune.errors import BadInput
from tinyprune.lower.context import Lowering, bad_node
from tinyprune.lower.fold import FOLDERS, fold
from tinyprune.lower.keras_layers import keras_ns
from tinyprune.lower.model import LoweredModel
from tinyprune.lower.ops import HANDLERS
from tinyprune.lower.values import Act, default_perm

SUPPORTED_OPS: tuple[str, ...] = tuple(sorted(set(HANDLERS) | set(FOLDERS)))
CONSTANT_ONLY_OPS: tuple[str, ...] = tuple(sorted(set(FOLDERS) - set(HANDLERS)))


def _load(onnx_bytes: bytes):
    import onnx

    try:
        return onnx.load_from_string(bytes(onnx_bytes))
    except Exception as exc:  # protobuf raises DecodeError and others for garbage
        raise BadInput(f"not an ONNX model: {type(exc).__name__}: {exc}",
                       hint="give the bytes of a .onnx file (tinyprune export writes model.onnx)") from None


def _graph_input(lw: Lowering):
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
    lw = Lowering(model)
    input_name, torch_shape = _graph_input(lw)
    k = keras_ns()
    perm = default_perm(len(torch_shape))
    keras_shape = tuple(torch_shape[p] for p in perm)
    inp = k.keras.Input(keras_shape, name="input")
    lw.set(input_name, Act(inp, torch_shape, perm))
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
        if node.op_type in FOLDERS and all(v is None or isinstance(v, np.ndarray) for v in ins):
            fold(lw, node)
        elif node.op_type in HANDLERS:
            HANDLERS[node.op_type](lw, node)
        elif node.op_type in FOLDERS:
            raise bad_node(node, "is only supported on constant inputs (shape plumbing), not on activations",
                       hint="supported ONNX operators: " + ", ".join(SUPPORTED_OPS))
        else:
            raise _unsupported(node)
    out_name = lw.graph.output[0].name
    out = lw.values.get(out_name)
    if not isinstance(out, Act):
        raise BadInput(f"the ONNX output '{out_name}' does not depend on the input")
    fake = SimpleNamespace(op_type="output", name=out_name)
    out = lw.as_layout(out, default_perm(len(out.shape)), fake, "channels-last (or in torch order)")
    keras_model = k.keras.Model(inp, out.tensor, name=re.sub(r"[^A-Za-z0-9_.\-]", "_", name) or "model")
    return LoweredModel(keras_model, torch_shape, keras_shape, out.shape, tuple(seen), out.keras_shape)


def _prefold(lw: Lowering) -> None:
    """Fold every node computable from initializers alone first, so that look-ahead (a Clip's
    bounds, a BatchNorm's statistics) sees constants that come later in node order."""
    for i, node in enumerate(lw.nodes):
        if node.op_type in FOLDERS and node.domain in ("", "ai.onnx") and all(
                not n or isinstance(lw.values.get(n), np.ndarray) for n in node.input):
            lw.index = i
            fold(lw, node)
            lw.skip.add(i)


def _unsupported(node) -> BadInput:
    domain = f" (domain '{node.domain}')" if node.domain else ""
    return BadInput(f"unsupported ONNX operator {node.op_type}{domain} at node '{node.name}'; "
                    f"supported operators: {', '.join(SUPPORTED_OPS)}",
                    hint="replace the layer in the torch model with a supported one, "
                         "or add a handler to tinyprune/lower/ops.py")
