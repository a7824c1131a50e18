"""Camera-pose errors through evo itself: ATE (absolute trajectory error) and RPE (relative pose error).

The paper's camera numbers (TUM-dynamics, Table 2) come from evo with these exact settings, so we call
evo rather than re-deriving it: ATE = APE on the translation part after a Sim(3) Umeyama alignment over
the whole trajectory, RMSE in metres; RPE = the same alignment, then the error of frame-to-frame
motions (``delta`` = 1 frame, all pairs), translation in metres and rotation angle in degrees.

Adapted from fanegg/Human3R ``eval/relpose/evo_utils.py`` (``eval_metrics``; read at e313921).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
from evo.core import metrics as evo_metrics
from evo.core.geometry import GeometryException
from evo.core.trajectory import PoseTrajectory3D
from evo.main_ape import ape as evo_ape
from evo.main_rpe import rpe as evo_rpe


@dataclass(frozen=True)
class CameraError:
    """One camera error: the number the paper reports (``rmse``) and the values it summarises.

    Attributes:
        rmse: the root mean square of ``values`` (evo's ``rmse`` statistic).
        values: (T,) per frame for ATE; (T-1,) per consecutive pair of frames for RPE (the value of the
            pair ``(i, i+1)`` is at index ``i``).
        unit: ``"m"`` or ``"deg"``.
    """

    rmse: float
    values: np.ndarray
    unit: str


@dataclass(frozen=True)
class RelativePoseError:
    """RPE: ``translation`` (m) and ``rotation`` (deg) of the frame-to-frame motions."""

    translation: CameraError
    rotation: CameraError


def _trajectory(camera_to_world: np.ndarray, name: str) -> PoseTrajectory3D:
    poses = np.asarray(camera_to_world, dtype=np.float64)
    if poses.ndim != 3 or poses.shape[1:] != (4, 4):
        raise ValueError(f"{name}: expected camera-to-world matrices (T, 4, 4), got {poses.shape}")
    if not np.isfinite(poses).all():
        raise ValueError(f"{name}: camera poses contain NaN or infinite values")
    # one timestamp per frame: the caller has already paired prediction and ground truth frame by frame
    return PoseTrajectory3D(poses_se3=list(poses), timestamps=np.arange(len(poses), dtype=np.float64))


def _pair(pred: np.ndarray, gt: np.ndarray) -> tuple[PoseTrajectory3D, PoseTrajectory3D]:
    est, ref = _trajectory(pred, "prediction"), _trajectory(gt, "ground truth")
    if est.num_poses != ref.num_poses:
        raise ValueError(f"prediction has {est.num_poses} camera poses, ground truth {ref.num_poses}: pair them frame by frame first")
    if ref.num_poses < 3:
        raise ValueError(f"a Sim(3) alignment needs at least 3 camera poses, got {ref.num_poses}")
    return est, ref


def _result(result, unit: str) -> CameraError:
    return CameraError(float(result.stats["rmse"]), np.asarray(result.np_arrays["error_array"], dtype=np.float64), unit)


def ate(pred_camera_to_world: np.ndarray, gt_camera_to_world: np.ndarray) -> CameraError:
    """Absolute trajectory error (m) after a Sim(3) Umeyama alignment of the camera centres.

    Matches ``eval_metrics`` of Human3R's ``eval/relpose/evo_utils.py``: ``evo.main_ape.ape`` with
    ``PoseRelation.translation_part, align=True, correct_scale=True``; the paper reports ``.rmse``.

    Args:
        pred_camera_to_world: (T, 4, 4) predicted camera-to-world poses.
        gt_camera_to_world: (T, 4, 4) ground-truth poses for the same frames.

    Raises:
        ValueError: shapes, non-finite poses, or a trajectory too degenerate to align (e.g. a camera
            that never moves).
    """
    est, ref = _pair(pred_camera_to_world, gt_camera_to_world)
    try:
        result = evo_ape(ref, est, evo_metrics.PoseRelation.translation_part, align=True, correct_scale=True)
    except GeometryException as error:
        raise ValueError(f"ATE: evo cannot align the trajectories ({error})") from None
    return _result(result, "m")


def rpe(pred_camera_to_world: np.ndarray, gt_camera_to_world: np.ndarray, delta: int = 1) -> RelativePoseError:
    """Relative pose error of ``delta``-frame motions, after the same Sim(3) alignment as :func:`ate`.

    Matches ``eval_metrics`` of Human3R's ``eval/relpose/evo_utils.py``: ``evo.main_rpe.rpe`` with
    ``delta=1, delta_unit=frames, rel_delta_tol=0.01, all_pairs=True, align=True, correct_scale=True``,
    once with ``translation_part`` (m) and once with ``rotation_angle_deg`` (deg).
    """
    est, ref = _pair(pred_camera_to_world, gt_camera_to_world)
    errors = {}
    for key, relation, unit in (
        ("translation", evo_metrics.PoseRelation.translation_part, "m"),
        ("rotation", evo_metrics.PoseRelation.rotation_angle_deg, "deg"),
    ):
        try:  # evo aligns its estimate in place: each call gets its own copy
            result = evo_rpe(
                copy.deepcopy(ref), copy.deepcopy(est), relation, delta=delta, delta_unit=evo_metrics.Unit.frames,
                rel_delta_tol=0.01, all_pairs=True, align=True, correct_scale=True,
            )
        except GeometryException as error:
            raise ValueError(f"RPE: evo cannot align the trajectories ({error})") from None
        errors[key] = _result(result, unit)
    return RelativePoseError(**errors)
