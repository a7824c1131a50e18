"""The licensed body-model files the benchmarks' ground truth and scoring need, found and read safely.

The ground truth of 3DPW and EMDB is SMPL (gendered), RICH's is SMPL-X (gendered); Human3R predicts
neutral SMPL-X, which the reference scores as SMPL: its vertices mapped by ``smplx2smpl`` (6890 x
10475), then SMPL's joint regressor (24 joints), or, on 3DPW, the Human3.6M regressor cut to the 14
LSP joints. The files sit where Human3R's ``scripts/fetch_smplx.sh`` puts them, under one folder::

    smpl/SMPL_NEUTRAL.{npz,pkl}  smpl/SMPL_MALE.{npz,pkl}  smpl/SMPL_FEMALE.{npz,pkl}
    smpl/J_regressor_h36m.npy    smplx/smplx2smpl.pkl
    smplx/SMPLX_MALE.npz         smplx/SMPLX_FEMALE.npz   (RICH only)

That folder is ``--body-models``, else ``$HUMAN3R_BODY_MODELS``, else ``data/body_models``. Pickles are
read with :func:`~human3r_demo.checkpoints.safe_pickle.load_data_pickle` (plain data and arrays only:
SMPL's original ``.pkl`` with chumpy objects is refused with a hint), ``.npy``/``.npz`` with
``allow_pickle=False``; the SMPL-X files go through :func:`~human3r_demo.smplx_file.verified_copy`.

Adapted from fanegg/Human3R@e313921 ``src/dust3r/smpl_model.py`` (``SMPLModel``: which files, which
regressor for which dataset).
"""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from ...smplx_file import DEFAULT_DIR

__all__ = ["BODY_MODELS_ENV", "BodyModelFiles", "MissingBodyModel", "H36M_TO_14"]

BODY_MODELS_ENV = "HUMAN3R_BODY_MODELS"
SMPL_VERTICES, SMPLX_VERTICES = 6890, 10475
# Human3.6M's 17 regressed joints -> the 14 LSP joints 3DPW is scored on (the reference's h36m_to_14)
H36M_TO_14 = (6, 5, 4, 1, 2, 3, 16, 15, 14, 11, 12, 13, 8, 10)

_WHERE = {
    "smpl": "register at https://smpl.is.tue.mpg.de, download 'SMPL for Python v1.1.0' and save "
            "basicmodel_{m,f,neutral}_lbs_10_207_0_v1.1.0.pkl as SMPL_{MALE,FEMALE,NEUTRAL}.pkl, with chumpy "
            "objects converted to numpy (or as .npz)",
    "smplx": "register at https://smpl-x.is.tue.mpg.de and download 'SMPL-X v1.1 (NPZ+PKL)'",
    "extra": "the supplementary files of Human3R's scripts/fetch_smplx.sh (its Google Drive folder 'body_models')",
}


class MissingBodyModel(FileNotFoundError):
    """A body-model file an evaluation needs is missing or unusable; one line naming it and where to get it."""


def default_root() -> Path:
    return Path(os.environ.get(BODY_MODELS_ENV) or DEFAULT_DIR)


