"""`tinyprune sweep`: a grid of deploys on the local pool and on Ray, resume, failed points, and
what the rows say (Pareto front, knee, recommendation).

The end-to-end tests share one small grid: digits-cnn on three boards (rpi-pico, Cortex-M0+;
stm32vldiscovery, Cortex-M3 with 8 KiB of RAM; microbit-v1, Cortex-M0) at three flash budgets,
one of them (8K) below anything the architecture can reach, with short fine-tuning and 40
target samples. The same grid runs once with the local executor and once on a local Ray
instance, each with its own stage cache, so the comparison between them is real.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tinyprune.sweep import ROW_FIELDS, point_id
from tinyprune.sweep_summary import configs, knee, pareto_front, recommend, rows_csv, summarise

BOARDS = ("rpi-pico", "stm32vldiscovery", "microbit-v1")
FLASH = ("8K", "48K", "96K")
IMPOSSIBLE = 8 * 1024
QUICK = ("--model", "digits-cnn", "--dataset", "digits", "--limit", "40", "--finetune-epochs", "2", "--steps", "2",
         "--step-epochs", "0", "--calibration-samples", "50", "--no-profile")
GRID = (*QUICK, "--boards", ",".join(BOARDS), "--flash", ",".join(FLASH))
POINTS = len(BOARDS) * len(FLASH)
e2e = [pytest.mark.slow, pytest.mark.compile, pytest.mark.emulate]


def _env(extra: dict | None = None) -> dict:
    return {**os.environ, "TINYPRUNE_PROGRESS": "0", "RAY_USAGE_STATS_ENABLED": "0", **(extra or {})}


def _sweep(cwd: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tinyprune", "sweep", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, env=_env())


def _rows(out: Path) -> list[dict]:
    return json.loads((out / "sweep.json").read_text())["rows"]


def _doc(out: Path) -> dict:
    return json.loads((out / "sweep.json").read_text())


def _shared_sweep(tmp_path_factory, name: str, *args: str) -> tuple[Path, subprocess.CompletedProcess]:
    """Run one sweep per test session, even across pytest-xdist workers (they share the parent of
    their base temporary directories; a file lock makes the second worker wait and reuse it)."""
    import fcntl

    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent
    base = root / f"sweep-{name}"
    with open(root / f"sweep-{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        record = base / "proc.json"
        if not record.exists():
            shutil.rmtree(base, ignore_errors=True)
            base.mkdir()
            proc = _sweep(base, *args, "--out", str(base / "out"))
            record.write_text(json.dumps([proc.returncode, proc.stdout, proc.stderr]))
        code, stdout, stderr = json.loads(record.read_text())
    assert code == 0, stdout[-4000:] + stderr[-4000:]
    return base / "out", subprocess.CompletedProcess(args, code, stdout, stderr)


@pytest.fixture(scope="module")
def local_sweep(tmp_path_factory):
    return _shared_sweep(tmp_path_factory, "local", *GRID, "--jobs", "2")


@pytest.fixture(scope="module")
def ray_sweep(tmp_path_factory):
    pytest.importorskip("ray")
    return _shared_sweep(tmp_path_factory, "ray", *GRID, "--executor", "ray", "--jobs", "2")


# ---- end to end -------------------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.compile
@pytest.mark.emulate
def test_every_point_has_a_row_and_the_impossible_budget_fails_alone(local_sweep):
    out, proc = local_sweep
    rows = _rows(out)
    assert [(r["board"], r["flash_budget_bytes"]) for r in rows] == [
        (b, f) for b in BOARDS for f in (8 * 1024, 48 * 1024, 96 * 1024)]  # the grid's order
    assert [r["id"] for r in rows] == [point_id(r["board"], r["flash_budget_bytes"], r["ram_budget_bytes"], 0)
                                      for r in rows]
    for r in rows:
        assert set(r) == set(ROW_FIELDS)
        if r["flash_budget_bytes"] == IMPOSSIBLE:
            assert r["status"] == "failed" and r["fits"] is False and r["error_kind"] == "BudgetError"
            assert "no pruning of this architecture fits" in r["error"] and "smallest reachable" in r["error"]
            assert not (out / "points" / r["id"]).exists()  # no deploy directory for a failed point
        else:
            assert r["status"] == "ok" and r["fits"] is True and r["bit_exact"] is True and r["error"] is None
            assert r["flash_bytes"] + r["flash_free_bytes"] == r["flash_budget_bytes"]
            assert r["ram_bytes"] + r["ram_free_bytes"] == r["ram_budget_bytes"]
            assert r["flash_free_bytes"] >= 0 and r["ram_free_bytes"] >= 0
            assert 0.5 < r["accuracy_target"] <= 1 and r["samples"] == 40
            assert r["instructions_per_inference"] > r["macs"] > 0
            assert r["estimated_latency_ms"] == pytest.approx(1e3 * r["instructions_per_inference"] / r["clock_hz"])
            report = json.loads((out / "points" / r["id"] / "report.json").read_text())
            assert report["accuracy"]["target"] == r["accuracy_target"] and report["board"] == r["board"]
            assert report["speed"]["by_operator"] is None  # --no-profile: no second build
    # the sweep completed and says which points failed
    assert "3 of 9 point(s) failed" in proc.stdout
    assert proc.stdout.count("FAILED") == 3
    doc = _doc(out)
    assert doc["complete"] is True and doc["pending"] == [] and doc["summary"]["failed"] == 3
    assert set(doc["run"]["points"]) == {r["id"] for r in rows}  # timings: in `run`, not in the rows
    assert all(p["seconds"] >= 0 for p in doc["run"]["points"].values())


@pytest.mark.slow
@pytest.mark.compile
@pytest.mark.emulate
def test_optimize_and_target_apply_to_every_point(local_sweep, tmp_path):
    """--optimize speed --target hardware: the point's firmware is built at -O2 (larger, fewer
    instructions than the same point of the default -Os sweep) and its board/ links at the
    board's own addresses; the row, sweep.json and the summary say so."""
    default = {r["id"]: r for r in _rows(local_sweep[0])}
    out = tmp_path / "out"
    proc = _sweep(tmp_path, *QUICK, "--boards", "rpi-pico", "--flash", "96K", "--optimize", "speed",
                  "--target", "hardware", "--jobs", "1", "--out", str(out))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (row,) = _rows(out)
    assert row["status"] == "ok" and row["bit_exact"] is True and row["opt_flag"] == "-O2"
    assert all(r["opt_flag"] == "-Os" for r in default.values() if r["status"] == "ok")
    deploy = _doc(out)["config"]["deploy"]
    assert deploy["opt"] == "-O2" and deploy["target"] == "hardware"
    assert "firmware at -O2" in proc.stdout
    assert "opt_flag" in (out / "sweep.csv").read_text().splitlines()[0].split(",")
    report = json.loads((out / "points" / row["id"] / "report.json").read_text())
    assert report["speed"]["opt_flag"] == "-O2" and report["board_target"] == "hardware"
    assert "FLASH (rx)  : ORIGIN = 0x10000000" in (out / "points" / row["id"] / "board" / "linker.ld").read_text()
    assert "ORIGIN = 0x10000000" not in (local_sweep[0] / "points" / row["id"] / "board" / "linker.ld").read_text()
    same = default[row["id"]]
    assert row["model_bytes"] == same["model_bytes"]  # digits-cnn fits 96K unpruned at either level
    assert row["flash_bytes"] > same["flash_bytes"]
    assert row["instructions_per_inference"] < 0.9 * same["instructions_per_inference"]


