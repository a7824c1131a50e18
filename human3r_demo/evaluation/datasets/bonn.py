"""Bonn RGB-D Dynamic (Palazzolo et al., IROS 2019), as distributed: ``rgbd_bonn_<seq>/`` with ``rgb/``,
``depth/`` (16-bit PNG, value / 5000 = metres) and ``groundtruth.txt``.

The protocol of the paper's Fig. 8 (MonST3R's ``prepare_bonn.py``, kept by CUT3R, TTT3R and Human3R):
the sequences balloon2, crowd2, crowd3, person_tracking2 and synchronous; in each, images and depth
maps sorted by name and frames 30 to 139 taken from both, paired by position. When none of the five
is under ``--root``, every ``rgbd_bonn_*`` folder found is used.

``groundtruth.txt`` (TUM's format) also gives the camera poses of those frames, paired with the images'
times (``rgb.txt``, or the image names, which are their times) as TUM's ``associate.py`` does; then ATE
and RPE are reported beside the depth (the paper reports depth only on Bonn). A sequence without it, or
with a frame no pose is within 0.02 s of, is scored on depth alone, with a note.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np

from . import Benchmark, DatasetError, GroundTruth, Sequence, image_files
from .tum import associate, pose_matrices, read_file_list

FPS = 30.0
DEPTH_SCALE = 5000.0
PAPER_SEQUENCES = ("balloon2", "crowd2", "crowd3", "person_tracking2", "synchronous")
FIRST, LAST = 30, 140  # frames [30, 140)


def _sequences(root: Path) -> list[Sequence]:
    root = Path(root)
    folders = [root / f"rgbd_bonn_{name}" for name in PAPER_SEQUENCES if (root / f"rgbd_bonn_{name}").is_dir()]
    if not folders:
        folders = sorted(p for p in root.glob("rgbd_bonn_*") if p.is_dir()) if root.is_dir() else []
    if not folders:
        raise DatasetError(f"no Bonn sequence (rgbd_bonn_<name>/ with rgb/ and depth/) in {root}")
    sequences = []
    for folder in folders:
        images = image_files(folder / "rgb")[FIRST:LAST]
        depths = image_files(folder / "depth")[FIRST:LAST]
        if len(images) != len(depths) or not images:
            raise DatasetError(f"{folder}: {len(images)} images but {len(depths)} depth maps in frames {FIRST}-{LAST - 1}")
        sequences.append(Sequence(folder.name.removeprefix("rgbd_bonn_"), images, FPS,
                                  partial(_ground_truth, depths, _poses(folder, images))))
    return sequences


def _poses(folder: Path, images: list[Path]) -> np.ndarray | None:
    """(T, 4, 4) camera-to-world of the images from ``groundtruth.txt``, or ``None`` when not every image has one."""
    if not (folder / "groundtruth.txt").is_file():
        return None
    if (folder / "rgb.txt").is_file():
        times = {Path(fields[0]).name: t for t, fields in read_file_list(folder / "rgb.txt").items() if fields}
    else:
        times = {}
        for image in images:
            try:
                times[image.name] = float(image.stem)
            except ValueError:
                return None
    if any(image.name not in times for image in images):
        return None
    truth = read_file_list(folder / "groundtruth.txt")
    pairs = dict(associate({times[image.name]: [] for image in images}, truth))
    stamps = [times[image.name] for image in images]
    if any(t not in pairs for t in stamps):
        return None
    return pose_matrices(np.array([[float(v) for v in truth[pairs[t]][:7]] for t in stamps]))


def _ground_truth(depths: list[Path], camera_to_world: np.ndarray | None, body=None) -> GroundTruth:
    return GroundTruth(depth_files=depths, depth_scale=DEPTH_SCALE, camera_to_world=camera_to_world)


BENCHMARKS = {
    "bonn": Benchmark("bonn", "Bonn", "depth", {"size": 512, "reset_interval": None, "use_ttt3r": True}, (), "", _sequences,
                      "fanegg/Human3R@e313921 eval/video_depth/{run.sh,metadata.py}; MonST3R prepare_bonn.py"),
}
