"""Where models come from (zoo, user .py:factory, saved .pt) and how they load back."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
import torch

from tinyprune.errors import BadInput
from tinyprune.models import ModelInfo, load_model, load_saved_model, save_model

USER_MODEL = textwrap.dedent("""
    import torch
    from torch import nn

    class Tiny(nn.Module):
        input_shape = (1, 12)

        def __init__(self):
            super().__init__()
            self.conv = nn.Conv1d(1, 16, 3, padding=1)
            self.bn = nn.BatchNorm1d(16)
            self.conv2 = nn.Conv1d(16, 16, 3, padding=1)
            self.head = nn.Linear(16 * 12, 3)

        def forward(self, x):
            x = torch.relu(self.bn(self.conv(x)))
            x = torch.relu(self.conv2(x))
            return self.head(x.flatten(1))

    def build():
        return Tiny()

    def not_a_module():
        return 42

    def broken():
        raise RuntimeError("boom")
""")


@pytest.fixture
def user_file(tmp_path):
    path = tmp_path / "user_net.py"
    path.write_text(USER_MODEL)
    return path


def test_zoo_model(tmp_path):
    model, info = load_model("digits-cnn")
    assert info.kind == "zoo" and info.input_shape == (1, 8, 8) and not model.training


def test_factory_model_with_weights(user_file, tmp_path):
    model, info = load_model(f"{user_file}:build")
    assert info.kind == "factory" and info.input_shape == (1, 12)
    state = tmp_path / "w.pt"
    torch.manual_seed(3)
    ref = type(model)()
    torch.save(ref.state_dict(), state)
    loaded, _ = load_model(f"{user_file}:build", state)
    assert torch.equal(loaded.conv.weight, ref.conv.weight)


@pytest.mark.parametrize("spec, expect", [
    ("{f}:missing", "has no function 'missing'"),
    ("{f}:not_a_module", "returned a int, not a torch.nn.Module"),
    ("{f}:broken", "the factory raised RuntimeError: boom"),
    ("{d}/nope.py:build", "does not exist"),
    ("resnet-8", "did you mean resnet8"),
])
def test_model_spec_errors(user_file, spec, expect):
    with pytest.raises(BadInput, match=expect.replace("(", r"\(")):
        load_model(spec.format(f=user_file, d=user_file.parent))


def test_weights_that_do_not_match(tmp_path):
    path = tmp_path / "w.pt"
    torch.save(load_model("mnist1d-cnn")[0].state_dict(), path)
    with pytest.raises(BadInput, match="do not match the model"):
        load_model("digits-cnn", path)


def test_state_dict_given_as_a_model(tmp_path):
    path = tmp_path / "state.pt"
    torch.save(load_model("digits-cnn")[0].state_dict(), path)
    with pytest.raises(BadInput, match="holds a state dict, not a whole model"):
        load_saved_model(path)


def test_saved_user_model_loads_in_a_fresh_process(user_file, tmp_path):
    model, info = load_model(f"{user_file}:build")
    out = tmp_path / "saved.pt"
    save_model(model, out, info)
    x = torch.randn(2, 1, 12)
    expected = model.eval()(x)
    torch.save(x, tmp_path / "x.pt")
    code = textwrap.dedent(f"""
        import torch
        from tinyprune.models import load_saved_model
        model, info = load_saved_model({str(out)!r})
        x = torch.load({str(tmp_path / 'x.pt')!r})
        torch.save(model(x), {str(tmp_path / 'y.pt')!r})
        print(info.kind, info.input_shape)
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "factory (1, 12)" in proc.stdout
    assert torch.allclose(torch.load(tmp_path / "y.pt"), expected)


def test_sidecar_round_trip(tmp_path):
    model, info = load_model("mnist1d-cnn")
    save_model(model, tmp_path / "m.pt", info)
    _, back = load_saved_model(tmp_path / "m.pt")
    assert back == info and isinstance(back, ModelInfo)
