"""Keras (NHWC) -> full-integer int8 ``.tflite`` with TensorFlow's converter, and the TFLite
interpreter that checks it.

    from tinyprune.quantize import calibration_set, quantize_int8, tflite_predict
    calib = calibration_set(x_train_keras_layout, 300, seed=0)
    model = quantize_int8(keras_model, calib)             # int8 in, int8 out, per-channel weights
    logits = tflite_predict(model, x_test_keras_layout)    # dequantized float outputs

Full-integer: ``TFLITE_BUILTINS_INT8`` only, int8 input and output tensors, per-channel int8
weights and int32 biases (the converter's defaults for ``Optimize.DEFAULT`` with a
representative dataset). The representative samples are a seeded subset of the training data,
so two runs with the same inputs give byte-identical files (FACTS: the converter is
deterministic across processes when layer names are fixed, which ``tinyprune.lower`` does).
"""

from __future__ import annotations

import os
import warnings
from typing import Callable

import numpy as np

from tinyprune.errors import CheckFailed
from tinyprune.quiet import silenced

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # before TensorFlow is imported anywhere

DEFAULT_CALIBRATION_SAMPLES = 300


def _tf():
    import logging

    import tensorflow as tf

    tf.get_logger().setLevel(logging.ERROR)
    logging.getLogger("absl").setLevel(logging.ERROR)
    return tf


def calibration_set(x: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """A deterministic subset of ``n`` samples (all of them if fewer), in a seeded order."""
    if n <= 0:
        raise ValueError("the calibration set needs at least one sample")
    order = np.random.default_rng(seed).permutation(len(x))[: min(n, len(x))]
    return np.ascontiguousarray(x[np.sort(order)], dtype=np.float32)


def quantize_int8(keras_model, calibration: np.ndarray, on_sample: Callable[[], None] | None = None) -> bytes:
    """Full-integer int8 conversion calibrated on ``calibration`` (N x channels-last sample shape)."""
    tf = _tf()
    samples = np.asarray(calibration, dtype=np.float32)

    def representative():
        for i in range(len(samples)):
            if on_sample:
                on_sample()
            yield [samples[i:i + 1]]

    conv = tf.lite.TFLiteConverter.from_keras_model(keras_model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = representative
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    return _convert(conv)


def convert_float(keras_model) -> bytes:
    """A float32 ``.tflite`` of the same model (for comparison, or hosts with an FPU to spare)."""
    tf = _tf()
    return _convert(tf.lite.TFLiteConverter.from_keras_model(keras_model))


def _convert(conv) -> bytes:
    try:
        with silenced():
            return bytes(conv.convert())
    except Exception as exc:  # the converter raises ConverterError and friends with long MLIR dumps
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckFailed(f"the TFLite converter failed: {first[:300]}",
                          hint="a layer the lowering produced may have no int8 kernel in TFLite") from None


# ---- the TFLite interpreter ---------------------------------------------------------------------

def interpreter(model: bytes, reference_kernels: bool = False):
    """TF Lite's interpreter; ``reference_kernels`` selects BUILTIN_REF (what TFLM's kernels match)."""
    tf = _tf()
    kind = (tf.lite.experimental.OpResolverType.BUILTIN_REF if reference_kernels
            else tf.lite.experimental.OpResolverType.BUILTIN)
    with warnings.catch_warnings(), silenced():  # a deprecation notice; XNNPACK's INFO line
        warnings.simplefilter("ignore")
        interp = tf.lite.Interpreter(model_content=bytes(model), experimental_op_resolver_type=kind, num_threads=1)
        interp.allocate_tensors()
    return interp


def tflite_run(model: bytes, x: np.ndarray, reference_kernels: bool = False) -> np.ndarray:
    """Raw outputs (the output tensor's own dtype) for inputs already in the input tensor's dtype."""
    interp = interpreter(model, reference_kernels)
    inp = interp.get_input_details()[0]
    out = interp.get_output_details()[0]
    results = []
    for sample in x:
        interp.set_tensor(inp["index"], sample[None, ...].astype(inp["dtype"]))
        interp.invoke()
        results.append(np.array(interp.get_tensor(out["index"])[0]))
    return np.stack(results) if results else np.zeros((0,) + tuple(out["shape"][1:]), dtype=out["dtype"])


def quantize_input(model: bytes, x: np.ndarray) -> np.ndarray:
    """Float samples (channels-last) -> the model's input dtype, with its scale and zero point."""
    from tinyprune.samples import quantize
    from tinyprune.tflite_info import read_model

    t = read_model(model).inputs[0]
    if t.dtype == "float32":
        return np.asarray(x, dtype=np.float32)
    return quantize(np.asarray(x, dtype=np.float32), t.scales[0], t.zero_points[0] if t.zero_points else 0)


def dequantize_output(model: bytes, q: np.ndarray) -> np.ndarray:
    from tinyprune.tflite_info import read_model

    t = read_model(model).outputs[0]
    if t.dtype == "float32":
        return np.asarray(q, dtype=np.float32)
    zp = t.zero_points[0] if t.zero_points else 0
    return (q.astype(np.float32) - zp) * np.float32(t.scales[0])


def tflite_predict(model: bytes, x: np.ndarray, reference_kernels: bool = False) -> np.ndarray:
    """Float outputs of a ``.tflite`` for float channels-last inputs (quantized and dequantized)."""
    return dequantize_output(model, tflite_run(model, quantize_input(model, x), reference_kernels))
