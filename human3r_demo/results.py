"""Per-frame results as plain numpy arrays, with their frames and units documented.

Conventions used throughout:

* **camera frame**: OpenCV convention, x right, y down, z forward, origin at the camera centre;
* **world frame**: chosen per run (:mod:`~human3r_demo.world`): ``first-camera``, the camera frame of
  the first frame exactly (its pose is the identity; kept across resets), or ``floor``, gravity up
  (x right, y up, z back) with the floor at y = 0;
* **units**: metres. Human3R predicts metric scale; how accurate it is depends on the video;
* **pixels**: ``(x, y)``, x to the right and y down, in the model's input image (the frame resized
  to ``size`` and centre-cropped, :attr:`FrameResult.image`); the pixel in row i, column j is at
  ``(j, i)``.

Field by field this is the output of the reference demo's ``prepare_output`` (fanegg/Human3R@e313921
``demo.py``), plus the standard SMPL-X parameters in both frames.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .smplx_layout import ROTATION_SLICES


@dataclass
class Person:
    """One person in one frame.

    SMPL-X parameters are axis-angle (radians), in the layout of the ``smplx`` package.

    Attributes:
        track_id: identity, stable across frames.
        score: head detection score in [0, 1].
        head_uv: (2,) head location ``(x, y)`` in image pixels.
        global_orient: (3,) body orientation in the **camera** frame.
        body_pose: (21, 3) body joint rotations (parent-relative, frame independent).
        left_hand_pose, right_hand_pose: (15, 3) finger rotations.
        jaw_pose: (3,); leye_pose, reye_pose: (3,) always zero (Human3R does not predict eyes).
        betas: (10,) shape; expression: (10,) expression coefficients.
        head_position: (3,) the SMPL-X head joint in the **camera** frame, metres (what the network
            predicts; the reference calls it ``smpl_transl``).
        global_orient_world: (3,) orientation in the **world** frame.
        head_position_world: (3,) head joint in the **world** frame.
        transl, transl_world: (3,) the standard SMPL-X ``transl`` (camera / world frame): with
            ``global_orient`` (or ``global_orient_world``) it makes ``smplx`` reproduce
            ``vertices_cam`` (or ``vertices``). Needs the body model (it depends on the shape);
            ``None`` without it.
        vertices, joints: (10475, 3) / (127, 3) mesh and joints in the **world** frame, or ``None``
            without the SMPL-X model file.
        vertices_cam, joints_cam: the same in the **camera** frame.
        pelvis_cam: (3,) the pelvis joint in the camera frame, or ``None``.
    """

    track_id: int
    score: float
    head_uv: np.ndarray
    global_orient: np.ndarray
    body_pose: np.ndarray
    left_hand_pose: np.ndarray
    right_hand_pose: np.ndarray
    jaw_pose: np.ndarray
    betas: np.ndarray
    expression: np.ndarray
    head_position: np.ndarray
    global_orient_world: np.ndarray
    head_position_world: np.ndarray
    leye_pose: np.ndarray = field(default_factory=lambda: np.zeros(3, np.float32))
    reye_pose: np.ndarray = field(default_factory=lambda: np.zeros(3, np.float32))
    transl: np.ndarray | None = None
    transl_world: np.ndarray | None = None
    vertices: np.ndarray | None = None
    joints: np.ndarray | None = None
    vertices_cam: np.ndarray | None = None
    joints_cam: np.ndarray | None = None
    pelvis_cam: np.ndarray | None = None

    @property
    def rotvec(self) -> np.ndarray:
        """(53, 3) all rotations in Human3R's order (:data:`~human3r_demo.smplx_layout.ROTATION_SLICES`)."""
        return np.concatenate([getattr(self, name).reshape(-1, 3) for name in ROTATION_SLICES])


@dataclass
class FrameResult:
    """Everything Human3R returns for one input frame (H x W = the model's input image).

    Attributes:
        index: index of the frame in the source (before subsampling).
        timestamp: time of the frame in the source video, seconds (``None`` if unknown).
        image: (H, W, 3) uint8 RGB, the frame as the model saw it (resized, centre-cropped).
        camera_to_world: (4, 4) camera pose (camera frame -> world frame), metres.
        intrinsics: (3, 3) pinhole K in pixels of :attr:`image` (principal point at its centre).
        source_intrinsics: (3, 3) the same camera in pixels of the source frame (before resizing
            and cropping); source_size: ``(width, height)`` of the source frame.
        focal: the focal length (pixels) estimated from this frame's point map alone (Weiszfeld);
            ``intrinsics`` uses the running clip-level estimate instead when ``shared_focal`` is on.
        points: (H, W, 3) scene point of every pixel in the **world** frame, metres.
        confidence: (H, W) confidence of ``points`` (>= 1; higher is more certain).
        depth: (H, W) z of every pixel in the **camera** frame, metres.
        human_mask: (H, W) probability that a pixel shows a person.
        head_scores: (H, W) head-detection score map after NMS (non-zero only at local maxima).
        scene_mask: (H, W) bool, the pixels whose points are confident scene, people removed
            (:func:`~human3r_demo.scene.scene_point_mask` with the run's options); the viewer and
            every export use exactly these points.
        people: the detected people, in detection order.
        reset: True if the recurrent state was reset after this frame (a chunk boundary).
        world_frame: ``"first-camera"`` or ``"floor"``: which world frame the poses and points are in.
    """

    index: int
    timestamp: float | None
    image: np.ndarray
    camera_to_world: np.ndarray
    intrinsics: np.ndarray
    focal: float
    points: np.ndarray
    confidence: np.ndarray
    depth: np.ndarray
    human_mask: np.ndarray
    head_scores: np.ndarray
    scene_mask: np.ndarray
    people: list[Person]
    source_intrinsics: np.ndarray
    source_size: tuple[int, int]
    reset: bool = False
    world_frame: str = "first-camera"

    @property
    def num_people(self) -> int:
        return len(self.people)

    @property
    def track_ids(self) -> list[int]:
        return [p.track_id for p in self.people]

    @property
    def scene_points(self) -> tuple[np.ndarray, np.ndarray]:
        """``(points (M, 3) world frame, colours (M, 3) uint8)`` of the pixels in :attr:`scene_mask`."""
        return self.points[self.scene_mask], self.image[self.scene_mask]

    @property
    def camera_position(self) -> np.ndarray:
        """(3,) camera centre in the world frame."""
        return self.camera_to_world[:3, 3]
