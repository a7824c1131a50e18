"""Finding the SMPL-X model file and reading it without running anything from it.

``smplx.SMPLX`` loads its file with ``np.load(path, allow_pickle=True)``: a pickle saved under the
name ``SMPLX_NEUTRAL.npz``, or a pickled object array inside a real ``.npz``, runs code at load.
Body-model files are often fetched from third-party mirrors, so here the file is read first with
``allow_pickle=False``, every array the layer needs is checked (name, numeric dtype, shape), and
``smplx`` is handed a private copy that holds exactly those arrays (:func:`verified_copy`). A file
that fails any check is refused with one line and nothing from it is executed.
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from pathlib import Path

import numpy as np

from .smplx_layout import NUM_JOINTS

__all__ = ["BodyModelError", "BodyModelNotFound", "HOW_TO_GET_SMPLX", "find_smplx_file", "read_smplx_arrays", "verified_copy"]

SMPLX_FILENAME = "SMPLX_NEUTRAL.npz"
ENV_VAR = "HUMAN3R_SMPLX_DIR"
DEFAULT_DIR = Path(__file__).resolve().parent.parent / "data" / "body_models"
NUM_VERTICES = 10475  # smplx's extra joints are fixed vertex indices of the official topology

HOW_TO_GET_SMPLX = (
    f"SMPL-X meshes need the licensed body model file {SMPLX_FILENAME}. Register (free for research) at "
    f"https://smpl-x.is.tue.mpg.de, download 'SMPL-X v1.1 (NPZ+PKL)', and put {SMPLX_FILENAME} in one of: "
    f"a folder passed as body_model=... (or --smplx), the folder named by ${ENV_VAR}, or {DEFAULT_DIR} "
    "(a 'smplx/' subfolder works too). Without it, reconstruction still returns SMPL-X parameters, head "
    "positions, cameras and scene points, but no meshes."
)


class BodyModelError(ValueError):
    """A body-model file that cannot be used; the message says why. Nothing from it was executed."""


class BodyModelNotFound(BodyModelError, FileNotFoundError):
    """The SMPL-X model file is missing; the message says how to obtain it."""


def find_smplx_file(location: str | os.PathLike | None = None) -> Path:
    """Resolve the SMPL-X ``.npz``: from ``location`` (a file or folder), ``$HUMAN3R_SMPLX_DIR``,
    or ``data/body_models/``. Raises :class:`BodyModelNotFound` with instructions."""
    base = Path(location) if location is not None else Path(os.environ.get(ENV_VAR) or DEFAULT_DIR)
    if base.is_file():
        if base.suffix == ".pkl":
            raise BodyModelNotFound(
                f"{base} is the .pkl release of SMPL-X, which needs chumpy (not installable here) and is a pickle; "
                f"use the .npz release ({SMPLX_FILENAME}) from https://smpl-x.is.tue.mpg.de"
            )
        return base
    for path in (base / SMPLX_FILENAME, base / "smplx" / SMPLX_FILENAME):
        if path.is_file():
            return path
    raise BodyModelNotFound(f"no {SMPLX_FILENAME} found (looked in {base}). {HOW_TO_GET_SMPLX}")


# what smplx.SMPLX reads (use_pca=False, no face contour), and how each array must look;
# None in a shape is any size, "N" the vertex count
_REQUIRED: dict[str, tuple[str, tuple]] = {
    "v_template": ("f", ("N", 3)),
    "f": ("iu", (None, 3)),
    "shapedirs": ("f", ("N", 3, None)),
    "posedirs": ("f", ("N", 3, (NUM_JOINTS - 1) * 9)),
    "J_regressor": ("f", (NUM_JOINTS, "N")),
    "weights": ("f", ("N", NUM_JOINTS)),
    "kintree_table": ("iu", (2, NUM_JOINTS)),
    "hands_componentsl": ("f", (None, 45)),
    "hands_componentsr": ("f", (None, 45)),
    "hands_meanl": ("f", (45,)),
    "hands_meanr": ("f", (45,)),
    "lmk_faces_idx": ("iu", (None,)),
    "lmk_bary_coords": ("f", (None, 3)),
}


def read_smplx_arrays(path: Path) -> dict[str, np.ndarray]:
    """The arrays ``smplx`` needs, read with ``allow_pickle=False`` and checked; :class:`BodyModelError` otherwise."""
    try:
        with np.load(path, allow_pickle=False) as data:
            if not isinstance(data, np.lib.npyio.NpzFile):
                raise BodyModelError(f"{path} is a single array, not an SMPL-X .npz")
            names = set(data.files)
            missing = sorted(set(_REQUIRED) - names)
            if missing:
                raise BodyModelError(f"{path} is not an SMPL-X model: it lacks {', '.join(missing)}")
            arrays = {name: data[name] for name in _REQUIRED}
    except ValueError as err:
        if "pickle" in str(err):
            raise BodyModelError(
                f"refusing {path}: it holds pickled data, which can run code when loaded; nothing from it was "
                f"executed. Use the official {SMPLX_FILENAME} from https://smpl-x.is.tue.mpg.de"
            ) from None
        raise BodyModelError(f"{path} is not a readable .npz ({err})") from None
    except (OSError, EOFError, zipfile.BadZipFile) as err:
        raise BodyModelError(f"{path} is not a readable .npz ({err})") from None
    n = arrays["v_template"].shape[0] if arrays["v_template"].ndim == 2 else None
    for name, (kinds, shape) in _REQUIRED.items():
        a = arrays[name]
        expected = tuple(n if s == "N" else s for s in shape)
        if a.dtype.kind not in kinds or a.ndim != len(expected) or any(e is not None and e != g for e, g in zip(expected, a.shape)):
            raise BodyModelError(f"{path} is not an SMPL-X model: {name} is {a.dtype} {list(a.shape)}, expected {_describe(kinds, expected)}")
    if n != NUM_VERTICES:
        raise BodyModelError(f"{path} has {n} vertices; SMPL-X has {NUM_VERTICES}")
    if arrays["shapedirs"].shape[2] < 20:
        raise BodyModelError(f"{path} has {arrays['shapedirs'].shape[2]} shape directions; SMPL-X needs 10 shape + 10 expression")
    faces = arrays["f"]
    if faces.size and (faces.min() < 0 or faces.max() >= n):
        raise BodyModelError(f"{path} is not an SMPL-X model: its faces index vertices outside 0..{n - 1}")
    return arrays


def verified_copy(path: Path, cache: Path) -> Path:
    """A private copy of ``path`` holding only the checked arrays, for ``smplx`` to load.

    Kept in ``cache`` under a key of the source's location, size and modification time, so a
    given file is checked and copied once.
    """
    real = path.resolve()
    stat = real.stat()
    key = hashlib.sha256(f"{real}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:16]
    target = cache / "body_models" / key / SMPLX_FILENAME
    if target.is_file():
        return target
    arrays = read_smplx_arrays(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name("partial.npz")
    np.savez(tmp, **arrays)
    tmp.replace(target)
    return target


def _describe(kinds: str, shape: tuple) -> str:
    kind = {"f": "floating", "iu": "integer"}[kinds]
    return f"{kind} [{', '.join('any' if s is None else str(s) for s in shape)}]"
