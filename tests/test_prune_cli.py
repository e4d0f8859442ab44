"""`tinyprune prune` and `tinyprune train` as a user runs them: exit codes, messages, the files
written and what they contain. Every run works in pytest's tmp_path."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from tinyprune import cost, zoo
from tinyprune.prune import Budget, PruneConfig, check_budget

# no progress bars; one torch thread per subprocess (tiny models; the test workers share the cores)
QUIET = {"TINYPRUNE_PROGRESS": "0", "OMP_NUM_THREADS": "1"}
REPORT_KEYS = {
    "params_before", "params_after", "macs_before", "macs_after", "flash_estimate_bytes", "ram_estimate_bytes",
    "budget_flash_bytes", "budget_ram_bytes", "accuracy_before", "accuracy_after", "layers",
}
LAYER_KEYS = {"name", "channels_before", "channels_after", "params_before", "params_after",
              "activation_bytes_before", "activation_bytes_after"}
# load a saved model in a fresh interpreter with the documented call, and describe it
DESCRIBE = textwrap.dedent("""
    import json, sys
    import torch
    import tinyprune.models
    from tinyprune import cost
    from tinyprune.data import load_dataset
    from tinyprune.train import evaluate
    model, info = tinyprune.models.load_saved_model(sys.argv[1])
    shape = tuple(info.input_shape)
    widths = {n: m.weight.shape[0] for n, m in model.named_modules() if isinstance(m, (torch.nn.Conv1d, torch.nn.Linear))}
    out = {"kind": info.kind, "widths": widths, "flash": cost.estimate(model, shape).flash_bytes,
           "output": list(model(torch.zeros(2, *shape)).shape)}
    if len(sys.argv) > 2:
        data = load_dataset(sys.argv[2])
        out["accuracy"] = evaluate(model, data.x_test, data.y_test)
    print(json.dumps(out))
""")


def _describe(path, dataset=None, cwd=None) -> dict:
    proc = subprocess.run([sys.executable, "-c", DESCRIBE, str(path), *([str(dataset)] if dataset else [])],
                          capture_output=True, text=True, cwd=cwd, timeout=300, env={**os.environ, **QUIET})
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def weights():
    """The zoo's mnist1d-cnn trained with the default recipe (cached, shared with other tests)."""
    from tinyprune.train import trained_zoo_checkpoint

    return trained_zoo_checkpoint("mnist1d-cnn", "mnist1d")


@pytest.fixture(scope="module")
def mnist1d_sizes():
    entry = zoo.get("mnist1d-cnn")
    return check_budget(entry.build().eval(), entry.input_shape, Budget(1 << 30, 1 << 30), PruneConfig())


def _report(out) -> dict:
    return json.loads((out / "prune_report.json").read_text())


def _no_leftovers(tmp_path, *expected):
    names = sorted(p.name for p in tmp_path.iterdir())
    assert not [n for n in names if "tinyprune-tmp" in n], names  # no staging directory survives
    for name in expected:
        assert name in names


# ---- prune ------------------------------------------------------------------------------------------

def test_prune_writes_a_loadable_model_and_a_complete_report(cli, tmp_path, weights, mnist1d_sizes):
    from tinyprune.models import load_model
    from tinyprune.data import load_dataset
    from tinyprune.train import evaluate

    before = mnist1d_sizes.before
    flash = before.runtime_code_bytes + before.model_bytes // 2
    r = cli("prune", "--model", "mnist1d-cnn", "--dataset", "mnist1d", "--weights", weights,
            "--flash", flash, "--ram", "8K", "--finetune-epochs", "2", "--out", "out", "--json", "r.json", env=QUIET)
    assert r.code == 0, r.stderr
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == [".tinyprune-output", "model_pruned.json", "model_pruned.pt",
                                                      "prune_report.json"]
    _no_leftovers(tmp_path, "out", "r.json")
    rep = _report(out)
    assert REPORT_KEYS <= set(rep)
    assert json.loads((tmp_path / "r.json").read_text()) == rep
    assert (rep["budget_flash_bytes"], rep["budget_ram_bytes"]) == (flash, 8192)
    assert rep["fits"] and not rep["passed_through"]
    assert rep["flash_estimate_bytes"] <= flash and rep["ram_estimate_bytes"] <= 8192
    assert rep["flash_estimate_bytes_before"] == before.flash_bytes
    assert rep["params_after"] < rep["params_before"] == 22122
    assert rep["macs_after"] < rep["macs_before"] == before.macs
    model, _ = load_model("mnist1d-cnn", weights)
    data = load_dataset("mnist1d")
    assert rep["accuracy_before"] == evaluate(model, data.x_test, data.y_test)
    assert 0.5 < rep["accuracy_after"] <= 1.0

    layers = {row["name"]: row for row in rep["layers"]}
    assert list(layers) == ["features.0.0", "features.1.0", "features.2.0", "classifier.1"]
    assert all(LAYER_KEYS <= set(row) for row in rep["layers"])
    head = layers["classifier.1"]
    assert head["protected"] and head["channels_after"] == head["channels_before"] == 10
    assert layers["features.0.0"]["in_channels_after"] == 1
    assert sum(row["channels_after"] < row["channels_before"] for row in rep["layers"]) >= 2
    assert sum(row["params_after"] for row in rep["layers"]) == rep["deployed_params_after"]

    # the documented call, in a fresh interpreter: the model the report describes
    assert rep["load"] == "tinyprune.models.load_saved_model('model_pruned.pt')"
    assert "load_saved_model" in r.stdout
    got = _describe(out / "model_pruned.pt", "mnist1d", cwd=tmp_path)
    assert got["kind"] == "zoo" and got["output"] == [2, 10]
    assert got["widths"] == {name: row["channels_after"] for name, row in layers.items()}
    assert got["flash"] == rep["flash_estimate_bytes"]
    assert got["accuracy"] == rep["accuracy_after"]


