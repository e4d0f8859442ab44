"""Boards as data: ``boards/<name>.toml`` files, validated into frozen ``Board`` objects.

No board knowledge lives in code. This module only knows the *schema*: which fields a board
file has, what values they may take, and the few defaults that follow from the core.
Lookup order for board files: ``--boards-dir`` directories, then ``$TINYPRUNE_BOARDS``
(``os.pathsep``-separated), then the project's own ``boards/``. The first file named
``<name>.toml`` wins, so a user can shadow a built-in board.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

from tinyprune import emulators
from tinyprune.errors import BadInput, BoardError
from tinyprune.paths import BOARDS_DIR
from tinyprune.sizes import parse_size

CORES = ("cortex-m0", "cortex-m0plus", "cortex-m3", "cortex-m4", "cortex-m7", "cortex-m33", "cortex-m55")

# FPUs each core can carry (gcc -mfpu names); "none" means soft float.
CORE_FPUS = {
    "cortex-m0": ("none",),
    "cortex-m0plus": ("none",),
    "cortex-m3": ("none",),
    "cortex-m4": ("none", "fpv4-sp-d16"),
    "cortex-m7": ("none", "fpv5-sp-d16", "fpv5-d16"),
    "cortex-m33": ("none", "fpv5-sp-d16"),
    "cortex-m55": ("none", "fpv5-d16"),
}

# Whether the core has the DSP (SIMD32: SMLAD, SXTB16) extension when a board file does not
# say: always on M4/M7/M55, absent on M0/M0+/M3, optional on M33 but present on the parts we ship.
CORE_DSP_DEFAULT = {
    "cortex-m0": False,
    "cortex-m0plus": False,
    "cortex-m3": False,
    "cortex-m4": True,
    "cortex-m7": True,
    "cortex-m33": True,
    "cortex-m55": True,
}

UART_KINDS = ("stm32-usart-v1", "stm32-usart-v2", "nrf-uart", "nrf-uarte", "pl011", "cmsdk")

# Room for the user's application when a board file does not state it: a quarter of the part,
# capped at 64 KiB of flash and 16 KiB of RAM (an RTOS, drivers and a protocol stack).
DEFAULT_RESERVED_FLASH_CAP = 64 * 1024
DEFAULT_RESERVED_RAM_CAP = 16 * 1024


@dataclass(frozen=True)
class Board:
    name: str
    vendor: str
    mcu: str
    core: str
    fpu: str
    dsp: bool
    clock_hz: int
    flash_bytes: int
    flash_origin: int
    ram_bytes: int
    ram_origin: int
    reserved_flash_bytes: int
    reserved_ram_bytes: int
    qemu_machine: str
    renode_platform: str
    renode_uart: str
    uart_kind: str
    uart_base: int
    url: str
    notes: str = ""
    source: str = ""  # the file this board was read from
    defaulted: tuple[str, ...] = ()  # fields the file left out and the schema filled in

    @property
    def budget_flash_bytes(self) -> int:
        """Flash left for model + runtime once the user's application has its share."""
        return self.flash_bytes - self.reserved_flash_bytes

    @property
    def budget_ram_bytes(self) -> int:
        return self.ram_bytes - self.reserved_ram_bytes

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["defaulted"] = list(self.defaulted)
        d["budget_flash_bytes"] = self.budget_flash_bytes
        d["budget_ram_bytes"] = self.budget_ram_bytes
        return d


# ---- field checks ---------------------------------------------------------------------------

