"""Streaming exports: files that grow while frames arrive and are valid whenever the run stops.

:class:`Exporter` takes one :class:`~human3r_demo.results.FrameResult` at a time and writes

``smplx/track_<id>.npz``
    one file per person, world frame, in the AMASS layout that SMPL-X tools and the SMPL-X Blender
    add-on read (``poses`` (N, 165), ``trans`` (N, 3), ``betas``, ``gender``, ``mocap_frame_rate``,
    ``surface_model_type``), plus the ``smplx``-package names (``global_orient``, ``body_pose``,
    ``left_hand_pose``, ``right_hand_pose``, ``jaw_pose``, ``leye_pose``, ``reye_pose``, ``expression``,
    ``transl``) and ``frame_indices``, ``timestamps``, ``head_position`` (see :data:`NPZ_LAYOUT`);
``cameras_tum.txt``
    the camera trajectory, one ``timestamp tx ty tz qx qy qz qw`` line per frame (camera-to-world);
``intrinsics.json``
    image size and per-frame ``fx, fy, cx, cy``;
``scene.ply``
    the accumulated scene point cloud: confident points only, people masked out, uniformly sampled
    down to a point budget (bounded memory however long the video);
``people.glb``
    the SMPL-X meshes of one frame (the chosen one, or the one with the most people);
``summary.json``
    frames, fps, tracks and what was (not) written and why.

Text files are appended and flushed every frame; the others are rewritten atomically (temporary file
then rename) every ``flush_every`` frames and on :meth:`Exporter.close`, so an interrupted run
leaves only complete files. World frame: the first camera's, OpenCV axes (x right, y down,
z forward), metres.
"""

from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .options import RunOptions
from .results import FrameResult, Person
from .run_folder import RUN_MARKER
from .scene import PointReservoir
from .smplx_layout import AMASS_SLICES, human3r_to_smplx
from .viz.colors import track_colour

__all__ = ["Exporter", "NPZ_LAYOUT"]

NPZ_LAYOUT = {
    "poses": "(N, 165) axis-angle, AMASS/SMPL-X joint order: global(3) body(63) jaw(3) leye(3) reye(3) left hand(45) right hand(45); global orientation in the world frame",
    "trans": "(N, 3) SMPL-X root translation in the world frame (metres), for the per-frame betas; absent without the SMPL-X model file",
    "betas": "(10,) median shape over the track; betas_per_frame (N, 10) holds every frame's",
    "gender": "'neutral'",
    "mocap_frame_rate": "frames per second of the exported samples",
    "surface_model_type": "'smplx'",
    "global_orient, body_pose, left_hand_pose, right_hand_pose, jaw_pose, leye_pose, reye_pose, expression, transl": "the same, split the way smplx.SMPLX.forward takes them (world frame)",
    "head_position": "(N, 3) the SMPL-X head joint in the world frame (Human3R's own translation output)",
    "frame_indices": "(N,) source frame index of each sample",
    "timestamps": "(N,) seconds in the source video (NaN where unknown)",
}


@dataclass
class _Track:
    frame_indices: list[int] = field(default_factory=list)
    timestamps: list[float] = field(default_factory=list)
    rotvec: list[np.ndarray] = field(default_factory=list)  # (55, 3) in SMPL-X joint order, world orient
    betas: list[np.ndarray] = field(default_factory=list)
    expression: list[np.ndarray] = field(default_factory=list)
    transl: list[np.ndarray | None] = field(default_factory=list)
    head_position: list[np.ndarray] = field(default_factory=list)


