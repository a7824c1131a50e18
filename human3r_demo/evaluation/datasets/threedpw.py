"""3DPW (von Marcard et al., ECCV 2018), as distributed: ``sequenceFiles/test/<seq>.pkl`` and
``imageFiles/<seq>/image_%05d.jpg``.

Each sequence file is a Python 2 pickle (read as latin-1, plain data and numpy arrays only) holding
``sequence``, ``genders`` (``'m'`` / ``'f'`` per actor), ``poses`` (per actor (T, 72) SMPL axis-angle,
world frame), ``trans`` (per actor (T, 3)), ``betas`` (per actor, the first 10 used), ``cam_poses``
(T, 4, 4) world-to-camera, ``cam_intrinsics`` (3, 3) pixels and ``campose_valid`` (per actor (T,)).
30 fps. As the reference (Multi-HMR's preparation, kept by Human3R): a frame is run and scored when
at least one actor is valid in it; its ground truth is the valid actors, gendered SMPL moved into the
camera by ``cam_poses``; the joints are the 14 of the Human3.6M regressor (pelvis: joints 2 and 3).

Adapted from fanegg/Human3R@e313921 ``eval/dataset/prepare_3dpw.py`` and ``src/dust3r/smpl_model.py``.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np

from ...checkpoints.safe_pickle import PickleRefused, load_data_pickle
from . import Benchmark, DatasetError, GroundTruth, Sequence, project, require, transform

FPS = 30.0
_KEYS = ("sequence", "genders", "poses", "trans", "betas", "cam_poses", "cam_intrinsics", "campose_valid")
GENDERS = {"m": "male", "f": "female"}


def _read(path: Path) -> dict:
    try:
        data = load_data_pickle(path)
    except PickleRefused as err:
        raise DatasetError(str(err)) from None
    require(data, _KEYS, path)
    for g in data["genders"]:
        if g not in GENDERS:
            raise DatasetError(f"{path}: gender {g!r} is not 'm' or 'f'")
    return data


def _valid(data: dict) -> np.ndarray:
    """(actors, T) bool: actor valid in frame."""
    frames = len(data["cam_poses"])
    return np.array([np.asarray(v, dtype=bool)[:frames] for v in data["campose_valid"]]).reshape(-1, frames)


def _sequences(root: Path) -> list[Sequence]:
    root = Path(root)
    folder = root / "sequenceFiles" / "test"
    files = sorted(folder.glob("*.pkl"))
    if not files:
        raise DatasetError(f"no 3DPW test sequences ({folder}/*.pkl)")
    sequences = []
    for path in files:
        data = _read(path)
        frames = np.flatnonzero(_valid(data).any(axis=0))
        images = [root / "imageFiles" / path.stem / f"image_{k:05d}.jpg" for k in frames]
        missing = [p for p in images if not p.is_file()]
        if missing:
            raise DatasetError(f"missing 3DPW image {missing[0]}")
        sequences.append(Sequence(path.stem, images, FPS, partial(_ground_truth, path)))
    return sequences


def _ground_truth(path: Path, body) -> GroundTruth:
    data = _read(path)
    valid = _valid(data)
    frames = np.flatnonzero(valid.any(axis=0))
    world_to_camera = np.asarray(data["cam_poses"], dtype=np.float64)
    regressor = body.h36m14_regressor()
    per_actor = []
    for actor, gender in enumerate(data["genders"]):
        poses = np.asarray(data["poses"][actor], dtype=np.float64)[frames]
        betas = np.broadcast_to(np.asarray(data["betas"][actor], dtype=np.float64)[:10], (len(frames), 10))
        vertices = body.smpl_vertices(GENDERS[gender], poses[:, :3], poses[:, 3:72], betas,
                                      np.asarray(data["trans"][actor], dtype=np.float64)[frames])
        per_actor.append(transform(vertices, world_to_camera[frames]))
    truth = GroundTruth(joints_cam=[], vertices_cam=[], joints_2d=[])
    for i, k in enumerate(frames):
        actors = np.flatnonzero(valid[:, k])
        vertices = np.stack([per_actor[a][i] for a in actors])
        joints = np.einsum("jv,gvc->gjc", regressor, vertices)
        truth.vertices_cam.append(vertices.astype(np.float32))
        truth.joints_cam.append(joints.astype(np.float32))
        truth.joints_2d.append(project(joints, data["cam_intrinsics"]))
    return truth


BENCHMARKS = {
    "3dpw": Benchmark("3dpw", "3DPW", "camera-bodies", {"size": 512, "reset_interval": 100, "use_ttt3r": True},
                      ("smpl:neutral", "smpl:male", "smpl:female", "smplx2smpl.pkl", "J_regressor_h36m.npy"), "h36m14",
                      _sequences, "fanegg/Human3R@e313921 eval/dataset/prepare_3dpw.py, eval/global_human/run.sh"),
}
