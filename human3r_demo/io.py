"""Frame sources: video files, image folders, arrays and iterables, cameras - all as a stream.

:func:`frames` yields :class:`Frame` objects (RGB uint8, source index, timestamp) one at a time;
a video is decoded with PyAV as it is read, never dumped to disk. Whatever the input, frames come
out as 3-channel RGB (grey and RGBA are converted) and bad input raises :class:`SourceError` with
a message that says what is wrong.
"""

from __future__ import annotations

import os
import re
import threading
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from queue import Full, Queue

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from . import images

__all__ = ["Frame", "SourceError", "SourceWarning", "VideoInfo", "expected_count", "frames", "is_stream_url", "prefetch", "probe",
           "VIDEO_EXTENSIONS", "IMAGE_EXTENSIONS"]

VIDEO_EXTENSIONS = (".mp4", ".mov", ".webm", ".avi", ".mkv", ".m4v", ".mpg", ".mpeg", ".gif")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


class SourceError(ValueError):
    """An input that cannot be read as frames; the message says why."""


class SourceWarning(UserWarning):
    """A source that can be read, but not as a whole (e.g. a video that ends early)."""


@dataclass
class Frame:
    """One decoded frame: ``rgb`` (H, W, 3) uint8, ``index`` in the source, ``timestamp`` in seconds."""

    rgb: np.ndarray
    index: int
    timestamp: float | None = None


@dataclass
class VideoInfo:
    """What is known about a source before decoding it (``None`` where unknown).

    ``width`` and ``height`` are the coded size, before any rotation the video asks for.
    """

    num_frames: int | None
    fps: float | None
    width: int | None = None
    height: int | None = None