class Exporter:
    """Writes the exports of a run incrementally (see the module docstring for the files).

    Args:
        out_dir: folder for the files (created).
        fps: frame rate of the *exported* frames (source fps / subsample); used for timestamps when
            the source has none, and stored in the SMPL-X files.
        faces: (F, 3) SMPL-X faces for the GLB (``BodyModel.faces``); ``None``: no GLB.
        options: the run's options (``scene_points``, ``glb_frame``); the scene points themselves are
            each frame's :attr:`~human3r_demo.results.FrameResult.scene_mask`, the viewer's filter.
        flush_every: rewrite the npz/json/ply files every this many frames.
    """

    def __init__(
        self,
        out_dir: str | os.PathLike,
        *,
        fps: float | None = None,
        faces: np.ndarray | None = None,
        options: RunOptions | None = None,
        flush_every: int = 25,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        options = options or RunOptions()
        if flush_every < 1:
            raise ValueError(f"flush_every must be positive, got {flush_every}")
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.fps = fps
        self.faces = faces
        self.glb_frame = options.glb_frame
        self.max_tracks = options.max_tracks
        self.tracks_dropped = 0
        self.flush_every = flush_every
        self.metadata = dict(metadata or {})
        self.tracks: dict[int, _Track] = {}
        self.dirty: set[int] = set()
        self.points = PointReservoir(options.scene_points)
        self.intrinsics: list[dict[str, float]] = []
        self.image_size: tuple[int, int] | None = None  # of the first frame; each frame's is in its entry
        self.sizes_vary = False
        self.frames = 0
        self.meshes_seen = False
        self._glb_people: list[tuple[int, np.ndarray]] | None = None
        self._glb_index: int | None = None
        self._closed = False
        self.files: dict[str, Path] = {}
        self._tum = open(self.out_dir / "cameras_tum.txt", "w")
        self._tum.write("# timestamp tx ty tz qx qy qz qw (camera-to-world, world = first camera, OpenCV axes, metres)\n")
        self._tum.flush()
        self.files["cameras"] = self.out_dir / "cameras_tum.txt"

    # ------------------------------------------------------------------ per frame
    def add(self, result: FrameResult) -> None:
        """Record one frame."""
        if self._closed:
            raise RuntimeError("the exporter is closed")
        timestamp = self._timestamp(result)
        self._add_camera(result, timestamp)
        self._add_scene_points(result)
        for person in result.people:
            self._add_person(person, result.index, timestamp)
        self._maybe_keep_glb_frame(result)
        self.frames += 1
        if self.frames % self.flush_every == 0:
            self.flush()

    def _timestamp(self, result: FrameResult) -> float:
        if result.timestamp is not None:
            return float(result.timestamp)
        return result.index / self.fps if self.fps else float(result.index)

    def _add_camera(self, result: FrameResult, timestamp: float) -> None:
        import roma

        T = result.camera_to_world
        q = roma.rotmat_to_unitquat(torch.from_numpy(T[:3, :3]).double()).numpy()  # (x, y, z, w)
        values = [timestamp, *T[:3, 3].tolist(), *q.tolist()]
        self._tum.write(" ".join(f"{v:.9g}" for v in values) + "\n")
        self._tum.flush()
        K = result.intrinsics
        size = (int(result.image.shape[1]), int(result.image.shape[0]))
        self.sizes_vary |= self.image_size is not None and size != self.image_size
        self.image_size = self.image_size or size
        self.intrinsics.append(
            {"index": result.index, "timestamp": timestamp, "width": size[0], "height": size[1],
             "fx": float(K[0, 0]), "fy": float(K[1, 1]), "cx": float(K[0, 2]), "cy": float(K[1, 2])}
        )

    def _add_scene_points(self, result: FrameResult) -> None:
        self.points.add(*result.scene_points)

    def _add_person(self, person: Person, index: int, timestamp: float) -> None:
        track = self.tracks.setdefault(person.track_id, _Track())
        rotvec = human3r_to_smplx(person.rotvec)  # SMPL-X / AMASS joint order, eyes zero
        rotvec[AMASS_SLICES["global_orient"]] = person.global_orient_world
        track.frame_indices.append(index)
        track.timestamps.append(timestamp)
        track.rotvec.append(rotvec.astype(np.float32))
        track.betas.append(person.betas)
        track.expression.append(person.expression)
        track.transl.append(person.transl_world)
        track.head_position.append(person.head_position_world)
        self.dirty.add(person.track_id)
        self.meshes_seen |= person.vertices is not None
        if len(self.tracks) > self.max_tracks:
            self._drop_a_track(keep=person.track_id)

    def _drop_a_track(self, keep: int) -> None:
        """Keep at most ``max_tracks`` tracks: forget the shortest one (the least recently seen of those)."""
        victim = min((t for t in self.tracks if t != keep), key=lambda t: (len(self.tracks[t].frame_indices), self.tracks[t].frame_indices[-1]))
        del self.tracks[victim]
        self.dirty.discard(victim)
        written = self.files.pop(f"track_{victim}", None)
        if written is not None:
            written.unlink(missing_ok=True)
        self.tracks_dropped += 1

    def _maybe_keep_glb_frame(self, result: FrameResult) -> None:
        if self.faces is None or not result.people or result.people[0].vertices is None:
            return
        chosen = result.index == self.glb_frame if self.glb_frame is not None else (
            self._glb_people is None or result.num_people > len(self._glb_people)
        )
        if chosen:
            self._glb_people = [(p.track_id, p.vertices.copy()) for p in result.people]
            self._glb_index = result.index

    # ------------------------------------------------------------------ writing
    def flush(self) -> None:
        """Rewrite the per-track npz files that changed, the intrinsics and the point cloud."""
        for track_id in sorted(self.dirty):
            self.files[f"track_{track_id}"] = self._write_track(track_id)
        self.dirty.clear()
        self._write_json("intrinsics", "intrinsics.json", {"width": self.image_size[0] if self.image_size else None,
                                                          "height": self.image_size[1] if self.image_size else None,
                                                          "sizes_vary": self.sizes_vary, "frames": self.intrinsics})
        if len(self.points.points):
            self.files["scene"] = self._atomic(self.out_dir / "scene.ply", self._ply_bytes())

    def _write_track(self, track_id: int) -> Path:
        t = self.tracks[track_id]
        rotvec = np.stack(t.rotvec)  # (N, 55, 3)
        betas = np.stack(t.betas)
        n = len(rotvec)
        arrays: dict[str, Any] = {
            "poses": rotvec.reshape(n, -1),
            "betas": np.median(betas, axis=0).astype(np.float32),
            "betas_per_frame": betas,
            "num_betas": np.int32(betas.shape[1]),
            "gender": np.array("neutral"),
            "surface_model_type": np.array("smplx"),
            "mocap_frame_rate": np.float32(self.fps or 0.0),
            **{name: rotvec[:, sl].reshape(n, -1) if sl.stop - sl.start > 1 else rotvec[:, sl.start]
               for name, sl in AMASS_SLICES.items()},
            "expression": np.stack(t.expression),
            "head_position": np.stack(t.head_position),
            "frame_indices": np.asarray(t.frame_indices, np.int64),
            "timestamps": np.asarray(t.timestamps, np.float64),
            "track_id": np.int64(track_id),
            "world_frame": np.array("first camera, OpenCV axes (x right, y down, z forward), metres"),
        }
        if all(tr is not None for tr in t.transl):
            arrays["trans"] = arrays["transl"] = np.stack(t.transl)
        (self.out_dir / "smplx").mkdir(exist_ok=True)
        path = self.out_dir / "smplx" / f"track_{track_id:03d}.npz"
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, **arrays)
        tmp.replace(path)
        return path

    def _ply_bytes(self) -> bytes:
        import trimesh

        cloud = trimesh.PointCloud(self.points.points, colors=self.points.colours)
        return cloud.export(file_type="ply")

    def _write_glb(self) -> Path | None:
        import trimesh

        if self._glb_people is None:
            return None
        scene = trimesh.Scene()
        for track_id, vertices in self._glb_people:
            colour = np.append(track_colour(track_id), 255)
            mesh = trimesh.Trimesh(vertices, self.faces, vertex_colors=np.tile(colour, (len(vertices), 1)), process=False)
            scene.add_geometry(mesh, geom_name=f"track_{track_id}", node_name=f"track_{track_id}")
        return self._atomic(self.out_dir / "people.glb", scene.export(file_type="glb"))

    def _write_json(self, key: str, name: str, data: dict) -> None:
        self.files[key] = self._atomic(self.out_dir / name, json.dumps(data, indent=1).encode())

    @staticmethod
    def _atomic(path: Path, data: bytes) -> Path:
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(data)
        tmp.replace(path)
        return path

    def close(self) -> dict[str, Path]:
        """Finish every file; returns ``{kind: path}`` of what was written. Safe to call twice."""
        if self._closed:
            return dict(self.files)
        self._closed = True
        self._tum.close()
        self.flush()
        notes = []
        glb = self._write_glb() if self.faces is not None else None
        if glb is not None:
            self.files["glb"] = glb
        elif not self.meshes_seen:
            notes.append("no people.glb: no meshes (SMPL-X model file missing, or nobody detected)")
        if self.tracks and not self.meshes_seen:
            notes.append("SMPL-X 'trans' not written: it depends on the body model file (head_position is there)")
        if self.tracks_dropped:
            notes.append(f"{self.tracks_dropped} short track(s) not written: at most {self.max_tracks} tracks are kept (max_tracks)")
        track_files = [self.files[k] for k in sorted(self.files) if k.startswith("track_")]  # this run's only
        if track_files:
            archive = self.out_dir / "smplx_tracks.zip"
            tmp = archive.with_name(archive.name + ".tmp")
            with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
                for path in track_files:
                    z.write(path, f"smplx/{path.name}")
            tmp.replace(archive)
            self.files["smplx"] = archive
        summary = {
            "generator": RUN_MARKER,
            **self.metadata,
            "frames": self.frames,
            "fps": self.fps,
            "tracks": {str(k): len(v.frame_indices) for k, v in sorted(self.tracks.items())},
            "tracks_dropped": self.tracks_dropped,
            "scene_points": int(len(self.points.points)),
            "glb_frame": self._glb_index,
            "files": {k: p.name for k, p in sorted(self.files.items()) if not k.startswith("track_")},
            "npz_layout": NPZ_LAYOUT,
            "notes": notes,
        }
        self._write_json("summary", "summary.json", summary)
        return dict(self.files)

    def discard(self) -> None:
        """Stop without writing anything more (the caller throws the folder away)."""
        self._closed = True
        self._tum.close()

    def __enter__(self) -> Exporter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
