"""Shared fixtures. Tests never write into the checkout: outputs go to pytest's tmp_path."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

# Two test workers on two cores: one thread each for torch (OpenMP) and TensorFlow, here and in
# the CLI subprocesses the tests start (torch reads OMP_NUM_THREADS when the test modules import
# it, after this file). Default thread pools oversubscribe and run up to 30x slower.
for _var in ("OMP_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("TINYPRUNE_PROGRESS", "0")

PROJECT_DIR = Path(__file__).resolve().parents[1]


def pytest_report_header(config):
    lines = []
    for tool in ("arm-none-eabi-gcc", "qemu-system-arm"):
        path = shutil.which(tool)
        if path:
            out = subprocess.run([path, "--version"], capture_output=True, text=True).stdout
            lines.append(f"{tool}: {out.splitlines()[0] if out else '?'}")
        else:
            lines.append(f"{tool}: NOT INSTALLED")
    return lines


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str


@pytest.fixture
def cli(tmp_path):
    """Run `tinyprune ARGS...` in a subprocess, as a user would, from a scratch directory."""

    def run(*args: str, cwd: Path | None = None, env: dict | None = None, timeout: float = 600) -> CliResult:
        full_env = {**os.environ, **(env or {})}
        proc = subprocess.run(
            [sys.executable, "-m", "tinyprune", *map(str, args)],
            cwd=cwd or tmp_path,
            env=full_env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        return CliResult(proc.returncode, proc.stdout, proc.stderr)

    return run
