"""The paper's metrics as plain numpy functions: metres in, per-frame values out.

Human3R reports (Tables 1-2, Fig. 8):

* camera-frame bodies: MPJPE, PA-MPJPE, PVE (mm), after centring each body on its pelvis;
* world-frame motion: W-MPJPE, WA-MPJPE (mm) on 100-frame chunks, RTE (%), jitter, foot sliding;
* people detection: precision / recall / F1 of a greedy 2D matching of predicted to ground-truth people;
* video depth: AbsRel and delta < 1.25, with one alignment per sequence;
* camera poses: ATE and RPE, through evo (:mod:`human3r_demo.evaluation.trajectory`).

Every function follows the reference implementation its docstring names: Human3R's ``eval/`` (read at
fanegg/Human3R e313921), which copies zju3dv/GVHMR ``hmr4d/utils/eval/eval_utils.py``, which follows
WHAM's ``lib/eval/eval_utils.py``. Computations run in float64 whatever the input dtype.

Adapted from fanegg/Human3R ``eval/global_human/utils.py`` and ``eval/video_depth/tools.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .alignment import procrustes_align, umeyama
from .trajectory import CameraError, RelativePoseError, ate, rpe

__all__ = [
    "PELVIS_JOINTS",
    "SMPL_FOOT_VERTICES",
    "CameraError",
    "PeopleMatch",
    "RelativePoseError",
    "ate",
    "average_depth",
    "depth",
    "detection_scores",
    "foot_sliding",
    "jitter",
    "match_people",
    "mpjpe",
    "pa_mpjpe",
    "pve",
    "rpe",
    "rte",
    "w_mpjpe",
    "wa_mpjpe",
]

M_TO_MM = 1000.0
PELVIS_JOINTS = (1, 2)  # the hips: the reference's pelvis is their mean (SMPL and the 3DPW/EMDB joint sets)
SMPL_FOOT_VERTICES = (3216, 3387, 6617, 6787)  # heel and toe of each foot on the SMPL mesh (6890 vertices)
FOOT_CONTACT_M = 0.01  # ground-truth foot moving less than 1 cm in a frame counts as in contact
DEPTH_MAX_M = 70.0  # ground truth is valid where 0 < d < 70 m
DEPTH_ALIGNMENTS = ("scale", "scale&shift", "metric")


def _joints(name: str, array: np.ndarray, ndim: int = 3) -> np.ndarray:
    array = np.asarray(array, dtype=np.float64)
    if array.ndim != ndim or array.shape[-1] != 3:
        shape = "(T, J, 3)" if ndim == 3 else "(T, 3)"
        raise ValueError(f"{name}: expected {shape} in metres, got shape {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"{name}: contains NaN or infinite values")
    return array


def _pair(pred: np.ndarray, gt: np.ndarray, ndim: int = 3) -> tuple[np.ndarray, np.ndarray]:
    pred, gt = _joints("prediction", pred, ndim), _joints("ground truth", gt, ndim)
    if pred.shape != gt.shape:
        raise ValueError(f"prediction {pred.shape} and ground truth {gt.shape} differ in shape")
    if len(pred) == 0:
        raise ValueError("no frames to evaluate")
    return pred, gt


def _pelvis(joints: np.ndarray) -> np.ndarray:
    if joints.shape[1] <= max(PELVIS_JOINTS):
        raise ValueError(f"the pelvis is the mean of joints {PELVIS_JOINTS}: need at least 3 joints, got {joints.shape[1]}")
    return joints[:, PELVIS_JOINTS].mean(axis=1, keepdims=True)


def _joint_error_mm(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Mean over points of the L2 distance, per frame, in mm (the reference's ``compute_jpe``)."""
    return np.linalg.norm(a - b, axis=-1).mean(axis=-1) * M_TO_MM


# ---------------------------------------------------------------- camera-frame bodies (Table 1)


