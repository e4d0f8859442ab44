"""The real cross compiler and the real emulator, driven the way every later stage drives them."""

from __future__ import annotations

import pytest

from tinyprune.boards import list_boards, load_board
from tinyprune.errors import FirmwareTooBig
from tinyprune.firmware import emulation_layout, render_linker_script
from tinyprune.selfcheck import build_hello, run_hello

pytestmark = [pytest.mark.compile, pytest.mark.emulate]

ONE_BOARD_PER_CORE = sorted({b.core: b.name for b in list_boards()}.values())


def test_linker_script_carries_the_board_budget():
    board = load_board("nucleo-f446re")
    script = render_linker_script(emulation_layout(board))
    assert f"LENGTH = {512 * 1024 - 64 * 1024}" in script  # flash budget
    assert f"LENGTH = {128 * 1024 - 16 * 1024}" in script  # RAM budget
    assert "@" not in script


@pytest.mark.parametrize("name", ONE_BOARD_PER_CORE)
def test_hello_runs_under_qemu_and_prints(name):
    board = load_board(name)
    result = run_hello(board)
    assert result.exit_code == 0
    assert result.line == f"hello from tinyprune on {name} ({board.core})"
    assert 0 < result.stack_used_bytes < 4096
    assert 0 < result.flash_bytes < 4096


def test_too_big_for_flash_fails_to_link(tmp_path):
    board = load_board("nucleo-f446re")  # 448 KiB flash budget
    with pytest.raises(FirmwareTooBig) as exc:
        build_hello(board, tmp_path, pad_bytes=600_000)
    assert exc.value.region == "FLASH"
    assert 600_000 - board.budget_flash_bytes < exc.value.overflow_bytes < 600_000 - board.budget_flash_bytes + 4096
    assert "does not fit nucleo-f446re" in exc.value.message
    assert "flash overflows by" in exc.value.message


def test_just_fits_links(tmp_path):
    board = load_board("stm32vldiscovery")  # 112 KiB flash budget
    build = build_hello(board, tmp_path, pad_bytes=100_000)
    assert build.flash_bytes > 100_000
    assert build.flash_bytes <= board.budget_flash_bytes


def test_cli_doctor(cli):
    r = cli("doctor", "--board", "rpi-pico", "--board", "mps3-an547")
    assert r.code == 0, r.stderr
    assert "all 2 checks passed" in r.stdout


MACHINE_BOARDS = sorted({b.qemu_machine: b.name for b in list_boards()}.values())


@pytest.mark.parametrize("name", MACHINE_BOARDS)
def test_instruction_counter_matches_a_loop_of_known_length(name):
    """ticks x (1e9 / systick_hz) must equal the 2*n instructions of the calibration loop."""
    from tinyprune import emulators
    from tinyprune.selfcheck import calibrate_instruction_counter

    board = load_board(name)
    per_tick = emulators.qemu_machine(board.qemu_machine).instructions_per_tick
    # A 16-bit reload makes the longest loop wrap the counter several times, exercising the
    # wrap count; each wrap's exception adds a dozen instructions.
    results = calibrate_instruction_counter(board, reload=0xFFFF)
    assert [n for n, _, _ in results] == [0, 1000, 100_000, 10_000_000]
    assert results[-1][1] > 3 * 0x10000
    for n, ticks, measured in results:
        # timer reads and the call add a few instructions; a tick quantises to per_tick
        assert abs(measured - 2 * n) <= 2 * per_tick + 32 + 1e-5 * n, (n, ticks, measured)


@pytest.mark.parametrize(
    "name, boards_dir",
    [("mps2-an386", None), ("netduinoplus2-usart1", "tests/data/boards"), ("microbit-v1", None)],
    ids=["cmsdk", "stm32-usart-v1", "nrf-uart"],
)
def test_uart_console_under_qemu(tmp_path, name, boards_dir):
    from pathlib import Path

    from tinyprune.qemu import run_elf

    dirs = [Path(__file__).resolve().parents[1] / boards_dir] if boards_dir else []
    board = load_board(name, dirs)
    build = build_hello(board, tmp_path, uart=True)
    run = run_elf(build.elf, board.qemu_machine, capture_uart=True, timeout_s=20)
    assert run.exit_code == 0
    assert run.uart == f"hello over the UART from tinyprune on {name}\n"


def test_firmware_fingerprint_follows_the_runtime_sources(tmp_path, monkeypatch):
    """The deploy cache's verify key includes firmware_fingerprint(): an edited runtime source
    changes it, so a stale verification is never reused."""
    import shutil

    from tinyprune import firmware

    fw = tmp_path / "firmware"
    for d in ("common", "harness", "runtime"):
        shutil.copytree(firmware.FIRMWARE_DIR / d, fw / d)
    monkeypatch.setattr(firmware, "FIRMWARE_DIR", fw)
    firmware.firmware_fingerprint.cache_clear()
    try:
        before = firmware.firmware_fingerprint()
        firmware.firmware_fingerprint.cache_clear()
        assert firmware.firmware_fingerprint() == before  # deterministic
        planner = fw / "runtime" / "tpr_planner.c"
        planner.write_text(planner.read_text() + "/* edited */\n")
        firmware.firmware_fingerprint.cache_clear()
        assert firmware.firmware_fingerprint() != before
    finally:
        firmware.firmware_fingerprint.cache_clear()
