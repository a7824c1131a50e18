"""SMPL-X meshes from Human3R's parameters, through the ``smplx`` package.

Human3R predicts, per person, 53 joint rotations, shape and expression coefficients and the
camera-frame position of the SMPL-X *head* joint (not the usual root translation). The mesh is
placed the way the reference demo does it: posed with zero global orientation, rotated about the
head by the global orientation, and moved so the head joint lands on the predicted position::

    V_cam = R0 (V - J_head) + t_head

Adapted from fanegg/Human3R@e313921 ``src/dust3r/utils/smpl_layer.py`` (``SMPL_Layer`` with
``person_center='head'``); docs/ARCHITECTURE.md 10.3.

The licensed model file is needed only for meshes; everything else runs without it.
Only the ``.npz`` release of SMPL-X is supported (the ``.pkl`` one needs ``chumpy``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import roma
import torch
from torch import Tensor

from .smplx_file import HOW_TO_GET_SMPLX, BodyModelError, BodyModelNotFound, find_smplx_file, verified_copy
from .smplx_layout import HEAD_JOINT, PELVIS_JOINT, ROTATION_SLICES

__all__ = ["HOW_TO_GET_SMPLX", "BodyMeshes", "BodyModel", "BodyModelError", "BodyModelNotFound", "find_smplx_file"]


@dataclass
class BodyMeshes:
    """SMPL-X geometry of n people in the camera frame (metres up to the scene's scale).

    Attributes:
        vertices: (n, 10475, 3) mesh vertices.
        joints: (n, 127, 3) joints (index 0 pelvis, 15 head).
        pelvis: (n, 3) pelvis position (the reference's ``smpl_transl_pelvis``).
        rest_pelvis: (n, 3) pelvis of the unposed, untranslated shape; the standard SMPL-X
            ``transl`` of a person is ``pelvis - rest_pelvis`` (see :meth:`BodyModel.standard_transl`).
    """

    vertices: Tensor
    joints: Tensor
    pelvis: Tensor
    rest_pelvis: Tensor


class BodyModel:
    """The neutral SMPL-X layer configured as Human3R uses it (no hand PCA, flat hand mean, 10 betas)."""

    def __init__(self, location: str | os.PathLike | None = None, device: torch.device | str = "cpu") -> None:
        import smplx  # imported here: it is only needed when meshes are wanted

        from .checkpoints.cache import cache_dir

        self.path = find_smplx_file(location)
        try:
            checked = verified_copy(self.path, cache_dir())  # smplx unpickles whatever it is given: give it checked arrays
        except OSError as err:  # an unwritable cache
            raise BodyModelError(f"cannot prepare {self.path} for smplx ({err.strerror or err})") from None
        try:
            self.layer = smplx.create(
                str(checked), "smplx", gender="neutral", use_pca=False, flat_hand_mean=True, num_betas=10
            ).to(device)
        except Exception as err:  # arrays of the right shapes that still do not make a model
            raise BodyModelError(f"{self.path} could not be read as an SMPL-X model ({err}). {HOW_TO_GET_SMPLX}") from None
        self.faces = np.asarray(self.layer.faces, dtype=np.int32)

    @property
    def num_vertices(self) -> int:
        return int(self.layer.v_template.shape[0])

    @torch.inference_mode()
    def __call__(self, rotvec: Tensor, betas: Tensor, expression: Tensor, head_transl: Tensor) -> BodyMeshes:
        """Pose n people in the camera frame.

        Args:
            rotvec: (n, 53, 3) axis-angle rotations (global orientation, body, hands, jaw).
            betas: (n, 10); expression: (n, 10).
            head_transl: (n, 3) camera-frame position of the head joint.
        """
        n = rotvec.shape[0]
        device = self.layer.v_template.device
        rotvec, betas, expression, head_transl = (t.to(device, torch.float32) for t in (rotvec, betas, expression, head_transl))
        zeros = torch.zeros(n, 3, device=device)
        pose = {name: rotvec[:, sl].flatten(1) for name, sl in ROTATION_SLICES.items() if name != "global_orient"}
        out = self.layer(betas=betas, global_orient=zeros, leye_pose=zeros, reye_pose=zeros, expression=expression, **pose)
        R0 = roma.rotvec_to_rotmat(rotvec[:, ROTATION_SLICES["global_orient"].start])[:, None]  # (n, 1, 3, 3)
        root = out.joints[:, PELVIS_JOINT : PELVIS_JOINT + 1]
        joints = (R0 @ (out.joints - root).unsqueeze(-1)).squeeze(-1)
        vertices = (R0 @ (out.vertices - root).unsqueeze(-1)).squeeze(-1)
        head = joints[:, HEAD_JOINT : HEAD_JOINT + 1]
        joints = joints - head + head_transl[:, None]
        vertices = vertices - head + head_transl[:, None]
        return BodyMeshes(vertices=vertices, joints=joints, pelvis=joints[:, PELVIS_JOINT], rest_pelvis=root[:, 0])

    @staticmethod
    def standard_transl(pelvis: Tensor, rest_pelvis: Tensor) -> Tensor:
        """The ``transl`` that makes ``smplx`` (with the same global orientation) reproduce the mesh.

        SMPL-X rotates about the rest pelvis and then adds ``transl``; so ``transl = pelvis - rest_pelvis``.
        """
        return pelvis - rest_pelvis
