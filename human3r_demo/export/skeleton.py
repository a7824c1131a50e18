"""The SMPL-X skeleton of a person, from the body model: rest joints for a shape, posed joints, root translation.

Human3R places a person by the head joint (``head_position``); SMPL-X files place one by ``transl``,
the translation applied after rotating about the rest pelvis. For given rotations, shape and
expression, ``transl = head - head_joint(transl = 0)``; the posed joints come from smplx's own
forward kinematics (``smplx.lbs.batch_rigid_transform``). Rest joints are linear in the shape and
expression coefficients, so they are computed from the regressed blend shapes without meshes.
"""

from __future__ import annotations

import numpy as np
import roma
import torch

from ..body import BodyModel
from ..smplx_layout import HEAD_JOINT, NUM_BETAS, NUM_EXPRESSION, NUM_JOINTS

__all__ = ["SkeletonModel"]


class SkeletonModel:
    """Rest and posed SMPL-X joints for arrays of frames (numpy in, numpy out; float64 inside)."""

    def __init__(self, body: BodyModel) -> None:
        layer = body.layer
        J = layer.J_regressor.detach().double().cpu()[:NUM_JOINTS]  # (55, V)
        v = layer.v_template.detach().double().cpu()
        self.parents = layer.parents.detach().cpu().long()[:NUM_JOINTS]
        self.J_template = (J @ v).numpy()  # (55, 3)
        self.J_shapedirs = torch.einsum("jv,vcb->jcb", J, layer.shapedirs.detach().double().cpu()[..., :NUM_BETAS]).numpy()
        self.J_exprdirs = torch.einsum("jv,vcb->jcb", J, layer.expr_dirs.detach().double().cpu()[..., :NUM_EXPRESSION]).numpy()
        self.v_template = v.numpy()
        self.shapedirs = layer.shapedirs.detach().double().cpu()[..., :NUM_BETAS].numpy()
        self.lbs_weights = layer.lbs_weights.detach().double().cpu().numpy()
        self.faces = body.faces

    def rest_joints(self, betas: np.ndarray, expression: np.ndarray | None = None) -> np.ndarray:
        """(..., 10) shape [and (..., 10) expression] -> (..., 55, 3) joints of the unposed body."""
        joints = self.J_template + np.einsum("jcb,...b->...jc", self.J_shapedirs, betas)
        if expression is not None:
            joints = joints + np.einsum("jcb,...b->...jc", self.J_exprdirs, expression)
        return joints

    def rest_vertices(self, betas: np.ndarray) -> np.ndarray:
        """(10,) -> (V, 3) the unposed mesh of that shape (neutral face)."""
        return self.v_template + np.einsum("vcb,b->vc", self.shapedirs, betas)

    def posed_joints(self, rotvec: np.ndarray, rest: np.ndarray) -> np.ndarray:
        """(N, 55, 3) rotations (SMPL-X order, axis-angle) and (N, 55, 3) rest joints -> posed joints, ``transl = 0``."""
        rotmats = roma.rotvec_to_rotmat(torch.from_numpy(np.asarray(rotvec, np.float64)))
        from smplx.lbs import batch_rigid_transform

        posed, _ = batch_rigid_transform(rotmats, torch.from_numpy(np.array(rest, np.float64)), self.parents, dtype=torch.float64)
        return posed.numpy()

    def transl(self, rotvec: np.ndarray, betas: np.ndarray, expression: np.ndarray, head: np.ndarray) -> np.ndarray:
        """The SMPL-X ``transl`` (N, 3) that puts each frame's head joint at ``head`` (N, 3)."""
        rest = np.broadcast_to(self.rest_joints(betas, expression), (len(rotvec), NUM_JOINTS, 3))
        return head - self.posed_joints(rotvec, rest)[:, HEAD_JOINT]
