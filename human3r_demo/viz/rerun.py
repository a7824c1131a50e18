"""Log :class:`~human3r_demo.results.FrameResult` s into a Rerun recording, one frame at a time.

Entity layout (timelines ``frame`` and, when the video has timestamps, ``time``)::

    world                          ViewCoordinates of the run's world frame (RDF: first camera, RUB: floor), static
    world/camera                   Transform3D: camera -> world
    world/camera/image             Pinhole + the input image (JPEG), with the people's meshes drawn shaded
                                   over it when the run has a renderer (human3r_demo.render)
    world/camera/image/mask        human mask (SegmentationImage, class 1 = person)
    world/camera/image/heads       head detections (Points2D, labelled with track ids)
    world/camera/image/people      without a renderer: mesh vertices projected into the image (Points2D)
    world/points                   scene points: each frame's ``scene_mask`` (the exports' filter), at
                                   most ``viewer_points`` of them
    world/trajectory               camera path, one segment per frame
    world/people/<id>              SMPL-X Mesh3D: faces and colour static, vertices per frame,
                                   Clear when the person is not in the frame
    world/people/<id>/head         head joint (Points3D), also when there is no mesh
    stats/fps, stats/people        time series
    stats/tracks/<id>              presence: the track id, logged on the frames it is seen

:func:`default_blueprint` lays this out; its ``accumulate_points`` switch chooses between the
current frame's scene points and all points up to the current frame (a visible time range on
``world/points`` only, so people and the camera still show the current frame).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import rerun as rr
import rerun.blueprint as rrb

from ..geometry import display_intrinsics
from ..options import RunOptions
from ..results import FrameResult
from ..world import WORLD_AXES
from .colors import track_colour
from .metrics import metrics_views

__all__ = ["RerunLogger", "default_blueprint"]

MASK_CLASS_PERSON = 1


def default_blueprint(accumulate_points: bool = False, metric_units: Sequence[str] = ()) -> rrb.Blueprint:
    """World view (3D), camera view (2D), and time series of FPS, people and track presence; with
    ``metric_units``, one more time series per unit of the per-frame metrics against a ground truth
    (:mod:`human3r_demo.viz.metrics`)."""
    since_start = rrb.VisibleTimeRanges(
        rrb.VisibleTimeRange("frame", start=rrb.TimeRangeBoundary.infinite(), end=rrb.TimeRangeBoundary.cursor_relative())
    )
    overrides = {"world/trajectory": since_start}
    if accumulate_points:
        overrides["world/points"] = since_start
    world = rrb.Spatial3DView(
        origin="world",
        name="World (accumulated scene)" if accumulate_points else "World",
        overrides=overrides,
    )
    camera = rrb.Spatial2DView(origin="world/camera/image", contents="$origin/**", name="Camera")
    plots = metrics_views(metric_units) if metric_units else []
    return rrb.Blueprint(
        rrb.Horizontal(
            world,
            rrb.Vertical(
                camera,
                rrb.TimeSeriesView(origin="stats", contents=["stats/fps", "stats/people"], name="FPS and people"),
                rrb.TimeSeriesView(origin="stats/tracks", name="Track presence (track id)"),
                *plots,
                row_shares=[3, 1, 1, *[1] * len(plots)],
            ),
            column_shares=[3, 2],
        ),
        collapse_panels=True,
    )


class RerunLogger:
    """Logs frames into ``rec`` (a :class:`rerun.RecordingStream`).

    Args:
        rec: the recording to log into.
        faces: (F, 3) SMPL-X triangles (``BodyModel.faces``), or ``None`` when there are no meshes.
        options: the run's options (``mask_threshold`` for the mask overlay, ``viewer_points``).
        renderer: a :class:`~human3r_demo.render.GLRenderer`: the camera image shows the meshes shaded
            over the frame; ``None``: every ``mesh_points_in_image``-th vertex is drawn as a dot instead.
        mesh_points_in_image: every how many vertices to project into the camera image (without a renderer).
    """

    def __init__(
        self,
        rec: rr.RecordingStream,
        faces: np.ndarray | None = None,
        options: RunOptions | None = None,
        *,
        renderer=None,
        mesh_points_in_image: int = 8,
    ) -> None:
        options = options or RunOptions()
        self.rec = rec
        self.faces = faces
        self.renderer = renderer if faces is not None else None
        self.mask_threshold = options.mask_threshold
        self.point_budget = options.viewer_points
        self.mesh_stride = mesh_points_in_image
        self.rng = np.random.default_rng(0)
        self.alive: set[int] = set()
        self.known: set[int] = set()
        self.world_axes: str | None = None
        self.last_camera_position: np.ndarray | None = None
        rec.log(
            "world/camera/image/mask",
            rr.AnnotationContext([(0, "background", (0, 0, 0, 0)), (MASK_CLASS_PERSON, "person", (255, 64, 160, 110))]),
            static=True,
        )
        rec.log("stats/fps", rr.SeriesLines(colors=[(90, 160, 255)], names="FPS"), static=True)
        rec.log("stats/people", rr.SeriesLines(colors=[(255, 170, 60)], names="people"), static=True)

    def log(self, result: FrameResult, fps: float | None = None) -> None:
        """Log one frame; ``fps`` is the processing speed to plot (optional)."""
        rec = self.rec
        if self.world_axes is None:  # the first frame: the world's axes
            self.world_axes = WORLD_AXES[result.world_frame]
            rec.log("world", getattr(rr.ViewCoordinates, self.world_axes), static=True)
        rec.set_time("frame", sequence=result.index)
        if result.timestamp is not None:
            rec.set_time("time", duration=float(result.timestamp))
        self._log_camera(result)
        self._log_image_overlays(result)
        self._log_scene_points(result)
        self._log_people(result)
        if fps is not None and math.isfinite(fps):
            rec.log("stats/fps", rr.Scalars(fps))
        rec.log("stats/people", rr.Scalars(result.num_people))

    # ------------------------------------------------------------------ parts
    def _log_camera(self, result: FrameResult) -> None:
        H, W = result.image.shape[:2]
        T = result.camera_to_world
        self.rec.log("world/camera", rr.Transform3D(translation=T[:3, 3], mat3x3=T[:3, :3]))
        self.rec.log(
            "world/camera/image",
            rr.Pinhole(image_from_camera=display_intrinsics(result.intrinsics, H, W), resolution=[W, H],
                       camera_xyz=rr.ViewCoordinates.RDF, image_plane_distance=0.25),
            rr.Image(self._camera_image(result)).compress(jpeg_quality=85),
        )
        position = T[:3, 3].astype(np.float32)
        if self.last_camera_position is not None and np.isfinite(position).all():
            self.rec.log("world/trajectory", rr.LineStrips3D([[self.last_camera_position, position]], colors=[(255, 220, 80)]))
        self.last_camera_position = position if np.isfinite(position).all() else self.last_camera_position

    def _log_image_overlays(self, result: FrameResult) -> None:
        mask = (result.human_mask > self.mask_threshold).astype(np.uint8) * MASK_CLASS_PERSON
        self.rec.log("world/camera/image/mask", rr.SegmentationImage(mask))
        people = result.people
        if people:
            self.rec.log(
                "world/camera/image/heads",
                rr.Points2D(
                    np.stack([p.head_uv for p in people]),
                    colors=[track_colour(p.track_id) for p in people],
                    labels=[f"{p.track_id}" for p in people],
                    radii=4.0,
                ),
            )
        else:
            self.rec.log("world/camera/image/heads", rr.Clear(recursive=False))
        if self.renderer is not None:
            return  # the meshes are in the camera image itself
        projected = [(p, project(result, p.vertices[:: self.mesh_stride])) for p in people if p.vertices is not None]
        if projected:
            points = np.concatenate([uv for _, uv in projected])
            colours = np.concatenate([np.tile(track_colour(p.track_id), (len(uv), 1)) for p, uv in projected])
            self.rec.log("world/camera/image/people", rr.Points2D(points, colors=colours, radii=1.0))
        else:
            self.rec.log("world/camera/image/people", rr.Clear(recursive=False))

    def _camera_image(self, result: FrameResult) -> np.ndarray:
        if self.renderer is None or not any(p.vertices is not None for p in result.people):
            return result.image
        from ..render import render_overlay

        return render_overlay(result, self.faces, renderer=self.renderer)

    def _log_scene_points(self, result: FrameResult) -> None:
        points, colours = result.scene_points
        if len(points) > self.point_budget:
            pick = self.rng.choice(len(points), self.point_budget, replace=False)
            points, colours = points[pick], colours[pick]
        self.rec.log("world/points", rr.Points3D(points, colors=colours, radii=rr.Radius.ui_points(1.5)))

    def _log_people(self, result: FrameResult) -> None:
        rec = self.rec
        present = set()
        for person in result.people:
            tid = person.track_id
            present.add(tid)
            path = f"world/people/{tid}"
            colour = track_colour(tid)
            if person.vertices is not None and self.faces is not None:
                if tid not in self.known:
                    rec.log(path, rr.Mesh3D.from_fields(triangle_indices=self.faces, albedo_factor=colour), static=True)
                rec.log(path, rr.Mesh3D.from_fields(vertex_positions=person.vertices))
            rec.log(f"{path}/head", rr.Points3D([person.head_position_world], colors=[colour], radii=0.04, labels=[str(tid)]))
            if tid not in self.known:
                rec.log(f"stats/tracks/{tid}", rr.SeriesPoints(colors=[colour], names=f"track {tid}", marker_sizes=3.0), static=True)
                self.known.add(tid)
            rec.log(f"stats/tracks/{tid}", rr.Scalars(tid))
        for tid in sorted(self.alive - present):
            rec.log(f"world/people/{tid}", rr.Clear(recursive=True))
        self.alive = present


def project(result: FrameResult, world_points: np.ndarray) -> np.ndarray:
    """World points (N, 3) -> pixels (M, 2) of those in front of the camera."""
    T = result.camera_to_world
    cam = (world_points - T[:3, 3]) @ T[:3, :3]  # world -> camera: R^T (p - t)
    cam = cam[cam[:, 2] > 1e-6]
    H, W = result.image.shape[:2]
    uv = cam @ display_intrinsics(result.intrinsics, H, W).T
    return uv[:, :2] / uv[:, 2:3]
