"""Memory of a long live session: a 30-minute camera simulated at a faster rate.

    python benchmarks/live_memory.py [--minutes 30] [--camera-fps 10] [--speedup 20] [--size 128]

A feeder thread pushes frames whose capture times span ``--minutes`` of a ``--camera-fps`` camera,
``--speedup`` times faster than real time, into a :class:`~human3r_demo.live.LiveSession` on
tiny-random with exports on (the latest frame wins, so most frames are dropped); the resident set
is printed every few simulated minutes. Flat means nothing is kept per frame: the recurrent state,
the pose memory and the tracker are bounded, people and camera poses are spooled to disk, and the
scene points are a fixed-size reservoir.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import human3r_demo as h3r  # noqa: E402
from human3r_demo.live import LiveSession  # noqa: E402


def rss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0, help="simulated length of the camera stream")
    parser.add_argument("--camera-fps", type=float, default=10.0)
    parser.add_argument("--speedup", type=float, default=20.0, help="how much faster than real time frames are pushed")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--every", type=float, default=3.0, help="print every this many simulated minutes")
    args = parser.parse_args()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = h3r.load_model("tiny-random", device="cpu", precision="fp32")
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, size=(16, 180, 320, 3), dtype=np.uint8)
    total = int(args.minutes * 60 * args.camera_fps)
    options = h3r.RunOptions(model="tiny-random", device="cpu", precision="fp32", size=args.size)
    with tempfile.TemporaryDirectory() as tmp:
        live = LiveSession(options, Path(tmp) / "out", models=model, body=None)

        def camera() -> None:
            live.source.consuming.wait()
            start = time.monotonic()
            for i in range(total):
                capture = i / args.camera_fps
                delay = start + capture / args.speedup - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                if not live.push(frames[i % len(frames)], capture_time=capture):
                    return
            live.source.finish()

        threading.Thread(target=camera, daemon=True).start()
        print(f"simulating {args.minutes:g} min of a {args.camera_fps:g} fps camera ({total} frames) "
              f"{args.speedup:g}x faster than real time; tiny-random at {args.size} px, exports on")
        print(f"{'camera min':>10} {'processed':>9} {'received':>8} {'dropped':>8} {'RSS MiB':>8}")
        next_report = 0.0
        started = time.monotonic()
        for step in live.run():
            minutes = step.result.timestamp / 60
            if minutes >= next_report:
                s = step.stats
                print(f"{minutes:10.1f} {s.processed:9d} {s.received:8d} {s.dropped:8d} {rss_mib():8.1f}", flush=True)
                next_report += args.every
        s = live.stats
        print(f"{'end':>10} {s.processed:9d} {s.received:8d} {s.dropped:8d} {rss_mib():8.1f}")
        print(f"wall time {time.monotonic() - started:.0f} s; peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.1f} MiB; "
              f"outcome: {live.outcome.status}")


if __name__ == "__main__":
    main()
