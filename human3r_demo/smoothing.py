"""Causal smoothing of people's poses over time: the One-Euro filter, one per track.

Human3R predicts each frame on its own, so a person's pose trembles from frame to frame. The
One-Euro filter (Casiez, Roussel and Vogel, "1€ Filter: A Simple Speed-based Low-pass Filter for Noisy
Input in Interactive Systems", CHI 2012) is an exponential low-pass whose cutoff rises with speed: slow
motion is smoothed hard (jitter goes), fast motion passes with little lag. It reads only the past, so
it runs on a live stream. With ``T_e`` the time since the last sample:

    alpha(f_c)  = 1 / (1 + tau / T_e),  tau = 1 / (2 pi f_c)
    dx_hat_i    = dx_hat_{i-1} + alpha(d_cutoff) ((x_i - x_hat_{i-1}) / T_e - dx_hat_{i-1})
    f_c         = min_cutoff + beta |dx_hat_i|
    x_hat_i     = x_hat_{i-1} + alpha(f_c) (x_i - x_hat_{i-1})

each element filtered on its own (the paper's filter is scalar). :class:`PoseSmoother` keeps one such
filter per track and per quantity. Rotations are filtered as 3x3 matrices and each output is moved to
the nearest rotation, so the result is always a valid pose.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

__all__ = ["OneEuroFilter", "PoseSmoother", "nearest_rotation", "smooth_people"]

# Defaults chosen on benchmarks/smoothing.py (a synthetic 1 Hz walk at 30 fps with 3 degree / 2 cm noise per
# frame): of a grid of min_cutoff 1-5 Hz and beta 0.5-8, the smoothest of those within 0.1 mm of the lowest
# MPJPE on two seeds (jitter / 3, MPJPE -33 %). A slower cutoff or a smaller beta smooths more but lags
# behind the limbs (MPJPE rises above the noise's).
MIN_CUTOFF_HZ = 1.0
BETA = 4.0  # Hz per unit of speed (rotation-matrix entries or metres, per second)
D_CUTOFF_HZ = 1.0  # the paper's value for the speed estimate
MIN_STEP_S = 1e-6  # a repeated timestamp counts as a tiny step: the estimate barely moves


def _alpha(cutoff: np.ndarray | float, dt: float) -> np.ndarray | float:
    tau = 1.0 / (2.0 * math.pi * cutoff)
    return 1.0 / (1.0 + tau / dt)


class OneEuroFilter:
    """The One-Euro filter on arrays of a fixed shape, element by element (see the module docstring).

    Args:
        min_cutoff: the cutoff frequency at rest (Hz): lower smooths more.
        beta: how fast the cutoff rises with speed: higher lags less on fast motion.
        d_cutoff: the cutoff of the speed estimate (Hz).
    """

    def __init__(self, min_cutoff: float = MIN_CUTOFF_HZ, beta: float = BETA, d_cutoff: float = D_CUTOFF_HZ) -> None:
        if min_cutoff <= 0 or d_cutoff <= 0 or beta < 0:
            raise ValueError(f"One-Euro filter needs min_cutoff > 0, d_cutoff > 0 and beta >= 0, got {min_cutoff}, {d_cutoff}, {beta}")
        self.min_cutoff, self.beta, self.d_cutoff = min_cutoff, beta, d_cutoff
        self.x_hat: np.ndarray | None = None
        self.dx_hat: np.ndarray | None = None
        self.t: float | None = None

    def __call__(self, x: np.ndarray, t: float) -> np.ndarray:
        """The filtered value of sample ``x`` taken at time ``t`` (seconds, increasing)."""
        x = np.asarray(x, dtype=np.float64)
        if self.x_hat is None:
            self.x_hat, self.dx_hat, self.t = x.copy(), np.zeros_like(x), t
            return x.copy()
        if x.shape != self.x_hat.shape:
            raise ValueError(f"One-Euro filter got shape {x.shape} after {self.x_hat.shape}")
        dt = max(t - self.t, MIN_STEP_S)
        speed = (x - self.x_hat) / dt
        self.dx_hat = self.dx_hat + _alpha(self.d_cutoff, dt) * (speed - self.dx_hat)
        cutoff = self.min_cutoff + self.beta * np.abs(self.dx_hat)
        # written as a step from the last estimate, so a constant input comes out bit for bit
        self.x_hat = self.x_hat + _alpha(cutoff, dt) * (x - self.x_hat)
        self.t = t
        return self.x_hat.copy()


def nearest_rotation(matrices: np.ndarray) -> np.ndarray:
    """The rotation (det +1) nearest in the Frobenius norm to each 3x3 matrix (..., 3, 3)."""
    U, _, Vt = np.linalg.svd(matrices)
    signs = np.ones(matrices.shape[:-1])
    signs[..., -1] = np.sign(np.linalg.det(U @ Vt))
    return U @ (signs[..., :, None] * Vt)


class PoseSmoother:
    """One :class:`OneEuroFilter` per track and per quantity (rotations, positions, shape...).

    Memory is bounded: the filters of the ``max_tracks`` most recently seen tracks are kept. A track that
    comes back after a long gap is hardly smoothed on its first frame (``alpha`` tends to 1 as the gap
    grows), so it never drags a stale pose along.

    Args:
        min_cutoff, beta, d_cutoff: see :class:`OneEuroFilter`.
        max_tracks: most tracks whose filters are kept.
    """

    def __init__(self, min_cutoff: float = MIN_CUTOFF_HZ, beta: float = BETA, d_cutoff: float = D_CUTOFF_HZ,
                 max_tracks: int = 256) -> None:
        OneEuroFilter(min_cutoff, beta, d_cutoff)  # checks the parameters now, not at the first person
        self.params = (min_cutoff, beta, d_cutoff)
        self.max_tracks = max_tracks
        self.tracks: OrderedDict[int, dict[str, OneEuroFilter]] = OrderedDict()

    def __call__(self, track_id: int, t: float, rotations: np.ndarray, **vectors: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Smooth one person's sample at time ``t`` (seconds).

        Args:
            track_id: the person's track.
            t: the frame's time in seconds.
            rotations: (K, 3, 3) rotation matrices.
            vectors: any other quantities (positions, shape, expression), each of a fixed shape.

        Returns:
            The smoothed rotations (K, 3, 3), proper rotations, and the smoothed ``vectors``.
        """
        filters = self.tracks.pop(track_id, None) or {}
        self.tracks[track_id] = filters  # most recently seen last
        while len(self.tracks) > self.max_tracks:
            self.tracks.popitem(last=False)
        out = {}
        for name, value in {"rotations": rotations, **vectors}.items():
            if name not in filters:
                filters[name] = OneEuroFilter(*self.params)
            out[name] = filters[name](value, t)
        return nearest_rotation(out.pop("rotations")), out


