"""The Arm cross toolchain: where it is and which flags each core needs.

Flags come from the board's core, FPU and DSP fields; nothing here names a board.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tinyprune.boards import Board
from tinyprune.errors import ToolMissing

INSTALL_HINT = (
    "run `make setup` (as root it installs them), or: "
    "sudo apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm"
)


def find_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise ToolMissing(f"{name} is not installed or not on PATH", hint=INSTALL_HINT)
    return path


@dataclass(frozen=True)
class CrossTools:
    gcc: str
    size: str

    @classmethod
    def find(cls) -> "CrossTools":
        return cls(gcc=find_tool("arm-none-eabi-gcc"), size=find_tool("arm-none-eabi-size"))

    def version(self) -> str:
        out = subprocess.run([self.gcc, "--version"], capture_output=True, text=True, check=True).stdout
        return out.splitlines()[0]


def target_flags(board: Board) -> list[str]:
    """-mcpu/-mfpu/-mfloat-abi for the board's core; selects the matching newlib multilib."""
    cpu = board.core
    if board.core == "cortex-m33" and not board.dsp:
        cpu += "+nodsp"
    flags = ["-mthumb", f"-mcpu={cpu}"]
    if board.fpu == "none":
        flags.append("-mfloat-abi=soft")
    elif board.core == "cortex-m55":
        # The M55's FPU comes with Helium; -mfpu=auto takes both from -mcpu.
        flags += ["-mfpu=auto", "-mfloat-abi=hard"]
    else:
        flags += [f"-mfpu={board.fpu}", "-mfloat-abi=hard"]
    return flags


def section_sizes(elf: Path) -> dict[str, int]:
    """Section name -> bytes, from ``arm-none-eabi-size -A``."""
    tools = CrossTools.find()
    out = subprocess.run([tools.size, "-A", "-d", str(elf)], capture_output=True, text=True, check=True).stdout
    sizes: dict[str, int] = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0].startswith(".") and parts[1].isdigit():
            sizes[parts[0]] = int(parts[1])
    return sizes
