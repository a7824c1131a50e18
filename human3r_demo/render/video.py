"""A rendered video of a run, encoded frame by frame (H.264 in MP4, through PyAV) in bounded memory."""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..options import VIDEO_LAYOUTS as LAYOUTS
from ..results import FrameResult
from .overlay import render_overlay
from .renderer import GLRenderer
from .world import WorldHistory, render_world

__all__ = ["LAYOUTS", "VideoRenderer", "panel_size", "partial_path"]


def partial_path(path: Path) -> Path:
    """Where the video is written until it is complete: ``name.partial.mp4`` (the suffix keeps the container format)."""
    return path.with_name(f"{path.stem}.partial{path.suffix}")


def panel_size(image_width: int, image_height: int, size: int | None) -> tuple[int, int]:
    """``(width, height)`` of one view: the image scaled so its long side is ``size`` (default: as is),
    rounded down to even numbers (H.264's yuv420p stores colour at half resolution)."""
    scale = 1.0 if size is None else size / max(image_width, image_height)
    return max(2, int(image_width * scale + 0.5) // 2 * 2), max(2, int(image_height * scale + 0.5) // 2 * 2)


class VideoRenderer:
    """Renders each :class:`~human3r_demo.results.FrameResult` and appends it to an MP4 at once.

    The video is written to ``name.partial.mp4`` and renamed to ``path`` by :meth:`close`, so an
    interrupted run never leaves a truncated file under the final name; :meth:`discard` (or leaving
    a ``with`` block by an exception) deletes it.

    Args:
        path: the ``.mp4`` to write (its folder is created).
        fps: frame rate of the video: the rate of the frames given to :meth:`add`; ``None``: each frame
            is shown at its own ``timestamp`` (a live source, whose frames come at irregular times).
        faces: (F, 3) SMPL-X triangles (``BodyModel.faces``); ``None``: people are discs at their heads.
        layout: ``"side-by-side"`` (overlay left, world view right), ``"overlay"`` or ``"world"``.
        size: long side of each view in pixels (default: the model's image size); both views have
            the image's aspect ratio, so side by side is twice as wide.
        follow: the world view follows the current camera instead of staying behind the first.
        crf: x264 quality (lower is better and larger; 18-23 is the usual range).
        renderer: a renderer to share (the caller closes it); default: one of this writer's own.

    Raises:
        RendererUnavailable: no OpenGL context here (raised now, before the run, not at its first frame).
    """

    def __init__(
        self,
        path: str | os.PathLike,
        fps: float | None,
        faces: np.ndarray | None,
        *,
        layout: str = "side-by-side",
        size: int | None = None,
        follow: bool = False,
        crf: int = 20,
        renderer: GLRenderer | None = None,
    ) -> None:
        if layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
        if fps is not None and not fps > 0:
            raise ValueError(f"fps must be positive, got {fps!r}")
        self.path = Path(path)
        self.partial = partial_path(self.path)
        # 12.5 -> 25/2, NTSC 29.970... -> 30000/1001; frames at their own times: milliseconds
        self.fps = Fraction(fps).limit_denominator(1001) if fps is not None else None
        self._first_time: float | None = None
        self._last_pts = -1
        self.faces = faces
        self.layout, self.size, self.follow, self.crf = layout, size, follow, crf
        self.history = WorldHistory()
        self.frames = 0
        self._own_renderer = renderer is None
        self.renderer = renderer or GLRenderer()
        self._container = self._stream = None
        self._panel: tuple[int, int] | None = None
        self._closed = self._written = False

    def add(self, result: FrameResult) -> np.ndarray:
        """Render one frame, encode it, and return it: (H, W, 3) uint8, the video's frame."""
        if self._closed:
            raise RuntimeError("the video renderer is closed")
        if self._panel is None:  # the first frame sets the video's size
            H, W = result.image.shape[:2]
            self._panel = panel_size(W, H, self.size)
        views = []
        if self.layout in ("side-by-side", "overlay"):
            views.append(render_overlay(result, self.faces, renderer=self.renderer, size=self._panel))
        if self.layout in ("side-by-side", "world"):
            views.append(render_world(result, self.faces, self.history, renderer=self.renderer, size=self._panel,
                                      follow=self.follow))
        frame = np.concatenate(views, axis=1)
        self._encode(frame, result.timestamp)
        return frame

    def close(self) -> Path | None:
        """Finish the video and move it to ``path``; returns it (``None`` if no frame was added). Safe to call twice."""
        if not self._closed:
            self._closed = True
            try:
                if self._container is not None:
                    for packet in self._stream.encode():  # the frames x264 still holds for its look-ahead
                        self._container.mux(packet)
                    self._container.close()
                    self._container = None
                    self.partial.replace(self.path)
                    self._written = True
            finally:
                self._free()
        return self.path if self._written else None

    def discard(self) -> None:
        """Stop and delete the unfinished video (the final path is never touched)."""
        self._closed = True
        try:
            if self._container is not None:
                self._container.close()
                self._container = None
        finally:
            self.partial.unlink(missing_ok=True)
            self._free()

    def __enter__(self) -> VideoRenderer:
        return self

    def __exit__(self, exc_type, *exc: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.discard()

    def _encode(self, frame: np.ndarray, timestamp: float | None) -> None:
        import av

        if self._container is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._container = av.open(str(self.partial), "w")
            rate = self.fps or 30  # the nominal rate of a video whose frames keep their own times
            self._stream = self._container.add_stream("libx264", rate=rate, options={"crf": str(self.crf), "preset": "veryfast"})
            if self.fps is None:
                self._stream.codec_context.time_base = Fraction(1, 1000)
            self._stream.height, self._stream.width = frame.shape[:2]
            self._stream.pix_fmt = "yuv420p"
        video_frame = av.VideoFrame.from_ndarray(frame, format="rgb24")
        if self.fps is not None:
            video_frame.pts = self.frames  # the stream's time base is 1 / fps
        else:
            t = self.frames / 30 if timestamp is None else float(timestamp)
            self._first_time = t if self._first_time is None else self._first_time
            pts = round((t - self._first_time) * 1000)
            video_frame.pts = max(pts, self._last_pts + 1)  # strictly increasing, whatever the source's times
            video_frame.time_base = Fraction(1, 1000)
            self._last_pts = video_frame.pts
        for packet in self._stream.encode(video_frame):
            self._container.mux(packet)
        self.frames += 1

    def _free(self) -> None:
        if self._own_renderer:
            self.renderer.close()
