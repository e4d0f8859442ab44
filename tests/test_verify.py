"""The emulator harness: real firmware, real QEMU, outputs compared with TFLite Micro on the host."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from tinyprune.boards import load_board
from tinyprune.errors import EmulatorError, FirmwareTooBig
from tinyprune.samples import model_inputs, random_inputs
from tinyprune.tflite_info import read_model
from tinyprune.verify import (
    EmbeddedSamples,
    HarnessBuild,
    build_harness,
    host_outputs,
    outputs_digest,
    run_embedded_on_qemu,
    run_on_qemu,
    size_breakdown,
    verify_model,
)

pytestmark = [pytest.mark.compile, pytest.mark.emulate]

TESTS_DIR = Path(__file__).resolve().parent
TEST_BOARDS = TESTS_DIR / "data" / "boards"

# One board per core; the model is chosen to fit the smallest of them.
ONE_BOARD_PER_CORE = [
    ("microbit-v1", "mnist1d-cnn"),  # cortex-m0, 12 KiB RAM budget
    ("rpi-pico", "ds-cnn"),  # cortex-m0plus
    ("stm32vldiscovery", "mnist1d-cnn"),  # cortex-m3, 6 KiB RAM budget
    ("nucleo-f446re", "ds-cnn"),  # cortex-m4
    ("stm32f746g-disco", "digits-cnn"),  # cortex-m7
    ("mps2-an505", "fc-autoencoder"),  # cortex-m33
    ("mps3-an547", "digits-cnn"),  # cortex-m55
]


@pytest.fixture(scope="module")
def zoo_models():
    from zoo_tflite import zoo_tflite_models

    return zoo_tflite_models()


@pytest.mark.parametrize("board_name, model_name", ONE_BOARD_PER_CORE, ids=[b for b, _ in ONE_BOARD_PER_CORE])
def test_zoo_model_bit_exact_on_each_core(tmp_path, zoo_models, board_name, model_name):
    board = load_board(board_name)
    model = zoo_models[model_name]
    x = random_inputs(read_model(model).inputs[0], 100, seed=1)
    r = verify_model(model, board, x, None, tmp_path)
    assert r.samples == 100
    assert r.bit_exact and r.mismatches == 0 and r.mismatched_bytes == 0
    assert r.fits
    assert 0 < r.stack_bytes < r.stack_reserved_bytes
    assert r.arena_bytes <= r.tflm_arena_bytes_32bit_estimate
    assert r.instructions_per_inference > r.macs_per_inference > 0
    assert 0 < r.init_instructions < r.instructions_per_inference  # tpr_init: less than one inference
    assert 0 < r.model_bytes == len(model)
    assert 0 < r.runtime_code_bytes < 16 * 1024
    assert r.flash_bytes > r.model_bytes + r.runtime_code_bytes
    assert r.ram_bytes <= board.budget_ram_bytes


def test_trained_digits_accuracy_on_target_equals_host(tmp_path, zoo_models):
    from tinyprune.data import load_dataset

    model = zoo_models["digits-cnn-trained"]
    data = load_dataset("digits")
    x = model_inputs(data.x_test, read_model(model).inputs[0])
    r = verify_model(model, load_board("nucleo-f446re"), x, data.y_test, tmp_path)
    assert r.samples == len(data.y_test) >= 300
    assert r.bit_exact
    assert r.accuracy == r.host_accuracy
    assert r.accuracy > 0.9



def test_min_accuracy_bar_exits_1_when_missed_and_2_without_labels(tmp_path, zoo_models, cli):
    model_path = tmp_path / "m.tflite"
    model_path.write_bytes(zoo_models["digits-cnn-trained"])
    r = cli("verify", model_path, "--board", "rpi-pico", "--dataset", "digits", "--limit", "50",
            "--min-accuracy", "100%", "--json", tmp_path / "v.json")
    report = json.loads((tmp_path / "v.json").read_text())
    gate = report["quality_gate"]
    assert gate["measured"] == report["accuracy"] < 1.0 and gate["passed"] is False
    assert r.code == 1 and f"accuracy {100 * report['accuracy']:.2f} % is below --min-accuracy 100.00 %" in r.stderr
    r = cli("verify", model_path, "--board", "rpi-pico", "--dataset", "digits", "--limit", "50",
            "--min-accuracy", "50%", "--json", tmp_path / "v2.json")
    assert r.code == 0 and "passed" in r.stdout
    assert json.loads((tmp_path / "v2.json").read_text())["quality_gate"]["passed"] is True
    r = cli("verify", model_path, "--board", "rpi-pico", "--random", "5", "--min-accuracy", "90%")
    assert r.code == 2 and "--min-accuracy needs labelled samples" in r.stderr

def test_model_too_big_for_a_small_board(tmp_path, zoo_models):
    with pytest.raises(FirmwareTooBig) as exc:
        build_harness(zoo_models["resnet8"], load_board("stm32vldiscovery"), tmp_path)
    assert "stm32vldiscovery" in exc.value.message and exc.value.overflow_bytes > 0


def test_linker_overflow_is_reported_in_bytes(tmp_path, zoo_models):
    """The model alone fits the flash budget, model + runtime + harness does not: the linker says so."""
    model = zoo_models["digits-cnn"]
    text = (TESTS_DIR.parent / "boards" / "nucleo-f446re.toml").read_text()
    text = text.replace('name = "nucleo-f446re"', 'name = "tiny-f446"')
    budget = len(model) + 2048  # room for the model, not for the runtime
    text = text.replace('reserved_flash_bytes = "64KiB"', f"reserved_flash_bytes = {512 * 1024 - budget}")
    (tmp_path / "boards").mkdir()
    (tmp_path / "boards" / "tiny-f446.toml").write_text(text)
    board = load_board("tiny-f446", [tmp_path / "boards"])
    with pytest.raises(FirmwareTooBig) as exc:
        build_harness(model, board, tmp_path / "fw")
    assert exc.value.region == "FLASH"
    assert re.search(r"flash overflows by \d+ bytes \(budget %d bytes" % budget, exc.value.message)


def test_fast_arena_only_where_the_ram_budget_has_room(tmp_path, zoo_models):
    """build_harness gives the runtime its fast arena when the image still links with it, and
    otherwise the smallest one rather than failing."""
    import dataclasses

    from tinyprune import runtime

    model = zoo_models["fc-autoencoder"]
    small, fast = runtime.required_arena_bytes(model), runtime.required_arena_bytes(model, fast=True)
    board = load_board("nucleo-f446re")
    base = build_harness(model, board, tmp_path / "min", fast_arena=False)
    assert base.arena_bytes == small and not base.multipliers_in_arena
    for room, expect_fast in ((fast - small - 64, False), (fast - small + 64, True)):
        budget = base.sizes["ram_bytes"] + room
        tight = dataclasses.replace(board, name=f"tight-{room}", reserved_ram_bytes=board.ram_bytes - budget)
        hb = build_harness(model, tight, tmp_path / f"fw{room}", opt="-O2")
        assert hb.multipliers_in_arena == expect_fast, room
        assert hb.arena_bytes == (fast if expect_fast else small) and hb.arena_min_bytes == small
        assert hb.sizes["ram_bytes"] <= budget


def test_hung_firmware_is_killed_and_reported(tmp_path, zoo_models):
    from tinyprune.selfcheck import HELLO_SOURCE
    from tinyprune.firmware import build_elf

    board = load_board("mps2-an386")
    hang = build_elf(board, [HELLO_SOURCE], tmp_path, name="hang", defines={"TP_HELLO_HANG": "1"})
    hb = HarnessBuild(hang, 0, 0, [], size_breakdown(hang))
    with pytest.raises(EmulatorError, match="did not finish .* within 2 s and was killed"):
        run_on_qemu(hb, board, np.zeros((1, 4), np.int8), timeout_s=2)


@pytest.mark.parametrize("board_name, boards_dir", [("mps2-an386", None), ("netduinoplus2-usart1", TEST_BOARDS)],
                         ids=["cmsdk-uart", "stm32-usart"])
def test_embedded_harness_prints_host_digest_over_uart(tmp_path, zoo_models, board_name, boards_dir):
    """The Renode/hardware harness (samples compiled in, results over the UART), run on QEMU."""
    from tinyprune.data import load_dataset

    board = load_board(board_name, [boards_dir] if boards_dir else [])
    model = zoo_models["digits-cnn-trained"]
    data = load_dataset("digits")
    x = model_inputs(data.x_test[:12], read_model(model).inputs[0])
    labels = data.y_test[:12]
    hb = build_harness(model, board, tmp_path, embedded=EmbeddedSamples(x, labels))
    run = run_embedded_on_qemu(hb, board)
    host = host_outputs(model, x)
    correct = int((host.argmax(axis=1) == labels).sum())
    assert f"tinyprune outputs digest: 0x{outputs_digest(host):08x}\n" in run.uart
    assert f"tinyprune accuracy: {correct}/12\n" in run.uart
    assert run.uart.endswith("tinyprune done\n")
    assert run.result_line["samples"] == 12


def test_outputs_digest_is_fnv1a():
    assert outputs_digest(np.zeros((0,), np.int8)) == 0x811C9DC5
    assert outputs_digest(np.array([ord("a")], np.uint8)) == 0xE40C292C  # FNV-1a("a")


# ---- Renode files -----------------------------------------------------------------------------

RESC_COMMAND = re.compile(
    r"^(:name: .+|:description: .+|\$\w+\?=.+|using sysbus|mach create \$name|"
    r"machine LoadPlatformDescription @platforms/[\w./-]+\.repl|showAnalyzer sysbus\.\w+|macro reset|"
    r'"""|    sysbus LoadELF \$bin|runMacro \$reset)$'
)


