"""Read-outs of the decoded tokens: camera pose, dense point maps (DPT), colours and SMPL-X.

* camera head: the decoded pose token -> translation (exp-scaled) + unit quaternion, camera-to-world
  in the frame of the first view of the current chunk;
* ``final_transform``: two transformer blocks on the image tokens, modulated by the pose token;
* three DPT heads: ``dpt_self`` (points in the camera frame + confidence), ``dpt_cross`` (points in
  the world frame, fed the pose-modulated tokens) and ``dpt_rgb``;
* SMPL-X regressor: each refined human token (plus its DINOv2 token) -> 53 joint rotations (6D),
  shape, expression and the camera-frame position of the head joint.

DPT parameter names (``act_postprocess``, ``scratch.layer_rn``, ``refinenet``, ``resConfUnit``) are
those of the DPT / MiDaS code that the official model inherits.
"""

from __future__ import annotations

from dataclasses import dataclass

import roma
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import DPTConfig, Human3RConfig
from .layers import Mlp, ModulatedBlock, two_layer_mlp
from .rope import RoPE2D

NUM_SMPLX_ROTATIONS = 53  # global orientation, 21 body, 15 + 15 hand, jaw
NUM_BETAS = 10
NUM_EXPRESSION = 10


# ------------------------------------------------------------------------------ activations
def exp_distance(xyz: Tensor) -> Tensor:
    """Map a raw 3-vector to a point at distance ``expm1(|v|)`` along ``v`` (the ``'exp'`` depth mode)."""
    d = xyz.norm(dim=-1, keepdim=True)
    return xyz / d.clip(min=1e-8) * torch.expm1(d)


def camera_pose_activation(raw: Tensor) -> Tensor:
    """Raw (B, 7) -> ``[t (exp-scaled), q (unit, w >= 0)]``; q is ``(w, x, y, z)``."""
    t, q = raw[..., :3], raw[..., 3:7]
    d = t.norm(dim=-1, keepdim=True)
    t = t * (torch.expm1(d) / d.clip(min=1e-8))
    q = F.normalize(q, p=2, dim=-1)
    q = torch.where(q[..., :1] < 0, -q, q)
    return torch.cat([t, q], dim=-1)


def rot6d_to_rotmat(x: Tensor) -> Tensor:
    """(..., 6) read as a row-major 3x2 matrix -> Gram-Schmidt rotation (..., 3, 3)."""
    return roma.special_gramschmidt(x.reshape(*x.shape[:-1], 3, 2), epsilon=1e-6)


