"""Head detection on the DINOv2 token grid (Multi-HMR's human encoder output, one token per 14-px patch).

1. every DINOv2 token gets a head score ``s = sigmoid(MLP_head(T))``, squeezed into
   ``[1e-6, 1 - 1e-6]``;
2. 3x3 max-pool NMS keeps local maxima; cells scoring at least the threshold ``tau`` (0.3) are the
   detections, in row-major order (that order is the order of the people everywhere downstream);
   their tokens are the *detection tokens*, one per person;
3. a sub-patch offset places each head in padded-square pixels;
4. a mask head turns every token into a 14x14 patch of human-mask probabilities.

The paper writes the detector on the CUT3R features ``F``; the released code (reproduced here) runs
it on the DINOv2 tokens, which depend only on the current image, not on the state.

Adapted from fanegg/Human3R@e313921 ``src/dust3r/model.py`` (``smpl_tokenizer_mhmr``) and
``src/dust3r/smpl_model.py`` (``nms``); docs/ARCHITECTURE.md 5.2.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import Human3RConfig
from .activations import squash_probability
from .layers import two_layer_mlp

__all__ = ["DETECTION_THRESHOLD", "HeadDetections", "HumanDetector", "nms3x3", "squash_probability"]

DETECTION_THRESHOLD = 0.3  # the reference's tau: minimum post-NMS head score of a person


def nms3x3(scores: Tensor) -> Tensor:
    """Zero every cell that is not the maximum of its 3x3 neighbourhood (ties all survive).

    ``scores`` (B, 1, g, g) -> same shape.
    """
    neighbourhood_max = F.max_pool2d(scores, 3, stride=1, padding=1)
    return scores * (neighbourhood_max == scores).to(scores.dtype)


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
        detection_tokens: (1, n, C_hmr) the DINOv2 tokens of the detected cells, one per person.
        mask_lowres: (1, g*g, 14*14) per-token human-mask probabilities (before the pixel shuffle).
        mask: (1, S, S) human-mask probability per padded-square pixel.
    """

    head_logits: Tensor
    head_scores: Tensor
    head_scores_nms: Tensor
    cells: Tensor
    offsets: Tensor
    head_uv: Tensor
    detection_tokens: Tensor
    mask_lowres: Tensor
    mask: Tensor

    @property
    def num_humans(self) -> int:
        return int(self.cells.shape[0])

    @property
    def human_tokens(self) -> Tensor:
        """Deprecated name of :attr:`detection_tokens` (CHANGELOG.md)."""
        warnings.warn("HeadDetections.human_tokens is now HeadDetections.detection_tokens", DeprecationWarning, stacklevel=2)
        return self.detection_tokens

    @property
    def scores(self) -> Tensor:
        """(n,) post-NMS score of each detection."""
        return self.head_scores_nms[0][self.cells[:, 0], self.cells[:, 1]]


class HumanDetector(nn.Module):
    """Head scores, head offsets and the human mask, all read from the DINOv2 tokens.

    It computes in its own weights' dtype (kept float32 in reduced precision, so that detection
    decisions are taken on float32 scores; see :meth:`Human3R.cast`).
    """

    def __init__(self, config: Human3RConfig) -> None:
        super().__init__()
        bb = config.dinov2.embed_dim
        self.patch_size = config.dinov2.patch_size
        self.score_mlp = two_layer_mlp(bb, bb, 1, act=nn.ReLU)
        self.offset_mlp = two_layer_mlp(bb, bb, 2, act=nn.ReLU)
        self.mask_mlp = two_layer_mlp(bb, bb, self.patch_size**2)

    def forward(self, dinov2_tokens: Tensor, threshold: float = DETECTION_THRESHOLD) -> HeadDetections:
        """``dinov2_tokens`` (1, g*g, C_hmr) -> :class:`HeadDetections` (batch size 1)."""
        if dinov2_tokens.shape[0] != 1:
            raise ValueError("detection runs on one frame at a time (batch size 1)")
        tokens_all = dinov2_tokens.to(self.score_mlp[0].weight.dtype)
        g = int(round(tokens_all.shape[1] ** 0.5))
        logits = self.score_mlp(tokens_all)
        scores = squash_probability(logits).reshape(1, 1, g, g)
        scores_nms = nms3x3(scores)
        rows, cols = torch.where(scores_nms[0, 0] >= threshold)  # row-major order
        cells = torch.stack([rows, cols], dim=-1)

        tokens = tokens_all[0].reshape(g, g, -1)[rows, cols]  # (n, C)
        offsets = self.offset_mlp(tokens)
        head_uv = (torch.stack([cols, rows], dim=-1) + 0.5 + offsets) * self.patch_size

        mask_lowres = squash_probability(self.mask_mlp(tokens_all))
        mask = F.pixel_shuffle(mask_lowres.transpose(1, 2).reshape(1, -1, g, g), self.patch_size)
        return HeadDetections(
            head_logits=logits,
            head_scores=scores[:, 0],
            head_scores_nms=scores_nms[:, 0],
            cells=cells,
            offsets=offsets,
            head_uv=head_uv,
            detection_tokens=tokens[None],
            mask_lowres=mask_lowres,
            mask=mask[:, 0],
        )