def mpjpe(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Mean per-joint position error (mm) after centring each body on its own pelvis.

    Matches ``ca_mpjpe`` of ``eval_camcoord`` in Human3R's ``eval/global_human/utils.py`` (GVHMR's
    ``compute_camcoord_metrics``): the pelvis, the mean of joints 1 and 2, is subtracted from the
    prediction and the ground truth separately.

    Args:
        pred, gt: (T, J, 3) joints in metres, camera frame.

    Returns:
        (T,) mm.
    """
    pred, gt = _pair(pred, gt)
    return _joint_error_mm(pred - _pelvis(pred), gt - _pelvis(gt))


def pa_mpjpe(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """MPJPE (mm) after a per-frame Procrustes similarity of the centred prediction onto the ground truth.

    Matches ``pa_mpjpe`` of ``eval_camcoord`` in Human3R's ``eval/global_human/utils.py``
    (``batch_compute_similarity_transform_torch``: scale, rotation with the reflection fixed,
    translation, fitted on each frame's joints).

    Args:
        pred, gt: (T, J, 3) joints in metres.

    Returns:
        (T,) mm.
    """
    pred, gt = _pair(pred, gt)
    pred, gt = pred - _pelvis(pred), gt - _pelvis(gt)
    return _joint_error_mm(procrustes_align(pred, gt), gt)


def pve(pred_verts: np.ndarray, gt_verts: np.ndarray, pred_joints: np.ndarray, gt_joints: np.ndarray) -> np.ndarray:
    """Per-vertex error (mm): mean vertex L2 after centring each mesh on its body's joint pelvis.

    Matches ``ca_pve`` of ``eval_camcoord`` in Human3R's ``eval/global_human/utils.py``: the vertices are
    centred on the pelvis of the *joints* (mean of joints 1 and 2), not on their own mean.

    Args:
        pred_verts, gt_verts: (T, V, 3) vertices in metres (the same mesh topology).
        pred_joints, gt_joints: (T, J, 3) the joints of those bodies.

    Returns:
        (T,) mm.
    """
    pred_verts, gt_verts = _pair(pred_verts, gt_verts)
    pred_joints, gt_joints = _pair(pred_joints, gt_joints)
    if len(pred_joints) != len(pred_verts):
        raise ValueError(f"{len(pred_verts)} frames of vertices but {len(pred_joints)} of joints")
    return _joint_error_mm(pred_verts - _pelvis(pred_joints), gt_verts - _pelvis(gt_joints))


# ---------------------------------------------------------------- world-frame motion (Table 2)


def _chunked_error(pred: np.ndarray, gt: np.ndarray, chunk: int, first_frames: int | None) -> np.ndarray:
    pred, gt = _pair(pred, gt)
    if chunk < 1:
        raise ValueError(f"chunk must be a positive number of frames, got {chunk}")
    errors = []
    for start in range(0, len(pred), chunk):
        p, g = pred[start : start + chunk], gt[start : start + chunk]
        fit = slice(0, first_frames)  # the frames the Sim(3) is fitted on; it moves the whole chunk
        sim = umeyama(p[fit].reshape(-1, 3), g[fit].reshape(-1, 3), with_scale=True)
        aligned = sim.apply(p.reshape(-1, 3)).reshape(p.shape)
        errors.append(_joint_error_mm(aligned, g))
    return np.concatenate(errors)


def w_mpjpe(pred: np.ndarray, gt: np.ndarray, chunk: int = 100) -> np.ndarray:
    """World MPJPE (mm): each ``chunk``-frame segment Sim(3)-aligned on its first two frames only.

    Matches ``wa2_mpjpe`` of ``eval_global`` in Human3R's ``eval/global_human/utils.py``
    (``first_align_joints``): the Umeyama similarity fitted on the joints of the chunk's first two
    frames moves the whole chunk, so drift within the chunk is counted. The reference's chunk is
    ``int(100 / subsample)`` frames.

    Args:
        pred, gt: (T, J, 3) world joints in metres (no pelvis centring).
        chunk: frames per chunk.

    Returns:
        (T,) mm.
    """
    return _chunked_error(pred, gt, chunk, first_frames=2)


def wa_mpjpe(pred: np.ndarray, gt: np.ndarray, chunk: int = 100) -> np.ndarray:
    """World-aligned MPJPE (mm): each chunk Sim(3)-aligned on all its frames.

    Matches ``waa_mpjpe`` of ``eval_global`` in Human3R's ``eval/global_human/utils.py``
    (``global_align_joints``).

    Args:
        pred, gt: (T, J, 3) world joints in metres.
        chunk: frames per chunk.

    Returns:
        (T,) mm.
    """
    return _chunked_error(pred, gt, chunk, first_frames=None)


def rte(pred_root: np.ndarray, gt_root: np.ndarray) -> np.ndarray:
    """Root translation error (%): rigid alignment (no scale) of the whole root trajectory, then the
    per-frame distance divided by the ground truth's total path length, x100.

    Matches ``compute_rte`` (``fixed_scale=True``) in Human3R's ``eval/global_human/utils.py`` (and
    GVHMR's / WHAM's). The root is joint 0.

    Args:
        pred_root, gt_root: (T, 3) root positions in metres, world frame.

    Returns:
        (T,) percent of the ground-truth path length.

    Raises:
        ValueError: the ground-truth root never moves (the path length is zero).
    """
    pred, gt = _pair(pred_root, gt_root, ndim=2)
    path_length = np.linalg.norm(np.diff(gt, axis=0), axis=-1).sum()
    if not path_length > 0:
        raise ValueError("RTE is undefined: the ground-truth root never moves (path length 0)")
    aligned = umeyama(pred, gt, with_scale=False).apply(pred)
    return np.linalg.norm(aligned - gt, axis=-1) / path_length * 100.0


def jitter(joints: np.ndarray, fps: float = 30) -> np.ndarray:
    """Jitter: the norm of the third finite difference times ``fps**3``, mean over joints, /10.

    Matches ``compute_jitter`` in Human3R's ``eval/global_human/utils.py`` (GVHMR, WHAM); the unit is
    10 m/s^3 (the reference divides m/s^3 by 10). The reference always passes ``fps=30``.

    Args:
        joints: (T, J, 3) predicted world joints in metres, T >= 4.

    Returns:
        (T-3,) one value per window of four frames, indexed by its first frame.
    """
    joints = _joints("joints", joints)
    if len(joints) < 4:
        raise ValueError(f"jitter needs at least 4 frames, got {len(joints)}")
    third = joints[3:] - 3 * joints[2:-1] + 3 * joints[1:-2] - joints[:-3]
    return np.linalg.norm(third * fps**3, axis=-1).mean(axis=-1) / 10.0


def foot_sliding(
    pred_verts: np.ndarray,
    gt_verts: np.ndarray,
    threshold: float = FOOT_CONTACT_M,
    foot_vertices: tuple[int, ...] = SMPL_FOOT_VERTICES,
) -> np.ndarray:
    """Foot sliding (mm): how far the predicted feet move in the frames where the ground truth's stay put.

    Matches ``compute_foot_sliding`` in Human3R's ``eval/global_human/utils.py`` (GVHMR, WHAM): for the
    SMPL foot vertices 3216, 3387, 6617, 6787, a foot vertex is in contact between frames t and t+1 when
    the ground truth moves it less than ``threshold`` (1 cm); the values are the predicted displacements
    of the vertices in contact. Note the argument order: prediction first (the reference takes the
    ground truth first).

    Args:
        pred_verts, gt_verts: (T, V, 3) world vertices in metres; V = 6890 (SMPL) for the default
            ``foot_vertices``.
        threshold: contact threshold in metres per frame.
        foot_vertices: the vertex indices of the feet.

    Returns:
        (K,) mm, one value per (frame pair, foot vertex) in contact, in frame order; its mean is the
        number the paper reports. Empty when no vertex is in contact.
    """
    pred, gt = _pair(pred_verts, gt_verts)
    if foot_vertices == SMPL_FOOT_VERTICES and pred.shape[1] != 6890:
        raise ValueError(f"the default foot vertices are SMPL's (6890 vertices); got {pred.shape[1]}: convert to SMPL or pass foot_vertices")
    if max(foot_vertices) >= pred.shape[1]:
        raise ValueError(f"foot vertex {max(foot_vertices)} is out of range for a mesh of {pred.shape[1]} vertices")
    feet = list(foot_vertices)
    gt_step = np.linalg.norm(np.diff(gt[:, feet], axis=0), axis=-1)  # (T-1, 4)
    pred_step = np.linalg.norm(np.diff(pred[:, feet], axis=0), axis=-1)
    return pred_step[gt_step < threshold] * M_TO_MM


# ---------------------------------------------------------------- people detection


@dataclass(frozen=True)
class PeopleMatch:
    """The greedy 2D matching of one frame's predicted people to its ground-truth people.

    Attributes:
        pairs: (M, 2) int rows ``(predicted index, ground-truth index)``, in the order they were matched.
        false_positives: predicted people left unmatched.
        misses: ground-truth people left unmatched.
    """

    pairs: np.ndarray
    false_positives: list[int]
    misses: list[int]


def project(points: np.ndarray, intrinsics: np.ndarray) -> np.ndarray:
    """Pinhole projection of camera-frame points (..., 3) with ``K`` (3, 3) to pixels (..., 2).

    A point on the camera's plane (z = 0) projects to infinity, without a warning: the matching treats
    such a person as overlapping nothing.
    """
    uvw = np.asarray(points, dtype=np.float64) @ np.asarray(intrinsics, dtype=np.float64).T
    with np.errstate(divide="ignore", invalid="ignore"):
        return uvw[..., :2] / uvw[..., 2:3]


def _box_iou(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of the boxes around two 2D point sets, with the reference's inclusive-pixel (+1) areas.

    A person projected from behind or onto the camera centre (non-finite pixels) overlaps nothing.
    """
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        return 0.0
    (ax0, ay0), (ax1, ay1) = a.min(axis=0), a.max(axis=0)
    (bx0, by0), (bx1, by1) = b.min(axis=0), b.max(axis=0)
    inter = max(0.0, min(ax1, bx1) - max(ax0, bx0) + 1) * max(0.0, min(ay1, by1) - max(ay0, by0) + 1)
    area_a = (ax1 - ax0 + 1) * (ay1 - ay0 + 1)
    area_b = (bx1 - bx0 + 1) * (by1 - by0 + 1)
    return float(inter / (area_a + area_b - inter))


