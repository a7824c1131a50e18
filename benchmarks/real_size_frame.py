"""Time and peak memory of a real-size variant (random weights) on one 512x288 frame.

    python benchmarks/real_size_frame.py [--variant human3r_672S] [--frames 3] [--device cpu]

The official weights cannot be downloaded everywhere; the architecture and the arithmetic are the
same with random weights, so the timing is representative. The first frame includes one-off costs;
the median of the following frames is the steady per-frame time (the second frame onwards reads the
pose memory, as a real stream does).
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from human3r_demo import Human3RConfig  # noqa: E402
from human3r_demo.checkpoints.random_init import build_random_model  # noqa: E402
from human3r_demo.model.square_view import pad_to_square  # noqa: E402


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variant", default="human3r_672S")
    parser.add_argument("--frames", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--people", type=int, default=2,
                        help="set the random detector so a frame shows about this many people (untrained, every head scores ~0.5)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    config = Human3RConfig.from_variant(args.variant)
    t0 = time.perf_counter()
    model = build_random_model(config, device=args.device, target_people=args.people)
    print(f"{args.variant}: {model.num_parameters / 1e6:.0f} M parameters, built in {time.perf_counter() - t0:.1f} s, "
          f"peak RSS {peak_rss_gib():.2f} GiB, {torch.get_num_threads()} threads on {args.device}")

    g = torch.Generator().manual_seed(0)
    image = (torch.rand(1, 3, 288, 512, generator=g) * 2 - 1).to(args.device)
    image_mhmr = pad_to_square(image, config.mhmr_img_res)
    state, times = None, []
    for i in range(args.frames):
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        start = time.perf_counter()
        with torch.inference_mode():
            out = model(image, image_mhmr, state)
        state = out.state
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
        print(f"frame {i}: {times[-1]:.2f} s, {out.num_humans} detections, peak RSS {peak_rss_gib():.2f} GiB")
    steady = statistics.median(times[1:]) if len(times) > 1 else times[0]
    print(f"\nsteady per-frame time {steady:.2f} s ({1 / steady:.2f} FPS) at 512x288; peak RSS {peak_rss_gib():.2f} GiB")
    if args.device.startswith("cuda"):
        print(f"peak CUDA memory {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB")


if __name__ == "__main__":
    main()
