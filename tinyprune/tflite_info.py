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
    """Parse ``data``; a file that is not a TFLite model raises BadInput."""
    schema = _schema()
    data = bytes(data)
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise BadInput("not a TFLite model (the file identifier 'TFL3' is missing at offset 4)",
                       hint="give a .tflite file written by the TFLite converter")
    try:
        model = schema.ModelT.InitFromPackedBuf(data, 0)
    except Exception as exc:  # the generated parser raises whatever a corrupt buffer triggers
        raise BadInput(f"the TFLite model is malformed: {type(exc).__name__}: {exc}") from None
    if not model.subgraphs:
        raise BadInput("the TFLite model has no subgraph")
    names = builtin_names()
    graph = model.subgraphs[0]
    buffers = model.buffers or []

    tensors = []
    for i, t in enumerate(graph.tensors or []):
        q = t.quantization
        scales = tuple(float(s) for s in (q.scale if q is not None and q.scale is not None else []))
        zps = tuple(int(z) for z in (q.zeroPoint if q is not None and q.zeroPoint is not None else []))
        buf = buffers[t.buffer] if 0 <= t.buffer < len(buffers) else None
        constant = buf is not None and (buf.data is not None and len(buf.data) > 0 or (buf.size or 0) > 0)
        tensors.append(TensorInfo(
            index=i,
            name=t.name.decode() if isinstance(t.name, bytes) else str(t.name or ""),
            shape=tuple(int(d) for d in (t.shape if t.shape is not None else [])),
            dtype=_DTYPES.get(t.type, f"type{t.type}"),
            scales=scales,
            zero_points=zps,
            quantized_dimension=int(q.quantizedDimension) if q is not None else 0,
            buffer=int(t.buffer),
            is_constant=bool(constant),
        ))

    operators, op_names = [], []
    for i, op in enumerate(graph.operators or []):
        code = model.operatorCodes[op.opcodeIndex]
        builtin = max(int(code.builtinCode), int(code.deprecatedBuiltinCode))
        name = names.get(builtin, f"BUILTIN_{builtin}")
        ins = tuple(int(x) for x in (op.inputs if op.inputs is not None else []))
        outs = tuple(int(x) for x in (op.outputs if op.outputs is not None else []))
        operators.append(OperatorInfo(i, name, builtin, int(code.version), ins, outs, _macs(name, ins, outs, tensors)))
        if name not in op_names:
            op_names.append(name)

    desc = model.description.decode() if isinstance(model.description, bytes) else (model.description or "")
    has_metadata = any((m.name or b"") in (b"TFLITE_METADATA", "TFLITE_METADATA") for m in (model.metadata or []))
    return ModelInfo(
        size_bytes=len(data),
        tensors=tensors,
        operators=operators,
        inputs=[tensors[i] for i in (graph.inputs if graph.inputs is not None else [])],
        outputs=[tensors[i] for i in (graph.outputs if graph.outputs is not None else [])],
        description=desc,
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
