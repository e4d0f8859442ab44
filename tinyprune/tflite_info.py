"""Read a ``.tflite`` flatbuffer in Python (TFLite's generated schema, shipped with tflite-micro):
operators, tensors, inputs/outputs, quantization, and MACs per operator.

For validation the firmware's own C reader is authoritative (``tinyprune inspect``); this
module is for reports, code generation and cost figures on the host.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tinyprune.errors import BadInput

_DTYPES = {0: "float32", 1: "float16", 2: "int32", 3: "uint8", 4: "int64", 6: "bool", 7: "int16", 9: "int8"}
_NUMPY = {"float32": np.float32, "int32": np.int32, "uint8": np.uint8, "int64": np.int64, "int16": np.int16, "int8": np.int8, "bool": np.bool_}


def _schema():
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    return schema


@dataclass(frozen=True)
class TensorInfo:
    index: int
    name: str
    shape: tuple[int, ...]
    dtype: str
    scales: tuple[float, ...] = ()
    zero_points: tuple[int, ...] = ()
    quantized_dimension: int = 0
    buffer: int = 0
    is_constant: bool = False

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * np.dtype(_NUMPY.get(self.dtype, np.int8)).itemsize

    @property
    def numpy_dtype(self):
        return _NUMPY[self.dtype]


@dataclass(frozen=True)
class OperatorInfo:
    index: int
    name: str  # builtin operator name, e.g. CONV_2D
    builtin_code: int
    version: int
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    macs: int


@dataclass
class ModelInfo:
    size_bytes: int
    tensors: list[TensorInfo]
    operators: list[OperatorInfo]
    inputs: list[TensorInfo]
    outputs: list[TensorInfo]
    description: str = ""
    has_metadata: bool = False
    op_names: list[str] = field(default_factory=list)  # unique, in first-use order

    @property
    def num_tensors(self) -> int:
        return len(self.tensors)

    @property
    def macs(self) -> int:
        return sum(op.macs for op in self.operators)


def builtin_names() -> dict[int, str]:
    ops = _schema().BuiltinOperator
    return {v: k for k, v in vars(ops).items() if not k.startswith("_") and isinstance(v, int)}


def read_model(data: bytes) -> ModelInfo:
    """Parse ``data``; a file that is not a TFLite model raises BadInput.

    Reads the flatbuffer in place and only the fields the runtime reads too (as tpr_init does),
    so that a field nothing uses (signatures, sparsity, an odd metadata entry) cannot make this
    reject a model the firmware runs."""
    schema = _schema()
    data = bytes(data)
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise BadInput("not a TFLite model (the file identifier 'TFL3' is missing at offset 4)",
                       hint="give a .tflite file written by the TFLite converter")
    try:
        return _read(schema.Model.GetRootAs(data, 0), len(data))
    except BadInput:
        raise
    except Exception as exc:  # the generated accessors raise whatever a corrupt buffer triggers
        raise BadInput(f"the TFLite model is malformed: {type(exc).__name__}: {exc}") from None


def _text(v) -> str:
    return v.decode(errors="replace") if isinstance(v, bytes) else str(v or "")


def _vector(obj, field: str, kind=int) -> tuple:
    """A flatbuffer vector field as a tuple (empty when absent)."""
    if getattr(obj, field + "Length")() == 0:
        return ()
    return tuple(kind(v) for v in getattr(obj, field + "AsNumpy")())


def _tensor(model, graph, i: int, n_buffers: int) -> TensorInfo:
    t = graph.Tensors(i)
    q = t.Quantization()
    buf = model.Buffers(t.Buffer()) if 0 <= t.Buffer() < n_buffers else None
    constant = buf is not None and (buf.DataLength() > 0 or (buf.Size() or 0) > 0)
    return TensorInfo(
        index=i,
        name=_text(t.Name()),
        shape=_vector(t, "Shape"),
        dtype=_DTYPES.get(t.Type(), f"type{t.Type()}"),
        scales=_vector(q, "Scale", float) if q is not None else (),
        zero_points=_vector(q, "ZeroPoint") if q is not None else (),
        quantized_dimension=int(q.QuantizedDimension()) if q is not None else 0,
        buffer=int(t.Buffer()),
        is_constant=bool(constant),
    )


def _read(model, size: int) -> ModelInfo:
    if model.SubgraphsLength() < 1:
        raise BadInput("the TFLite model has no subgraph")
    names = builtin_names()
    graph = model.Subgraphs(0)
    n_buffers = model.BuffersLength()

    n_codes = model.OperatorCodesLength()
    ops = [graph.Operators(i) for i in range(graph.OperatorsLength())]
    op_io = [(_vector(op, "Inputs"), _vector(op, "Outputs")) for op in ops]
    io = (_vector(graph, "Inputs"), _vector(graph, "Outputs"))
    used = {j for ins, outs in op_io for j in (*ins, *outs)} | set(io[0]) | set(io[1])
    tensors = []
    for i in range(graph.TensorsLength()):
        try:
            tensors.append(_tensor(model, graph, i, n_buffers))
        except Exception:
            if i in used:
                raise
            # a tensor no operator reads or writes: tpr_init never reads it either
            tensors.append(TensorInfo(index=i, name="", shape=(), dtype="unreadable"))

    operators, op_names = [], []
    for i, (op, (ins, outs)) in enumerate(zip(ops, op_io)):
        if not 0 <= op.OpcodeIndex() < n_codes:
            raise BadInput(f"operator {i} names operator code {op.OpcodeIndex()}; the model has {n_codes}")
        code = model.OperatorCodes(op.OpcodeIndex())
        builtin = max(int(code.BuiltinCode()), int(code.DeprecatedBuiltinCode()))
        name = names.get(builtin, f"BUILTIN_{builtin}")
        operators.append(OperatorInfo(i, name, builtin, int(code.Version()), ins, outs, _macs(name, ins, outs, tensors)))
        if name not in op_names:
            op_names.append(name)

    has_metadata = any(_text(model.Metadata(k).Name()) == "TFLITE_METADATA" for k in range(model.MetadataLength()))
    return ModelInfo(
        size_bytes=size,
        tensors=tensors,
        operators=operators,
        inputs=[tensors[i] for i in io[0]],
        outputs=[tensors[i] for i in io[1]],
        description=_text(model.Description()),
        has_metadata=has_metadata,
        op_names=op_names,
    )


def _macs(name: str, ins: tuple[int, ...], outs: tuple[int, ...], tensors: list[TensorInfo]) -> int:
    """Multiply-accumulates of one operator (0 for ops that do no multiplication work worth counting)."""
    if not outs or not ins or max(outs) >= len(tensors) or max(i for i in ins if i >= 0) >= len(tensors):
        return 0
    out = tensors[outs[0]].shape
    if name == "CONV_2D" and len(ins) > 1:
        w = tensors[ins[1]].shape  # [out_c, kh, kw, in_c]
        return int(np.prod(out, dtype=np.int64)) * int(np.prod(w[1:], dtype=np.int64)) if len(w) == 4 else 0
    if name == "DEPTHWISE_CONV_2D" and len(ins) > 1:
        w = tensors[ins[1]].shape  # [1, kh, kw, out_c]
        return int(np.prod(out, dtype=np.int64)) * w[1] * w[2] if len(w) == 4 else 0
    if name == "FULLY_CONNECTED" and len(ins) > 1:
        w = tensors[ins[1]].shape  # [out, in]
        batch = int(np.prod(out[:-1], dtype=np.int64)) if len(out) > 1 else 1
        return batch * int(np.prod(w, dtype=np.int64))
    return 0
