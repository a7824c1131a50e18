"""The CUT3R image encoder: a ViT-L/16 with 2D RoPE and no absolute position embedding.

It turns a frame into the image tokens ``F_t`` (one per 16x16 patch) that the decoders, the human
prompts and the dense heads read.

Adapted from fanegg/Human3R@e313921 ``src/dust3r/model.py`` (``_encode_image``) and
``src/dust3r/patch_embed.py`` (``PatchEmbedDust3R``); docs/ARCHITECTURE.md 3.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..config import Human3RConfig
from .layers import EncoderBlock, layer_norm
from .rope import RoPE2D


class PatchEmbed(nn.Module):
    """Non-overlapping ``patch x patch`` convolution -> row-major tokens with their grid positions."""

    def __init__(self, in_channels: int, dim: int, patch_size: int) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Conv2d(in_channels, dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """``images`` (B, C, H, W), H and W multiples of the patch size.

        Returns:
            tokens ``(B, h*w, dim)`` and positions ``(B, h*w, 2)`` int64 ``(row, col)``.
        """
        B, _, H, W = images.shape
        p = self.patch_size
        if H % p or W % p:
            raise ValueError(f"image size {H}x{W} is not a multiple of the patch size {p}")
        tokens = self.proj(images).flatten(2).transpose(1, 2)
        return tokens, patch_positions(H // p, W // p, B, images.device)


def patch_positions(h: int, w: int, batch: int = 1, device: torch.device | str = "cpu") -> Tensor:
    """Row-major grid positions ``(batch, h*w, 2)`` int64, entry k = ``(k // w, k % w)``."""
    grid = torch.cartesian_prod(torch.arange(h, device=device), torch.arange(w, device=device))
    return grid[None].expand(batch, -1, -1)


class ImageEncoder(nn.Module):
    """CUT3R encoder: patchify, ``enc_depth`` RoPE blocks, final LayerNorm.

    The self-attention rounds queries and keys to float16 around the rotation, as the official
    model does (see :class:`~human3r_demo.model.layers.Attention`).
    """

    def __init__(self, config: Human3RConfig) -> None:
        super().__init__()
        dim = config.enc_embed_dim
        rope = RoPE2D(config.rope_base)
        self.patch_embed = PatchEmbed(3, dim, config.patch_size)
        self.blocks = nn.ModuleList(
            EncoderBlock(dim, config.enc_num_heads, config.mlp_ratio, rope=rope, fp16_rope=True)
            for _ in range(config.enc_depth)
        )
        self.norm = layer_norm(dim)

    def forward(self, image: Tensor) -> tuple[Tensor, Tensor]:
        """``image`` (B, 3, H, W) in [-1, 1] -> image tokens ``F`` (B, N, ed) and positions (B, N, 2)."""
        x, pos = self.patch_embed(image)
        for block in self.blocks:
            x = block(x, pos)
        return self.norm(x), pos
