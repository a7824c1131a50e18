"""The one session engine: a source and options in; per-frame progress, exports and one outcome out.

The command line and the app both run reconstructions through :class:`Session`::

    probe the source -> load the model (cached) -> Reconstructor -> per frame: log to Rerun, export
    -> close the exports -> move them into the output folder as one complete set

Everything that can go wrong ends the session with one line in :attr:`Outcome.error`; a stop
request (Stop button, Ctrl-C) ends it after the current frame with complete files.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .body import BodyModel, BodyModelError, BodyModelNotFound
from .checkpoints import CheckpointError, load_model
from .config import ConfigError, variant_name
from .device import DeviceError, resolve_device, resolve_precision
from .export import Exporter
from .io import SourceError, expected_count, frames, prefetch, probe
from .model import Human3R
from .options import OptionsError, RunOptions
from .render.context import RendererUnavailable
from .results import FrameResult
from .run_folder import RunFolder, RunFolderError
from .stream import Reconstructor

if TYPE_CHECKING:
    import rerun as rr

    from .viz.rerun import RerunLogger

__all__ = ["ModelCache", "Outcome", "Progress", "Session"]

# everything a session reports as one line instead of a traceback
EXPECTED_ERRORS = (SourceError, CheckpointError, BodyModelError, ConfigError, OptionsError, DeviceError, RunFolderError,
                   RendererUnavailable)


@dataclass
class Progress:
    """One processed frame.

    Attributes:
        result: the frame's result.
        done: frames processed so far; total: frames expected (``None`` when unknown).
        seconds: time this frame took (model, post-processing, logging and exports).
        tracks: people tracked so far.
    """

    result: FrameResult
    done: int
    total: int | None
    seconds: float
    tracks: int

    @property
    def status(self) -> str:
        of = f" of {self.total}" if self.total else ""
        return (f"Frame {self.done}{of} · {1 / max(self.seconds, 1e-6):.2f} FPS · "
                f"{self.result.num_people} in view · {self.tracks} people tracked")


@dataclass
class Outcome:
    """How a session ended.

    Attributes:
        frames: frames processed; seconds: wall time of the loop; tracks: people tracked.
        files: the exports, ``{kind: path}`` in the output folder.
        error: one line for people when the session could not start or had to end early.
        stopped: True when it ended on a stop request.
        notes: problems that did not stop it (a video that ended early), also in ``summary.json``.
    """

    frames: int = 0
    seconds: float = 0.0
    tracks: int = 0
    files: dict[str, Path] = field(default_factory=dict)
    error: str | None = None
    stopped: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def status(self) -> str:
        if self.error is not None:
            return f"Stopped after {self.frames} frame(s): {self.error}" if self.frames else f"Could not run: {self.error}"
        how = "Stopped" if self.stopped else "Done"
        return (f"{how}: {self.frames} frame(s) in {self.seconds:.1f} s ({self.frames / max(self.seconds, 1e-6):.2f} FPS), "
                f"{self.tracks} people tracked.")


def load(options: RunOptions) -> Human3R:
    """The model ``options`` name, in its device and precision, compiled if asked for."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # callers show their own notice for untrained models
        model = load_model(options.model, options.device, options.precision)
    if options.compile != "off":
        import torch

        model = torch.compile(model, mode=options.compile)
    return model


class ModelCache:
    """Keeps the most recently used models loaded (one by default: a real model is 2-5 GB).

    Models are keyed by what they resolve to - an official variant, a file's real path, an
    untrained model's name - with the device and precision, so two spellings of one checkpoint
    share one model; switching to another evicts the least recently used.
    """

    def __init__(self, capacity: int = 1) -> None:
        self.capacity = capacity
        self._models: dict[tuple[str, str, str, str], Human3R] = {}
        self._lock = threading.Lock()

    @staticmethod
    def key(options: RunOptions) -> tuple[str, str, str, str]:
        name = options.model
        resolved = variant_name(name) or (str(Path(name).resolve()) if Path(name).exists() else name)
        return resolved, options.device, options.precision, options.compile

    def get(self, options: RunOptions) -> Human3R:
        key = self.key(options)
        with self._lock:
            if key in self._models:
                self._models[key] = self._models.pop(key)  # most recently used last
                return self._models[key]
            while len(self._models) >= self.capacity:
                self._models.pop(next(iter(self._models)))
            self._models[key] = load(options)
            return self._models[key]

    def __len__(self) -> int:
        return len(self._models)