def match_people(
    pred_joints: np.ndarray, pred_intrinsics: np.ndarray, gt_joints_2d: np.ndarray, iou_threshold: float = 0.05
) -> PeopleMatch:
    """Match one frame's predicted people to the ground truth's, greedily, in the image.

    Matches ``match_2d`` / ``match_2d_greedy`` in Human3R's ``eval/global_human/launch.py`` and
    ``utils.py`` (from ROMP's 3DPW evaluation): the predicted joints are projected with the *predicted*
    intrinsics and cut to the ground truth's joint count; pairs are taken in increasing order of the
    spectral norm (``np.linalg.norm(., 2)``) of their (J, 2) joint differences; a pair is accepted
    when neither side is taken yet and the boxes around the two joint sets overlap with
    IoU >= ``iou_threshold`` (areas in inclusive pixels, +1, as the reference). As in the reference, every
    pair rejected for its IoU counts towards ending the search (the loop stops once accepted matches
    plus such rejections reach the number of predictions).

    Args:
        pred_joints: (P, J', 3) predicted joints in the camera frame (metres), J' >= J.
        pred_intrinsics: (3, 3) the predicted K of this frame.
        gt_joints_2d: (G, J, 2) ground-truth joints in pixels.
        iou_threshold: the minimum box overlap of a match.

    Returns:
        A :class:`PeopleMatch`.
    """
    pred_joints = np.asarray(pred_joints, dtype=np.float64).reshape(-1, *np.shape(pred_joints)[-2:])
    gt = np.asarray(gt_joints_2d, dtype=np.float64).reshape(-1, *np.shape(gt_joints_2d)[-2:])
    n_pred, n_gt = len(pred_joints), len(gt)
    if gt.shape[-1] != 2 or (n_pred and (pred_joints.shape[-1] != 3 or pred_joints.shape[1] < gt.shape[1])):
        raise ValueError(f"matching needs predicted joints (P, J' >= J, 3) and ground-truth joints (G, J, 2), got {pred_joints.shape} and {gt.shape}")
    pairs: list[tuple[int, int]] = []
    if n_pred and n_gt:
        pred_2d = project(pred_joints[:, : gt.shape[1]], pred_intrinsics)
        # the reference's np.linalg.norm(diff, 2) of a (J, 2) matrix is its spectral norm, not Frobenius
        cost = np.linalg.norm(pred_2d[:, None] - gt[None], ord=2, axis=(-2, -1))
        pred_taken, gt_taken = np.zeros(n_pred, bool), np.zeros(n_gt, bool)
        order = iter(np.argsort(cost, axis=None, kind="stable"))  # the reference's argmin-then-infinity, all at once
        rejected = 0
        while not gt_taken.all() and pred_taken.sum() + rejected < n_pred:
            for flat in order:
                p, g = divmod(int(flat), n_gt)
                iou = _box_iou(pred_2d[p], gt[g])
                if iou < iou_threshold:
                    rejected += 1
                    break
                if not pred_taken[p] and not gt_taken[g]:
                    pairs.append((p, g))
                    pred_taken[p] = gt_taken[g] = True
                    break
            else:
                break
    matched_pred = {p for p, _ in pairs}
    matched_gt = {g for _, g in pairs}
    return PeopleMatch(
        pairs=np.array(pairs, dtype=np.int64).reshape(-1, 2),
        false_positives=[p for p in range(n_pred) if p not in matched_pred],
        misses=[g for g in range(n_gt) if g not in matched_gt],
    )