def test_round_to_8_gives_multiples_of_8(cli, tmp_path, weights, mnist1d_sizes):
    before = mnist1d_sizes.before
    r = cli("prune", "--model", "mnist1d-cnn", "--dataset", "mnist1d", "--weights", weights, "--round-to", "8",
            "--flash", before.flash_bytes * 3 // 5, "--ram", "8K", "--step-epochs", "0", "--finetune-epochs", "0",
            "--out", "p8", env=QUIET)
    assert r.code == 0, r.stderr
    rep = _report(tmp_path / "p8")
    pruned = [g for g in rep["groups"] if g["channels_after"] != g["channels_before"]]
    assert pruned and all(g["channels_after"] % 8 == 0 for g in rep["groups"]), rep["groups"]
    assert rep["config"]["round_to"] == 8


@pytest.mark.parametrize("flash, ram, binding", [("8K", "64K", "flash"), ("64K", "4K", "RAM")])
def test_impossible_budget_exits_2_before_any_work(cli, tmp_path, flash, ram, binding):
    """digits-cnn without weights would be trained first; an impossible budget stops before that."""
    entry = zoo.get("digits-cnn")
    minimal = check_budget(entry.build().eval(), entry.input_shape, Budget(1 << 30, 1 << 30)).minimal
    cache = tmp_path / "cache"
    r = cli("prune", "--model", "digits-cnn", "--dataset", "digits", "--flash", flash, "--ram", ram, "--out", "out",
            env={**QUIET, "TINYPRUNE_CACHE": str(cache)})
    assert r.code == 2, r.stderr
    assert f"fits the {binding} budget" in r.stderr
    assert "smallest reachable" in r.stderr
    assert f"flash {minimal.flash_bytes} bytes" in r.stderr and f"RAM {minimal.ram_bytes} bytes" in r.stderr
    assert "hint:" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "out").exists()
    assert not list(cache.rglob("*.pt"))  # nothing was trained
    _no_leftovers(tmp_path)


USER_NET = textwrap.dedent("""
    import torch
    from torch import nn

    class SignalNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv1d(2, 24, 3, padding=1)
            self.bn1 = nn.BatchNorm1d(24)
            self.conv2 = nn.Conv1d(24, 32, 3, stride=2, padding=1)
            self.fc = nn.Linear(32 * 12, 4)

        def forward(self, x):
            x = torch.relu(self.bn1(self.conv1(x)))
            x = torch.relu(self.conv2(x))
            return self.fc(x.flatten(1))

    def build():
        return SignalNet()
""")


