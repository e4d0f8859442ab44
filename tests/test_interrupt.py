"""Interrupting `tinyprune deploy`: Ctrl-C (SIGINT) and SIGKILL at several points leave either the
previous complete output, byte for byte, or no output at all; never a directory that looks
complete. SIGINT also removes every temporary directory and stops the emulator; SIGKILL may
leave a hidden temporary (``.DIR.tinyprune-tmp-PID-...``), which the next run on DIR removes.

The signal goes to the whole process group, as a terminal's Ctrl-C does, so the compiler, QEMU
and the forked TFLite Micro probes get it too. Points: while training (before the output's
temporary directory exists), while pruning, while converting (TensorFlow), while verifying (QEMU
running); with and without an earlier complete output under the same name. Each run gets a
TMPDIR of its own, which SIGINT must leave empty too.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytestmark = [pytest.mark.slow, pytest.mark.compile, pytest.mark.emulate]

TMP_TAG = ".tinyprune-tmp-"
BASE = ("deploy", "--model", "digits-cnn", "--board", "rpi-pico", "--limit", "6", "--calibration-samples", "30",
        "--no-cache")
PRUNING = ("--dataset", "digits", "--flash", "48K", "--step-epochs", "0", "--finetune-epochs", "200")
PASS_THROUGH = ("--dataset", "digits")
ON_QEMU = PASS_THROUGH + ("--limit", "150")  # seconds of emulation: the signal arrives while QEMU runs


def _env():
    return {**os.environ, "TINYPRUNE_PROGRESS": "0"}


def _tree(out: Path) -> dict[str, str]:
    return {str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(out.rglob("*")) if p.is_file()}


def _leftovers(base: Path) -> list[str]:
    return sorted(p.name for p in base.iterdir() if TMP_TAG in p.name)


def _qemu_running_in(base: Path) -> bool:
    proc = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True)
    return any("qemu-system-arm" in line and str(base) in line for line in proc.stdout.splitlines())


def _default_sigint() -> None:
    """A shell without job control starts background jobs with SIGINT ignored, and children
    inherit that: give the deploy the default disposition, as a terminal's foreground job has."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _interrupt(base: Path, out: Path, args: tuple[str, ...], marker: str, sig: int,
               tmpdir: Path | None = None) -> tuple[int, str]:
    """Start a deploy, wait for ``marker`` in its output, send ``sig`` to its process group.
    ``tmpdir``: the deploy's TMPDIR (where its compiler, emulator and converter scratch goes)."""
    env = _env() | ({"TMPDIR": str(tmpdir)} if tmpdir else {})
    proc = subprocess.Popen([sys.executable, "-m", "tinyprune", *BASE, *args, "--out", str(out)], cwd=base,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                            start_new_session=True, preexec_fn=_default_sigint)
    lines = []
    try:
        for line in proc.stdout:
            lines.append(line)
            if marker in line:
                time.sleep(0.3)  # well inside that step
                os.killpg(proc.pid, sig)
                break
        else:
            pytest.fail(f"the deploy ended before '{marker}':\n{''.join(lines)[-3000:]}")
        rest, _ = proc.communicate(timeout=120)
        lines.append(rest)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return proc.returncode, "".join(lines)


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """A working directory with one complete deploy output, ``prev``, and a dataset that makes
    the deploy train its model first (digits-cnn has cached weights only for ``digits``)."""
    base = tmp_path_factory.mktemp("interrupt")
    rng = np.random.default_rng(0)
    np.savez(base / "mini.npz", x_train=rng.random((200, 1, 8, 8), dtype=np.float32),
             y_train=np.arange(200) % 10, x_test=rng.random((20, 1, 8, 8), dtype=np.float32), y_test=np.arange(20) % 10)
    proc = subprocess.run([sys.executable, "-m", "tinyprune", *BASE, *PASS_THROUGH, "--out", str(base / "prev")],
                          cwd=base, capture_output=True, text=True, env=_env(), timeout=900)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return base


