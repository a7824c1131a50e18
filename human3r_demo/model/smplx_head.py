"""SMPL-X read-out: each refined human token -> 53 joint rotations, shape, expression, head position.

For a person with refined token ``r`` (the human prompt after the decoder) and detection token ``m``
(the DINOv2 token of their head cell)::

    pose6d     = MLP_pose([r, m]) + mean pose         -> 53 rotations by Gram-Schmidt
    betas      = MLP_shape([r, m]) + mean shape
    expression = MLP_expression([r, m])
    t_head     = exp_distance(MLP_cam(r))              the SMPL-X *head* joint in the camera frame

``head_position`` anchors the body at its head, not at the pelvis as SMPL-X's ``transl`` does.

Adapted from fanegg/Human3R@e313921 ``src/dust3r/heads/dpt_head.py`` (``DPTPts3dPoseSMPL``: ``decpose``,
``decshape``, ``decexpression``, ``deccam``) and ``src/dust3r/heads/postprocess.py``
(``rot6d_to_rotmat``, ``postprocess_smpl``); docs/ARCHITECTURE.md 8.4.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import roma
import torch
from torch import Tensor, nn

from ..config import Human3RConfig
from ..smplx_layout import NUM_BETAS, NUM_EXPRESSION, NUM_ROTATIONS
from .activations import exp_distance
from .layers import two_layer_mlp

__all__ = ["SMPLXPrediction", "SMPLXRegressor", "exp_distance", "rot6d_to_rotmat"]


def rot6d_to_rotmat(x: Tensor) -> Tensor:
    """(..., 6) read as a row-major 3x2 matrix -> Gram-Schmidt rotation (..., 3, 3)."""
    return roma.special_gramschmidt(x.reshape(*x.shape[:-1], 3, 2), epsilon=1e-6)


@dataclass
class SMPLXPrediction:
    """SMPL-X parameters of the n people of one frame (camera frame, metres up to scene scale).

    Attributes:
        rotmat: (1, n, 53, 3, 3) joint rotations in Human3R's order (:mod:`~human3r_demo.smplx_layout`).
        betas: (1, n, 10) shape coefficients.
        expression: (1, n, 10) expression coefficients.
        head_position: (1, n, 3) camera-frame position of the SMPL-X head joint (the person centre;
            the reference's ``smpl_transl``).
        raw_pose, raw_betas, raw_expression, raw_cam: the regressor outputs before the mean
            parameters are added / the activation is applied.
    """

    rotmat: Tensor
    betas: Tensor
    expression: Tensor
    head_position: Tensor
    raw_pose: Tensor
    raw_betas: Tensor
    raw_expression: Tensor
    raw_cam: Tensor

    @property
    def transl(self) -> Tensor:
        """Deprecated name of :attr:`head_position` (CHANGELOG.md)."""
        warnings.warn("SMPLXPrediction.transl is now SMPLXPrediction.head_position (the head joint, not SMPL-X's "
                      "transl)", DeprecationWarning, stacklevel=2)
        return self.head_position


class SMPLXRegressor(nn.Module):
    """Four MLP read-outs of the refined human tokens, plus the SMPL-X mean parameters (buffers).

    It computes in its own weights' dtype (kept float32 in reduced precision: rotations and the
    head position feed the body model). The checkpoints also carry ``init_cam`` and
    ``init_betas_kid``, which inference never reads; they are dropped on load.
    """

    def __init__(self, config: Human3RConfig) -> None:
        super().__init__()
        dd, bb = config.dec_embed_dim, config.dinov2.embed_dim
        width = dd + bb
        self.pose_mlp = two_layer_mlp(width, 4 * width, 6 * NUM_ROTATIONS)
        self.shape_mlp = two_layer_mlp(width, 4 * width, NUM_BETAS)
        self.expression_mlp = two_layer_mlp(width, 4 * width, NUM_EXPRESSION)
        self.cam_mlp = two_layer_mlp(dd, 4 * dd, 3)
        self.reset_mean_parameters()

    def reset_mean_parameters(self, device: torch.device | str | None = None) -> None:
        """Identity rotations and zero shape and expression; checkpoints hold the SMPL mean pose here."""
        identity_6d = torch.tensor([1.0, 0.0, 0.0, 1.0, 0.0, 0.0], device=device).repeat(NUM_ROTATIONS)
        self.register_buffer("init_body_pose", identity_6d[None].clone())
        self.register_buffer("init_betas", torch.zeros(1, NUM_BETAS, device=device))
        self.register_buffer("init_expression", torch.zeros(1, NUM_EXPRESSION, device=device))

    def forward(self, refined_tokens: Tensor, detection_tokens: Tensor) -> SMPLXPrediction:
        """``refined_tokens`` (1, n, dd) from the decoder, ``detection_tokens`` (1, n, C_hmr) from DINOv2."""
        dtype = self.cam_mlp[0].weight.dtype
        refined_tokens = refined_tokens.to(dtype)
        x = torch.cat([refined_tokens, detection_tokens.to(dtype)], dim=-1)
        raw_pose, raw_betas = self.pose_mlp(x), self.shape_mlp(x)
        raw_expression, raw_cam = self.expression_mlp(x), self.cam_mlp(refined_tokens)
        pose6d = raw_pose + self.init_body_pose
        B, n = pose6d.shape[:2]
        return SMPLXPrediction(
            rotmat=rot6d_to_rotmat(pose6d.reshape(B, n, NUM_ROTATIONS, 6)),
            betas=raw_betas + self.init_betas,
            expression=raw_expression + self.init_expression,
            head_position=exp_distance(raw_cam),
            raw_pose=raw_pose,
            raw_betas=raw_betas,
            raw_expression=raw_expression,
            raw_cam=raw_cam,
        )
