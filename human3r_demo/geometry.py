"""Camera geometry: pose encodings, rigid transforms, and intrinsics from a point map.

Adapted from fanegg/Human3R@e313921 ``src/dust3r/utils/camera.py`` (``pose_encoding_to_camera``),
``src/dust3r/post_process.py`` (``estimate_focal_knowing_depth``, Weiszfeld mode) and ``demo.py``
(``prepare_output``: the chaining of poses across resets); docs/ARCHITECTURE.md 8.1, 10.1 and 10.2.
"""

from __future__ import annotations

import math

import numpy as np
import roma
import torch
from torch import Tensor


def pose_to_matrix(camera_pose: Tensor) -> Tensor:
    """``[t, q_wxyz]`` (B, 7) -> camera-to-world matrices (B, 4, 4)."""
    t, q_wxyz = camera_pose[..., :3], camera_pose[..., 3:7]
    R = roma.unitquat_to_rotmat(q_wxyz[..., [1, 2, 3, 0]])  # roma uses (x, y, z, w)
    T = torch.eye(4, dtype=camera_pose.dtype, device=camera_pose.device).repeat(camera_pose.shape[0], 1, 1)
    T[:, :3, :3] = R
    T[:, :3, 3] = t
    return T


def transform_points(T: Tensor, points: Tensor) -> Tensor:
    """Apply a rigid 4x4 transform ``T`` (4, 4) to points (..., 3)."""
    return points @ T[:3, :3].transpose(0, 1) + T[:3, 3]


def weiszfeld_focal(pts3d: Tensor, iters: int = 10) -> Tensor:
    """Focal length that best reprojects a camera-frame point map onto its pixels (robust L1 fit).

    The principal point is the image centre ``(W//2, H//2)``. Starting from the least-squares focal,
    ``iters`` Weiszfeld re-weightings minimise ``sum |pixel - f * (x/z, y/z)|``.

    Args:
        pts3d: (B, H, W, 3) points in the camera frame.

    Returns:
        (B,) focal lengths in pixels (non-negative).
    """
    B, H, W, _ = pts3d.shape
    ys, xs = torch.meshgrid(
        torch.arange(H, dtype=pts3d.dtype, device=pts3d.device),
        torch.arange(W, dtype=pts3d.dtype, device=pts3d.device),
        indexing="ij",
    )
    pp = torch.tensor([W // 2, H // 2], dtype=pts3d.dtype, device=pts3d.device)
    pixels = (torch.stack([xs, ys], dim=-1).reshape(1, -1, 2) - pp)  # (1, HW, 2)
    pts = pts3d.reshape(B, -1, 3)
    xy_over_z = (pts[..., :2] / pts[..., 2:3]).nan_to_num(posinf=0, neginf=0)
    dot_xy_px = (xy_over_z * pixels).sum(dim=-1)
    dot_xy_xy = xy_over_z.square().sum(dim=-1)
    focal = dot_xy_px.mean(dim=1) / dot_xy_xy.mean(dim=1)
    for _ in range(iters):
        residual = (pixels - focal.view(-1, 1, 1) * xy_over_z).norm(dim=-1)
        w = residual.clip(min=1e-8).reciprocal()
        focal = (w * dot_xy_px).mean(dim=1) / (w * dot_xy_xy).mean(dim=1)
    return focal.clip(min=0)


def intrinsics_matrix(focal: float, height: int, width: int) -> Tensor:
    """Pinhole K (3, 3) with square pixels and the principal point at ``(W//2, H//2)``."""
    return torch.tensor([[focal, 0.0, width // 2], [0.0, focal, height // 2], [0.0, 0.0, 1.0]])


class ChunkAligner:
    """Chains camera poses across resets into one world frame.

    After a reset the model's poses are relative to the first frame of the new chunk, which is the
    reset frame seen again. Mapping them through the reset frame's pose in the previous chunk puts
    every chunk in the world frame of the very first frame: ``T_world = B_k @ T_chunk`` with ``B``
    the product of the poses of all earlier reset frames.
    """

    def __init__(self) -> None:
        self.base = torch.eye(4)

    def __call__(self, camera_to_chunk: Tensor, is_reset_frame: bool) -> Tensor:
        """(4, 4) pose in the current chunk -> (4, 4) pose in the world frame."""
        base = self.base.to(camera_to_chunk)
        camera_to_world = base @ camera_to_chunk
        if is_reset_frame:
            self.base = camera_to_world
        return camera_to_world


class RunningFocal:
    """Robust running focal estimate: the median of all per-frame focals seen so far.

    Kept as a fixed histogram of ``log2(focal / image_size)`` (0.2 % bins over a range far wider than
    any camera), so memory stays constant however long the video is.
    """

    def __init__(self, bins_per_octave: int = 350, min_ratio: float = 2.0**-40, max_ratio: float = 2.0**40) -> None:
        self.log_min = math.log2(min_ratio)
        self.bin_width = 1.0 / bins_per_octave
        self.counts = torch.zeros(int(round((math.log2(max_ratio) - self.log_min) * bins_per_octave)) + 1)
        self.total = 0

    def update(self, focal: float, image_size: int) -> float:
        """Add one frame's focal (pixels) for an image whose long side is ``image_size``; return the median."""
        if math.isfinite(focal) and focal > 0:
            b = (math.log2(focal / image_size) - self.log_min) / self.bin_width
            self.counts[int(min(max(round(b), 0), len(self.counts) - 1))] += 1
            self.total += 1
        return self.median(image_size) if self.total else focal

    def median(self, image_size: int) -> float:
        cumulative = torch.cumsum(self.counts, 0)
        b = int(torch.searchsorted(cumulative, torch.tensor(self.total / 2.0)))
        return image_size * 2.0 ** (self.log_min + b * self.bin_width)


# focal lengths no camera has (untrained weights predict about 0) are drawn with this field of view
MAX_FOV_DEG = 170.0
FALLBACK_FOV_DEG = 60.0


def usable_focal(focal: float, width: int, height: int) -> bool:
    """Whether a focal length (pixels) describes a real camera of that image size (a field of view of
    at most 170 degrees on the long side)."""
    if not math.isfinite(focal) or focal <= 0:
        return False
    return 2 * math.degrees(math.atan(max(width, height) / (2 * focal))) <= MAX_FOV_DEG


def display_intrinsics(K, height: int, width: int):
    """(3, 3) numpy ``K`` to draw with: ``K`` itself if its focal is usable, else a 60-degree field of
    view on the long side (drawing with a focal near 0 would put everything in one pixel)."""
    if usable_focal(float(K[0, 0]), width, height) and np.isfinite(K).all():
        return K
    focal = max(width, height) / (2 * math.tan(math.radians(FALLBACK_FOV_DEG) / 2))
    return intrinsics_matrix(focal, height, width).numpy().astype(np.float64)
