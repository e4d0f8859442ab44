"""ONNX -> Keras lowering (tinyprune.lower), checked against onnxruntime.

Every model is exported by tinyprune.export (which itself checks onnxruntime against torch), lowered,
and run by TensorFlow on a batch of random inputs; the outputs must match onnxruntime's. The slow
tests run the real full-int8 TFLite conversion and check that only operators the tinyprune runtime
executes come out.
"""

from __future__ import annotations

import os
from typing import Callable

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from tinyprune import zoo
from tinyprune.errors import BadInput
from tinyprune.export import export_onnx, run_onnx
from tinyprune.lower import SUPPORTED_OPS, LoweredModel, compare_with_onnxruntime, lower_onnx

# the converter warns that int8 inputs have no statistics; we set inference_input_type on purpose
pytestmark = pytest.mark.filterwarnings("ignore:Statistics for quantized inputs:UserWarning")

TOLERANCE = 1e-4  # relative to the output's magnitude, as in tinyprune.export
# What the tinyprune C runtime executes (fused RELU/RELU6 are options of the ops, not ops).
RUNTIME_OPS = {
    "CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "AVERAGE_POOL_2D", "MAX_POOL_2D", "ADD", "MUL",
    "RESHAPE", "EXPAND_DIMS", "SQUEEZE", "SOFTMAX", "MEAN", "PAD", "PADV2", "CONCATENATION", "LOGISTIC",
    "TANH", "HARD_SWISH", "QUANTIZE", "DEQUANTIZE",
}


def randomize_batchnorm(model: nn.Module, seed: int = 0) -> nn.Module:
    """Trained-looking BatchNorm statistics, so that folding them is exercised."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                n = m.num_features
                m.running_mean.copy_(torch.randn(n, generator=g) * 0.3)
                m.running_var.copy_(torch.rand(n, generator=g) * 1.5 + 0.5)
                m.weight.copy_(torch.rand(n, generator=g) + 0.5)
                m.bias.copy_(torch.randn(n, generator=g) * 0.2)
    return model.eval()


def export(model: nn.Module, shape: tuple[int, ...], seed: int = 0) -> bytes:
    """ONNX bytes; tinyprune.export checks onnxruntime against torch on the way."""
    return export_onnx(randomize_batchnorm(model, seed), shape).onnx_bytes


def zoo_model(name: str) -> tuple[nn.Module, tuple[int, ...]]:
    torch.manual_seed(0)
    entry = zoo.get(name)
    return entry.build(), entry.input_shape


def check(model: nn.Module, shape: tuple[int, ...], samples: int = 8, seed: int = 0) -> LoweredModel:
    onnx_bytes = export(model, shape, seed)
    lowered = lower_onnx(onnx_bytes, "test")
    x = np.random.default_rng(seed).normal(size=(samples, *shape)).astype(np.float32)
    magnitude = float(np.max(np.abs(run_onnx(onnx_bytes, x))))
    diff = compare_with_onnxruntime(lowered, onnx_bytes, x)
    assert diff <= TOLERANCE * max(1.0, magnitude), f"max |diff| {diff:.3g} (outputs up to {magnitude:.3g})"
    assert lowered.torch_input_shape == tuple(shape)
    assert lowered.keras_model.input_shape == (None, *lowered.keras_input_shape)
    return lowered


# ---- the zoo ----------------------------------------------------------------------------------

ZOO_LAYOUTS = {
    "digits-cnn": (8, 8, 1), "mnist1d-cnn": (40, 1), "ds-cnn": (49, 10, 1),
    "resnet8": (32, 32, 3), "mobilenetv1-025": (96, 96, 3), "fc-autoencoder": (640,),
}


@pytest.mark.parametrize("name", list(zoo.ZOO))
def test_zoo_model_matches_onnxruntime(name):
    lowered = check(*zoo_model(name))
    assert lowered.keras_input_shape == ZOO_LAYOUTS[name]
    assert lowered.output_shape == (zoo.get(name).outputs,)
    # layout changes are absorbed into weights, never a Permute layer
    assert not [layer for layer in lowered.keras_model.layers if type(layer).__name__ == "Permute"]


# ---- one pattern per model ----------------------------------------------------------------------

def seq(*layers: nn.Module) -> nn.Module:
    return nn.Sequential(*layers)


class Branches(nn.Module):
    """Two convolutions concatenated over channels, then a 1x1 convolution."""

    def __init__(self):
        super().__init__()
        self.a = seq(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU())
        self.b = seq(nn.Conv2d(3, 5, 1), nn.Sigmoid())
        self.c = nn.Conv2d(9, 6, 1)

    def forward(self, x):
        return self.c(torch.cat([self.a(x), self.b(x)], dim=1))


class SqueezeExcite(nn.Module):
    """x * sigmoid(fc(mean(x))): a broadcast Mul of two activations, constants Add/Mul."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.fc = nn.Conv2d(8, 8, 1)

    def forward(self, x):
        y = self.conv(x)
        s = torch.sigmoid(self.fc(y.mean(dim=(2, 3), keepdim=True)))
        return (y * s) * 0.5 + 1.0


