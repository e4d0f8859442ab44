"""The model zoo: small, readable networks with known input shapes.

``digits-cnn`` and ``mnist1d-cnn`` train offline on the built-in datasets. The other four are
the MLPerf Tiny reference architectures (keyword spotting, image classification, visual wake
words, anomaly detection), written in PyTorch layout; their datasets are not available
offline, so they are used with random or user data.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from tinyprune.errors import BadInput


def conv_bn_relu(cin: int, cout: int, kernel, stride=1, padding=0, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class DigitsCNN(nn.Module):
    """8x8 handwritten digits (scikit-learn): three 3x3 convolutions and two dense layers."""

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.features = nn.Sequential(
            conv_bn_relu(1, 16, 3, padding=1),
            conv_bn_relu(16, 32, 3, padding=1),
            nn.MaxPool2d(2),  # 8x8 -> 4x4
            conv_bn_relu(32, 32, 3, padding=1),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(32 * 4 * 4, 64),
            nn.ReLU(inplace=True),
            nn.Linear(64, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


class Mnist1dCNN(nn.Module):
    """MNIST-1D (1x40 signals): the benchmark's reference CNN (three strided 1-D convolutions and
    a linear classifier), widened to 32/64/64 channels with BatchNorm so pruning has room."""

    def __init__(self, num_classes: int = 10, width: tuple[int, int, int] = (32, 64, 64)):
        super().__init__()
        c1, c2, c3 = width

        def block(cin: int, cout: int, k: int) -> nn.Sequential:
            return nn.Sequential(
                nn.Conv1d(cin, cout, k, stride=2, padding=1, bias=False),
                nn.BatchNorm1d(cout),
                nn.ReLU(inplace=True),
            )

        self.features = nn.Sequential(block(1, c1, 5), block(c1, c2, 3), block(c2, c3, 3))  # 40 -> 19 -> 10 -> 5
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(c3 * 5, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


class DSCNN(nn.Module):
    """MLPerf Tiny keyword spotting DS-CNN: 49x10 MFCC input, a 10x4 stride-2 convolution, four
    depthwise-separable blocks of 64 channels, global average pooling, 12 classes."""

    def __init__(self, num_classes: int = 12, channels: int = 64):
        super().__init__()
        # TF's SAME padding for this layer is (4,5)x(1,1); (5,1) symmetric gives the same 25x5 map.
        layers = [conv_bn_relu(1, channels, (10, 4), stride=2, padding=(5, 1))]
        for _ in range(4):
            layers += [
                conv_bn_relu(channels, channels, 3, padding=1, groups=channels),
                conv_bn_relu(channels, channels, 1),
            ]
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(channels, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.pool(self.features(x)))


class ResidualStack(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = conv_bn_relu(cin, cout, 3, stride=stride, padding=1)
        self.conv2 = nn.Sequential(nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout))
        self.shortcut = (
            nn.Identity()
            if stride == 1 and cin == cout
            else nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))
        )
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.conv2(self.conv1(x)) + self.shortcut(x))


class ResNet8(nn.Module):
    """MLPerf Tiny image classification ResNet-8: 32x32x3 CIFAR-10 input, three residual stacks
    of 16/32/64 channels, global average pooling, 10 classes."""

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.stem = conv_bn_relu(3, 16, 3, padding=1)
        self.stacks = nn.Sequential(ResidualStack(16, 16, 1), ResidualStack(16, 32, 2), ResidualStack(32, 64, 2))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(64, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.pool(self.stacks(self.stem(x))))


class MobileNetV1(nn.Module):
    """MLPerf Tiny visual wake words MobileNetV1 with width multiplier 0.25: 96x96x3 input, 2 classes."""

    # (output channels at width 1.0, stride) of the 13 depthwise-separable blocks
    BLOCKS = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)] + [(512, 1)] * 5 + [(1024, 2), (1024, 1)]

    def __init__(self, num_classes: int = 2, alpha: float = 0.25):
        super().__init__()
        c = int(32 * alpha)
        layers = [conv_bn_relu(3, c, 3, stride=2, padding=1)]
        for cout_full, stride in self.BLOCKS:
            cout = int(cout_full * alpha)
            layers += [conv_bn_relu(c, c, 3, stride=stride, padding=1, groups=c), conv_bn_relu(c, cout, 1)]
            c = cout
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(c, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.pool(self.features(x)))


class FCAutoencoder(nn.Module):
    """MLPerf Tiny anomaly detection autoencoder: 640 inputs (5 frames x 128 mel bins), four
    dense layers of 128, an 8-wide bottleneck, four of 128, and a 640-wide reconstruction."""

    def __init__(self, inputs: int = 640, hidden: int = 128, bottleneck: int = 8):
        super().__init__()

        def dense(cin: int, cout: int) -> list[nn.Module]:
            return [nn.Linear(cin, cout), nn.BatchNorm1d(cout), nn.ReLU(inplace=True)]

        widths = [inputs, hidden, hidden, hidden, hidden, bottleneck, hidden, hidden, hidden, hidden]
        layers: list[nn.Module] = []
        for cin, cout in zip(widths, widths[1:]):
            layers += dense(cin, cout)
        layers.append(nn.Linear(hidden, inputs))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


@dataclass(frozen=True)
class ZooEntry:
    name: str
    factory: Callable[[], nn.Module]
    input_shape: tuple[int, ...]  # one sample, PyTorch layout, no batch dimension
    outputs: int
    task: str  # "classification" or "reconstruction"
    dataset: str | None  # the built-in dataset it trains on, if any
    description: str

    def build(self) -> nn.Module:
        return self.factory()

    def example_input(self, batch: int = 1) -> torch.Tensor:
        return torch.randn(batch, *self.input_shape)


ZOO: dict[str, ZooEntry] = {
    e.name: e
    for e in [
        ZooEntry("digits-cnn", DigitsCNN, (1, 8, 8), 10, "classification", "digits",
                 "3 conv + 2 dense for scikit-learn's 8x8 digits"),
        ZooEntry("mnist1d-cnn", Mnist1dCNN, (1, 40), 10, "classification", "mnist1d",
                 "MNIST-1D reference CNN (1-D convolutions), 32/64/64 channels"),
        ZooEntry("ds-cnn", DSCNN, (1, 49, 10), 12, "classification", None,
                 "MLPerf Tiny keyword spotting DS-CNN (49x10 MFCC, 12 classes)"),
        ZooEntry("resnet8", ResNet8, (3, 32, 32), 10, "classification", None,
                 "MLPerf Tiny image classification ResNet-8 (CIFAR-10 sized)"),
        ZooEntry("mobilenetv1-025", MobileNetV1, (3, 96, 96), 2, "classification", None,
                 "MLPerf Tiny visual wake words MobileNetV1 0.25 (96x96x3, 2 classes)"),
        ZooEntry("fc-autoencoder", FCAutoencoder, (640,), 640, "reconstruction", None,
                 "MLPerf Tiny anomaly detection dense autoencoder (640 inputs)"),
    ]
}


def get(name: str) -> ZooEntry:
    if name not in ZOO:
        close = difflib.get_close_matches(name, list(ZOO), n=3)
        did_you_mean = f"; did you mean {', '.join(close)}?" if close else ""
        raise BadInput(
            f"unknown zoo model '{name}'{did_you_mean}",
            hint="zoo models: " + ", ".join(ZOO) + "; or give your own as path/to/file.py:factory or a saved .pt",
        )
    return ZOO[name]
