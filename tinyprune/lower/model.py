"""The result of a lowering: the Keras model and its layouts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from tinyprune.errors import BadInput, CheckFailed
from tinyprune.lower.values import default_perm


@dataclass(frozen=True)
class LoweredModel:
    keras_model: Any  # tf.keras.Model: channels-last input, batch dimension None
    torch_input_shape: tuple[int, ...]  # one sample, PyTorch layout, e.g. (1, 40), (3, 32, 32), (640,)
    keras_input_shape: tuple[int, ...]  # one sample, channels-last, e.g. (40, 1), (32, 32, 3), (640,)
    output_shape: tuple[int, ...]  # one sample, PyTorch layout
    onnx_ops: tuple[str, ...]  # ONNX op types seen, in order of first use
    keras_output_shape: tuple[int, ...] = ()  # one sample, channels-last (= output_shape for rank <= 1)

    def to_keras_layout(self, x: np.ndarray) -> np.ndarray:
        """(N, *torch_input_shape) -> (N, *keras_input_shape)."""
        x = np.asarray(x, dtype=np.float32)
        if tuple(x.shape[1:]) != self.torch_input_shape:
            raise BadInput(f"input batch has per-sample shape {tuple(x.shape[1:])}, the model expects "
                           f"{self.torch_input_shape} (PyTorch layout)")
        return np.ascontiguousarray(np.transpose(x, (0, *(p + 1 for p in default_perm(x.ndim - 1)))))

    def to_torch_layout(self, y: np.ndarray) -> np.ndarray:
        """A Keras output batch (N, *keras_output_shape) -> (N, *output_shape)."""
        y = np.asarray(y)
        inverse = np.argsort(default_perm(y.ndim - 1))
        return np.transpose(y, (0, *(int(p) + 1 for p in inverse)))

    def run(self, x: np.ndarray, batch: int = 256) -> np.ndarray:
        """Float inference: torch-layout inputs in, torch-layout outputs out."""
        xk = self.to_keras_layout(x)
        outs = [np.asarray(self.keras_model(xk[i:i + batch], training=False)) for i in range(0, len(xk), batch)]
        y = np.concatenate(outs) if outs else np.zeros((0, *self.keras_output_shape), np.float32)
        return self.to_torch_layout(y)


def compare_with_onnxruntime(lowered: LoweredModel, onnx_bytes: bytes, x_torch_layout: np.ndarray) -> float:
    """Max |TensorFlow - onnxruntime| over a batch of torch-layout inputs."""
    from tinyprune.export import run_onnx

    x = np.asarray(x_torch_layout, dtype=np.float32)
    expected = run_onnx(onnx_bytes, x)
    got = lowered.run(x)
    if got.shape != expected.shape:
        raise CheckFailed(f"lowered model output shape {got.shape} differs from onnxruntime's {expected.shape}")
    return float(np.max(np.abs(got - expected))) if got.size else 0.0
