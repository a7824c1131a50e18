"""The batch engine: jobs in, one run folder per job and a :class:`BatchReport` out, on Ray.

::

    name the jobs -> skip the finished ones -> start (or join) Ray -> one ClipWorker actor per worker
    -> hand each idle worker the next clip -> collect outcomes, progress events and dead workers
    -> batch.json + batch.csv after every clip

Failures stay with their clip: an error the session reports (an unreadable file, a bad option) is recorded
at once (it would fail the same way again); a worker that dies (killed, out of memory) or an unexpected
exception costs only that clip's current attempt: the clip is retried up to ``retries`` times on the next
free worker and a dead worker is replaced. A stop request (``should_stop``, Ctrl-C in the command) lets
the running clips end after their current frame with complete files and starts no other; a
``KeyboardInterrupt`` (a second Ctrl-C) ends them at once, and their folders stay as they were.
"""

from __future__ import annotations

import math
import os
import shutil
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ..io import SourceError, expected_count, probe
from ..options import OptionsError, RunOptions
from .inputs import BatchError, BatchJob, fingerprint, finished_run, name_jobs
from .report import BatchReport, ClipRecord, ProgressBar
from .worker import ClipEvent, ClipWorker, ProgressBoard, WorkerInfo

__all__ = ["WorkerPlan", "plan_workers", "run_batch", "start_local_ray"]

# Without --workers, a CPU node gets one worker per this many cores: each worker holds its own model (a
# real one is 2-5 GB of memory), so one per core would multiply the memory for little gain. A choice, not
# a measurement beyond 2 cores (benchmarks/batch_scaling.py compares worker counts on one machine).
CORES_PER_CPU_WORKER = 4
# environment variables a worker on another node needs to find what this one finds (the checkpoint
# cache, the Hugging Face cache and the SMPL-X folder); forwarded when joining a cluster
FORWARDED_ENV = ("HUMAN3R_CACHE", "HUMAN3R_SMPLX_DIR", "HF_HOME", "HF_HUB_CACHE", "HF_HUB_OFFLINE")
# how long the driver waits for a clip to end before it looks at stop requests again, and how often it
# collects the workers' frame counts (each collection is a call to the progress actor)
POLL_S = 0.1
EVENTS_EVERY_S = 0.5


@dataclass(frozen=True)
class WorkerPlan:
    """``workers`` actors, each with ``threads`` CPU cores (its torch threads) and ``gpus`` GPUs (0: CPU)."""

    workers: int
    threads: int
    gpus: float


