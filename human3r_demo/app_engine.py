"""The app's engine, free of Gradio: an upload or a camera in; Rerun bytes, a status line and downloads out.

:func:`run_upload` drives one :class:`~human3r_demo.session.Session`, :func:`run_live` one
:class:`~human3r_demo.live.LiveSession` fed by the browser's camera, each with a Rerun recording whose
bytes stream into the embedded viewer frame by frame (and are teed to ``recording.rrd`` for the
download). They are what the app's buttons call, and what the tests drive directly.
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
from .live import LiveSession
from .options import RunOptions
from .session import ModelCache, Session
from .viz.rerun import default_blueprint

__all__ = ["APPLICATION_ID", "MODEL_CHOICES", "Update", "VisitorSessions", "find_body_model", "run_live", "run_upload"]

MODEL_CHOICES = [*VARIANTS, TINY_RANDOM]
APPLICATION_ID = "human3r_demo"
# the downloads, in the order the app lists them
DOWNLOADS = ("video", "gltf", "smplx", "bvh", "scene", "cameras", "intrinsics", "glb", "summary")


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
    """What the app keeps per visitor (a Gradio session): a folder for their files, the stop flag of
    their run and, while they reconstruct their camera, the live session their frames go to. Nothing
    outlives the visit: when the visitor leaves, their run stops, their folder goes, and a job of
    theirs still waiting in the queue does not start.
    """

    def __init__(self, root: Path, forget_after: float = 3600.0) -> None:
        self.root = root
        self.forget_after = forget_after  # how long a departed visitor is remembered (their queued jobs)
        self._stops: dict[str, threading.Event] = {}
        self._live: dict[str, LiveSession] = {}
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

    def attach_live(self, session: str, live: LiveSession) -> None:
        """The visitor's run is this live session: their camera frames go to it, a stop stops it."""
        with self._lock:
            self._live[session] = live
            stopped = session in self._gone or (session in self._stops and self._stops[session].is_set())
        if stopped:
            live.stop()

    def live(self, session: str) -> LiveSession | None:
        """The visitor's live session, if one is running (where their camera frames go)."""
        with self._lock:
            return self._live.get(session)

    def stop(self, session: str) -> bool:
        """Ask the visitor's run to stop after its current frame; False if nothing is running."""
        with self._lock:
            flag = self._stops.get(session)
            live = self._live.get(session)
        if flag is None:
            return False
        flag.set()
        if live is not None:
            live.stop()
        return True

    def finish(self, session: str) -> None:
        """A run ended; if its visitor has left meanwhile, its files go now."""
        with self._lock:
            self._stops.pop(session, None)
            self._live.pop(session, None)
            gone = session in self._gone
        if gone:
            shutil.rmtree(self.folder(session), ignore_errors=True)

    def leave(self, session: str) -> None:
        """The visitor left: stop their run, remove their files, refuse their queued jobs."""
        with self._lock:
            self._gone[session] = time.monotonic()
            flag = self._stops.get(session)
            live = self._live.get(session)
        if flag is not None:
            flag.set()
        if live is not None:
            live.stop()
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
    ground_truth: str | os.PathLike | None = None,
) -> Iterator[Update]:
    """Reconstruct ``video``, yielding an :class:`Update` per frame and a last one with the downloads.

    ``ground_truth``: the visitor's own ground truth for this clip, a TUM trajectory (``.txt``) or an npz of
    joints (``.npz``, see :mod:`human3r_demo.evaluation.own_truth`); the finished run is scored against it,
    and the per-frame errors are plotted in the viewer along the clip and offered as downloads.
    """
    kind = None
    if ground_truth is not None:
        kind = GROUND_TRUTH_KINDS.get(Path(ground_truth).suffix.lower())
        if kind is None:
            yield Update(status="Could not run.", error=f"the ground truth must be a TUM trajectory (.txt) or an npz "
                                                        f"of joints (.npz), not {Path(ground_truth).name}")
            return
        if kind == "bodies":  # bodies are scored from the per-frame predictions
            options = options.replace(export_predictions=True)
    viewer = _Viewer(workdir, recording_id, options, metric_units=GROUND_TRUTH_UNITS.get(kind, ()))
    session = Session(video, options, viewer.workdir / "exports", models=models, body=body, recording=viewer.rec,
                      metadata={"source": Path(video).name})
    try:
        for progress in session.run(should_stop):
            yield Update(rrd=viewer.read(), status=progress.status,
                         progress=progress.done / progress.total if progress.total else None)
        scored = _score(session.outcome, kind, ground_truth, viewer) if kind else None
    finally:
        viewer.close()
    last = viewer.last_update(session.outcome)
    if scored is not None:
        summary, files, error = scored
        last.status = f"{last.status} {summary}" if summary else last.status
        last.files += files
        last.error = last.error or error
    yield last


