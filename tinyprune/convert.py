"""The convert stage: torch (or ONNX) -> ONNX -> Keras NHWC -> int8 ``.tflite`` -> firmware arrays,
each step checked against an implementation we did not write.

    from tinyprune.convert import ConvertConfig, convert
    result = convert(data, model=torch_model, input_shape=(1, 40))     # or onnx_bytes=...
    result.tflite_int8, result.arrays.files, result.accuracy

Checks, in order: onnxruntime vs torch (``tinyprune.export``), TensorFlow vs onnxruntime on
real samples (``tinyprune.lower``), then an accuracy table on the test set - float torch,
ONNX (onnxruntime), int8 TFLite (TF's interpreter) and TFLM (the ``tflite_micro`` interpreter) -
so the user sees where accuracy is lost, and TFLM's int8 outputs against TF Lite's reference
kernels (``BUILTIN_REF``), which must agree exactly.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from tinyprune.errors import BadInput

# TensorFlow (float32) vs onnxruntime: allowed |difference| relative to the outputs' magnitude
LOWER_TOLERANCE = 1e-4
PARITY_SAMPLES = 64  # test samples the float parity checks use


@dataclass(frozen=True)
class ConvertConfig:
    calibration_samples: int = 300
    seed: int = 0
    float_tflite: bool = False  # also write model_float.tflite
    eval_limit: int | None = None  # evaluate on at most this many test samples
    name: str = "model"  # the model's name in the metadata
    description: str = ""
    symbol: str = "g_model_data"


@dataclass
class ConvertResult:
    onnx_bytes: bytes
    tflite_int8: bytes
    tflite_int8_metadata: bytes
    tflite_float: bytes | None
    arrays: object  # tinyprune.arrays.Arrays
    task: str
    metric: str  # accuracy or mse
    accuracy: dict[str, float | None]  # stage -> metric on the test set (float, onnx, tflite_int8, tflm)
    parity: dict[str, float]  # max |diff| of the float checks
    tflm_vs_tflite_ref_mismatches: int  # int8 output bytes that differ (must be 0)
    eval_samples: int
    calibration_samples: int
    ops: tuple[str, ...]
    onnx_ops: tuple[str, ...]
    cost_estimate: dict | None = None  # the pruning cost model's prediction for comparison
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def metadata_overhead_bytes(self) -> int:
        return len(self.tflite_int8_metadata) - len(self.tflite_int8)

    def files(self) -> dict[str, bytes]:
        out = {"model.onnx": self.onnx_bytes, "model_int8.tflite": self.tflite_int8,
               "model_int8_metadata.tflite": self.tflite_int8_metadata}
        if self.tflite_float is not None:
            out["model_float.tflite"] = self.tflite_float
        out.update({name: text.encode() for name, text in self.arrays.files.items()})
        return out


def _metric(task: str, outputs: np.ndarray, x: np.ndarray, y: np.ndarray) -> float:
    if task == "reconstruction":
        return float(((outputs.reshape(len(x), -1) - x.reshape(len(x), -1)) ** 2).mean())
    return float((outputs.reshape(len(outputs), -1).argmax(axis=1) == y).mean())


def convert(data, model=None, input_shape: tuple[int, ...] | None = None, onnx_bytes: bytes | None = None,
            cfg: ConvertConfig = ConvertConfig(), task: str = "classification", labels: tuple[str, ...] = (),
            progress: Callable[[str], None] | None = None) -> ConvertResult:
    """Convert a torch ``model`` (per-sample ``input_shape``) or ready ``onnx_bytes``; ``data`` is a
    ``tinyprune.data.Dataset`` (calibration from its training split, accuracy on its test split)."""
    import time

    from tinyprune import arrays as arraysmod
    from tinyprune import export, lower, metadata, quantize, tflm
    from tinyprune.progress import bar
    from tinyprune.tflite_info import read_model

    say = progress or (lambda text: None)
    timings: dict[str, float] = {}
    t0 = time.monotonic()
    n_eval = len(data.x_test) if cfg.eval_limit is None else min(cfg.eval_limit, len(data.x_test))
    x_test, y_test = data.x_test[:n_eval], data.y_test[:n_eval]
    parity_x = x_test[:PARITY_SAMPLES]
    parity: dict[str, float] = {}

    if onnx_bytes is None:
        if model is None or input_shape is None:
            raise ValueError("convert needs a torch model and its input shape, or onnx_bytes")
        say("export to ONNX")
        exported = export.export_onnx(model, tuple(input_shape), parity_x)
        onnx_bytes = exported.onnx_bytes
        parity["onnx_vs_torch"] = exported.max_abs_diff
    timings["export"] = time.monotonic() - t0
    reference = export.run_onnx(onnx_bytes, parity_x)
    n_out = int(np.prod(reference.shape[1:])) if reference.ndim > 1 else 1
    if task == "classification" and data.num_classes > n_out:  # before the long part
        raise BadInput(f"the dataset's labels go up to {data.num_classes - 1} but the model has {n_out} outputs",
                       hint="labels must be class indices 0..outputs-1; use the dataset the model was built for")

    say("lower ONNX to TensorFlow (NHWC)")
    lowered = lower.lower_onnx(onnx_bytes, name=cfg.name)
    tf_out = lowered.run(parity_x)  # PyTorch layout in and out
    parity["tensorflow_vs_onnx"], _ = export.check_close(
        "TensorFlow and onnxruntime disagree on the lowered model", tf_out, reference, LOWER_TOLERANCE,
        hint="this is a bug in tinyprune's lowering; please report the model")
    timings["lower"] = time.monotonic() - t0 - sum(timings.values())

    calib = quantize.calibration_set(lowered.to_keras_layout(data.x_train), cfg.calibration_samples, cfg.seed)
    with bar(total=len(calib), desc="calibrate int8", unit="sample") as b:
        tflite_int8 = quantize.quantize_int8(lowered.keras_model, calib, on_sample=lambda: b.update(1))
    tflite_float = quantize.convert_float(lowered.keras_model) if cfg.float_tflite else None
    timings["quantize"] = time.monotonic() - t0 - sum(timings.values())

    say(f"evaluate float, ONNX, int8 TFLite and TFLite Micro on {n_eval} test samples")
    xk = lowered.to_keras_layout(x_test)
    outputs = {}
    if model is not None:
        import torch

        with torch.no_grad():
            outputs["float"] = model.eval()(torch.from_numpy(np.ascontiguousarray(x_test))).numpy()
    outputs["onnx"] = export.run_onnx(onnx_bytes, x_test)
    outputs["tflite_int8"] = lowered.to_torch_layout(quantize.tflite_predict(tflite_int8, xk))
    q_in = quantize.quantize_input(tflite_int8, xk)
    arena = arraysmod.measure_arenas(tflite_int8)
    tflm_raw = tflm.run_batch(tflite_int8, q_in, arena_bytes=arena.tflm_host_bytes + 1024)
    ref_raw = quantize.tflite_run(tflite_int8, q_in, reference_kernels=True)
    mismatches = int(np.count_nonzero(tflm_raw.reshape(ref_raw.shape) != ref_raw))
    outputs["tflm"] = lowered.to_torch_layout(
        quantize.dequantize_output(tflite_int8, tflm_raw).reshape((n_eval,) + tuple(lowered.keras_output_shape)))
    accuracy = {stage: _metric(task, out, x_test, y_test) for stage, out in outputs.items()}
    accuracy.setdefault("float", None)
    timings["evaluate"] = time.monotonic() - t0 - sum(timings.values())

    say("write metadata and firmware arrays")
    desc = metadata.ModelDescription(
        name=cfg.name, description=cfg.description or f"{cfg.name}, int8 (tinyprune)",
        input_description=f"channels-last {list(lowered.keras_input_shape)}, int8 quantized",
        norm_mean=getattr(data, "norm_mean", 0.0), norm_std=getattr(data, "norm_std", 1.0),
        output_description="class scores (logits)" if task == "classification" else "reconstruction",
        labels=tuple(labels) if task == "classification" else ())
    with_metadata = metadata.add_metadata(tflite_int8, desc)
    arrays = arraysmod.make_arrays(tflite_int8, symbol=cfg.symbol, arena=arena, source_name="model_int8.tflite")
    timings["arrays"] = time.monotonic() - t0 - sum(timings.values())

    estimate = None
    if model is not None:
        from tinyprune import cost

        est = cost.estimate(model, tuple(input_shape))
        estimate = {"model_bytes": est.model_bytes, "arena_bytes": est.arena_bytes,
                    "model_bytes_error": (est.model_bytes - len(tflite_int8)) / len(tflite_int8),
                    "arena_bytes_error": (None if arena.tpr_bytes is None else
                                          (est.arena_bytes - arena.tpr_bytes) / max(1, arena.tpr_bytes))}
    return ConvertResult(
        onnx_bytes=onnx_bytes, tflite_int8=tflite_int8, tflite_int8_metadata=with_metadata,
        tflite_float=tflite_float, arrays=arrays, task=task,
        metric="mse" if task == "reconstruction" else "accuracy", accuracy=accuracy, parity=parity,
        tflm_vs_tflite_ref_mismatches=mismatches, eval_samples=n_eval, calibration_samples=len(calib),
        ops=tuple(read_model(tflite_int8).op_names), onnx_ops=tuple(lowered.onnx_ops),
        cost_estimate=estimate, timings={k: round(v, 2) for k, v in timings.items()},
    )


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