def detection_scores(gt_people: int, misses: int, false_positives: int) -> dict[str, float]:
    """Precision, recall and F1 (%) of the people matching, summed over a sequence's frames.

    Matches ``compute_prf1`` in Human3R's ``eval/global_human/utils.py`` (from ROMP), including its
    rounding of each ratio to two decimals (whole percent) before the x100, and zeros when there is no
    ground truth or no true positive.

    Args:
        gt_people: ground-truth people over all frames (the reference's ``count``).
        misses: ground-truth people left unmatched.
        false_positives: predictions left unmatched.
    """
    true_positives = gt_people - misses
    if gt_people == 0 or true_positives == 0:
        return {"precision": 0.0, "recall": 0.0, "f1": 0.0}
    f1 = true_positives / (true_positives + 0.5 * (false_positives + misses))
    recall = true_positives / (true_positives + misses)
    precision = true_positives / (true_positives + false_positives)
    return {name: 100.0 * round(value, 2) for name, value in (("precision", precision), ("recall", recall), ("f1", f1))}


# ---------------------------------------------------------------- video depth (Fig. 8)


def _resize_cubic(depth: np.ndarray, height: int, width: int) -> np.ndarray:
    import cv2  # OpenCV's bicubic is the reference's resize; imported here to keep it off the import path

    if depth.shape == (height, width):
        return depth
    return cv2.resize(depth, (width, height), interpolation=cv2.INTER_CUBIC)


