"""Per-person frames of a run, spooled to disk as they arrive, read back whole when the run ends.

Each track is an append-only file of fixed-size records (one per frame the person is seen), so the
memory of a run does not grow with its length. :func:`segments` splits a track into runs of
consecutive frames: exports whose rows must be evenly spaced in time (SMPL-X npz, BVH) write one
file per segment rather than inventing the missing frames.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from ..results import Person
from ..smplx_layout import AMASS_SLICES, NUM_BETAS, NUM_EXPRESSION, NUM_JOINTS, human3r_to_smplx

__all__ = ["RECORD", "TrackSpool", "record", "segments"]

# one person in one frame; rotations in SMPL-X joint order (eyes zero), the global one in the world frame
RECORD = np.dtype([
    ("sample", "i8"),  # the frame's position in the exported sequence (0, 1, 2, ...)
    ("index", "i8"),  # the frame's index in the source
    ("time", "f8"),  # seconds
    ("rotvec", "f4", (NUM_JOINTS, 3)),
    ("betas", "f4", (NUM_BETAS,)),
    ("expression", "f4", (NUM_EXPRESSION,)),
    ("head", "f4", (3,)),  # the SMPL-X head joint in the world frame (Human3R's anchor)
])


def record(person: Person, sample: int, index: int, time: float) -> np.ndarray:
    """One :data:`RECORD` for ``person``."""
    rotvec = human3r_to_smplx(person.rotvec)
    rotvec[AMASS_SLICES["global_orient"]] = person.global_orient_world
    out = np.zeros((), RECORD)
    out["sample"], out["index"], out["time"] = sample, index, time
    out["rotvec"], out["betas"], out["expression"], out["head"] = rotvec, person.betas, person.expression, person.head_position_world
    return out


class TrackSpool:
    """Append-only record files, one per track, in ``folder``; at most ``max_tracks`` are kept.

    When a new track would exceed the cap, the shortest other track (preferring those not seen in the
    current frame, then the least recently seen) is forgotten and :attr:`dropped` counts it.
    """

    def __init__(self, folder: Path, max_tracks: int) -> None:
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.max_tracks = max_tracks
        self.counts: dict[int, int] = {}
        self.last_sample: dict[int, int] = {}
        self.dropped = 0

    def _path(self, track_id: int) -> Path:
        return self.folder / f"{track_id}.bin"

    def add(self, track_id: int, row: np.ndarray) -> None:
        with open(self._path(track_id), "ab") as f:
            row.tofile(f)
        self.counts[track_id] = self.counts.get(track_id, 0) + 1
        self.last_sample[track_id] = int(row["sample"])
        if len(self.counts) > self.max_tracks:
            # the shortest track, preferring those not seen in this frame; never the one just added
            now = int(row["sample"])
            victim = min((t for t in self.counts if t != track_id),
                         key=lambda t: (self.last_sample[t] == now, self.counts[t], self.last_sample[t]))
            self._path(victim).unlink(missing_ok=True)
            del self.counts[victim], self.last_sample[victim]
            self.dropped += 1

    def ids(self) -> list[int]:
        return sorted(self.counts)

    def read(self, track_id: int) -> np.ndarray:
        return np.fromfile(self._path(track_id), dtype=RECORD)

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def segments(rows: np.ndarray) -> list[np.ndarray]:
    """Split a track's records into runs of consecutive samples (evenly spaced in time)."""
    if len(rows) == 0:
        return []
    breaks = np.nonzero(np.diff(rows["sample"]) != 1)[0] + 1
    return np.split(rows, breaks)
