"""What the renderer draws: lit meshes, round point splats, lines and textured quads, in world coordinates."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

__all__ = ["Lines", "Mesh", "Points", "Quad", "vertex_normals"]


@dataclass(frozen=True)
class Mesh:
    """A triangle mesh in one colour.

    Attributes:
        vertices: (N, 3) positions, world frame, metres.
        faces: (F, 3) vertex indices of each triangle, counter-clockwise seen from outside (as in
            SMPL-X and trimesh): back faces are not drawn, so a camera inside a mesh sees through it.
        colour: (3,) RGB uint8.
    """

    vertices: np.ndarray
    faces: np.ndarray
    colour: np.ndarray

    @cached_property
    def normals(self) -> np.ndarray:
        """(N, 3) unit vertex normals, computed once however many views draw the mesh."""
        return vertex_normals(self.vertices, self.faces)


@dataclass(frozen=True)
class Points:
    """Round splats facing the camera.

    Attributes:
        positions: (M, 3) world frame, metres.
        colours: (M, 3) RGB uint8.
        radius: splat radius in metres (it shrinks with distance), one for all or (M,) one per
            point; never under ``min_pixels`` on screen.
        min_pixels: the smallest splat diameter in pixels.
    """

    positions: np.ndarray
    colours: np.ndarray
    radius: float | np.ndarray
    min_pixels: float = 1.5


@dataclass(frozen=True)
class Lines:
    """Line segments in one colour.

    Attributes:
        segments: (S, 2, 3) start and end of each segment, world frame.
        colour: (3,) RGB uint8.
        width: line width in pixels.
    """

    segments: np.ndarray
    colour: np.ndarray
    width: float = 2.0


@dataclass(frozen=True)
class Quad:
    """An image on a planar quadrilateral (the camera frustum's picture).

    Attributes:
        corners: (4, 3) world positions of the image's top-left, top-right, bottom-right, bottom-left corners.
        image: (h, w, 3) RGB uint8.
    """

    corners: np.ndarray
    image: np.ndarray


def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(N, 3) unit normals: the area-weighted sum of the normals of the faces around each vertex.

    ``np.bincount`` sums the face normals into their vertices, about twice as fast as ``np.add.at``
    (1.8 against 3.3 ms for SMPL-X's 20,908 faces, per person and frame).
    """
    v = vertices.astype(np.float64, copy=False)
    face_normals = np.cross(v[faces[:, 1]] - v[faces[:, 0]], v[faces[:, 2]] - v[faces[:, 0]])  # length = 2 x area
    corners = faces.reshape(-1)
    normals = np.stack([np.bincount(corners, np.repeat(face_normals[:, k], 3), minlength=len(v)) for k in range(3)], 1)
    length = np.linalg.norm(normals, axis=1, keepdims=True)
    return (normals / np.maximum(length, 1e-12)).astype(np.float32)
