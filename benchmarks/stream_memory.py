"""Resident memory over a long stream: does anything grow with the number of frames?

    python benchmarks/stream_memory.py [--frames 2000] [--size 256] [--every 250] [--exports DIR]

Streams synthetic frames (generated on the fly, never stored) through the tiny-random model and
prints the resident set size every ``--every`` frames, then the growth from the first report to
the last. With ``--exports`` the exports are written too (they keep per-track parameters, which the
user asked for, so a little growth is expected there).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import human3r_demo as h3r  # noqa: E402
from human3r_demo.export import Exporter  # noqa: E402


def rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def synthetic_frame(t: int, height: int = 360, width: int = 640) -> np.ndarray:
    """A gradient with two discs walking across it; people enter and leave."""
    yy, xx = np.mgrid[0:height, 0:width]
    img = np.stack([xx * 255 // width, yy * 255 // height, np.full_like(xx, 90)], -1).astype(np.uint8)
    for k, colour in enumerate(((230, 60, 60), (60, 200, 90))):
        cx = (37 * t + 300 * k) % (width + 200) - 100
        cy = height // 2 + 60 * np.sin(t / 25 + k)
        img[(xx - cx) ** 2 + (yy - cy) ** 2 < 40**2] = colour
    return img


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=2000)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--every", type=int, default=250)
    parser.add_argument("--reset-interval", type=int, default=100)
    parser.add_argument("--exports", type=Path, default=None, help="also write the exports to this folder")
    args = parser.parse_args()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = h3r.load_model("tiny-random", device="cpu")
    recon = h3r.Reconstructor(model, size=args.size, reset_interval=args.reset_interval, body_model=None)
    exporter = Exporter(args.exports, fps=30.0) if args.exports else None
    print(f"tiny-random, size {args.size}, reset every {args.reset_interval}, exports: {args.exports or 'no'}")
    print(f"{'frame':>6} {'RSS MiB':>9} {'s/frame':>8} {'people':>7} {'tracks kept':>12}")
    reports = []
    start = last = time.perf_counter()
    for t in range(args.frames):
        result = recon.process(synthetic_frame(t), t, t / 30)
        if exporter:
            exporter.add(result)
        if (t + 1) % args.every == 0:
            now = time.perf_counter()
            reports.append(rss_mib())
            print(f"{t + 1:>6} {reports[-1]:>9.1f} {(now - last) / args.every:>8.3f} {result.num_people:>7} {recon.tracker.num_remembered:>12}")
            last = now
    if exporter:
        exporter.close()
    growth = (reports[-1] - reports[0]) / reports[0] * 100
    print(f"\n{args.frames} frames in {time.perf_counter() - start:.0f} s; RSS {reports[0]:.1f} MiB at frame {args.every} "
          f"-> {reports[-1]:.1f} MiB at frame {args.frames}: {growth:+.2f} %")


if __name__ == "__main__":
    main()
