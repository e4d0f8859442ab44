"""Any ``.tflite`` -> the C/C++ files a firmware compiles: the model array, the op resolver, the I/O
constants, and the arena sizes.

    from tinyprune.arrays import make_arrays
    arrays = make_arrays(model_bytes)          # measures arenas with TFLM and the tinyprune runtime
    arrays.files                               # {"model_data.h": "...", "model_data.cc": "...", ...}

Files (all valid C99 and C++11, so either compiler takes them):

* ``model_data.h`` / ``model_data.cc``: ``const unsigned char g_model_data[]``, 16-byte aligned
  (the tinyprune runtime reads int32 biases in place; TFLM wants 16 too), in ``.rodata`` (flash),
  and ``g_model_data_len``. The array holds the file's bytes unchanged.
* ``model_ops.h``: the operators the model uses, as a plain list (``MODEL_OP_NAMES``), as a
  TFLM ``MicroMutableOpResolver<N>`` registration function (compiled only as C++ when TFLM's
  header is on the include path), and as ``TPR_OP_<NAME>`` selections for the tinyprune runtime.
* ``model_io.h``: input/output shapes, types, scales and zero points, and the arena sizes:
  ``MODEL_TPR_ARENA_BYTES`` (the tinyprune runtime's ``required_arena_bytes``, exact),
  ``MODEL_TPR_ARENA_BYTES_FAST`` (its fast arena, with the multipliers kept in it, exact),
  ``MODEL_TFLM_ARENA_BYTES`` (TFLM's, for a 32-bit core: an estimate from the 64-bit host
  measurement, see ``tinyprune.tflm.estimate_arena_32bit``) and
  ``MODEL_TFLM_ARENA_BYTES_HOST64`` (measured on this 64-bit host). Both TFLM figures include
  the 16 bytes TFLM loses aligning an arena that is not itself 16-byte aligned.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

from tinyprune.errors import BadInput
from tinyprune.tflite_info import ModelInfo, TensorInfo, read_model

ARRAY_ALIGNMENT = 16
TFLM_ALIGNMENT_MARGIN = 16  # TFLM aligns the arena's head and tail to 16 bytes (MicroArenaBufferAlignment)
SYMBOL_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

# TFLM MicroMutableOpResolver methods whose names do not follow CamelCase of the TFLite name
_TFLM_METHOD_EXCEPTIONS = {
    "CONV_2D": "AddConv2D",
    "DEPTHWISE_CONV_2D": "AddDepthwiseConv2D",
    "AVERAGE_POOL_2D": "AddAveragePool2D",
    "MAX_POOL_2D": "AddMaxPool2D",
    "L2_POOL_2D": "AddL2Pool2D",
    "PADV2": "AddPadV2",
    "RELU6": "AddRelu6",
    "RELU_N1_TO_1": "AddReluN1To1",
    "SPACE_TO_BATCH_ND": "AddSpaceToBatchNd",
    "BATCH_TO_SPACE_ND": "AddBatchToSpaceNd",
}
_C_TYPES = {"int8": "kTfLiteInt8", "float32": "kTfLiteFloat32", "int32": "kTfLiteInt32", "uint8": "kTfLiteUInt8",
            "int16": "kTfLiteInt16"}


def tflm_method(op_name: str) -> str:
    """TFLM's ``MicroMutableOpResolver`` method that registers ``op_name`` (e.g. CONV_2D -> AddConv2D)."""
    if op_name in _TFLM_METHOD_EXCEPTIONS:
        return _TFLM_METHOD_EXCEPTIONS[op_name]
    return "Add" + "".join(part.capitalize() for part in op_name.split("_"))


@dataclass(frozen=True)
class ArenaSizes:
    tpr_bytes: int | None  # the tinyprune runtime (exact), None if it cannot run the model
    tflm_host_bytes: int  # TFLM's smallest working arena on this 64-bit host
    tflm_32bit_bytes: int  # estimate for a 32-bit core
    tflm_recommended_bytes: int  # the 32-bit estimate + alignment margin, rounded to 16: allocate this
    tpr_fast_bytes: int | None = None  # the runtime's fast arena: multipliers computed once (exact)


