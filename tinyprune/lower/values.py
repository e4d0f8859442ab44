"""Activations: how a Keras tensor holds one sample's torch tensor (shape, axis permutation,
feature order), and the batch placeholder of folded shape constants."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

BATCH = -(2 ** 62) + 7  # stands for the dynamic batch size inside folded shape constants


def default_perm(rank: int) -> tuple[int, ...]:
    return tuple(range(rank)) if rank < 2 else tuple(range(1, rank)) + (0,)


def memory_order(shape: tuple[int, ...], perm: tuple[int, ...]) -> np.ndarray:
    """Torch flat index of each Keras element of one sample, in Keras memory order."""
    return np.arange(math.prod(shape)).reshape(shape).transpose(perm).ravel()


@dataclass(frozen=True, eq=False)
class Act:
    tensor: Any  # a symbolic Keras tensor, batch first
    shape: tuple[int, ...]
    perm: tuple[int, ...]
    order: np.ndarray | None = field(default=None)
    nonneg: bool = False  # known >= 0 (after ReLU, sigmoid, ...): zero padding acts as -inf for max
    dense: Any = None  # the Dense layer that wrote this tensor, while its output units may still be permuted

    @property
    def keras_shape(self) -> tuple[int, ...]:
        return tuple(self.shape[p] for p in self.perm)

    def memory(self) -> np.ndarray:
        return self.order if self.order is not None else memory_order(self.shape, self.perm)


def act_from_keras(t, perm: tuple[int, ...], nonneg: bool = False) -> Act:
    kshape = tuple(int(d) for d in t.shape[1:])
    shape = [0] * len(perm)
    for j, p in enumerate(perm):
        shape[p] = kshape[j]
    return Act(t, tuple(shape), perm, None, nonneg)