def _robot_sections(text: str) -> dict[str, list[str]]:
    sections, current = {}, None
    for line in text.splitlines():
        m = re.match(r"^\*\*\* (.+) \*\*\*$", line)
        if m:
            current = m.group(1)
            sections[current] = []
        elif line.strip() and current:
            sections[current].append(line)
    return sections


@pytest.mark.parametrize("board_name", ["nucleo-f446re", "nrf52840dk", "rpi-pico", "mps3-an547"])
def test_cli_build_hardware_writes_renode_files_renode_understands(cli, tmp_path, zoo_models, board_name):
    model_path = tmp_path / "m.tflite"
    model_path.write_bytes(zoo_models["digits-cnn-trained"])
    r = cli("build", model_path, "--board", board_name, "--hardware", "--dataset", "digits", "--limit", "5",
            "--out", tmp_path / "fw")
    assert r.code == 0, r.stderr
    out = tmp_path / "fw"
    board = load_board(board_name)
    report = json.loads((out / "build_report.json").read_text())
    assert (out / "firmware.elf").exists() and (out / "firmware-hw.elf").exists()

    resc = (out / f"{board_name}.resc").read_text()
    for line in resc.splitlines():
        assert not line.strip() or RESC_COMMAND.match(line), line
    assert f"machine LoadPlatformDescription @{board.renode_platform}" in resc
    assert f"showAnalyzer {board.renode_uart}" in resc
    assert "$bin?=@firmware-hw.elf" in resc

    robot = _robot_sections((out / f"{board_name}.robot").read_text())
    assert set(robot) == {"Settings", "Variables", "Test Cases"}
    assert "Resource          ${RENODEKEYWORDS}" in robot["Settings"]
    assert f"${{UART}}           {board.renode_uart}" in robot["Variables"]
    assert f"${{RESC}}           @${{CURDIR}}/{board_name}.resc" in robot["Variables"]
    steps = [line.strip() for line in robot["Test Cases"] if line.startswith("    ")]
    keywords = [re.split(r"\s{2,}", s)[0] for s in steps]
    from tinyprune.renode import ROBOT_KEYWORDS

    assert set(keywords) <= set(ROBOT_KEYWORDS)
    assert keywords[:4] == ["Execute Command", "Execute Command", "Create Terminal Tester", "Start Emulation"]
    assert f"tinyprune outputs digest: {report['hardware']['expected_digest']}" in steps[-3]
    # hardware image: linked at the board's own flash address, no semihosting
    hw_map = (out / "firmware-hw.map").read_text()
    assert re.search(r"FLASH\s+0x0*%x\s" % board.flash_origin, hw_map)


