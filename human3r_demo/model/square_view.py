"""The Multi-HMR view of a frame: the CUT3R image fitted into an ``S x S`` square, and the way back.

Multi-HMR's DINOv2 reads a square image. Human3R makes it from the CUT3R view (already in [-1, 1]):
a bilinear resize that fits the long side to ``S`` (sizes truncated) and centred padding with -1,
i.e. black. Detections come out in padded-square pixels; :func:`unpad_uv` and :func:`unpad_map`
bring points and maps back onto the CUT3R image.

Adapted from fanegg/Human3R@e313921 ``src/dust3r/utils/image.py`` (``pad_image``, ``unpad_uv``,
``unpad_image``); docs/ARCHITECTURE.md 2.2 and 2.3.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def pad_to_square(image: Tensor, size: int, pad_value: float = -1.0) -> Tensor:
    """Fit (B, C, H, W) into a ``size x size`` square: bilinear resize (truncated sizes), centred padding."""
    _, _, H, W = image.shape
    scale = min(size / H, size / W)
    nh, nw = int(H * scale), int(W * scale)
    resized = F.interpolate(image, size=(nh, nw), mode="bilinear", align_corners=False)
    top, left = (size - nh) // 2, (size - nw) // 2
    return F.pad(resized, (left, size - nw - left, top, size - nh - top), mode="constant", value=pad_value)


def unpad_uv(uv: Tensor, square_size: int, height: int, width: int) -> Tensor:
    """Padded-square pixel coordinates (..., 2) ``(x, y)`` -> CUT3R image pixels, clamped into the image.

    The clamp is the reference's: a head detected in the padding lands on the image border.
    """
    M = max(height, width)
    offset = torch.tensor([(M - width) // 2, (M - height) // 2], dtype=uv.dtype, device=uv.device)
    out = uv * (M / square_size) - offset
    return torch.stack([out[..., 0].clamp(0, width - 1), out[..., 1].clamp(0, height - 1)], dim=-1)


def unpad_map(square_map: Tensor, height: int, width: int) -> Tensor:
    """A (B, g, g) map over the padded square -> (B, H, W) over the CUT3R image.

    Nearest-neighbour resize straight to ``max(H, W)`` squared, whatever ``g`` is, then a centre crop.
    """
    M = max(height, width)
    resized = F.interpolate(square_map[:, None], size=(M, M), mode="nearest")[:, 0]
    top, left = (M - height) // 2, (M - width) // 2
    return resized[:, top : top + height, left : left + width]
