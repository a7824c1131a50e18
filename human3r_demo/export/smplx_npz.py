"""Per-person SMPL-X motion files in the AMASS layout that SMPL-X tools read.

One file per person and stretch of consecutive frames (a person who leaves and comes back gets one
file per stretch), so rows are evenly spaced at ``mocap_frame_rate`` and no frame is invented.
A person keeps one shape: ``betas`` is the median over all of the person's frames, and ``trans``
is computed for that shape so that each frame's SMPL-X head joint lands where Human3R put it
(``smplx`` with ``betas``, the poses, ``expression`` and ``trans`` reproduces that mesh). Hands
are in smplx's ``flat_hand_mean=True`` convention, also written in the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..smplx_layout import AMASS_SLICES
from .skeleton import SkeletonModel

__all__ = ["NPZ_LAYOUT", "segment_name", "write_npz"]

NPZ_LAYOUT = {
    "poses": "(N, 165) axis-angle in SMPL-X joint order: global(3) body(63) jaw(3) leye(3) reye(3) left hand(45) right hand(45)",
    "root_orient, pose_body, pose_hand, pose_jaw, pose_eye": "the same, split the AMASS way ((N,3) (N,63) (N,90) (N,3) (N,6))",
    "global_orient, body_pose, left_hand_pose, right_hand_pose, jaw_pose, leye_pose, reye_pose": "the same, split the way smplx.SMPLX.forward takes them",
    "trans, transl": "(N, 3) SMPL-X root translation for `betas` (absent without the SMPL-X model file, which it depends on)",
    "betas": "(10,) the person's shape: median over all their frames; betas_per_frame (N, 10) holds Human3R's per frame",
    "expression": "(N, 10) expression coefficients",
    "head_position": "(N, 3) the SMPL-X head joint (Human3R's own translation output; also without the model file)",
    "mocap_frame_rate, mocap_framerate": "frames per second of the rows (both spellings: SMPL-X add-on and aitviewer)",
    "gender, surface_model_type, num_betas": "'neutral', 'smplx', 10",
    "flat_hand_mean, use_pca": "True, False: the hand convention (smplx.create(..., flat_hand_mean=True, use_pca=False))",
    "frame_indices, timestamps": "(N,) source frame index and time (seconds) of each row",
    "world_frame": "the world frame of the global orientation and translations (first-camera, floor or model)",
}


def segment_name(track_id: int, segment: int, segments: int) -> str:
    """``track_003`` for a person seen in one stretch, ``track_003_seg1`` ... for several."""
    return f"track_{track_id:03d}" if segments == 1 else f"track_{track_id:03d}_seg{segment}"


def write_npz(
    path: Path,
    rows: np.ndarray,
    *,
    track_id: int,
    betas: np.ndarray,
    fps: float,
    world_frame: str,
    skeleton: SkeletonModel | None,
) -> Path:
    """One segment's rows (:data:`~.tracks.RECORD`) -> an AMASS-style npz at ``path`` (atomically)."""
    rotvec = rows["rotvec"].astype(np.float64)
    n = len(rows)
    split = {name: rotvec[:, sl].reshape(n, -1) for name, sl in AMASS_SLICES.items()}
    arrays: dict[str, Any] = {
        "poses": rotvec.reshape(n, -1).astype(np.float32),
        "root_orient": split["global_orient"],
        "pose_body": split["body_pose"],
        "pose_hand": np.concatenate([split["left_hand_pose"], split["right_hand_pose"]], axis=1),
        "pose_jaw": split["jaw_pose"],
        "pose_eye": np.concatenate([split["leye_pose"], split["reye_pose"]], axis=1),
        **split,
        "betas": betas.astype(np.float32),
        "betas_per_frame": rows["betas"],
        "num_betas": np.int32(len(betas)),
        "expression": rows["expression"],
        "head_position": rows["head"],
        "gender": np.array("neutral"),
        "surface_model_type": np.array("smplx"),
        "flat_hand_mean": np.array(True),
        "use_pca": np.array(False),
        "mocap_frame_rate": np.float64(fps),
        "mocap_framerate": np.float64(fps),
        "mocap_time_length": np.float64(n / fps),
        "frame_indices": rows["index"],
        "timestamps": rows["time"],
        "track_id": np.int64(track_id),
        "world_frame": np.array(world_frame),
    }
    arrays = {k: (v.astype(np.float32) if isinstance(v, np.ndarray) and v.dtype == np.float64 and v.ndim == 2 else v)
              for k, v in arrays.items()}
    if skeleton is not None:
        trans = skeleton.transl(rotvec, betas.astype(np.float64), rows["expression"].astype(np.float64), rows["head"].astype(np.float64))
        arrays["trans"] = arrays["transl"] = trans.astype(np.float32)
    tmp = path.with_name(path.stem + ".partial.npz")
    np.savez(tmp, **arrays)
    tmp.replace(path)
    return path
