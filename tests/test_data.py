"""Datasets: the built-ins and the validation of user .npz files."""

from __future__ import annotations

import numpy as np
import pytest

from tinyprune.data import load_dataset, load_npz
from tinyprune.errors import BadInput


def test_digits():
    d = load_dataset("digits")
    assert d.input_shape == (1, 8, 8)
    assert d.x_train.dtype == np.float32 and d.y_train.dtype == np.int64
    assert len(d.x_train) + len(d.x_val) + len(d.x_test) == 1797
    assert d.num_classes == 10
    assert 0.0 <= d.x_train.min() and d.x_train.max() <= 1.0
    assert load_dataset("digits").fingerprint() == d.fingerprint()  # fixed split


def test_mnist1d_is_generated_and_cached():
    d = load_dataset("mnist1d")
    assert d.input_shape == (1, 40)
    assert (len(d.x_train), len(d.x_val), len(d.x_test)) == (3600, 400, 1000)
    assert d.source["cache"].endswith(".npz")
    assert load_dataset("mnist1d").fingerprint() == d.fingerprint()


def _arrays(n=20, shape=(1, 6)):
    rng = np.random.default_rng(0)
    return {
        "x_train": rng.normal(size=(n, *shape)).astype(np.float32), "y_train": rng.integers(0, 3, n),
        "x_test": rng.normal(size=(n // 2, *shape)).astype(np.float32), "y_test": rng.integers(0, 3, n // 2),
    }


def _save(tmp_path, **arrays):
    path = tmp_path / "d.npz"
    np.savez(path, **arrays)
    return path


def test_valid_npz(tmp_path):
    d = load_npz(_save(tmp_path, **_arrays()))
    assert d.input_shape == (1, 6)
    assert d.num_classes == 3
    assert len(d.x_val) == 2 and len(d.x_train) == 18  # 10 % split off for validation


def test_npz_with_validation_split_and_labels(tmp_path):
    a = _arrays()
    a.update(x_val=a["x_test"], y_val=a["y_test"], labels=np.array(["a", "b", "c", "d"]))
    d = load_npz(_save(tmp_path, **a))
    assert len(d.x_val) == 10 and d.num_classes == 4 and d.labels == ("a", "b", "c", "d")


@pytest.mark.parametrize("change, expect", [
    (lambda a: a.pop("y_test"), "lacks y_test"),
    (lambda a: a.update(x_extra=a["x_test"]), "unexpected key(s) x_extra"),
    (lambda a: a.update(x_val=a["x_test"]), "x_val and y_val must be given together"),
    (lambda a: a.update(x_train=a["x_train"].astype(np.float64)), "x_train has dtype float64, expected float32"),
    (lambda a: a.update(x_test=a["x_test"].reshape(-1)), "x_test has shape (60,)"),
    (lambda a: a.update(x_test=a["x_test"][:, :, :3]), "x_test samples have shape (1, 3) but x_train's are (1, 6)"),
    (lambda a: a["x_train"].__setitem__((0, 0, 0), np.nan), "x_train contains 1 NaN or infinite value"),
    (lambda a: a["x_test"].__setitem__((1, 0, 2), np.inf), "x_test contains 1 NaN or infinite value"),
    (lambda a: a["y_train"].__setitem__(3, -1), "negative label (-1)"),
    (lambda a: a.update(y_train=a["y_train"].astype(np.float32)), "y_train has dtype float32; expected integer"),
    (lambda a: a.update(y_train=a["y_train"][:5]), "y_train has 5 labels for 20 samples"),
    (lambda a: a.update(y_test=np.eye(3, dtype=np.int64)[a["y_test"]]), "one integer class index per sample"),
    (lambda a: a.update(labels=np.array(["a", "b"])), "'labels' names 2 classes but the labels go up to 2"),
])
def test_npz_errors_name_the_key_and_problem(tmp_path, change, expect):
    a = _arrays()
    change(a)
    with pytest.raises(BadInput) as exc:
        load_npz(_save(tmp_path, **a))
    assert expect in exc.value.message
    assert str(tmp_path / "d.npz") in exc.value.message


def test_npz_not_a_zip(tmp_path):
    path = tmp_path / "bad.npz"
    path.write_bytes(b"not a zip file")
    with pytest.raises(BadInput, match="not a readable .npz"):
        load_npz(path)


def test_unknown_dataset_lists_builtins():
    with pytest.raises(BadInput) as exc:
        load_dataset("cifar")
    assert "digits" in exc.value.hint and "mnist1d" in exc.value.hint


def test_missing_npz(tmp_path):
    with pytest.raises(BadInput, match="does not exist"):
        load_dataset(str(tmp_path / "nothing.npz"))
