"""The reduced-precision path's error against float32, in the camera frame and in the world frame, and why they differ.

    python benchmarks/precision.py [--variant human3r_672S] [--frames 4] [--kernels fused blocked] [--threads 2]

Frames: a seeded random texture seen through a 512x288 window that moves 8 px a frame (the same
kind of frames the issue measured on). One real-size random model (``random:<variant>``) in float32
and one in bfloat16, built from the same seed, stream the same frames (recurrent state carried);
for every bfloat16 attention kernel asked for, the bfloat16 model streams them again.

Per frame it prints the point maps' relative error (``|P' - P| / |P|`` over all pixels) in the camera
frame (``pts3d_self``) and in the network's world frame (the camera frame moved by the predicted
camera-to-world pose), the pose error (rotation in degrees, translation relative to the points'
RMS distance from the origin), the relative error of the decoded pose token (the camera head's
input), the median per-token relative error of the decoded image tokens (the DPT head's input),
and two diagnostics of where the world-frame error comes from:

* **pose only**: the float32 camera-frame points moved by the bfloat16 pose, against the float32
  world points: the world error that the pose error alone causes;
* **float32, perturbed**: the float32 model on the same frames plus uniform noise of +-1/255 (less
  than a video codec changes): if this moves the pose as much as bfloat16 does, the pose head
  amplifies any small change of its input, whatever its source (untrained weights are chaotic);
  precision lost in a place that should stay float32 would show as bfloat16 errors far above it.

Untrained weights: the geometry is meaningless; only the differences are measured.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import human3r_demo as h3r  # noqa: E402
from human3r_demo.geometry import pose_to_matrix, transform_points  # noqa: E402
from human3r_demo.model.attention import forced_kernel  # noqa: E402
from human3r_demo.model.square_view import pad_to_square  # noqa: E402


def shifted_texture_frames(frames: int, height: int = 288, width: int = 512, shift: int = 8, seed: int = 0) -> list[torch.Tensor]:
    """``frames`` views (1, 3, H, W) in [-1, 1] of one random texture, each ``shift`` px right of the last."""
    g = torch.Generator().manual_seed(seed)
    wide = width + shift * frames
    coarse = F.interpolate(torch.rand(1, 3, height // 16, wide // 16, generator=g), size=(height, wide), mode="bicubic")
    texture = (0.7 * coarse + 0.3 * torch.rand(1, 3, height, wide, generator=g)).clamp(0, 1) * 2 - 1
    return [texture[..., i * shift : i * shift + width].contiguous() for i in range(frames)]


def stream(model, frames: list[torch.Tensor]) -> list[dict[str, torch.Tensor]]:
    """Camera-frame points (H, W, 3), camera-to-world matrix (4, 4) and pose token per frame."""
    state, results = None, []
    with torch.inference_mode():
        for image in frames:
            out = model(image, pad_to_square(image, model.config.mhmr_img_res), state, dense_heads=("self",))
            state = out.state
            final = out.decoder.image_layers[-1][0].double()  # [pose token | image tokens | people]
            results.append({"camera": out.dense_heads.pts3d_self[0].double(), "pose": pose_to_matrix(out.camera_pose.double())[0],
                            "token": final[0], "image_tokens": final[1 : 1 + out.image_tokens.shape[1]]})
    return results


def world(points: torch.Tensor, pose: torch.Tensor) -> torch.Tensor:
    return transform_points(pose, points)


def relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


def rotation_deg(A: torch.Tensor, B: torch.Tensor) -> float:
    cos = ((torch.trace(A[:3, :3].T @ B[:3, :3]) - 1) / 2).clamp(-1, 1)
    return float(torch.rad2deg(torch.arccos(cos)))


def compare(name: str, ref: list[dict], run: list[dict]) -> list[str]:
    rows = []
    for i, (a, b) in enumerate(zip(ref, run)):
        world_a, world_b = world(a["camera"], a["pose"]), world(b["camera"], b["pose"])
        pose_only = world(a["camera"], b["pose"])
        rms_distance = float(world_a.reshape(-1, 3).norm(dim=-1).square().mean().sqrt())
        token_errors = (b["image_tokens"] - a["image_tokens"]).norm(dim=-1) / a["image_tokens"].norm(dim=-1)
        rows.append(
            f"| {name} | {i} | {relative(b['camera'], a['camera']):.2e} | {relative(world_b, world_a):.2e} | "
            f"{relative(pose_only, world_a):.2e} | {rotation_deg(a['pose'], b['pose']):.3f} | "
            f"{float((a['pose'][:3, 3] - b['pose'][:3, 3]).norm()) / rms_distance:.2e} | {relative(b['token'], a['token']):.2e} | "
            f"{float(token_errors.median()):.2e} |"
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variant", default="human3r_672S")
    parser.add_argument("--frames", type=int, default=4)
    parser.add_argument("--precision", default="bf16", help="the reduced precision to compare (bf16 on a CPU)")
    parser.add_argument("--kernels", nargs="+", default=["fused", "blocked"], help="attention kernels for the reduced-precision runs")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    if args.threads:
        torch.set_num_threads(args.threads)
    frames = shifted_texture_frames(args.frames)
    g = torch.Generator().manual_seed(1)
    perturbed = [(f + (torch.rand(f.shape, generator=g) * 2 - 1) * 2 / 255).clamp(-1, 1) for f in frames]

    start = time.perf_counter()
    fp32 = h3r.load_model(f"random:{args.variant}", device="cpu", precision="fp32")
    reference = stream(fp32, frames)
    rows = compare("float32, input +-1/255", reference, stream(fp32, perturbed))
    del fp32
    reduced = h3r.load_model(f"random:{args.variant}", device="cpu", precision=args.precision)
    for kernel in args.kernels:
        with forced_kernel(kernel):
            rows += compare(f"{args.precision}, {kernel} attention", reference, stream(reduced, frames))

    print(f"random:{args.variant}, {args.frames} random-texture 512x288 frames shifted 8 px a frame, "
          f"{torch.get_num_threads()} threads, {time.perf_counter() - start:.0f} s\n")
    print("| run against float32 | frame | camera-frame points | world-frame points | world, pose error only | "
          "rotation (deg) | translation / RMS point distance | decoded pose token | decoded image tokens (median) |")
    print("|---|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
