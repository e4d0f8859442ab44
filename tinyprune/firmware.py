"""Build firmware for a board: generated linker script + startup code + sources -> ELF and map.

"It links" means "it fits": the linker script's regions are the board's flash and RAM budget,
placed at the emulated machine's addresses when the image is built for an emulator. The
linker's region-overflow message becomes a ``FirmwareTooBig`` error that says by how much.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from tinyprune import emulators
from tinyprune.boards import Board
from tinyprune.errors import BadInput, CheckFailed, FirmwareTooBig
from tinyprune.paths import FIRMWARE_DIR
from tinyprune.sizes import format_size
from tinyprune.toolchain import CrossTools, section_sizes, target_flags

COMMON_DIR = FIRMWARE_DIR / "common"
COMMON_SOURCES = (COMMON_DIR / "startup.c", COMMON_DIR / "semihost.c")
DEFAULT_STACK_BYTES = 4096
WARNINGS = ("-Wall", "-Wextra", "-Werror")


@dataclass(frozen=True)
class MemoryLayout:
    """Where the image goes and how much room it has."""

    flash_origin: int
    flash_bytes: int
    ram_origin: int
    ram_bytes: int
    stack_bytes: int = DEFAULT_STACK_BYTES
    note: str = ""  # why a region is smaller than the board's budget, if it is


def emulation_layout(board: Board, stack_bytes: int = DEFAULT_STACK_BYTES, use_budget: bool = True) -> MemoryLayout:
    """The board's budget at its QEMU machine's addresses (regions never larger than the board's)."""
    machine = emulators.qemu_machine(board.qemu_machine)
    assert machine is not None  # boards.parse_board checked it
    flash = board.budget_flash_bytes if use_budget else board.flash_bytes
    ram = board.budget_ram_bytes if use_budget else board.ram_bytes
    note = ""
    if flash > machine.code_bytes or ram > machine.ram_bytes:
        note = (
            f"QEMU's {machine.name} has {format_size(machine.code_bytes)} code and "
            f"{format_size(machine.ram_bytes)} RAM; the image is limited to that"
        )
    return MemoryLayout(
        flash_origin=machine.code_origin,
        flash_bytes=min(flash, machine.code_bytes),
        ram_origin=machine.ram_origin,
        ram_bytes=min(ram, machine.ram_bytes),
        stack_bytes=stack_bytes,
        note=note,
    )


def board_layout(board: Board, stack_bytes: int = DEFAULT_STACK_BYTES) -> MemoryLayout:
    """The board's budget at the board's own addresses: for real hardware and Renode."""
    return MemoryLayout(
        flash_origin=board.flash_origin,
        flash_bytes=board.budget_flash_bytes,
        ram_origin=board.ram_origin,
        ram_bytes=board.budget_ram_bytes,
        stack_bytes=stack_bytes,
    )


def uart_defines(board: Board) -> dict[str, str]:
    """Preprocessor definitions that select ``firmware/common/uart.c``'s driver for the board."""
    kind = "TP_UART_" + board.uart_kind.upper().replace("-", "_")
    return {"TP_UART_KIND": kind, "TP_UART_BASE": f"0x{board.uart_base:08x}u"}


def render_linker_script(layout: MemoryLayout) -> str:
    template = (COMMON_DIR / "linker.ld.in").read_text(encoding="utf-8")
    values = {
        "FLASH_ORIGIN": f"0x{layout.flash_origin:08x}",
        "FLASH_BYTES": str(layout.flash_bytes),
        "RAM_ORIGIN": f"0x{layout.ram_origin:08x}",
        "RAM_BYTES": str(layout.ram_bytes),
        "STACK_BYTES": str(layout.stack_bytes),
    }
    for key, value in values.items():
        template = template.replace(f"@{key}@", value)
    return template


@dataclass
class BuildResult:
    elf: Path
    map_file: Path
    linker_script: Path
    layout: MemoryLayout
    sections: dict[str, int] = field(default_factory=dict)

    @property
    def flash_bytes(self) -> int:
        """Bytes the image occupies in flash: code, constants and .data's initial values."""
        return sum(self.sections.get(s, 0) for s in (".text", ".ARM.exidx", ".data"))

    @property
    def static_ram_bytes(self) -> int:
        """.data + .bss (arena included when it is a static buffer), without the stack."""
        return self.sections.get(".data", 0) + self.sections.get(".bss", 0)

    @property
    def ram_bytes(self) -> int:
        return self.static_ram_bytes + self.sections.get(".stack", 0)


_OVERFLOW_RE = re.compile(r"region [`'](\w+)' overflowed by (\d+) bytes")


def build_elf(
    board: Board,
    sources: list[Path],
    out_dir: Path,
    *,
    name: str = "firmware",
    include_dirs: list[Path] = (),
    defines: dict[str, str] | None = None,
    layout: MemoryLayout | None = None,
    opt: str = "-Os",
    extra_cflags: list[str] = (),
) -> BuildResult:
    """Compile ``sources`` (one object each, so the map file can attribute every byte) with the
    startup code for ``board``, and link them; raise FirmwareTooBig if the image does not fit."""
    tools = CrossTools.find()
    layout = layout or emulation_layout(board)
    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    obj_dir = out_dir / f"{name}.obj"
    obj_dir.mkdir(exist_ok=True)
    linker_script = out_dir / f"{name}.ld"
    linker_script.write_text(render_linker_script(layout), encoding="utf-8")
    elf = out_dir / f"{name}.elf"
    map_file = out_dir / f"{name}.map"
    all_sources = [Path(s) for s in (*COMMON_SOURCES, *sources)]
    for src in all_sources:
        if not src.is_file():
            raise BadInput(f"firmware source {src} does not exist")
    # Compiled and linked from out_dir with relative paths, and the project's sources mapped to a
    # fixed name in the debug info: the ELF and the map file are the same for the same inputs
    # wherever the build ran.
    cflags = [
        *target_flags(board),
        *opt.split(),  # a level and possibly -D settings (--optimize balanced)
        "-g",
        f"-ffile-prefix-map={out_dir}=.",
        f"-ffile-prefix-map={FIRMWARE_DIR.resolve()}=tinyprune/firmware",
        "-std=c99",
        *WARNINGS,
        "-ffunction-sections",
        "-fdata-sections",
        f"-I{COMMON_DIR}",
        *(f"-I{Path(d).resolve()}" for d in include_dirs),
        *(f"-D{k}={v}" for k, v in (defines or {}).items()),
        *extra_cflags,
    ]
    objects = [obj_dir / name for name in _object_names(all_sources)]

    def compile_one(pair: tuple[Path, Path]) -> subprocess.CompletedProcess:
        src, obj = pair
        return subprocess.run([tools.gcc, *cflags, "-c", _relative(src.resolve(), out_dir), "-o",
                               _relative(obj, out_dir)], capture_output=True, text=True, cwd=out_dir)

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        for proc in pool.map(compile_one, zip(all_sources, objects)):
            if proc.returncode != 0:
                raise _build_error(board, layout, proc.stderr)
    link = [
        tools.gcc,
        *target_flags(board),
        "-nostartfiles",
        "--specs=nano.specs",
        "--specs=nosys.specs",
        *(_relative(o, out_dir) for o in objects),
        f"-T{_relative(linker_script, out_dir)}",
        "-Wl,--gc-sections",
        f"-Wl,-Map={_relative(map_file, out_dir)}",
        "-o",
        _relative(elf, out_dir),
    ]
    proc = subprocess.run(link, capture_output=True, text=True, cwd=out_dir)
    if proc.returncode != 0:
        raise _build_error(board, layout, proc.stderr)
    return BuildResult(elf=elf, map_file=map_file, linker_script=linker_script, layout=layout, sections=section_sizes(elf))


# --optimize: the compiler's level for a firmware build, with the runtime's settings that go with it
# (the runtime's files whose speed shows in no figure are compiled for size at any level, see
# firmware/runtime/tpr_config.h)
OPTIMIZE_FLAGS = {"size": "-Os", "balanced": "-Os -DTPR_FAST_KERNELS=1", "speed": "-O2"}


@functools.lru_cache(maxsize=1)
def firmware_fingerprint() -> str:
    """A hash of everything a firmware build reads besides its inputs: the runtime, harness and
    startup sources under firmware/ and the cross-compiler's version. Part of the deploy stage
    cache's verify key, so that a changed runtime (an upgrade, a local edit) is built again."""
    h = hashlib.sha256()
    for path in sorted(p for d in ("common", "harness", "runtime") for p in (FIRMWARE_DIR / d).rglob("*")
                       if p.is_file() and p.suffix in (".c", ".h", ".in", ".ld", ".S", ".s")):
        h.update(str(path.relative_to(FIRMWARE_DIR)).encode() + b"\0" + path.read_bytes() + b"\0")
    proc = subprocess.run([CrossTools.find().gcc, "--version"], capture_output=True, text=True)
    h.update(proc.stdout.encode())
    return h.hexdigest()[:16]


def _relative(path: Path, base: Path) -> str:
    """``path`` relative to ``base`` when it lies below it, else as it is."""
    try:
        return str(Path(path).relative_to(base))
    except ValueError:
        return str(path)


def _object_names(sources: list[Path]) -> list[str]:
    """``dir_file.o`` names, unique even when two sources share a file name."""
    names = []
    for src in sources:
        base = f"{src.parent.name}_{src.stem}"
        candidate, i = f"{base}.o", 1
        while candidate in names:
            i += 1
            candidate = f"{base}_{i}.o"
        names.append(candidate)
    return names


def _build_error(board: Board, layout: MemoryLayout, stderr: str) -> CheckFailed:
    overflows = {region: int(n) for region, n in _OVERFLOW_RE.findall(stderr)}
    if overflows:
        budgets = {"FLASH": ("flash", layout.flash_bytes), "RAM": ("RAM", layout.ram_bytes)}
        parts = [
            f"{budgets[r][0]} overflows by {n} bytes (budget {budgets[r][1]} bytes = {format_size(budgets[r][1])})"
            for r, n in overflows.items()
        ]
        region, over = max(overflows.items(), key=lambda kv: kv[1])
        return FirmwareTooBig(
            f"the firmware does not fit {board.name}: " + "; ".join(parts),
            region=region,
            overflow_bytes=over,
            hint="prune the model further (tinyprune prune), pick a larger board, "
            "or lower the board's reserved_*_bytes if your application needs less",
        )
    tail = "\n".join(stderr.strip().splitlines()[-20:])
    return CheckFailed(f"the firmware build for {board.name} failed:\n{tail}")
