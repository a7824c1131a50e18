"""The paper's benchmarks, read from their own files as the user downloads them (licences forbid shipping them).

==========  ===================================================  ===========================================
name        what ``--root`` holds                                 scored (the paper)
==========  ===================================================  ===========================================
``3dpw``    ``sequenceFiles/test/*.pkl``, ``imageFiles/<seq>/``  camera-frame bodies, 14 joints (Table 1)
``emdb1``   ``P*/<seq>/*_data.pkl`` (``emdb1`` flag), images     camera-frame bodies, 24 joints (Table 1)
``emdb2``   the same, ``emdb2`` flag                              world-frame motion, 24 joints (Table 2)
``rich``    GVHMR's ``hmr4d_support/rich_test_labels.pt``,        world-frame motion, 24 joints (Table 2)
            ``resource/cam2params.pt``, ``test/<seq>/cam_XX/``
``tum``     ``<seq>/rgb/``, ``rgb.txt``, ``groundtruth.txt``      camera poses: ATE, RPE (Table 2)
``bonn``    ``rgbd_bonn_<seq>/rgb/``, ``depth/``,                 video depth: AbsRel, delta < 1.25 (Fig. 8);
            ``groundtruth.txt``                                   with the poses, ATE and RPE too
==========  ===================================================  ===========================================

Each module turns the files into :class:`Sequence` values (the frames to run, in order, the reference's
run settings) and, when scored, a :class:`GroundTruth` (metres, OpenCV camera axes). Every check that
can fail - a missing file, a malformed annotation, a missing body model - fails before any frame runs,
with one line naming the file.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["BENCHMARKS", "Benchmark", "DatasetError", "GroundTruth", "Sequence", "benchmark"]

TASKS = ("camera-bodies", "world-bodies", "cameras", "depth")


class DatasetError(ValueError):
    """A benchmark folder that cannot be read as the benchmark's layout; one line naming the file."""


@dataclass
class GroundTruth:
    """One sequence's ground truth, frame ``k`` of the lists / arrays being the sequence's frame ``k``.

    Attributes:
        joints_cam, vertices_cam, joints_2d: per frame, the people's joints (G, J, 3), SMPL vertices
            (G, 6890, 3) in the camera frame and joints projected with the true intrinsics (G, J, 2)
            in source pixels (bodies tasks).
        joints_world, vertices_world: (T, J, 3), (T, 6890, 3) the one person's world joints and
            vertices (``world-bodies``).
        camera_to_world: (T, 4, 4) true camera poses (``cameras``).
        depth_files: (T,) 16-bit depth PNGs; ``depth_scale``: PNG value per metre (``depth``).
    """

    joints_cam: list[np.ndarray] | None = None
    vertices_cam: list[np.ndarray] | None = None
    joints_2d: list[np.ndarray] | None = None
    joints_world: np.ndarray | None = None
    vertices_world: np.ndarray | None = None
    camera_to_world: np.ndarray | None = None
    depth_files: list[Path] | None = None
    depth_scale: float = 5000.0


@dataclass
class Sequence:
    """One sequence of a benchmark.

    Attributes:
        name: the sequence's name (unique within the benchmark; names its run folder).
        images: the frames to run, in order (the reference's selection: masks, strides, ranges).
        fps: the frames' rate (for jitter and the exports).
        ground_truth: loads the ground truth (called at scoring time, with the body-model files).
    """

    name: str
    images: list[Path]
    fps: float
    ground_truth: Callable[[Any], GroundTruth] = field(repr=False)


@dataclass(frozen=True)
class Benchmark:
    """A benchmark: how to find its sequences, what it needs, how the reference runs and scores it.

    Attributes:
        name: ``3dpw``, ``emdb1``, ...; title: as the paper's tables name it.
        task: one of ``camera-bodies``, ``world-bodies``, ``cameras``, ``depth``.
        settings: run options of the reference's script for it (``RunOptions`` field names).
        body_files: body-model files the ground truth and scoring need (``BodyModelFiles.check``).
        regressor: ``smpl24`` or ``h36m14``: the joints bodies are scored on.
        sequences: ``root -> [Sequence]``; raises :class:`DatasetError`.
        source: where the layout and settings were read.
    """

    name: str
    title: str
    task: str
    settings: dict[str, Any]
    body_files: tuple[str, ...]
    regressor: str
    sequences: Callable[[Path], list[Sequence]] = field(repr=False)
    source: str = ""


_MODULES = {"3dpw": "threedpw", "emdb1": "emdb", "emdb2": "emdb", "rich": "rich", "tum": "tum", "bonn": "bonn"}
BENCHMARKS = tuple(_MODULES)


def benchmark(name: str) -> Benchmark:
    """The :class:`Benchmark` called ``name`` (one of :data:`BENCHMARKS`)."""
    if name not in _MODULES:
        raise DatasetError(f"unknown benchmark {name!r}: choose one of {', '.join(BENCHMARKS)}")
    module = importlib.import_module(f"{__name__}.{_MODULES[name]}")
    return module.BENCHMARKS[name]


def image_files(folder: Path) -> list[Path]:
    """The images of a folder, sorted by name (as the reference's ``sorted(os.listdir(...))``)."""
    if not folder.is_dir():
        raise DatasetError(f"missing image folder {folder}")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    if not files:
        raise DatasetError(f"no images (.jpg, .png) in {folder}")
    return files


def project(points: np.ndarray, intrinsics: np.ndarray) -> np.ndarray:
    """Pinhole projection of camera-frame points (..., 3) to pixels (..., 2)."""
    uvw = points @ np.asarray(intrinsics, dtype=np.float64).T
    return uvw[..., :2] / uvw[..., 2:3]


def transform(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Points (T, N, 3) moved by per-frame (T, 4, 4) or one (4, 4) rigid transform."""
    matrix = np.asarray(matrix, dtype=np.float64)
    if matrix.ndim == 2:
        return points @ matrix[:3, :3].T + matrix[:3, 3]
    return np.einsum("tij,tnj->tni", matrix[:, :3, :3], points) + matrix[:, None, :3, 3]


def require(mapping: Any, keys: tuple[str, ...], path: Path) -> None:
    """Raise :class:`DatasetError` naming ``path`` unless ``mapping`` is a dict holding ``keys``."""
    if not isinstance(mapping, dict):
        raise DatasetError(f"{path} does not hold the expected dictionary (found {type(mapping).__name__})")
    missing = [k for k in keys if k not in mapping]
    if missing:
        raise DatasetError(f"{path} lacks the key(s) {', '.join(missing)}: not this benchmark's annotation file")