def plan_workers(nodes: list[dict[str, float]], *, workers: int | None, gpus_per_task: float | None,
                 use_gpu: bool) -> WorkerPlan:
    """How many workers, and how many cores and GPUs each, so that they all fit the nodes at once.

    ``nodes``: each node's ``{"CPU": n, "GPU": n}``. On GPUs: one worker per GPU by default
    (``gpus_per_task`` < 1 packs several on one). On CPUs: one per :data:`CORES_PER_CPU_WORKER` cores by
    default. Either way each worker gets as many cores as lets every worker be placed, so workers x
    threads never exceed any node's cores."""
    cpus = [int(n.get("CPU", 0)) for n in nodes]
    gpus = [float(n.get("GPU", 0)) for n in nodes] if use_gpu else [0.0] * len(nodes)
    if use_gpu and sum(gpus) > 0:
        per_task = 1.0 if gpus_per_task is None else gpus_per_task
        if not 0 < per_task <= max(gpus):
            raise BatchError(f"--gpus-per-task must be above 0 and at most the GPUs of one node ({max(gpus):g}), got {per_task:g}")
        by_gpu = [math.floor(g / per_task + 1e-9) for g in gpus]
        count = sum(min(b, c) for b, c in zip(by_gpu, cpus)) if workers is None else workers
        if count > sum(by_gpu):
            raise BatchError(f"{count} workers of {per_task:g} GPU each do not fit the {sum(gpus):g} GPU(s) of this Ray cluster")
    else:
        per_task, by_gpu = 0.0, [10**9] * len(nodes)
        count = sum(max(1, c // CORES_PER_CPU_WORKER) for c in cpus if c) if workers is None else workers
    if count < 1:
        raise BatchError(f"--workers must be at least 1, got {count}")
    for threads in range(max(cpus, default=0), 0, -1):
        if sum(min(c // threads, b) for c, b in zip(cpus, by_gpu)) >= count:
            return WorkerPlan(count, threads, per_task)
    raise BatchError(f"{count} workers need at least one core each; this Ray cluster has {sum(cpus)} core(s)")


@dataclass
class _Task:
    index: int
    job: BatchJob
    options: RunOptions
    fingerprint: str
    frames: int | None  # expected (None: the source cannot tell)
    attempts: int = 0


def run_batch(
    jobs: list[BatchJob],
    options: RunOptions,
    out_dir: str | os.PathLike,
    *,
    ray: str = "local",
    workers: int | None = None,
    gpus_per_task: float | None = None,
    retries: int = 2,
    progress: bool = True,
    should_stop: Callable[[], bool] | None = None,
    on_event: Callable[[ClipEvent], None] | None = None,
) -> BatchReport:
    """Run every job into ``out_dir / job.name``; finished runs with the same options are skipped.

    Args:
        jobs: the sources (see :class:`BatchJob`; unnamed ones are named by :func:`name_jobs`).
        options: the options of every job (a job's ``options_override`` changes some of them).
        out_dir: the batch's folder: one run folder per job, plus ``batch.json`` and ``batch.csv``.
        ray: ``"local"`` (start Ray in this process, stopped at the end), ``"auto"`` (join the running
            cluster) or a cluster's address. A Ray already initialised in this process is used as it is.
        workers: how many workers (default: :func:`plan_workers`); gpus_per_task: GPUs per worker.
        retries: how many more times a clip is started after its worker died or raised.
        progress: show the progress bar; should_stop: asked between events: once it says True, the
            running clips end after their current frame and no other starts.
        on_event: called with every :class:`ClipEvent` (a clip's frame count, from its worker).

    Raises :class:`BatchError` (one line) when the batch cannot start at all; everything that goes wrong
    with one clip is in its :class:`ClipRecord`.
    """
    if retries < 0:
        raise BatchError(f"--retries must be 0 or more, got {retries}")
    jobs = name_jobs(list(jobs))
    if not jobs:
        raise BatchError("no inputs: give video files, image folders or a list file (one input a line)")
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise BatchError(f"cannot create the output folder {out_dir}: {err.strerror or err}") from None
    started = time.perf_counter()
    report = BatchReport([ClipRecord(str(job.source), job.name, str(out_dir / job.name)) for job in jobs], out_dir)
    tasks = []
    for index, job in enumerate(jobs):
        record = report.records[index]
        try:
            job_options = job.options(options)
        except OptionsError as err:
            record.ended("failed", error=str(err))
            continue
        key = fingerprint(job_options, job.source)
        found = finished_run(out_dir / job.name, key)
        if found is not None:
            record.ended("skipped", frames=int(found.get("frames", 0)))
            continue
        try:  # a source that cannot be opened fails here, without a worker (it would fail the same way there)
            frames = expected_count(probe(job.source).num_frames, job_options.subsample, job_options.max_frames)
        except SourceError as err:
            record.ended("failed", error=str(err))
            continue
        tasks.append(_Task(index, job, job_options, key, frames))
    try:
        if tasks:
            with _ray_session(ray):
                _Engine(tasks, report, workers=workers, gpus_per_task=gpus_per_task, retries=retries,
                        progress=progress, should_stop=should_stop or (lambda: False), on_event=on_event).run()
    except KeyboardInterrupt:
        pass  # while Ray or the workers started: every clip not ended is recorded as interrupted
    report.seconds = time.perf_counter() - started
    report.write()
    return report


def start_local_ray(num_cpus: int | None = None) -> None:
    """Start a Ray instance inside this process (``ray.shutdown()`` stops it), with ``num_cpus`` cores
    (default: those this process may use) and the GPUs Ray finds."""
    import ray

    # The workers import this package from where this process does, installed or not. Through the
    # environment Ray's processes inherit, not a runtime_env: its pre-started workers then serve the actors.
    package_root = str(Path(__file__).resolve().parents[2])
    search_path = os.environ.get("PYTHONPATH", "").split(os.pathsep)
    if package_root not in search_path:
        os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, *search_path) if p)
    ray.init(address="local", num_cpus=num_cpus or len(os.sched_getaffinity(0)), include_dashboard=False,
             log_to_driver=False)


@contextmanager
def _ray_session(address: str) -> Iterator[None]:
    """Ray for the batch: the one already initialised in this process, a new local one (stopped at the
    end) or a running cluster (left running)."""
    try:
        import ray
    except ImportError:
        raise BatchError("the batch command runs on Ray: pip install ray==2.60.0 (see requirements.txt)") from None
    if ray.is_initialized():
        yield
        return
    try:
        if address == "local":
            start_local_ray()
        else:
            ray.init(address=address, log_to_driver=False)
    except Exception as err:  # noqa: BLE001 - Ray raises plain Exception too (a raylet that did not start in time)
        where = ("start a local Ray" if address == "local" else "join the running Ray cluster" if address == "auto"
                 else f"join the Ray cluster at {address}")
        raise BatchError(f"cannot {where}: {str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__}") from None
    try:
        yield
    finally:
        ray.shutdown()


class _Engine:
    """The scheduling loop of one :func:`run_batch` (see the module's doc)."""

    def __init__(self, tasks: list[_Task], report: BatchReport, *, workers: int | None, gpus_per_task: float | None,
                 retries: int, progress: bool, should_stop: Callable[[], bool],
                 on_event: Callable[[ClipEvent], None] | None) -> None:
        import ray

        self.ray = ray
        self.report = report
        self.pending = deque(tasks)
        self.retries = retries
        self.should_stop = should_stop
        self.on_event = on_event
        use_gpu = gpus_per_task != 0 and any(not t.options.device.startswith("cpu") for t in tasks)
        nodes = [n["Resources"] for n in ray.nodes() if n.get("Alive")]
        # never more workers (each loads a model) than clips
        wanted = min(workers, len(tasks)) if workers is not None else None
        self.plan = plan_workers(nodes, workers=wanted, gpus_per_task=gpus_per_task, use_gpu=use_gpu)
        if self.plan.workers > len(tasks):
            self.plan = plan_workers(nodes, workers=len(tasks), gpus_per_task=gpus_per_task, use_gpu=use_gpu)
        self.forward_env = len(nodes) > 1  # a local worker inherits this process's environment
        self.board = ray.remote(ProgressBoard).options(num_cpus=0).remote()
        self.actors = [self._start_worker() for _ in range(self.plan.workers)]
        self.last_worker: dict[int, WorkerInfo] = {}
        self.events_taken = time.monotonic()
        self.events_every = POLL_S if on_event is not None else EVENTS_EVERY_S  # a listener gets them as they come
        self.bar = ProgressBar({t.index: t.frames for t in tasks}, disable=not progress)

    def _start_worker(self):
        env = {k: os.environ[k] for k in FORWARDED_ENV if k in os.environ}
        extra = {"runtime_env": {"env_vars": env}} if env and self.forward_env else {}
        actor = self.ray.remote(ClipWorker).options(num_cpus=self.plan.threads, num_gpus=self.plan.gpus,
                                                    max_concurrency=2, **extra)
        return actor.remote(self.plan.threads, self.board)

    def run(self) -> None:
        running: dict = {}  # ObjectRef -> (worker slot, task)
        idle = list(range(len(self.actors)))[::-1]
        stopping = False
        try:
            while self.pending or running:
                if not stopping and self.should_stop():
                    stopping = True
                    for actor in self.actors:
                        actor.stop.remote()
                while idle and self.pending and not stopping:
                    slot, task = idle.pop(), self.pending.popleft()
                    running[self._submit(slot, task)] = (slot, task)
                if not running:
                    break
                ready, _ = self.ray.wait(list(running), num_returns=1, timeout=POLL_S)
                if ready or time.monotonic() - self.events_taken >= self.events_every:
                    self._take_events()
                for ref in ready:
                    slot, task = running.pop(ref)
                    self._collect(ref, slot, task, stopping)
                    idle.append(slot)
        except KeyboardInterrupt:  # stop at once: the running clips' folders stay as they were
            for actor in self.actors:
                self.ray.kill(actor)
            self.ray.wait(list(running), num_returns=len(running), timeout=10)  # their workers are gone
            for _, task in running.values():
                _clear_leftovers(Path(self.report.records[task.index].run_dir))
        finally:
            self.bar.close()
            self.report.workers = sorted({r.worker for r in self.report.records if r.worker} |
                                         {w.name for w in self.last_worker.values()})
            for actor in self.actors:
                self.ray.kill(actor)
            self.ray.kill(self.board)

    def _submit(self, slot: int, task: _Task):
        task.attempts += 1
        record = self.report.records[task.index]
        record.attempts = task.attempts
        run_dir = Path(record.run_dir)
        _clear_leftovers(run_dir)
        metadata = {"source": str(task.job.source), "batch": {"fingerprint": task.fingerprint, "name": task.job.name}}
        return self.actors[slot].run.remote(task.index, str(task.job.source), task.options, str(run_dir), metadata)

    def _collect(self, ref, slot: int, task: _Task, stopping: bool) -> None:
        from ray.exceptions import RayError, RayTaskError

        record = self.report.records[task.index]
        worker = self.last_worker.get(task.index)
        try:
            result = self.ray.get(ref)
        except RayTaskError as err:  # an exception the session did not expect: the worker is fine
            cause = err.cause if isinstance(err.cause, BaseException) else err
            error = f"{type(cause).__name__}: {str(cause).strip().splitlines()[0] if str(cause).strip() else ''}"
        except RayError as err:  # the worker process died (killed, out of memory, its node lost)
            who = f"its worker {worker.name}" if worker is not None else "its worker"
            error = f"{who} died while running it ({type(err).__name__})"
            _clear_leftovers(Path(record.run_dir))
            self.ray.kill(self.actors[slot])
            self.actors[slot] = self._start_worker()
        else:
            worker = result.get("worker", worker)
            record.worker = worker.name if worker is not None else None
            record.device = result["device"]
            status = "failed" if result["error"] is not None else "interrupted" if result["stopped"] else "done"
            record.ended(status, result["frames"], result["seconds"], result["error"])
            self._ended(task, status)
            return
        record.worker = worker.name if worker is not None else record.worker
        if task.attempts <= self.retries and not stopping:
            self.pending.appendleft(task)  # next free worker
            self.bar.frames(task.index, 0, None)
            return
        record.ended("failed", error=error + (f" (after {task.attempts} attempts)" if task.attempts > 1 else ""))
        self._ended(task, "failed")

    def _ended(self, task: _Task, status: str) -> None:
        self.bar.clip(task.index, status, self.report.records[task.index].frames)
        self.report.write()

    def _take_events(self) -> None:
        self.events_taken = time.monotonic()
        for event in self.ray.get(self.board.take.remote()):
            self.last_worker[event.job] = event.worker
            self.bar.frames(event.job, event.done, event.total)
            if self.on_event is not None:
                self.on_event(event)


def _clear_leftovers(run_dir: Path) -> None:
    """Remove what an attempt killed mid-clip left beside ``run_dir``: its staging folder (and, if it died
    while moving the new run into place, put the previous run back)."""
    parent, name = run_dir.parent, run_dir.name
    if not parent.is_dir():
        return
    for entry in parent.iterdir():
        if entry.name.startswith(f".{name}.partial-"):
            shutil.rmtree(entry, ignore_errors=True)
    previous = sorted((e for e in parent.iterdir() if e.name.startswith(f".{name}.previous-")), key=lambda e: e.stat().st_mtime)
    if previous and not run_dir.exists():
        previous.pop().rename(run_dir)
    for entry in previous:
        shutil.rmtree(entry, ignore_errors=True)
