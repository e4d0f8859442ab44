"""Training, fine-tuning and evaluation of models on a ``Dataset``.

Classification models (cross-entropy, accuracy) and reconstruction models such as the
anomaly-detection autoencoder (mean squared error against the flattened input; labels are
ignored). Deterministic for a given seed on the CPU. ``trained_zoo_checkpoint`` trains a zoo
model once and caches the weights under the tinyprune cache directory (with a file lock, so
parallel test workers share one training run).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from tinyprune.data import Dataset, cache_dir, load_dataset
from tinyprune.progress import bar


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 30
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 1e-4
    seed: int = 0


TASKS = ("classification", "reconstruction")
METRICS = {"classification": "accuracy", "reconstruction": "mse"}  # higher accuracy / lower mse is better


@dataclass
class TrainResult:
    val_accuracy: float  # the task's metric on the validation split (accuracy, or mse for reconstruction)
    test_accuracy: float
    history: list[dict] = field(default_factory=list)  # per epoch: loss, val_accuracy
    metric: str = "accuracy"


def set_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@torch.no_grad()
def predict(model: nn.Module, x: np.ndarray, batch_size: int = 512) -> np.ndarray:
    """Model outputs (logits) for float32 inputs in PyTorch layout."""
    model.eval()
    outs = [model(torch.from_numpy(x[i : i + batch_size])).numpy() for i in range(0, len(x), batch_size)]
    return np.concatenate(outs) if outs else np.zeros((0,))


def accuracy(model: nn.Module, x: np.ndarray, y: np.ndarray) -> float:
    if len(x) == 0:
        return float("nan")
    return float((predict(model, x).argmax(axis=1) == y).mean())


def mse(model: nn.Module, x: np.ndarray) -> float:
    """Mean squared reconstruction error against the flattened input."""
    if len(x) == 0:
        return float("nan")
    out = predict(model, x)
    return float(((out.reshape(len(x), -1) - x.reshape(len(x), -1)) ** 2).mean())


def evaluate(model: nn.Module, x: np.ndarray, y: np.ndarray, task: str = "classification") -> float:
    """The task's metric: accuracy (classification) or mean squared error (reconstruction)."""
    return mse(model, x) if task == "reconstruction" else accuracy(model, x, y)


def _loss_fn(task: str):
    if task == "reconstruction":
        mse_loss = nn.MSELoss()
        return lambda out, x, y: mse_loss(out.reshape(len(x), -1), x.reshape(len(x), -1))
    ce = nn.CrossEntropyLoss()
    return lambda out, x, y: ce(out, y)


def train(model: nn.Module, data: Dataset, cfg: TrainConfig = TrainConfig(), desc: str = "train",
          on_epoch: Callable[[int, dict], None] | None = None,
          loss_hook: Callable[[nn.Module], torch.Tensor] | None = None,
          task: str = "classification") -> TrainResult:
    """Adam with a cosine learning-rate schedule on the training split: cross-entropy for
    classification, mean squared error against the input for reconstruction.

    ``loss_hook`` adds a term to the loss (e.g. a sparsity regulariser during pruning).
    """
    set_seed(cfg.seed)
    x = torch.from_numpy(data.x_train)
    y = torch.from_numpy(data.y_train)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = max(1, (len(x) + cfg.batch_size - 1) // cfg.batch_size)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, cfg.epochs * steps_per_epoch))
    loss_fn = _loss_fn(task)
    gen = torch.Generator().manual_seed(cfg.seed)
    history = []
    with bar(range(cfg.epochs), desc=desc, unit="epoch") as epochs:
        for epoch in epochs:
            model.train()
            order = torch.randperm(len(x), generator=gen)
            total = 0.0
            for i in range(0, len(x), cfg.batch_size):
                idx = order[i : i + cfg.batch_size]
                if len(idx) < 2:  # BatchNorm needs two samples
                    continue
                opt.zero_grad()
                loss = loss_fn(model(x[idx]), x[idx], y[idx])
                if loss_hook is not None:
                    loss = loss + loss_hook(model)
                loss.backward()
                opt.step()
                sched.step()
                total += loss.item() * len(idx)
            record = {"epoch": epoch + 1, "loss": total / len(x),
                      "val_accuracy": evaluate(model, data.x_val, data.y_val, task)}
            history.append(record)
            epochs.set_postfix(loss=f"{record['loss']:.3f}", val=f"{record['val_accuracy']:.3f}")
            if on_epoch:
                on_epoch(epoch, record)
    model.eval()
    return TrainResult(
        val_accuracy=evaluate(model, data.x_val, data.y_val, task),
        test_accuracy=evaluate(model, data.x_test, data.y_test, task),
        history=history,
        metric=METRICS[task],
    )


@contextlib.contextmanager
def _file_lock(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)  # parallel test workers wait for one trainer
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def trained_zoo_checkpoint(zoo_name: str, dataset: str, cfg: TrainConfig = TrainConfig()) -> Path:
    """Path of a state dict for ``zoo_name`` trained on ``dataset`` with ``cfg``; trains on a miss."""
    from tinyprune import zoo

    data = load_dataset(dataset)
    key = hashlib.sha256(
        json.dumps({"model": zoo_name, "data": data.fingerprint(), "cfg": asdict(cfg), "torch": torch.__version__},
                   sort_keys=True).encode()
    ).hexdigest()[:16]
    path = cache_dir() / "checkpoints" / f"{zoo_name}-{dataset}-{key}.pt"
    with _file_lock(path.with_suffix(".lock")):
        if not path.exists():
            entry = zoo.get(zoo_name)
            model = entry.build()
            train(model, data, cfg, desc=f"train {zoo_name}", task=entry.task)
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            torch.save(model.state_dict(), tmp)
            os.replace(tmp, path)
    return path
