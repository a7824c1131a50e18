"""SMPL-X meshes from Human3R's parameters, through the ``smplx`` package.

Human3R predicts, per person, 53 joint rotations, shape and expression coefficients and the
camera-frame position of the SMPL-X *head* joint (not the usual root translation). The mesh is
placed the way the reference demo does it: posed with zero global orientation, rotated about the
head by the global orientation, and moved so the head joint lands on the predicted position::

    V_cam = R0 (V - J_head) + t_head

Adapted from fanegg/Human3R@e313921 ``src/dust3r/utils/smpl_layer.py`` (``SMPL_Layer`` with
``person_center='head'``); ARCHITECTURE.md 10.3.

The licensed model file is needed only for meshes; everything else runs without it.
Only the ``.npz`` release of SMPL-X is supported (the ``.pkl`` one needs ``chumpy``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import roma
import torch
from torch import Tensor

from .smplx_layout import HEAD_JOINT, PELVIS_JOINT, ROTATION_SLICES

SMPLX_FILENAME = "SMPLX_NEUTRAL.npz"
ENV_VAR = "HUMAN3R_SMPLX_DIR"
DEFAULT_DIR = Path(__file__).resolve().parent.parent / "data" / "body_models"

HOW_TO_GET_SMPLX = (
    f"SMPL-X meshes need the licensed body model file {SMPLX_FILENAME}. Register (free for research) at "
    f"https://smpl-x.is.tue.mpg.de, download 'SMPL-X v1.1 (NPZ+PKL)', and put {SMPLX_FILENAME} in one of: "
    f"a folder passed as body_model=..., the folder named by ${ENV_VAR}, or {DEFAULT_DIR} (a 'smplx/' "
    "subfolder works too). Without it, reconstruction still returns SMPL-X parameters, head "
    "positions, cameras and scene points, but no meshes."
)


class BodyModelNotFound(FileNotFoundError):
    """The SMPL-X model file is missing; the message says how to obtain it."""


def find_smplx_file(location: str | os.PathLike | None = None) -> Path:
    """Resolve the SMPL-X ``.npz``: from ``location`` (a file or folder), ``$HUMAN3R_SMPLX_DIR``,
    or ``data/body_models/``. Raises :class:`BodyModelNotFound` with instructions."""
    candidates: list[Path] = []
    if location is not None:
        candidates.append(Path(location))
    elif os.environ.get(ENV_VAR):
        candidates.append(Path(os.environ[ENV_VAR]))
    else:
        candidates.append(DEFAULT_DIR)
    for base in candidates:
        if base.is_file():
            if base.suffix == ".pkl":
                raise BodyModelNotFound(
                    f"{base} is the .pkl release of SMPL-X, which needs chumpy (not installable here); "
                    f"use the .npz release ({SMPLX_FILENAME}) from https://smpl-x.is.tue.mpg.de"
                )
            return base
        for path in (base / SMPLX_FILENAME, base / "smplx" / SMPLX_FILENAME):
            if path.is_file():
                return path
    searched = ", ".join(str(c) for c in candidates)
    raise BodyModelNotFound(f"no {SMPLX_FILENAME} found (looked in {searched}). {HOW_TO_GET_SMPLX}")


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

        self.path = find_smplx_file(location)
        try:
            self.layer = smplx.create(
                str(self.path), "smplx", gender="neutral", use_pca=False, flat_hand_mean=True, num_betas=10
            ).to(device)
        except Exception as err:  # a truncated or foreign .npz
            raise BodyModelNotFound(f"{self.path} could not be read as an SMPL-X model ({err}). {HOW_TO_GET_SMPLX}") from None
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
