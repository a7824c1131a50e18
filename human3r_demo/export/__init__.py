"""The exports of a run, fed one :class:`~human3r_demo.results.FrameResult` at a time.

=====================  ===========================================================================
``run.glb``            the whole run, animated: a skinned SMPL-X rig per person, the camera, scene points
``smplx/*.npz``        per person and stretch of frames: AMASS-style SMPL-X motion (:mod:`.smplx_npz`)
``smplx_tracks.zip``   all of them
``bvh/*.bvh``          per person and stretch: the SMPL-X body skeleton's motion (:mod:`.bvh`)
``bvh_tracks.zip``     all of them
``cameras_tum.txt``    the camera trajectory (:mod:`.cameras`)
``intrinsics.json``    per-frame intrinsics in model and source pixels
``scene.ply``          scene points: confident, people removed, a uniform sample within a budget
``people.glb``         the meshes of one frame (the chosen one, or the one with the most people)
``overlay.mp4``        with ``render_video``: the bodies over the input and/or a world view (:mod:`..render`)
``predictions.npz``    with ``export_predictions``: per-frame cameras, depth and bodies for ``eval`` (:mod:`.predictions`)
``summary.json``       frames, fps, world frame, tracks, what was written and why not
=====================  ===========================================================================

Everything is in the run's world frame (:mod:`~human3r_demo.world`); the glTF files are +Y up (a
y-down world is turned upright inside them). The trajectory is appended as frames arrive; people are
kept on disk (:mod:`.tracks`) and everything else is written when the run ends, into the run's
staging folder (:mod:`~human3r_demo.run_folder`), so memory stays bounded and an interrupted run
still ends with a complete set.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from ..body import BodyModel
from ..options import RunOptions
from ..results import FrameResult
from ..run_folder import RUN_MARKER
from ..scene import PointReservoir
from ..viz.colors import track_colour
from ..world import WORLD_AXES, Y_UP
from .bvh import write_bvh
from .cameras import CameraWriter
from .gltf import PersonAnimation, field_of_view, write_run_gltf
from .predictions import PREDICTIONS_FILE, PredictionWriter
from .skeleton import SkeletonModel
from .smplx_npz import NPZ_LAYOUT, segment_name, write_npz
from .tracks import TrackSpool, record, segments

__all__ = ["Exporter", "NPZ_LAYOUT"]


class Exporter:
    """Writes a run's exports into ``out_dir`` (see the module docstring for the files).

    Args:
        out_dir: folder for the files (created).
        fps: frame rate of the exported frames (the source's over the subsampling, or the option for
            sources without times); the frame times when the source has none, and the SMPL-X/BVH rate.
        body: the SMPL-X body model, for meshes, skeletons and ``trans``; ``None``: no meshes.
        options: the run's options (``scene_points``, ``gltf_points``, ``glb_frame``, ``max_tracks``,
            ``render_video``).
        metadata: extra entries for ``summary.json``.
        renderer: the run's :class:`~human3r_demo.render.GLRenderer`, needed for ``render_video``.
        frame_times: the frames come at irregular times (a live source): the video shows each at its
            timestamp rather than at ``fps``.
    """

    def __init__(
        self,
        out_dir: str | os.PathLike,
        *,
        fps: float,
        body: BodyModel | None = None,
        options: RunOptions | None = None,
        metadata: dict[str, Any] | None = None,
        renderer=None,
        frame_times: bool = False,
    ) -> None:
        options = options or RunOptions()
        if not fps or fps <= 0:
            raise ValueError(f"fps must be positive, got {fps!r}")
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.fps = float(fps)
        self.body = body
        self.skeleton = SkeletonModel(body) if body is not None else None
        self.glb_frame = options.glb_frame
        self.metadata = dict(metadata or {})
        self.tracks = TrackSpool(self.out_dir / ".tracks", options.max_tracks)
        self.points = PointReservoir(options.scene_points)
        self.gltf_points = PointReservoir(options.gltf_points, seed=1)
        self.cameras: CameraWriter | None = None
        self.world_frame = "first-camera"
        self.frames = 0
        self.meshes_seen = False
        self._glb_people: list[tuple[int, np.ndarray]] | None = None
        self._glb_index: int | None = None
        self._closed = False
        self.files: dict[str, Path] = {}
        self.video = None
        self.predictions = PredictionWriter(self.out_dir / PREDICTIONS_FILE) if options.export_predictions else None
        if options.render_video != "off":
            from ..render import VideoRenderer

            if renderer is None:
                raise ValueError("render_video needs a renderer (human3r_demo.render.GLRenderer)")
            self.video = VideoRenderer(self.out_dir / "overlay.mp4", None if frame_times else self.fps,
                                       body.faces if body is not None else None, layout=options.render_video,
                                       renderer=renderer)

    # ------------------------------------------------------------------ per frame
    def add(self, result: FrameResult) -> None:
        """Record one frame."""
        if self._closed:
            raise RuntimeError("the exporter is closed")
        if self.cameras is None:  # the first frame: the world frame is known
            self.world_frame = result.world_frame
            self.cameras = CameraWriter(self.out_dir, self.world_frame)
            self.files["cameras"] = self.cameras.tum_path
        timestamp = float(result.timestamp) if result.timestamp is not None else self.frames / self.fps
        self.cameras.add(result, timestamp)
        if self.predictions is not None:
            self.predictions.add(result, timestamp)
        points, colours = result.scene_points
        self.points.add(points, colours)
        self.gltf_points.add(points, colours)
        for person in result.people:
            self.tracks.add(person.track_id, record(person, self.frames, result.index, timestamp))
            self.meshes_seen |= person.vertices is not None
        self._maybe_keep_glb_frame(result)
        if self.video is not None:
            self.video.add(result)
        self.frames += 1

    def _maybe_keep_glb_frame(self, result: FrameResult) -> None:
        if not result.people or result.people[0].vertices is None:
            return
        chosen = result.index == self.glb_frame if self.glb_frame is not None else (
            self._glb_people is None or result.num_people > len(self._glb_people)
        )
        if chosen:
            self._glb_people = [(p.track_id, p.vertices.copy()) for p in result.people]
            self._glb_index = result.index

    # ------------------------------------------------------------------ at the end
    def close(self) -> dict[str, Path]:
        """Write every file; returns ``{kind: path}`` of what was written. Safe to call twice."""
        if self._closed:
            return dict(self.files)
        self._closed = True
        notes: list[str] = []
        if self.cameras is not None:
            self.cameras.close()
            self.files["intrinsics"] = self.cameras.write_json()
            if self.cameras.unusable:
                notes.append(f"{self.cameras.unusable} frame(s) have a focal length no camera has (untrained weights?): "
                             "marked usable: false in intrinsics.json")
        if len(self.points):
            self.files["scene"] = self._write_ply()
        if self._glb_people is not None:
            self.files["glb"] = self._write_people_glb()
        elif not self.meshes_seen:
            notes.append("no people.glb: no meshes (SMPL-X model file missing, or nobody detected)")
        self._write_tracks(notes)
        if self.cameras is not None and self.frames:
            self.files["gltf"] = self._write_run_gltf()
        if self.video is not None:
            video = self.video.close()
            if video is not None:
                self.files["video"] = video
        if self.predictions is not None:
            self.files["predictions"] = self.predictions.close()
        self.tracks.remove()
        self._write_summary(notes)
        return dict(self.files)

    def discard(self) -> None:
        """Stop without writing anything more (the caller throws the folder away)."""
        self._closed = True
        if self.cameras is not None:
            self.cameras.discard()
        if self.predictions is not None:
            self.predictions.discard()
        if self.video is not None:
            self.video.discard()

    def __enter__(self) -> Exporter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ files
    def _write_tracks(self, notes: list[str]) -> None:
        if self.tracks.dropped:
            notes.append(f"{self.tracks.dropped} short track(s) not written: at most {self.tracks.max_tracks} tracks are kept (max_tracks)")
        if self.tracks.ids() and self.skeleton is None:
            notes.append("SMPL-X 'trans' and the BVH files not written: they depend on the body model file "
                         "(head_position is in the npz)")
        axes = WORLD_AXES[self.world_frame]
        npz, bvh = [], []
        (self.out_dir / "smplx").mkdir(exist_ok=True)
        for track_id in self.tracks.ids():
            rows = self.tracks.read(track_id)
            betas = np.median(rows["betas"], axis=0)
            parts = segments(rows)
            for k, part in enumerate(parts):
                name = segment_name(track_id, k, len(parts))
                npz.append(write_npz(self.out_dir / "smplx" / f"{name}.npz", part, track_id=track_id, betas=betas,
                                     fps=self.fps, world_frame=self.world_frame, skeleton=self.skeleton))
                if self.skeleton is not None:
                    (self.out_dir / "bvh").mkdir(exist_ok=True)
                    bvh.append(write_bvh(self.out_dir / "bvh" / f"{name}.bvh", part, betas=betas, fps=self.fps,
                                         axes=axes, skeleton=self.skeleton))
        for i, path in enumerate(npz):
            self.files[f"track_{i}"] = path
        if npz:
            self.files["smplx"] = _zip(self.out_dir / "smplx_tracks.zip", npz, "smplx")
        if bvh:
            self.files["bvh"] = _zip(self.out_dir / "bvh_tracks.zip", bvh, "bvh")

    def _write_run_gltf(self) -> Path:
        times, poses = self.cameras.read_poses()
        times = times - times[0]
        if np.any(np.diff(times) <= 0):  # a source with repeated times: even spacing instead
            times = np.arange(self.frames) / self.fps
        h, w = self.cameras.image_hw
        focal = self.cameras.median_focal
        yfov = field_of_view(focal, h) if focal is not None else np.radians(60.0)
        people = (self._animation(t) for t in self.tracks.ids())  # one person in memory at a time
        points, colours = self.gltf_points.points, self.gltf_points.colours
        return write_run_gltf(self.out_dir / "run.glb", times=times, cameras=poses, yfov=yfov, aspect=w / h,
                              world_axes=WORLD_AXES[self.world_frame], points=points, colours=colours, people=people,
                              skeleton=self.skeleton)

    def achieved_fps(self) -> float | None:
        """Frames per second between the first and the last frame's times (a live run's real rate)."""
        cams = self.cameras
        if cams is None or cams.frames < 2 or not cams.last_time > cams.first_time:
            return None
        return (cams.frames - 1) / (cams.last_time - cams.first_time)

    def _animation(self, track_id: int) -> PersonAnimation:
        """A person from their first to their last frame: their values where seen, held where not."""
        rows = self.tracks.read(track_id)
        first, last = int(rows["sample"][0]), int(rows["sample"][-1])
        span = np.arange(first, last + 1)
        present = np.zeros(len(span), bool)
        present[rows["sample"] - first] = True
        which = np.searchsorted(rows["sample"], span, side="right") - 1  # the latest row seen so far
        held = rows[which]
        rest = pelvis = None
        if self.skeleton is not None:
            rotvec = held["rotvec"].astype(np.float64)
            betas, expression = held["betas"].astype(np.float64), held["expression"].astype(np.float64)
            rest = self.skeleton.rest_joints(betas, expression)
            pelvis = self.skeleton.transl(rotvec, betas, expression, held["head"].astype(np.float64)) + rest[:, 0]
        return PersonAnimation(track_id, first, present, held["rotvec"], rest, pelvis, held["head"],
                               np.median(rows["betas"], axis=0))

    def _write_ply(self) -> Path:
        import trimesh

        cloud = trimesh.PointCloud(self.points.points, colors=self.points.colours)
        return _atomic(self.out_dir / "scene.ply", cloud.export(file_type="ply"))

    def _write_people_glb(self) -> Path:
        """The chosen frame's meshes, +Y up (a y-down world turned 180 degrees about x)."""
        import trimesh

        up = Y_UP[WORLD_AXES[self.world_frame]]
        scene = trimesh.Scene()
        for track_id, vertices in self._glb_people:
            colour = np.append(track_colour(track_id), 255)
            mesh = trimesh.Trimesh(vertices @ up.T, self.body.faces, vertex_colors=np.tile(colour, (len(vertices), 1)), process=False)
            scene.add_geometry(mesh, geom_name=f"track_{track_id}", node_name=f"track_{track_id}")
        return _atomic(self.out_dir / "people.glb", scene.export(file_type="glb"))

    def _write_summary(self, notes: list[str]) -> None:
        tracks = {str(t): self.tracks.counts[t] for t in self.tracks.ids()}
        summary = {
            "generator": RUN_MARKER,
            **self.metadata,
            "frames": self.frames,
            "fps": self.fps,
            "world_frame": self.world_frame,
            "tracks": tracks,
            "tracks_dropped": self.tracks.dropped,
            "scene_points": int(len(self.points)),
            "glb_frame": self._glb_index,
            "files": {k: p.name for k, p in sorted(self.files.items()) if not k.startswith("track_")},
            "npz_layout": NPZ_LAYOUT,
            "notes": notes,
        }
        self.files["summary"] = _atomic(self.out_dir / "summary.json", json.dumps(summary, indent=1).encode())


def _zip(target: Path, files: list[Path], folder: str) -> Path:
    tmp = target.with_name(target.name + ".partial")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
        for path in files:
            z.write(path, f"{folder}/{path.name}")
    tmp.replace(target)
    return target


def _atomic(path: Path, data: bytes) -> Path:
    tmp = path.with_name(path.name + ".partial")
    tmp.write_bytes(data)
    tmp.replace(path)
    return path

