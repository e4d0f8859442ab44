"""Board files: every shipped board validates; broken files are rejected naming the field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tinyprune.boards import CORES, list_boards, load_board, load_board_file
from tinyprune.emulators import qemu_machine, runs_core
from tinyprune.errors import BoardError
from tinyprune.paths import BOARDS_DIR

REQUIRED_BOARDS = [
    "nucleo-f446re", "nucleo-l4r5zi", "stm32f746g-disco", "nucleo-h743zi", "nrf52840dk",
    "arduino-nano-33-ble", "rpi-pico", "stm32vldiscovery", "microbit-v1", "mps2-an386",
    "mps2-an505", "mps3-an547",
]
SIX_CORES = {"cortex-m0plus", "cortex-m3", "cortex-m4", "cortex-m7", "cortex-m33", "cortex-m55"}


@pytest.mark.parametrize("path", sorted(BOARDS_DIR.glob("*.toml")), ids=lambda p: p.stem)
def test_every_board_file_validates(path):
    board = load_board_file(path)
    assert board.name == path.stem
    assert board.core in CORES
    assert 0 < board.budget_flash_bytes < board.flash_bytes
    assert 0 < board.budget_ram_bytes < board.ram_bytes
    machine = qemu_machine(board.qemu_machine)
    assert machine is not None and runs_core(machine, board.core)
    assert board.url.startswith("https://")


def test_required_boards_present_and_cover_six_cores():
    boards = {b.name: b for b in list_boards()}
    assert set(REQUIRED_BOARDS) <= set(boards)
    assert SIX_CORES <= {b.core for b in boards.values()}


def test_datasheet_numbers_spot_check():
    f446 = load_board("nucleo-f446re")
    assert (f446.flash_bytes, f446.ram_bytes, f446.clock_hz) == (512 * 1024, 128 * 1024, 180_000_000)
    pico = load_board("rpi-pico")
    assert (pico.core, pico.ram_bytes, pico.flash_origin) == ("cortex-m0plus", 264 * 1024, 0x10000000)
    vl = load_board("stm32vldiscovery")
    assert (vl.flash_bytes, vl.ram_bytes) == (128 * 1024, 8 * 1024)


GOOD = (BOARDS_DIR / "nucleo-f446re.toml").read_text()


def _write_board(tmp_path: Path, text: str, name: str = "nucleo-f446re") -> Path:
    d = tmp_path / "boards"
    d.mkdir(exist_ok=True)
    path = d / f"{name}.toml"
    path.write_text(text)
    return path


def _replace_line(text: str, key: str, new_line: str | None) -> str:
    lines = [l for l in text.splitlines() if not l.startswith(f"{key} =")] if new_line is None else [
        new_line if l.startswith(f"{key} =") else l for l in text.splitlines()
    ]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    "key, new_line, expect",
    [
        ("core", None, "field 'core' is missing"),
        ("mcu", None, "field 'mcu' is missing"),
        ("core", 'core = "cortex-m5"', "field 'core': expected one of cortex-m0"),
        ("flash_bytes", "flash_bytes = -4096", "field 'flash_bytes': expected a positive size"),
        ("ram_bytes", 'ram_bytes = "lots"', "field 'ram_bytes'"),
        ("fpu", 'fpu = "fpv5-d16"', "field 'fpu': expected one of none, fpv4-sp-d16 for a cortex-m4"),
        ("qemu_machine", 'qemu_machine = "mps2-an999"', "field 'qemu_machine'"),
        ("qemu_machine", 'qemu_machine = "microbit"', "a machine that executes cortex-m4 code"),
        ("reserved_ram_bytes", 'reserved_ram_bytes = "256KiB"', "field 'reserved_ram_bytes': expected less than ram_bytes"),
        ("clock_hz", "clock_hz = 0", "field 'clock_hz': expected a positive integer"),
        ("url", 'url = "www.st.com"', "field 'url'"),
        ("name", 'name = "other"', "field 'name'"),
    ],
)
def test_broken_board_rejected_naming_field(tmp_path, key, new_line, expect):
    path = _write_board(tmp_path, _replace_line(GOOD, key, new_line))
    with pytest.raises(BoardError) as exc:
        load_board_file(path)
    assert str(path) in exc.value.message
    assert expect in exc.value.message


def test_unknown_field_suggests_the_right_one(tmp_path):
    path = _write_board(tmp_path, GOOD + 'flash_byte = 1\n')
    with pytest.raises(BoardError, match="unknown field 'flash_byte' \\(did you mean 'flash_bytes'\\?\\)"):
        load_board_file(path)


def test_invalid_toml(tmp_path):
    path = _write_board(tmp_path, GOOD + "this is = = not toml\n")
    with pytest.raises(BoardError, match="not valid TOML"):
        load_board_file(path)


def test_defaults_for_reserved_bytes_are_marked(tmp_path):
    text = _replace_line(_replace_line(GOOD, "reserved_flash_bytes", None), "reserved_ram_bytes", None)
    board = load_board_file(_write_board(tmp_path, text))
    assert board.reserved_flash_bytes == 64 * 1024  # min(64 KiB, 512 KiB / 4)
    assert board.reserved_ram_bytes == 16 * 1024  # min(16 KiB, 128 KiB / 4)
    assert set(board.defaulted) == {"reserved_flash_bytes", "reserved_ram_bytes"}


def test_user_boards_dir_shadows_and_extends(tmp_path, monkeypatch):
    text = GOOD.replace('name = "nucleo-f446re"', 'name = "my-board"')
    _write_board(tmp_path, text, name="my-board")
    assert load_board("my-board", [tmp_path / "boards"]).mcu == "STM32F446RE"
    monkeypatch.setenv("TINYPRUNE_BOARDS", str(tmp_path / "boards"))
    assert "my-board" in {b.name for b in list_boards()}


def test_unknown_board_lists_close_matches():
    with pytest.raises(BoardError) as exc:
        load_board("nucleo-f44re")
    assert "unknown board 'nucleo-f44re'" in exc.value.message
    assert "nucleo-f446re" in exc.value.message
    assert "tinyprune boards" in exc.value.hint


# ---- through the CLI: exit codes, messages, no tracebacks ----------------------------------

def test_cli_boards_json_lists_all_cores(cli):
    r = cli("boards", "--json")
    assert r.code == 0, r.stderr
    boards = json.loads(r.stdout)
    assert len(boards) >= 12
    for b in boards:
        assert {"name", "mcu", "core", "flash_bytes", "ram_bytes", "clock_hz", "qemu_machine", "renode_platform"} <= set(b)
    assert SIX_CORES <= {b["core"] for b in boards}


def test_cli_boards_table_and_one_board(cli):
    r = cli("boards")
    assert r.code == 0
    assert "nucleo-f446re" in r.stdout and "cortex-m55" in r.stdout
    r = cli("boards", "rpi-pico", "--json")
    assert r.code == 0
    assert json.loads(r.stdout)["ram_bytes"] == 264 * 1024
    r = cli("boards", "rpi-pico")
    assert "RP2040" in r.stdout and "budget ram" in r.stdout


def test_cli_unknown_board_exit_2(cli):
    r = cli("boards", "nucleo-f44re")
    assert r.code == 2
    assert "nucleo-f446re" in r.stderr and "tinyprune boards" in r.stderr
    assert "Traceback" not in r.stderr


def test_cli_malformed_board_file_exit_2(cli, tmp_path):
    _write_board(tmp_path, _replace_line(GOOD, "core", 'core = "cortex-m5"'))
    r = cli("boards", "--boards-dir", tmp_path / "boards")
    assert r.code == 2
    assert "nucleo-f446re.toml" in r.stderr and "'core'" in r.stderr and "cortex-m4" in r.stderr
    assert "Traceback" not in r.stderr


def test_cli_missing_boards_dir_exit_2(cli, tmp_path):
    r = cli("boards", "--boards-dir", tmp_path / "nope")
    assert r.code == 2 and "does not exist" in r.stderr


def test_cli_help_lists_every_subcommand(cli):
    r = cli("--help")
    assert r.code == 0
    for name in ("boards", "train", "prune", "convert", "arrays", "inspect", "build", "verify", "deploy", "sweep"):
        assert f"    {name}" in r.stdout


def test_unavailable_subcommand_exits_non_zero():
    from tinyprune.cli import COMMANDS, _command_module, main

    missing = [name for name in COMMANDS if _command_module(name) is None]
    for name in missing:
        assert main([name]) != 0
