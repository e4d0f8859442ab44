"""Turn dataset samples (float32, PyTorch layout) into what a ``.tflite`` model consumes, and
draw random inputs for models that come without data.

A converted model takes channels-last tensors (NHWC, or NLC for 1-D signals) quantized with its
input tensor's scale and zero point. Quantization rounds half away from zero, as TFLite's
QUANTIZE kernel does.
"""

from __future__ import annotations

import numpy as np

from tinyprune.errors import BadInput
from tinyprune.tflite_info import TensorInfo


def to_channels_last(x: np.ndarray, model_shape: tuple[int, ...]) -> np.ndarray:
    """(N, C, ...) -> the model's layout (N, ..., C), reshaped to ``model_shape`` without batch."""
    target = tuple(model_shape[1:])
    per_sample = int(np.prod(target, dtype=np.int64))
    if int(np.prod(x.shape[1:], dtype=np.int64)) != per_sample:
        raise BadInput(f"dataset samples have shape {tuple(x.shape[1:])} ({int(np.prod(x.shape[1:]))} values) "
                       f"but the model's input is {tuple(model_shape)}",
                       hint="use the dataset the model was trained on")
    if x.ndim >= 3:  # move channels last
        x = np.moveaxis(x, 1, -1)
    return np.ascontiguousarray(x.reshape((len(x),) + target))


def quantize(x: np.ndarray, scale: float, zero_point: int, dtype=np.int8) -> np.ndarray:
    info = np.iinfo(dtype)
    q = np.trunc(x / scale + np.copysign(0.5, x)) + zero_point
    return np.clip(q, info.min, info.max).astype(dtype)


def model_inputs(x: np.ndarray, tensor: TensorInfo) -> np.ndarray:
    """Dataset samples -> the model's input tensor values, one row per sample (N, *shape[1:])."""
    x = to_channels_last(np.asarray(x, dtype=np.float32), tensor.shape)
    if tensor.dtype == "float32":
        return x
    if tensor.dtype != "int8" or not tensor.scales:
        raise BadInput(f"the model's input is {tensor.dtype}; tinyprune verifies int8 or float32 inputs")
    return quantize(x, tensor.scales[0], tensor.zero_points[0] if tensor.zero_points else 0)


def random_inputs(tensor: TensorInfo, n: int, seed: int = 0) -> np.ndarray:
    """``n`` uniformly random samples of the model's input type (for models without a dataset)."""
    rng = np.random.default_rng(seed)
    shape = (n,) + tuple(tensor.shape[1:])
    if tensor.dtype == "int8":
        return rng.integers(-128, 128, size=shape, dtype=np.int8)
    if tensor.dtype == "float32":
        return rng.standard_normal(shape).astype(np.float32)
    raise BadInput(f"cannot draw random inputs of type {tensor.dtype}")
