"""Small benchmark folders in each dataset's exact on-disk layout, and small stand-in body models, for the
evaluation tests. Nothing here is real data: shapes, names, keys and units are the datasets'; values are random."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
from PIL import Image
from scipy.spatial.transform import Rotation

SMPL_V, SMPLX_V = 6890, 10475
SMPL_PARENTS = [-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21]


def write_images(folder: Path, count: int, size=(96, 64), names=None, seed=0) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(count):
        path = folder / (names[i] if names else f"{i:05d}.jpg")
        Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


def write_body_models(root: Path) -> Path:
    """Stand-in SMPL (neutral, male, female as .npz; 6890 vertices, 24 joints), smplx2smpl.pkl (sparse),
    J_regressor_h36m.npy: each joint the mean of a few vertices, so posed joints move with the mesh."""
    rng = np.random.default_rng(1)
    (root / "smpl").mkdir(parents=True, exist_ok=True)
    (root / "smplx").mkdir(parents=True, exist_ok=True)
    joints = rng.normal(scale=0.3, size=(24, 3))
    owner = rng.integers(0, 24, SMPL_V)
    v_template = joints[owner] + rng.normal(scale=0.05, size=(SMPL_V, 3))
    regressor = np.zeros((24, SMPL_V))
    for j in range(24):
        regressor[j, owner == j] = 1.0 / max((owner == j).sum(), 1)
    weights = np.zeros((SMPL_V, 24))
    weights[np.arange(SMPL_V), owner] = 1.0
    kintree = np.array([[2**32 - 1 if p < 0 else p for p in SMPL_PARENTS], list(range(24))], dtype=np.int64)
    for gender in ("NEUTRAL", "MALE", "FEMALE"):
        np.savez(root / "smpl" / f"SMPL_{gender}.npz", v_template=v_template, f=np.array([[0, 1, 2]], dtype=np.int64),
                 shapedirs=rng.normal(scale=1e-3, size=(SMPL_V, 3, 10)), posedirs=np.zeros((SMPL_V, 3, 207), np.float32),
                 J_regressor=regressor, weights=weights, kintree_table=kintree)
    import scipy.sparse

    mapping = scipy.sparse.csr_matrix((np.ones(SMPL_V), (np.arange(SMPL_V), np.arange(SMPL_V))), shape=(SMPL_V, SMPLX_V))
    with open(root / "smplx" / "smplx2smpl.pkl", "wb") as f:
        pickle.dump({"matrix": mapping}, f, protocol=2)
    np.save(root / "smpl" / "J_regressor_h36m.npy", regressor[:17])
    return root


def write_emdb(root: Path, frames: int = 5, name: str = "P0_09_outdoor_walk", emdb1: bool = True, emdb2: bool = True) -> Path:
    """``P0/09_outdoor_walk/P0_09_outdoor_walk_data.pkl`` + ``images/`` as EMDB distributes them."""
    rng = np.random.default_rng(2)
    folder = root / name.split("_")[0] / name.split("_", 1)[1]
    write_images(folder / "images", frames)
    mask = np.ones(frames, dtype=bool)
    mask[1] = False  # a bad frame the protocol skips
    extrinsics = np.tile(np.eye(4), (frames, 1, 1))
    extrinsics[:, 2, 3] = 3.0
    extrinsics[:, 0, 3] = np.linspace(0, 0.2, frames)
    data = {
        "name": name, "gender": "female", "emdb1": emdb1, "emdb2": emdb2, "n_frames": frames,
        "good_frames_mask": mask,
        "camera": {"intrinsics": np.array([[80.0, 0, 48], [0, 80.0, 32], [0, 0, 1]]), "extrinsics": extrinsics},
        "smpl": {"poses_root": rng.normal(scale=0.1, size=(frames, 3)), "poses_body": rng.normal(scale=0.1, size=(frames, 69)),
                 "betas": rng.normal(size=10), "trans": np.cumsum(rng.normal(scale=0.05, size=(frames, 3)), axis=0)},
        "kp2d": np.zeros((frames, 24, 3)), "bboxes": {}, "subfolder": name,
    }
    with open(folder / f"{name}_data.pkl", "wb") as f:
        pickle.dump(data, f, protocol=2)
    return root


def tum_rows(count: int, seed: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    positions = np.cumsum(rng.normal(scale=0.05, size=(count, 3)), axis=0)
    quats = Rotation.from_rotvec(np.cumsum(rng.normal(scale=0.05, size=(count, 3)), axis=0)).as_quat()
    return np.hstack([positions, quats])


def write_tum(root: Path, frames: int = 12, name: str = "rgbd_dataset_freiburg3_walking_xyz") -> Path:
    """``<seq>/rgb/<stamp>.png``, ``rgb.txt`` and ``groundtruth.txt`` (100 Hz, 7 numbers a pose)."""
    folder = root / name
    stamps = 1305031102.0 + np.arange(frames) / 30.0
    names = [f"{t:.6f}.png" for t in stamps]
    write_images(folder / "rgb", frames, names=names)
    (folder / "rgb.txt").write_text("# color images\n# file: 'x.bag'\n# timestamp filename\n"
                                    + "".join(f"{t:.6f} rgb/{n}\n" for t, n in zip(stamps, names)))
    gt_stamps = np.arange(stamps[0] - 0.05, stamps[-1] + 0.05, 0.01)
    rows = tum_rows(len(gt_stamps))
    (folder / "groundtruth.txt").write_text("# ground truth trajectory\n# file: 'x.bag'\n# timestamp tx ty tz qx qy qz qw\n"
                                            + "".join(f"{t:.4f} " + " ".join(f"{v:.6f}" for v in r) + "\n"
                                                      for t, r in zip(gt_stamps, rows)))
    return root


class Py2Pickler(pickle._Pickler):
    """Writes ``bytes`` as a Python 2 ``str`` (``SHORT_BINSTRING`` / ``BINSTRING``), so numpy arrays are
    pickled the way Python 2 wrote 3DPW's and SMPL's files (read back with ``encoding='latin1'``)."""

    dispatch = dict(pickle._Pickler.dispatch)

    def save_bytes(self, obj: bytes) -> None:
        import struct

        if len(obj) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(obj)]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(obj)) + obj)
        self.memoize(obj)

    dispatch[bytes] = save_bytes


def py2_pickle(obj, path: Path) -> None:
    with open(path, "wb") as f:
        Py2Pickler(f, protocol=2).dump(obj)
