"""TUM RGB-D dynamic sequences (Sturm et al., IROS 2012), as distributed: per sequence ``rgb/``,
``rgb.txt`` and ``groundtruth.txt``.

``rgb.txt`` lists ``timestamp filename`` a line; ``groundtruth.txt`` ``timestamp tx ty tz qx qy qz qw``
(camera-to-world, metres, Hamilton quaternion, x y z w); ``#`` starts a comment. Images and poses are
paired as TUM's ``associate.py`` does (offset 0, at most 0.02 s apart, closest pairs first, each
stamp used once), then - the protocol of the paper's Table 2 (MonST3R's ``prepare_tum.py``, kept by
CUT3R, TTT3R and Human3R) - every third pair, the first 90. 30 fps.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np

from . import Benchmark, DatasetError, GroundTruth, Sequence

FPS = 30.0
MAX_DIFFERENCE = 0.02  # seconds, associate.py's default
STRIDE, FRAMES = 3, 90


def read_file_list(path: Path) -> dict[float, list[str]]:
    """``{timestamp: [fields...]}`` of a TUM text file (``rgb.txt``, ``depth.txt``, ``groundtruth.txt``)."""
    if not path.is_file():
        raise DatasetError(f"missing {path}")
    entries = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        line = line.replace(",", " ").replace("\t", " ").strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split()
        try:
            entries[float(fields[0])] = fields[1:]
        except ValueError:
            raise DatasetError(f"{path}:{number}: expected 'timestamp ...', got {line[:60]!r}") from None
    if not entries:
        raise DatasetError(f"{path} lists nothing")
    return entries


def associate(first: dict[float, list[str]], second: dict[float, list[str]], offset: float = 0.0,
              max_difference: float = MAX_DIFFERENCE) -> list[tuple[float, float]]:
    """Pairs ``(a, b)`` of stamps with ``|a - (b + offset)| < max_difference``, closest first, each used
    once, sorted by ``a``: TUM's ``associate.py``."""
    candidates = sorted(
        (abs(a - (b + offset)), a, b) for a in first for b in second if abs(a - (b + offset)) < max_difference
    )
    used_a, used_b, pairs = set(), set(), []
    for _, a, b in candidates:
        if a not in used_a and b not in used_b:
            used_a.add(a)
            used_b.add(b)
            pairs.append((a, b))
    return sorted(pairs)


def pose_matrices(rows: np.ndarray) -> np.ndarray:
    """(T, 4, 4) camera-to-world of TUM rows ``tx ty tz qx qy qz qw`` (T, 7)."""
    from scipy.spatial.transform import Rotation

    rows = np.asarray(rows, dtype=np.float64)
    poses = np.tile(np.eye(4), (len(rows), 1, 1))
    poses[:, :3, :3] = Rotation.from_quat(rows[:, 3:7]).as_matrix()  # scipy's order is x y z w, as TUM's
    poses[:, :3, 3] = rows[:, :3]
    return poses


def read_trajectory(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """``(timestamps (T,), camera_to_world (T, 4, 4))`` of a TUM trajectory file."""
    entries = read_file_list(path)
    stamps = np.array(sorted(entries))
    try:
        rows = np.array([[float(v) for v in entries[t][:7]] for t in stamps])
    except ValueError:
        raise DatasetError(f"{path}: a pose is not 7 numbers (tx ty tz qx qy qz qw)") from None
    if rows.shape[1:] != (7,):
        raise DatasetError(f"{path}: expected 'timestamp tx ty tz qx qy qz qw' on every line")
    return stamps, pose_matrices(rows)


def sequence_folders(root: Path) -> list[Path]:
    root = Path(root)
    if (root / "rgb.txt").is_file():
        return [root]
    folders = sorted(p for p in root.iterdir() if (p / "rgb.txt").is_file()) if root.is_dir() else []
    if not folders:
        raise DatasetError(f"no TUM sequence (a folder with rgb/, rgb.txt and groundtruth.txt) in {root}")
    return folders


def _sequences(root: Path, stride: int = STRIDE, frames: int = FRAMES) -> list[Sequence]:
    sequences = []
    for folder in sequence_folders(root):
        rgb = read_file_list(folder / "rgb.txt")
        truth = read_file_list(folder / "groundtruth.txt")
        pairs = associate(rgb, truth)[::stride][:frames]
        if len(pairs) < 3:
            raise DatasetError(f"{folder}: only {len(pairs)} image(s) have a ground-truth pose within {MAX_DIFFERENCE} s")
        images = [folder / rgb[a][0] for a, _ in pairs]
        missing = [p for p in images if not p.is_file()]
        if missing:
            raise DatasetError(f"{folder / 'rgb.txt'} lists {missing[0].relative_to(folder)}, which does not exist")
        rows = np.array([[float(v) for v in truth[b][:7]] for _, b in pairs])
        sequences.append(Sequence(folder.name, images, FPS, partial(_ground_truth, pose_matrices(rows))))
    return sequences


def _ground_truth(camera_to_world: np.ndarray, body=None) -> GroundTruth:
    return GroundTruth(camera_to_world=camera_to_world)


BENCHMARKS = {
    "tum": Benchmark("tum", "TUM-dynamics", "cameras", {"size": 512, "reset_interval": 100, "use_ttt3r": True}, (), "",
                     _sequences, "fanegg/Human3R@e313921 eval/relpose/{run.sh,metadata.py}; MonST3R prepare_tum.py"),
}
