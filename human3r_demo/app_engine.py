"""The app's engine, free of Gradio: an upload in; Rerun bytes, a status line and downloads out.

:func:`run_upload` drives one :class:`~human3r_demo.session.Session` with a Rerun recording whose
bytes stream into the embedded viewer frame by frame (and are teed to ``recording.rrd`` for the
download). It is what the app's Run button calls, and what the tests drive directly.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import rerun as rr

from .body import HOW_TO_GET_SMPLX, BodyModel, BodyModelNotFound
from .checkpoints import TINY_RANDOM
from .config import VARIANTS
from .options import RunOptions
from .session import ModelCache, Session
from .viz.rerun import default_blueprint

__all__ = ["APPLICATION_ID", "MODEL_CHOICES", "Update", "find_body_model", "run_upload"]

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
    """The SMPL-X layer if its file is installed, else ``(None, instructions)``."""
    try:
        return BodyModel(None), None
    except BodyModelNotFound:
        return None, HOW_TO_GET_SMPLX


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
