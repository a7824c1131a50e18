"""EMDB (Kaufmann et al., ICCV 2023), as distributed: one ``P<n>/<seq>/P<n>_<seq>_data.pkl`` per sequence
beside its ``images/`` folder.

Each ``*_data.pkl`` (a pickle of plain data and numpy arrays) holds ``name``, ``gender``, the subset
flags ``emdb1`` / ``emdb2``, ``n_frames``, ``good_frames_mask`` (F,), ``camera`` {``intrinsics`` (3, 3)
in pixels, ``extrinsics`` (F, 4, 4) world-to-camera} and ``smpl`` {``poses_root`` (F, 3),
``poses_body`` (F, 69), ``betas`` (10,), ``trans`` (F, 3)}: world-frame SMPL of the ``gender`` model,
metres, 30 fps. Only the frames of ``good_frames_mask`` are run and scored, as the reference does.

Subset 1 (camera-frame bodies, Table 1) and subset 2 (world-frame motion, Table 2) are the files whose
own ``emdb1`` / ``emdb2`` flag is set. Adapted from fanegg/Human3R@e313921
``eval/global_human/data_utils.py`` (``load_pkl``) and ``metadata.py`` (``get_seq_emdb``,
``load_view_emdb``), themselves from GVHMR's ``hmr4d/dataset/emdb``.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np

from ...checkpoints.safe_pickle import PickleRefused, load_data_pickle
from . import Benchmark, DatasetError, GroundTruth, Sequence, image_files, project, require, transform

FPS = 30.0
_KEYS = ("name", "gender", "emdb1", "emdb2", "good_frames_mask", "camera", "smpl")


def _read(path: Path) -> dict:
    try:
        data = load_data_pickle(path)
    except PickleRefused as err:
        raise DatasetError(str(err)) from None
    require(data, _KEYS, path)
    require(data["camera"], ("intrinsics", "extrinsics"), path)
    require(data["smpl"], ("poses_root", "poses_body", "betas", "trans"), path)
    if data["gender"] not in ("male", "female", "neutral"):
        raise DatasetError(f"{path}: gender {data['gender']!r} is not male, female or neutral")
    return data


def _sequences(root: Path, subset: int) -> list[Sequence]:
    root = Path(root)
    files = sorted(root.glob("P*/*/*_data.pkl"))
    if not files:
        raise DatasetError(f"no EMDB annotation files (P*/<sequence>/*_data.pkl) under {root}")
    sequences = []
    for path in files:
        data = _read(path)
        if not bool(data[f"emdb{subset}"]):
            continue
        mask = np.asarray(data["good_frames_mask"], dtype=bool)
        images = image_files(path.parent / "images")
        if len(images) != len(mask):
            raise DatasetError(f"{path.parent / 'images'} has {len(images)} images but {path.name} annotates {len(mask)} frames")
        selected = [image for image, keep in zip(images, mask) if keep]
        sequences.append(Sequence(str(data["name"]), selected, FPS, partial(_ground_truth, path)))
    if not sequences:
        raise DatasetError(f"no EMDB sequence under {root} has its emdb{subset} flag set")
    return sequences


def _ground_truth(path: Path, body) -> GroundTruth:
    """World SMPL of the ``gender`` model on the good frames; camera frame by the true extrinsics."""
    data = _read(path)
    mask = np.asarray(data["good_frames_mask"], dtype=bool)
    smpl, camera = data["smpl"], data["camera"]
    frames = int(mask.sum())
    betas = np.broadcast_to(np.asarray(smpl["betas"], dtype=np.float64)[:10], (frames, 10))
    vertices_world = body.smpl_vertices(data["gender"], np.asarray(smpl["poses_root"])[mask], np.asarray(smpl["poses_body"])[mask],
                                        betas, np.asarray(smpl["trans"])[mask])
    regressor = body.smpl_regressor()
    joints_world = np.einsum("jv,tvc->tjc", regressor, vertices_world)
    world_to_camera = np.asarray(camera["extrinsics"], dtype=np.float64)[mask]
    vertices_cam = transform(vertices_world, world_to_camera)
    joints_cam = transform(joints_world, world_to_camera)
    joints_2d = project(joints_cam, camera["intrinsics"])
    return GroundTruth(
        joints_cam=[j[None].astype(np.float32) for j in joints_cam],
        vertices_cam=[v[None].astype(np.float32) for v in vertices_cam],
        joints_2d=[j[None] for j in joints_2d],
        joints_world=joints_world.astype(np.float32),
        vertices_world=vertices_world.astype(np.float32),
    )


_SOURCE = "fanegg/Human3R@e313921 eval/global_human/{data_utils,metadata}.py, run.sh and run_emdb2.sh"
BENCHMARKS = {
    "emdb1": Benchmark("emdb1", "EMDB-1", "camera-bodies", {"size": 512, "reset_interval": 100, "use_ttt3r": True},
                       ("smpl:neutral", "smpl:male", "smpl:female", "smplx2smpl.pkl"), "smpl24",
                       partial(_sequences, subset=1), _SOURCE),
    "emdb2": Benchmark("emdb2", "EMDB-2", "world-bodies", {"size": 512, "reset_interval": 50, "use_ttt3r": True},
                       ("smpl:neutral", "smpl:male", "smpl:female", "smplx2smpl.pkl"), "smpl24",
                       partial(_sequences, subset=2), _SOURCE),
}