@dataclass(frozen=True)
class Arrays:
    files: dict[str, str]  # file name -> contents
    model_bytes: int
    ops: tuple[str, ...]
    arena: ArenaSizes
    unsupported_ops: tuple[str, ...] = ()  # operators the tinyprune runtime does not implement
    inputs: tuple[dict, ...] = field(default_factory=tuple)
    outputs: tuple[dict, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict:
        return {"model_bytes": self.model_bytes, "ops": list(self.ops), "unsupported_ops": list(self.unsupported_ops),
                "arena": asdict(self.arena), "inputs": list(self.inputs), "outputs": list(self.outputs),
                "files": sorted(self.files)}


def measure_arenas(model: bytes, info: ModelInfo | None = None) -> ArenaSizes:
    """TFLM's arena by bisection with the real interpreter, and the tinyprune runtime's exact plan."""
    from tinyprune import runtime

    info = info or read_model(model)
    host, est32 = runtime.tflm_arena_bytes(model)
    supported = set(runtime.op_list())
    tpr = fast = None
    if set(info.op_names) <= supported:
        try:
            tpr = runtime.required_arena_bytes(model)
            fast = runtime.required_arena_bytes(model, fast=True)
        except BadInput:
            tpr = fast = None
    recommended = (est32 + TFLM_ALIGNMENT_MARGIN + 15) // 16 * 16
    return ArenaSizes(tpr, host, est32, recommended, fast)


def tensor_dict(t: TensorInfo) -> dict:
    return {"name": t.name, "shape": list(t.shape), "dtype": t.dtype,
            "scale": t.scales[0] if t.scales else None,
            "zero_point": t.zero_points[0] if t.zero_points else None}


def make_arrays(model: bytes, symbol: str = "g_model_data", arena: ArenaSizes | None = None,
                source_name: str = "model.tflite") -> Arrays:
    """Generate the firmware files for ``model`` (any valid .tflite)."""
    from tinyprune import runtime

    if not SYMBOL_RE.match(symbol):
        raise BadInput(f"--symbol {symbol!r} is not a C identifier", hint="use letters, digits and underscores")
    info = read_model(model)
    arena = arena or measure_arenas(model, info)
    supported = runtime.op_list()
    unsupported = tuple(n for n in info.op_names if n not in supported)
    files = {
        "model_data.h": model_data_h(symbol, len(model), source_name),
        "model_data.cc": model_data_cc(model, symbol, source_name),
        "model_ops.h": model_ops_h(info.op_names, supported),
        "model_io.h": model_io_h(info, arena, len(model)),
    }
    return Arrays(files, len(model), tuple(info.op_names), arena, unsupported,
                  tuple(tensor_dict(t) for t in info.inputs), tuple(tensor_dict(t) for t in info.outputs))


# ---- the files --------------------------------------------------------------------------------

_HEADER_NOTE = "/* Generated by tinyprune from {src}; do not edit. */"


def model_data_h(symbol: str, size: int, source_name: str) -> str:
    guard = f"{symbol.upper()}_H"
    return "\n".join([
        _HEADER_NOTE.format(src=source_name),
        f"#ifndef {guard}",
        f"#define {guard}",
        "",
        f"#define {symbol.upper()}_LEN {size}u",
        f"#define {symbol.upper()}_ALIGNMENT {ARRAY_ALIGNMENT}",
        "",
        "#ifdef __cplusplus",
        'extern "C" {',
        "#endif",
        "",
        f"/* The TFLite flatbuffer, {size} bytes, {ARRAY_ALIGNMENT}-byte aligned, in flash (.rodata). */",
        f"extern const unsigned char {symbol}[];",
        f"extern const unsigned int {symbol}_len;",
        "",
        "#ifdef __cplusplus",
        "}",
        "#endif",
        "",
        f"#endif /* {guard} */",
        "",
    ])


def model_data_cc(model: bytes, symbol: str, source_name: str) -> str:
    rows = []
    for i in range(0, len(model), 12):
        rows.append("    " + ", ".join(f"0x{b:02x}" for b in model[i:i + 12]) + ",")
    return "\n".join([
        _HEADER_NOTE.format(src=source_name),
        '#include "model_data.h"',
        "",
        "/* C11/C++11 spell alignment differently; GCC and Clang take the attribute in both. */",
        "#if defined(__GNUC__) || defined(__clang__)",
        f"#define TP_MODEL_ALIGN __attribute__((aligned({ARRAY_ALIGNMENT})))",
        "#elif defined(__cplusplus)",
        f"#define TP_MODEL_ALIGN alignas({ARRAY_ALIGNMENT})",
        "#else",
        f"#define TP_MODEL_ALIGN _Alignas({ARRAY_ALIGNMENT})",
        "#endif",
        "",
        f"TP_MODEL_ALIGN const unsigned char {symbol}[{len(model)}] = {{",
        *rows,
        "};",
        f"const unsigned int {symbol}_len = {len(model)}u;",
        "",
    ])


def model_ops_h(op_names: list[str], supported: dict[str, tuple[int, int]]) -> str:
    n = len(op_names)
    quoted = ", ".join(f'"{name}"' for name in op_names)
    lines = [
        "/* Generated by tinyprune: the operators this model uses; do not edit. */",
        "#ifndef MODEL_OPS_H",
        "#define MODEL_OPS_H",
        "",
        f"#define MODEL_OP_COUNT {n}",
        f"#define MODEL_OP_NAMES {{ {quoted} }}",
        "",
        "/* tinyprune runtime: build only these operators (see firmware/runtime/README.md). */",
        "#define TPR_OPS_SELECTED 1",
    ]
    for name in sorted(op_names):
        if name in supported:
            lines.append(f"#define TPR_OP_{name} 1")
        else:
            lines.append(f"/* {name}: not implemented by the tinyprune runtime */")
    lines += [
        "",
        "/* TensorFlow Lite Micro: an op resolver with exactly these operators.",
        " *   ModelOpResolver resolver;",
        " *   if (RegisterModelOps(resolver) != kTfLiteOk) { ... }",
        " *   tflite::MicroInterpreter interpreter(tflite::GetModel(g_model_data), resolver, arena, arena_size); */",
        "#if defined(__cplusplus) && defined(__has_include)",
        "#if __has_include(\"tensorflow/lite/micro/micro_mutable_op_resolver.h\")",
        "#include \"tensorflow/lite/micro/micro_mutable_op_resolver.h\"",
        f"using ModelOpResolver = tflite::MicroMutableOpResolver<{max(n, 1)}>;",
        "inline TfLiteStatus RegisterModelOps(ModelOpResolver& resolver) {",
    ]
    for name in op_names:
        lines.append(f"  if (resolver.{tflm_method(name)}() != kTfLiteOk) return kTfLiteError;")
    lines += [
        "  return kTfLiteOk;",
        "}",
        "#endif",
        "#endif",
        "",
        "#endif /* MODEL_OPS_H */",
        "",
    ]
    return "\n".join(lines)


def _c_float(x: float) -> str:
    return f"{float(x)!r}f" if x == x and abs(x) != float("inf") else "0.0f"


def _io_block(prefix: str, tensors: list[TensorInfo]) -> list[str]:
    lines = [f"#define MODEL_{prefix}_COUNT {len(tensors)}"]
    for i, t in enumerate(tensors):
        p = f"MODEL_{prefix}{i}"
        dims = ", ".join(str(d) for d in t.shape)
        numel = 1
        for d in t.shape:
            numel *= d
        lines += [
            f"/* {prefix.lower()} {i}: '{t.name}' {t.dtype}{list(t.shape)} */",
            f"#define {p}_DIMS {{ {dims} }}",
            f"#define {p}_NDIMS {len(t.shape)}",
            f"#define {p}_ELEMENTS {numel}",
            f"#define {p}_BYTES {t.nbytes}",
            f"#define {p}_TYPE_{t.dtype.upper()} 1",
            f"#define {p}_TFLITE_TYPE {_C_TYPES.get(t.dtype, 'kTfLiteNoType')}",
            f"#define {p}_SCALE {_c_float(t.scales[0]) if t.scales else '0.0f'}",
            f"#define {p}_ZERO_POINT {t.zero_points[0] if t.zero_points else 0}",
        ]
    return lines


def model_io_h(info: ModelInfo, arena: ArenaSizes, model_size: int) -> str:
    lines = [
        "/* Generated by tinyprune: the model's inputs, outputs and memory needs; do not edit.",
        " * Quantized values: real = SCALE * (q - ZERO_POINT). Inputs are channels-last (NHWC, or NLC). */",
        "#ifndef MODEL_IO_H",
        "#define MODEL_IO_H",
        "",
        f"#define MODEL_BYTES {model_size}",
    ]
    if arena.tpr_bytes is not None:
        lines.append("/* tinyprune runtime arena (exact: tpr_required_arena_bytes on this model) */")
        lines.append(f"#define MODEL_TPR_ARENA_BYTES {arena.tpr_bytes}")
        if arena.tpr_fast_bytes is not None:
            lines.append("/* with this much (tpr_fast_arena_bytes) tpr_init computes the convolutions' multipliers")
            lines.append(" * once and keeps them in the arena: faster invokes, the same outputs */")
            lines.append(f"#define MODEL_TPR_ARENA_BYTES_FAST {arena.tpr_fast_bytes}")
    else:
        lines.append("/* the tinyprune runtime cannot run this model (unsupported operators) */")
    lines += [
        "/* TensorFlow Lite Micro arena: allocate MODEL_TFLM_ARENA_BYTES on a 32-bit core (an estimate from",
        " * the 64-bit host measurement + 16 bytes of alignment margin); the host figure is measured. */",
        f"#define MODEL_TFLM_ARENA_BYTES {arena.tflm_recommended_bytes}",
        f"#define MODEL_TFLM_ARENA_BYTES_32BIT_ESTIMATE {arena.tflm_32bit_bytes}",
        f"#define MODEL_TFLM_ARENA_BYTES_HOST64 {arena.tflm_host_bytes}",
        "",
        *_io_block("INPUT", info.inputs),
        "",
        *_io_block("OUTPUT", info.outputs),
        "",
        "#endif /* MODEL_IO_H */",
        "",
    ]
    return "\n".join(lines)
