"""ONNX -> Keras (channels-last) lowering, written for the operators tinyprune's runtime executes.

The ONNX graph comes from ``tinyprune.export`` (PyTorch layout: (N, C, H, W), (N, C, L), (N, F)).
Each node is lowered by a handler in ``ops.HANDLERS`` (keyed by ONNX op type) into Keras layers
whose int8 TFLite conversion uses only CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED, pooling,
ADD, MUL, RESHAPE, SOFTMAX, MEAN, PAD(V2), CONCATENATION, LOGISTIC, TANH and HARD_SWISH.

Layout rules
------------
Every ONNX value is either a constant (numpy; shape plumbing is folded by ``fold.FOLDERS``) or an
activation, ``values.Act``, which records how its Keras tensor holds the torch tensor of one sample:

* ``shape``: the torch shape of one sample (no batch dimension);
* ``perm``: Keras axis j (after the batch) is torch axis ``perm[j]``. The default layout is
  channels-last for rank >= 2 ((C, H, W) -> (H, W, C), (C, L) -> (L, C)), identity for rank 1;
* ``order``: rank 1 only: Keras feature j is torch feature ``order[j]``. Flatten of a
  channels-last map gives such a permuted vector; the next Gemm/MatMul absorbs the permutation
  into its weight columns, so no TRANSPOSE is ever emitted.

Two layouts hold the same bytes when their memory maps (Keras position -> torch flat index)
agree; then a RESHAPE (an alias in the runtime) converts one into the other. A layout change that
would need a real transpose raises BadInput. Transpose nodes only relabel ``perm``; the axes of
Concat, Softmax, ReduceMean and Pad are mapped through it.

Operator choices
----------------
* BatchNormalization, bias Adds and per-channel Muls that follow a Conv/Gemm/MatMul are folded
  into its weights; a following ReLU/ReLU6 becomes the layer's activation (fused by the
  converter). Add + ReLU becomes Keras Add + ReLU, which the converter fuses into ADD.
* A ReLU that nothing can absorb is dropped when its input is known to be non-negative, else it
  becomes a 1x1 depthwise convolution with unit weights and a fused activation (exact; the
  runtime has no stand-alone RELU kernel).
* Padding: TF's SAME is used when it places the zeros exactly where torch does; otherwise an
  explicit ZeroPadding (PAD) holding only the pad rows a window actually reads, then VALID.
* 1-D convolutions and pools: RESHAPE (N, L, C) -> (N, 1, L, C), the 2-D op, RESHAPE back.
* Reshapes keep the batch as -1 in a constant shape: Keras's own Reshape/Flatten compute the
  batch at run time (SHAPE, STRIDED_SLICE, PACK), which the runtime does not execute.
* Layers get names derived from ONNX node names, so repeated lowerings convert to identical
  bytes (Keras's automatic names carry per-process counters).
"""

from __future__ import annotations

from tinyprune.lower.driver import CONSTANT_ONLY_OPS, SUPPORTED_OPS, lower_onnx
from tinyprune.lower.model import LoweredModel, compare_with_onnxruntime

__all__ = ["CONSTANT_ONLY_OPS", "SUPPORTED_OPS", "LoweredModel", "compare_with_onnxruntime", "lower_onnx"]
