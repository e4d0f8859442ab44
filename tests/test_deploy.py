"""`tinyprune deploy`: model -> pruned -> int8 -> firmware verified on QEMU, end to end, for real."""

from __future__ import annotations

import base64
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tinyprune.tflite_info import read_model

pytestmark = [pytest.mark.slow, pytest.mark.compile, pytest.mark.emulate]

PROJECT_DIR = Path(__file__).resolve().parents[1]
ARTIFACTS = ("model_float.pt", "model_pruned.pt", "model.onnx", "model_int8.tflite", "model_int8_metadata.tflite",
             "model_data.h", "model_data.cc", "model_ops.h", "model_io.h", "firmware.elf", "firmware.map",
             "report.json", "report.md", "report.html", "accuracy.png", "memory.png", "channels.png", "search.png",
             "speed.png", "board/board.cmake", "board/linker.ld", "sample_input.h")
LIMIT = "120"


def _deploy(base: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tinyprune", "deploy", *args], capture_output=True, text=True,
                          cwd=base, timeout=900, env={**os.environ, "TINYPRUNE_PROGRESS": "0", **(env or {})})


@pytest.fixture(scope="module")
def deployed(tmp_path_factory):
    """digits-cnn on two boards with different cores: rpi-pico (Cortex-M0+, it fits as it is) and
    stm32vldiscovery (Cortex-M3, 8 KiB of RAM: pruning is needed)."""
    base = tmp_path_factory.mktemp("deploy")
    runs = {}
    for board in ("rpi-pico", "stm32vldiscovery"):
        out = base / board
        proc = _deploy(base, "--model", "digits-cnn", "--dataset", "digits", "--board", board, "--limit", LIMIT,
                       "--finetune-epochs", "6", "--out", str(out))
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        runs[board] = (out, json.loads((out / "report.json").read_text()), proc.stdout)
    return base, runs


@pytest.mark.parametrize("board", ["rpi-pico", "stm32vldiscovery"])
def test_deploy_fits_bit_exact_with_every_artifact(deployed, board):
    _, runs = deployed
    out, r, stdout = runs[board]
    for name in ARTIFACTS:
        assert (out / name).is_file(), name
    assert (out / f"{board}.resc").is_file() and (out / f"{board}.robot").is_file()
    assert r["fits"] is True and r["bit_exact"] is True and r["mismatches"] == 0
    assert r["board"] == board and r["samples"] == int(LIMIT)
    # sizes measured on the target are within the budget
    s = r["sizes"]
    assert s["flash_bytes"] <= r["budget"]["flash_bytes"] and s["ram_bytes"] <= r["budget"]["ram_bytes"]
    assert s["model_bytes"] == (out / "model_int8.tflite").stat().st_size
    assert r["speed"]["instructions_per_inference"] > r["speed"]["macs_per_inference"] > 0
    assert 0 < r["speed"]["init_instructions"] == r["verify"]["init_instructions"]
    ops = r["speed"]["by_operator"]  # every operator timed on the target
    assert [row["op"] for row in ops] == [op.name for op in read_model((out / "model_int8.tflite").read_bytes()).operators]
    assert abs(sum(row["instructions"] for row in ops) / r["speed"]["instructions_per_inference"] - 1) < 0.02
    assert "### By operator" in (out / "report.md").read_text() and "costliest  " in stdout
    # the summary on the terminal
    assert "fits       yes" in stdout and "estimate from instruction counts" in stdout
    assert f"tinyprune_add_model(<target> {out})" in stdout and "tinyprune.mk" in stdout


@pytest.mark.parametrize("board", ["rpi-pico", "stm32vldiscovery"])
def test_target_accuracy_within_one_point_of_the_float_model(deployed, board):
    """The deployed model's float (pruned torch) accuracy on the same samples, against the target's."""
    import torch

    from tinyprune.data import load_dataset
    from tinyprune.models import load_saved_model

    out, r, _ = deployed[1][board]
    model, _ = load_saved_model(out / "model_pruned.pt")
    data = load_dataset("digits")
    n = int(LIMIT)
    with torch.no_grad():
        float_acc = float((model(torch.from_numpy(data.x_test[:n])).argmax(1).numpy() == data.y_test[:n]).mean())
    assert abs(r["accuracy"]["target"] - float_acc) <= 0.01, (r["accuracy"], float_acc)
    assert r["accuracy"]["target"] == r["accuracy"]["target_host_tflm_same_samples"]


