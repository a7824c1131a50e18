"""Frame preprocessing: the two views of a frame the model reads, and the maps between them.

* the **CUT3R view**: the frame resized so its long side is ``size`` (LANCZOS when shrinking,
  BICUBIC otherwise), centre-cropped to multiples of 16, scaled to ``[-1, 1]``;
* the **Multi-HMR view**: the CUT3R view (not the original frame) resized bilinearly to fit an
  ``S x S`` square and padded with -1 (black).

:func:`unpad_uv` and :func:`unpad_map` bring padded-square coordinates and maps back to the CUT3R
image. These reproduce the reference's ``load_images``, ``pad_image``, ``unpad_uv`` and
``unpad_image`` exactly (PIL for resizing, the same tensor ops for the rest).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

# ImageNet statistics of the DINOv2 input normalisation
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class FrameViews:
    """What the model reads for one frame.

    Attributes:
        image: (1, 3, H, W) float32 in [-1, 1], the CUT3R view; H, W multiples of 16.
        image_mhmr: (1, 3, S, S) float32 in [-1, 1], the padded Multi-HMR view.
        rgb: (H, W, 3) uint8, the cropped frame (for display and colouring points).
    """

    image: Tensor
    image_mhmr: Tensor
    rgb: np.ndarray

    @property
    def hw(self) -> tuple[int, int]:
        return int(self.image.shape[-2]), int(self.image.shape[-1])


def crop_box(width: int, height: int) -> tuple[int, int, int, int]:
    """The reference's centre crop of a resized frame to multiples of 16 (PIL box ``(l, t, r, b)``).

    A square frame is cropped to 4:3, as the reference does.
    """
    cx, cy = width // 2, height // 2
    halfw, halfh = ((2 * cx) // 16) * 8, ((2 * cy) // 16) * 8
    if width == height:
        halfh = 3 * halfw / 4
    # PIL rounds a float box the same way
    return tuple(int(round(v)) for v in (cx - halfw, cy - halfh, cx + halfw, cy + halfh))


def resized_shape(width: int, height: int, size: int) -> tuple[int, int]:
    """``(W, H)`` after scaling the long side to ``size`` (Python ``round``, like the reference)."""
    long_side = max(width, height)
    return tuple(int(round(v * size / long_side)) for v in (width, height))


def resize_and_crop(frame: np.ndarray, size: int = 512) -> np.ndarray:
    """(H0, W0, 3) uint8 RGB -> the cropped CUT3R frame (H, W, 3) uint8.

    ``size=224`` follows the reference's separate square branch: the short side is scaled to 224 and
    the centre square is kept.
    """
    if size % 16 or size < 32:
        raise ValueError(f"size must be a multiple of 16 and at least 32, got {size}")
    img = Image.fromarray(frame)
    W0, H0 = img.size
    long_target = round(size * max(W0 / H0, H0 / W0)) if size == 224 else size
    resample = Image.LANCZOS if max(img.size) > long_target else Image.BICUBIC
    img = img.resize(resized_shape(W0, H0, long_target), resample)
    if size == 224:
        cx, cy = img.size[0] // 2, img.size[1] // 2
        half = min(cx, cy)
        box = (cx - half, cy - half, cx + half, cy + half)
    else:
        box = crop_box(*img.size)
    if box[2] - box[0] < 16 or box[3] - box[1] < 16:
        raise ValueError(
            f"a {W0}x{H0} frame is too elongated: at size {size} its short side becomes less than 16 pixels"
        )
    return np.array(img.crop(box))


def to_model_range(rgb: np.ndarray) -> Tensor:
    """(H, W, 3) uint8 -> (1, 3, H, W) float32 in [-1, 1]: ``(x / 255 - 0.5) / 0.5``."""
    t = torch.from_numpy(np.array(rgb, dtype=np.uint8)).permute(2, 0, 1).float().div(255)
    return t.sub(0.5).div(0.5)[None]


def pad_to_square(image: Tensor, size: int, pad_value: float = -1.0) -> Tensor:
    """Fit (B, C, H, W) into a ``size x size`` square: bilinear resize (truncated sizes), centred padding."""
    _, _, H, W = image.shape
    scale = min(size / H, size / W)
    nh, nw = int(H * scale), int(W * scale)
    resized = F.interpolate(image, size=(nh, nw), mode="bilinear", align_corners=False)
    top, left = (size - nh) // 2, (size - nw) // 2
    return F.pad(resized, (left, size - nw - left, top, size - nh - top), mode="constant", value=pad_value)


def mhmr_normalize(image_mhmr: Tensor) -> Tensor:
    """[-1, 1] -> ImageNet-normalised DINOv2 input."""
    mean = torch.tensor(IMAGENET_MEAN, device=image_mhmr.device)[None, :, None, None]
    std = torch.tensor(IMAGENET_STD, device=image_mhmr.device)[None, :, None, None]
    return (image_mhmr * 0.5 + 0.5 - mean) / std


def unpad_uv(uv: Tensor, square_size: int, height: int, width: int) -> Tensor:
    """Padded-square pixel coordinates (..., 2) ``(x, y)`` -> CUT3R image pixels, clamped into the image."""
    M = max(height, width)
    offset = torch.tensor([(M - width) // 2, (M - height) // 2], dtype=uv.dtype, device=uv.device)
    out = uv * (M / square_size) - offset
    return torch.stack(
        [out[..., 0].clamp(0, width - 1), out[..., 1].clamp(0, height - 1)], dim=-1
    )


def unpad_map(square_map: Tensor, height: int, width: int) -> Tensor:
    """A (B, g, g) map over the padded square -> (B, H, W) over the CUT3R image.

    Nearest-neighbour resize straight to ``max(H, W)`` squared, then a centre crop.
    """
    M = max(height, width)
    resized = F.interpolate(square_map[:, None], size=(M, M), mode="nearest")[:, 0]
    top, left = (M - height) // 2, (M - width) // 2
    return resized[:, top : top + height, left : left + width]


def prepare_frame(frame: np.ndarray, size: int, mhmr_img_res: int) -> FrameViews:
    """A decoded RGB frame (H0, W0, 3) uint8 -> :class:`FrameViews`."""
    rgb = resize_and_crop(frame, size)
    image = to_model_range(rgb)
    return FrameViews(image=image, image_mhmr=pad_to_square(image, mhmr_img_res), rgb=rgb)