@pytest.mark.slow
@pytest.mark.compile
@pytest.mark.emulate
def test_shared_stages_run_once(local_sweep):
    """The unpruned model passes through on several boards: its conversion came from the cache."""
    out, _ = local_sweep
    runs = _doc(out)["run"]["points"]
    passed = [r for r in _rows(out) if r["status"] == "ok" and r["passed_through"]]
    assert len(passed) >= 2
    assert sum("convert" in runs[r["id"]]["cached"] for r in passed) >= len(passed) - 1


@pytest.mark.slow
@pytest.mark.compile
@pytest.mark.emulate
def test_local_and_ray_give_the_same_rows(local_sweep, ray_sweep):
    local, ray = _rows(local_sweep[0]), _rows(ray_sweep[0])
    assert len(local) == len(ray) == POINTS
    for a, b in zip(local, ray):  # every field: rows hold no timings (those are in `run`)
        assert a == b, a["id"]
    assert _doc(local_sweep[0])["summary"] == _doc(ray_sweep[0])["summary"]
    assert "ray (local instance)" in ray_sweep[1].stdout
    # the artifacts agree too: the same .tflite for the same point
    for r in local:
        if r["status"] == "ok":
            name = Path("points") / r["id"] / "model_int8.tflite"
            assert (local_sweep[0] / name).read_bytes() == (ray_sweep[0] / name).read_bytes()


