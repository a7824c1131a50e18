"""Human prompts: one query per detected person, fused from two tokens under the same head.

For a head detected at ``u`` (mapped from the padded square onto the CUT3R image), the detection
token ``F_hmr[u]`` and the CUT3R image token ``F[u]`` of the 16x16 patch under it are concatenated
and projected by an MLP::

    H = Head_projection(F_hmr[u] (+) F[u])        (the paper's order is [F, F_hmr]; the code's is
                                                    [F_hmr, F], reproduced here)

Each prompt enters the decoder beside the image tokens, at the RoPE position of that patch.

Adapted from fanegg/Human3R@e313921 ``src/dust3r/model.py`` (``smpl_tokenizer_cut3r``,
``token_fuse``); docs/ARCHITECTURE.md 5.3.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..config import Human3RConfig
from .detection import HeadDetections
from .layers import two_layer_mlp
from .square_view import unpad_uv


@dataclass
class HumanPrompts:
    """The per-person queries that enter the decoder with the image tokens.

    Attributes:
        head_uv: (n, 2) head locations ``(x, y)`` in CUT3R image pixels (clamped into the image).
        positions: (1, n, 2) int64 ``(row, col)`` of the CUT3R patch under each head (RoPE position).
        fusion_input: (1, n, C_hmr + ed) ``[detection token, CUT3R token]`` per person.
        prompts: (1, n, dd) the human prompts ``H``.
    """

    head_uv: Tensor
    positions: Tensor
    fusion_input: Tensor
    prompts: Tensor


class PromptFusion(nn.Module):
    """Fuses each detected person's detection token with the CUT3R token under its head."""

    def __init__(self, config: Human3RConfig) -> None:
        super().__init__()
        width = config.dinov2.embed_dim + config.enc_embed_dim
        self.patch_size = config.patch_size
        self.mhmr_img_res = config.mhmr_img_res
        self.mlp = two_layer_mlp(width, 4 * width, config.dec_embed_dim)

    def forward(self, detections: HeadDetections, image_tokens: Tensor, image_hw: tuple[int, int]) -> HumanPrompts:
        """``image_tokens`` (1, h*w, ed) from the CUT3R encoder of an ``image_hw = (H, W)`` image."""
        H, W = image_hw
        h, w = H // self.patch_size, W // self.patch_size
        head_uv = unpad_uv(detections.head_uv, self.mhmr_img_res, H, W)
        patch = (head_uv // self.patch_size).long()  # (n, 2) as (col, row)
        cols, rows = patch[:, 0], patch[:, 1]
        cut3r_tokens = image_tokens[0].reshape(h, w, -1)[rows, cols]
        dtype = self.mlp[0].weight.dtype
        fusion_input = torch.cat([detections.detection_tokens[0].to(dtype), cut3r_tokens.to(dtype)], dim=-1)[None]
        return HumanPrompts(
            head_uv=head_uv,
            positions=torch.stack([rows, cols], dim=-1)[None],
            fusion_input=fusion_input,
            prompts=self.mlp(fusion_input),
        )