def test_cli_verify_digits(cli, tmp_path, zoo_models):
    model_path = tmp_path / "m.tflite"
    model_path.write_bytes(zoo_models["digits-cnn-trained"])
    r = cli("verify", model_path, "--board", "rpi-pico", "--dataset", "digits", "--limit", "100",
            "--json", tmp_path / "v.json", "--keep", tmp_path / "kept")
    assert r.code == 0, r.stderr
    report = json.loads((tmp_path / "v.json").read_text())
    for key in ("elf", "map_file"):  # the kept copies, not the deleted temporary directory's
        assert Path(report[key]).is_file() and Path(report[key]).is_relative_to(tmp_path / "kept"), report[key]
    for key in ("board", "core", "emulator", "samples", "bit_exact", "mismatches", "accuracy", "arena_bytes",
                "tflm_arena_bytes", "flash_bytes", "model_bytes", "runtime_code_bytes", "ram_bytes", "stack_bytes",
                "instructions_per_inference", "macs_per_inference", "init_instructions", "fits"):
        assert key in report
    assert report["bit_exact"] and report["fits"] and report["samples"] == 100
    assert "bit-exact       yes" in r.stdout


def test_cli_verify_optimize_levels_trade_code_for_instructions(cli, tmp_path, zoo_models):
    """--optimize balanced (-Os with the fast convolution kernels) and speed (-O2): bit-exact still,
    each fewer instructions per inference than the one before, for more runtime code."""
    model_path = tmp_path / "m.tflite"
    model_path.write_bytes(zoo_models["ds-cnn"])
    reports = {}
    for optimize in ("size", "balanced", "speed"):
        r = cli("verify", model_path, "--board", "nucleo-f446re", "--random", "2", "--optimize", optimize,
                "--json", tmp_path / f"{optimize}.json")
        assert r.code == 0, r.stderr
        reports[optimize] = json.loads((tmp_path / f"{optimize}.json").read_text())
    size, balanced, speed = reports["size"], reports["balanced"], reports["speed"]
    assert (size["opt_flag"], balanced["opt_flag"], speed["opt_flag"]) == ("-Os", "-Os -DTPR_FAST_KERNELS=1", "-O2")
    assert size["bit_exact"] and balanced["bit_exact"] and speed["bit_exact"]
    assert speed["instructions_per_inference"] < balanced["instructions_per_inference"] < \
        0.8 * size["instructions_per_inference"]
    assert size["runtime_code_bytes"] < balanced["runtime_code_bytes"] < speed["runtime_code_bytes"]
    # the smallest arena at size, the fast one (multipliers kept in it, as the target's tpr_init says) else
    from tinyprune import runtime

    assert not size["multipliers_in_arena"] and size["arena_bytes"] == size["arena_min_bytes"]
    for rep in (balanced, speed):
        assert rep["multipliers_in_arena"] and rep["arena_min_bytes"] == size["arena_bytes"]
        assert rep["arena_bytes"] == runtime.required_arena_bytes(zoo_models["ds-cnn"], fast=True) > rep["arena_min_bytes"]
    assert "compiled        -O2 (--optimize speed)" in r.stdout
    assert "(the fast arena: multipliers computed once" in r.stdout
    r = cli("verify", model_path, "--board", "nucleo-f446re", "--random", "2", "--optimize", "fast")
    assert r.code == 2 and "invalid choice: 'fast'" in r.stderr


