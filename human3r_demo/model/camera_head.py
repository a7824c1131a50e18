"""The camera head: the decoded pose token -> the camera-to-world pose of the frame.

    raw         = MLP(pose token)                       (1, 7)
    t           = exp_distance(raw[:3])                 translation, exp-scaled
    q           = raw[3:7] / |raw[3:7]|, w >= 0         unit quaternion (w, x, y, z)

The pose is camera-to-world in the frame of the first view of the current chunk (the stream chains
the chunks; :class:`~human3r_demo.geometry.ChunkAligner`).

Adapted from fanegg/Human3R@e313921 ``src/dust3r/heads/dpt_head.py`` (``PoseDecoder``) and
``src/dust3r/heads/postprocess.py`` (``postprocess_pose``); docs/ARCHITECTURE.md 8.1.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import Human3RConfig
from .activations import exp_distance
from .layers import Mlp

__all__ = ["CameraHead", "camera_pose_activation"]


def camera_pose_activation(raw: Tensor) -> Tensor:
    """Raw (..., 7) -> ``[t (exp-scaled), q (unit, w >= 0)]``; q is ``(w, x, y, z)``."""
    t, q = raw[..., :3], raw[..., 3:7]
    q = F.normalize(q, p=2, dim=-1)
    q = torch.where(q[..., :1] < 0, -q, q)
    return torch.cat([exp_distance(t), q], dim=-1)


class CameraHead(nn.Module):
    """``fc2(GELU(fc1(pose token)))`` with 4x hidden width, then :func:`camera_pose_activation`.

    It computes in its own weights' dtype (kept float32 in reduced precision: the pose is chained
    over the whole video; see :meth:`Human3R.cast`).
    """

    def __init__(self, config: Human3RConfig) -> None:
        super().__init__()
        dd = config.dec_embed_dim
        self.mlp = Mlp(dd, 4 * dd, 7)

    def forward(self, pose_token: Tensor) -> tuple[Tensor, Tensor]:
        """``pose_token`` (1, dd) -> ``(camera_pose, camera_pose_raw)``, each (1, 7) float32."""
        raw = self.mlp(pose_token.to(self.mlp.fc1.weight.dtype)).float()
        return camera_pose_activation(raw), raw
