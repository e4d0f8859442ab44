"""Keras, imported on first use, with the few custom layers the lowering emits."""

from __future__ import annotations

import functools
import os
from types import SimpleNamespace

import numpy as np


@functools.cache
def keras_ns() -> SimpleNamespace:
    """Keras plus the few custom layers we need (constant-shape reshape, affine, mean, pad)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import logging

    import tensorflow as tf
    import keras

    tf.get_logger().setLevel(logging.ERROR)
    logging.getLogger("absl").setLevel(logging.ERROR)
    # plain Python in call(): autograph would rewrite it into temporary files under /tmp
    plain = tf.autograph.experimental.do_not_convert

    class Reshape(keras.layers.Layer):
        """Reshape with the batch as -1 in a constant shape: one RESHAPE op, no shape arithmetic."""

        def __init__(self, target, **kw):
            super().__init__(**kw)
            self.target = tuple(int(d) for d in target)

        @plain
        def call(self, x):
            return keras.ops.reshape(x, (-1, *self.target))

        def compute_output_shape(self, input_shape):
            return (input_shape[0], *self.target)

    class Affine(keras.layers.Layer):
        """x * scale + shift with constant operands: MUL and/or ADD."""

        def __init__(self, scale=None, shift=None, **kw):
            super().__init__(**kw)
            self.scale = None if scale is None else np.asarray(scale, np.float32)
            self.shift = None if shift is None else np.asarray(shift, np.float32)

        @plain
        def call(self, x):
            if self.scale is not None:
                x = keras.ops.multiply(x, self.scale)
            if self.shift is not None:
                x = keras.ops.add(x, self.shift)
            return x

    class Mean(keras.layers.Layer):
        def __init__(self, axes, keepdims, **kw):
            super().__init__(**kw)
            self.axes, self.keepdims = tuple(axes), bool(keepdims)

        @plain
        def call(self, x):
            return keras.ops.mean(x, axis=self.axes, keepdims=self.keepdims)

    class Pad(keras.layers.Layer):
        """Constant padding of any axes: PAD, or PADV2 for a non-zero value."""

        def __init__(self, pads, value, **kw):
            super().__init__(**kw)
            self.pads, self.value = [list(p) for p in pads], float(value)

        @plain
        def call(self, x):
            return keras.ops.pad(x, [[0, 0], *self.pads], constant_values=self.value or None)

    return SimpleNamespace(keras=keras, layers=keras.layers, Reshape=Reshape, Affine=Affine, Mean=Mean, Pad=Pad)
