"""The camera of a run: its trajectory (TUM format) and its intrinsics (JSON), written as frames arrive.

``cameras_tum.txt`` holds one ``timestamp tx ty tz qx qy qz qw`` line per frame: the camera-to-world
pose in the run's world frame (``first-camera``: the first line is exactly the identity), metres.
``intrinsics.json`` gives each frame's pinhole intrinsics twice: in pixels of the image the model saw
(the frame resized so its long side is ``size`` and centre-cropped to multiples of 16) and in pixels
of the source frame. A focal length that cannot be a camera's (not positive, or a field of view over
170 degrees: untrained weights predict that) is flagged ``usable: false``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import roma
import torch

from ..results import FrameResult

__all__ = ["CameraWriter", "usable_focal"]

MAX_FOV_DEG = 170.0


def usable_focal(focal: float, width: int, height: int) -> bool:
    """Whether a focal length (pixels) describes a real camera of that image size."""
    if not math.isfinite(focal) or focal <= 0:
        return False
    return 2 * math.degrees(math.atan(max(width, height) / (2 * focal))) <= MAX_FOV_DEG


class CameraWriter:
    """Appends each frame's pose to the TUM file at once; keeps the intrinsics to write as JSON."""

    def __init__(self, folder: Path, world_frame: str) -> None:
        self.tum_path = folder / "cameras_tum.txt"
        self.json_path = folder / "intrinsics.json"
        self._tum = open(self.tum_path, "w")
        self._tum.write(f"# timestamp tx ty tz qx qy qz qw: camera-to-world, world frame {world_frame}, metres\n")
        self._tum.flush()
        self.frames: list[dict[str, Any]] = []
        self.poses: list[np.ndarray] = []
        self.times: list[float] = []
        self.unusable = 0

    def add(self, result: FrameResult, timestamp: float) -> None:
        T = result.camera_to_world
        q = roma.rotmat_to_unitquat(torch.from_numpy(T[:3, :3]).double()).numpy()  # (x, y, z, w)
        self._tum.write(" ".join(f"{v:.9g}" for v in (timestamp, *T[:3, 3].tolist(), *q.tolist())) + "\n")
        self._tum.flush()
        self.poses.append(T.astype(np.float64))
        self.times.append(timestamp)
        K, Ks = result.intrinsics, result.source_intrinsics
        h, w = result.image.shape[:2]
        usable = usable_focal(float(K[0, 0]), w, h)
        self.unusable += not usable
        self.frames.append({
            "index": result.index, "timestamp": timestamp, "usable": usable,
            "model": {"width": w, "height": h, "fx": float(K[0, 0]), "fy": float(K[1, 1]), "cx": float(K[0, 2]), "cy": float(K[1, 2])},
            "source": {"width": result.source_size[0], "height": result.source_size[1], "fx": float(Ks[0, 0]),
                       "fy": float(Ks[1, 1]), "cx": float(Ks[0, 2]), "cy": float(Ks[1, 2])},
        })

    def close(self) -> None:
        self._tum.close()

    def write_json(self) -> Path:
        sizes = {(f["model"]["width"], f["model"]["height"], f["source"]["width"], f["source"]["height"]) for f in self.frames}
        data = {
            "about": ("pinhole intrinsics per frame, principal point at the image centre. 'model': pixels of the image the "
                      "model saw (the frame resized so its long side is the run's size, centre-cropped to multiples of 16); "
                      "'source': pixels of the original frame. usable: false where the focal cannot be a camera's."),
            "sizes_vary": len(sizes) > 1,
            "frames": self.frames,
        }
        tmp = self.json_path.with_name(self.json_path.name + ".partial")
        tmp.write_text(json.dumps(data, indent=1))
        tmp.replace(self.json_path)
        return self.json_path
