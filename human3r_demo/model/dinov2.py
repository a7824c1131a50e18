"""The Multi-HMR human encoder: a DINOv2 ViT (patch 14, LayerScale, no register tokens).

Its output is the *DINOv2 token grid*: one token per 14x14 patch of the padded square view,
each voting for "a head is centred here" (:mod:`~human3r_demo.model.detection`).

Adapted from fanegg/Human3R@e313921 ``src/mhmr/blocks/dinov2.py`` (``Dinov2Backbone``, which builds
``facebookresearch/dinov2``'s ``vision_transformer.py`` through torch.hub); written out here so that
no hub download is needed. Parameter names follow DINOv2's (``cls_token``, ``pos_embed``,
``blocks.i.ls1.gamma``, ...). docs/ARCHITECTURE.md 5.1.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import DINOv2Config
from .attention import attention
from .layers import Mlp, layer_norm


class LayerScale(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(dim))

    def forward(self, x: Tensor) -> Tensor:
        return x * self.gamma


class DINOv2Attention(nn.Module):
    """Plain softmax self-attention (no RoPE). In float32 through ``scaled_dot_product_attention``
    as the current DINOv2 code does (the explicit ``softmax(q k^T) v`` differs from it in the last
    bits); :func:`~human3r_demo.model.attention.attention` picks the kernel per device."""

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        B, N, C = x.shape
        q, k, v = self.qkv(x).reshape(B, N, 3, self.num_heads, C // self.num_heads).permute(2, 0, 3, 1, 4)
        out = attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(B, N, C))


class DINOv2Block(nn.Module):
    def __init__(self, dim: int, num_heads: int, mlp_ratio: float) -> None:
        super().__init__()
        self.norm1 = layer_norm(dim)
        self.attn = DINOv2Attention(dim, num_heads)
        self.ls1 = LayerScale(dim)
        self.norm2 = layer_norm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.ls2 = LayerScale(dim)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.ls1(self.attn(self.norm1(x)))
        return x + self.ls2(self.mlp(self.norm2(x)))


class DINOv2PatchEmbed(nn.Module):
    def __init__(self, dim: int, patch_size: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(3, dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)


class DINOv2(nn.Module):
    """DINOv2 ViT returning the normalised patch tokens of its last block (cls token dropped).

    The checkpoints also hold DINOv2's ``mask_token`` (masked-image training); it is dropped on load.
    """

    def __init__(self, config: DINOv2Config) -> None:
        super().__init__()
        self.config = config
        dim = config.embed_dim
        self.patch_size = config.patch_size
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + config.pos_grid**2, dim))
        self.patch_embed = DINOv2PatchEmbed(dim, config.patch_size)
        self.blocks = nn.ModuleList(DINOv2Block(dim, config.num_heads, config.mlp_ratio) for _ in range(config.depth))
        self.norm = layer_norm(dim)

    def interpolate_pos_embed(self, grid_h: int, grid_w: int) -> Tensor:
        """Resize the learned position table to a ``grid_h x grid_w`` token grid -> (1, 1 + gh*gw, C).

        Bicubic with ``scale_factor = (g + offset) / grid`` rather than ``size=g``: the two differ
        numerically, and the released weights were used with the former.
        """
        M = self.config.pos_grid
        if grid_h == M and grid_w == M:
            return self.pos_embed
        table = self.pos_embed.float()
        cls_pos, patch_pos = table[:, :1], table[:, 1:]
        dim = table.shape[-1]
        offset = self.config.interpolate_offset
        patch_pos = F.interpolate(
            patch_pos.reshape(1, M, M, dim).permute(0, 3, 1, 2),
            scale_factor=((grid_h + offset) / M, (grid_w + offset) / M),
            mode="bicubic",
            antialias=False,
        )
        if patch_pos.shape[-2:] != (grid_h, grid_w):
            raise RuntimeError(f"position table resized to {tuple(patch_pos.shape[-2:])}, expected {(grid_h, grid_w)}")
        patch_pos = patch_pos.permute(0, 2, 3, 1).reshape(1, -1, dim)
        return torch.cat((cls_pos, patch_pos), dim=1).to(self.pos_embed.dtype)

    def forward(self, images: Tensor) -> Tensor:
        """``images`` (B, 3, S, S), ImageNet-normalised -> DINOv2 tokens ``(B, g*g, C)`` in row-major order."""
        B, _, H, W = images.shape
        x = self.patch_embed(images)
        x = torch.cat((self.cls_token.expand(B, -1, -1), x), dim=1)
        x = x + self.interpolate_pos_embed(H // self.patch_size, W // self.patch_size)
        for block in self.blocks:
            x = block(x)
        return self.norm(x)[:, 1:]
