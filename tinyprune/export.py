"""torch -> ONNX, checked against onnxruntime.

The legacy TorchScript exporter (``dynamo=False``) is used: it needs no onnxscript, folds
Conv + BatchNorm in eval mode, and its output for the same module is byte-identical run to run.
BatchNorm layers it cannot fold (after a Linear) are folded when lowering (``tinyprune.lower``).
The exported graph has a dynamic batch dimension, so the same file serves calibration batches
and batch-size-1 inference.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from tinyprune.errors import BadInput, CheckFailed
from tinyprune.quiet import silenced

OPSET = 17  # fixed: HardSwish needs 14; 17 is the newest the TorchScript exporter covers fully
INPUT_NAME = "input"
OUTPUT_NAME = "output"
# onnxruntime vs torch, float32: allowed |difference| relative to the output's magnitude
TOLERANCE = 1e-4


@dataclass(frozen=True)
class ExportResult:
    onnx_bytes: bytes
    max_abs_diff: float  # onnxruntime vs torch on the check inputs
    reference_magnitude: float  # max |torch output|, the scale the difference is judged against
    samples: int


def export_onnx(model: nn.Module, input_shape: tuple[int, ...], check_inputs: np.ndarray | None = None,
                tolerance: float = TOLERANCE) -> ExportResult:
    """Export ``model`` (eval mode) for inputs of per-sample shape ``input_shape`` and compare
    onnxruntime with torch on ``check_inputs`` (N x input_shape; random normal if None)."""
    model = model.eval()
    example = torch.zeros(1, *input_shape)
    buf = io.BytesIO()
    try:
        with warnings.catch_warnings(), silenced(1):
            warnings.simplefilter("ignore")
            torch.onnx.export(
                model, (example,), buf, dynamo=False, opset_version=OPSET,
                input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
                do_constant_folding=True,
            )
    except Exception as exc:  # torch raises many types for untraceable models
        raise BadInput(f"torch.onnx.export failed: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}",
                       hint="the model must be traceable for a fixed input shape "
                            f"{tuple(input_shape)} (no data-dependent control flow)") from None
    onnx_bytes = buf.getvalue()
    if check_inputs is None:
        check_inputs = np.random.default_rng(0).normal(size=(8, *input_shape)).astype(np.float32)
    check_inputs = np.asarray(check_inputs, dtype=np.float32)
    with torch.no_grad():
        expected = model(torch.from_numpy(check_inputs)).numpy()
    got = run_onnx(onnx_bytes, check_inputs)
    diff, magnitude = check_close("onnxruntime and torch disagree on the exported model", got, expected, tolerance,
                                  hint="a layer may behave differently in export (e.g. training-mode code paths)")
    return ExportResult(onnx_bytes, diff, magnitude, len(check_inputs))


def check_close(what: str, got: np.ndarray, expected: np.ndarray, tolerance: float, hint: str) -> tuple[float, float]:
    """(max |got - expected|, max |expected|); CheckFailed when the difference exceeds
    ``tolerance`` relative to the outputs' magnitude (absolute below magnitude 1)."""
    diff = float(np.max(np.abs(got - expected))) if expected.size else 0.0
    magnitude = float(np.max(np.abs(expected))) if expected.size else 0.0
    if not diff <= tolerance * max(1.0, magnitude):
        raise CheckFailed(f"{what}: max |diff| {diff:.3g} (outputs up to {magnitude:.3g}, tolerance {tolerance:g} "
                          f"relative)", hint=hint)
    return diff, magnitude


def run_onnx(onnx_bytes: bytes, x: np.ndarray, batch: int = 256) -> np.ndarray:
    """Run a single-input, single-output ONNX model with onnxruntime (CPU), in batches."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.log_severity_level = 3
    sess = ort.InferenceSession(onnx_bytes, opts, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    outs = [sess.run(None, {name: x[i:i + batch]})[0] for i in range(0, len(x), batch)]
    return np.concatenate(outs) if outs else np.zeros((0,), np.float32)