class BodyModelFiles:
    """The body-model files under one folder, loaded on first use and kept.

    Args:
        root: the folder (see the module docstring); ``None``: ``$HUMAN3R_BODY_MODELS`` or ``data/body_models``.
    """

    def __init__(self, root: str | os.PathLike | None = None) -> None:
        self.root = Path(root) if root is not None else default_root()
        self._cache: dict[str, object] = {}

    # ------------------------------------------------------------------ what exists
    def smpl_path(self, gender: str) -> Path:
        for suffix in (".npz", ".pkl"):
            path = self.root / "smpl" / f"SMPL_{gender.upper()}{suffix}"
            if path.is_file():
                return path
        raise MissingBodyModel(f"missing {self.root / 'smpl' / f'SMPL_{gender.upper()}.pkl'} (or .npz): {_WHERE['smpl']}")

    def smplx_path(self, gender: str) -> Path:
        path = self.root / "smplx" / f"SMPLX_{gender.upper()}.npz"
        if not path.is_file():
            raise MissingBodyModel(f"missing {path}: {_WHERE['smplx']}")
        return path

    def extra_path(self, name: str) -> Path:
        folder = "smpl" if name.startswith("J_regressor") else "smplx"
        path = self.root / folder / name
        if not path.is_file():
            raise MissingBodyModel(f"missing {path}: {_WHERE['extra']}")
        return path

    def check(self, needs: tuple[str, ...]) -> None:
        """Raise :class:`MissingBodyModel` for the first missing file of ``needs``: entries such as
        ``"smpl:male"``, ``"smplx:female"``, ``"smplx2smpl.pkl"``, ``"J_regressor_h36m.npy"``."""
        for need in needs:
            kind, _, gender = need.partition(":")
            if kind == "smpl":
                self.smpl_path(gender)
            elif kind == "smplx":
                self.smplx_path(gender)
            else:
                self.extra_path(need)

    # ------------------------------------------------------------------ arrays
    def _smpl_arrays(self, gender: str) -> dict[str, np.ndarray]:
        key = f"smpl-arrays:{gender}"
        if key not in self._cache:
            path = self.smpl_path(gender)
            if path.suffix == ".npz":
                with np.load(path, allow_pickle=False) as data:
                    raw = {name: data[name] for name in data.files}
            else:
                from ...checkpoints.safe_pickle import load_data_pickle

                raw = load_data_pickle(path)
                if not isinstance(raw, dict):
                    raise MissingBodyModel(f"{path} is not an SMPL model file (a {type(raw).__name__}, not a dict)")
            arrays = {}
            for name in ("v_template", "f", "shapedirs", "posedirs", "J_regressor", "weights", "kintree_table"):
                if name not in raw:
                    raise MissingBodyModel(f"{path} is not an SMPL model file: it lacks {name}")
                value = raw[name]
                arrays[name] = np.asarray(value.toarray() if hasattr(value, "toarray") else value)
            if arrays["v_template"].shape != (SMPL_VERTICES, 3):
                raise MissingBodyModel(f"{path} has {arrays['v_template'].shape[0]} vertices; SMPL has {SMPL_VERTICES}")
            self._cache[key] = arrays
        return self._cache[key]

    def smpl(self, gender: str):
        """The ``smplx.SMPL`` layer of ``gender`` (neutral / male / female), built from the checked arrays."""
        key = f"smpl:{gender}"
        if key not in self._cache:
            import smplx

            arrays = self._smpl_arrays(gender)
            struct = SimpleNamespace(**arrays)
            self._cache[key] = smplx.SMPL(model_path=str(self.root), data_struct=struct, gender=gender, num_betas=10)
        return self._cache[key]

    def smplx(self, gender: str):
        """The gendered ``smplx.SMPLX`` layer (RICH's ground truth: 12 hand PCA components, as the reference)."""
        key = f"smplx:{gender}"
        if key not in self._cache:
            import smplx

            from ...checkpoints.cache import cache_dir
            from ...smplx_file import BodyModelError, verified_copy

            try:
                copy = verified_copy(self.smplx_path(gender), cache_dir())
            except BodyModelError as err:
                raise MissingBodyModel(str(err)) from None
            self._cache[key] = smplx.SMPLX(model_path=str(copy), gender=gender, num_pca_comps=12, num_betas=10)
        return self._cache[key]

    def smplx2smpl(self):
        """(6890, 10475) scipy sparse matrix mapping SMPL-X vertices to SMPL's (Human3R's ``smplx2smpl``)."""
        if "smplx2smpl" not in self._cache:
            import scipy.sparse

            from ...checkpoints.safe_pickle import load_data_pickle

            path = self.extra_path("smplx2smpl.pkl")
            data = load_data_pickle(path)
            matrix = data.get("matrix") if isinstance(data, dict) else None
            if matrix is None or tuple(matrix.shape) != (SMPL_VERTICES, SMPLX_VERTICES):
                raise MissingBodyModel(f"{path} is not smplx2smpl: expected {{'matrix': ({SMPL_VERTICES}, {SMPLX_VERTICES})}}")
            self._cache["smplx2smpl"] = scipy.sparse.csr_matrix(matrix, dtype=np.float64)
        return self._cache["smplx2smpl"]

    def smpl_regressor(self) -> np.ndarray:
        """(24, 6890) SMPL's own joint regressor (the neutral model's; the reference's ``J_regressor[:24]``)."""
        return self._smpl_arrays("neutral")["J_regressor"][:24].astype(np.float64)

    def h36m14_regressor(self) -> np.ndarray:
        """(14, 6890) the Human3.6M regressor cut to the 14 joints 3DPW is scored on."""
        path = self.extra_path("J_regressor_h36m.npy")
        regressor = np.load(path, allow_pickle=False)
        if regressor.shape != (17, SMPL_VERTICES):
            raise MissingBodyModel(f"{path} is not the H36M regressor: shape {regressor.shape}, expected (17, {SMPL_VERTICES})")
        return regressor[list(H36M_TO_14)].astype(np.float64)

    # ------------------------------------------------------------------ forward
    def smpl_vertices(self, gender: str, global_orient: np.ndarray, body_pose: np.ndarray, betas: np.ndarray,
                      transl: np.ndarray, batch: int = 512) -> np.ndarray:
        """(T, 6890, 3) SMPL vertices, float64, of per-frame parameters (T, 3), (T, 69), (T, 10), (T, 3)."""
        params = {"global_orient": global_orient, "body_pose": body_pose, "betas": betas, "transl": transl}
        return _forward(self.smpl(gender), params, {}, batch, SMPL_VERTICES)

    def smplx_vertices(self, gender: str, params: dict[str, np.ndarray], batch: int = 256) -> np.ndarray:
        """(T, 10475, 3) gendered SMPL-X vertices of ``global_orient`` (T,3), ``body_pose`` (T,63),
        ``betas`` (T,10), ``transl`` (T,3); hands, jaw, eyes and expression at zero (the reference's RICH)."""
        zeros = {"jaw_pose": 3, "leye_pose": 3, "reye_pose": 3, "left_hand_pose": 12, "right_hand_pose": 12, "expression": 10}
        wanted = {k: params[k] for k in ("global_orient", "body_pose", "betas", "transl")}
        return _forward(self.smplx(gender), wanted, zeros, batch, SMPLX_VERTICES)


def _forward(layer, params: dict[str, np.ndarray], zeros: dict[str, int], batch: int, vertices: int) -> np.ndarray:
    """The layer's vertices (T, V, 3) float64 for per-frame ``params``, ``zeros`` (name -> width) at zero, in batches."""
    import torch

    frames = len(next(iter(params.values())))
    out = []
    for start in range(0, frames, batch):
        stop = min(start + batch, frames)
        inputs = {k: torch.as_tensor(np.asarray(v[start:stop], dtype=np.float32)) for k, v in params.items()}
        inputs.update({k: torch.zeros(stop - start, width) for k, width in zeros.items()})
        with torch.no_grad():
            out.append(layer(**inputs).vertices.double().numpy())
    return np.concatenate(out) if out else np.zeros((0, vertices, 3))
