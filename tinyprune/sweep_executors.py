"""Where a sweep's points run: ``LocalExecutor`` (a pool of processes on this machine) or
``RayExecutor`` (a Ray cluster), both behind ``EXECUTORS``; ``execute`` keeps a bounded number of
points in flight and hands each result to the driver as it finishes. Each job is
``tinyprune.sweep.run_point``."""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import logging
import multiprocessing
import os
import pickle
import signal
from typing import Any, Iterator

from tinyprune.errors import BadInput, ToolMissing
from tinyprune.sweep import Point, SweepInputs, run_point, single_threaded

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
