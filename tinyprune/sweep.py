"""Sweeps: many independent deploys over a grid of boards x budgets x seeds.

    points = expand_grid(boards, flash=[48 * 1024, 96 * 1024], ram=None, seeds=[0, 1], out=Path("runs/s"))
    inputs = SweepInputs(model_bytes, model_info, data, shape, task, prune, convert, deploy, weights, cache_dir)
    result = run_point(inputs, points[0])      # the job: {"row": {...}, "files": {name: bytes}, "log": str}

    with EXECUTORS["local"](jobs=2).start(inputs) as ex:   # or "ray"
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
written last: the point is finished once it exists, so ``--resume`` skips it). ``summarise`` turns
the rows into per-configuration figures, the Pareto front of the model's metric (accuracy, or the
MSE of an autoencoder: lower is better) against the flash budget, its knee and the recommended board.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import dataclasses
import hashlib
import io
import json
import logging
import multiprocessing
import os
import pickle
import shutil
import signal
import socket
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from tinyprune.errors import BadInput, TinypruneError, ToolMissing
from tinyprune.quality import THRESHOLD_OPTIONS, fmt_metric, higher_is_better, meets, metric_name, metric_on_target

POINTS_DIR = "points"
ROW_FIELDS = (  # sweep.csv's columns, in order; every row has every key
    "id", "board", "mcu", "core", "clock_hz", "board_flash_bytes", "board_ram_bytes", "flash_budget_bytes",
    "ram_budget_bytes", "budget_source", "seed", "opt_flag", "status", "fits", "bit_exact", "metric", "accuracy_target",
    "metric_target", "accuracy_float", "accuracy_pruned", "accuracy_int8", "samples", "flash_bytes", "flash_free_bytes",
    "ram_bytes", "ram_free_bytes", "model_bytes", "arena_bytes", "params", "macs", "instructions_per_inference",
    "estimated_latency_ms", "passed_through", "attempts", "error_kind", "error", "spec",
)  # a row is a function of the point's inputs; how long it took and where it ran go in its ``run``
ROW_FORMAT = 2  # part of a point's --resume key: rows of another format (2: metric_target) are redone
DEFAULT_ACCURACY_SLACK = 0.01  # without --min-accuracy: the best point's accuracy less one point
DEFAULT_ERROR_SLACK = 0.10  # without --max-mse: the best point's MSE plus 10 %


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


def _size_tag(n: int) -> str:
    return f"{n // 1024}K" if n % 1024 == 0 else str(n)


def point_id(board: str, flash: int, ram: int, seed: int) -> str:
    return f"{board}_flash-{_size_tag(flash)}_ram-{_size_tag(ram)}_seed-{seed}"


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
                                   + ([f"--flash {_size_tag(f)}"] if flash else [])
                                   + ([f"--ram {_size_tag(r)}"] if ram else []))
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
    images = deploy_report.plots(report)
    content = deploy_report.blocks(report)
    files.update({"report.json": to_json(report).encode(), "report.md": deploy_report.to_markdown(content).encode(),
                  "report.html": deploy_report.to_html(content, images).encode(), **images})
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


# ---- executors ------------------------------------------------------------------------------------

_inputs: SweepInputs | None = None  # a local worker's copy, set by _init_local_worker


def _ignore(signum, frame) -> None:
    """A Python-level no-op handler: unlike SIG_IGN it is not inherited by the programs a job runs
    (gcc, QEMU), so Ctrl-C still stops those, while the driver decides what happens to the pool."""


def _init_local_worker(pickled_inputs: bytes) -> None:
    """Pool initializer: single-threaded before the heavy imports; Ctrl-C is the driver's to handle."""
    global _inputs
    signal.signal(signal.SIGINT, _ignore)
    single_threaded()
    _inputs = pickle.loads(pickled_inputs)


def _run_local(point: Point, spec: str) -> dict:
    assert _inputs is not None, "the pool's initializer did not run"
    return run_point(_inputs, point, spec)


