"""Channel importance criteria, keyed by the names ``--importance`` accepts.

Each criterion scores every channel of every pruning group (``tinyprune.prune.ChannelGroup``)
with torch-pruning's group importances, reduced over all coupled layers of the group and
divided by the group's mean, so scores of different groups are comparable (1.0 = an average
channel of its group):

* ``l1``: L1 norm of the weights (magnitude; torch-pruning ``MagnitudeImportance(p=1)``).
* ``taylor``: first-order Taylor expansion |w * dL/dw| on training batches (uses data).
* ``random``: uniform random scores from the run's seed (the baseline).
* ``synflow``: data-free SynFlow (Tanaka et al. 2020): |w * dR/dw| with R the sum of the output
  of the linearised network (all weights and BatchNorm statistics made positive, input of
  ones), so it can rank channels before any training.
"""

from __future__ import annotations

import copy
from typing import Callable

import numpy as np
import torch
import torch_pruning as tp
from torch import nn

CRITERIA = ("l1", "taylor", "random", "synflow")
DATA_FREE = ("l1", "random", "synflow")
TAYLOR_SAMPLES = 512  # training samples whose gradients rank channels for ``taylor``


def channel_scores(criterion: str, model: nn.Module, DG: tp.DependencyGraph, groups: list, input_shape,
                   data=None, seed: int = 0, task: str = "classification") -> dict[str, np.ndarray]:
    """Per group name: a score per current output channel (higher = keep)."""
    if criterion not in SCORERS:
        raise ValueError(f"unknown importance {criterion!r}; choose from {', '.join(CRITERIA)}")
    return SCORERS[criterion](model, DG, groups, input_shape, data, seed, task)


def _group_scores(imp, DG, groups) -> dict[str, np.ndarray]:
    out = {}
    for g in groups:
        group = g.tp_group(DG)
        s = imp(group)
        n = g.channels
        if s is None:
            s = torch.ones(n)
        s = torch.nan_to_num(s.detach().float(), nan=0.0, posinf=1e6, neginf=0.0)
        out[g.name] = s.cpu().numpy().astype(np.float64)
    return out


def _l1(model, DG, groups, input_shape, data, seed, task):
    return _group_scores(tp.importance.MagnitudeImportance(p=1, group_reduction="mean", normalizer="mean"), DG, groups)


def _random(model, DG, groups, input_shape, data, seed, task):
    rng = np.random.default_rng(seed)
    return {g.name: rng.random(g.channels) for g in groups}


def _with_gradients(model: nn.Module, fill: Callable[[nn.Module], None], DG, groups) -> dict[str, np.ndarray]:
    """Taylor scores after ``fill`` has put gradients into ``model``'s parameters."""
    saved = [p.grad for p in model.parameters()]
    for p in model.parameters():
        p.grad = None
    try:
        fill(model)
        for p in model.parameters():
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        return _group_scores(tp.importance.TaylorImportance(group_reduction="mean", normalizer="mean"), DG, groups)
    finally:
        for p, g in zip(model.parameters(), saved):
            p.grad = g


def _taylor(model, DG, groups, input_shape, data, seed, task):
    if data is None:
        raise ValueError("the taylor importance needs training data")

    def fill(m: nn.Module) -> None:
        rng = np.random.default_rng(seed)
        idx = rng.permutation(len(data.x_train))[:TAYLOR_SAMPLES]
        was = m.training
        m.eval()  # BatchNorm with its running statistics: scores do not depend on batch composition
        for i in range(0, len(idx), 128):
            x = torch.from_numpy(data.x_train[idx[i:i + 128]])
            out = m(x)
            if task == "reconstruction":
                loss = nn.functional.mse_loss(out.reshape(len(x), -1), x.reshape(len(x), -1), reduction="sum")
            else:
                loss = nn.functional.cross_entropy(out, torch.from_numpy(data.y_train[idx[i:i + 128]]), reduction="sum")
            loss.backward()
        m.train(was)

    return _with_gradients(model, fill, DG, groups)


def _synflow(model, DG, groups, input_shape, data, seed, task):
    def fill(m: nn.Module) -> None:
        lin = copy.deepcopy(m).double().eval()
        with torch.no_grad():
            for t in lin.state_dict().values():
                if t.is_floating_point():
                    t.abs_()
        for p in lin.parameters():
            p.grad = None
        out = lin(torch.ones(1, *input_shape, dtype=torch.float64))
        out.sum().backward()
        grads = [q.grad if q.grad is not None else torch.zeros_like(q) for q in lin.parameters()]
        # R grows like the product of all layers' weight sums: rescale every gradient by one
        # common factor (scores are ratios) so that none overflows float32
        top = max((float(g.abs().max()) for g in grads), default=1.0) or 1.0
        for p, g in zip(m.parameters(), grads):
            # the Taylor scorer multiplies by the signed weight and takes |.|: |w| * dR/d|w|
            p.grad = (g / top).float()

    return _with_gradients(model, fill, DG, groups)


SCORERS = {"l1": _l1, "taylor": _taylor, "random": _random, "synflow": _synflow}