class ViewFlatten(nn.Module):
    """x.view(x.size(0), -1): Shape/Gather/Unsqueeze/Concat plumbing feeding Reshape."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 3, 3)
        self.fc = nn.Linear(3 * 4 * 5, 7)

    def forward(self, x):
        y = self.conv(x)
        return self.fc(y.view(y.size(0), -1))


class PermuteFlatten(nn.Module):
    """permute to NHWC, then flatten: the Transpose only relabels the layout."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 3, 3, padding=1)
        self.fc = nn.Linear(3 * 4 * 5, 4)

    def forward(self, x):
        return self.fc(self.conv(x).permute(0, 2, 3, 1).flatten(1))


class PadThenConv(nn.Module):
    def __init__(self, value: float = 0.0):
        super().__init__()
        self.value = value
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x):
        return self.conv(F.pad(x, (1, 2, 0, 1), value=self.value))


class MeanOverAxes(nn.Module):
    def __init__(self, keepdim: bool):
        super().__init__()
        self.keepdim = keepdim
        self.conv = nn.Conv2d(3, 6, 3, stride=2, padding=1)

    def forward(self, x):
        y = self.conv(x).mean(dim=(2, 3), keepdim=self.keepdim)
        return y.flatten(1)


class Residual1d(nn.Module):
    """Conv1d + BatchNorm1d + ReLU with a residual Add + ReLU (fused into ADD)."""

    def __init__(self):
        super().__init__()
        self.a = seq(nn.Conv1d(4, 4, 3, padding=1, bias=False), nn.BatchNorm1d(4), nn.ReLU())
        self.b = seq(nn.Conv1d(4, 4, 3, padding=1, bias=False), nn.BatchNorm1d(4))

    def forward(self, x):
        return F.relu(self.b(self.a(x)) + x)


