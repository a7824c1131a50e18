"""The world seen from a virtual camera behind and above the first camera (or the current one):
scene points, the camera's path so far, its frustum with the frame's picture, and the people."""

from __future__ import annotations

import math

import numpy as np

from ..geometry import FALLBACK_FOV_DEG
from ..results import FrameResult
from ..world import WORLD_AXES
from .camera import Camera, look_at
from .overlay import overlay_camera
from .people import people_primitives
from .primitives import Lines, Points, Quad
from .renderer import GLRenderer

__all__ = ["WorldHistory", "render_world", "world_camera"]

UP = {"RDF": np.array([0.0, -1.0, 0.0]), "RUB": np.array([0.0, 1.0, 0.0])}  # world up, by WORLD_AXES
BACKGROUND = (0.11, 0.11, 0.13, 1.0)
PATH_COLOUR = np.array([255, 200, 60], np.uint8)
FRUSTUM_COLOUR = np.array([235, 235, 235], np.uint8)
DEFAULT_SCALE = 3.0  # metres, when the first frame has no usable scene point


class WorldHistory:
    """What the world view keeps from frame to frame, in bounded memory.

    Attributes:
        anchor: (4, 4) the first frame's camera-to-world pose (the fixed view is placed from it).
        scale: metres, the median distance from the first camera to its scene points: the view's
            distances and splat sizes follow it (clipped to [0.2, 200]: untrained weights predict anything).
        up: (3,) the world's up direction (from the run's world frame).
        positions: (P, 3) camera centres along the path, at most ``max_positions``: when full, every
            other one is dropped and later frames are kept at half the rate, so the whole path keeps its shape.
    """

    def __init__(self, max_positions: int = 2048) -> None:
        if max_positions < 2:
            raise ValueError("max_positions must be at least 2")
        self.max_positions = max_positions
        self.anchor: np.ndarray | None = None
        self.scale = DEFAULT_SCALE
        self.up = UP["RDF"]
        self._positions: list[np.ndarray] = []
        self._stride = 1
        self._seen = 0

    @property
    def positions(self) -> np.ndarray:
        return np.array(self._positions, np.float64).reshape(-1, 3)

    def add(self, result: FrameResult) -> None:
        """Record a frame (the first one sets the anchor, the scale and the up direction)."""
        if self.anchor is None:
            self.anchor = result.camera_to_world.copy()
            self.up = UP[WORLD_AXES[result.world_frame]]
            points = result.scene_points[0]
            distance = np.linalg.norm(points - self.anchor[:3, 3], axis=1)
            distance = distance[np.isfinite(distance)]
            if len(distance) >= 10:
                self.scale = float(np.clip(np.median(distance), 0.2, 200.0))
        position = result.camera_to_world[:3, 3]
        if self._seen % self._stride == 0 and np.isfinite(position).all():
            self._positions.append(position.copy())
            if len(self._positions) >= self.max_positions:
                self._positions = self._positions[::2]
                self._stride *= 2
        self._seen += 1


def world_camera(history: WorldHistory, result: FrameResult, width: int, height: int, *, follow: bool = False) -> Camera:
    """The virtual camera: behind and above the first camera (``follow``: the current one), looking
    past it into the scene, with a 60-degree vertical field of view."""
    pose = result.camera_to_world if follow else history.anchor
    centre, up, d = pose[:3, 3], history.up, history.scale
    forward = pose[:3, 2] - (pose[:3, 2] @ up) * up  # the optical axis laid flat
    if np.linalg.norm(forward) < 1e-3:  # looking straight down or up: the camera's own up, laid flat
        forward = -pose[:3, 1] - (-pose[:3, 1] @ up) * up
    forward = forward / np.linalg.norm(forward)
    eye = centre - 0.6 * d * forward + 0.5 * d * up
    target = centre + 0.5 * d * forward
    focal = height / (2 * math.tan(math.radians(FALLBACK_FOV_DEG) / 2))
    K = np.array([[focal, 0.0, (width - 1) / 2], [0.0, focal, (height - 1) / 2], [0.0, 0.0, 1.0]])
    return Camera(K, look_at(eye, target, up), width, height, near=0.01 * d, far=100.0 * d)


def render_world(
    result: FrameResult,
    faces: np.ndarray | None,
    history: WorldHistory | None = None,
    *,
    renderer: GLRenderer | None = None,
    size: tuple[int, int] | None = None,
    follow: bool = False,
    max_points: int = 40_000,
) -> np.ndarray:
    """(H, W, 3) uint8: the world view of a frame.

    Args:
        result: the frame.
        faces: (F, 3) SMPL-X triangles, or ``None`` (people are then discs at their heads).
        history: the run's :class:`WorldHistory`; this frame is added to it. ``None``: this frame alone.
        renderer: the run's renderer; ``None`` makes one for this call alone (slow).
        size: ``(width, height)`` of the output; default the frame's image size.
        follow: place the virtual camera behind the current camera instead of the first one.
        max_points: about this many scene points at most (of ``result.scene_points``, on a regular
            grid of pixels).
    """
    history = history or WorldHistory()
    history.add(result)
    H, W = result.image.shape[:2]
    width, height = size or (W, H)
    view = world_camera(history, result, width, height, follow=follow)
    meshes, points = people_primitives(result, faces)

    # every s-th pixel in both directions of the scene mask: a regular sample does not flicker
    # between frames, and splats s pixels wide close the gaps between its points
    H, W = result.scene_mask.shape
    s = max(1, math.ceil(math.sqrt(result.scene_mask.sum() / max_points)))
    grid = np.zeros((H, W), bool)
    grid[s // 2::s, s // 2::s] = True
    keep = result.scene_mask & grid & np.isfinite(result.points).all(-1)
    scene, colours = result.points[keep], result.image[keep]
    own_camera = overlay_camera(result, W, H)
    distance = np.linalg.norm(scene - result.camera_to_world[:3, 3], axis=1)  # a pixel at z covers z / focal metres
    points.append(Points(scene, colours, 0.9 * s * distance / own_camera.focal, min_pixels=1.5))

    corners = own_camera.corners(0.15 * history.scale)
    centre = result.camera_to_world[:3, 3]
    frustum = np.concatenate([np.stack([np.broadcast_to(centre, (4, 3)), corners], 1),
                              np.stack([corners, np.roll(corners, -1, axis=0)], 1)])
    path = np.concatenate([history.positions, centre[None]])
    lines = [Lines(frustum, FRUSTUM_COLOUR, 1.5), Lines(np.stack([path[:-1], path[1:]], 1), PATH_COLOUR, 2.5)]
    quads = [Quad(corners, result.image)] if np.isfinite(corners).all() else []

    own = renderer is None
    renderer = renderer or GLRenderer()
    try:
        rgba = renderer.render(view, meshes=meshes, points=points, lines=lines, quads=quads, background=BACKGROUND)
    finally:
        if own:
            renderer.close()
    return rgba[..., :3].copy()
