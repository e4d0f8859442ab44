"""Sweeps: many independent deploys over a grid of boards x budgets x seeds.

    points = expand_grid(boards, flash=[48 * 1024, 96 * 1024], ram=None, seeds=[0, 1], out=Path("runs/s"))
    inputs = SweepInputs(model_bytes, model_info, data, shape, task, prune, convert, deploy, weights, cache_dir)
    result = run_point(inputs, points[0])      # the job: {"row": {...}, "files": {name: bytes}, "log": str}

    with sweep_executors.EXECUTORS["local"](jobs=2).start(inputs) as ex:   # or "ray"
        handle = ex.submit(point); ex.wait([handle])        # -> [(handle, result or exception)]

``run_point`` is the unit of work: a top-level function of plain data (the trained float model
as ``torch.save`` bytes, the board as a dict, configs as dicts), so that it pickles to a local
process or to a Ray worker on another machine, and it returns every artifact as bytes for the
driver to write. It never raises: a point that fails (a budget no pruning reaches, a firmware
that does not fit) comes back as a row with its error. Every job runs single-threaded for torch
and TensorFlow, so that parallel jobs do not fight over the cores and give the same numbers
whichever executor ran them.

``SweepDir`` keeps the output directory: ``points/<id>/`` (the point's deploy directory, renamed
into place when complete), ``points/<id>.log``, then ``points/<id>.json`` (its row and ``run``,
written last: the point is finished once it exists, so ``--resume`` skips it).
``tinyprune.sweep_summary.summarise`` turns the rows into per-configuration figures, the Pareto
front of the model's metric (accuracy, or the MSE of an autoencoder: lower is better) against the
flash budget, its knee and the recommended board; ``tinyprune.sweep_report`` renders them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import json
import os
import shutil
import socket
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from tinyprune.errors import BadInput, TinypruneError
from tinyprune.quality import metric_on_target

POINTS_DIR = "points"
ROW_FIELDS = (  # sweep.csv's columns, in order; every row has every key
    "id", "board", "mcu", "core", "clock_hz", "board_flash_bytes", "board_ram_bytes", "flash_budget_bytes",
    "ram_budget_bytes", "budget_source", "seed", "opt_flag", "status", "fits", "bit_exact", "metric", "accuracy_target",
    "metric_target", "accuracy_float", "accuracy_pruned", "accuracy_int8", "samples", "flash_bytes", "flash_free_bytes",
    "ram_bytes", "ram_free_bytes", "model_bytes", "arena_bytes", "params", "macs", "instructions_per_inference",
    "estimated_latency_ms", "passed_through", "attempts", "error_kind", "error", "spec",
)  # a row is a function of the point's inputs; how long it took and where it ran go in its ``run``
ROW_FORMAT = 2  # part of a point's --resume key: rows of another format (2: metric_target) are redone


# ---- the grid -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Point:
    """One deploy of the grid, as plain data."""

    index: int
    id: str
    board: dict  # Board.to_dict()
    flash_bytes: int
    ram_bytes: int
    budget_source: str
    seed: int
    deploy_dir: str  # where the driver writes the point's files (for the report's build lines)
    integration: dict  # the report's build-integration lines, made by the driver for deploy_dir


def size_tag(n: int) -> str:
    return f"{n // 1024}K" if n % 1024 == 0 else str(n)


def point_id(board: str, flash: int, ram: int, seed: int) -> str:
    return f"{board}_flash-{size_tag(flash)}_ram-{size_tag(ram)}_seed-{seed}"


def expand_grid(boards: list, flash: list[int] | None, ram: list[int] | None, seeds: list[int],
                out: Path) -> list[Point]:
    """boards x flash budgets x RAM budgets x seeds, in that order; a missing list means each
    board's own budget (``tinyprune boards B``)."""
    from tinyprune.integration import user_build_lines

    if not boards or not seeds or flash == [] or ram == []:
        raise BadInput("the sweep's grid is empty", hint="give at least one board (--boards), budget and seed")
    points: list[Point] = []
    for board in boards:
        for f in flash or [board.budget_flash_bytes]:
            for r in ram or [board.budget_ram_bytes]:
                source = ", ".join([f"sweep on board {board.name}"]
                                   + ([f"--flash {size_tag(f)}"] if flash else [])
                                   + ([f"--ram {size_tag(r)}"] if ram else []))
                for seed in seeds:
                    pid = point_id(board.name, f, r, seed)
                    deploy_dir = (Path(out) / POINTS_DIR / pid).resolve()
                    points.append(Point(len(points), pid, board.to_dict(), f, r, source, seed, str(deploy_dir),
                                        user_build_lines(deploy_dir)))
    ids = [p.id for p in points]
    if len(set(ids)) != len(ids):
        raise BadInput("the sweep's grid names a point twice", hint="list each board, size and seed once")
    return points