CASES: dict[str, tuple[Callable[[], nn.Module], tuple[int, ...]]] = {
    # convolutions: grouped, depthwise (multiplier 1 and 2), SAME vs explicit PAD, stride, kernel shapes
    "grouped-conv": (lambda: seq(nn.Conv2d(4, 8, 3, padding=1, groups=2), nn.ReLU()), (4, 6, 6)),
    "depthwise-conv": (lambda: seq(nn.Conv2d(4, 4, 3, padding=1, groups=4), nn.BatchNorm2d(4), nn.ReLU6()), (4, 7, 7)),
    "depthwise-multiplier": (lambda: nn.Conv2d(3, 6, 3, groups=3), (3, 6, 6)),
    "stride2-same-odd": (lambda: nn.Conv2d(2, 4, 3, stride=2, padding=1), (2, 9, 9)),  # TF SAME == torch
    "stride2-pad-even": (lambda: nn.Conv2d(2, 4, 3, stride=2, padding=1), (2, 8, 8)),  # needs PAD
    "stride2-unused-pad": (lambda: nn.Conv2d(2, 4, (10, 4), stride=2, padding=(5, 1)), (2, 49, 10)),  # DS-CNN stem
    "asymmetric-kernel-pad": (lambda: nn.Conv2d(2, 3, (3, 1), padding=(1, 0)), (2, 5, 4)),
    "valid-stride": (lambda: nn.Conv2d(2, 3, 2, stride=2), (2, 7, 7)),
    "dilated": (lambda: nn.Conv2d(2, 3, 3, dilation=2, padding=2), (2, 8, 8)),
    # 1-D
    "conv1d-stride2": (lambda: seq(nn.Conv1d(1, 6, 5, stride=2, padding=1), nn.ReLU()), (1, 40)),
    "conv1d-same": (lambda: nn.Conv1d(3, 4, 5, padding=2), (3, 20)),
    "conv1d-depthwise": (lambda: nn.Conv1d(4, 4, 3, padding=1, groups=4), (4, 16)),
    "conv1d-residual": (lambda: Residual1d(), (4, 16)),
    "maxpool1d": (lambda: seq(nn.Conv1d(2, 3, 3), nn.ReLU(), nn.MaxPool1d(2)), (2, 17)),
    "avgpool1d": (lambda: seq(nn.Conv1d(2, 3, 3), nn.AvgPool1d(3, stride=2, padding=1)), (2, 16)),
    # 2-D pooling
    "maxpool2d": (lambda: seq(nn.Conv2d(2, 3, 3), nn.MaxPool2d(2)), (2, 9, 9)),
    "maxpool2d-pad-after-relu": (lambda: seq(nn.Conv2d(2, 3, 3), nn.ReLU(), nn.MaxPool2d(3, 2, padding=1)), (2, 10, 10)),
    "maxpool2d-same": (lambda: seq(nn.Conv2d(2, 3, 1), nn.MaxPool2d(3, 2, padding=1)), (2, 9, 9)),
    "maxpool2d-ceil": (lambda: seq(nn.Conv2d(2, 3, 1), nn.ReLU(), nn.MaxPool2d(2, ceil_mode=True)), (2, 7, 7)),
    "avgpool2d-include-pad": (lambda: seq(nn.Conv2d(2, 3, 1), nn.AvgPool2d(3, 2, padding=1)), (2, 9, 9)),
    "avgpool2d-exclude-pad": (lambda: seq(nn.Conv2d(2, 3, 1), nn.AvgPool2d(3, 2, padding=1, count_include_pad=False)), (2, 9, 9)),
    "global-average-pool": (lambda: seq(nn.Conv2d(3, 5, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(5, 2)), (3, 8, 8)),
    "reduce-mean": (lambda: MeanOverAxes(keepdim=False), (3, 8, 6)),
    "reduce-mean-keepdim": (lambda: MeanOverAxes(keepdim=True), (3, 8, 6)),
    # layout
    "flatten-linear": (lambda: seq(nn.Conv2d(2, 3, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(3 * 4 * 5, 6)), (2, 4, 5)),
    "view-flatten": (lambda: ViewFlatten(), (2, 6, 7)),
    "permute-flatten": (lambda: PermuteFlatten(), (2, 4, 5)),
    "concat-channels": (lambda: Branches(), (3, 6, 6)),
    # activations and arithmetic
    "softmax": (lambda: seq(nn.Linear(6, 5), nn.Softmax(dim=1)), (6,)),
    "softmax-channels": (lambda: seq(nn.Conv2d(2, 4, 1), nn.Softmax(dim=1)), (2, 3, 3)),
    "sigmoid-tanh-hardswish": (lambda: seq(nn.Conv2d(2, 4, 3), nn.Hardswish(), nn.Conv2d(4, 4, 1), nn.Tanh(),
                                   nn.Flatten(), nn.Linear(4 * 4 * 4, 3), nn.Sigmoid()), (2, 6, 6)),
    "relu6-linear": (lambda: seq(nn.Linear(8, 8), nn.ReLU6(), nn.Linear(8, 3)), (8,)),
    "relu-after-pool": (lambda: seq(nn.Conv2d(2, 3, 3), nn.MaxPool2d(2), nn.ReLU()), (2, 8, 8)),
    "relu-on-input": (lambda: seq(nn.ReLU(), nn.Linear(6, 3)), (6,)),
    "squeeze-excite": (lambda: SqueezeExcite(), (3, 6, 6)),
    "standalone-batchnorm1d": (lambda: seq(nn.Linear(10, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Linear(6, 4)), (10,)),
    "batchnorm2d-after-pool": (lambda: seq(nn.Conv2d(2, 3, 3), nn.MaxPool2d(2), nn.BatchNorm2d(3)), (2, 8, 8)),
    "linear-unflatten-conv": (lambda: seq(nn.Linear(6, 24), nn.ReLU(), nn.Unflatten(1, (4, 2, 3)), nn.Conv2d(4, 2, 1)), (6,)),
    "flatten-unflatten": (lambda: seq(nn.Conv2d(2, 3, 1), nn.Flatten(), nn.Unflatten(1, (3, 4, 4)), nn.Conv2d(3, 2, 3)), (2, 4, 4)),
    "dropout-identity": (lambda: seq(nn.Linear(6, 6), nn.Dropout(0.5), nn.Identity(), nn.ReLU(), nn.Linear(6, 2)), (6,)),
    # padding
    "pad-op": (lambda: PadThenConv(), (3, 5, 6)),
    "pad-op-value": (lambda: PadThenConv(0.5), (3, 5, 6)),
    "zeropad2d": (lambda: seq(nn.ZeroPad2d((2, 0, 1, 1)), nn.Conv2d(2, 2, 3)), (2, 5, 5)),
    "constantpad1d": (lambda: seq(nn.ConstantPad1d((1, 2), 0.0), nn.Conv1d(2, 3, 3)), (2, 9)),
}


def build(case: str) -> tuple[nn.Module, tuple[int, ...]]:
    factory, shape = CASES[case]
    torch.manual_seed(0)
    return factory(), shape


@pytest.mark.parametrize("case", list(CASES))
def test_pattern_matches_onnxruntime(case):
    check(*build(case))


def test_flatten_after_conv_reorders_the_gemm_weights():
    """Channels-last flatten: the Dense kernel holds the torch weights in NHWC feature order."""
    torch.manual_seed(0)
    model = seq(nn.Conv2d(2, 3, 1, bias=False), nn.Flatten(), nn.Linear(3 * 2 * 2, 1, bias=False)).eval()
    lowered = lower_onnx(export(model, (2, 2, 2)))
    dense = lowered.keras_model.get_layer(next(layer.name for layer in lowered.keras_model.layers
                                               if type(layer).__name__ == "Dense"))
    w = model[2].weight.detach().numpy().reshape(3, 2, 2)  # (C, H, W)
    np.testing.assert_array_equal(dense.get_weights()[0][:, 0], w.transpose(1, 2, 0).ravel())


def test_layout_helpers_round_trip():
    lowered = check(seq(nn.Conv2d(3, 4, 1)), (3, 5, 6))
    x = np.random.default_rng(0).normal(size=(2, 3, 5, 6)).astype(np.float32)
    assert lowered.to_keras_layout(x).shape == (2, 5, 6, 3)
    assert lowered.output_shape == (4, 5, 6) and lowered.keras_output_shape == (5, 6, 4)
    assert lowered.run(x).shape == (2, 4, 5, 6)
    with pytest.raises(BadInput, match="per-sample shape"):
        lowered.to_keras_layout(x[:, :2])


# ---- errors -----------------------------------------------------------------------------------------

def _onnx_with(op_type: str, node_name: str, **attrs) -> bytes:
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 4])
    y = helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", 4])
    relu = helper.make_node("Relu", ["input"], ["r"], name="first_relu")
    node = helper.make_node(op_type, ["r"], ["output"], name=node_name, **attrs)
    model = helper.make_model(helper.make_graph([relu, node], "g", [x], [y]),
                              opset_imports=[helper.make_opsetid("", 17)])
    return model.SerializeToString()


def test_unsupported_op_names_op_node_and_supported_list():
    with pytest.raises(BadInput) as info:
        lower_onnx(_onnx_with("Erf", "my_erf_node"))
    message = str(info.value)
    assert "Erf" in message and "my_erf_node" in message
    assert all(op in message for op in SUPPORTED_OPS)
    assert info.value.exit_code == 2


def test_conv_transpose_is_rejected():
    with pytest.raises(BadInput, match="ConvTranspose"):
        lower_onnx(export(nn.ConvTranspose2d(2, 2, 3), (2, 4, 4)))


class _SwapHW(nn.Module):
    def forward(self, x):
        return x.transpose(2, 3)


class _Fork(nn.Module):
    """The Linear output read twice: as a feature map and as a vector."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 1, 2)

    def forward(self, x):
        return self.conv(x.view(x.size(0), 3, 2, 2)).flatten(1) + x[:, :1]


@pytest.mark.parametrize("model, shape, match", [
    (seq(nn.Linear(4, 4), nn.Hardtanh()), (4,), "Clip"),  # RELU_N1_TO_1: no runtime kernel
    (seq(nn.Conv2d(2, 3, 1), _SwapHW(), nn.Conv2d(3, 2, 1)), (2, 4, 5), "TRANSPOSE"),
    (seq(nn.Linear(6, 12), nn.ReLU(), _Fork()), (6,), "TRANSPOSE"),  # two readers: units cannot be reordered
    (seq(nn.Conv2d(2, 3, 3), nn.MaxPool2d(3, 2, padding=1)), (2, 10, 10), "may be negative"),
])
def test_lowerings_that_would_need_unsupported_ops_raise(model, shape, match):
    with pytest.raises(BadInput, match=match):
        lower_onnx(export(model, shape))


class _Subtract(nn.Module):
    def forward(self, x):
        return x - torch.sigmoid(x)


def test_sub_of_two_activations_is_rejected():
    with pytest.raises(BadInput, match="SUB"):
        lower_onnx(export(_Subtract(), (4,)))


def test_garbage_bytes_are_bad_input():
    with pytest.raises(BadInput, match="not an ONNX model"):
        lower_onnx(b"\x00not onnx at all")


# ---- the int8 conversion --------------------------------------------------------------------------

def convert_int8(lowered: LoweredModel, samples: int = 16, seed: int = 0) -> bytes:
    import tensorflow as tf

    rng = np.random.default_rng(seed)

    def representative():
        for _ in range(samples):
            yield [rng.normal(size=(1, *lowered.keras_input_shape)).astype(np.float32)]

    conv = tf.lite.TFLiteConverter.from_keras_model(lowered.keras_model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = representative
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    return conv.convert()


ZOO_TFLITE_OPS = {
    "digits-cnn": {"CONV_2D", "MAX_POOL_2D", "RESHAPE", "FULLY_CONNECTED"},
    "mnist1d-cnn": {"PAD", "RESHAPE", "CONV_2D", "FULLY_CONNECTED"},
    "ds-cnn": {"PAD", "CONV_2D", "DEPTHWISE_CONV_2D", "MEAN", "RESHAPE", "FULLY_CONNECTED"},
    "resnet8": {"CONV_2D", "ADD", "PAD", "MEAN", "RESHAPE", "FULLY_CONNECTED"},
    "mobilenetv1-025": {"PAD", "CONV_2D", "DEPTHWISE_CONV_2D", "MEAN", "RESHAPE", "FULLY_CONNECTED"},
    "fc-autoencoder": {"FULLY_CONNECTED"},
}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(zoo.ZOO))
def test_zoo_int8_conversion_uses_only_runtime_ops(name):
    from tinyprune.tflite_info import read_model

    lowered = lower_onnx(export(*zoo_model(name)), name)
    info = read_model(convert_int8(lowered))
    ops = set(info.op_names) - {"QUANTIZE", "DEQUANTIZE"}
    assert set(info.op_names) <= RUNTIME_OPS, info.op_names
    assert ops == ZOO_TFLITE_OPS[name], info.op_names
    assert [t.dtype for t in info.inputs + info.outputs] == ["int8", "int8"]


@pytest.mark.slow
@pytest.mark.parametrize("case", ["relu-after-pool", "relu-on-input", "sigmoid-tanh-hardswish", "concat-channels",
                                  "squeeze-excite", "softmax-channels", "standalone-batchnorm1d", "pad-op-value",
                                  "conv1d-residual", "avgpool1d", "grouped-conv", "reduce-mean"])
def test_pattern_int8_conversion_uses_only_runtime_ops(case):
    from tinyprune.tflite_info import read_model

    info = read_model(convert_int8(lower_onnx(export(*build(case)))))
    assert set(info.op_names) <= RUNTIME_OPS, info.op_names


@pytest.mark.slow
def test_lowering_twice_converts_to_identical_bytes():
    """Explicit layer names: no Keras name counters in the flatbuffer."""
    onnx_bytes = export(*zoo_model("digits-cnn"))
    assert convert_int8(lower_onnx(onnx_bytes, "digits")) == convert_int8(lower_onnx(onnx_bytes, "digits"))