def test_small_board_was_pruned_and_the_big_one_passed_through(deployed):
    _, runs = deployed
    pico, vl = runs["rpi-pico"][1], runs["stm32vldiscovery"][1]
    assert pico["prune"]["passed_through"] is True
    assert vl["prune"]["passed_through"] is False
    assert vl["prune"]["params_after"] < vl["prune"]["params_before"]
    assert vl["sizes"]["ram_bytes"] <= 6 * 1024  # stm32vldiscovery: 8 KiB less 2 KiB reserved


def test_rerun_uses_the_stage_cache(deployed):
    base, runs = deployed
    out, first, _ = runs["stm32vldiscovery"]
    start = time.monotonic()
    proc = _deploy(base, "--model", "digits-cnn", "--dataset", "digits", "--board", "stm32vldiscovery",
                   "--limit", LIMIT, "--finetune-epochs", "6", "--out", str(out), "--force")
    assert proc.returncode == 0, proc.stderr[-2000:]
    for stage in ("prune", "convert", "verify"):
        assert f"{stage}: from the cache" in proc.stdout
    again = json.loads((out / "report.json").read_text())
    assert again["sizes"] == first["sizes"] and again["accuracy"] == first["accuracy"]
    assert time.monotonic() - start < 60


def test_accuracy_bar_fails_the_run_after_writing_it(deployed):
    """--min-accuracy (every stage from the cache): above what the target measured, exit 1 with
    DIR complete and the gate in report.json; at or below it, exit 0."""
    base, runs = deployed
    measured = runs["rpi-pico"][1]["accuracy"]["target"]
    common = ("--model", "digits-cnn", "--dataset", "digits", "--board", "rpi-pico", "--limit", LIMIT,
              "--finetune-epochs", "6")
    missed = base / "bar-missed"
    proc = _deploy(base, *common, "--min-accuracy", "100%", "--out", str(missed))
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert f"accuracy {100 * measured:.2f} % is below --min-accuracy 100.00 %" in proc.stderr
    assert "MISSED: accuracy" in proc.stdout
    gate = json.loads((missed / "report.json").read_text())["quality_gate"]
    assert gate["passed"] is False and gate["measured"] == measured and gate["threshold"] == 1.0
    assert (missed / "firmware.elf").is_file()
    assert "**Bar: accuracy" in (missed / "report.md").read_text()
    met = base / "bar-met"
    proc = _deploy(base, *common, "--min-accuracy", f"{measured:.6f}", "--out", str(met))
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert json.loads((met / "report.json").read_text())["quality_gate"]["passed"] is True
    proc = _deploy(base, *common, "--max-mse", "0.1", "--out", str(base / "bar-wrong"))
    assert proc.returncode == 2 and "--max-mse does not apply: digits-cnn is scored by accuracy" in proc.stderr
    assert not (base / "bar-wrong").exists()