# ------------------------------------------------------------------------------ DPT
class ResidualConvUnit(nn.Module):
    """``conv2(relu(conv1(relu(x)))) + x``, 3x3 convolutions."""

    def __init__(self, features: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(features, features, 3, padding=1)
        self.conv2 = nn.Conv2d(features, features, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv2(F.relu(self.conv1(F.relu(x)))) + x


class FeatureFusionBlock(nn.Module):
    """``out_conv(up2(RCU2(x + RCU1(skip))))``; the deepest block has no skip input."""

    def __init__(self, features: int) -> None:
        super().__init__()
        self.resConfUnit1 = ResidualConvUnit(features)  # unused in refinenet4 (no skip there)
        self.resConfUnit2 = ResidualConvUnit(features)
        self.out_conv = nn.Conv2d(features, features, 1)

    def forward(self, x: Tensor, skip: Tensor | None = None) -> Tensor:
        if skip is not None:
            x = x + self.resConfUnit1(skip)
        x = self.resConfUnit2(x)
        x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)
        return self.out_conv(x)


class DPTScratch(nn.Module):
    def __init__(self, cfg: DPTConfig) -> None:
        super().__init__()
        self.layer_rn = nn.ModuleList(nn.Conv2d(d, cfg.feature_dim, 3, padding=1, bias=False) for d in cfg.layer_dims)
        self.refinenet1 = FeatureFusionBlock(cfg.feature_dim)
        self.refinenet2 = FeatureFusionBlock(cfg.feature_dim)
        self.refinenet3 = FeatureFusionBlock(cfg.feature_dim)
        self.refinenet4 = FeatureFusionBlock(cfg.feature_dim)


class DPTHead(nn.Module):
    """Dense prediction from four token maps (hooks) to a full-resolution ``out_channels`` map.

    The hooks are reassembled at strides 4, 8, 16 and 32 of the input image, projected to
    ``feature_dim``, fused coarse-to-fine, then upsampled x2 twice by the fusion blocks and the head.
    """

    def __init__(self, hook_dims: tuple[int, int, int, int], cfg: DPTConfig, out_channels: int, patch_size: int) -> None:
        super().__init__()
        self.patch_size = patch_size
        d = cfg.layer_dims

        def reassemble(i: int, *resample: nn.Module) -> nn.Sequential:
            return nn.Sequential(nn.Conv2d(hook_dims[i], d[i], 1), *resample)

        self.act_postprocess = nn.ModuleList(
            [
                reassemble(0, nn.ConvTranspose2d(d[0], d[0], kernel_size=4, stride=4)),
                reassemble(1, nn.ConvTranspose2d(d[1], d[1], kernel_size=2, stride=2)),
                reassemble(2),
                reassemble(3, nn.Conv2d(d[3], d[3], 3, stride=2, padding=1)),
            ]
        )
        self.scratch = DPTScratch(cfg)
        half = cfg.feature_dim // 2
        self.head = nn.Sequential(
            nn.Conv2d(cfg.feature_dim, half, 3, padding=1),
            nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True),
            nn.Conv2d(half, cfg.last_dim, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(cfg.last_dim, out_channels, 1),
        )

    def forward(self, hooks: list[Tensor], image_hw: tuple[int, int]) -> Tensor:
        """``hooks``: four (B, h*w, C_i) token maps -> (B, out_channels, H, W)."""
        H, W = image_hw
        h, w = H // self.patch_size, W // self.patch_size
        maps = [t.transpose(1, 2).reshape(t.shape[0], t.shape[2], h, w) for t in hooks]
        layers = [rn(post(m)) for m, post, rn in zip(maps, self.act_postprocess, self.scratch.layer_rn)]
        s = self.scratch
        # the stride-32 map has ceil(h/2) rows; crop back to the stride-16 size when h or w is odd
        path = s.refinenet4(layers[3])[:, :, : layers[2].shape[2], : layers[2].shape[3]]
        path = s.refinenet3(path, layers[2])
        path = s.refinenet2(path, layers[1])
        path = s.refinenet1(path, layers[0])
        return self.head(path)


# ------------------------------------------------------------------------------ SMPL-X
@dataclass
class SMPLXPrediction:
    """SMPL-X parameters of the n people of one frame (camera frame, metres up to scene scale).

    Attributes:
        rotmat: (1, n, 53, 3, 3) joint rotations: 0 global orientation, 1-21 body, 22-36 left hand,
            37-51 right hand, 52 jaw.
        betas: (1, n, 10) shape coefficients.
        expression: (1, n, 10) expression coefficients.
        transl: (1, n, 3) camera-frame position of the SMPL-X head joint (the person centre).
        raw_pose, raw_betas, raw_expression, raw_cam: the regressor outputs before the mean
            parameters are added / the activation is applied.
    """

    rotmat: Tensor
    betas: Tensor
    expression: Tensor
    transl: Tensor
    raw_pose: Tensor
    raw_betas: Tensor
    raw_expression: Tensor
    raw_cam: Tensor


class SMPLXRegressor(nn.Module):
    """Four MLP read-outs of the refined human tokens, plus the SMPL-X mean parameters (buffers).

    ``init_cam`` and ``init_betas_kid`` are carried by the checkpoints but not used at inference.
    """

    def __init__(self, config: Human3RConfig) -> None:
        super().__init__()
        dd, bb = config.dec_embed_dim, config.dinov2.embed_dim
        width = dd + bb
        self.token_dim = dd
        self.pose_mlp = two_layer_mlp(width, 4 * width, 6 * NUM_SMPLX_ROTATIONS)
        self.shape_mlp = two_layer_mlp(width, 4 * width, NUM_BETAS)
        self.expression_mlp = two_layer_mlp(width, 4 * width, NUM_EXPRESSION)
        self.cam_mlp = two_layer_mlp(dd, 4 * dd, 3)
        identity_6d = torch.tensor([1.0, 0.0, 0.0, 1.0, 0.0, 0.0]).repeat(NUM_SMPLX_ROTATIONS)
        self.register_buffer("init_body_pose", identity_6d[None].clone())
        self.register_buffer("init_betas", torch.zeros(1, NUM_BETAS))
        self.register_buffer("init_betas_kid", torch.zeros(1, NUM_BETAS + 1))
        self.register_buffer("init_cam", torch.zeros(1, 3))
        self.register_buffer("init_expression", torch.zeros(1, NUM_EXPRESSION))

    def forward(self, refined_tokens: Tensor, human_tokens: Tensor) -> SMPLXPrediction:
        """``refined_tokens`` (1, n, dd) from the decoder, ``human_tokens`` (1, n, C_hmr) from DINOv2."""
        x = torch.cat([refined_tokens, human_tokens], dim=-1)
        raw_pose, raw_betas = self.pose_mlp(x), self.shape_mlp(x)
        raw_expression, raw_cam = self.expression_mlp(x), self.cam_mlp(refined_tokens)
        pose6d = raw_pose + self.init_body_pose
        B, n = pose6d.shape[:2]
        return SMPLXPrediction(
            rotmat=rot6d_to_rotmat(pose6d.reshape(B, n, NUM_SMPLX_ROTATIONS, 6)),
            betas=raw_betas + self.init_betas,
            expression=raw_expression + self.init_expression,
            transl=exp_distance(raw_cam),
            raw_pose=raw_pose,
            raw_betas=raw_betas,
            raw_expression=raw_expression,
            raw_cam=raw_cam,
        )


# ------------------------------------------------------------------------------ all heads
@dataclass
class HeadsOutput:
    """Dense and camera outputs of one frame (``B = 1``; H, W the CUT3R image size).

    Attributes:
        pts3d_self: (1, H, W, 3) points in the camera frame; conf_self: (1, H, W) >= 1.
        pts3d_world: (1, H, W, 3) points predicted directly in the chunk's world frame; conf_world.
        rgb: (1, H, W, 3) reconstructed colours in [-1, 1].
        camera_pose: (1, 7) ``[t, q_wxyz]`` camera-to-world; pose_raw: (1, 7) before activation.
        tokens_cross: (1, N, dd) the pose-modulated image tokens fed to ``dpt_cross``.
    """

    pts3d_self: Tensor
    conf_self: Tensor
    pts3d_world: Tensor
    conf_world: Tensor
    rgb: Tensor
    camera_pose: Tensor
    pose_raw: Tensor
    tokens_cross: Tensor


class DenseHeads(nn.Module):
    """Camera head, ``final_transform`` and the three DPT heads."""

    def __init__(self, config: Human3RConfig) -> None:
        super().__init__()
        ed, dd = config.enc_embed_dim, config.dec_embed_dim
        hook_dims = (ed, dd, dd, dd)
        rope = RoPE2D(config.rope_base)
        self.camera_head = Mlp(dd, int(dd * 4), 7)
        self.final_transform = nn.ModuleList(
            ModulatedBlock(dd, config.dec_num_heads, 4.0, rope=rope) for _ in range(2)
        )
        self.dpt_self = DPTHead(hook_dims, config.dpt, 4, config.patch_size)
        self.dpt_cross = DPTHead(hook_dims, config.dpt, 4, config.patch_size)
        self.dpt_rgb = DPTHead(hook_dims, config.dpt, 3, config.patch_size)

    def forward(self, hooks: list[Tensor], image_pos: Tensor, image_hw: tuple[int, int]) -> HeadsOutput:
        """``hooks`` = [encoder tokens (1,N,ed), layer L/2 (1,N,dd), layer 3L/4 (1,N,dd), layer L (1,1+N,dd)]
        with the pose token kept only in the last one; ``image_pos`` (1, N, 2)."""
        pose_token, tokens = hooks[3][:, 0], hooks[3][:, 1:]
        pose_raw = self.camera_head(pose_token)
        tokens_cross = tokens
        for block in self.final_transform:
            tokens_cross = block(tokens_cross, pose_token, image_pos)
        self_hooks = hooks[:3] + [tokens]
        cross_hooks = hooks[:3] + [tokens_cross]

        out_self = self.dpt_self(self_hooks, image_hw).permute(0, 2, 3, 1)
        out_cross = self.dpt_cross(cross_hooks, image_hw).permute(0, 2, 3, 1)
        out_rgb = self.dpt_rgb(self_hooks, image_hw).permute(0, 2, 3, 1)
        return HeadsOutput(
            pts3d_self=exp_distance(out_self[..., :3]),
            conf_self=1 + out_self[..., 3].exp(),
            pts3d_world=exp_distance(out_cross[..., :3]),
            conf_world=1 + out_cross[..., 3].exp(),
            rgb=(torch.sigmoid(out_rgb) * (1 - 2e-6) + 1e-6 - 0.5) * 2,
            camera_pose=camera_pose_activation(pose_raw),
            pose_raw=pose_raw,
            tokens_cross=tokens_cross,
        )