# the visitor's own ground truth, by file type: what it scores, and the units of its per-frame plots
GROUND_TRUTH_KINDS = {".txt": "tum", ".npz": "bodies"}
GROUND_TRUTH_UNITS = {"tum": ("m",), "bodies": ("mm", "percent")}


def _score(outcome, kind: str, ground_truth: str | os.PathLike, viewer: _Viewer) -> tuple[str, list[Path], str | None]:
    """Score a finished run against the visitor's ground truth and plot its per-frame errors in the
    recording: ``(one line of results, the result files, an error for people or None)``."""
    from .evaluation.own_truth import evaluate_run
    from .evaluation.runner import EvalError
    from .viz.metrics import log_metric_series

    if outcome.error is not None or not outcome.files:
        return "", [], None
    run_dir = next(iter(outcome.files.values())).parent
    try:
        scored = evaluate_run(kind, run_dir, ground_truth)
    except EvalError as err:
        return "", [], f"not scored against the ground truth: {err}"
    rows = [row for row in scored.per_frame if row.get("frame") is not None]
    names = [name for name in (rows[0] if rows else {}) if name not in ("frame", "time")]
    for name in names:
        log_metric_series(viewer.rec, name, [row[name] for row in rows], [row["frame"] for row in rows])
    values = ", ".join(f"{name} {value:.4g}" for name, value in scored.results["values"].items())
    return f"Against the ground truth: {values}.", sorted((run_dir / "eval").glob("*")), None


def run_live(
    options: RunOptions,
    workdir: str | os.PathLike,
    models: ModelCache,
    body: BodyModel | None,
    *,
    recording_id: str,
    on_start: Callable[[LiveSession], None] = lambda live: None,
) -> Iterator[Update]:
    """Reconstruct a camera as it films: ``on_start`` receives the :class:`~human3r_demo.live.LiveSession`
    to push frames into (and to stop); yields an :class:`Update` per processed frame and a last one
    with the downloads once it is stopped."""
    viewer = _Viewer(workdir, recording_id, options)
    live = LiveSession(options, viewer.workdir / "exports", models=models, body=body, recording=viewer.rec,
                       metadata={"source": "browser camera"})
    on_start(live)
    yield Update(status="Loading the model; start the camera and its frames will stream in.")
    try:
        for step in live.run():
            yield Update(rrd=viewer.read(), status=step.stats.status)
    finally:
        live.stop()
        viewer.close()
    last = viewer.last_update(live.outcome)
    stats = live.stats
    last.status = (f"{last.status} Live: {stats.processed} processed, {stats.dropped} dropped of "
                   f"{stats.received} frames received.")
    yield last


class _Viewer:
    """A run's Rerun recording: its bytes for the embedded viewer, teed to ``recording.rrd``."""

    def __init__(self, workdir: str | os.PathLike, recording_id: str, options: RunOptions,
                 metric_units: tuple[str, ...] = ()) -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.rec = rr.RecordingStream(APPLICATION_ID, recording_id=recording_id)
        self.stream = self.rec.binary_stream()
        self.rrd_path = self.workdir / "recording.rrd"
        self.rec.set_sinks(rr.FileSink(str(self.rrd_path)), self.stream)
        self.rec.send_blueprint(default_blueprint(options.accumulate_points, metric_units))

    def read(self) -> bytes:
        """What was logged since the last read."""
        return self.stream.read() or b""

    def close(self) -> None:
        self.rec.flush()
        self.rec.disconnect()

    def last_update(self, outcome) -> Update:
        """How the run ended, with its downloads."""
        files = [self.rrd_path] if outcome.frames else []
        files += [outcome.files[k] for k in DOWNLOADS if k in outcome.files]
        return Update(
            rrd=self.read(),
            status=outcome.status,
            progress=1.0 if outcome.error is None and not outcome.stopped else None,
            files=files,
            error=outcome.error,
        )