# ---- the job --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SweepInputs:
    """What every point shares, as plain data: shipped once to each worker."""

    model_bytes: bytes  # torch.save(trained float model)
    model_info: dict  # asdict(ModelInfo)
    data: Any  # tinyprune.data.Dataset (numpy arrays: pickles exactly)
    shape: tuple[int, ...]
    task: str
    prune: dict  # asdict(PruneConfig); the point's seed replaces "seed"
    convert: dict  # asdict(ConvertConfig); the point's seed replaces "seed"
    deploy: dict  # DeployConfig's other fields: samples, max_attempts, timeout_s, target, opt
    weights: dict  # how the float model was trained (the deploy report's "weights")
    cache_dir: str | None  # the stage cache; None with use_cache: a directory on each worker
    use_cache: bool = True
    factory_source: bytes | None = None  # the user's model .py, for unpickling its classes on a worker

    @property
    def opt_flag(self) -> str:
        """The optimization level every point's firmware is built at (--optimize)."""
        return self.deploy.get("opt", "-Os")

    def fingerprint(self) -> str:
        """A hash of everything a point's result depends on besides the point itself."""
        h = hashlib.sha256(self.model_bytes)
        h.update(json.dumps([self.model_info, list(self.shape), self.task, self.prune, self.convert, self.deploy,
                             self.weights], sort_keys=True, default=str).encode())
        h.update(self.data.fingerprint().encode())
        return h.hexdigest()[:24]


def point_spec(inputs_fingerprint: str, point: Point) -> str:
    """A key for ``--resume``: a finished row counts only if it was made from the same inputs."""
    from tinyprune.cache import stage_key

    board = {k: v for k, v in point.board.items() if k != "source"}
    return stage_key(f"sweep-point-{ROW_FORMAT}", inputs_fingerprint, board, point.flash_bytes, point.ram_bytes,
                     point.budget_source, point.seed)


_threads_set = False


def single_threaded() -> None:
    """One thread for torch, TensorFlow and BLAS in this process; no progress bars or TF chatter."""
    global _threads_set
    if _threads_set:
        return
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "TF_NUM_INTRAOP_THREADS",
                "TF_NUM_INTEROP_THREADS"):
        os.environ[var] = "1"
    os.environ["TINYPRUNE_PROGRESS"] = "0"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import threading

    from tqdm import tqdm

    tqdm.set_lock(threading.RLock())  # not tqdm's default multiprocessing lock: a killed worker leaks none
    import torch

    torch.set_num_threads(1)
    with contextlib.suppress(RuntimeError):  # only settable before the first parallel work
        torch.set_num_interop_threads(1)
    import tensorflow as tf

    with contextlib.suppress(RuntimeError):  # only settable before TensorFlow's context starts
        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    _threads_set = True


