"""The int8 cost model: lowering rules, the lifetime plan, and agreement with real conversions."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from tinyprune import cost, zoo
from tinyprune.costgraph import lower


def _seq(*layers) -> nn.Module:
    return nn.Sequential(*layers).eval()


def test_batchnorm_folds_into_the_convolution():
    with_bn = _seq(nn.Conv2d(3, 8, 3, bias=False), nn.BatchNorm2d(8), nn.ReLU())
    with_bias = _seq(nn.Conv2d(3, 8, 3, bias=True), nn.ReLU())
    a, b = cost.estimate(with_bn, (3, 10, 10)), cost.estimate(with_bias, (3, 10, 10))
    assert a.model_bytes == b.model_bytes and a.arena_bytes == b.arena_bytes
    assert a.op_names == ("CONV_2D",)  # BatchNorm and ReLU left no operator behind
    layer = a.layer("0")
    assert layer.params == 8 * 3 * 9 + 8 and layer.weight_bytes == 8 * 27 and layer.bias_bytes == 32
    # per-channel quantization: a float32 scale and an int64 zero point per output channel,
    # for the weights and for the bias
    k = cost.DEFAULT_CONSTANTS
    assert layer.quant_bytes == 2 * (k.quant_table_bytes + 12 * 8)


def test_relu_after_a_pool_is_an_operator_of_its_own():
    est = cost.estimate(_seq(nn.Conv2d(1, 4, 3), nn.MaxPool2d(2), nn.ReLU()), (1, 8, 8))
    assert est.op_names == ("CONV_2D", "MAX_POOL_2D", "RELU")
    assert est.unsupported_ops == ("RELU",)  # the tinyprune runtime has no stand-alone RELU


def test_flatten_is_a_reshape_without_a_copy():
    net = _seq(nn.Conv2d(1, 4, 3), nn.Flatten(), nn.Linear(4 * 36, 10))
    est = cost.estimate(net, (1, 8, 8))
    assert est.op_names == ("CONV_2D", "RESHAPE", "FULLY_CONNECTED")
    # arena: input 64 + conv output 144 alive together; the RESHAPE output shares the latter
    assert est.activation_peak_bytes == 64 + 144


def test_peak_of_live_activations_not_the_sum():
    net = _seq(*[nn.Linear(100, 100) for _ in range(6)])
    est = cost.estimate(net, (100,))
    assert est.activation_peak_bytes == 200  # two 100-byte buffers at a time, not 700
    k = cost.DEFAULT_CONSTANTS
    assert est.arena_bytes == 4 * est.num_tensors + 200
    assert est.ram_bytes == est.arena_bytes + k.runtime_state_bytes + k.stack_reserve_bytes


class _Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(4, 4, 3, padding=1)
        self.b = nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x):
        return torch.relu(self.b(self.a(x)) + x)


def test_residual_keeps_the_shortcut_alive():
    est = cost.estimate(_Residual().eval(), (4, 8, 8))
    assert est.op_names == ("CONV_2D", "ADD")
    assert est.activation_peak_bytes == 3 * 256  # x, a(x) and b(a(x)) while b runs


def test_conv1d_becomes_reshape_conv2d_reshape_and_pad_when_not_same():
    g = lower(_seq(nn.Conv1d(1, 8, 5, stride=2, padding=1)), (1, 40))
    assert [op.kind for op in g.ops] == ["PAD", "RESHAPE", "CONV_2D", "RESHAPE"]
    same = lower(_seq(nn.Conv1d(1, 8, 3, padding=1)), (1, 40))
    assert [op.kind for op in same.ops] == ["RESHAPE", "CONV_2D", "RESHAPE"]


def test_depthwise_convolution():
    est = cost.estimate(_seq(nn.Conv2d(8, 8, 3, groups=8, padding=1)), (8, 6, 6))
    assert est.op_names == ("DEPTHWISE_CONV_2D",)
    assert est.layers[0].params == 8 * 9 + 8 and est.macs == 8 * 36 * 9


def test_runtime_code_counts_shared_kernels_once():
    k = cost.DEFAULT_CONSTANTS
    conv = cost.runtime_code_bytes(["CONV_2D"])
    both = cost.runtime_code_bytes(["CONV_2D", "DEPTHWISE_CONV_2D"])
    assert both - conv == k.op_code_bytes["DEPTHWISE_CONV_2D"]
    assert cost.runtime_code_bytes(["CONV_2D"], core="cortex-m0") > conv


def test_stack_reserve_is_the_firmware_stack():
    from tinyprune.firmware import DEFAULT_STACK_BYTES

    assert cost.DEFAULT_CONSTANTS.stack_reserve_bytes == DEFAULT_STACK_BYTES


@pytest.mark.parametrize("name", sorted(zoo.ZOO))
def test_every_zoo_model_is_priced(name):
    entry = zoo.get(name)
    est = cost.estimate(entry.build(), entry.input_shape)
    assert est.flash_bytes == est.model_bytes + est.runtime_code_bytes
    assert est.model_bytes > est.param_bytes > 0
    assert not est.unsupported_ops
    assert est.peak_layer and est.largest_layer
    assert est.to_dict()["layers"][0]["name"] == est.layers[0].name


def _trained_like(model: nn.Module, seed: int) -> nn.Module:
    """Random weights with BatchNorm statistics that are not the defaults: freshly initialised
    BatchNorm folds into all-zero biases, which the converter stores once for all layers."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                m.running_mean.normal_(0, 0.1, generator=g)
                m.running_var.uniform_(0.5, 1.5, generator=g)
                m.bias.normal_(0, 0.1, generator=g)
    return model.eval()


@pytest.mark.slow
@pytest.mark.compile
@pytest.mark.parametrize("name", sorted(zoo.ZOO))
def test_matches_converted_zoo_models_and_the_runtime_arena(name):
    """Oracle: the real conversion (`tinyprune convert`'s export -> lower -> TFLiteConverter) of
    every zoo model, and the C runtime's own arena computation for the result."""
    import numpy as np

    from tinyprune import export, lower, quantize, runtime

    entry = zoo.get(name)
    torch.manual_seed(0)
    model = _trained_like(entry.build(), 0)
    x = np.random.default_rng(0).normal(size=(16, *entry.input_shape)).astype(np.float32)
    lowered = lower.lower_onnx(export.export_onnx(model, entry.input_shape, x[:4]).onnx_bytes, name=name)
    tflite = quantize.quantize_int8(lowered.keras_model, lowered.to_keras_layout(x))
    est = cost.estimate(model, entry.input_shape)
    assert abs(est.model_bytes - len(tflite)) <= 0.05 * len(tflite), (est.model_bytes, len(tflite))
    real_arena = runtime.required_arena_bytes(tflite)
    assert abs(est.arena_bytes - real_arena) <= max(64, 0.01 * real_arena), (est.arena_bytes, real_arena)