@pytest.mark.parametrize("board_name, model_name, optimize", [("nucleo-f446re", "ds-cnn", "speed"),
                                                               ("rpi-pico", "mnist1d-cnn", "size")])
def test_cli_verify_profile_times_every_operator(cli, tmp_path, zoo_models, board_name, model_name, optimize):
    """--profile: one row per operator, in graph order, whose instructions add up to the plain
    build's (the hooks cost a few dozen per operator); the convolutions hold most of them."""
    model = zoo_models[model_name]
    model_path = tmp_path / "m.tflite"
    model_path.write_bytes(model)
    r = cli("verify", model_path, "--board", board_name, "--random", "3", "--optimize", optimize, "--profile",
            "--json", tmp_path / "v.json")
    assert r.code == 0, r.stderr
    report = json.loads((tmp_path / "v.json").read_text())
    info = read_model(model)
    rows = report["profile"]
    assert [(row["index"], row["op"], row["macs"]) for row in rows] == [(op.index, op.name, op.macs)
                                                                       for op in info.operators]
    total = sum(row["instructions"] for row in rows)
    assert abs(total - report["instructions_per_inference"]) < 0.01 * report["instructions_per_inference"]
    assert abs(sum(row["share"] for row in rows) - 1) < 1e-3 and all(row["instructions"] > 0 for row in rows)
    macs_share = sum(row["share"] for row in rows if row["macs"])
    assert macs_share > 0.6, rows
    for row in rows:
        assert (row["instructions_per_mac"] is None) == (row["macs"] == 0)
    assert report["bit_exact"]
    assert "Per operator (profiling build" in r.stdout and "CONV_2D" in r.stdout
    r = cli("verify", model_path, "--board", board_name, "--random", "3", "--profile", "--emulator", "renode")
    assert r.code == 2 and "--profile" in r.stderr and "Traceback" not in r.stderr