def _text(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError("a non-empty string")
    return value.strip()


def _choice(options: Iterable[str]) -> Callable[[Any], str]:
    options = tuple(options)

    def check(value: Any) -> str:
        if value not in options:
            raise ValueError("one of " + ", ".join(options))
        return value

    return check


def _positive_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError("a positive integer")
    return value


def _address(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**32:
        raise ValueError("a 32-bit address such as 0x08000000")
    return value


def _size(allow_zero: bool) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        try:
            return parse_size(value, allow_zero=allow_zero)
        except BadInput:
            raise ValueError(
                f"a {'non-negative' if allow_zero else 'positive'} size in bytes (65536, \"64KiB\", \"1MiB\")"
            ) from None

    return check


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError("true or false")
    return value


def _url(value: Any) -> str:
    value = _text(value)
    if not value.startswith(("https://", "http://")):
        raise ValueError("an http(s) URL")
    return value


_FIELDS: dict[str, tuple[Callable[[Any], Any], bool]] = {
    # name: (check, required)
    "name": (_text, True),
    "vendor": (_text, True),
    "mcu": (_text, True),
    "core": (_choice(CORES), True),
    "fpu": (_text, True),  # checked against the core below
    "dsp": (_bool, False),
    "clock_hz": (_positive_int, True),
    "flash_bytes": (_size(False), True),
    "flash_origin": (_address, True),
    "ram_bytes": (_size(False), True),
    "ram_origin": (_address, True),
    "reserved_flash_bytes": (_size(True), False),
    "reserved_ram_bytes": (_size(True), False),
    "qemu_machine": (_text, True),
    "renode_platform": (_text, True),
    "renode_uart": (_text, True),
    "uart_kind": (_choice(UART_KINDS), True),
    "uart_base": (_address, True),
    "url": (_url, True),
    "notes": (_text, False),
}


def _field_error(path: Path, field: str, expected: str, value: Any) -> BoardError:
    return BoardError(
        f"{path}: field '{field}': expected {expected}, got {value!r}",
        hint="fix the board file; `tinyprune boards nucleo-f446re` shows a complete example",
    )


def parse_board(path: Path, raw: dict[str, Any]) -> Board:
    """Validate one board file's table and return the Board, or raise BoardError."""
    unknown = sorted(set(raw) - set(_FIELDS))
    if unknown:
        near = difflib.get_close_matches(unknown[0], list(_FIELDS), n=1)
        suggestion = f" (did you mean '{near[0]}'?)" if near else ""
        raise BoardError(
            f"{path}: unknown field '{unknown[0]}'{suggestion}",
            hint="known fields: " + ", ".join(_FIELDS),
        )
    values: dict[str, Any] = {}
    for field, (check, required) in _FIELDS.items():
        if field not in raw:
            if required:
                raise BoardError(
                    f"{path}: field '{field}' is missing: expected {_describe(check)}",
                    hint="add it to the board file; `tinyprune boards nucleo-f446re` shows a complete example",
                )
            continue
        try:
            values[field] = check(raw[field])
        except ValueError as exc:
            raise _field_error(path, field, str(exc), raw[field]) from None

    if values["name"] != path.stem:
        raise _field_error(path, "name", f"the file's name without .toml ('{path.stem}')", values["name"])
    core = values["core"]
    if values["fpu"] not in CORE_FPUS[core]:
        raise _field_error(path, "fpu", f"one of {', '.join(CORE_FPUS[core])} for a {core}", values["fpu"])

    defaulted = []
    if "dsp" not in values:
        values["dsp"] = CORE_DSP_DEFAULT[core]
        defaulted.append("dsp")
    elif values["dsp"] and not CORE_DSP_DEFAULT[core] and core != "cortex-m33":
        raise _field_error(path, "dsp", f"false: a {core} has no DSP extension", values["dsp"])
    if "reserved_flash_bytes" not in values:
        values["reserved_flash_bytes"] = min(DEFAULT_RESERVED_FLASH_CAP, values["flash_bytes"] // 4)
        defaulted.append("reserved_flash_bytes")
    if "reserved_ram_bytes" not in values:
        values["reserved_ram_bytes"] = min(DEFAULT_RESERVED_RAM_CAP, values["ram_bytes"] // 4)
        defaulted.append("reserved_ram_bytes")
    for what in ("flash", "ram"):
        if values[f"reserved_{what}_bytes"] >= values[f"{what}_bytes"]:
            raise _field_error(
                path, f"reserved_{what}_bytes", f"less than {what}_bytes ({values[f'{what}_bytes']})",
                values[f"reserved_{what}_bytes"],
            )

    machine = emulators.qemu_machine(values["qemu_machine"])
    if machine is None:
        raise _field_error(
            path, "qemu_machine", "one of " + ", ".join(emulators.qemu_machine_names()), values["qemu_machine"]
        )
    if not emulators.runs_core(machine, core):
        raise _field_error(
            path, "qemu_machine", f"a machine that executes {core} code ({machine.name} is a {machine.core})",
            values["qemu_machine"],
        )

    return Board(**values, source=str(path), defaulted=tuple(defaulted))


def _describe(check: Callable[[Any], Any]) -> str:
    try:
        check(object())
    except ValueError as exc:
        return str(exc)
    return "a value"  # pragma: no cover - every check rejects object()


def load_board_file(path: Path) -> Board:
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise BoardError(f"{path}: not valid TOML: {exc}", hint="check the file's syntax") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BoardError(f"{path}: cannot read the board file: {exc}") from None
    return parse_board(path, raw)


def board_dirs(extra: Iterable[str | Path] = ()) -> list[Path]:
    """Directories searched for board files, highest priority first."""
    dirs = [Path(d) for d in extra]
    env = os.environ.get("TINYPRUNE_BOARDS", "")
    dirs += [Path(d) for d in env.split(os.pathsep) if d]
    dirs.append(BOARDS_DIR)
    for d in dirs[:-1]:
        if not d.is_dir():
            raise BoardError(f"boards directory {d} does not exist", hint="pass an existing directory to --boards-dir")
    return dirs


def _board_files(dirs: list[Path]) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for d in dirs:
        for path in sorted(d.glob("*.toml")):
            found.setdefault(path.stem, path)
    return found


def list_boards(extra_dirs: Iterable[str | Path] = ()) -> list[Board]:
    """Every board, validated, sorted by name. One bad file stops the listing with its error."""
    files = _board_files(board_dirs(extra_dirs))
    return [load_board_file(files[name]) for name in sorted(files)]


def load_board(name: str, extra_dirs: Iterable[str | Path] = ()) -> Board:
    files = _board_files(board_dirs(extra_dirs))
    if name not in files:
        close = difflib.get_close_matches(name, list(files), n=3, cutoff=0.5)
        did_you_mean = f"; did you mean {', '.join(close)}?" if close else ""
        raise BoardError(
            f"unknown board '{name}'{did_you_mean}",
            hint="run `tinyprune boards` to list the boards, or add a file with --boards-dir",
        )
    return load_board_file(files[name])