def _lower_median(values: np.ndarray) -> float:
    """``torch.median``'s median: the lower of the two middle values for an even count (the reference's)."""
    return float(np.partition(values, (len(values) - 1) // 2)[(len(values) - 1) // 2])


def _l1_scale(pred: np.ndarray, gt: np.ndarray, iterations: int = 10) -> float:
    """The scale minimising ``sum |s d - d*|`` by iteratively reweighted least squares (Weiszfeld)."""
    scale = np.nanmean(gt) / np.nanmean(pred)  # the L2 start of the reference
    for _ in range(iterations):
        weights = 1.0 / (np.abs(scale * pred - gt) + 1e-8)
        scale = np.sum(weights * pred * gt) / np.sum(weights * pred**2)
    return max(float(scale), 1e-3)


def _l1_scale_shift(pred: np.ndarray, gt: np.ndarray, lr: float = 1e-4, max_iters: int = 1000, tol: float = 1e-6) -> tuple[float, float]:
    """Scale and shift by Adam on ``sum |s d + t - d*|`` from the median scale, as the reference does.

    The reference's ``absolute_value_scaling2`` runs at most 1000 Adam steps of lr 1e-4 (so ``s`` and
    ``t`` move by at most about 0.1 from their start) and stops when the summed loss changes by < 1e-6.
    """
    import torch

    p, g = torch.from_numpy(pred), torch.from_numpy(gt)
    scale = torch.tensor([_lower_median(gt) / _lower_median(pred)], dtype=torch.float64, requires_grad=True)
    shift = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.Adam([scale, shift], lr=lr)
    previous = None
    for _ in range(max_iters):
        optimizer.zero_grad()
        loss = (scale * p + shift - g).abs().sum()
        loss.backward()
        optimizer.step()
        if previous is not None and abs(previous - loss.item()) < tol:
            break
        previous = loss.item()
    return float(scale.item()), float(shift.item())


def depth(pred: np.ndarray, gt: np.ndarray, align: str = "scale") -> dict[str, float]:
    """AbsRel and delta < 1.25 of one sequence's depth maps, after one alignment for the whole sequence.

    Matches ``depth_evaluation`` in Human3R's ``eval/video_depth/tools.py`` as ``eval_depth.py`` calls it
    for Bonn (``max_depth=70``): predictions resized to the ground truth's size with OpenCV's bicubic
    interpolation; valid pixels are those with 0 < d* < 70 m; ``align`` is

    * ``"scale"``: one L1 scale (10 Weiszfeld / IRLS iterations from the L2 estimate, clamped >= 1e-3);
    * ``"scale&shift"``: scale and shift by the reference's 1000 Adam steps on the L1 loss;
    * ``"metric"``: none (metric depth).

    AbsRel = mean |d - d*| / d*; delta = share of pixels with max(d/d*, d*/d) < 1.25 (predictions
    clamped to >= 1e-5 first).

    Args:
        pred: (T, h, w) predicted depth in metres (any resolution).
        gt: (T, H, W) ground-truth depth in metres (Bonn / TUM: the 16-bit PNG / 5000); invalid <= 0.
        align: ``"scale"``, ``"scale&shift"`` or ``"metric"``.

    Returns:
        ``{"abs_rel", "delta_1_25", "valid_pixels", "scale", "shift"}``: average sequences with
        :func:`average_depth`, which weights them by ``valid_pixels`` as the reference does.
    """
    if align not in DEPTH_ALIGNMENTS:
        raise ValueError(f"unknown depth alignment {align!r}: choose one of {', '.join(DEPTH_ALIGNMENTS)}")
    pred, gt = np.asarray(pred), np.asarray(gt, dtype=np.float64)
    if pred.ndim != 3 or gt.ndim != 3 or len(pred) != len(gt):
        raise ValueError(f"depth needs (T, h, w) predictions and (T, H, W) ground truth, got {pred.shape} and {gt.shape}")
    work_dtype = pred.dtype if pred.dtype in (np.float32, np.float64) else np.float64
    height, width = gt.shape[1:]
    pred = np.stack([_resize_cubic(frame.astype(work_dtype), height, width) for frame in pred]).astype(np.float64)
    valid = (gt > 0) & (gt < DEPTH_MAX_M)
    n_valid = int(valid.sum())
    if n_valid == 0:
        raise ValueError(f"no valid ground-truth depth pixel (0 < d < {DEPTH_MAX_M:g} m) in this sequence")
    d, d_star = pred[valid], gt[valid]
    if not np.isfinite(d).all():
        raise ValueError(f"the predicted depth is NaN or infinite on {int((~np.isfinite(d)).sum())} valid pixels")
    scale, shift = 1.0, 0.0
    if align == "scale":
        scale = _l1_scale(d, d_star)
    elif align == "scale&shift":
        scale, shift = _l1_scale_shift(d, d_star)
    d = scale * d + shift
    abs_rel = float(np.mean(np.abs(d - d_star) / d_star))
    d = np.maximum(d, 1e-5)
    delta = float(np.mean(np.maximum(d / d_star, d_star / d) < 1.25))
    return {"abs_rel": abs_rel, "delta_1_25": delta, "valid_pixels": n_valid, "scale": scale, "shift": shift}


def average_depth(sequences: list[dict[str, float]]) -> dict[str, float]:
    """The dataset's AbsRel and delta: per-sequence values averaged weighted by their valid pixels.

    Matches the ``np.average(..., weights=valid_pixels)`` of Human3R's ``eval/video_depth/eval_depth.py``.
    """
    if not sequences:
        raise ValueError("no depth sequences to average")
    weights = np.array([s["valid_pixels"] for s in sequences], dtype=np.float64)
    return {key: float(np.average([s[key] for s in sequences], weights=weights)) for key in ("abs_rel", "delta_1_25")}
