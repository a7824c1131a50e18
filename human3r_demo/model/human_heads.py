"""From DINOv2 human tokens to detected heads and *human prompts* (the Multi-HMR side of Human3R).

1. every DINOv2 token gets a head score (``sigmoid``, squeezed into ``[1e-6, 1 - 1e-6]``);
2. 3x3 max-pool NMS keeps local maxima; cells scoring at least the threshold are the detections,
   in row-major order (that order is the order of the people everywhere downstream);
3. a sub-patch offset places each head in padded-square pixels;
4. each head is mapped to the CUT3R patch that contains it, and the DINOv2 token and the CUT3R token
   of that patch are fused by an MLP into a human prompt, positioned at that patch for RoPE.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import Human3RConfig
from ..preprocess import unpad_uv
from .layers import two_layer_mlp


def squash_probability(logits: Tensor, eps: float = 1e-6) -> Tensor:
    """``sigmoid(x) * (1 - 2 eps) + eps``: probabilities kept away from exactly 0 and 1."""
    return torch.sigmoid(logits) * (1 - 2 * eps) + eps


def nms3x3(scores: Tensor) -> Tensor:
    """Zero every cell that is not the maximum of its 3x3 neighbourhood (ties all survive).

    ``scores`` (B, 1, g, g) -> same shape.
    """
    neighbourhood_max = F.max_pool2d(scores, 3, stride=1, padding=1)
    return scores * (neighbourhood_max == scores).float()


@dataclass
class HeadDetections:
    """Heads found in one frame. ``n`` = number of people; ``g`` = DINOv2 grid side; ``S`` = MHMR size.

    Attributes:
        head_logits: (1, g*g, 1) raw classifier output per DINOv2 token.
        head_scores: (1, g, g) head probability per token, before NMS.
        head_scores_nms: (1, g, g) after 3x3 NMS (zero where suppressed).
        cells: (n, 2) int64 ``(row, col)`` of the detected tokens, row-major order.
        offsets: (n, 2) sub-patch offsets ``(dx, dy)`` in token units.
        head_uv: (n, 2) head locations ``(x, y)`` in padded-square pixels (the reference's ``smpl_loc``).
        human_tokens: (1, n, C_hmr) DINOv2 tokens of the detected cells.
        mask_lowres: (1, g*g, 14*14) per-token human-mask probabilities (before the pixel shuffle).
        mask: (1, S, S) human-mask probability per padded-square pixel.
    """

    head_logits: Tensor
    head_scores: Tensor
    head_scores_nms: Tensor
    cells: Tensor
    offsets: Tensor
    head_uv: Tensor
    human_tokens: Tensor
    mask_lowres: Tensor
    mask: Tensor

    @property
    def num_humans(self) -> int:
        return int(self.cells.shape[0])


class HumanDetector(nn.Module):
    """Head detection, head offsets and the human mask, all read from DINOv2 tokens."""

    def __init__(self, config: Human3RConfig) -> None:
        super().__init__()
        bb = config.dinov2.embed_dim
        self.patch_size = config.dinov2.patch_size
        self.score_mlp = two_layer_mlp(bb, bb, 1, act=nn.ReLU)
        self.offset_mlp = two_layer_mlp(bb, bb, 2, act=nn.ReLU)
        self.mask_mlp = two_layer_mlp(bb, bb, self.patch_size**2)

    def forward(self, human_tokens: Tensor, threshold: float = 0.3) -> HeadDetections:
        """``human_tokens`` (1, g*g, C_hmr) -> :class:`HeadDetections` (batch size 1)."""
        if human_tokens.shape[0] != 1:
            raise ValueError("detection runs on one frame at a time (batch size 1)")
        g = int(round(human_tokens.shape[1] ** 0.5))
        logits = self.score_mlp(human_tokens)
        scores = squash_probability(logits).reshape(1, 1, g, g)
        scores_nms = nms3x3(scores)
        rows, cols = torch.where(scores_nms[0, 0] >= threshold)  # row-major order
        cells = torch.stack([rows, cols], dim=-1)

        tokens = human_tokens[0].reshape(g, g, -1)[rows, cols]  # (n, C)
        offsets = self.offset_mlp(tokens)
        head_uv = (torch.stack([cols, rows], dim=-1) + 0.5 + offsets) * self.patch_size

        mask_lowres = squash_probability(self.mask_mlp(human_tokens))
        mask = F.pixel_shuffle(mask_lowres.transpose(1, 2).reshape(1, -1, g, g), self.patch_size)
        return HeadDetections(
            head_logits=logits,
            head_scores=scores[:, 0],
            head_scores_nms=scores_nms[:, 0],
            cells=cells,
            offsets=offsets,
            head_uv=head_uv,
            human_tokens=tokens[None],
            mask_lowres=mask_lowres,
            mask=mask[:, 0],
        )


@dataclass
class HumanPrompts:
    """The per-person queries that enter the decoder with the image tokens.

    Attributes:
        head_uv: (n, 2) head locations ``(x, y)`` in CUT3R image pixels (clamped into the image).
        positions: (1, n, 2) int64 ``(row, col)`` of the CUT3R patch under each head (RoPE position).
        fusion_input: (1, n, C_hmr + ed) ``[DINOv2 token, CUT3R token]`` per person.
        prompts: (1, n, dd) the human prompts ``H = MLP(F_hmr[u] ++ F[u])``.
    """

    head_uv: Tensor
    positions: Tensor
    fusion_input: Tensor
    prompts: Tensor


class PromptFusion(nn.Module):
    """Fuses each detected person's DINOv2 token with the CUT3R token under its head."""

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
        fusion_input = torch.cat([detections.human_tokens[0], cut3r_tokens], dim=-1)[None]
        return HumanPrompts(
            head_uv=head_uv,
            positions=torch.stack([rows, cols], dim=-1)[None],
            fusion_input=fusion_input,
            prompts=self.mlp(fusion_input),
        )
