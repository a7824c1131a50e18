"""BVH motion files: each person's SMPL-X body skeleton (22 joints), Y up, metres, at the source frame rate.

The skeleton has the person's rest shape (the median ``betas`` of the SMPL-X npz, neutral face); the
root carries the pelvis position and the body's orientation, every other joint its rotation
relative to its parent, as ``Zrotation Xrotation Yrotation`` in degrees (``R = Rz Rx Ry``). With
the npz's ``betas``, ``poses`` and ``trans`` in ``smplx``, the joints coincide with this file's.
A world frame with y down (``first-camera``) is turned by 180 degrees about x to stand up.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import roma
import torch

from ..smplx_layout import JOINT_NAMES, NUM_BODY_JOINTS, PARENTS
from ..world import Y_UP
from .skeleton import SkeletonModel

__all__ = ["BODY_JOINTS", "write_bvh"]

BODY_JOINTS = 1 + NUM_BODY_JOINTS  # pelvis and the 21 body joints: the SMPL-X body skeleton


def write_bvh(path: Path, rows: np.ndarray, *, betas: np.ndarray, fps: float, axes: str, skeleton: SkeletonModel) -> Path:
    """One segment's rows -> a BVH at ``path``; the root translation is the npz's ``trans`` at the pelvis."""
    C = Y_UP[axes]
    rest = skeleton.rest_joints(betas.astype(np.float64))[:BODY_JOINTS]
    rotvec = rows["rotvec"].astype(np.float64)
    trans = skeleton.transl(rotvec, betas.astype(np.float64), rows["expression"].astype(np.float64), rows["head"].astype(np.float64))
    pelvis = (trans + rest[0]) @ C.T  # SMPL-X rotates about the rest pelvis, which then moves by trans

    rotmats = roma.rotvec_to_rotmat(torch.from_numpy(rotvec[:, :BODY_JOINTS]))
    rotmats[:, 0] = torch.from_numpy(C) @ rotmats[:, 0]  # the whole body into the Y-up frame
    euler = roma.rotmat_to_euler("ZXY", rotmats, degrees=True).numpy()  # intrinsic: R = Rz Rx Ry

    lines = ["HIERARCHY"]
    children = {j: [c for c in range(BODY_JOINTS) if PARENTS[c] == j] for j in range(BODY_JOINTS)}

    def write_joint(j: int, depth: int) -> None:
        pad = "  " * depth
        offset = rest[j] - rest[PARENTS[j]] if j else np.zeros(3)
        lines.append(f"{pad}{'ROOT' if j == 0 else 'JOINT'} {JOINT_NAMES[j]}")
        lines.append(f"{pad}{{")
        lines.append(f"{pad}  OFFSET {offset[0]:.6f} {offset[1]:.6f} {offset[2]:.6f}")
        channels = "6 Xposition Yposition Zposition" if j == 0 else "3"
        lines.append(f"{pad}  CHANNELS {channels} Zrotation Xrotation Yrotation")
        for c in children[j]:
            write_joint(c, depth + 1)
        if not children[j]:  # an end site a tenth of the way along the parent bone: BVH needs one per leaf
            tip = 0.1 * (rest[j] - rest[PARENTS[j]])
            lines.append(f"{pad}  End Site")
            lines.append(f"{pad}  {{")
            lines.append(f"{pad}    OFFSET {tip[0]:.6f} {tip[1]:.6f} {tip[2]:.6f}")
            lines.append(f"{pad}  }}")
        lines.append(f"{pad}}}")

    write_joint(0, 0)
    order = []

    def visit(j: int) -> None:  # channel order in each motion line: depth first, as in the hierarchy
        order.append(j)
        for c in children[j]:
            visit(c)

    visit(0)
    lines += ["MOTION", f"Frames: {len(rows)}", f"Frame Time: {1.0 / fps:.8f}"]
    for f in range(len(rows)):
        values = list(pelvis[f])
        for j in order:
            values += list(euler[f, j])
        lines.append(" ".join(f"{v:.6f}" for v in values))
    tmp = path.with_name(path.name + ".partial")
    tmp.write_text("\n".join(lines) + "\n")
    tmp.replace(path)
    return path