def smooth_people(
    smoother: PoseSmoother,
    track_ids: Sequence[int],
    t: float,
    camera_to_world: Tensor,
    rotmat: Tensor,
    betas: Tensor,
    expression: Tensor,
    head: Tensor,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """One frame's people (Human3R's camera-frame parameters) smoothed per track.

    The global orientation and the head position are smoothed in the world frame, so the camera's own
    motion is not filtered into the bodies (a static person seen by a moving camera stays put); the
    joint rotations, shape and expression do not depend on the frame. The result is in the camera
    frame again, ready for the body model.

    Args:
        smoother: the run's :class:`PoseSmoother`.
        track_ids: (n,) each person's track.
        t: the frame's time (s).
        camera_to_world: (4, 4) this frame's camera pose.
        rotmat: (n, 53, 3, 3) rotations, the first the global orientation (camera frame).
        betas, expression: (n, B), (n, E).
        head: (n, 3) head positions (camera frame).

    Returns:
        ``(rotmat, betas, expression, head)`` smoothed, same shapes, dtypes and device.
    """
    T = camera_to_world.detach().to("cpu", torch.float64).numpy()
    R, origin = T[:3, :3], T[:3, 3]
    rot = rotmat.detach().to("cpu", torch.float64).numpy().copy()
    rot[:, 0] = R @ rot[:, 0]
    head_world = head.detach().to("cpu", torch.float64).numpy() @ R.T + origin
    shape, expr = (x.detach().to("cpu", torch.float64).numpy() for x in (betas, expression))
    out_rot, out_head, out_shape, out_expr = np.empty_like(rot), np.empty_like(head_world), np.empty_like(shape), np.empty_like(expr)
    for k, track in enumerate(track_ids):
        out_rot[k], vectors = smoother(int(track), t, rot[k], head=head_world[k], betas=shape[k], expression=expr[k])
        out_head[k], out_shape[k], out_expr[k] = vectors["head"], vectors["betas"], vectors["expression"]
    out_rot[:, 0] = R.T @ out_rot[:, 0]
    out_head = (out_head - origin) @ R  # R^T (x - o), row-wise
    return (
        torch.from_numpy(out_rot).to(rotmat.device, rotmat.dtype),
        torch.from_numpy(out_shape).to(betas.device, betas.dtype),
        torch.from_numpy(out_expr).to(expression.device, expression.dtype),
        torch.from_numpy(out_head).to(head.device, head.dtype),
    )