def expected_count(num_frames: int | None, subsample: int = 1, max_frames: int | None = None) -> int | None:
    """How many frames :func:`frames` will yield for a source of ``num_frames`` (``None``: unknown)."""
    if num_frames is None:
        return None
    count = -(-num_frames // subsample)  # frames 0, subsample, 2*subsample, ...
    return min(count, max_frames) if max_frames else count


def frames(
    source: object, *, subsample: int = 1, max_frames: int | None = None, notes: list[str] | None = None
) -> Iterator[Frame]:
    """Yield the frames of ``source``: every ``subsample``-th one, at most ``max_frames`` of them.

    ``source`` may be a video file path, a stream URL (``rtsp://``, ``http://``; read by PyAV), a folder of images, a (T, H, W[, C]) array, an iterable of
    (H, W[, C]) arrays or PIL images, or an ``int`` camera index. Problems that do not stop the
    stream (a video that ends early) are appended to ``notes`` when it is given, else warned.
    """
    if not isinstance(subsample, int) or isinstance(subsample, bool) or subsample < 1:
        raise SourceError(f"subsample must be a positive integer, got {subsample!r}")
    if max_frames is not None and (not isinstance(max_frames, int) or isinstance(max_frames, bool) or max_frames < 1):
        raise SourceError(f"max_frames must be a positive integer or None, got {max_frames!r}")
    produced = 0
    report = notes.append if notes is not None else (lambda text: warnings.warn(text, SourceWarning, stacklevel=4))
    for frame in _raw_frames(source, report):
        if frame.index % subsample:
            continue
        yield frame
        produced += 1
        if max_frames is not None and produced >= max_frames:
            return
    if produced == 0:
        raise SourceError(f"{_describe(source)} contains no frames")


def prefetch(frames_: Iterable[Frame], depth: int = 2) -> Iterator[Frame]:
    """Decode ahead in a background thread: at most ``depth`` frames wait, so memory stays bounded.

    The decoder (PyAV, PIL) releases the GIL, so decoding the next frame overlaps with the model's
    work on this one. Errors of the source are raised here, in the consumer's thread, in order.
    """
    queue: Queue = Queue(maxsize=depth)
    done = threading.Event()

    def produce() -> None:
        try:
            for frame in frames_:
                while not done.is_set():
                    try:
                        queue.put(frame, timeout=0.1)
                        break
                    except Full:
                        continue
                if done.is_set():
                    return
            queue.put(_END)
        except BaseException as err:  # handed to the consumer
            queue.put(err)

    thread = threading.Thread(target=produce, name="frame-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item = queue.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        done.set()
        close = getattr(frames_, "close", None)
        thread.join(timeout=5)
        if close is not None and not thread.is_alive():
            close()


_END = object()


def probe(source: object) -> VideoInfo:
    """Frame count, fps and size of a source without decoding it all (best effort).

    Raises :class:`SourceError` for a source that cannot be opened (a camera is opened and released).
    """
    if isinstance(source, int) and not isinstance(source, bool):
        import cv2

        capture = _open_camera(source)
        fps = capture.get(cv2.CAP_PROP_FPS) or None
        capture.release()
        return VideoInfo(None, fps)
    if is_stream_url(source):  # opened when read: a live stream has no length, and probing it would wait on the network
        return VideoInfo(None, None)
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.exists():
            raise SourceError(f"no such file or folder: {path}")
        if path.is_dir():
            files = _image_files(path)
            if not files:
                raise SourceError(f"the folder {path} has no images ({', '.join(IMAGE_EXTENSIONS)})")
            return VideoInfo(len(files), None)
        if path.suffix.lower() in IMAGE_EXTENSIONS:
            return VideoInfo(1, None)
        container = _open_video(path)
        try:
            stream = container.streams.video[0]
            fps = float(stream.average_rate) if stream.average_rate else None
            return VideoInfo(_expected_frames(stream, container), fps, stream.codec_context.width, stream.codec_context.height)
        finally:
            container.close()
    if isinstance(source, np.ndarray):
        return VideoInfo(len(_array_frames(source)), None)
    if hasattr(source, "__len__"):
        return VideoInfo(len(source), None)
    return VideoInfo(None, None)


# ---------------------------------------------------------------------- dispatch
def _raw_frames(source: object, report: Callable[[str], None]) -> Iterator[Frame]:
    if isinstance(source, bool):
        raise SourceError(f"cannot read frames from {source!r}")
    if isinstance(source, int):
        yield from _camera_frames(source)
    elif is_stream_url(source):
        yield from _video_frames(source, report)
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.exists():
            raise SourceError(f"no such file or folder: {path}")
        if path.is_dir():
            yield from _folder_frames(path)
        elif path.suffix.lower() in IMAGE_EXTENSIONS:
            yield Frame(_load_image(path), 0, None)
        else:
            yield from _video_frames(path, report)
    elif isinstance(source, np.ndarray):
        for i, arr in enumerate(_array_frames(source)):
            yield Frame(to_rgb(arr, f"frame {i}"), i, None)
    elif isinstance(source, Iterable):
        for i, item in enumerate(source):
            if isinstance(item, Frame):
                yield Frame(to_rgb(item.rgb, f"frame {item.index}"), item.index, item.timestamp)
            else:
                yield Frame(to_rgb(item, f"frame {i}"), i, None)
    else:
        raise SourceError(f"cannot read frames from a {type(source).__name__}")


def _array_frames(source: np.ndarray) -> np.ndarray:
    """A (T, H, W[, C]) array as a stack of frames; a single (H, W, 3|4) image as a stack of one."""
    if source.ndim == 3 and source.shape[-1] in (3, 4):
        return source[None]
    if source.ndim not in (3, 4):
        raise SourceError(f"an array source must be (T, H, W) or (T, H, W, C), got shape {source.shape}")
    return source


def to_rgb(image: object, what: str = "frame") -> np.ndarray:
    """Any image (PIL in any mode, or an array of any numeric dtype) -> (H, W, 3) uint8 RGB; see :mod:`.images`."""
    try:
        return images.to_rgb(image, what)
    except images.ImageError as err:
        raise SourceError(str(err)) from None


# ---------------------------------------------------------------------- videos
def is_stream_url(source: object) -> bool:
    """Whether ``source`` names a network stream (``rtsp://``, ``http://``, ``udp://`` ...) for PyAV."""
    return isinstance(source, str) and re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", source) is not None


def _open_video(path: Path | str):
    import av

    name = path.name if isinstance(path, Path) else path
    try:
        # a stream that stops answering must not hang the run: seconds to open, and to wait for each packet
        container = av.open(str(path), timeout=(15.0, 10.0) if isinstance(path, str) else None)
    except av.error.FileNotFoundError:
        raise SourceError(f"no such file or folder: {path}") from None
    except (av.error.InvalidDataError, av.error.EOFError, UnicodeDecodeError) as err:
        raise SourceError(
            f"{name} is not a readable video ({_av_reason(err)}): it may be truncated, corrupt, or not a video"
        ) from None
    except av.error.FFmpegError as err:
        raise SourceError(f"{name} could not be opened as a video ({_av_reason(err)})") from None
    if not container.streams.video:
        kinds = sorted({s.type for s in container.streams})
        container.close()
        if not kinds:  # e.g. an mp4 whose only track never received a frame
            raise SourceError(f"{name} contains no video frames")
        raise SourceError(f"{name} has no video stream (it holds {', '.join(kinds)} only)")
    return container


def _video_frames(path: Path | str, report: Callable[[str], None]) -> Iterator[Frame]:
    import av

    name = path.name if isinstance(path, Path) else path
    container = _open_video(path)
    try:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        index = 0
        try:
            for frame in container.decode(stream):
                rgb = frame.to_ndarray(format="rgb24")
                quarter_turns = int(round((frame.rotation or 0) / 90)) % 4
                if quarter_turns:  # display matrix: rotate counter-clockwise for display
                    rgb = np.ascontiguousarray(np.rot90(rgb, k=quarter_turns))
                yield Frame(to_rgb(rgb, f"{name} frame {index}"), index, frame.time)
                index += 1
        except av.error.FFmpegError as err:
            where = f"after {index} frame(s)" if index else "before the first frame"
            raise SourceError(f"{name} is corrupt or truncated: decoding failed {where} ({_av_reason(err)})") from None
        if index == 0:
            raise SourceError(f"{name} contains no video frames")
        expected = _expected_frames(stream, container)
        if expected and index < 0.9 * expected - 1:
            report(f"{name} ended after {index} of about {expected} frames: the file seems truncated")
    finally:
        container.close()


def _expected_frames(stream, container) -> int | None:
    """Frame count from the container header, or estimated from duration x average rate."""
    if stream.frames:
        return int(stream.frames)
    fps = float(stream.average_rate) if stream.average_rate else None
    if not fps:
        return None
    seconds = float(stream.duration * stream.time_base) if stream.duration else (container.duration or 0) / 1e6
    return int(round(seconds * fps)) or None


def _av_reason(err: Exception) -> str:
    return getattr(err, "strerror", None) or str(err)


# ---------------------------------------------------------------------- image folders
def _natural_key(name: str) -> list:
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def _image_files(folder: Path) -> list[Path]:
    return sorted(
        (p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS),
        key=lambda p: _natural_key(p.name),
    )


def _folder_frames(folder: Path) -> Iterator[Frame]:
    files = _image_files(folder)
    if not files:
        raise SourceError(f"the folder {folder} has no images ({', '.join(IMAGE_EXTENSIONS)})")
    for i, path in enumerate(files):
        yield Frame(_load_image(path), i, None)


def _load_image(path: Path) -> np.ndarray:
    try:
        with Image.open(path) as img:
            return to_rgb(ImageOps.exif_transpose(img), path.name)
    except (UnidentifiedImageError, OSError) as err:
        raise SourceError(f"{path.name} is not a readable image ({err})") from None


# ---------------------------------------------------------------------- cameras
def _open_camera(index: int):
    """An opened ``cv2.VideoCapture`` of camera ``index``, or a one-line :class:`SourceError`."""
    import cv2

    previous = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)  # OpenCV prints every backend it tried
    try:
        capture = cv2.VideoCapture(index)
        opened = capture.isOpened()
    finally:
        cv2.utils.logging.setLogLevel(previous)
    if not opened:
        raise SourceError(f"camera {index} could not be opened (is it connected, and not in use by another program?)")
    return capture


def _camera_frames(index: int) -> Iterator[Frame]:
    import time

    capture = _open_camera(index)
    start = time.monotonic()
    try:
        i = 0
        while True:
            ok, bgr = capture.read()
            if not ok:
                if i == 0:
                    raise SourceError(f"camera {index} delivered no frames")
                return
            yield Frame(to_rgb(bgr[..., ::-1], f"camera frame {i}"), i, time.monotonic() - start)
            i += 1
    finally:
        capture.release()


def _describe(source: object) -> str:
    if isinstance(source, (str, os.PathLike)):
        return str(source)
    return f"the {type(source).__name__} source"