def test_user_model_from_a_py_factory_with_weights_prunes(cli, tmp_path):
    from tinyprune.data import load_npz
    from tinyprune.models import load_model
    from tinyprune.train import TrainConfig, evaluate, train

    (tmp_path / "net.py").write_text(USER_NET)
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 400)
    x = (rng.normal(size=(400, 2, 24)) + y[:, None, None] * 0.5).astype(np.float32)
    np.savez(tmp_path / "signals.npz", x_train=x[:300], y_train=y[:300], x_test=x[300:], y_test=y[300:])
    data = load_npz(tmp_path / "signals.npz")
    model, info = load_model(f"{tmp_path}/net.py:build")
    train(model, data, TrainConfig(epochs=3))
    torch.save(model.state_dict(), tmp_path / "net.pt")
    before = cost.estimate(model, data.input_shape)
    minimal = check_budget(model, data.input_shape, Budget(1 << 30, 1 << 30)).minimal
    flash = (before.flash_bytes + minimal.flash_bytes) // 2

    r = cli("prune", "--model", "net.py:build", "--weights", "net.pt", "--dataset", "signals.npz", "--flash", flash,
            "--ram", "64K", "--importance", "taylor", "--finetune-epochs", "1", "--out", "pruned", env=QUIET)
    assert r.code == 0, r.stderr
    rep = _report(tmp_path / "pruned")
    assert rep["model_kind"] == "factory" and rep["weights"]["source"] == "given"
    assert rep["accuracy_before"] == evaluate(model, data.x_test, data.y_test)  # the weights were used
    assert rep["fits"] and rep["flash_estimate_bytes"] <= flash < rep["flash_estimate_bytes_before"]
    # the user's class is re-imported from net.py by the sidecar, in a fresh interpreter
    got = _describe(tmp_path / "pruned" / "model_pruned.pt", cwd=tmp_path / "pruned")
    assert got["kind"] == "factory" and got["output"] == [2, 4]
    assert got["widths"]["fc"] == 4 and (got["widths"]["conv1"] < 24 or got["widths"]["conv2"] < 32)
    assert got["flash"] == rep["flash_estimate_bytes"]


def test_a_budget_that_fits_passes_the_model_through_and_force_ratio_prunes_anyway(cli, tmp_path, weights):
    from tinyprune.models import load_saved_model

    common = ("prune", "--model", "mnist1d-cnn", "--dataset", "mnist1d", "--weights", weights, "--flash", "1M",
              "--ram", "256K", "--step-epochs", "0", "--finetune-epochs", "0")
    r = cli(*common, "--out", "same", env=QUIET)
    assert r.code == 0, r.stderr
    assert "already fits" in r.stdout and "--force-ratio" in r.stdout
    rep = _report(tmp_path / "same")
    assert rep["passed_through"] and rep["fits"]
    assert rep["params_after"] == rep["params_before"] and rep["flash_estimate_bytes"] == rep["flash_estimate_bytes_before"]
    assert rep["accuracy_after"] == rep["accuracy_before"]
    model, _ = load_saved_model(tmp_path / "same" / "model_pruned.pt")
    state = torch.load(weights, weights_only=True)
    assert model.state_dict().keys() == state.keys()
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())

    r = cli(*common, "--force-ratio", "0.5", "--out", "forced", env=QUIET)
    assert r.code == 0, r.stderr
    assert "already fits" not in r.stdout
    rep = _report(tmp_path / "forced")
    assert not rep["passed_through"] and rep["config"]["force_ratio"] == 0.5
    assert rep["model_bytes_estimate"] <= 0.5 * rep["model_bytes_estimate_before"]
    assert rep["params_after"] < rep["params_before"]


@pytest.mark.parametrize("args, expect", [
    ([], "no budget: give --board NAME, or both --flash SIZE and --ram SIZE"),
    (["--flash", "24K"], "no budget"),
    (["--flash", "12Q", "--ram", "8K"], "'12Q' is not a size"),
    (["--flash", "0", "--ram", "8K"], "a size must be positive"),
    (["--flash", "24K", "--ram", "8K", "--round-to", "3"], "invalid choice: 3"),
    (["--flash", "24K", "--ram", "8K", "--force-ratio", "1.5"], "--force-ratio must be between 0 and 1"),
    (["--flash", "24K", "--ram", "8K", "--lr", "-1"], "--lr must be positive"),
    (["--flash", "24K", "--ram", "8K", "--min-channels", "0"], "--min-channels must be at least 1"),
    (["--board", "no-such-board"], "unknown board 'no-such-board'"),
    (["--flash", "24K", "--ram", "8K", "--weights", "missing.pt"], "weights file missing.pt does not exist"),
    (["--flash", "24K", "--ram", "8K", "--dataset", "digits"], "expects inputs of shape (1, 40)"),
])
def test_bad_prune_input_exits_2_with_a_message(cli, tmp_path, args, expect):
    dataset = [] if "--dataset" in args else ["--dataset", "mnist1d"]
    r = cli("prune", "--model", "mnist1d-cnn", *dataset, *args, "--out", "out", env=QUIET)
    assert r.code == 2
    assert expect in r.stderr
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "out").exists()


