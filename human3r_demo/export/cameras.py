"""The camera of a run: its trajectory (TUM format) and its intrinsics (JSON), kept on disk as frames arrive.

``cameras_tum.txt`` holds one ``timestamp tx ty tz qx qy qz qw`` line per frame: the camera-to-world
pose in the run's world frame (``first-camera``: the first line is exactly the identity), metres.
``intrinsics.json`` gives each frame's pinhole intrinsics twice: in pixels of the image the model saw
(the frame resized so its long side is ``size`` and centre-cropped to multiples of 16) and in pixels
of the source frame. A focal length that cannot be a camera's (not positive, or a field of view over
170 degrees: untrained weights predict that) is flagged ``usable: false``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import roma
import torch

from ..geometry import usable_focal
from ..results import FrameResult

__all__ = ["CameraWriter", "usable_focal"]

class CameraWriter:
    """Appends each frame's pose to the TUM file and its intrinsics to a spool file at once, so memory
    does not grow with the length of the run; :meth:`read_poses` and :meth:`write_json` read them back."""

    def __init__(self, folder: Path, world_frame: str) -> None:
        self.tum_path = folder / "cameras_tum.txt"
        self.json_path = folder / "intrinsics.json"
        self._spool_path = folder / ".intrinsics.jsonl"
        self._tum = open(self.tum_path, "w")
        self._tum.write(f"# timestamp tx ty tz qx qy qz qw: camera-to-world, world frame {world_frame}, metres\n")
        self._tum.flush()
        self._spool = open(self._spool_path, "w")
        self.frames = 0
        self.first_time: float | None = None
        self.last_time: float | None = None
        self.unusable = 0
        self._sizes: set[tuple[int, int, int, int]] = set()
        self._focals: list[float] = []  # usable focal lengths (model pixels), a bounded sample
        self.image_hw: tuple[int, int] | None = None

    def add(self, result: FrameResult, timestamp: float) -> None:
        T = result.camera_to_world
        q = roma.rotmat_to_unitquat(torch.from_numpy(T[:3, :3]).double()).numpy()  # (x, y, z, w)
        self._tum.write(" ".join(f"{v:.9g}" for v in (timestamp, *T[:3, 3].tolist(), *q.tolist())) + "\n")
        self._tum.flush()
        self.first_time = timestamp if self.first_time is None else self.first_time
        self.last_time = timestamp
        K, Ks = result.intrinsics, result.source_intrinsics
        h, w = result.image.shape[:2]
        self.image_hw = self.image_hw or (h, w)
        usable = usable_focal(float(K[0, 0]), w, h)
        self.unusable += not usable
        if usable and len(self._focals) < 10_000:
            self._focals.append(float(K[0, 0]))
        self._sizes.add((w, h, *result.source_size))
        frame = {
            "index": result.index, "timestamp": timestamp, "usable": usable,
            "model": {"width": w, "height": h, "fx": float(K[0, 0]), "fy": float(K[1, 1]), "cx": float(K[0, 2]), "cy": float(K[1, 2])},
            "source": {"width": result.source_size[0], "height": result.source_size[1], "fx": float(Ks[0, 0]),
                       "fy": float(Ks[1, 1]), "cx": float(Ks[0, 2]), "cy": float(Ks[1, 2])},
        }
        self._spool.write(json.dumps(frame) + "\n")
        self._spool.flush()
        self.frames += 1

    @property
    def median_focal(self) -> float | None:
        """The median usable focal length (model pixels), ``None`` if no frame had one."""
        return float(np.median(self._focals)) if self._focals else None

    def close(self) -> None:
        self._tum.close()
        self._spool.close()

    def read_poses(self) -> tuple[np.ndarray, np.ndarray]:
        """``(times (N,), camera_to_world (N, 4, 4))`` as written to the TUM file."""
        rows = np.loadtxt(self.tum_path, ndmin=2)
        poses = np.tile(np.eye(4), (len(rows), 1, 1))
        poses[:, :3, :3] = roma.unitquat_to_rotmat(torch.from_numpy(rows[:, 4:8])).numpy()
        poses[:, :3, 3] = rows[:, 1:4]
        return rows[:, 0], poses

    def write_json(self) -> Path:
        with open(self._spool_path) as spool:
            frames = [json.loads(line) for line in spool]
        data = {
            "about": ("pinhole intrinsics per frame, principal point at the image centre. 'model': pixels of the image the "
                      "model saw (the frame resized so its long side is the run's size, centre-cropped to multiples of 16); "
                      "'source': pixels of the original frame. usable: false where the focal cannot be a camera's."),
            "sizes_vary": len(self._sizes) > 1,
            "frames": frames,
        }
        tmp = self.json_path.with_name(self.json_path.name + ".partial")
        tmp.write_text(json.dumps(data, indent=1))
        tmp.replace(self.json_path)
        self._spool_path.unlink(missing_ok=True)
        return self.json_path

    def discard(self) -> None:
        self.close()
        self._spool_path.unlink(missing_ok=True)
