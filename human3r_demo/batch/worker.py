"""A batch worker: one Ray actor holding one model, running clip after clip through :class:`Session`.

The model is loaded on the worker's first clip and kept (:class:`~human3r_demo.session.ModelCache`), so a
worker pays the checkpoint load once, not once per clip. Each clip is written exactly as ``run`` writes it
(a staged run folder moved into place whole). The actor is threaded (two calls at a time) only so that
:meth:`ClipWorker.stop` can reach it while a clip runs: the clip then ends after its current frame, with
complete files, like ``run`` after a Ctrl-C.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from dataclasses import dataclass

from ..options import RunOptions

__all__ = ["ClipEvent", "ClipWorker", "ProgressBoard", "WorkerInfo"]

# a worker tells the driver its progress at most this often (and at a clip's first and last frame)
REPORT_EVERY_S = 0.25


@dataclass(frozen=True)
class WorkerInfo:
    """Who a worker is: ``host:pid`` names it in the records; ``pid`` is the process to kill to test retries."""

    host: str
    pid: int
    threads: int
    gpus: tuple[str, ...]

    @property
    def name(self) -> str:
        return f"{self.host}:{self.pid}"


@dataclass(frozen=True)
class ClipEvent:
    """Job ``job`` has processed ``done`` frames of ``total`` (``None``: unknown) on worker ``worker``."""

    job: int
    done: int
    total: int | None
    worker: WorkerInfo


class ProgressBoard:
    """Collects the workers' :class:`ClipEvent` until the driver takes them (a small Ray actor)."""

    def __init__(self) -> None:
        self.events: list[ClipEvent] = []

    def post(self, event: ClipEvent) -> None:
        self.events.append(event)

    def take(self) -> list[ClipEvent]:
        events, self.events = self.events, []
        return events


class ClipWorker:
    """Runs clips one after another on one device with one cached model.

    Args:
        threads: torch CPU threads of this worker (the batch keeps workers x threads within the cores).
        board: the :class:`ProgressBoard` actor that the frame counts go to.
    """

    def __init__(self, threads: int, board) -> None:
        import torch

        from ..session import ModelCache

        torch.set_num_threads(threads)
        self.board = board
        self.models = ModelCache()
        self.stopping = threading.Event()
        gpus = tuple(str(g) for g in _ray_gpu_ids())
        self.info = WorkerInfo(socket.gethostname(), os.getpid(), threads, gpus)

    def describe(self) -> WorkerInfo:
        return self.info

    def stop(self) -> None:
        """End the current clip after its current frame (with complete files) and take no other."""
        self.stopping.set()

    def run(self, job: int, source: str, options: RunOptions, run_dir: str, metadata: dict) -> dict:
        """Run one clip into ``run_dir``; returns how it ended (the session's :class:`Outcome`, in plain values).

        Errors the session expects (an unreadable source, a bad option) come back as ``error``; anything else
        raises, and the driver retries the clip."""
        from ..device import DeviceError, resolve_device
        from ..session import Session

        if self.stopping.is_set():
            return {"frames": 0, "seconds": 0.0, "error": None, "stopped": True, "device": None, "worker": self.info}
        session = Session(source, options, run_dir, models=self.models, metadata=metadata)
        last = 0.0
        for progress in session.run(should_stop=self.stopping.is_set):
            now = time.monotonic()
            if progress.done == 1 or progress.done == progress.total or now - last >= REPORT_EVERY_S:
                self.board.post.remote(ClipEvent(job, progress.done, progress.total, self.info))
                last = now
        outcome = session.outcome
        try:
            device = str(resolve_device(options.device))
        except DeviceError:
            device = None
        if device and device.startswith("cuda") and self.info.gpus:
            device += f" (GPU {','.join(self.info.gpus)} of {self.info.host})"
        return {"frames": outcome.frames, "seconds": outcome.seconds, "error": outcome.error,
                "stopped": outcome.stopped, "device": device, "worker": self.info}


def _ray_gpu_ids() -> list:
    import ray

    return ray.get_gpu_ids() if ray.is_initialized() else []