def test_an_existing_out_is_never_replaced_without_force(cli, tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    common = ("prune", "--model", "mnist1d-cnn", "--dataset", "mnist1d", "--flash", "24K", "--ram", "8K")
    r = cli(*common, "--out", "mine", env=QUIET)
    assert r.code == 2 and "output directory mine already exists" in r.stderr and "--force" in r.stderr
    r = cli(*common, "--out", "mine", "--force", env=QUIET)
    assert r.code == 2 and "was not created by tinyprune" in r.stderr
    assert [p.name for p in mine.iterdir()] == ["notes.txt"] and (mine / "notes.txt").read_text() == "keep me"


# ---- train ------------------------------------------------------------------------------------------

def test_train_writes_a_model_that_prune_accepts(cli, tmp_path):
    from tinyprune.data import load_dataset
    from tinyprune.models import load_saved_model
    from tinyprune.train import evaluate

    r = cli("train", "--model", "mnist1d-cnn", "--dataset", "mnist1d", "--epochs", "2", "--seed", "1",
            "--out", "t", "--json", "t.json", env=QUIET)
    assert r.code == 0, r.stderr
    rep = json.loads((tmp_path / "t" / "train_report.json").read_text())
    assert json.loads((tmp_path / "t.json").read_text()) == rep
    assert [h["epoch"] for h in rep["history"]] == [1, 2] and rep["config"]["seed"] == 1
    model, info = load_saved_model(tmp_path / "t" / "model_float.pt")
    data = load_dataset("mnist1d")
    assert info.kind == "zoo" and rep["params"] == 22122
    assert rep["test_accuracy"] == evaluate(model, data.x_test, data.y_test) > 0.3  # 2 epochs: far above chance
    assert rep["flash_estimate_bytes"] == cost.estimate(model, (1, 40)).flash_bytes
    assert "Wrote t/model_float.pt" in r.stdout

    # the saved model goes straight into prune, with the weights it was saved with
    r = cli("prune", "--model", "t/model_float.pt", "--dataset", "mnist1d", "--flash", "30K", "--ram", "8K",
            "--step-epochs", "0", "--finetune-epochs", "0", "--out", "p", env=QUIET)
    assert r.code == 0, r.stderr
    prep = _report(tmp_path / "p")
    assert prep["weights"]["source"] == "saved model"
    assert prep["accuracy_before"] == rep["test_accuracy"]
    assert prep["flash_estimate_bytes"] <= 30 * 1024 < prep["flash_estimate_bytes_before"]


@pytest.mark.parametrize("args, expect", [
    (["--epochs", "0"], "--epochs must be at least 1"),
    (["--batch-size", "0"], "--batch-size must be at least 1"),
    (["--lr", "0"], "--lr must be positive"),
    (["--model", "nope-net"], "unknown zoo model 'nope-net'"),
])
def test_bad_train_input_exits_2_with_a_message(cli, tmp_path, args, expect):
    model = [] if "--model" in args else ["--model", "mnist1d-cnn"]
    r = cli("train", *model, "--dataset", "mnist1d", *args, "--out", "t", env=QUIET)
    assert r.code == 2 and expect in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "t").exists()


def test_budget_from_a_board_and_overrides():
    import argparse

    from tinyprune.boards import load_board
    from tinyprune.commands.prune import budget_from_args

    board = load_board("nucleo-f446re")
    args = argparse.Namespace(board="nucleo-f446re", boards_dir=[], flash=None, ram=None)
    budget, got = budget_from_args(args)
    assert got == board
    assert (budget.flash_bytes, budget.ram_bytes) == (board.budget_flash_bytes, board.budget_ram_bytes)
    assert board.budget_flash_bytes == board.flash_bytes - board.reserved_flash_bytes
    assert budget.source == "board nucleo-f446re"
    budget, _ = budget_from_args(argparse.Namespace(board="nucleo-f446re", boards_dir=[], flash=None, ram=4096))
    assert (budget.flash_bytes, budget.ram_bytes) == (board.budget_flash_bytes, 4096)
    assert budget.source == "board nucleo-f446re, --ram 4096"


def test_cli_choices_agree_with_the_library():
    """commands/prune.py repeats the criteria and schedules so that `--help` imports no torch."""
    from tinyprune.commands import prune as prune_cmd
    from tinyprune.importance import CRITERIA
    from tinyprune.prune import SCHEDULES

    assert prune_cmd.CRITERIA == CRITERIA and prune_cmd.SCHEDULES == SCHEDULES


def test_help_does_not_import_torch():
    import subprocess
    import sys

    code = "import sys; from tinyprune.cli import build_parser; build_parser(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
