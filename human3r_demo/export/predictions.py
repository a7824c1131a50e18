"""``predictions.npz``: what the evaluation scores, per frame, streamed to disk as frames arrive.

One ``.npz`` (a zip of ``.npy`` arrays, read by ``numpy.load(path)`` with ``allow_pickle=False``).
Frames are numbered ``k = 0 .. T-1`` in the order they were exported (``frame_index[k]`` is the
frame's index in the source). Every length is metres, every frame OpenCV's (x right, y down, z
forward); world = the run's world frame (``world_frame``).

=============================  ===================  ==============================================
key                            shape, dtype         what
=============================  ===================  ==============================================
``frame_index``                (T,) int64           index of the frame in the source
``timestamp``                  (T,) float64         frame time, seconds
``camera_to_world``            (T, 4, 4) float64    camera pose
``intrinsics``                 (T, 3, 3) float64    K in pixels of the model's input image
``source_intrinsics``          (T, 3, 3) float64    K in pixels of the source frame
``image_size``                 (2,) int64           (width, height) of the model's input image
``source_size``                (2,) int64           (width, height) of the source frames
``world_frame``                () str               ``first-camera`` | ``floor`` | ``model``
``depth/K``                    (H, W) float16       camera-frame z of every pixel of the model image
``people/K/track_id``          (n,) int64           the n people of frame K
``people/K/head_uv``           (n, 2) float32       head joint in model-image pixels
``people/K/joints_cam``        (n, 127, 3) float32  SMPL-X joints, camera frame (with the body model)
``people/K/joints_world``      (n, 127, 3) float32  the same in the world frame
``people/K/vertices_cam``      (n, 10475, 3) f32    SMPL-X vertices, camera frame (with the body model)
``people/K/vertices_world``    (n, 10475, 3) f32    the same in the world frame
=============================  ===================  ==============================================

``K`` is written with six digits (``depth/000012``). Without the SMPL-X model file there are no
joints or vertices (only ``track_id`` and ``head_uv``). Depth is float16 (about 1e-3 relative,
far below what AbsRel and delta < 1.25 resolve) to halve the file. Each frame's arrays go into the
archive as the frame arrives, so memory stays bounded; the per-frame cameras (a few hundred bytes
a frame) are written when the run ends. The archive is written under a ``.partial`` name and
renamed when complete: an interrupted run leaves either a whole file or none.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from ..results import FrameResult

__all__ = ["PREDICTIONS_FILE", "PredictionWriter", "Predictions"]

PREDICTIONS_FILE = "predictions.npz"


class PredictionWriter:
    """Streams :class:`~human3r_demo.results.FrameResult` values into ``predictions.npz``."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._partial = self.path.with_name(self.path.name + ".partial")
        # deflate level 1: depth maps and meshes shrink by about a third at little CPU cost
        self._zip = zipfile.ZipFile(self._partial, "w", zipfile.ZIP_DEFLATED, compresslevel=1)
        self._cameras: dict[str, list] = {k: [] for k in ("frame_index", "timestamp", "camera_to_world", "intrinsics",
                                                          "source_intrinsics")}
        self._sizes: tuple | None = None
        self._world_frame = "first-camera"
        self.frames = 0

    def _write(self, name: str, array: np.ndarray) -> None:
        with self._zip.open(name + ".npy", "w", force_zip64=True) as stream:
            # (np.ascontiguousarray would turn the 0-d world_frame into a 1-element array)
            np.lib.format.write_array(stream, array if array.flags.c_contiguous else np.ascontiguousarray(array),
                                      allow_pickle=False)

    def add(self, result: FrameResult, timestamp: float) -> None:
        """Record one frame (``timestamp``: its time in seconds, as the other exports write it)."""
        k = f"{self.frames:06d}"
        if self._sizes is None:
            h, w = result.image.shape[:2]
            self._sizes = ((w, h), tuple(result.source_size))
            self._world_frame = result.world_frame
        self._cameras["frame_index"].append(result.index)
        self._cameras["timestamp"].append(timestamp)
        self._cameras["camera_to_world"].append(result.camera_to_world)
        self._cameras["intrinsics"].append(result.intrinsics)
        self._cameras["source_intrinsics"].append(result.source_intrinsics)
        self._write(f"depth/{k}", np.asarray(result.depth, dtype=np.float16))
        people = result.people
        self._write(f"people/{k}/track_id", np.array([p.track_id for p in people], dtype=np.int64))
        self._write(f"people/{k}/head_uv", np.array([p.head_uv for p in people], dtype=np.float32).reshape(-1, 2))
        if people and all(p.vertices is not None for p in people):
            for name, attribute in (("joints_cam", "joints_cam"), ("joints_world", "joints"),
                                    ("vertices_cam", "vertices_cam"), ("vertices_world", "vertices")):
                self._write(f"people/{k}/{name}", np.stack([getattr(p, attribute) for p in people]).astype(np.float32))
        self.frames += 1

    def close(self) -> Path:
        """Write the per-frame cameras and move the complete file into place."""
        dtypes = {"frame_index": np.int64}
        for name, values in self._cameras.items():
            shape = {"camera_to_world": (0, 4, 4), "intrinsics": (0, 3, 3), "source_intrinsics": (0, 3, 3)}.get(name, (0,))
            array = np.array(values, dtype=dtypes.get(name, np.float64)) if values else np.zeros(shape, dtypes.get(name, np.float64))
            self._write(name, array)
        image_size, source_size = self._sizes or ((0, 0), (0, 0))
        self._write("image_size", np.array(image_size, dtype=np.int64))
        self._write("source_size", np.array(source_size, dtype=np.int64))
        self._write("world_frame", np.array(self._world_frame))
        self._zip.close()
        self._partial.replace(self.path)
        return self.path

    def discard(self) -> None:
        self._zip.close()
        self._partial.unlink(missing_ok=True)


class Predictions:
    """Reads ``predictions.npz`` frame by frame (one frame's arrays in memory at a time).

    Example::

        with Predictions(run_dir / "predictions.npz") as p:
            for k in range(len(p)):
                people = p.people(k)          # {"track_id": (n,), "joints_cam": (n, 127, 3), ...}
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._npz = np.load(self.path, allow_pickle=False)
        self.frame_index = self._npz["frame_index"]
        self.timestamp = self._npz["timestamp"]
        self.camera_to_world = self._npz["camera_to_world"]
        self.intrinsics = self._npz["intrinsics"]
        self.source_intrinsics = self._npz["source_intrinsics"]
        self.image_size = tuple(int(v) for v in self._npz["image_size"])
        self.source_size = tuple(int(v) for v in self._npz["source_size"])
        self.world_frame = str(self._npz["world_frame"])
        self._people: dict[int, list[str]] = {}
        for name in self._npz.files:
            if name.startswith("people/"):
                self._people.setdefault(int(name.split("/")[1]), []).append(name)

    def __len__(self) -> int:
        return len(self.frame_index)

    def depth(self, k: int) -> np.ndarray:
        """(H, W) float32 depth of frame ``k``, metres."""
        return self._npz[f"depth/{k:06d}"].astype(np.float32)

    def people(self, k: int) -> dict[str, np.ndarray]:
        """Frame ``k``'s people: ``track_id``, ``head_uv`` and, with meshes, joints and vertices."""
        return {name.rsplit("/", 1)[1]: self._npz[name] for name in self._people.get(k, [])}

    def close(self) -> None:
        self._npz.close()

    def __enter__(self) -> Predictions:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