def test_target_hardware_links_board_files_at_the_boards_own_addresses(deployed, tmp_path):
    """--target hardware (every stage from the cache): board/ links at the board's flash and RAM
    (RP2040: 0x10000000, 0x20000000; its QEMU machine, an MPS2, has flash at 0), and the minimal
    example built from it with CMake is placed there."""
    base, runs = deployed
    out = base / "pico-hardware"
    proc = _deploy(base, "--model", "digits-cnn", "--dataset", "digits", "--board", "rpi-pico",
                   "--limit", LIMIT, "--finetune-epochs", "6", "--target", "hardware", "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "verify: from the cache" in proc.stdout and "board/ links at the board's own addresses" in proc.stdout
    report = json.loads((out / "report.json").read_text())
    assert report["board_target"] == "hardware" and runs["rpi-pico"][1]["board_target"] == "qemu"
    linker = (out / "board" / "linker.ld").read_text()
    assert "FLASH (rx)  : ORIGIN = 0x10000000" in linker and "RAM   (rwx) : ORIGIN = 0x20000000" in linker
    assert "ORIGIN = 0x10000000" not in (runs["rpi-pico"][0] / "board" / "linker.ld").read_text()
    assert "set(TINYPRUNE_BOARD_TARGET \"hardware\")" in (out / "board" / "board.cmake").read_text()
    if shutil.which("cmake") is None:
        pytest.skip("cmake is not installed")
    build = tmp_path / "build"
    for cmd in (["cmake", "-S", PROJECT_DIR / "firmware" / "examples" / "minimal", "-B", build,
                 f"-DTINYPRUNE_DEPLOY_DIR={out}"], ["cmake", "--build", build]):
        proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    headers = subprocess.run(["arm-none-eabi-readelf", "-lW", str(build / "minimal.elf")], capture_output=True,
                             text=True, check=True).stdout
    loads = [line.split() for line in headers.splitlines() if line.strip().startswith("LOAD")]
    assert loads and all(int(p[3], 16) >= 0x10000000 for p in loads), headers  # physical (load) addresses
    assert any(0x10000000 <= int(p[2], 16) < 0x10200000 for p in loads), headers  # code in the board's flash


def test_html_report_is_self_contained_with_decodable_images(deployed):
    from PIL import Image

    out, _, _ = deployed[1]["stm32vldiscovery"]
    html = (out / "report.html").read_text()
    assert "src=\"http" not in html and "href=\"http" not in html
    images = re.findall(r'<img[^>]+src="data:image/png;base64,([^"]+)"', html)
    assert len(images) >= 4
    for data in images:
        img = Image.open(io.BytesIO(base64.b64decode(data))).convert("RGB")
        assert len(np.unique(np.asarray(img).reshape(-1, 3), axis=0)) > 1  # not blank


def test_example_firmware_builds_with_cmake_from_the_deploy_dir_and_runs(deployed, tmp_path):
    from tinyprune.qemu import run_elf
    from tinyprune.verify import host_outputs

    if shutil.which("cmake") is None:
        pytest.skip("cmake is not installed")
    out, r, _ = deployed[1]["stm32vldiscovery"]
    build = tmp_path / "build"
    for cmd in (["cmake", "-S", PROJECT_DIR / "firmware" / "examples" / "minimal", "-B", build,
                 f"-DTINYPRUNE_DEPLOY_DIR={out}"], ["cmake", "--build", build]):
        proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    elf = next(build.glob("*.elf"), None) or build / "minimal"
    run = run_elf(elf, r["qemu_machine"], timeout_s=60)
    assert run.exit_code == 0, run.stdout
    top = re.search(r"^top class: (\d+)", run.stdout, re.M)
    assert top, run.stdout
    # the sample compiled into sample_input.h is the first test sample; TFLM on the host agrees
    from tinyprune.data import load_dataset
    from tinyprune.samples import model_inputs
    from tinyprune.tflite_info import read_model

    model = (out / "model_int8.tflite").read_bytes()
    x = model_inputs(load_dataset("digits").x_test[:1], read_model(model).inputs[0])
    assert int(top.group(1)) == int(host_outputs(model, x)[0].argmax())


def test_impossible_budget_exits_2_before_any_work(tmp_path):
    out = tmp_path / "out"
    start = time.monotonic()
    proc = _deploy(tmp_path, "--model", "digits-cnn", "--dataset", "digits", "--board", "nucleo-f446re",
                   "--flash", "8K", "--ram", "5K", "--out", str(out))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "smallest reachable" in proc.stderr and "flash" in proc.stderr and "RAM" in proc.stderr
    assert not out.exists()
    assert time.monotonic() - start < 60


def test_bad_deploy_inputs(tmp_path):
    proc = _deploy(tmp_path, "--model", "digits-cnn", "--dataset", "digits", "--out", str(tmp_path / "o"))
    assert proc.returncode == 2 and "--board" in proc.stderr
    proc = _deploy(tmp_path, "--model", "digits-cnn", "--dataset", "digits", "--board", "nucleo-f44",
                   "--out", str(tmp_path / "o"))
    assert proc.returncode == 2 and "nucleo-f446re" in proc.stderr
    proc = _deploy(tmp_path, "--model", "digits-cnn", "--dataset", "digits", "--board", "rpi-pico",
                   "--flash", "64M", "--out", str(tmp_path / "o"))
    assert proc.returncode == 2 and "more than rpi-pico has" in proc.stderr
    assert not (tmp_path / "o").exists()


def test_killed_deploy_leaves_no_output_that_looks_complete(tmp_path):
    """SIGKILL in the middle of the run: DIR does not exist, only a hidden temporary may."""
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "tinyprune", "deploy", "--model", "mnist1d-cnn", "--dataset",
                             "mnist1d", "--board", "nucleo-f446re", "--flash", "32K", "--ram", "12K", "--no-cache",
                             "--out", str(out)], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env={**os.environ, "TINYPRUNE_PROGRESS": "0"})
    try:
        for line in proc.stdout:  # kill while converting, when the temporary directory holds files
            if "convert:" in line:
                break
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not out.exists()
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".out")]
    assert all(".tinyprune-tmp-" in name for name in leftovers), leftovers
