"""``tinyprune convert MODEL --dataset D --out DIR``: torch/ONNX -> int8 TFLite + TFLite Micro arrays."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from tinyprune.commands._common import add_json_option, add_output_options
from tinyprune.commands._target import positive_int

HELP = "torch/ONNX model -> int8 TFLite + TFLite Micro C arrays"
DESCRIPTION = """\
Quantize and convert a model for a microcontroller, checking every step against an
implementation tinyprune did not write:

  torch --export--> ONNX          onnxruntime vs torch (max |diff| reported)
  ONNX  --lower---> TensorFlow    NHWC Keras model; TensorFlow vs onnxruntime on test samples
  TF    --quantize> int8 .tflite  full-integer (int8 in/out, per-channel weights, int32 bias),
                                  calibrated on --calibration-samples training samples
  then an accuracy table on the test set: float torch, ONNX, int8 TFLite (TF's interpreter),
  TFLite Micro (the tflite_micro interpreter), and TFLM against TF Lite's reference kernels
  (must be bit-exact).

MODEL is a saved .pt (from `tinyprune train`/`prune`, or torch.save(model)), an .onnx file,
path/to/file.py:factory with --weights, or a zoo name (with --weights, or trained from the
cache for its built-in dataset).

Writes to DIR: model.onnx, model_int8.tflite, model_int8_metadata.tflite (the same model with
tflite-support metadata: name, normalisation, labels), model_float.tflite (with --float),
model_data.h/.cc, model_ops.h, model_io.h (see `tinyprune arrays --help`) and convert_report.json.

Examples:
  tinyprune convert runs/pruned/model_pruned.pt --dataset mnist1d --out runs/int8
  tinyprune convert model.onnx --dataset data.npz --calibration-samples 500 --out runs/onnx
  tinyprune convert my_net.py:build --weights net.pt --dataset data.npz --float --out runs/mine
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="MODEL", help=".pt, .onnx, path/to/file.py:factory, or a zoo name")
    parser.add_argument("--weights", type=Path, metavar="W", help="state dict for a .py:factory or zoo model")
    parser.add_argument("--dataset", required=True, metavar="D",
                        help="digits, mnist1d or a .npz (calibration from x_train, accuracy on x_test)")
    parser.add_argument("--calibration-samples", type=positive_int, default=300, metavar="N",
                        help="representative samples for int8 calibration (default 300, seeded)")
    parser.add_argument("--limit", type=positive_int, metavar="N", help="evaluate on at most N test samples")
    parser.add_argument("--float", dest="float_tflite", action="store_true", help="also write model_float.tflite")
    parser.add_argument("--name", metavar="NAME", help="model name in the metadata (default: from MODEL)")
    parser.add_argument("--symbol", default="g_model_data", metavar="NAME", help="C name of the model array")
    parser.add_argument("--seed", type=int, default=0, help="seed of the calibration subset (default 0)")
    add_output_options(parser)
    add_json_option(parser)


def load_for_convert(spec: str, weights: Path | None, data):
    """(torch model or None, onnx bytes or None, input shape, task, a note on the weights)."""
    import torch

    from tinyprune import zoo
    from tinyprune.errors import BadInput
    from tinyprune.models import load_model, resolve_input_shape
    from tinyprune.train import TrainConfig, trained_zoo_checkpoint

    if spec.endswith(".onnx"):
        path = Path(spec)
        if not path.is_file():
            raise BadInput(f"model file {path} does not exist")
        if weights:
            raise BadInput("--weights does not apply to an .onnx model (its weights are inside)")
        onnx_bytes = path.read_bytes()
        shape, out_size = _onnx_shapes(onnx_bytes, path)
        if tuple(shape) != tuple(data.input_shape):
            raise BadInput(f"{path} takes inputs of shape {tuple(shape)} but the dataset's are {data.input_shape}")
        # an output as large as the input (and not one score per class) is a reconstruction
        in_size = 1
        for d in shape:
            in_size *= d
        task = "reconstruction" if out_size == in_size != data.num_classes else "classification"
        return None, onnx_bytes, tuple(shape), task, "weights inside the ONNX file"
    model, info = load_model(spec, weights)
    shape = resolve_input_shape(info, data.input_shape)
    note = f"weights from {weights}" if weights else "saved model" if info.kind == "saved" else "random weights (no --weights)"
    if not weights and info.kind == "zoo" and zoo.get(info.zoo_name).dataset == data.name:
        path = trained_zoo_checkpoint(info.zoo_name, data.name, TrainConfig())
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        note = f"trained on {data.name} (tinyprune's cached checkpoint)"
    return model.eval(), None, tuple(shape), info.task, note


def _onnx_shapes(onnx_bytes: bytes, path: Path) -> tuple[tuple[int, ...], int]:
    import onnx

    from tinyprune.errors import BadInput

    try:
        m = onnx.load_from_string(onnx_bytes)
    except Exception as exc:
        raise BadInput(f"{path} is not an ONNX model: {type(exc).__name__}: {exc}") from None
    inits = {i.name for i in m.graph.initializer}
    inputs = [i for i in m.graph.input if i.name not in inits]
    if len(inputs) != 1 or len(m.graph.output) != 1:
        raise BadInput(f"{path} has {len(inputs)} inputs and {len(m.graph.output)} outputs; tinyprune converts "
                       "models with one input and one output")

    def dims(value_info) -> list:
        return [d.dim_value if d.HasField("dim_value") else None for d in value_info.type.tensor_type.shape.dim]

    shape = dims(inputs[0])
    if len(shape) < 2 or any(d is None or d <= 0 for d in shape[1:]):
        raise BadInput(f"{path}: the input shape {shape} is not static apart from the batch dimension",
                       hint="export with a fixed input shape (only the batch may be dynamic)")
    out = [d or 1 for d in dims(m.graph.output[0])[1:]]
    size = 1
    for d in out:
        size *= d
    return tuple(shape[1:]), size