class LocalExecutor:
    """A pool of ``jobs`` processes on this machine (``spawn``: fresh interpreters, no forked
    threads); the stage cache in DIR is shared between them."""

    name = "local"
    shares_filesystem = True

    def __init__(self, jobs: int, address: str | None = None):
        if address:
            raise BadInput("--ray-address needs --executor ray")
        self.slots = jobs
        self._pool: cf.ProcessPoolExecutor | None = None
        self._pickled = b""

    def describe(self) -> str:
        return f"local process pool, {self.slots} job(s)"

    @contextlib.contextmanager
    def start(self, inputs: SweepInputs) -> Iterator["LocalExecutor"]:
        self._pickled = pickle.dumps(inputs)
        try:
            yield self
        except BaseException:
            self._close(abort=True)
            raise
        self._close(abort=False)

    def _new_pool(self) -> cf.ProcessPoolExecutor:
        return cf.ProcessPoolExecutor(self.slots, mp_context=multiprocessing.get_context("spawn"),
                                      initializer=_init_local_worker, initargs=(self._pickled,))

    def submit(self, point: Point, spec: str):
        if self._pool is None:
            self._pool = self._new_pool()
        try:
            return self._pool.submit(_run_local, point, spec)
        except cf.BrokenExecutor:  # a worker died earlier: start a fresh pool for the rest
            self._close(abort=True)
            self._pool = self._new_pool()
            return self._pool.submit(_run_local, point, spec)

    def wait(self, handles: list) -> list[tuple[Any, Any]]:
        done, _ = cf.wait(handles, return_when=cf.FIRST_COMPLETED)
        out = []
        for future in done:
            try:
                out.append((future, future.result()))
            except cf.BrokenExecutor as exc:
                out.append((future, WorkerLost(f"a worker process died ({exc})")))
            except BaseException as exc:  # noqa: BLE001 - the driver records it as the point's error
                out.append((future, exc))
        return out

    def _close(self, abort: bool) -> None:
        pool, self._pool = self._pool, None
        if pool is None:
            return
        if abort:  # Ctrl-C or a broken pool: do not wait for running points
            processes = list((getattr(pool, "_processes", None) or {}).values())
            pool.shutdown(wait=False, cancel_futures=True)
            for proc in processes:
                with contextlib.suppress(Exception):
                    proc.terminate()
            for proc in processes:
                with contextlib.suppress(Exception):
                    proc.join(5)
            with contextlib.suppress(Exception):
                pool.shutdown(wait=True)  # lets the pool release its queues now that its workers are gone
        else:
            pool.shutdown(wait=True)


class WorkerLost(Exception):
    """The process or machine running a point went away; the point is not recorded, so
    ``--resume`` runs it again."""


def _ray_task(inputs: SweepInputs, point: Point, spec: str) -> dict:
    return run_point(inputs, point, spec)


