"""The people of a frame as drawable primitives, each in its track's colour."""

from __future__ import annotations

import numpy as np

from ..results import FrameResult
from ..viz.colors import track_colour
from .primitives import Mesh, Points

__all__ = ["HEAD_MARKER_RADIUS", "people_primitives"]

HEAD_MARKER_RADIUS = 0.09  # metres: about a head, so a marker reads as "someone is here"


def people_primitives(result: FrameResult, faces: np.ndarray | None) -> tuple[list[Mesh], list[Points]]:
    """SMPL-X meshes (world frame) of the people that have vertices, and one disc at the head
    (``head_position_world``) of each person that has none (no SMPL-X model file, or no ``faces``)."""
    meshes, heads, colours = [], [], []
    for person in result.people:
        colour = track_colour(person.track_id)
        vertices = person.vertices
        if faces is not None and vertices is not None and np.isfinite(vertices).all():
            meshes.append(Mesh(vertices, faces, colour))
        elif np.isfinite(person.head_position_world).all():
            heads.append(person.head_position_world)
            colours.append(colour)
    markers = [Points(np.array(heads, np.float32), np.array(colours), HEAD_MARKER_RADIUS, min_pixels=6.0)] if heads else []
    return meshes, markers
