"""The people of one frame drawn over the image the model saw, through the frame's own camera."""

from __future__ import annotations

import numpy as np
from PIL import Image

from ..geometry import display_intrinsics
from ..results import FrameResult
from .camera import Camera, scale_intrinsics
from .people import people_primitives
from .renderer import GLRenderer

__all__ = ["composite", "overlay_camera", "render_overlay"]


def overlay_camera(result: FrameResult, width: int, height: int) -> Camera:
    """The frame's camera (pose and intrinsics, a 60-degree view if the focal is unusable) for a ``width x height`` image."""
    H, W = result.image.shape[:2]
    K = scale_intrinsics(display_intrinsics(result.intrinsics, H, W), width / W, height / H)
    return Camera(K, np.linalg.inv(result.camera_to_world), width, height, near=0.01, far=1000.0)


def render_overlay(
    result: FrameResult,
    faces: np.ndarray | None,
    *,
    renderer: GLRenderer | None = None,
    size: tuple[int, int] | None = None,
    opacity: float = 0.85,
) -> np.ndarray:
    """(H, W, 3) uint8: ``result.image`` with the frame's SMPL-X meshes over it, shaded and depth-tested.

    Args:
        result: the frame; its people's world-frame ``vertices`` are seen through ``camera_to_world``
            and ``intrinsics``.
        faces: (F, 3) SMPL-X triangles (``BodyModel.faces``); ``None``, or a person without
            vertices (no SMPL-X model file), gets a disc at the head instead (:mod:`.people`).
        renderer: the run's renderer; ``None`` makes one for this call alone (slow: for one-off pictures).
        size: ``(width, height)`` of the output (the image is resized and the intrinsics with it);
            default the image's own size.
        opacity: of the meshes over the image, in [0, 1].
    """
    H, W = result.image.shape[:2]
    width, height = size or (W, H)
    camera = overlay_camera(result, width, height)
    own = renderer is None
    renderer = renderer or GLRenderer()
    try:
        meshes, points = people_primitives(result, faces)
        rgba = renderer.render(camera, meshes=meshes, points=points)
    finally:
        if own:
            renderer.close()
    image = result.image if (width, height) == (W, H) else np.asarray(Image.fromarray(result.image).resize((width, height), Image.BILINEAR))
    return composite(rgba, image, opacity)


def composite(rgba: np.ndarray, image: np.ndarray, opacity: float = 1.0) -> np.ndarray:
    """(H, W, 3) uint8: a render over ``image``. The render's colour is already multiplied by its
    alpha (multisampling averages the drawn colour with the transparent black around it)."""
    colour = rgba[..., :3].astype(np.float32)
    alpha = rgba[..., 3:].astype(np.float32) / 255.0
    out = opacity * colour + image.astype(np.float32) * (1.0 - opacity * alpha)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)
