"""The world frame a run is reported in, chosen once at its first frame.

* ``first-camera`` (default): the first frame's camera frame exactly (OpenCV axes: x right, y down,
  z forward; metres). Human3R's own world is the first camera of the first chunk *as the network
  predicted it*, which is not exactly the identity; every pose is re-expressed so that the first
  camera-to-world pose is the identity.
* ``model``: that world of the network's, unchanged - what the reference demo outputs (the parity
  tool uses it).
* ``floor``: gravity up, the floor at height 0. A plane is fitted (RANSAC, then least squares) to the
  first frame's confident scene points together with the people's feet; its normal, turned towards
  the camera, is +y; the origin is the point of the floor under the first camera; -z is the first
  camera's viewing direction laid flat on the floor, and x = y x z (so x is the camera's right).
  These are the axes of glTF and of SMPL-X's own frame: x right, y up, z back.

Both are rigid: distances, the scale and the motion are unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["WORLD_AXES", "WORLD_FRAMES", "Y_UP", "WorldFrame", "fit_floor"]

WORLD_FRAMES = ("first-camera", "floor", "model")
# view-coordinate names (Rerun's) of each frame's axes: x, y, z = Right/Left, Up/Down, Forward/Back
# (the model's world is the first camera up to the network's error: treated as such)
WORLD_AXES = {"first-camera": "RDF", "floor": "RUB", "model": "RDF"}
# the rotation that stands each kind of world up for +Y-up formats (glTF, BVH): y-down worlds turn 180 degrees about x
Y_UP = {"RDF": np.diag([1.0, -1.0, -1.0]), "RUB": np.eye(3)}


@dataclass
class WorldFrame:
    """A world frame: ``from_first_camera`` (4, 4) maps first-camera coordinates (OpenCV) to it.

    Attributes:
        name: ``"first-camera"`` or ``"floor"``.
        from_first_camera: (4, 4) rigid transform.
        note: what a person should know about how it was set up (e.g. no floor was found), or ``None``.
    """

    name: str
    from_first_camera: np.ndarray
    note: str | None = None

    @property
    def axes(self) -> str:
        return WORLD_AXES[self.name]

    @classmethod
    def first_camera(cls) -> WorldFrame:
        return cls("first-camera", np.eye(4))

    def from_model_world(self, first_camera_to_model: np.ndarray) -> np.ndarray:
        """(4, 4) from the network's world to this one, given the first camera's pose in the network's world."""
        if self.name == "model":
            return np.eye(4)
        return self.from_first_camera @ np.linalg.inv(first_camera_to_model)

    @classmethod
    def floor(cls, scene_points: np.ndarray, feet: np.ndarray) -> WorldFrame:
        """Fit the floor to first-camera ``scene_points`` (M, 3) and ``feet`` (K, 3) (see the module docstring)."""
        fit = fit_floor(scene_points, feet)
        note = None
        if fit is None:
            # no plane below the camera: assume a level camera 1.6 m above the floor (or just under the feet)
            normal = np.array([0.0, -1.0, 0.0])
            height = 1.6 if len(feet) == 0 else max(float((-feet @ normal).max()), 0.1)
            offset = height
            note = (f"world floor: no floor plane found in the first frame; assumed a level camera "
                    f"{height:.2f} m above the floor")
        else:
            normal, offset = fit
        return cls("floor", floor_transform(normal, offset), note)


def floor_transform(normal: np.ndarray, offset: float) -> np.ndarray:
    """(4, 4) from first-camera coordinates to the floor frame of the plane ``normal . p + offset = 0``.

    ``normal`` must point up (towards the camera, which is at the origin: ``offset > 0``).
    """
    y = normal / np.linalg.norm(normal)
    forward = np.array([0.0, 0.0, 1.0]) - y[2] * y  # the camera's optical axis, laid flat on the floor
    if np.linalg.norm(forward) < 1e-6:  # looking straight down: use the camera's up instead
        forward = np.array([0.0, -1.0, 0.0]) - (-y[1]) * y
    z = -forward / np.linalg.norm(forward)
    x = np.cross(y, z)
    R = np.stack([x, y, z])  # rows: the floor frame's axes in first-camera coordinates
    origin = -offset * y  # the point of the floor under the camera
    T = np.eye(4)
    T[:3, :3] = R
    T[:3, 3] = -R @ origin
    return T


def fit_floor(
    scene_points: np.ndarray,
    feet: np.ndarray,
    *,
    inlier_distance: float = 0.03,
    max_tilt_deg: float = 45.0,
    iterations: int = 400,
    seed: int = 0,
) -> tuple[np.ndarray, float] | None:
    """The floor plane ``n . p + d = 0`` (``n`` unit, pointing towards the camera, ``d > 0``), or ``None``.

    Candidates are planes through three random points, tilted at most ``max_tilt_deg`` from the
    camera's up (-y), with the camera above them. A candidate scores its inliers (within
    ``inlier_distance`` metres), each foot counting as much as 5 % of the scene points (people stand
    on the floor, tables have no feet). The best is refined by least squares on its inliers.
    """
    rng = np.random.default_rng(seed)
    points = scene_points[np.isfinite(scene_points).all(1)]
    feet = feet[np.isfinite(feet).all(1)] if len(feet) else np.empty((0, 3))
    if len(points) > 20_000:
        points = points[rng.choice(len(points), 20_000, replace=False)]
    candidates = np.concatenate([points, feet])
    if len(candidates) < 3:
        return None
    up = np.array([0.0, -1.0, 0.0])
    foot_weight = 0.05 * max(len(points), 1)
    best, best_score = None, 0.0
    for _ in range(iterations):
        a, b, c = candidates[rng.choice(len(candidates), 3, replace=False)]
        n = np.cross(b - a, c - a)
        norm = np.linalg.norm(n)
        if norm < 1e-9:
            continue
        n /= norm
        if n @ up < 0:
            n = -n
        d = -n @ a
        if d <= 0.05 or np.degrees(np.arccos(np.clip(n @ up, -1, 1))) > max_tilt_deg:
            continue  # the camera must be above it, and it must be roughly level
        score = (np.abs(points @ n + d) < inlier_distance).sum() + foot_weight * (np.abs(feet @ n + d) < 3 * inlier_distance).sum()
        if score > best_score:
            best, best_score = (n, d), score
    if best is None or best_score < 0.02 * len(points) + 3:
        return None
    n, d = best
    inliers = candidates[np.abs(candidates @ n + d) < inlier_distance]
    centre = inliers.mean(0)
    n = np.linalg.svd(inliers - centre)[2][-1]  # least-squares normal
    if n @ up < 0:
        n = -n
    return n, float(-n @ centre)