def test_function_profile_counts_the_same_instructions_as_systick(tmp_path, zoo_models):
    """bench/profile_functions.py (QEMU's block log, tpr_init subtracted) against SysTick around
    tpr_invoke: the same inference, to within the harness's few instructions around the call."""
    import sys

    sys.path.insert(0, str(TESTS_DIR.parent / "bench"))
    from bench_kernels import bench_board
    from profile_functions import profile

    model = zoo_models["mnist1d-cnn"]
    by_function = profile(model, "cortex-m4", "-O2")
    x = random_inputs(read_model(model).inputs[0], 1, seed=1)
    r = verify_model(model, bench_board("cortex-m4"), x, None, tmp_path, opt="-O2")
    assert abs(sum(by_function.values()) - r.instructions_per_inference) < 0.001 * r.instructions_per_inference + 200
    assert "tpr_invoke" in by_function and by_function.most_common(1)[0][1] > 0.1 * r.instructions_per_inference
    assert "init" not in by_function  # tpr_init ran in both runs and dropped out


def test_cli_verify_bad_inputs(cli, tmp_path):
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"not a model at all")
    r = cli("verify", bad, "--board", "nucleo-f446re", "--random", "3")
    assert r.code == 2 and "not a TFLite model" in r.stderr and "Traceback" not in r.stderr
    r = cli("verify", tmp_path / "missing.tflite", "--board", "nucleo-f446re")
    assert r.code == 2 and "does not exist" in r.stderr
    r = cli("verify", bad, "--board", "nucleo-f44re")
    assert r.code == 2 and "nucleo-f446re" in r.stderr


def test_cli_verify_renode_missing_says_how_to_install(cli, tmp_path, zoo_models):
    from tinyprune.renode import renode_available

    if renode_available():
        pytest.skip("renode-test is installed here")
    model_path = tmp_path / "m.tflite"
    model_path.write_bytes(zoo_models["digits-cnn"])
    r = cli("verify", model_path, "--board", "nucleo-f446re", "--random", "3", "--emulator", "renode")
    assert r.code == 2
    assert "renode" in r.stderr and "https://renode.io" in r.stderr