@pytest.mark.slow
@pytest.mark.compile
@pytest.mark.emulate
def test_reports_csv_and_point_directories(local_sweep):
    from PIL import Image

    out, proc = local_sweep
    with open(out / "sweep.csv", newline="") as f:
        table = list(csv.DictReader(f))
    assert len(table) == POINTS and list(table[0]) == list(ROW_FIELDS)
    md = (out / "sweep.md").read_text()
    assert "Pareto" in md and "Fits per board, with headroom" in md and "## Failed points" in md
    for board in BOARDS:
        assert f"### {board} (" in md
    html = (out / "sweep.html").read_text()
    assert 'src="http' not in html
    images = re.findall(r'<img[^>]+src="data:image/png;base64,([^"]+)"', html)
    assert len(images) == 2
    for data in images:
        assert Image.open(io.BytesIO(base64.b64decode(data))).size[0] > 100
    for r in _rows(out):
        assert (out / "points" / f"{r['id']}.json").is_file() and (out / "points" / f"{r['id']}.log").is_file()
        if r["status"] == "ok":
            point = out / "points" / r["id"]
            for name in ("model_int8.tflite", "firmware.elf", "report.html", "memory.png", ".tinyprune-output"):
                assert (point / name).is_file(), name
            assert f"tinyprune_add_model(<target> {point.resolve()})" in (point / "report.md").read_text()
    assert "Recommended board:" in proc.stdout and "Knee of the accuracy curve" in proc.stdout
    assert not [p for p in (out / "points").iterdir() if p.name.startswith(".")]  # no temporaries left