@contextlib.contextmanager
def _output_to(path: Path) -> Iterator[None]:
    """Send this process's stdout and stderr (and its children's: gcc, QEMU) to ``path``."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(path, "wb") as f:
        os.dup2(f.fileno(), 1)
        os.dup2(f.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)


def board_from_dict(d: dict):
    from tinyprune.boards import Board

    names = {f.name for f in dataclasses.fields(Board)}
    values = {k: v for k, v in d.items() if k in names}
    values["defaulted"] = tuple(values.get("defaulted") or ())
    return Board(**values)


def _load_model(inputs: SweepInputs):
    import torch

    from tinyprune.models import ModelInfo

    raw = dict(inputs.model_info)
    raw["input_shape"] = tuple(raw["input_shape"]) if raw.get("input_shape") else None
    info = ModelInfo(**raw)
    module = info.factory_module
    if inputs.factory_source is not None and module and module not in sys.modules:
        import importlib.util

        path = Path(tempfile.mkdtemp(prefix="tinyprune-model-")) / f"{module}.py"
        path.write_bytes(inputs.factory_source)
        spec = importlib.util.spec_from_file_location(module, path)
        sys.modules[module] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules[module])
    model = torch.load(io.BytesIO(inputs.model_bytes), map_location="cpu", weights_only=False).eval()
    return model, info


def _worker_cache(inputs: SweepInputs):
    from tinyprune.cache import StageCache
    from tinyprune.data import cache_dir

    if not inputs.use_cache:
        return StageCache(None)
    return StageCache(Path(inputs.cache_dir) if inputs.cache_dir else cache_dir() / "stages")


def _deploy_point(inputs: SweepInputs, point: Point, work: Path, say) -> tuple[dict, dict[str, bytes]]:
    """(report, files) of one deploy, everything in memory."""
    from tinyprune import deploy_report
    from tinyprune.convert import ConvertConfig
    from tinyprune.deploy import DeployConfig, deploy
    from tinyprune.prune import Budget, PruneConfig
    from tinyprune.report import to_json

    start = time.monotonic()
    model, info = _load_model(inputs)
    board = board_from_dict(point.board)
    cfg = DeployConfig(prune=PruneConfig(**inputs.prune | {"seed": point.seed}),
                       convert=ConvertConfig(**inputs.convert | {"seed": point.seed}), **inputs.deploy)
    cache = _worker_cache(inputs)
    budget = Budget(point.flash_bytes, point.ram_bytes, point.budget_source)
    outcome = deploy(model, info, inputs.data, inputs.shape, inputs.task, board, budget, cfg, cache, work, say=say)
    report = outcome.report | {"weights": inputs.weights, "cache_dir": str(cache.root) if cache.root else None,
                               "integration": point.integration, "sweep_point": point.id}
    report.setdefault("run", {})["seconds"] = round(time.monotonic() - start, 1)  # the one field that varies
    files = dict(outcome.files)
    files.update({"report.json": to_json(report).encode(), **deploy_report.documents(report)})
    return report, files


def run_point(inputs: SweepInputs, point: Point, spec: str = "") -> dict:
    """The job: deploy one point. Returns ``{"row", "run", "files", "log"}`` and never raises for
    a failed point (its row carries ``status: failed`` and the error). ``run`` says how long it
    took, where, and which stages came from the cache: everything that varies between runs."""
    single_threaded()
    start = time.monotonic()
    lines: list[str] = []

    def say(text: str) -> None:
        lines.append(f"[{time.monotonic() - start:7.1f} s] {text}")

    files: dict[str, bytes] = {}
    report = None
    error: BaseException | None = None
    with tempfile.TemporaryDirectory(prefix=f"tinyprune-{point.id}-") as tmp:
        captured = Path(tmp) / "output.txt"
        try:
            with _output_to(captured):
                report, files = _deploy_point(inputs, point, Path(tmp) / "work", say)
        except Exception as exc:  # a failed point is a result, not a crash of the sweep
            error = exc
            say(f"failed: {type(exc).__name__}: {exc}" + (f"\nhint: {exc.hint}" if getattr(exc, "hint", None) else ""))
            if not isinstance(exc, TinypruneError):
                lines.append(traceback.format_exc())
        output = captured.read_text(errors="replace") if captured.exists() else ""
    if output.strip():
        lines += ["", "---- output of the deploy ----", output]
    row = row_from_report(point, report) if report is not None else error_row(point, error)
    row["spec"] = spec
    row["opt_flag"] = inputs.opt_flag  # a failed point's too
    cached = sorted({stage for stages in ((report or {}).get("run") or {}).get("cached_stages") or [] for stage in stages})
    run = {"seconds": round(time.monotonic() - start, 1), "host": f"{socket.gethostname()}:{os.getpid()}",
           "cached": cached}
    return {"row": row, "run": run, "files": files, "log": "\n".join(lines) + "\n"}


def _base_row(point: Point) -> dict:
    b = point.board
    row = dict.fromkeys(ROW_FIELDS)
    row.update(id=point.id, board=b["name"], mcu=b["mcu"], core=b["core"], clock_hz=b["clock_hz"],
               board_flash_bytes=b["flash_bytes"], board_ram_bytes=b["ram_bytes"],
               flash_budget_bytes=point.flash_bytes, ram_budget_bytes=point.ram_bytes,
               budget_source=point.budget_source, seed=point.seed)
    return row


def row_from_report(point: Point, r: dict) -> dict:
    s, sp, acc = r["sizes"], r["speed"], r["accuracy"]
    row = _base_row(point)
    row.update(status="ok" if r["fits"] and r["bit_exact"] else "failed", fits=bool(r["fits"]),
               bit_exact=bool(r["bit_exact"]), metric=r["metric"], accuracy_target=acc["target"],
               metric_target=metric_on_target(r),
               accuracy_float=acc["float"], accuracy_pruned=acc["pruned"], accuracy_int8=acc["int8_tflite"],
               samples=r["samples"], flash_bytes=s["flash_bytes"], flash_free_bytes=s["flash_free_bytes"],
               ram_bytes=s["ram_bytes"], ram_free_bytes=s["ram_free_bytes"], model_bytes=s["model_bytes"],
               arena_bytes=s["arena_bytes"], params=r["prune"]["params_after"], macs=sp["macs_per_inference"],
               instructions_per_inference=sp["instructions_per_inference"],
               estimated_latency_ms=sp["estimated_latency_ms"], passed_through=r["prune"]["passed_through"],
               attempts=len(r.get("attempts") or []))
    return row


def error_row(point: Point, exc: BaseException | None, kind: str | None = None) -> dict:
    """The row of a point that did not produce a deploy: a tinyprune error means the point does
    not fit (``fits: false``); anything else (a crash) leaves ``fits`` unknown."""
    row = _base_row(point)
    message = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
    hint = getattr(exc, "hint", None)
    row.update(status="failed", fits=False if isinstance(exc, TinypruneError) else None,
               error_kind=kind or type(exc).__name__, error=message + (f" (hint: {hint})" if hint else ""))
    return row


# ---- the output directory -------------------------------------------------------------------------

class SweepDir:
    """DIR of a sweep; see the module docstring for the layout."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.points = self.root / POINTS_DIR

    @classmethod
    def prepare(cls, root: Path, force: bool, resume: bool) -> "SweepDir":
        """Create DIR, or reopen it (``resume``), or empty it (``force``; the stage cache is kept)."""
        from tinyprune.cache import DIR_NAME
        from tinyprune.outdir import MARKER

        root = Path(root)
        if force and resume:
            raise BadInput("--force and --resume contradict each other",
                           hint="--resume continues DIR; --force starts it over")
        if root.exists():
            if not root.is_dir() or not (root / MARKER).exists():
                raise BadInput(f"{root} exists and was not created by tinyprune; refusing to write into it",
                               hint="choose another --out")
            if force:
                for child in root.iterdir():
                    if child.name not in (DIR_NAME, MARKER):
                        shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
            elif not resume:
                raise BadInput(f"output directory {root} already exists",
                               hint="--resume continues that sweep (finished points are skipped); "
                                    "--force starts it over; or choose another --out")
        else:
            try:
                root.mkdir(parents=True)
            except OSError as exc:
                raise BadInput(f"cannot create {root}: {exc.strerror}") from None
            (root / MARKER).write_text("written by tinyprune sweep; `--force` may replace this directory\n")
        d = cls(root)
        d.points.mkdir(exist_ok=True)
        return d

    def finished(self, points: list[Point], specs: dict[str, str]) -> tuple[dict[str, dict], list[str]]:
        """({id: {"row", "run"}} of points finished with the same inputs, [ids recorded with other inputs])."""
        done, stale = {}, []
        for point in points:
            path = self.points / f"{point.id}.json"
            try:
                row = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            run = row.pop("run", {})
            complete = row.get("status") == "failed" or (self.points / point.id / "report.json").is_file()
            if row.get("spec") == specs[point.id] and complete:
                done[point.id] = {"row": row, "run": run}
            else:
                stale.append(point.id)
        return done, stale

    def record(self, point: Point, result: dict) -> None:
        """Write a point's files, then its log, then its row (the commit: ``--resume`` trusts it)."""
        from tinyprune.outdir import staged_output, write_file_atomic, write_files

        target = self.points / point.id
        if result["files"]:
            with staged_output(target, force=True) as tmp:
                write_files(tmp, result["files"])
        elif target.exists():  # an earlier, different run of this point left it: it no longer applies
            shutil.rmtree(target)
        write_file_atomic(self.points / f"{point.id}.log", result["log"])
        row = result["row"] | {"run": result["run"]}
        write_file_atomic(self.points / f"{point.id}.json", json.dumps(row, indent=2) + "\n")

    def write(self, name: str, data: bytes | str) -> None:
        from tinyprune.outdir import write_file_atomic

        write_file_atomic(self.root / name, data)
