"""Live reconstruction: frames arrive while the model works, and the newest one always wins.

Human3R is online by construction (one frame in, one result out, a state carried forward), so a
camera can feed it directly. A camera does not wait for the model, though: while one frame is being
reconstructed, several new ones arrive. :class:`LiveSource` keeps exactly one of them, the newest
(*latest frame wins*): older waiting frames are dropped and counted, nothing queues up, and the view
never falls behind the camera. :class:`LiveSession` runs the one session engine
(:class:`~human3r_demo.session.Session`) over such a source and reports what a live view needs:
frames processed per second, frames dropped, latency and people tracked.

Whoever owns the camera calls :meth:`LiveSession.push` (any thread, never blocks); whoever shows the
results iterates :meth:`LiveSession.run`; :meth:`LiveSession.stop` ends it after the current frame,
with the same exports as a recorded video. :func:`play` feeds a source (camera, stream URL, or a
video file played at its own frame rate to stand in for a camera) from a background thread.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .io import Frame, SourceError, frames, to_rgb
from .options import RunOptions
from .session import Outcome, Progress, Session

__all__ = ["LiveProgress", "LiveSession", "LiveSource", "LiveStats", "play"]

_POLL = 0.1  # seconds between checks for a stop while waiting for the next frame


class LiveSource:
    """An iterable of :class:`~human3r_demo.io.Frame` fed from other threads, newest frame first.

    :meth:`push` puts a frame in the one waiting slot, replacing (and counting as dropped) a frame
    nobody took yet. Iterating takes the waiting frame, or waits for one; it ends once :meth:`close`
    was called (a frame still waiting then is not processed). Frames keep their arrival order:
    indices count the frames pushed, timestamps are capture times in seconds from the first frame.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiting: tuple[Frame, float] | None = None  # the frame and its arrival (time.monotonic)
        self._closed = threading.Event()
        self._ended = threading.Event()
        self._error: Exception | None = None
        self.consuming = threading.Event()  # set when the consumer first asks for a frame (the model is ready)
        self._first_capture: float | None = None
        self.received = 0
        self.dropped = 0
        self.taken_arrival: float | None = None  # arrival time of the frame taken last

    def push(self, rgb: np.ndarray, capture_time: float | None = None) -> bool:
        """Offer a frame (H, W, 3) uint8 RGB captured at ``capture_time`` seconds (any clock; ``None``:
        now). Returns False once the source is closed. Never blocks on the model."""
        if self._closed.is_set():
            return False
        arrival = time.monotonic()
        capture = arrival if capture_time is None else float(capture_time)
        rgb = to_rgb(rgb, f"live frame {self.received}")
        with self._lock:
            if self._first_capture is None:
                self._first_capture = capture
            frame = Frame(rgb, self.received, capture - self._first_capture)
            if self._waiting is not None:
                self.dropped += 1
            self._waiting = (frame, arrival)
            self.received += 1
        return True

    def close(self) -> None:
        """Stop now: the iteration ends within a tenth of a second, a waiting frame is dropped.
        Safe to call from a signal handler (it takes no lock)."""
        self._closed.set()

    def finish(self, error: Exception | None = None) -> None:
        """The source has ended: the waiting frame, if any, is still processed, then the iteration ends
        (raising ``error`` in the consumer's thread, if given: e.g. a camera that could not be opened)."""
        self._error = error
        self._ended.set()

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def wait_closed(self, seconds: float) -> bool:
        """Sleep up to ``seconds``, waking early (True) if the source is closed."""
        return self._closed.wait(seconds)

    @property
    def pending(self) -> int:
        """Frames waiting (0 or 1: nothing ever queues up)."""
        return int(self._waiting is not None)

    def __iter__(self) -> Iterator[Frame]:
        self.consuming.set()
        while True:
            with self._lock:
                item, self._waiting = self._waiting, None
            if self._closed.is_set():
                if item is not None:  # arrived but never taken: dropped by the stop
                    with self._lock:
                        self.dropped += 1
                return
            if item is None:
                if self._ended.is_set():
                    if self._error is not None:
                        raise self._error
                    return
                self._closed.wait(_POLL)
                continue
            frame, self.taken_arrival = item
            yield frame


@dataclass
class LiveStats:
    """Where a live session stands.

    Attributes:
        received: frames offered; processed: frames reconstructed; dropped: frames replaced by a newer
            one before the model could take them (latest frame wins).
        fps: frames processed per second, over the last few frames.
        latency: seconds from a frame's arrival to its result, for the last frame (``None`` before one).
        tracks: people tracked so far.
        seconds_per_frame: the mean time the model and the exports took per frame, over the last 50
            frames (what sets the processed rate: frames are never late, the newest one is always there).
    """

    received: int = 0
    processed: int = 0
    dropped: int = 0
    fps: float = 0.0
    latency: float | None = None
    tracks: int = 0
    seconds_per_frame: float | None = None

    @property
    def status(self) -> str:
        latency = f"{self.latency:.2f} s" if self.latency is not None else "-"
        return (f"Live · {self.processed} processed ({self.fps:.2f} FPS) · {self.received} received · "
                f"{self.dropped} dropped · latency {latency} · {self.tracks} people tracked")


