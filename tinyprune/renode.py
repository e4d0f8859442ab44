"""Renode scripts for a board: a ``.resc`` that loads the firmware on the board's platform and
shows its UART, and a Robot Framework ``.robot`` test that runs it and checks the UART output.

Renode cannot be installed from the registries this project uses, so the files are generated
for every deploy and run only where ``renode-test`` is on PATH. The firmware for Renode is the
embedded-samples harness linked at the board's own addresses, printing over the board's UART.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tinyprune.boards import Board
from tinyprune.errors import CheckFailed, ToolMissing

RENODE_INSTALL_HINT = (
    "Renode is not on PATH. Install it from https://renode.io (Linux portable package or "
    ".deb from https://github.com/renode/renode/releases), then run `renode-test FILE.robot`; "
    "or use the default emulator: --emulator qemu"
)

# Renode keywords the generated test uses (from renode's tests/renode-keywords.robot).
ROBOT_KEYWORDS = ("Execute Command", "Create Terminal Tester", "Start Emulation", "Wait For Line On Uart")


@dataclass(frozen=True)
class RenodeExpectation:
    """What the firmware must print over the UART for the test to pass."""

    digest: int  # FNV-1a of every output byte, as the host computed it
    correct: int | None  # None when the samples have no labels
    samples: int

    @property
    def digest_line(self) -> str:
        return f"tinyprune outputs digest: 0x{self.digest:08x}"

    @property
    def accuracy_line(self) -> str:
        return f"tinyprune accuracy: {self.correct}/{self.samples}"


def resc_name(board: Board) -> str:
    return f"{board.name}.resc"


def robot_name(board: Board) -> str:
    return f"{board.name}.robot"


def render_resc(board: Board, elf_name: str) -> str:
    return f"""\
:name: tinyprune on {board.name}
:description: Runs the tinyprune verification firmware on {board.name} ({board.mcu}) and shows its UART.

$name?="{board.name}"
$bin?=@{elf_name}

using sysbus
mach create $name
machine LoadPlatformDescription @{board.renode_platform}

showAnalyzer {board.renode_uart}

macro reset
\"\"\"
    sysbus LoadELF $bin
\"\"\"
runMacro $reset
"""


def render_robot(board: Board, elf_name: str, expected: RenodeExpectation, timeout_s: int = 300) -> str:
    accuracy = f"    Wait For Line On Uart     {expected.accuracy_line}\n" if expected.correct is not None else ""
    return f"""\
*** Settings ***
Documentation     tinyprune: the deployed model runs on {board.name} ({board.mcu}) and prints
...               the digest of its outputs and its accuracy over {board.renode_uart}; both must
...               equal what TFLite Micro computed on the host.
Suite Setup       Setup
Suite Teardown    Teardown
Test Teardown     Test Teardown
Resource          ${{RENODEKEYWORDS}}

*** Variables ***
${{UART}}           {board.renode_uart}
${{ELF}}            @${{CURDIR}}/{elf_name}
${{RESC}}           @${{CURDIR}}/{resc_name(board)}

*** Test Cases ***
Model Outputs Match The Host On {board.name}
    Execute Command           $bin=${{ELF}}
    Execute Command           include ${{RESC}}
    Create Terminal Tester    ${{UART}}    timeout={timeout_s}
    Start Emulation
    Wait For Line On Uart     {expected.digest_line}
{accuracy}    Wait For Line On Uart     tinyprune done
"""


def write_scripts(board: Board, out_dir: Path, elf_name: str, expected: RenodeExpectation) -> tuple[Path, Path]:
    resc = out_dir / resc_name(board)
    robot = out_dir / robot_name(board)
    resc.write_text(render_resc(board, elf_name), encoding="utf-8")
    robot.write_text(render_robot(board, elf_name, expected), encoding="utf-8")
    return resc, robot


def renode_available() -> bool:
    return shutil.which("renode-test") is not None


def run_robot(robot: Path, timeout_s: float = 900) -> str:
    """Run the generated test with ``renode-test``; return its output or raise."""
    exe = shutil.which("renode-test")
    if exe is None:
        raise ToolMissing("renode-test is not installed", hint=RENODE_INSTALL_HINT)
    proc = subprocess.run([exe, str(robot)], capture_output=True, text=True, timeout=timeout_s, cwd=robot.parent)
    if proc.returncode != 0:
        raise CheckFailed(f"the Renode test {robot.name} failed:\n" + "\n".join(proc.stdout.splitlines()[-30:]))
    return proc.stdout
