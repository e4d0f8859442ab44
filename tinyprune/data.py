"""Datasets: ``digits`` (scikit-learn, bundled), ``mnist1d`` (generated locally), or a user ``.npz``.

Every dataset arrives as float32 inputs in PyTorch layout (N, C, L) or (N, C, H, W) and int64
labels, with fixed, seeded train/validation/test splits, so that every stage of a run sees
the same samples.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tinyprune.errors import BadInput

BUILTIN = ("digits", "mnist1d")
SPLIT_SEED = 0  # the seed of every built-in split; changing it changes every reported accuracy


@dataclass(frozen=True)
class Dataset:
    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    labels: tuple[str, ...] = ()
    description: str = ""
    # What the inputs were scaled by, for the .tflite metadata: x = (raw - mean) / std.
    norm_mean: float = 0.0
    norm_std: float = 1.0
    source: dict = field(default_factory=dict)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    def fingerprint(self) -> str:
        """A short content hash, for caches of stages that depend on the data."""
        h = hashlib.sha256()
        for a in (self.x_train, self.y_train, self.x_val, self.y_val, self.x_test, self.y_test):
            h.update(np.ascontiguousarray(a).tobytes())
        return h.hexdigest()[:16]


def cache_dir() -> Path:
    """``$TINYPRUNE_CACHE``, else ``$XDG_CACHE_HOME/tinyprune``, else ``~/.cache/tinyprune``."""
    if os.environ.get("TINYPRUNE_CACHE"):
        return Path(os.environ["TINYPRUNE_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "tinyprune"


def load_dataset(spec: str) -> Dataset:
    """``digits``, ``mnist1d`` or a path to an ``.npz`` file."""
    if spec == "digits":
        return _digits()
    if spec == "mnist1d":
        return _mnist1d()
    path = Path(spec)
    if path.suffix == ".npz" or path.exists():
        return load_npz(path)
    raise BadInput(
        f"unknown dataset '{spec}'",
        hint="use a built-in dataset (" + ", ".join(BUILTIN) + ") or a .npz file with x_train, y_train, x_test, y_test",
    )


def _split_val(x: np.ndarray, y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(x))
    n_val = int(round(len(x) * fraction))
    val, train = order[:n_val], order[n_val:]
    return x[train], y[train], x[val], y[val]


def _digits() -> Dataset:
    from sklearn.datasets import load_digits

    raw = load_digits()
    x = (raw.images.astype(np.float32) / 16.0)[:, None, :, :]  # pixel values 0..16 -> 0..1
    y = raw.target.astype(np.int64)
    order = np.random.default_rng(SPLIT_SEED).permutation(len(x))
    n_test = len(x) // 5
    test, rest = order[:n_test], order[n_test:]
    x_train, y_train, x_val, y_val = _split_val(x[rest], y[rest], 0.1, SPLIT_SEED + 1)
    return Dataset(
        "digits", x_train, y_train, x_val, y_val, x[test], y[test], 10,
        labels=tuple(str(i) for i in range(10)),
        description="scikit-learn 8x8 handwritten digits (1797 images)",
        norm_mean=0.0, norm_std=16.0,
        source={"kind": "builtin", "name": "digits"},
    )


def _mnist1d() -> Dataset:
    """MNIST-1D with the package's default arguments (4000 train / 1000 test, seed 42), cached."""
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    key = hashlib.sha256(json.dumps(vars(args), sort_keys=True, default=str).encode()).hexdigest()[:12]
    path = cache_dir() / f"mnist1d-{key}.npz"
    if path.exists():
        with np.load(path) as f:
            x, y, x_test, y_test = f["x"], f["y"], f["x_test"], f["y_test"]
    else:
        data = make_dataset(args)
        x = data["x"].astype(np.float32)[:, None, :]
        y = data["y"].astype(np.int64)
        x_test = data["x_test"].astype(np.float32)[:, None, :]
        y_test = data["y_test"].astype(np.int64)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.npz")
        np.savez(tmp, x=x, y=y, x_test=x_test, y_test=y_test)
        os.replace(tmp, path)
    x_train, y_train, x_val, y_val = _split_val(x, y, 0.1, SPLIT_SEED)
    return Dataset(
        "mnist1d", x_train, y_train, x_val, y_val, x_test, y_test, 10,
        labels=tuple(str(i) for i in range(10)),
        description="MNIST-1D (Greydanus 2020), generated locally with mnist1d.make_dataset",
        source={"kind": "builtin", "name": "mnist1d", "cache": str(path)},
    )


# ---- user .npz ----------------------------------------------------------------------------

