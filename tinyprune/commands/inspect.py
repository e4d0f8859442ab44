"""``tinyprune inspect MODEL.tflite [--json]``: will the firmware's runtime run this model, and in
how much RAM?"""

from __future__ import annotations

import argparse
from pathlib import Path

from tinyprune.commands._common import print_json
from tinyprune.errors import BadInput

HELP = "validate a .tflite with the firmware's reader and show its plan"
DESCRIPTION = """\
Validate a .tflite file with the firmware runtime's own reader (compiled for this host), then
show its operators (with MACs and whether the runtime supports each), its tensors (shape, dtype,
quantization) and the arena the runtime plans for it beside the arena TFLite Micro needs.

The quick check to run before building firmware around a model from anywhere. Exit status 0
when the runtime accepts the model, 2 (with the reader's message) when the file is malformed or
uses something the runtime does not implement.

Examples:
  tinyprune inspect model_int8.tflite
  tinyprune inspect model_int8.tflite --json
  tinyprune inspect model_int8.tflite --no-tflm     # skip the TFLite Micro arena search
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", type=Path, metavar="MODEL.tflite", help="the model to inspect")
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    parser.add_argument("--no-tflm", action="store_true",
                        help="do not measure TFLite Micro's arena (it needs many interpreter runs)")


def _quant(t) -> str:
    if not t.scales:
        return "-"
    if len(t.scales) == 1:
        return f"scale {t.scales[0]:.6g}, zero point {t.zero_points[0] if t.zero_points else 0}"
    return f"per-channel: {len(t.scales)} scales on axis {t.quantized_dimension}"


def inspect_model(data: bytes, with_tflm: bool = True) -> dict:
    """Everything `tinyprune inspect` reports, as a dict (also the --json document)."""
    from tinyprune import runtime
    from tinyprune.tflite_info import read_model

    status, detail = runtime.check_model(data)
    report: dict = {"size_bytes": len(data), "valid": status == "TPR_OK", "status": status,
                    "detail": detail if status != "TPR_OK" else ""}
    try:
        info = read_model(data)
    except BadInput as exc:
        if status == "TPR_OK":  # the runtime accepted what the Python parser cannot read
            raise
        report["parse_error"] = exc.message
        return report
    inputs = {t.index for t in info.inputs}
    outputs = {t.index for t in info.outputs}
    report["operators"] = [
        {"index": op.index, "name": op.name, "builtin_code": op.builtin_code, "version": op.version,
         "inputs": list(op.inputs), "outputs": list(op.outputs), "macs": op.macs,
         "supported": runtime.op_support(op.builtin_code, op.version) == "ok",
         "support": runtime.op_support(op.builtin_code, op.version)}
        for op in info.operators
    ]
    report["tensors"] = [
        {"index": t.index, "name": t.name, "shape": list(t.shape), "dtype": t.dtype, "bytes": t.nbytes,
         "kind": ("input" if t.index in inputs else "output" if t.index in outputs
                  else "constant" if t.is_constant else "activation"),
         "scales": list(t.scales), "zero_points": list(t.zero_points),
         "quantized_dimension": t.quantized_dimension}
        for t in info.tensors
    ]
    report["inputs"] = sorted(inputs)
    report["outputs"] = sorted(outputs)
    report["macs"] = info.macs
    report["all_ops_supported"] = all(op["supported"] for op in report["operators"])
    report["arena_bytes"] = runtime.required_arena_bytes(data) if status == "TPR_OK" else None
    report["arena_bytes_fast"] = runtime.required_arena_bytes(data, fast=True) if status == "TPR_OK" else None
    report["tflm_arena_bytes"] = report["tflm_arena_bytes_32bit"] = None
    if with_tflm:
        try:
            report["tflm_arena_bytes"], report["tflm_arena_bytes_32bit"] = runtime.tflm_arena_bytes(data)
        except BadInput as exc:
            report["tflm_error"] = exc.message
    return report


def _table(header, rows) -> list[str]:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip() for row in [header, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return ["  " + line for line in lines]


def render(path: Path, r: dict) -> str:
    lines = [f"{path}: {r['size_bytes']} bytes, {len(r['operators'])} operators, {len(r['tensors'])} tensors"]
    lines += ["", "operators"]
    lines += _table(("#", "op", "version", "runtime", "inputs -> outputs", "MACs"), [
        (o["index"], o["name"], o["version"], "yes" if o["supported"] else o["support"],
         f"{o['inputs']} -> {o['outputs']}", f"{o['macs']:,}" if o["macs"] else "")
        for o in r["operators"]])
    lines += ["", "tensors"]
    lines += _table(("#", "kind", "dtype", "shape", "bytes", "quantization", "name"), [
        (t["index"], t["kind"], t["dtype"], "x".join(map(str, t["shape"])) or "scalar", t["bytes"],
         _quant(_T(t)), t["name"][:48]) for t in r["tensors"]])
    lines += ["", f"MACs per inference: {r['macs']:,}", ""]
    if r["arena_bytes"] is not None:
        lines.append(f"runtime arena: {r['arena_bytes']:,} bytes (activations + 4 bytes per tensor); "
                     f"{r['arena_bytes_fast']:,} to keep the multipliers in it (faster invokes)")
    if r.get("tflm_arena_bytes"):
        lines.append(f"TFLM arena:    {r['tflm_arena_bytes']:,} bytes on this 64-bit host, "
                     f"~{r['tflm_arena_bytes_32bit']:,} on a 32-bit core (estimate)")
        if r["arena_bytes"]:
            lines.append(f"ratio:         {r['arena_bytes'] / r['tflm_arena_bytes_32bit']:.2f} of TFLM's 32-bit arena")
    elif r.get("tflm_error"):
        lines.append(f"TFLM arena:    not measured ({r['tflm_error']})")
    lines.append("")
    lines.append("valid: the tinyprune runtime runs this model" if r["valid"]
                 else f"not valid for the tinyprune runtime: {r['detail']}")
    return "\n".join(lines)


class _T:
    """tensor dict -> the attributes _quant reads"""

    def __init__(self, t: dict):
        self.scales, self.zero_points, self.quantized_dimension = t["scales"], t["zero_points"], t["quantized_dimension"]


def run(args: argparse.Namespace) -> int:
    path: Path = args.model
    if not path.is_file():
        raise BadInput(f"{path} does not exist or is not a file", hint="give the path of a .tflite model")
    data = path.read_bytes()
    report = inspect_model(data, with_tflm=not args.no_tflm)
    report = {"file": str(path), **report}
    if "parse_error" in report:
        if args.json:
            print_json(report)
        raise BadInput(f"{path}: {report['detail']}", hint="is it a .tflite written by the TFLite converter?")
    if args.json:
        print_json(report)
    else:
        print(render(path, report))
    if not report["valid"]:
        unsupported = [f"{o['name']} (builtin code {o['builtin_code']}, version {o['version']})"
                       for o in report["operators"] if not o["supported"]]
        hint = ("the runtime implements: " + ", ".join(sorted(_supported_names()))) if unsupported else None
        raise BadInput(f"{path}: {report['detail']}", hint=hint)
    return 0


def _supported_names() -> list[str]:
    from tinyprune import runtime

    return list(runtime.op_list())
