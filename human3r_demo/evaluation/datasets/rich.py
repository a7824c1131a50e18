"""RICH (Huang et al., CVPR 2022) as GVHMR processes it: ``hmr4d_support/rich_test_labels.pt``,
``resource/cam2params.pt`` and the test images ``test/<scene>_<id>_<action>/cam_XX/``.

``rich_test_labels.pt`` (a torch file of dicts and tensors, read with ``weights_only=True``) maps each
video ``test/<sequence>/cam_XX`` to ``gender``, ``frame_id`` (F,) (indices into the sorted images of
its folder) and ``gt_smplx_params`` {``global_orient`` (F, 3), ``body_pose`` (F, 63), ``betas``
(F, 10), ``transl`` (F, 3)}: world-frame SMPL-X of the gendered model. ``cam2params.pt`` maps
``<scene>_<camera number>`` to ``(T_w2c (4, 4), K (3, 3))`` of that static camera. 30 fps. Scored as
the reference: the SMPL-X vertices mapped to SMPL, 24 joints, no state reset.

Adapted from fanegg/Human3R@e313921 ``eval/global_human/metadata.py`` (``get_annot_rich``,
``load_view_rich``) and zju3dv/GVHMR ``hmr4d/dataset/rich/rich_motion_test.py``.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np

from . import Benchmark, DatasetError, GroundTruth, Sequence, image_files, project, require, transform

FPS = 30.0
LABELS = Path("hmr4d_support/rich_test_labels.pt")
CAMERAS = Path("resource/cam2params.pt")


def _load(path: Path):
    import torch

    if not path.is_file():
        raise DatasetError(f"missing {path} (GVHMR's processed RICH test labels; see GVHMR's docs/INSTALL.md)")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for foreign or hostile files
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise DatasetError(f"refusing {path}: not plain tensors and data ({first[:120]}); nothing from it was executed") from None


def _numpy(value) -> np.ndarray:
    return value.numpy() if hasattr(value, "numpy") else np.asarray(value)


def _camera_key(video: str) -> str:
    _, sequence, camera = video.split("/")
    return f"{sequence.split('_')[0]}_{int(camera.split('_')[1])}"


def _sequences(root: Path) -> list[Sequence]:
    root = Path(root)
    labels, cameras = _load(root / LABELS), _load(root / CAMERAS)
    if not isinstance(labels, dict) or not isinstance(cameras, dict):
        raise DatasetError(f"{root / LABELS} and {root / CAMERAS} must each hold a dictionary")
    sequences = []
    for video in sorted(labels):
        label = labels[video]
        require(label, ("gender", "frame_id", "gt_smplx_params"), root / LABELS)
        if video.count("/") != 2 or _camera_key(video) not in cameras:
            raise DatasetError(f"{root / CAMERAS} has no camera for {video!r}")
        images = image_files(root / video)
        frame_id = _numpy(label["frame_id"]).astype(int)
        if frame_id.size and frame_id.max() >= len(images):
            raise DatasetError(f"{root / LABELS}: {video} refers to frame {frame_id.max()} but {root / video} has {len(images)} images")
        name = video.split("/", 1)[1].replace("/", "_")
        sequences.append(Sequence(name, [images[i] for i in frame_id], FPS, partial(_ground_truth, label, cameras[_camera_key(video)])))
    return sequences


def _ground_truth(label: dict, camera, body) -> GroundTruth:
    world_to_camera, intrinsics = (_numpy(v).astype(np.float64) for v in camera)
    params = {k: _numpy(v).astype(np.float64) for k, v in label["gt_smplx_params"].items()}
    smplx_vertices = body.smplx_vertices(str(label["gender"]), params)
    mapping = body.smplx2smpl()
    vertices_world = np.stack([mapping @ v for v in smplx_vertices]) if len(smplx_vertices) else np.zeros((0, 6890, 3))
    joints_world = np.einsum("jv,tvc->tjc", body.smpl_regressor(), vertices_world)
    vertices_cam, joints_cam = transform(vertices_world, world_to_camera), transform(joints_world, world_to_camera)
    joints_2d = project(joints_cam, intrinsics)
    return GroundTruth(
        joints_cam=[j[None].astype(np.float32) for j in joints_cam],
        vertices_cam=[v[None].astype(np.float32) for v in vertices_cam],
        joints_2d=[j[None] for j in joints_2d],
        joints_world=joints_world.astype(np.float32),
        vertices_world=vertices_world.astype(np.float32),
    )


BENCHMARKS = {
    "rich": Benchmark("rich", "RICH", "world-bodies", {"size": 512, "reset_interval": None, "use_ttt3r": True},
                      ("smpl:neutral", "smplx:male", "smplx:female", "smplx2smpl.pkl"), "smpl24", _sequences,
                      "fanegg/Human3R@e313921 eval/global_human/{metadata.py,run_rich.sh}; GVHMR rich_motion_test.py"),
}