class RayExecutor:
    """Ray tasks (``num_cpus=1`` each). No address: start a local instance with ``jobs`` CPUs;
    ``auto`` or ``host:port``: join that cluster. Workers get the inputs from the object store
    and return their files as bytes, so they need no shared file system."""

    name = "ray"

    def __init__(self, jobs: int | None, address: str | None = None):
        try:
            import ray  # noqa: F401
        except ImportError:
            raise ToolMissing("--executor ray needs the ray package",
                              hint="pip install 'tinyprune[ray]' (the base ray package)") from None
        self.address = address
        self.shares_filesystem = address is None  # a local instance runs its workers on this machine
        self.slots = jobs or 0
        self._remote = None
        self._inputs_ref = None
        self._running: set = set()  # refs of tasks submitted and not yet collected

    def describe(self) -> str:
        where = f"cluster at {self.address}" if self.address else "local instance"
        at_once = f"{self.slots} task(s)" if self.slots else "one task per CPU of the cluster"
        return f"ray ({where}), {at_once} at a time"

    @contextlib.contextmanager
    def start(self, inputs: SweepInputs) -> Iterator["RayExecutor"]:
        import ray

        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no network calls from a local instance
        started = False
        if not ray.is_initialized():
            kwargs: dict[str, Any] = dict(include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
            try:
                if self.address:
                    ray.init(address=self.address, **kwargs)
                else:  # "local": a new instance even when `ray start` runs one on this machine
                    ray.init(address="local", num_cpus=self.slots or os.cpu_count(), **kwargs)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                if not self.address:
                    raise BadInput(f"cannot start a local Ray instance: {exc}") from None
                raise BadInput(f"cannot join the Ray cluster at {self.address}: {exc}",
                               hint="start one with `ray start --head`, or leave --ray-address out to start a "
                                    "local instance; a cluster with token authentication (Ray's default) also "
                                    "needs RAY_AUTH_MODE=token here, see Ray's token-auth docs") from None
            started = True
        try:
            if not self.slots:
                self.slots = max(1, int(ray.cluster_resources().get("CPU", 1)))
            self._remote = ray.remote(num_cpus=1, max_retries=1)(_ray_task)
            self._inputs_ref = ray.put(inputs)
            yield self
        except BaseException:
            for ref in list(self._running):
                with contextlib.suppress(Exception):
                    ray.cancel(ref, force=True)
            raise
        finally:
            self._running.clear()
            if started:
                ray.shutdown()

    def submit(self, point: Point, spec: str):
        ref = self._remote.remote(self._inputs_ref, point, spec)
        self._running.add(ref)
        return ref

    def wait(self, handles: list) -> list[tuple[Any, Any]]:
        import ray
        from ray.exceptions import RayTaskError

        ready, _ = ray.wait(handles, num_returns=1)
        out = []
        for ref in ready:
            self._running.discard(ref)
            try:
                out.append((ref, ray.get(ref)))
            except RayTaskError as exc:
                out.append((ref, exc.as_instanceof_cause()))
            except Exception as exc:  # noqa: BLE001 - worker or node died, object lost
                out.append((ref, WorkerLost(f"Ray lost the task: {type(exc).__name__}: {exc}")))
        return out


EXECUTORS = {"local": LocalExecutor, "ray": RayExecutor}


def execute(executor, inputs: SweepInputs, points: list[Point], specs: dict[str, str], on_done,
            on_status=lambda running: None) -> None:
    """Run ``points`` with at most ``executor.slots`` in flight; ``on_done(point, result_or_exception)``
    is called in the driver as each finishes, in completion order."""
    with executor.start(inputs) as ex:
        pending = list(points)
        in_flight: dict[Any, Point] = {}
        while pending or in_flight:
            while pending and len(in_flight) < ex.slots:
                point = pending.pop(0)
                in_flight[ex.submit(point, specs[point.id])] = point
            on_status(len(in_flight))
            for handle, outcome in ex.wait(list(in_flight)):
                on_done(in_flight.pop(handle), outcome)
            on_status(len(in_flight))


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


# ---- what the rows say ----------------------------------------------------------------------------

@dataclass
class Config:
    """One (board, flash budget, RAM budget) over its seeds."""

    board: str
    flash_budget_bytes: int
    ram_budget_bytes: int
    board_cost_bytes: int  # the board's flash + RAM, as listed in boards/
    rows: list[dict] = field(default_factory=list)

    @property
    def key(self) -> str:
        return f"{self.board}_flash-{_size_tag(self.flash_budget_bytes)}_ram-{_size_tag(self.ram_budget_bytes)}"

    @property
    def fits(self) -> bool:
        """Every seed ran and fits."""
        return bool(self.rows) and all(r["status"] == "ok" and r["fits"] for r in self.rows)

    def _values(self, key: str) -> list[float]:
        return [r[key] for r in self.rows if r["status"] == "ok" and r.get(key) is not None]

    def mean(self, key: str) -> float | None:
        values = self._values(key)
        return sum(values) / len(values) if values else None

    def least(self, key: str) -> float | None:
        values = self._values(key)
        return min(values) if values else None

    @property
    def metric(self) -> str:
        return next((r["metric"] for r in self.rows if r.get("metric")), "accuracy")

    @property
    def accuracy(self) -> float | None:
        return self.mean("accuracy_target") if self.fits else None

    @property
    def value(self) -> float | None:
        """The mean of the metric on the target over the seeds, when every seed fits."""
        return self.mean("metric_target") if self.fits else None

    @property
    def score(self) -> float | None:
        """``value`` made higher-is-better (an error counts negated): what the front, knee and
        recommendation compare."""
        v = self.value
        return None if v is None else v if higher_is_better(self.metric) else -v

    def worst(self) -> float | None:
        """The metric at the worst seed, when every seed fits."""
        values = self._values("metric_target") if self.fits else []
        if not values:
            return None
        return min(values) if higher_is_better(self.metric) else max(values)

    def errors(self) -> list[str]:
        return sorted({r["error"] for r in self.rows if r.get("error")})

    def to_dict(self) -> dict:
        return {"key": self.key, "board": self.board, "flash_budget_bytes": self.flash_budget_bytes,
                "ram_budget_bytes": self.ram_budget_bytes, "board_cost_bytes": self.board_cost_bytes,
                "seeds": [r["seed"] for r in self.rows], "fits": self.fits, "accuracy_mean": self.accuracy,
                "accuracy_min": self.least("accuracy_target") if self.fits else None,
                "metric": self.metric, "metric_mean": self.value, "metric_worst": self.worst(),
                "flash_free_bytes_min": self.least("flash_free_bytes"),
                "ram_free_bytes_min": self.least("ram_free_bytes"),
                "estimated_latency_ms_mean": self.mean("estimated_latency_ms"), "errors": self.errors()}


def configs(rows: list[dict]) -> list[Config]:
    """Rows grouped by (board, flash budget, RAM budget), in the order they first appear."""
    out: dict[tuple, Config] = {}
    for r in rows:
        k = (r["board"], r["flash_budget_bytes"], r["ram_budget_bytes"])
        if k not in out:
            out[k] = Config(r["board"], r["flash_budget_bytes"], r["ram_budget_bytes"],
                            r["board_flash_bytes"] + r["board_ram_bytes"])
        out[k].rows.append(r)
    return list(out.values())


def pareto_front(cfgs: list[Config]) -> list[Config]:
    """Configurations that fit and that no other beats on both counts (a smaller or equal flash
    budget with an equal or better mean metric: higher accuracy, lower MSE), by flash budget."""
    scored = sorted((c for c in cfgs if c.score is not None),
                    key=lambda c: (c.flash_budget_bytes, -c.score, c.board_cost_bytes, c.key))
    front: list[Config] = []
    for c in scored:
        if not front or c.score > front[-1].score:
            front.append(c)
    return front


def knee(front: list[Config]) -> tuple[Config | None, str]:
    """The knee of the metric-vs-flash-budget front (Kneedle: both axes scaled to 0..1, the point
    farthest above the chord from the smallest to the largest budget), and why."""
    if len(front) < 3:
        return None, f"the Pareto front has {len(front)} point(s); a knee needs at least 3 budgets"
    x0, x1 = front[0].flash_budget_bytes, front[-1].flash_budget_bytes
    y0, y1 = front[0].score, front[-1].score
    gains = [((c.score - y0) / (y1 - y0)) - ((c.flash_budget_bytes - x0) / (x1 - x0)) for c in front]
    best = max(range(len(front)), key=lambda i: (gains[i], -i))
    metric = front[0].metric
    if gains[best] <= 0:
        return None, f"{metric_name(metric)} improves no faster at small budgets than at large ones: no knee"
    more = _kib(x1 - front[best].flash_budget_bytes)
    if higher_is_better(metric):
        return front[best], (f"beyond it, {more} more flash buys {100 * (y1 - front[best].score):+.2f} points "
                             "of accuracy")
    return front[best], (f"beyond it, {more} more flash takes the {metric_name(metric)} from "
                         f"{fmt_metric(front[best].value, metric)} to {fmt_metric(front[-1].value, metric)}")


def _metric_of(cfgs: list[Config]) -> str:
    """The sweep's metric (every point's model is the same)."""
    return next((c.metric for c in cfgs), "accuracy")


def _meeting(metric: str, threshold: float) -> str:
    """What meeting the threshold means, to follow "boards that"."""
    if higher_is_better(metric):
        return f"reach {fmt_metric(threshold, metric)}"
    return f"keep the {metric_name(metric)} at or below {fmt_metric(threshold, metric)}"


def recommend(cfgs: list[Config], threshold: float | None) -> dict:
    """The cheapest board (smallest flash + RAM as listed in boards/) with a configuration that fits
    on every seed and meets ``threshold`` on average: an accuracy at least that high (--min-accuracy),
    an error such as MSE at most that high (--max-mse). Without a threshold: the best accuracy less
    one point, the best error plus 10 %."""
    scored = [c for c in cfgs if c.score is not None]
    metric = _metric_of(cfgs)
    better = higher_is_better(metric)
    source = THRESHOLD_OPTIONS.get(metric, "the threshold given")
    if threshold is None and scored:
        best = max(c.score for c in scored)
        if better:
            threshold = max(0.0, best - DEFAULT_ACCURACY_SLACK)
            source = f"the best accuracy ({fmt_metric(best, metric)}) less {100 * DEFAULT_ACCURACY_SLACK:g} point"
        else:
            threshold = -best * (1 + DEFAULT_ERROR_SLACK)
            source = (f"the best {metric_name(metric)} ({fmt_metric(-best, metric)}) plus "
                      f"{100 * DEFAULT_ERROR_SLACK:g} %")
    source = source if threshold is not None else None
    bar = {"metric": metric, "threshold": threshold, "threshold_source": source,
           # the keys of the classifiers' sweeps, from before error metrics had a bar
           "min_accuracy": threshold if better else None, "min_accuracy_source": source if better else None}
    if not scored:
        return {"board": None, **bar, "reason": "no point fits with a measured " + metric_name(metric)}
    good = [c for c in scored if meets(metric, c.value, threshold)]
    if not good:
        return {"board": None, **bar,
                "reason": f"no board fits on every seed and can, on average over them, {_meeting(metric, threshold)}"}
    cheapest = min(good, key=lambda c: (c.board_cost_bytes, c.board)).board
    pick = max((c for c in good if c.board == cheapest),
               key=lambda c: (c.score, (c.least("flash_free_bytes") or 0) + (c.least("ram_free_bytes") or 0)))
    boards_ok = sorted({c.board for c in good})
    return {"board": cheapest, "config": pick.key, **bar,
            "accuracy": pick.accuracy, "value": pick.value, "flash_budget_bytes": pick.flash_budget_bytes,
            "ram_budget_bytes": pick.ram_budget_bytes, "flash_free_bytes": pick.least("flash_free_bytes"),
            "ram_free_bytes": pick.least("ram_free_bytes"), "board_cost_bytes": pick.board_cost_bytes,
            "boards_meeting": boards_ok,
            "reason": f"the cheapest of {len(boards_ok)} board(s) that {_meeting(metric, threshold)}"}


def summarise(rows: list[dict], threshold: float | None) -> dict:
    """Per-configuration figures, the Pareto front, its knee and the recommendation; ``threshold``
    is --min-accuracy or --max-mse, whichever the model's metric takes (None: the default)."""
    cfgs = configs(rows)
    front = pareto_front(cfgs)
    k, why = knee(front)
    metric = _metric_of(cfgs)
    return {"metric": metric, "higher_is_better": higher_is_better(metric),
            "configs": [c.to_dict() for c in cfgs], "pareto": [c.key for c in front],
            "knee": {"config": k.key if k else None, "flash_budget_bytes": k.flash_budget_bytes if k else None,
                     "accuracy": k.accuracy if k else None, "value": k.value if k else None, "reason": why},
            "recommendation": recommend(cfgs, threshold),
            "points": len(rows), "ok": sum(r["status"] == "ok" for r in rows),
            "failed": sum(r["status"] != "ok" for r in rows)}


def rows_csv(rows: list[dict]) -> str:
    import csv

    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=ROW_FIELDS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: "" if r.get(k) is None else r[k] for k in ROW_FIELDS})
    return buf.getvalue()


def _kib(n: int) -> str:
    from tinyprune.sizes import format_size

    return format_size(int(n))