# (signal, what to wait for, deploy arguments, whether an earlier output exists under the same name)
CASES = {
    "sigint-training-earlier": (signal.SIGINT, "No --weights: training", ("--dataset", "mini.npz",
                                                                         "--train-epochs", "500"), True),
    "sigint-pruning": (signal.SIGINT, "prune: to flash", PRUNING, False),
    "sigkill-pruning-earlier": (signal.SIGKILL, "prune: to flash", PRUNING, True),
    "sigint-converting-earlier": (signal.SIGINT, "convert: lower ONNX", PASS_THROUGH, True),
    "sigkill-converting": (signal.SIGKILL, "convert: lower ONNX", PASS_THROUGH, False),
    "sigint-verifying": (signal.SIGINT, "verify: running", ON_QEMU, False),
    "sigkill-verifying-earlier": (signal.SIGKILL, "verify: running", ON_QEMU, True),
}


@pytest.mark.parametrize("case", list(CASES))
def test_interrupted_deploy_leaves_the_previous_output_or_nothing(base, case):
    sig, marker, args, earlier = CASES[case]
    prev = base / "prev"
    before = _tree(prev)
    assert ".tinyprune-output" in before and "report.json" in before
    out = prev if earlier else base / f"new-{case}"
    stale = set(_leftovers(base))  # what killed runs before this one left
    tmpdir = base / f"tmp-{case}"
    tmpdir.mkdir()
    code, log = _interrupt(base, out, args + (("--force",) if earlier else ()), marker, sig, tmpdir)
    new = sorted(set(_leftovers(base)) - stale)
    if "verifying" in case:
        assert "in TFLite Micro on the host" not in log  # it was QEMU that got the signal
    if sig == signal.SIGINT:
        assert code == 130 and "interrupted" in log and "Traceback" not in log, log[-3000:]
        assert new == [], log[-2000:]  # every temporary directory removed: beside the output,
        assert sorted(p.name for p in tmpdir.iterdir()) == []  # and in TMPDIR (compiler, QEMU, converter)
    else:
        assert code == -signal.SIGKILL
        assert all(name.startswith(f".{out.name}{TMP_TAG}") for name in new), new  # hidden, marked temporary
    assert not any(p.name.startswith("new-") for p in base.iterdir())
    if earlier:
        assert _tree(prev) == before  # the previous output, byte for byte
    else:
        assert not out.exists()
    assert _tree(prev) == before
    assert not _qemu_running_in(base)


def test_the_next_run_removes_what_a_killed_run_left(base):
    """Stale temporaries of killed runs (their process is gone) are removed by the next staged
    output on the same name; the complete output stays as it was."""
    from tinyprune.outdir import staged_output

    prev = base / "prev"
    stale = base / f".prev{TMP_TAG}999999999-dead"
    stale.mkdir()
    (stale / "report.json").write_text("{}")  # looks complete, but is hidden and temporary
    before = _tree(prev)
    with pytest.raises(RuntimeError):
        with staged_output(prev, force=True):
            raise RuntimeError("nothing to write")
    assert not [n for n in _leftovers(base) if n.startswith(f".prev{TMP_TAG}")]
    assert _tree(prev) == before


def test_an_interrupted_swap_brings_the_previous_output_back(tmp_path):
    """Where the two directories cannot be exchanged atomically, the previous output is renamed
    aside before the new one takes its name; a run killed between the two renames leaves it
    there, and the next run puts it back (instead of deleting it as a stale temporary)."""
    from tinyprune.outdir import MARKER, check_output_dir

    aside = tmp_path / f".run{TMP_TAG}old-1234abcd"
    aside.mkdir()
    (aside / MARKER).write_text("")
    (aside / "report.json").write_text('{"v": 1}')
    check_output_dir(tmp_path / "run", force=True)
    assert (tmp_path / "run" / "report.json").read_text() == '{"v": 1}' and not aside.exists()
