"""The model zoo: parameter counts, input shapes, outputs."""

from __future__ import annotations

import pytest
import torch

from tinyprune import zoo
from tinyprune.errors import BadInput

# torch parameter counts (BatchNorm included), the architectures' fingerprints
PARAMS = {
    "digits-cnn": 47_610,
    "mnist1d-cnn": 22_122,
    "ds-cnn": 23_180,
    "resnet8": 78_042,
    "mobilenetv1-025": 213_586,
    "fc-autoencoder": 267_928,
}
INPUTS = {
    "digits-cnn": (1, 8, 8),
    "mnist1d-cnn": (1, 40),
    "ds-cnn": (1, 49, 10),
    "resnet8": (3, 32, 32),
    "mobilenetv1-025": (3, 96, 96),
    "fc-autoencoder": (640,),
}


def test_zoo_has_exactly_the_documented_models():
    assert set(zoo.ZOO) == set(PARAMS)


@pytest.mark.parametrize("name", sorted(PARAMS))
def test_parameter_count(name):
    model = zoo.get(name).build()
    assert sum(p.numel() for p in model.parameters()) == PARAMS[name]


@pytest.mark.parametrize("name", sorted(PARAMS))
def test_input_shape_and_output(name):
    entry = zoo.get(name)
    assert entry.input_shape == INPUTS[name]
    model = entry.build().eval()
    with torch.no_grad():
        out = model(entry.example_input(2))
    assert tuple(out.shape) == (2, entry.outputs)
    assert entry.task in ("classification", "reconstruction")


def test_builtin_datasets_match_their_models():
    assert zoo.get("digits-cnn").dataset == "digits"
    assert zoo.get("mnist1d-cnn").dataset == "mnist1d"
    assert zoo.get("fc-autoencoder").task == "reconstruction"


def test_unknown_name_suggests_close_matches():
    with pytest.raises(BadInput) as exc:
        zoo.get("mnist1d_cnn")
    assert "mnist1d-cnn" in exc.value.message
    assert "file.py:factory" in exc.value.hint
