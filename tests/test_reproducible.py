"""Reproducibility: the same inputs and --seed, run in two separate processes, give byte-identical
.tflite files, C arrays, firmware images (with their map files) and reports, except the one field
that records when the run happened and how long it took (``run``, see tinyprune/report.py).

The deploy prunes (the flash budget is below the model's size) with fine-tuning, so torch
training, the budget search, the ONNX export, the lowering, TFLite's converter, the metadata
writer, the arrays and the emulator's instruction counts are all covered. ``--no-cache``: each
process does all the work itself. Both runs write the same --out (the second with --force):
deploy reports name their own directory in the build-integration lines.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.compile, pytest.mark.emulate]

IDENTICAL = ("model_int8.tflite", "model_int8_metadata.tflite", "model.onnx", "model_data.h", "model_data.cc",
             "model_ops.h", "model_io.h", "tpr_ops.h", "sample_input.h", "board/linker.ld", "board/board.cmake",
             "board/board.mk", "firmware.elf", "firmware.map", "firmware-hw.elf")


def _tinyprune(cwd, *args):
    proc = subprocess.run([sys.executable, "-m", "tinyprune", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=900, env={**os.environ, "TINYPRUNE_PROGRESS": "0"})
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return proc


def _snapshot(out, names):
    return {name: (out / name).read_bytes() for name in names}


def _without_run(report: dict) -> dict:
    from tinyprune.report import without_run

    return without_run(report)


def test_deploy_twice_gives_identical_artifacts_and_report(tmp_path):
    out = tmp_path / "out"
    args = ("deploy", "--model", "digits-cnn", "--dataset", "digits", "--board", "rpi-pico", "--flash", "48K",
            "--limit", "8", "--calibration-samples", "40", "--step-epochs", "0", "--finetune-epochs", "1",
            "--seed", "3", "--no-cache", "--out", str(out))
    _tinyprune(tmp_path, *args)
    first = _snapshot(out, IDENTICAL + ("report.json",))
    _tinyprune(tmp_path, *args, "--force")
    second = _snapshot(out, IDENTICAL + ("report.json",))
    for name in IDENTICAL:
        assert first[name] == second[name], f"{name} differs between two runs with the same inputs"
    a, b = json.loads(first["report.json"]), json.loads(second["report.json"])
    assert a["prune"]["passed_through"] is False  # the run really pruned (and fine-tuned)
    # durations and timestamps live in `run` only; nothing else moves
    assert set(a["run"]) >= {"created", "seconds", "stages"} and "created" not in a and "seconds" not in a
    assert set(a["run"]["stages"]) == {"prune", "convert"}
    assert "run" not in a["prune"] and "run" not in a["convert"]
    assert all("seconds" not in step for step in a["prune"]["search_steps"])
    assert _without_run(a) == _without_run(b)
    for key in ("accuracy_float", "accuracy_tflite_int8", "flash_estimate_bytes"):  # stable keys are still there
        assert key in a["convert"] or key in a["prune"]
    assert a["fits"] is True and a["bit_exact"] is True


def test_train_twice_gives_identical_weights_and_report(tmp_path):
    import torch

    from tinyprune.models import load_saved_model

    reports, states = [], []
    for name in ("a", "b"):
        _tinyprune(tmp_path, "train", "--model", "digits-cnn", "--dataset", "digits", "--epochs", "1", "--seed", "5",
                   "--out", name)
        reports.append(json.loads((tmp_path / name / "train_report.json").read_text()))
        states.append(load_saved_model(tmp_path / name / "model_float.pt")[0].state_dict())
    assert reports[0]["run"]["created"] and "seconds" in reports[0]["run"]
    assert _without_run(reports[0]) == _without_run(reports[1])
    assert states[0].keys() == states[1].keys()
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])
