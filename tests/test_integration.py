"""Build integration for users' own projects: the minimal example built with CMake and with Make
from a real deploy directory, run on QEMU, and checked against TFLite Micro on the host."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tinyprune import emulators
from tinyprune.boards import load_board
from tinyprune.errors import BadInput
from tinyprune.integration import (
    integration_files,
    user_build_lines,
    write_board_files,
    write_integration_files,
    write_sample_header,
)
from tinyprune.qemu import run_elf
from tinyprune.samples import model_inputs
from tinyprune.tflite_info import read_model
from tinyprune.toolchain import target_flags

PROJECT_DIR = Path(__file__).resolve().parents[1]
EXAMPLE_DIR = PROJECT_DIR / "firmware" / "examples" / "minimal"
SAMPLE_INDEX = 3  # a digits test sample

needs_cmake = pytest.mark.skipif(shutil.which("cmake") is None, reason="cmake is not installed (apt-get install cmake)")
needs_make = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


@pytest.fixture(scope="module")
def deploy(tmp_path_factory):
    """`tinyprune arrays` on the trained digits CNN, one quantized test sample, TFLM's answer."""
    from runtime_models import zoo_models

    from tinyprune.data import load_dataset
    from tinyprune.verify import host_outputs

    root = tmp_path_factory.mktemp("integration")
    model = zoo_models()["digits-cnn-trained"]
    (root / "model.tflite").write_bytes(model)
    proc = subprocess.run([sys.executable, "-m", "tinyprune", "arrays", str(root / "model.tflite"), "--out",
                           str(root / "arrays")], capture_output=True, text=True, cwd=root, timeout=300)
    assert proc.returncode == 0, proc.stderr
    data = load_dataset("digits")
    x = model_inputs(data.x_test[SAMPLE_INDEX:SAMPLE_INDEX + 1], read_model(model).inputs[0])
    report = json.loads((root / "arrays" / "arrays_report.json").read_text())
    host = host_outputs(model, x, report["tflm_arena_bytes_host64"])
    return {"root": root, "model": model, "arrays": root / "arrays", "sample": x[0],
            "label": int(data.y_test[SAMPLE_INDEX]), "host_class": int(host[0].argmax())}


def _deploy_dir(deploy, tmp_path, board: str, target: str = "qemu") -> Path:
    out = tmp_path / "deploy"
    shutil.copytree(deploy["arrays"], out)
    write_integration_files(out, load_board(board), deploy["model"], deploy["sample"], deploy["label"], target=target)
    return out


