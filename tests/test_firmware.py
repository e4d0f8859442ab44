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
