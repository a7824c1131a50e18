"""Frame preprocessing: a decoded frame -> the two images the model reads.

* the **CUT3R view**: the frame resized so its long side is ``size`` (LANCZOS when shrinking,
  BICUBIC otherwise), centre-cropped to multiples of 16, scaled to ``[-1, 1]``;
* the **Multi-HMR view**: the CUT3R view (not the original frame) fitted into an ``S x S`` square
  (:func:`~human3r_demo.model.square_view.pad_to_square`).

Reproduces the reference's ``load_images`` exactly (PIL for resizing). Adapted from
fanegg/Human3R@e313921 ``src/dust3r/utils/image.py`` (``load_images``, ``crop_img``) and ``demo.py``
(``prepare_input``); docs/ARCHITECTURE.md 2.1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from .model.square_view import pad_to_square


@dataclass
class ModelInputs:
    """What the model reads for one frame.

    Attributes:
        image: (1, 3, H, W) float32 in [-1, 1], the CUT3R view; H, W multiples of 16.
        image_mhmr: (1, 3, S, S) float32 in [-1, 1], the padded Multi-HMR view.
        rgb: (H, W, 3) uint8, the cropped frame (for display and colouring points).
        geometry: how the source frame was resized and cropped into ``rgb``.
    """

    image: Tensor
    image_mhmr: Tensor
    rgb: np.ndarray
    geometry: CropGeometry

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


@dataclass(frozen=True)
class CropGeometry:
    """How a source frame becomes the model's image: resized to ``resized`` (W1, H1), then ``box`` cut out.

    A source pixel ``u`` (continuous, pixel centres at +0.5) lands at ``(u + 0.5) * W1 / W0 - 0.5 - left``
    in the model's image; :meth:`source_intrinsics` applies the inverse to an intrinsics matrix.
    """

    source: tuple[int, int]  # (W0, H0)
    resized: tuple[int, int]  # (W1, H1)
    box: tuple[int, int, int, int]  # (left, top, right, bottom) in the resized frame

    def source_intrinsics(self, K: np.ndarray) -> np.ndarray:
        """A pinhole ``K`` (3, 3) of the model's image -> the same camera in source-frame pixels."""
        sx, sy = self.resized[0] / self.source[0], self.resized[1] / self.source[1]
        left, top = self.box[:2]
        out = np.array(K, dtype=np.float64)
        out[0, 0], out[1, 1] = K[0, 0] / sx, K[1, 1] / sy
        out[0, 2] = (K[0, 2] + left + 0.5) / sx - 0.5
        out[1, 2] = (K[1, 2] + top + 0.5) / sy - 0.5
        return out


def crop_geometry(width: int, height: int, size: int = 512) -> CropGeometry:
    """The reference's resize and centre crop of a ``width x height`` frame at ``size``.

    ``size=224`` follows the reference's separate square branch: the short side is scaled to 224 and
    the centre square is kept.
    """
    if size % 16 or size < 32:
        raise ValueError(f"size must be a multiple of 16 and at least 32, got {size}")
    long_target = round(size * max(width / height, height / width)) if size == 224 else size
    W1, H1 = resized_shape(width, height, long_target)
    if size == 224:
        cx, cy = W1 // 2, H1 // 2
        half = min(cx, cy)
        box = (cx - half, cy - half, cx + half, cy + half)
    else:
        box = crop_box(W1, H1)
    if box[2] - box[0] < 16 or box[3] - box[1] < 16:
        raise ValueError(
            f"a {width}x{height} frame is too elongated: at size {size} its short side becomes less than 16 pixels"
        )
    return CropGeometry((width, height), (W1, H1), box)


def resize_and_crop(frame: np.ndarray, size: int = 512) -> np.ndarray:
    """(H0, W0, 3) uint8 RGB -> the cropped CUT3R frame (H, W, 3) uint8 (see :func:`crop_geometry`)."""
    img = Image.fromarray(frame)
    geometry = crop_geometry(*img.size, size)
    resample = Image.LANCZOS if max(img.size) > max(geometry.resized) else Image.BICUBIC
    return np.array(img.resize(geometry.resized, resample).crop(geometry.box))


def to_model_range(rgb: np.ndarray) -> Tensor:
    """(H, W, 3) uint8 -> (1, 3, H, W) float32 in [-1, 1]: ``(x / 255 - 0.5) / 0.5``."""
    t = torch.from_numpy(np.array(rgb, dtype=np.uint8)).permute(2, 0, 1).float().div(255)
    return t.sub(0.5).div(0.5)[None]


def prepare_frame(frame: np.ndarray, size: int, mhmr_img_res: int) -> ModelInputs:
    """A decoded RGB frame (H0, W0, 3) uint8 -> :class:`ModelInputs`."""
    rgb = resize_and_crop(frame, size)
    image = to_model_range(rgb)
    geometry = crop_geometry(frame.shape[1], frame.shape[0], size)
    return ModelInputs(image=image, image_mhmr=pad_to_square(image, mhmr_img_res), rgb=rgb, geometry=geometry)
