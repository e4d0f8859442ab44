"""What tinyprune knows about emulated machines, read from ``tinyprune/data/qemu_machines.toml``.

Kept apart from boards: a board says which machine emulates its core; the machine says where
that emulator puts code and RAM and how fast its SysTick runs.
"""

from __future__ import annotations

import functools
import tomllib
from dataclasses import dataclass

from tinyprune.paths import DATA_DIR
from tinyprune.sizes import parse_size

# ARMv6-M code (Cortex-M0/M0+) also runs on an ARMv7-M Cortex-M3: the instructions it executes are
# the same, so instruction counts match. The firmware turns on unaligned-access trapping there
# so that an access a real M0+ would fault on also faults in the emulator.
_ARMV6M = ("cortex-m0", "cortex-m0plus")


@dataclass(frozen=True)
class QemuMachine:
    name: str
    core: str
    fpu: str
    code_origin: int
    code_bytes: int
    ram_origin: int
    ram_bytes: int
    systick_hz: int
    uart_kind: str
    uart_base: int

    @property
    def instructions_per_tick(self) -> float:
        """Instructions per SysTick tick under ``-icount shift=0`` (1 ns per instruction)."""
        return 1e9 / self.systick_hz


@functools.cache
def _machines() -> dict[str, QemuMachine]:
    raw = tomllib.loads((DATA_DIR / "qemu_machines.toml").read_text(encoding="utf-8"))
    out = {}
    for name, t in raw.items():
        t = dict(t)
        for key in ("code_bytes", "ram_bytes"):
            t[key] = parse_size(t[key], what=f"qemu_machines.toml [{name}] {key}")
        out[name] = QemuMachine(name=name, **t)
    return out


def qemu_machine(name: str) -> QemuMachine | None:
    return _machines().get(name)


def qemu_machine_names() -> list[str]:
    return sorted(_machines())


def runs_core(machine: QemuMachine, core: str) -> bool:
    """Whether code compiled for ``core`` executes on ``machine`` instruction for instruction."""
    if machine.core == core:
        return True
    return core in _ARMV6M and machine.core in _ARMV6M + ("cortex-m3",)