def _run(cmd, cwd: Path) -> str:
    proc = subprocess.run([str(c) for c in cmd], cwd=cwd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"{' '.join(map(str, cmd))} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout + proc.stderr


def _cpu_arch(elf: Path) -> str:
    out = subprocess.run(["arm-none-eabi-readelf", "-A", str(elf)], capture_output=True, text=True, check=True).stdout
    return re.search(r"Tag_CPU_arch: (\S+)", out).group(1)


def _check_console(text: str, deploy) -> None:
    assert re.search(rf"^tinyprune minimal: model {len(deploy['model'])} bytes, arena \d+ bytes$", text, re.M), text
    top = re.search(r"^top class: (\d+) \(score -?\d+\)$", text, re.M)
    assert top, text
    assert int(top.group(1)) == deploy["host_class"]
    assert re.search(rf"^expected class: {deploy['label']}$", text, re.M), text


# ---- the generated files ---------------------------------------------------------------------------

def test_board_files_carry_the_board_budget_and_core_flags(tmp_path):
    board = load_board("nucleo-f446re")
    machine = emulators.qemu_machine(board.qemu_machine)
    write_board_files(board, tmp_path / "q", "qemu")
    write_board_files(board, tmp_path / "h", "hardware")
    qemu_ld = (tmp_path / "q" / "board" / "linker.ld").read_text()
    hw_ld = (tmp_path / "h" / "board" / "linker.ld").read_text()
    assert f"ORIGIN = 0x{machine.code_origin:08x}, LENGTH = {512 * 1024 - 64 * 1024}" in qemu_ld
    assert f"ORIGIN = 0x{machine.ram_origin:08x}, LENGTH = {128 * 1024 - 16 * 1024}" in qemu_ld
    assert f"ORIGIN = 0x08000000, LENGTH = {512 * 1024 - 64 * 1024}" in hw_ld
    cmake = (tmp_path / "q" / "board" / "board.cmake").read_text()
    assert f"set(TINYPRUNE_BOARD_CPU_FLAGS {' '.join(target_flags(board))})" in cmake
    assert "TP_UART_KIND=TP_UART_CMSDK" in cmake and "set(TINYPRUNE_BOARD_SEMIHOSTING ON)" in cmake
    mk = (tmp_path / "h" / "board" / "board.mk").read_text()
    assert "-DTP_UART_KIND=TP_UART_STM32_USART_V1 -DTP_UART_BASE=0x40004400u -DTP_NO_SEMIHOSTING=1" in mk
    assert "TINYPRUNE_BOARD_SEMIHOSTING := 0" in mk
    with pytest.raises(BadInput, match="unknown firmware target 'renode'"):
        write_board_files(board, tmp_path / "x", "renode")


def _tiny_model() -> bytes:
    """int8[1, 8, 8, 1] -> RESHAPE -> int8[1, 64], written directly (no converter)."""
    from runtime_models import Graph, opts

    g = Graph()
    x = g.tensor((1, 8, 8, 1), scale=0.5, zero_point=-3)
    y = g.tensor((1, 64), scale=0.5, zero_point=-3)
    shape = g.tensor((2,), "int32", data=np.array([1, 64], np.int32))
    g.op(22, [x, shape], [y], *opts("ReshapeOptions", newShape=np.array([1, 64], np.int32)))
    return g.build([x], [y])


def test_sample_header_holds_the_sample_and_refuses_a_wrong_one(tmp_path):
    model = _tiny_model()
    with pytest.raises(BadInput, match=r"the sample is float32\[1, 8, 8, 1\] but the model's input is int8"):
        write_sample_header(tmp_path, model, np.zeros((1, 8, 8, 1), np.float32), 0)
    with pytest.raises(BadInput, match=r"the sample is int8\[63\]"):
        write_sample_header(tmp_path, model, np.zeros(63, np.int8), 0)
    sample = np.arange(-32, 32, dtype=np.int8).reshape(8, 8, 1)
    text = write_sample_header(tmp_path, model, sample, None).read_text()
    assert "#define SAMPLE_EXPECTED_CLASS -1" in text and "#define SAMPLE_INPUT_BYTES 64" in text
    body = text.split("= {", 1)[1].split("};", 1)[0]
    assert [int(v) for v in body.replace(",", " ").split()] == list(range(-32, 32))


def test_integration_files_select_the_model_operators(tmp_path):
    written = write_integration_files(tmp_path, "microbit-v1", _tiny_model())
    assert sorted(p.relative_to(tmp_path).as_posix() for p in written) == [
        "board/board.cmake", "board/board.mk", "board/linker.ld", "tpr_ops.h"]
    ops = (tmp_path / "tpr_ops.h").read_text()
    assert re.findall(r"#define (TPR_\w+) 1", ops) == ["TPR_OPS_SELECTED", "TPR_OP_RESHAPE"]
    in_memory = integration_files("microbit-v1", _tiny_model())  # what `tinyprune deploy` stores
    assert in_memory == {p.relative_to(tmp_path).as_posix(): p.read_bytes() for p in written}


def test_user_build_lines_name_files_of_this_checkout(tmp_path):
    lines = user_build_lines(tmp_path)
    include = re.fullmatch(r"include\((\S+)\)", lines["cmake"][0]).group(1)
    assert Path(include).is_file() and lines["cmake"][1] == f"tinyprune_add_model(<target> {tmp_path})"
    assert lines["make"][0] == f"TINYPRUNE_DEPLOY_DIR := {tmp_path}"
    assert Path(lines["make"][1].split(" ", 1)[1]).is_file()


# ---- real builds, real emulator ---------------------------------------------------------------------

@needs_cmake
@pytest.mark.compile
@pytest.mark.emulate
@pytest.mark.parametrize("board_name, arch", [("nucleo-f446re", "v7E-M"), ("rpi-pico", "v6S-M")])
def test_cmake_example_runs_on_qemu_and_agrees_with_tflm(tmp_path, deploy, board_name, arch):
    out = _deploy_dir(deploy, tmp_path, board_name)
    build = tmp_path / "build"
    _run(["cmake", "-S", EXAMPLE_DIR, "-B", build, f"-DTINYPRUNE_DEPLOY_DIR={out}", "-DCMAKE_C_FLAGS=-Werror"],
         cwd=tmp_path)
    _run(["cmake", "--build", build, "-j2"], cwd=tmp_path)
    elf = build / "minimal.elf"
    assert _cpu_arch(elf) == arch
    map_text = (build / "minimal.map").read_text()
    assert "tpr_k_conv_2d" in map_text and "tpr_k_softmax" not in map_text  # only the model's operators
    run = run_elf(elf, load_board(board_name).qemu_machine, timeout_s=30)
    assert run.exit_code == 0, run.stdout + run.stderr
    _check_console(run.stdout, deploy)


@needs_make
@pytest.mark.compile
@pytest.mark.emulate
def test_make_example_runs_on_qemu_and_agrees_with_tflm(tmp_path, deploy):
    board = load_board("mps2-an505")  # Cortex-M33, code and RAM at other addresses than the MPS2 M3/M4
    out = _deploy_dir(deploy, tmp_path, board.name)
    build = tmp_path / "build"
    _run(["make", "-j2", "-f", EXAMPLE_DIR / "Makefile", f"TINYPRUNE_DEPLOY_DIR={out}", f"BUILD={build}",
          "CFLAGS=-Os -g -Wall -Wextra -Werror"], cwd=tmp_path)
    assert _cpu_arch(build / "minimal.elf") == "v8-M.mainline"
    run = run_elf(build / "minimal.elf", board.qemu_machine, timeout_s=30)
    assert run.exit_code == 0, run.stdout + run.stderr
    _check_console(run.stdout, deploy)


@needs_cmake
@pytest.mark.compile
@pytest.mark.emulate
def test_hardware_target_prints_over_the_uart(tmp_path, deploy):
    """Target "hardware": the board's own addresses and UART, no semihosting. mps2-an386's
    addresses and UART are its QEMU machine's, so the hardware image runs there too."""
    board = load_board("mps2-an386")
    out = _deploy_dir(deploy, tmp_path, board.name, target="hardware")
    build = tmp_path / "build"
    _run(["cmake", "-S", EXAMPLE_DIR, "-B", build, f"-DTINYPRUNE_DEPLOY_DIR={out}", "-DCMAKE_C_FLAGS=-Werror"],
         cwd=tmp_path)
    _run(["cmake", "--build", build, "-j2"], cwd=tmp_path)
    run = run_elf(build / "minimal.elf", board.qemu_machine, timeout_s=4, capture_uart=True)
    assert run.timed_out  # no semihosting: the core sleeps after main returns, QEMU keeps running
    assert run.stdout == ""
    _check_console(run.uart, deploy)


@needs_cmake
@pytest.mark.compile
def test_cmake_names_the_missing_board_files(tmp_path, deploy):
    proc = subprocess.run(["cmake", "-S", str(EXAMPLE_DIR), "-B", str(tmp_path / "build"),
                           f"-DTINYPRUNE_DEPLOY_DIR={deploy['arrays']}"], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode != 0
    message = " ".join(proc.stderr.split())  # CMake re-wraps messages
    assert f"tinyprune: {deploy['arrays']}/board/board.cmake does not exist." in message
