"""Any image -> 8-bit RGB, with its values scaled correctly, whatever it came as.

PIL opens images in many modes: 16-bit and 32-bit greyscale (``I;16``, ``I``), floating point
(``F``), palettes with or without transparency (``P``, ``PA``), grey or colour with alpha (``LA``,
``RGBA``), bilevel (``1``) and CMYK. ``Image.convert("RGB")`` clips the wide ones instead of
scaling them (a 16-bit PNG comes out almost white), so each kind is mapped here by its range:
16-bit to 8-bit by /257, floats by their range, transparent pixels composited over black.
Arrays get the same treatment by dtype.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

__all__ = ["ImageError", "MAX_PIXELS", "MIN_SIDE", "pil_to_array", "to_rgb"]

MIN_SIDE = 64
MAX_PIXELS = 7680 * 4320 * 2  # beyond 2x 8K a frame is almost certainly not a video frame


class ImageError(ValueError):
    """Something that is not an image, or not a usable one; the message says what it is."""


def pil_to_array(img: Image.Image) -> np.ndarray:
    """A PIL image in any mode -> (H, W) or (H, W, 3) uint8, values scaled from the mode's range."""
    mode = img.mode
    if mode.startswith("I;16") or mode == "I":
        wide = np.asarray(img).astype(np.float64)
        white = 65535.0 if mode.startswith("I;16") or wide.max(initial=0) <= 65535 else wide.max()
        return _scale(wide, white)
    if mode == "F":
        values = np.asarray(img, dtype=np.float64)
        return _scale(values, _float_white(values))
    if mode in ("1", "L"):
        return np.asarray(img.convert("L"))
    if mode in ("P", "PA", "LA", "La", "RGBA", "RGBa") or "transparency" in img.info:
        rgba = np.asarray(img.convert("RGBA")).astype(np.float64)
        return np.round(rgba[..., :3] * (rgba[..., 3:] / 255.0)).astype(np.uint8)  # over black
    return np.asarray(img.convert("RGB"))


def to_rgb(image: object, what: str = "frame") -> np.ndarray:
    """Any grey / RGB / RGBA image (a PIL image, or an array of any numeric dtype) -> (H, W, 3) uint8 RGB.

    Array ranges by dtype: uint8 as is, other integers as 16-bit (/257) when they exceed 255,
    floats in [0, 1] (or [0, 255], or up to 65535), bool as black and white. Alpha is composited
    over black. Raises :class:`ImageError` for anything else, saying what it got.
    """
    if isinstance(image, Image.Image):
        image = pil_to_array(image)
    if image is None or isinstance(image, (str, bytes, bytearray, dict, int, float)):
        raise ImageError(f"{what} is a {type(image).__name__}, not an image (expected an (H, W[, 3|4]) array or a PIL image)")
    arr = np.asarray(image)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise ImageError(f"{what} is a {type(image).__name__} of {arr.dtype}, not an image of numbers")
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=-1)
    if arr.ndim != 3 or arr.shape[-1] not in (3, 4):
        raise ImageError(f"{what}: expected an (H, W), (H, W, 3) or (H, W, 4) image, got shape {arr.shape}")
    arr = _to_uint8(arr, what)
    if arr.shape[-1] == 4:
        arr = np.round(arr[..., :3] * (arr[..., 3:].astype(np.float64) / 255.0)).astype(np.uint8)
    h, w = arr.shape[:2]
    if min(h, w) < MIN_SIDE:
        raise ImageError(f"{what} is {w}x{h} pixels; frames need at least {MIN_SIDE} pixels on each side")
    if h * w > MAX_PIXELS:
        raise ImageError(f"{what} is {w}x{h} pixels, larger than 2x 8K; downscale it first")
    return np.ascontiguousarray(arr)


def _to_uint8(arr: np.ndarray, what: str) -> np.ndarray:
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype == bool:
        return arr.astype(np.uint8) * 255
    values = arr.astype(np.float64)
    if not np.isfinite(values).all():
        raise ImageError(f"{what}: the image holds NaN or infinite values")
    if values.min() < 0:
        raise ImageError(f"{what}: the image holds negative values (min {values.min():g}); pixels are 0 or more")
    if np.issubdtype(arr.dtype, np.floating):
        return _scale(values, _float_white(values))
    top = values.max(initial=0)
    if arr.dtype == np.uint16 or 255 < top <= 65535:  # 16-bit data
        return _scale(values, 65535.0)
    return _scale(values, 255.0 if top <= 255 else top)


def _float_white(values: np.ndarray) -> float:
    """The value that means white for a float image: 1, 255 or 65535, whichever range holds it."""
    top = float(np.nanmax(values)) if values.size else 0.0
    for white in (1.0, 255.0, 65535.0):
        if top <= white:
            return white
    return top


def _scale(values: np.ndarray, white: float) -> np.ndarray:
    return np.round(np.clip(values, 0, white) / white * 255.0).astype(np.uint8)
