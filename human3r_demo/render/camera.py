"""Pinhole cameras for the renderer: OpenCV intrinsics and poses, turned into OpenGL's clip space.

Pixels follow :mod:`~human3r_demo.results`: ``(x, y)``, x right, y down, the centre of the pixel in
row i, column j at ``(j, i)``, so a ``W x H`` image spans ``[-0.5, W - 0.5] x [-0.5, H - 0.5]``.
Camera axes are OpenCV's: x right, y down, z forward.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..geometry import display_intrinsics

__all__ = ["Camera", "display_intrinsics", "look_at", "scale_intrinsics"]



@dataclass(frozen=True)
class Camera:
    """A pinhole camera looking into the world.

    Attributes:
        K: (3, 3) intrinsics in pixels of the ``width x height`` image it renders.
        world_to_camera: (4, 4) rigid transform from world coordinates to OpenCV camera axes.
        width, height: the rendered image's size in pixels.
        near, far: clipping distances along the optical axis, metres.
    """

    K: np.ndarray
    world_to_camera: np.ndarray
    width: int
    height: int
    near: float = 0.01
    far: float = 1000.0

    @property
    def focal(self) -> float:
        """The vertical focal length in pixels (what sizes point splats)."""
        return float(self.K[1, 1])

    def projection(self) -> np.ndarray:
        """(4, 4) OpenCV camera coordinates -> OpenGL clip coordinates.

        Window x = u + 0.5 and window y = v + 0.5: image rows are not flipped, so GL's bottom row
        (read first) is the image's top row and a read-back needs no flip; clip w = z.
        """
        K, W, H, n, f = self.K, self.width, self.height, self.near, self.far
        P = np.zeros((4, 4))
        P[0, :3] = [2 * K[0, 0] / W, 2 * K[0, 1] / W, 2 * (K[0, 2] + 0.5) / W - 1]
        P[1, 1:3] = [2 * K[1, 1] / H, 2 * (K[1, 2] + 0.5) / H - 1]
        P[2, 2:] = [(f + n) / (f - n), -2 * f * n / (f - n)]  # z = near -> -1, z = far -> +1
        P[3, 2] = 1.0
        return P

    def corners(self, depth: float) -> np.ndarray:
        """(4, 3) the image's corners (top-left, top-right, bottom-right, bottom-left) at ``depth``, world frame."""
        u = np.array([-0.5, self.width - 0.5, self.width - 0.5, -0.5])
        v = np.array([-0.5, -0.5, self.height - 0.5, self.height - 0.5])
        rays = np.linalg.solve(self.K, np.stack([u, v, np.ones(4)]))  # (3, 4) rays with z = 1
        camera_to_world = np.linalg.inv(self.world_to_camera)
        return (rays.T * depth) @ camera_to_world[:3, :3].T + camera_to_world[:3, 3]


def scale_intrinsics(K: np.ndarray, sx: float, sy: float) -> np.ndarray:
    """(3, 3) ``K`` for the same image resized by ``sx`` horizontally and ``sy`` vertically (pixel centres kept)."""
    S = np.array([[sx, 0.0, 0.5 * sx - 0.5], [0.0, sy, 0.5 * sy - 0.5], [0.0, 0.0, 1.0]])
    return S @ K


def look_at(eye: np.ndarray, target: np.ndarray, up: np.ndarray) -> np.ndarray:
    """(4, 4) world -> camera (OpenCV axes) for a camera at ``eye`` looking at ``target``, ``up`` up on screen."""
    z = target - eye
    z = z / np.linalg.norm(z)
    x = np.cross(-up, z)  # OpenCV's y points down, so x = y x z with y = -up
    if np.linalg.norm(x) < 1e-9:  # looking straight along up: any right will do
        x = np.cross(z, [1.0, 0.0, 0.0]) if abs(z[0]) < 0.9 else np.cross(z, [0.0, 0.0, 1.0])
    x = x / np.linalg.norm(x)
    y = np.cross(z, x)
    T = np.eye(4)
    T[:3, :3] = np.stack([x, y, z])
    T[:3, 3] = -T[:3, :3] @ eye
    return T