REQUIRED_KEYS = ("x_train", "y_train", "x_test", "y_test")
OPTIONAL_KEYS = ("x_val", "y_val", "labels")


def load_npz(path: Path) -> Dataset:
    """Load and validate a user dataset; every problem is reported with the key and the fix."""
    path = Path(path)
    if not path.exists():
        raise BadInput(f"dataset file {path} does not exist")
    if not path.is_file():
        raise BadInput(f"dataset {path} is not a file")
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise BadInput(f"{path} is not a readable .npz file: {exc}",
                       hint="save it with numpy.savez(path, x_train=..., y_train=..., x_test=..., y_test=...)") from None
    missing = [k for k in REQUIRED_KEYS if k not in arrays]
    if missing:
        raise BadInput(
            f"{path} lacks {', '.join(missing)} (it has: {', '.join(sorted(arrays)) or 'nothing'})",
            hint="a dataset .npz needs x_train, y_train, x_test, y_test and may add x_val, y_val, labels",
        )
    unknown = sorted(set(arrays) - set(REQUIRED_KEYS) - set(OPTIONAL_KEYS))
    if unknown:
        raise BadInput(f"{path}: unexpected key(s) {', '.join(unknown)}",
                       hint="allowed keys: " + ", ".join(REQUIRED_KEYS + OPTIONAL_KEYS))
    if ("x_val" in arrays) != ("y_val" in arrays):
        raise BadInput(f"{path}: x_val and y_val must be given together")

    splits = ["train", "test"] + (["val"] if "x_val" in arrays else [])
    for s in splits:
        _check_inputs(path, f"x_{s}", arrays[f"x_{s}"])
        _check_labels(path, f"y_{s}", arrays[f"y_{s}"], len(arrays[f"x_{s}"]))
    shape = arrays["x_train"].shape[1:]
    for s in splits[1:]:
        if arrays[f"x_{s}"].shape[1:] != shape:
            raise BadInput(f"{path}: x_{s} samples have shape {arrays[f'x_{s}'].shape[1:]} but x_train's are {shape}")
    num_classes = int(max(int(arrays[f"y_{s}"].max()) for s in splits)) + 1
    labels: tuple[str, ...] = ()
    if "labels" in arrays:
        labels = tuple(str(v) for v in arrays["labels"].tolist())
        if len(labels) < num_classes:
            raise BadInput(f"{path}: 'labels' names {len(labels)} classes but the labels go up to {num_classes - 1}")
        num_classes = len(labels)

    x_train, y_train = arrays["x_train"], arrays["y_train"].astype(np.int64)
    if "x_val" in arrays:
        x_val, y_val = arrays["x_val"], arrays["y_val"].astype(np.int64)
    else:
        x_train, y_train, x_val, y_val = _split_val(x_train, y_train, 0.1, SPLIT_SEED)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    return Dataset(
        path.stem, x_train, y_train, x_val, y_val, arrays["x_test"], arrays["y_test"].astype(np.int64),
        num_classes, labels=labels, description=f"user dataset {path}",
        source={"kind": "npz", "path": str(path.resolve()), "sha256_16": digest},
    )


def _check_inputs(path: Path, key: str, x: np.ndarray) -> None:
    if x.dtype != np.float32:
        raise BadInput(f"{path}: {key} has dtype {x.dtype}, expected float32",
                       hint=f"convert before saving: {key}=x.astype(numpy.float32)")
    if x.ndim not in (2, 3, 4):
        raise BadInput(
            f"{path}: {key} has shape {x.shape}; expected (N, C, L), (N, C, H, W) or (N, features)",
            hint="inputs use PyTorch layout with the sample index first",
        )
    if len(x) == 0:
        raise BadInput(f"{path}: {key} is empty")
    if not np.isfinite(x).all():
        bad = int((~np.isfinite(x)).sum())
        raise BadInput(f"{path}: {key} contains {bad} NaN or infinite value(s)", hint="clean or impute them before saving")


def _check_labels(path: Path, key: str, y: np.ndarray, n: int) -> None:
    if y.ndim != 1:
        raise BadInput(f"{path}: {key} has shape {y.shape}; expected one integer class index per sample (N,)",
                       hint="for one-hot labels save y.argmax(axis=1)")
    if not np.issubdtype(y.dtype, np.integer):
        raise BadInput(f"{path}: {key} has dtype {y.dtype}; expected integer class indices")
    if len(y) != n:
        raise BadInput(f"{path}: {key} has {len(y)} labels for {n} samples")
    if y.min() < 0:
        raise BadInput(f"{path}: {key} has a negative label ({int(y.min())}); labels must be 0..classes-1")
