"""Read-outs of the decoded image stream: the camera pose and the dense point maps.

* camera head: the decoded pose token -> translation (exp-scaled) + unit quaternion, camera-to-world
  in the frame of the first view of the current chunk;
* ``final_transform``: two transformer blocks on the image tokens, modulated by the pose token;
* three DPT heads: ``self`` (points in the camera frame + confidence), ``cross`` (points in the
  chunk's world frame, fed the pose-modulated tokens) and ``rgb`` (colours). The stream uses only
  ``self`` (world points are the camera points moved by the camera pose, as in the reference demo);
  the others are computed only when asked for (:data:`DENSE_HEADS`).

Adapted from fanegg/Human3R@e313921 ``src/dust3r/heads/dpt_head.py`` (``DPTPts3dPoseSMPL``,
``PoseDecoder``), ``src/dust3r/blocks.py`` (``ModLN``) and ``src/dust3r/heads/postprocess.py``;
ARCHITECTURE.md 8.1-8.3.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import Human3RConfig
from .dpt import DPTHead
from .layers import Mlp, ModulatedBlock
from .rope import RoPE2D
from .smplx_head import exp_distance

# the three DPT heads, by the names of their checkpoint modules (dpt_self, dpt_cross, dpt_rgb)
DENSE_HEADS = ("self", "cross", "rgb")


def camera_pose_activation(raw: Tensor) -> Tensor:
    """Raw (B, 7) -> ``[t (exp-scaled), q (unit, w >= 0)]``; q is ``(w, x, y, z)``."""
    t, q = raw[..., :3], raw[..., 3:7]
    d = t.norm(dim=-1, keepdim=True)
    t = t * (torch.expm1(d) / d.clip(min=1e-8))
    q = F.normalize(q, p=2, dim=-1)
    q = torch.where(q[..., :1] < 0, -q, q)
    return torch.cat([t, q], dim=-1)


@dataclass
class HeadsOutput:
    """Dense and camera outputs of one frame (``B = 1``; H, W the CUT3R image size), float32.

    Attributes:
        pts3d_self: (1, H, W, 3) points in the camera frame; conf_self: (1, H, W) >= 1.
        camera_pose: (1, 7) ``[t, q_wxyz]`` camera-to-world; pose_raw: (1, 7) before activation.
        pts3d_world, conf_world: the ``cross`` head's points predicted directly in the chunk's world
            frame and their confidence; tokens_cross: (1, N, dd) the pose-modulated tokens it reads.
        rgb: (1, H, W, 3) the ``rgb`` head's reconstructed colours in [-1, 1].
        The last four are ``None`` unless their head was asked for.
    """

    pts3d_self: Tensor
    conf_self: Tensor
    camera_pose: Tensor
    pose_raw: Tensor
    pts3d_world: Tensor | None = None
    conf_world: Tensor | None = None
    tokens_cross: Tensor | None = None
    rgb: Tensor | None = None


class DenseHeads(nn.Module):
    """Camera head, ``final_transform`` and the three DPT heads."""

    def __init__(self, config: Human3RConfig) -> None:
        super().__init__()
        ed, dd = config.enc_embed_dim, config.dec_embed_dim
        hook_dims = (ed, dd, dd, dd)
        rope = RoPE2D(config.rope_base)
        self.camera_head = Mlp(dd, int(dd * 4), 7)
        self.final_transform = nn.ModuleList(ModulatedBlock(dd, config.dec_num_heads, 4.0, rope=rope) for _ in range(2))
        self.dpt_self = DPTHead(hook_dims, config.dpt, 4, config.patch_size)
        self.dpt_cross = DPTHead(hook_dims, config.dpt, 4, config.patch_size)
        self.dpt_rgb = DPTHead(hook_dims, config.dpt, 3, config.patch_size)

    def forward(
        self,
        hooks: list[Tensor],
        image_pos: Tensor,
        image_hw: tuple[int, int],
        dense_heads: tuple[str, ...] = DENSE_HEADS,
    ) -> HeadsOutput:
        """``hooks`` = [encoder tokens (1,N,ed), layer L*2//4 (1,N,dd), layer L*3//4 (1,N,dd), layer L (1,1+N,dd)]
        with the pose token kept only in the last one; ``image_pos`` (1, N, 2); ``dense_heads``: which
        DPT heads to run besides ``self`` (always run: the stream's points)."""
        unknown = set(dense_heads) - set(DENSE_HEADS)
        if unknown:
            raise ValueError(f"unknown dense heads {sorted(unknown)}; choose from {DENSE_HEADS}")
        pose_token, tokens = hooks[3][:, 0], hooks[3][:, 1:]
        pose_raw = self.camera_head(pose_token.to(self.camera_head.fc1.weight.dtype)).float()
        self_hooks = hooks[:3] + [tokens]
        out_self = self.dpt_self(self_hooks, image_hw).permute(0, 2, 3, 1).float()
        out = HeadsOutput(
            pts3d_self=exp_distance(out_self[..., :3]),
            conf_self=1 + out_self[..., 3].exp(),
            camera_pose=camera_pose_activation(pose_raw),
            pose_raw=pose_raw,
        )
        if "cross" in dense_heads:
            dtype = self.final_transform[0].attn.qkv.weight.dtype
            tokens_cross, cond = tokens.to(dtype), pose_token.to(dtype)
            for block in self.final_transform:
                tokens_cross = block(tokens_cross, cond, image_pos)
            out_cross = self.dpt_cross(hooks[:3] + [tokens_cross], image_hw).permute(0, 2, 3, 1).float()
            out.pts3d_world = exp_distance(out_cross[..., :3])
            out.conf_world = 1 + out_cross[..., 3].exp()
            out.tokens_cross = tokens_cross
        if "rgb" in dense_heads:
            out_rgb = self.dpt_rgb(self_hooks, image_hw).permute(0, 2, 3, 1).float()
            out.rgb = (torch.sigmoid(out_rgb) * (1 - 2e-6) + 1e-6 - 0.5) * 2
        return out
