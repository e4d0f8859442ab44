"""Whole networks through the micro runtime: the zoo's architectures, bit-exact with TFLite Micro,
in an arena no larger than TFLite Micro's.

Until the converter stage (``tinyprune convert``) lands, the architectures are rebuilt in Keras
(runtime_models.ZOO_KERAS: same layers and shapes, random weights and BatchNorm statistics,
and the digits CNN also trained). When ``tinyprune/convert.py`` exists the same checks run on
the models it produces, random and trained, against the TFLM arena it reports."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from runtime_models import ZOO_KERAS, compare, zoo_models as _zoo_models

pytestmark = [pytest.mark.compile, pytest.mark.slow]

CONVERT = Path(__file__).resolve().parents[1] / "tinyprune" / "convert.py"


@pytest.fixture(scope="module")
def zoo_models():
    return _zoo_models()


@pytest.mark.parametrize("name", [*ZOO_KERAS, "digits-cnn-trained"])
def test_zoo_architecture_bit_exact_and_smaller_arena(zoo_models, name):
    from tinyprune import runtime

    model = zoo_models[name]
    r = compare(model, samples=8, seed=3)
    assert r, f"{name}: " + "; ".join(r.details[:3])
    tflm_host, tflm_32 = runtime.tflm_arena_bytes(model)
    ratio = r.runtime_arena / tflm_32
    print(f"{name}: runtime arena {r.runtime_arena} B, TFLM {tflm_host} B (64-bit host), "
          f"~{tflm_32} B (32-bit estimate), ratio {ratio:.2f}")
    assert r.runtime_arena <= tflm_32, f"{name}: arena {r.runtime_arena} > TFLM's {tflm_32} (32-bit estimate)"


def test_trained_digits_accuracy_matches_tflm(zoo_models):
    """Same predictions as TFLM on the real test set (and therefore the same accuracy)."""
    from tinyprune import runtime
    from tinyprune.data import load_dataset
    from tinyprune.tflm import make_interpreter

    model = zoo_models["digits-cnn-trained"]
    data = load_dataset("digits")
    ours = runtime.Model(model)
    q = ours.inputs[0]
    x = np.transpose(data.x_test, (0, 2, 3, 1))
    xq = np.clip(np.round(x / q.scale) + q.zero_point, -128, 127).astype(np.int8)
    oracle = make_interpreter(model, 64 * 1024)
    ours_out, tflm_out = [], []
    for sample in xq:
        ours_out.append(ours.run([sample[None]])[0][0])
        oracle.set_input(sample[None], 0)
        oracle.invoke()
        tflm_out.append(np.array(oracle.get_output(0))[0])
    ours_out, tflm_out = np.stack(ours_out), np.stack(tflm_out)
    assert np.array_equal(ours_out, tflm_out)
    accuracy = float((ours_out.argmax(1) == data.y_test).mean())
    assert accuracy > 0.9, accuracy


# ---- the converter's models, when the convert stage exists -------------------------------------------

def _convert(tmp_path: Path, cli, name: str, dataset: str, weights: Path | None = None) -> tuple[bytes, dict]:
    out = tmp_path / f"out-{name}"
    args = ["convert", name, "--dataset", dataset, "--out", str(out)]
    if weights:
        args += ["--weights", str(weights)]
    r = cli(*args, timeout=1200)
    assert r.code == 0, r.stderr
    report = json.loads((out / "convert_report.json").read_text())
    return (out / "model_int8.tflite").read_bytes(), report


def _random_weights(tmp_path: Path, entry) -> Path:
    """Freshly initialised weights (convert uses the cached trained ones when given none)."""
    import torch

    torch.manual_seed(0)
    path = tmp_path / f"{entry.name}-random.pt"
    torch.save(entry.build().state_dict(), path)
    return path


def _random_dataset(path: Path, shape: tuple[int, ...], classes: int) -> Path:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, *shape)).astype(np.float32)
    y = rng.integers(0, classes, size=64)
    np.savez(path, x_train=x, y_train=y, x_test=x[:16], y_test=y[:16])
    return path


@pytest.mark.skipif(not CONVERT.exists(), reason="tinyprune/convert.py (the convert stage) is not in this checkout yet")
@pytest.mark.parametrize("name", ["digits-cnn", "mnist1d-cnn", "ds-cnn", "resnet8", "mobilenetv1-025", "fc-autoencoder"])
def test_converted_zoo_model(tmp_path, cli, name):
    """Random weights (and trained weights where a built-in dataset exists): bit-exact, and an
    arena no larger than the TFLM arena the convert stage measured."""
    from tinyprune import runtime, zoo

    entry = zoo.ZOO[name]
    variants = []
    if entry.dataset:
        from tinyprune.train import trained_zoo_checkpoint

        variants.append(_convert(tmp_path, cli, name, entry.dataset, trained_zoo_checkpoint(name, entry.dataset)))
        variants.append(_convert(tmp_path / "random", cli, name, entry.dataset, _random_weights(tmp_path, entry)))
    else:
        data = _random_dataset(tmp_path / "data.npz", entry.input_shape, max(entry.outputs, 2))
        variants.append(_convert(tmp_path, cli, name, str(data)))
    for model, report in variants:
        r = compare(model, samples=8, seed=5)
        assert r, "; ".join(r.details[:3])
        assert r.runtime_arena <= report["tflm_arena_bytes"], (r.runtime_arena, report["tflm_arena_bytes"])
        assert runtime.required_arena_bytes(model) == r.runtime_arena
