"""The app's engine, free of Gradio: an upload in; Rerun bytes, a status line and downloads out.

:func:`run_upload` drives one :class:`~human3r_demo.session.Session` with a Rerun recording whose
bytes stream into the embedded viewer frame by frame (and are teed to ``recording.rrd`` for the
download). It is what the app's Run button calls, and what the tests drive directly.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import rerun as rr

from .body import HOW_TO_GET_SMPLX, BodyModel, BodyModelError, BodyModelNotFound
from .checkpoints import TINY_RANDOM
from .config import VARIANTS
from .options import RunOptions
from .session import ModelCache, Session
from .viz.rerun import default_blueprint

__all__ = ["APPLICATION_ID", "MODEL_CHOICES", "Update", "VisitorSessions", "find_body_model", "run_upload"]

MODEL_CHOICES = [*VARIANTS, TINY_RANDOM]
APPLICATION_ID = "human3r_demo"
# the downloads, in the order the app lists them
DOWNLOADS = ("smplx", "scene", "cameras", "intrinsics", "glb", "summary")


@dataclass
class Update:
    """One step of a run, for the app.

    Attributes:
        rrd: Rerun bytes to append to the viewer's stream (may be empty).
        status: one line for people: frame i of N, speed, people tracked; or how the run ended.
        progress: fraction done in [0, 1] (``None`` when the length is unknown).
        files: the downloads, set on the last update of a run.
        error: a message for people when the run could not start or had to stop.
    """

    rrd: bytes = b""
    status: str = ""
    progress: float | None = None
    files: list[Path] = field(default_factory=list)
    error: str | None = None


def find_body_model() -> tuple[BodyModel | None, str | None]:
    """The SMPL-X layer if its file is installed and sound, else ``(None, why and what to do)``."""
    try:
        return BodyModel(None), None
    except BodyModelNotFound:
        return None, HOW_TO_GET_SMPLX
    except BodyModelError as err:  # e.g. a pickle under the SMPL-X name: refused, never loaded
        return None, str(err)


class VisitorSessions:
    """What the app keeps per visitor (a Gradio session): a folder for their files and the stop flag of
    their run. Nothing outlives the visit: when the visitor leaves, their run stops, their folder goes,
    and a job of theirs still waiting in the queue does not start.
    """

    def __init__(self, root: Path, forget_after: float = 3600.0) -> None:
        self.root = root
        self.forget_after = forget_after  # how long a departed visitor is remembered (their queued jobs)
        self._stops: dict[str, threading.Event] = {}
        self._gone: dict[str, float] = {}
        self._lock = threading.Lock()
        shutil.rmtree(root, ignore_errors=True)  # folders of an earlier server process

    def folder(self, session: str) -> Path:
        return self.root / session

    def start(self, session: str) -> threading.Event | None:
        """Register a run; its stop flag, or ``None`` if the visitor has already left (do not run)."""
        with self._lock:
            now = time.monotonic()
            self._gone = {s: t for s, t in self._gone.items() if now - t < self.forget_after}
            if session in self._gone:
                return None
            stop = self._stops[session] = threading.Event()
        shutil.rmtree(self.folder(session), ignore_errors=True)  # one run per visitor is kept on disk
        return stop

    def stop(self, session: str) -> bool:
        """Ask the visitor's run to stop after its current frame; False if nothing is running."""
        with self._lock:
            flag = self._stops.get(session)
        if flag is None:
            return False
        flag.set()
        return True

    def finish(self, session: str) -> None:
        """A run ended; if its visitor has left meanwhile, its files go now."""
        with self._lock:
            self._stops.pop(session, None)
            gone = session in self._gone
        if gone:
            shutil.rmtree(self.folder(session), ignore_errors=True)

    def leave(self, session: str) -> None:
        """The visitor left: stop their run, remove their files, refuse their queued jobs."""
        with self._lock:
            self._gone[session] = time.monotonic()
            flag = self._stops.get(session)
        if flag is not None:
            flag.set()
        shutil.rmtree(self.folder(session), ignore_errors=True)

    def running(self) -> list[str]:
        with self._lock:
            return list(self._stops)


def run_upload(
    video: str | os.PathLike,
    options: RunOptions,
    workdir: str | os.PathLike,
    models: ModelCache,
    body: BodyModel | None,
    *,
    recording_id: str,
    should_stop: Callable[[], bool] = lambda: False,
) -> Iterator[Update]:
    """Reconstruct ``video``, yielding an :class:`Update` per frame and a last one with the downloads."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    rec = rr.RecordingStream(APPLICATION_ID, recording_id=recording_id)
    stream = rec.binary_stream()
    rrd_path = workdir / "recording.rrd"
    rec.set_sinks(rr.FileSink(str(rrd_path)), stream)
    rec.send_blueprint(default_blueprint(options.accumulate_points))
    session = Session(video, options, workdir / "exports", models=models, body=body, recording=rec,
                      metadata={"source": Path(video).name})
    try:
        for progress in session.run(should_stop):
            yield Update(
                rrd=stream.read() or b"",
                status=progress.status,
                progress=progress.done / progress.total if progress.total else None,
            )
    finally:
        rec.flush()
        rec.disconnect()
    outcome = session.outcome
    files = [rrd_path] if outcome.frames else []
    files += [outcome.files[k] for k in DOWNLOADS if k in outcome.files]
    yield Update(
        rrd=stream.read() or b"",
        status=outcome.status,
        progress=1.0 if outcome.error is None and not outcome.stopped else None,
        files=files,
        error=outcome.error,
    )