@pytest.mark.slow
@pytest.mark.compile
@pytest.mark.emulate
def test_killed_sweep_resumes_without_redoing_finished_points(local_sweep, tmp_path):
    """Copy the finished sweep, forget two of its points, start a --resume and SIGKILL it (driver and
    workers) once one of them is done; a second --resume runs only what is still missing."""
    done, _ = local_sweep
    out = tmp_path / "out"
    shutil.copytree(done, out, symlinks=True)
    original = {r["id"]: r for r in _rows(done)}
    forgotten = [r["id"] for r in original.values() if r["status"] == "ok"][:2]
    for pid in forgotten:
        shutil.rmtree(out / "points" / pid)
        (out / "points" / f"{pid}.json").unlink()
    kept = {p.name: p.stat().st_mtime_ns for p in (out / "points").glob("*.json")}

    proc = subprocess.Popen([sys.executable, "-m", "tinyprune", "sweep", *GRID, "--jobs", "1", "--resume",
                             "--out", str(out)], cwd=tmp_path, env=_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while not any((out / "points" / f"{pid}.json").exists() for pid in forgotten):
            assert proc.poll() is None, proc.stdout.read()
            assert time.monotonic() < deadline, "no point finished in time"
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the driver and its pool: everything this test started
        proc.wait()
        proc.stdout.close()
    missing = [pid for pid in forgotten if not (out / "points" / f"{pid}.json").exists()]
    assert len(missing) <= 1
    json.loads((out / "sweep.json").read_text())  # written atomically: never half a file
    for pid in missing:  # a point killed half-way never looks finished
        assert not (out / "points" / pid / "report.json").exists()

    again = _sweep(tmp_path, *GRID, "--jobs", "1", "--resume", "--out", str(out))
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert f"{POINTS - len(missing)} finished point(s) skipped, {len(missing)} to run" in again.stdout
    assert again.stdout.count("] ok ") + again.stdout.count("] FAILED ") == len(missing)
    for name, mtime in kept.items():  # finished points were not touched
        assert (out / "points" / name).stat().st_mtime_ns == mtime, name
    resumed = {r["id"]: r for r in _rows(out)}
    assert resumed.keys() == original.keys()
    for pid, row in original.items():
        assert resumed[pid] == row, pid
    doc = _doc(out)
    assert doc["complete"] is True and doc["run"]["resumed"] == POINTS - len(missing)
    assert not [p for p in (out / "points").iterdir() if p.name.startswith(".")]


@pytest.mark.slow
@pytest.mark.compile
@pytest.mark.emulate
def test_existing_directory_needs_resume_or_force(local_sweep, tmp_path):
    out, _ = local_sweep
    proc = _sweep(tmp_path, *GRID, "--out", str(out))
    assert proc.returncode == 2 and "already exists" in proc.stderr and "--resume" in proc.stderr


@pytest.mark.slow
def test_every_point_failing_exits_1(tmp_path):
    """8K is below what the architecture reaches; 4M is more flash than the board has."""
    proc = _sweep(tmp_path, *QUICK, "--boards", "stm32vldiscovery", "--flash", "8K,4M", "--jobs", "1",
                  "--out", str(tmp_path / "out"))
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "every point of the sweep failed" in proc.stderr
    rows = _rows(tmp_path / "out")
    assert [r["error_kind"] for r in rows] == ["BudgetError", "BadInput"]
    assert "more than stm32vldiscovery has" in rows[1]["error"]
    assert all(r["fits"] is False and r["opt_flag"] == "-Os" for r in rows)
    assert "No recommendation" in proc.stdout


def _signals(path: Path, seed: int = 0) -> Path:
    """A reconstruction dataset for fc-autoencoder: 640-sample windows of two sinusoids and noise."""
    import numpy as np

    rng = np.random.default_rng(seed)
    t = np.linspace(0, 1, 640, dtype=np.float32)

    def windows(n):
        f, phase = rng.uniform(1, 6, (n, 2, 1)), rng.uniform(0, 2 * np.pi, (n, 2, 1))
        x = np.sin(2 * np.pi * f[:, 0] * t + phase[:, 0]) + 0.5 * np.sin(2 * np.pi * f[:, 1] * t + phase[:, 1])
        return ((x + 0.05 * rng.standard_normal((n, 640))) / 2).astype(np.float32)

    np.savez(path, x_train=windows(400), y_train=np.zeros(400, np.int64), x_test=windows(100),
             y_test=np.zeros(100, np.int64))
    return path


@pytest.mark.slow
@pytest.mark.compile
@pytest.mark.emulate
def test_autoencoder_sweep_ranks_by_mse_lower_is_better(tmp_path):
    """An MSE model gets a front, a recommendation and a report too: the MSE of each point is
    TFLite Micro's on the host, which the board matched byte for byte; lower wins."""
    data = _signals(tmp_path / "signals.npz")
    out = tmp_path / "out"
    proc = _sweep(tmp_path, "--model", "fc-autoencoder", "--dataset", str(data), "--limit", "20",
                  "--finetune-epochs", "1", "--steps", "2", "--step-epochs", "0", "--calibration-samples", "50",
                  "--boards", "nucleo-f446re", "--flash", "96K,320K", "--jobs", "2", "--out", str(out))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    doc = _doc(out)
    rows = doc["rows"]
    assert [r["status"] for r in rows] == ["ok", "ok"] and all(r["bit_exact"] for r in rows)
    for r in rows:
        report = json.loads((out / "points" / r["id"] / "report.json").read_text())
        assert r["metric"] == "mse" and r["accuracy_target"] is None
        assert r["metric_target"] == report["accuracy"]["tflm_host"] > 0
    small, large = rows
    assert large["metric_target"] < small["metric_target"]  # 3x the flash keeps more of the model
    s = doc["summary"]
    assert s["metric"] == "mse" and s["higher_is_better"] is False
    assert s["pareto"] == [small["id"].rsplit("_seed", 1)[0], large["id"].rsplit("_seed", 1)[0]]
    rec = s["recommendation"]
    assert rec["board"] == "nucleo-f446re" and rec["flash_budget_bytes"] == 320 * 1024
    assert rec["threshold"] == pytest.approx(large["metric_target"] * 1.1) and rec["min_accuracy"] is None
    assert "keep the MSE at or below" in proc.stdout and "MSE (0." in proc.stdout
    assert "| MSE on target |" in (out / "sweep.md").read_text()


# ---- bad input: exit 2 before any work ----------------------------------------------------------------

@pytest.mark.parametrize("args, message", [
    (("--boards", "no-such-board"), "unknown board 'no-such-board'"),
    (("--boards", "rpi-pico", "--flash", "12Q"), "is not a size"),
    (("--boards", ","), "expected board names"),
    (("--boards", "rpi-pico", "--min-accuracy", "1.5"), "between 0 and 1"),
    (("--boards", "rpi-pico", "--ray-address", "auto"), "--ray-address needs --executor ray"),
    (("--boards", "rpi-pico", "--seeds", "0"), "expected at least 1"),
    (("--boards", "rpi-pico", "--max-mse", "-1"), "0 or more"),
    (("--boards", "rpi-pico", "--max-mse", "0.01"), "--max-mse does not apply: digits-cnn is scored by accuracy"),
])
def test_bad_input_exits_2(tmp_path, args, message):
    proc = _sweep(tmp_path, *QUICK, *args, "--out", str(tmp_path / "out"), timeout=120)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert message in proc.stderr
    assert not (tmp_path / "out").exists()


def test_min_accuracy_on_an_mse_model_exits_2(tmp_path):
    proc = _sweep(tmp_path, "--model", "fc-autoencoder", "--dataset", str(_signals(tmp_path / "s.npz")),
                  "--boards", "nucleo-f446re", "--min-accuracy", "90%", "--out", str(tmp_path / "out"), timeout=120)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "--min-accuracy does not apply: fc-autoencoder is scored by mse" in proc.stderr
    assert "use --max-mse instead" in proc.stderr
    assert not (tmp_path / "out").exists()


# ---- what the rows say (no deploys) ---------------------------------------------------------------------

def _row(board: str, flash: int, acc: float | None, seed: int = 0, cost: int = 0, ok: bool = True) -> dict:
    row = dict.fromkeys(ROW_FIELDS)
    row.update(id=point_id(board, flash, 4096, seed), board=board, flash_budget_bytes=flash, ram_budget_bytes=4096,
               board_flash_bytes=cost, board_ram_bytes=0, seed=seed, status="ok" if ok else "failed", fits=ok,
               metric="accuracy", accuracy_target=acc if ok else None, metric_target=acc if ok else None, flash_free_bytes=100 if ok else None,
               flash_bytes=flash - 100 if ok else None, ram_bytes=4046 if ok else None,
               ram_free_bytes=50 if ok else None, error=None if ok else "no pruning fits")
    return row


def test_pareto_front_keeps_only_budgets_that_buy_accuracy():
    cfgs = configs([_row("a", 16, 0.80), _row("a", 32, 0.90), _row("b", 32, 0.85), _row("a", 64, 0.90),
                    _row("a", 128, 0.95), _row("b", 8, None, ok=False)])
    front = pareto_front(cfgs)
    assert [(c.board, c.flash_budget_bytes) for c in front] == [("a", 16), ("a", 32), ("a", 128)]


def test_knee_is_where_the_curve_bends():
    flash = [8, 16, 32, 64, 128]
    accs = [0.50, 0.85, 0.90, 0.91, 0.92]
    front = pareto_front(configs([_row("a", f * 1024, acc) for f, acc in zip(flash, accs)]))
    k, why = knee(front)
    assert k.flash_budget_bytes == 16 * 1024 and "more flash buys" in why
    assert knee(front[:2])[0] is None
    linear = pareto_front(configs([_row("a", f, f / 100) for f in (10, 20, 30, 40)]))
    assert knee(linear)[0] is None


def test_recommendation_is_the_cheapest_board_meeting_the_accuracy_on_every_seed():
    rows = [_row("big", 64, 0.95, cost=1000), _row("small", 64, 0.93, cost=100), _row("tiny", 64, 0.99, cost=10),
            _row("tiny", 64, None, seed=1, cost=10, ok=False)]  # tiny fails on seed 1: it does not count
    rows += [_row("big", 64, 0.95, seed=1, cost=1000), _row("small", 64, 0.91, seed=1, cost=100)]
    cfgs = configs(rows)
    assert recommend(cfgs, 0.90)["board"] == "small"  # mean 0.92 over both seeds
    assert recommend(cfgs, 0.93)["board"] == "big"
    assert recommend(cfgs, 0.99)["board"] is None
    default = recommend(cfgs, None)  # the best accuracy less one point: 0.94
    assert default["board"] == "big" and default["min_accuracy"] == pytest.approx(0.94)


def _mse_row(board: str, flash: int, mse: float | None, seed: int = 0, cost: int = 0) -> dict:
    row = _row(board, flash, None, seed, cost, ok=mse is not None)
    row.update(metric="mse", metric_target=mse)
    return row


def test_mse_sweeps_rank_lower_is_better():
    """Front, knee and recommendation of an error metric: a budget joins the front by lowering the
    MSE; the default bar is the best MSE plus 10 %; --max-mse caps it."""
    flash = [8, 16, 32, 64, 128]
    mses = [0.50, 0.15, 0.10, 0.09, 0.08]
    rows = [_mse_row("a", f * 1024, m, cost=100) for f, m in zip(flash, mses)]
    rows += [_mse_row("b", 32 * 1024, 0.12, cost=50), _mse_row("c", 16 * 1024, 0.085, cost=10)]
    cfgs = configs(rows)
    front = pareto_front(cfgs)
    assert [(c.board, c.flash_budget_bytes // 1024) for c in front] == [("a", 8), ("c", 16), ("a", 128)]
    k, why = knee(pareto_front(configs(rows[:5])))
    assert k.flash_budget_bytes == 16 * 1024 and "takes the MSE from 0.15000 to 0.08000" in why
    default = recommend(cfgs, None)
    assert default["threshold"] == pytest.approx(0.08 * 1.1) and default["board"] == "c"
    assert default["metric"] == "mse" and default["min_accuracy"] is None
    assert recommend(configs(rows[:6]), 0.095)["config"] == "a_flash-128K_ram-4K"  # of a's, the best MSE
    assert recommend(cfgs, 0.01)["board"] is None
    assert summarise(rows, None)["higher_is_better"] is False


def test_csv_has_every_column_and_empty_cells_for_none():
    text = rows_csv([_row("a", 16, None, ok=False)])
    header, line = text.splitlines()
    assert header.split(",") == list(ROW_FIELDS)
    assert next(csv.DictReader(io.StringIO(text)))["accuracy_target"] == ""


def test_sweep_report_renders_deterministically(tmp_path):
    from tinyprune import sweep_report

    rows = [_row("a", f * 1024, acc) for f, acc in ((8, 0.5), (16, 0.85), (32, 0.9), (64, 0.91))]
    rows.append(_row("b", 8 * 1024, None, ok=False))
    for r in rows:
        r.update(mcu="X", core="cortex-m4", clock_hz=10**8, board_flash_bytes=1 << 20, board_ram_bytes=1 << 16)
    doc = {"model": "m", "dataset": "d", "rows": rows, "grid": {"boards": ["a", "b"], "seeds": [0]},
           "summary": summarise(rows, 0.8), "config": {"deploy": {"samples": 40}}}
    first = sweep_report.render_files(doc)
    assert first == sweep_report.render_files(doc)
    assert set(first) == {"sweep.md", "sweep.html", "accuracy_vs_flash.png", "headroom.png"}
    text = "\n".join(sweep_report.summary_lines(doc))
    assert "Recommended board: a" in text and "Knee of the accuracy curve: a flash budget of 16.0 KiB" in text


def test_grid_and_resume_bookkeeping(tmp_path):
    """Grid order and default budgets; a point counts as finished only with its row written last,
    the same inputs (spec) and, when it succeeded, its deploy directory."""
    from tinyprune.boards import load_board
    from tinyprune.errors import BadInput
    from tinyprune.sweep import SweepDir, expand_grid

    boards = [load_board("rpi-pico"), load_board("stm32vldiscovery")]
    out = tmp_path / "out"
    points = expand_grid(boards, None, None, [0, 1], out)
    assert [(p.board["name"], p.seed) for p in points] == [("rpi-pico", 0), ("rpi-pico", 1),
                                                           ("stm32vldiscovery", 0), ("stm32vldiscovery", 1)]
    assert (points[2].flash_bytes, points[2].ram_bytes) == (boards[1].budget_flash_bytes, boards[1].budget_ram_bytes)
    assert points[0].deploy_dir == str((out / "points" / points[0].id).resolve())
    with pytest.raises(BadInput, match="empty"):
        expand_grid(boards, [], None, [0], out)

    d = SweepDir.prepare(out, force=False, resume=False)
    specs = {p.id: f"spec-{p.id}" for p in points}

    def result(point, status, spec=None, files=None):
        return {"row": {"id": point.id, "status": status, "spec": spec or specs[point.id]}, "run": {"seconds": 1.0},
                "files": files or {}, "log": "log\n"}

    d.record(points[0], result(points[0], "ok", files={"report.json": b"{}", "board/linker.ld": b"x"}))
    d.record(points[1], result(points[1], "failed"))
    d.record(points[2], result(points[2], "ok", spec="made with other options", files={"report.json": b"{}"}))
    done, stale = d.finished(points, specs)
    assert set(done) == {points[0].id, points[1].id} and stale == [points[2].id]
    assert done[points[0].id]["run"] == {"seconds": 1.0} and "run" not in done[points[0].id]["row"]
    assert (out / "points" / points[0].id / "board" / "linker.ld").read_bytes() == b"x"
    shutil.rmtree(out / "points" / points[0].id)  # a row without its directory is not finished
    assert points[0].id not in d.finished(points, specs)[0]

    with pytest.raises(BadInput, match="already exists"):
        SweepDir.prepare(out, force=False, resume=False)
    (out / ".tinyprune-cache").mkdir()
    SweepDir.prepare(out, force=True, resume=False)  # starts over, keeps the stage cache
    assert (out / ".tinyprune-cache").is_dir() and not list((out / "points").iterdir())
    (tmp_path / "mine").mkdir()
    with pytest.raises(BadInput, match="not created by tinyprune"):
        SweepDir.prepare(tmp_path / "mine", force=True, resume=False)
