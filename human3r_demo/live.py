"""Live sessions: a video in; Rerun bytes, a status line and downloadable files out, frame by frame.

This is the app's engine, kept free of Gradio so it can be driven (and tested) directly:
:func:`run_session` is a generator of :class:`Update` s. Each update carries the Rerun bytes logged
for one frame (to stream into a viewer), a status for people, and at the end the exported files.
The recording is also teed to ``recording.rrd`` so it can be downloaded whole.
"""

from __future__ import annotations

import os
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import rerun as rr

from .body import HOW_TO_GET_SMPLX, BodyModel, BodyModelNotFound
from .checkpoints import TINY_RANDOM, CheckpointError, load_model
from .config import VARIANTS
from .export import Exporter
from .io import SourceError, frames, probe
from .model import Human3R
from .stream import Reconstructor
from .viz.rerun import RerunLogger, default_blueprint

__all__ = ["ModelCache", "RunOptions", "Update", "run_session", "MODEL_CHOICES"]

MODEL_CHOICES = [*VARIANTS, TINY_RANDOM]
APPLICATION_ID = "human3r_demo"


@dataclass
class RunOptions:
    """What the user can set for one run (defaults are the reference demo's)."""

    model: str = "human3r_672S"
    size: int = 512
    subsample: int = 1
    max_frames: int | None = None
    use_ttt3r: bool = True
    reset_interval: int | None = 100
    detection_threshold: float = 0.3
    confidence_threshold: float = 2.0
    point_budget: int = 20_000
    accumulate_points: bool = False


@dataclass
class Update:
    """One step of a session.

    Attributes:
        rrd: Rerun bytes to append to the viewer's stream (may be empty).
        status: one line for people: frame i of N, speed, people tracked.
        progress: fraction done in [0, 1] (``None`` when the length is unknown).
        files: the downloads, set on the last update of a run.
        error: a message for people when the run could not start or had to stop.
    """

    rrd: bytes = b""
    status: str = ""
    progress: float | None = None
    files: list[Path] = field(default_factory=list)
    error: str | None = None


class ModelCache:
    """Loads each model once per process; remembers why one could not be loaded."""

    def __init__(self, device: str | None = None) -> None:
        self.device = device
        self._models: dict[str, Human3R] = {}
        self._lock = threading.Lock()

    def get(self, name: str) -> Human3R:
        with self._lock:
            if name not in self._models:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # the app shows its own banner for tiny-random
                    self._models[name] = load_model(name, device=self.device)
            return self._models[name]


def find_body_model() -> tuple[BodyModel | None, str | None]:
    """The SMPL-X layer if its file is installed, else ``(None, instructions)``."""
    try:
        return BodyModel(None), None
    except BodyModelNotFound:
        return None, HOW_TO_GET_SMPLX


def run_session(
    video: str | os.PathLike,
    options: RunOptions,
    workdir: str | os.PathLike,
    models: ModelCache,
    body: BodyModel | None,
    *,
    recording_id: str,
    should_stop: Callable[[], bool] = lambda: False,
) -> Iterator[Update]:
    """Reconstruct ``video``, yielding an :class:`Update` per frame and a last one with the files.

    Errors (unreadable video, weights that cannot be had) end the session with an update whose
    ``error`` says what happened; files written before a mid-video error are still offered.
    """
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        info = probe(video)
    except SourceError as err:
        yield Update(status="Could not read the upload.", error=str(err))
        return
    try:
        model = models.get(options.model)
        recon = Reconstructor(
            model,
            size=options.size,
            use_ttt3r=options.use_ttt3r,
            reset_interval=options.reset_interval,
            detection_threshold=options.detection_threshold,
            body_model=body,
        )
    except (CheckpointError, ValueError) as err:
        yield Update(status="Could not start.", error=str(err))
        return

    total = info.num_frames
    if total is not None:
        total = -(-total // options.subsample)
        total = min(total, options.max_frames) if options.max_frames else total
    fps_out = info.fps / options.subsample if info.fps else None

    rec = rr.RecordingStream(APPLICATION_ID, recording_id=recording_id)
    stream = rec.binary_stream()
    rrd_path = workdir / "recording.rrd"
    rec.set_sinks(rr.FileSink(str(rrd_path)), stream)
    rec.send_blueprint(default_blueprint(options.accumulate_points))
    faces = body.faces if body is not None else None
    logger = RerunLogger(rec, faces, confidence_threshold=options.confidence_threshold, point_budget=options.point_budget)
    exporter = Exporter(
        workdir / "exports",
        fps=fps_out,
        faces=faces,
        confidence_threshold=options.confidence_threshold,
        metadata={"source": Path(video).name, "model": options.model,
                  "random_weights": bool(getattr(model, "is_random", False)), "size": options.size},
    )
    tracks: set[int] = set()
    done, started, error = 0, time.perf_counter(), None
    try:
        for frame in frames(video, subsample=options.subsample, max_frames=options.max_frames):
            if should_stop():
                break
            tick = time.perf_counter()
            result = recon.process(frame.rgb, frame.index, frame.timestamp)
            speed = 1.0 / max(time.perf_counter() - tick, 1e-6)
            logger.log(result, fps=speed)
            exporter.add(result)
            tracks.update(result.track_ids)
            done += 1
            yield Update(
                rrd=stream.read() or b"",
                status=_status(done, total, speed, result.num_people, len(tracks)),
                progress=done / total if total else None,
            )
    except (SourceError, ValueError) as err:
        error = str(err)
    finally:  # also when the consumer stops early (Stop button): files stay complete
        files = exporter.close()
        rec.flush()
        rec.disconnect()
    tail = stream.read() or b""
    downloads = [rrd_path] + [files[k] for k in ("smplx", "scene", "cameras", "intrinsics", "glb", "summary") if k in files]
    elapsed = time.perf_counter() - started
    status = (
        f"Done: {done} frame(s) in {elapsed:.1f} s ({done / max(elapsed, 1e-6):.2f} FPS), {len(tracks)} people tracked."
        if error is None
        else f"Stopped after {done} frame(s)."
    )
    yield Update(rrd=tail, status=status, progress=1.0 if error is None else None, files=downloads, error=error)


def _status(done: int, total: int | None, fps: float, people: int, tracks: int) -> str:
    of = f" of {total}" if total else ""
    return f"Frame {done}{of} · {fps:.2f} FPS · {people} in view · {tracks} people tracked"
