"""SMPL-X joint layouts, named once: Human3R's 53 rotations and the 55 joints of SMPL-X / AMASS.

Human3R predicts 53 joint rotations per person (docs/ARCHITECTURE.md 8.4)::

    0 global orientation | 1-21 body | 22-36 left hand | 37-51 right hand | 52 jaw

SMPL-X itself (``smplx.joint_names.JOINT_NAMES``, and AMASS's ``poses`` (N, 165)) orders its 55
joints as global, 21 body, jaw, left eye, right eye, 15 left-hand and 15 right-hand joints; Human3R
predicts no eye rotations (they are zero). Every slice used anywhere in the package is defined here.
"""

from __future__ import annotations

from smplx import SMPLX
from smplx.joint_names import JOINT_NAMES as _SMPLX_JOINT_NAMES

__all__ = [
    "AMASS_SLICES",
    "FOOT_JOINTS",
    "HEAD_JOINT",
    "JOINT_NAMES",
    "NUM_BETAS",
    "NUM_BODY_JOINTS",
    "NUM_EXPRESSION",
    "NUM_HAND_JOINTS",
    "NUM_JOINTS",
    "NUM_ROTATIONS",
    "PARENTS",
    "PELVIS_JOINT",
    "ROTATION_SLICES",
    "SMPLX_FROM_HUMAN3R",
    "human3r_to_smplx",
]

NUM_BODY_JOINTS = SMPLX.NUM_BODY_JOINTS  # 21
NUM_HAND_JOINTS = SMPLX.NUM_HAND_JOINTS  # 15
NUM_JOINTS = 1 + NUM_BODY_JOINTS + 3 + 2 * NUM_HAND_JOINTS  # 55 skeleton joints (the rest are vertex joints)
JOINT_NAMES: tuple[str, ...] = tuple(_SMPLX_JOINT_NAMES[:NUM_JOINTS])
HEAD_JOINT = JOINT_NAMES.index("head")  # 15: where Human3R anchors each person (its ``smpl_transl``)
PELVIS_JOINT = JOINT_NAMES.index("pelvis")  # 0: the root SMPL-X rotates about

# the official SMPL-X kinematic tree (parent of each of the 55 joints; -1 for the root)
PARENTS: tuple[int, ...] = (
    -1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19,
    15, 15, 15,
    20, 25, 26, 20, 28, 29, 20, 31, 32, 20, 34, 35, 20, 37, 38,
    21, 40, 41, 21, 43, 44, 21, 46, 47, 21, 49, 50, 21, 52, 53,
)  # fmt: skip

# the toes and heels among smplx's output joints (its vertex joints, after the 55 skeleton joints)
FOOT_JOINTS: tuple[int, ...] = tuple(
    _SMPLX_JOINT_NAMES.index(name)
    for name in ("left_big_toe", "left_small_toe", "left_heel", "right_big_toe", "right_small_toe", "right_heel")
)

NUM_BETAS = 10
NUM_EXPRESSION = 10

# Human3R's 53 rotations
NUM_ROTATIONS = 1 + NUM_BODY_JOINTS + 2 * NUM_HAND_JOINTS + 1
ROTATION_SLICES: dict[str, slice] = {
    "global_orient": slice(0, 1),
    "body_pose": slice(1, 1 + NUM_BODY_JOINTS),
    "left_hand_pose": slice(22, 22 + NUM_HAND_JOINTS),
    "right_hand_pose": slice(37, 37 + NUM_HAND_JOINTS),
    "jaw_pose": slice(52, 53),
}

# the 55 SMPL-X joints (AMASS ``poses`` (N, 165) = these joints x 3 axis-angle values)
AMASS_SLICES: dict[str, slice] = {
    "global_orient": slice(0, 1),
    "body_pose": slice(1, 22),
    "jaw_pose": slice(22, 23),
    "leye_pose": slice(23, 24),
    "reye_pose": slice(24, 25),
    "left_hand_pose": slice(25, 40),
    "right_hand_pose": slice(40, 55),
}

# each SMPL-X joint's row in Human3R's 53 rotations (the eyes, which Human3R does not predict, are None)
SMPLX_FROM_HUMAN3R: tuple[int | None, ...] = tuple(
    next((ROTATION_SLICES[name].start + j - AMASS_SLICES[name].start for name in ROTATION_SLICES
          if AMASS_SLICES[name].start <= j < AMASS_SLICES[name].stop), None)
    for j in range(NUM_JOINTS)
)


def human3r_to_smplx(rotvec):
    """(..., 53, 3) rotations in Human3R's order -> (..., 55, 3) in SMPL-X's, eyes zero (numpy or torch)."""
    index = [0 if i is None else i for i in SMPLX_FROM_HUMAN3R]
    out = rotvec[..., index, :]  # advanced indexing: a copy
    out[..., [j for j, i in enumerate(SMPLX_FROM_HUMAN3R) if i is None], :] = 0
    return out