@dataclass
class LiveProgress:
    """One processed live frame: the session's :class:`~human3r_demo.session.Progress` and the live figures."""

    progress: Progress
    stats: LiveStats

    @property
    def result(self):
        return self.progress.result


class LiveSession:
    """A reconstruction fed live, frame by frame, with the latest-frame-wins policy.

    Args:
        options: the run's options (``subsample`` does not apply: the policy drops frames instead;
            ``max_frames`` ends the session after that many processed frames).
        out_dir: where the exports go when the session ends (``None``: no exports).
        models, body, recording, metadata: as for :class:`~human3r_demo.session.Session`.

    Example::

        live = LiveSession(RunOptions(model="tiny-random"), "out")
        threading.Thread(target=play, args=(0, live), daemon=True).start()  # camera 0
        for step in live.run():
            print(step.stats.status)
    """

    def __init__(self, options: RunOptions, out_dir: str | os.PathLike | None = None, *, models=None,
                 body="auto", recording=None, metadata: dict | None = None) -> None:
        self.source = LiveSource()
        self.session = Session(self.source, options.replace(subsample=1), out_dir, models=models, body=body,
                               recording=recording, metadata={"live": True, **(metadata or {})}, live=True)
        self.stats = LiveStats()
        self._stop = threading.Event()
        self._recent: deque[float] = deque(maxlen=10)  # when the last frames were done (for the FPS)
        self._costs: deque[float] = deque(maxlen=50)  # what the last frames took

    def push(self, rgb: np.ndarray, capture_time: float | None = None) -> bool:
        """Offer a frame; see :meth:`LiveSource.push`."""
        accepted = self.source.push(rgb, capture_time)
        self.stats.received, self.stats.dropped = self.source.received, self.source.dropped
        return accepted

    def stop(self) -> None:
        """End after the current frame; the exports are completed as for a recorded video."""
        self._stop.set()
        self.source.close()

    @property
    def outcome(self) -> Outcome | None:
        return self.session.outcome

    def run(self) -> Iterator[LiveProgress]:
        """Reconstruct frames as they come until :meth:`stop`; :attr:`outcome` is set at the end."""
        try:
            for progress in self.session.run(should_stop=self._stop.is_set):
                now = time.monotonic()
                self._recent.append(now)
                stats = self.stats
                stats.processed = progress.done
                stats.received, stats.dropped = self.source.received, self.source.dropped
                stats.tracks = progress.tracks
                stats.latency = now - self.source.taken_arrival if self.source.taken_arrival is not None else None
                span = self._recent[-1] - self._recent[0]
                stats.fps = (len(self._recent) - 1) / span if span > 0 else 1 / max(progress.seconds, 1e-6)
                self._costs.append(progress.seconds)
                stats.seconds_per_frame = float(np.mean(self._costs))
                yield LiveProgress(progress, dataclasses.replace(stats))
        finally:
            self.source.close()
            self.stats.received, self.stats.dropped = self.source.received, self.source.dropped


def play(source: object, live: LiveSession | LiveSource, *, realtime: bool | None = None) -> None:
    """Feed ``source`` (a camera index, a stream URL, a video file, anything :func:`~human3r_demo.io.frames`
    reads) into ``live`` until it ends or ``live`` is stopped; when the source ends, the frame waiting
    is still processed and the session ends.

    ``realtime``: hold each frame back until its timestamp comes (a video file standing in for a
    camera plays at its own rate). Default: for files only; cameras and streams deliver in real time.
    The source is opened once the session is ready for frames (its model loaded).
    """
    target = live.source if isinstance(live, LiveSession) else live
    if realtime is None:
        realtime = isinstance(source, (str, os.PathLike)) and Path(source).exists()
    error = None
    try:
        while not target.consuming.wait(_POLL):  # open the camera once the model is ready for it
            if target.closed:
                return
        start = time.monotonic()
        for frame in frames(source):
            if target.closed:
                return
            if realtime and frame.timestamp is not None:
                delay = start + frame.timestamp - time.monotonic()
                if delay > 0 and target.wait_closed(delay):
                    return
            target.push(frame.rgb, frame.timestamp)
    except SourceError as err:  # reported by the session, in its own thread, as one line
        error = err
    finally:
        target.finish(error)
