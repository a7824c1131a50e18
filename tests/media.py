"""Writing small test videos and images."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np


def write_video(path: Path, frames: np.ndarray, fps: int = 10, codec: str = "libx264", rotation: int | None = None,
                container_format: str | None = None) -> Path:
    """Encode (T, H, W, 3) uint8 frames; ``rotation`` sets the display matrix (degrees, counter-clockwise)."""
    container = av.open(str(path), "w", format=container_format)
    stream = container.add_stream(codec, rate=fps)
    stream.height, stream.width = frames.shape[1:3]
    stream.pix_fmt = "yuv420p"
    if rotation:
        stream.set_display_rotation(rotation)
    for frame in frames:
        for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
    container.close()
    return path


def write_empty_video(path: Path, height: int = 96, width: int = 128) -> Path:
    """A video file with a header and no frames."""
    container = av.open(str(path), "w")
    stream = container.add_stream("libx264", rate=10)
    stream.height, stream.width, stream.pix_fmt = height, width, "yuv420p"
    container.start_encoding()
    container.close()
    return path


def write_y4m(path: Path, frames: np.ndarray, fps: int = 10) -> Path:
    """A y4m clip: what Chromium's fake camera plays (--use-file-for-fake-video-capture), in a loop."""
    return write_video(path, frames, fps, codec="rawvideo", container_format="yuv4mpegpipe")
