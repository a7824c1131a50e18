"""The scene part of a frame: which pixels are confident scene points, and a bounded sample of them.

One filter, :func:`scene_point_mask`, decides it for every consumer (the viewer, ``scene.ply``, the
rendered world view): confident points, with people (their mask grown by a disk, since their edges
bleed into the background) removed. The reference demo's viewer does the same (``vis_threshold``,
``msk_threshold``, ``mask_morph``; fanegg/Human3R@e313921 ``demo.py``).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["PointReservoir", "scene_point_mask"]


def scene_point_mask(
    confidence: np.ndarray,
    human_mask: np.ndarray,
    points: np.ndarray,
    *,
    confidence_threshold: float,
    mask_threshold: float,
    mask_dilation: int,
) -> np.ndarray:
    """(H, W) bool: confident, finite points that are not people.

    Args:
        confidence: (H, W) point confidence (>= 1).
        human_mask: (H, W) probability that a pixel shows a person.
        points: (H, W, 3) the points (non-finite ones are never scene).
        confidence_threshold: keep points above this confidence.
        mask_threshold: pixels above this human probability are people.
        mask_dilation: grow the people mask by a disk of this radius (pixels) first.
    """
    people = human_mask > mask_threshold
    if mask_dilation > 0 and people.any():
        r = mask_dilation
        yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
        disk = torch.from_numpy((xx**2 + yy**2 <= r * r).astype(np.float32))[None, None]
        grown = F.conv2d(torch.from_numpy(people.astype(np.float32))[None, None], disk, padding=r)
        people = grown[0, 0].numpy() > 0
    return (confidence > confidence_threshold) & ~people & np.isfinite(points).all(-1)


class PointReservoir:
    """Uniform sample (without replacement) of at most ``budget`` points from a stream.

    Every point gets a random key; the kept points are those with the smallest keys, which is a
    uniform sample of everything seen, in memory proportional to the budget.
    """

    def __init__(self, budget: int, seed: int = 0) -> None:
        self.budget = budget
        self.rng = np.random.default_rng(seed)
        self.points = np.empty((0, 3), np.float32)
        self.colours = np.empty((0, 3), np.uint8)
        self.keys = np.empty(0, np.float64)

    def __len__(self) -> int:
        return len(self.points)

    def add(self, points: np.ndarray, colours: np.ndarray) -> None:
        if self.budget == 0:
            return
        keys = self.rng.random(len(points))
        if len(self.keys) >= self.budget:
            entering = keys < self.keys.max()
            points, colours, keys = points[entering], colours[entering], keys[entering]
        self.points = np.concatenate([self.points, points])
        self.colours = np.concatenate([self.colours, colours])
        self.keys = np.concatenate([self.keys, keys])
        if len(self.keys) > self.budget:
            keep = np.argpartition(self.keys, self.budget - 1)[: self.budget]
            self.points, self.colours, self.keys = self.points[keep], self.colours[keep], self.keys[keep]
