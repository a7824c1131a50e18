"""Rebuild the bundled example clips (their bytes are committed; this shows how they were made).

    python data/examples/make_examples.py --astronaut path/to/astronaut.png

``astronaut.png`` ships inside the scikit-image wheel (``skimage/data/astronaut.png``); with
scikit-image installed the path can be left out.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import av
import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent


def encode(path: Path, frames: list[np.ndarray], fps: int, crf: int = 23) -> None:
    container = av.open(str(path), "w")
    stream = container.add_stream("libx264", rate=fps, options={"crf": str(crf), "preset": "slow"})
    stream.height, stream.width = frames[0].shape[:2]
    stream.pix_fmt = "yuv420p"
    for frame in frames:
        for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
    container.close()


def astronaut_clip(photo: Image.Image, seconds: float = 4.0, fps: int = 10, size: tuple[int, int] = (512, 288)) -> list[np.ndarray]:
    """A virtual camera over one still photo: a slow push-in with a sideways pan, 16:9 output."""
    W, H = photo.size
    n = int(seconds * fps)
    frames = []
    for i in range(n):
        s = i / (n - 1)
        ease = 0.5 - 0.5 * np.cos(np.pi * s)
        crop_w = 420 - 120 * ease  # push in
        crop_h = crop_w * size[1] / size[0]
        left = max(0.0, W * (0.42 + 0.14 * ease) - crop_w / 2)  # pan right, across the face
        top = max(0.0, H * (0.25 - 0.02 * ease) - crop_h / 2)  # keep the whole head in frame
        box = (left, top, left + crop_w, top + crop_h)
        frames.append(np.asarray(photo.resize(size, Image.LANCZOS, box=box)))
    return frames


def shapes_clip(num_frames: int = 12, height: int = 180, width: int = 320, seed: int = 2) -> list[np.ndarray]:
    """Moving coloured discs on a gradient: no people, a cheap input for tests and smoke runs."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    centres = rng.uniform([0.2 * width, 0.2 * height], [0.8 * width, 0.8 * height], size=(3, 2))
    colours = rng.integers(60, 255, size=(3, 3))
    frames = []
    for t in range(num_frames):
        img = np.stack([xx * 255 // width, yy * 255 // height, np.full_like(xx, 96)], -1).astype(np.uint8)
        for (cx, cy), colour in zip(centres + t * np.array([3.0, 1.5]), colours):
            img[(xx - cx) ** 2 + (yy - cy) ** 2 < (0.08 * width) ** 2] = colour
        frames.append(img)
    return frames


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--astronaut", type=Path, default=None, help="skimage/data/astronaut.png")
    args = parser.parse_args()
    path = args.astronaut
    if path is None:
        import skimage

        path = Path(skimage.__file__).parent / "data" / "astronaut.png"
    encode(HERE / "astronaut_camera_move.mp4", astronaut_clip(Image.open(path).convert("RGB")), fps=10)
    encode(HERE / "synthetic_shapes.mp4", shapes_clip(), fps=10, crf=18)
    for name in ("astronaut_camera_move.mp4", "synthetic_shapes.mp4"):
        print(f"{name}: {(HERE / name).stat().st_size / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
