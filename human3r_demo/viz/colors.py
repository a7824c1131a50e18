"""Stable colours: each track id keeps its colour in the viewer and in the exported meshes."""

from __future__ import annotations

import colorsys

import numpy as np


def track_colour(track_id: int) -> np.ndarray:
    """RGB uint8 (3,) for a track id; golden-ratio hue steps keep neighbouring ids apart."""
    hue = (track_id * 0.618033988749895) % 1.0
    return (np.array(colorsys.hsv_to_rgb(hue, 0.65, 0.95)) * 255).astype(np.uint8)