@dataclass
class _Run:
    """What one run of a :class:`Session` made before its first frame."""

    recon: Reconstructor
    total: int | None  # frames expected, None when unknown
    logger: RerunLogger | None = None
    exporter: Exporter | None = None


class Session:
    """One reconstruction run, as a generator of :class:`Progress`; :attr:`outcome` once it ends.

    Args:
        source: anything :func:`human3r_demo.io.frames` reads.
        options: the run's :class:`RunOptions`.
        out_dir: where the exports go (written in a staging folder and moved there whole when the
            run ends; see :class:`~human3r_demo.run_folder.RunFolder`); ``None`` for no exports.
        models: a :class:`ModelCache`, a loaded model, or ``None`` to load ``options.model``.
        body: ``"auto"`` (``options.smplx``, else the usual places, else no meshes), a
            :class:`BodyModel`, or ``None``.
        recording: a Rerun recording to log every frame into (``None``: no viewer).
        metadata: extra entries for ``summary.json``.
        live: the source delivers frames as they are captured (:mod:`human3r_demo.live`): nothing is
            decoded ahead (that would hold back stale frames), and the npz/BVH frame rate is the rate
            actually processed.
    """

    def __init__(
        self,
        source: object,
        options: RunOptions,
        out_dir: str | os.PathLike | None = None,
        *,
        models: ModelCache | Human3R | None = None,
        body: BodyModel | str | None = "auto",
        recording: rr.RecordingStream | None = None,
        metadata: dict | None = None,
        live: bool = False,
    ) -> None:
        self.source = source
        self.live = live
        self.options = options
        self.folder = RunFolder(out_dir) if out_dir is not None else None
        self.models = models
        self.body = body
        self.recording = recording
        self.metadata = dict(metadata or {})
        self.outcome: Outcome | None = None
        self.finalizing = False
        self._gl = None  # the run's OpenGL renderer, when it has one

    def run(self, should_stop: Callable[[], bool] = lambda: False) -> Iterator[Progress]:
        """Process the source frame by frame; :attr:`outcome` is set when the generator ends.

        ``should_stop`` is asked before every frame. A ``KeyboardInterrupt`` inside a frame (a second
        Ctrl-C) ends the session too; the files are completed either way. Everything that can be
        checked is checked before the model loads: device and precision, the source, the output
        folder and the SMPL-X file.
        """
        outcome = self.outcome = Outcome()
        run: _Run | None = None
        started = time.perf_counter()
        try:
            run = self._prepare(outcome)
            yield from self._frames(run, outcome, should_stop)
        except KeyboardInterrupt:
            outcome.stopped = True
        except GeneratorExit:  # the consumer went away (a closed browser tab): finish the files
            outcome.stopped = True
            self._finish(outcome, run and run.exporter, started)
            raise
        except EXPECTED_ERRORS as err:
            outcome.error = str(err)
        except OSError as err:
            outcome.error = self._os_error(err)
        self._finish(outcome, run and run.exporter, started)

    def _prepare(self, outcome: Outcome) -> _Run:
        """Check what can be checked cheaply (device, source, output folder, SMPL-X file, renderer),
        then load the model and make the reconstructor, the viewer's logger and the exporter."""
        device = resolve_device(self.options.device)
        resolve_precision(self.options.precision, device)
        info = probe(self.source)
        if self.folder is not None:
            self.folder.check()
        body = self._body(device)
        faces = body.faces if body is not None else None
        renderer = self._renderer(faces, outcome)
        model = self._model()
        run = _Run(recon=Reconstructor(model, self.options, body_model=body),
                   total=expected_count(info.num_frames, self.options.subsample, self.options.max_frames))
        if self.recording is not None:
            from .viz.rerun import RerunLogger

            run.logger = RerunLogger(self.recording, faces, self.options, renderer=renderer)
        if self.folder is not None:
            run.exporter = Exporter(
                self.folder.open(),
                fps=self._fps(info.fps),
                body=body,
                options=self.options,
                metadata={**self.metadata, "model": model.checkpoint_name, "random_weights": model.is_random,
                          "size": self.options.size, "precision": str(model.dtype).removeprefix("torch.")},
                renderer=renderer,
                frame_times=self.live,
            )
        return run

    def _frames(self, run: _Run, outcome: Outcome, should_stop: Callable[[], bool]) -> Iterator[Progress]:
        """The frame loop: reconstruct, log, export, count; a :class:`Progress` per frame."""
        source = frames(self.source, subsample=self.options.subsample, max_frames=self.options.max_frames,
                        notes=outcome.notes)
        stream = source if self.live else prefetch(source)
        tracks: set[int] = set()
        # closed here rather than when garbage-collected, so that a second Ctrl-C arriving while the
        # decoder stops is caught by run() like any other, not printed as an "ignored" traceback
        with contextlib.closing(stream):
            for frame in stream:
                if should_stop():
                    outcome.stopped = True
                    break
                tick = time.perf_counter()
                result = run.recon.process(frame.rgb, frame.index, frame.timestamp)
                if run.logger is not None:
                    run.logger.log(result, fps=1 / max(time.perf_counter() - tick, 1e-6))
                if run.exporter is not None:
                    run.exporter.add(result)
                tracks.update(result.track_ids)
                outcome.frames += 1
                outcome.tracks = len(tracks)
                yield Progress(result, outcome.frames, run.total, time.perf_counter() - tick, len(tracks))
        outcome.stopped = outcome.stopped or should_stop()  # a live source ends when it is stopped

    # ------------------------------------------------------------------ parts
    def _renderer(self, faces, outcome: Outcome):
        """The run's OpenGL renderer, made before the model loads: for the video (required: an error
        without it) and for the viewer's camera view (optional: without it the meshes are dots there)."""
        wants_video = self.options.render_video != "off" and self.folder is not None
        wants_view = self.recording is not None and faces is not None
        if not (wants_video or wants_view):
            return None
        from .render import GLRenderer, RendererUnavailable

        try:
            self._gl = GLRenderer()
        except RendererUnavailable as err:
            if wants_video:
                raise
            outcome.notes.append(f"the camera view shows the bodies as vertex dots, not shaded: {err}")
            return None
        return self._gl

    def _model(self) -> Human3R:
        if isinstance(self.models, Human3R):
            return self.models
        if isinstance(self.models, ModelCache):
            return self.models.get(self.options)
        return load(self.options)

    def _body(self, device) -> BodyModel | None:
        if self.body == "auto" and self.options.smplx is None:
            try:
                return BodyModel(None, device=device)
            except BodyModelNotFound:
                return None  # callers say so once (the CLI prints the instructions, the app a banner)
        if self.body == "auto":
            return BodyModel(self.options.smplx, device=device)
        return self.body

    def _fps(self, source_fps: float | None) -> float:
        """Frame rate of the exported frames: the source's (over the subsampling), else ``options.fps``, else 30."""
        if source_fps:
            return source_fps / self.options.subsample
        return self.options.fps or 30.0

    def _finish(self, outcome: Outcome, exporter: Exporter | None, started: float) -> None:
        """Complete the exports and move them into the output folder - unless there is nothing to show
        for the run (no frame processed), in which case the output folder is left exactly as it was.
        The run's renderer is released either way."""
        try:
            self._complete(outcome, exporter, started)
        finally:
            if self._gl is not None:
                self._gl.close()
                self._gl = None

    def _complete(self, outcome: Outcome, exporter: Exporter | None, started: float) -> None:
        self.finalizing = True
        outcome.seconds = time.perf_counter() - started
        if self.recording is not None:
            self.recording.flush()
        if exporter is None or outcome.frames == 0:
            if exporter is not None:
                exporter.discard()
            if self.folder is not None:
                self.folder.abort()
            return
        try:
            achieved = exporter.achieved_fps() if self.live else None
            if achieved is not None:  # live frames are taken as they come: their real average rate
                exporter.fps = achieved
                outcome.notes.append(f"live: the SMPL-X and BVH rows are the {outcome.frames} frames processed, at their "
                                     f"average rate of {achieved:.2f} FPS; their timestamps are the capture times")
            exporter.metadata.update(stopped=outcome.stopped, error=outcome.error, source_notes=outcome.notes)
            files = exporter.close()
            outcome.files = self.folder.commit(files)
        except OSError as err:
            exporter.discard()
            self.folder.abort()
            outcome.files = {}
            outcome.error = self._os_error(err, frames=outcome.frames)

    def _os_error(self, err: OSError, frames: int | None = None) -> str:
        """One line for a failed write: what failed, where, and that nothing was changed."""
        what = err.strerror or str(err)
        if self.folder is None:
            return what
        if frames is None:
            return f"{what} (writing the results for {self.folder.final})"
        return (f"{what} while writing the results of {frames} frame(s) next to {self.folder.final}: "
                f"nothing was kept, and {self.folder.final} is as it was before this run")