def run(args: argparse.Namespace) -> int:
    from tinyprune.convert import ConvertConfig, convert
    from tinyprune.data import load_dataset
    from tinyprune.outdir import check_output_dir, staged_output, write_file_atomic, write_files
    from tinyprune.report import to_json, write_report

    check_output_dir(args.out, args.force)
    data = load_dataset(args.dataset)
    model, onnx_bytes, shape, task, note = load_for_convert(args.model, args.weights, data)
    name = args.name or Path(args.model.split(":")[0]).stem
    cfg = ConvertConfig(calibration_samples=args.calibration_samples, seed=args.seed, float_tflite=args.float_tflite,
                        eval_limit=args.limit, name=name, symbol=args.symbol)
    print(f"Converting {args.model} ({note}; input {shape}) with {data.name} for calibration and evaluation", flush=True)
    start = time.monotonic()
    result = convert(data, model=model, input_shape=shape, onnx_bytes=onnx_bytes, cfg=cfg, task=task,
                     labels=data.labels, progress=lambda text: print(f"  ... {text}", flush=True))
    report = convert_report(result, model=args.model, weights=note, dataset=args.dataset, input_shape=shape,
                            seed=args.seed, seconds=time.monotonic() - start)
    with staged_output(args.out, args.force) as tmp:
        write_files(tmp, result.files())
        write_report(tmp / "convert_report.json", report)
    if args.json_file:
        write_file_atomic(args.json_file, to_json(report))
    print(summary(report))
    print(f"Wrote {args.out}/: {', '.join(sorted(result.files()))}, convert_report.json")
    if result.tflm_vs_tflite_ref_mismatches:
        from tinyprune.errors import CheckFailed

        raise CheckFailed(f"TFLite Micro and TF Lite's reference kernels differ in {result.tflm_vs_tflite_ref_mismatches} "
                          "output bytes; the outputs were written for inspection")
    return 0



def convert_report(result, *, model: str, weights: str, dataset: str, input_shape, seed: int, seconds: float) -> dict:
    """``convert_report.json``: the keys the CLI contract names, and the rest of the figures."""
    from tinyprune.commands.arrays import arrays_report_fields
    from tinyprune.convert import sha256
    from tinyprune.report import new_report
    from tinyprune.tflite_info import read_model

    info = read_model(result.tflite_int8)
    acc = result.accuracy
    is_acc = result.metric == "accuracy"
    return new_report(
        "convert", model=model, weights=weights, dataset=dataset, input_shape=list(input_shape), task=result.task,
        metric=result.metric,
        accuracy_float=acc["float"] if is_acc else None, accuracy_onnx=acc["onnx"] if is_acc else None,
        accuracy_tflite_int8=acc["tflite_int8"] if is_acc else None, accuracy_tflm=acc["tflm"] if is_acc else None,
        metric_by_stage=acc, eval_samples=result.eval_samples, calibration_samples=result.calibration_samples,
        calibration_seed=seed, parity_max_abs_diff=result.parity,
        tflm_vs_tflite_ref_mismatches=result.tflm_vs_tflite_ref_mismatches,
        metadata_bytes=result.metadata_overhead_bytes, model_int8_metadata_bytes=len(result.tflite_int8_metadata),
        onnx_ops=list(result.onnx_ops), cost_estimate=result.cost_estimate,
        sha256={"model_int8.tflite": sha256(result.tflite_int8), "model.onnx": sha256(result.onnx_bytes)},
        run={"seconds": round(seconds, 1), "timings_s": result.timings},
        **arrays_report_fields(result.arrays, info),
    )

def summary(r: dict) -> str:
    from tinyprune.commands.arrays import summary as arrays_summary

    def fmt(v) -> str:
        if v is None:
            return "n/a"
        return f"{100 * v:.2f} %" if r["metric"] == "accuracy" else f"{v:.5f}"

    m = r["metric_by_stage"]
    lines = ["", f"Conversion summary ({r['metric']} on {r['eval_samples']} test samples)",
             f"  float (torch)        {fmt(m.get('float'))}",
             f"  ONNX (onnxruntime)   {fmt(m['onnx'])}",
             f"  int8 TFLite          {fmt(m['tflite_int8'])}",
             f"  TFLite Micro         {fmt(m['tflm'])}",
             f"  TFLM vs TF Lite reference kernels: {r['tflm_vs_tflite_ref_mismatches']} differing output bytes",
             "  float checks         " + ", ".join(f"{k.replace('_', ' ')} max |diff| {v:.2g}"
                                                  for k, v in r["parity_max_abs_diff"].items()),
             f"  metadata             +{r['metadata_bytes']} B in model_int8_metadata.tflite "
             f"(the firmware arrays leave it out)"]
    return "\n".join(lines) + arrays_summary(r)
