"""Least-squares alignment of point sets: Umeyama's similarity / rigid fit and per-frame Procrustes.

Every evaluation metric that "aligns" a prediction first goes through here, so the one subtle part
(the reflection fix: a least-squares rotation from an SVD may come out with det -1) is written once.

Adapted from zju3dv/GVHMR ``hmr4d/utils/eval/eval_utils.py`` (``align_pcl``,
``batch_compute_similarity_transform_torch``), the code Human3R's ``eval/global_human/utils.py`` copies;
the method is Umeyama, "Least-squares estimation of transformation parameters between two point
patterns", TPAMI 1991.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Similarity:
    """``x -> scale * R @ x + t``, batched over leading dimensions.

    Attributes:
        scale: (...,) the scale (1 for a rigid fit).
        rotation: (..., 3, 3) a proper rotation (det +1).
        translation: (..., 3).
    """

    scale: np.ndarray
    rotation: np.ndarray
    translation: np.ndarray

    def apply(self, points: np.ndarray) -> np.ndarray:
        """Map points (..., N, 3) (same leading dimensions as the transform) through it."""
        rotated = np.einsum("...ij,...nj->...ni", self.rotation, points)
        return self.scale[..., None, None] * rotated + self.translation[..., None, :]


def umeyama(source: np.ndarray, target: np.ndarray, with_scale: bool = True) -> Similarity:
    """The similarity (or, without scale, rigid) transform minimising ``sum |s R source + t - target|^2``.

    Matches ``align_pcl(Y=target, X=source, fixed_scale=not with_scale)`` of GVHMR's ``eval_utils.py``.

    Args:
        source: (..., N, 3) points to move (the prediction).
        target: (..., N, 3) corresponding points to move them onto (the ground truth).
        with_scale: fit a scale (Sim(3)); otherwise the scale is 1 (SE(3)).

    Returns:
        A :class:`Similarity` with leading dimensions ``...``.

    Raises:
        ValueError: shapes differ, or (with scale) the source points all coincide.
    """
    source = np.asarray(source, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    if source.shape != target.shape or source.ndim < 2 or source.shape[-1] != 3:
        raise ValueError(f"alignment needs two point sets of the same shape (..., N, 3), got {source.shape} and {target.shape}")
    mu_source = source.mean(axis=-2)
    mu_target = target.mean(axis=-2)
    x = source - mu_source[..., None, :]
    y = target - mu_target[..., None, :]
    n = source.shape[-2]
    covariance = np.einsum("...ni,...nj->...ij", y, x) / n  # Sigma_xy of Umeyama's eq. (38)
    U, D, Vt = np.linalg.svd(covariance)
    # S = diag(1, 1, -1) when U V^T is a reflection: the nearest proper rotation (Umeyama's eq. (39))
    flip = np.where(np.linalg.det(U) * np.linalg.det(Vt) < 0, -1.0, 1.0)
    signs = np.ones(D.shape)
    signs[..., -1] = flip
    rotation = U @ (signs[..., :, None] * Vt)
    if with_scale:
        variance = np.square(x).sum(axis=(-1, -2)) / n
        if np.any(variance <= 0):
            raise ValueError("cannot fit a scale: the points to align all coincide")
        scale = (D * signs).sum(axis=-1) / variance
    else:
        scale = np.ones(source.shape[:-2])
    translation = mu_target - scale[..., None] * np.einsum("...ij,...j->...i", rotation, mu_source)
    return Similarity(np.asarray(scale, dtype=np.float64), rotation, translation)


def procrustes_align(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Each frame of ``pred`` (T, N, 3) moved by its own best similarity onto ``gt`` (T, N, 3).

    Matches ``batch_compute_similarity_transform_torch`` of GVHMR's ``eval_utils.py`` (the "PA" of
    PA-MPJPE): scale, rotation with the reflection fixed, and translation, fitted per frame.
    """
    return umeyama(pred, gt, with_scale=True).apply(np.asarray(pred, dtype=np.float64))
