"""Scoring one run (its ``predictions.npz``) against one sequence's ground truth, with :mod:`.metrics`.

What each task compares, as the reference (fanegg/Human3R@e313921 ``eval/global_human/launch.py``,
``eval/relpose/launch.py``, ``eval/video_depth/eval_depth.py``):

* ``camera-bodies``: per frame, the predicted people (SMPL-X vertices -> SMPL by ``smplx2smpl`` -> the
  benchmark's joint regressor) are matched to the true ones in 2D (predicted joints projected with the
  predicted intrinsics, :func:`.metrics.match_people`); matched pairs give MPJPE, PA-MPJPE and PVE; the
  matching gives precision, recall, F1.
* ``world-bodies``: the same matching; the matched frames' world joints give W-MPJPE, WA-MPJPE (100-frame
  chunks), RTE, jitter and foot sliding (and the camera-frame metrics too).
* ``cameras``: the predicted camera poses against the true ones: ATE and RPE through evo.
* ``depth``: the predicted depth maps against the 16-bit ground truth / 5000: AbsRel and delta < 1.25,
  with one scale for the sequence (``scale``) and with none (``metric``); with the sequence's true camera
  poses, ATE and RPE too.

Per-frame rows (a dict per frame and person) and the sequence's values come back in a
:class:`SequenceScore`; the dataset's numbers are combined by :func:`combine`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import metrics
from .datasets import Benchmark, GroundTruth

__all__ = ["SequenceScore", "combine", "score_sequence", "SCORER_VERSION"]

SCORER_VERSION = 1  # bump when a change makes earlier per-sequence scores stale
# 3DPW's 14 joints have their hips at 2 and 3; metrics centres on joints 1 and 2: this order puts the hips
# there (every metric averages over joints, so the order of the others changes nothing)
_H36M14_HIPS_FIRST = [0, 2, 3, 1, *range(4, 14)]
_CAMERA_METRICS = ("ate", "rpe_trans", "rpe_rot")


@dataclass
class SequenceScore:
    """One sequence's result: ``values`` (metric -> number), ``frames`` (per-frame rows), ``notes``."""

    values: dict[str, float] = field(default_factory=dict)
    frames: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    weight: float = 0.0  # what the dataset average weighs this sequence by (matched frames, valid pixels)
    evaluated: int = 0  # frames compared with the ground truth


def score_sequence(bench: Benchmark, truth: GroundTruth, predictions, body=None, fps: float = 30.0) -> SequenceScore:
    """Score ``predictions`` (a :class:`~human3r_demo.export.predictions.Predictions`) against ``truth``."""
    if bench.task == "cameras":
        return _cameras(truth, predictions)
    if bench.task == "depth":
        return _depth(truth, predictions)
    return _bodies(bench, truth, predictions, body, fps)


def _frames(truth_frames: int, predictions) -> np.ndarray:
    """The prediction frames to score: frame k of the run is frame k of the sequence."""
    count = min(truth_frames, len(predictions))
    return np.arange(count)


# ---------------------------------------------------------------- cameras
def _cameras(truth: GroundTruth, predictions) -> SequenceScore:
    score = SequenceScore()
    ks = _frames(len(truth.camera_to_world), predictions)
    score.evaluated = len(ks)
    if len(ks) < len(truth.camera_to_world):
        score.notes.append(f"only {len(ks)} of {len(truth.camera_to_world)} frames were run")
    ate = metrics.ate(predictions.camera_to_world[ks], truth.camera_to_world[ks])
    rpe = metrics.rpe(predictions.camera_to_world[ks], truth.camera_to_world[ks])
    score.values = {"ate": ate.rmse, "rpe_trans": rpe.translation.rmse, "rpe_rot": rpe.rotation.rmse}
    for k in ks:
        row = {"frame": int(k), "ate": float(ate.values[k])}
        if k < len(rpe.translation.values):
            row.update(rpe_trans=float(rpe.translation.values[k]), rpe_rot=float(rpe.rotation.values[k]))
        score.frames.append(row)
    score.weight = 1.0
    return score


# ---------------------------------------------------------------- depth
def _depth(truth: GroundTruth, predictions) -> SequenceScore:
    import cv2

    score = SequenceScore()
    ks = _frames(len(truth.depth_files), predictions)
    score.evaluated = len(ks)
    gt = []
    for k in ks:
        png = cv2.imread(str(truth.depth_files[k]), cv2.IMREAD_UNCHANGED)
        if png is None or png.ndim != 2:
            raise ValueError(f"{truth.depth_files[k]} is not a single-channel depth PNG")
        gt.append(png.astype(np.float64) / truth.depth_scale)
    gt = np.stack(gt)
    pred = np.stack([predictions.depth(int(k)) for k in ks])
    for align, suffix in (("scale", ""), ("metric", "_metric")):
        result = metrics.depth(pred, gt, align=align)
        score.values[f"abs_rel{suffix}"] = result["abs_rel"]
        score.values[f"delta_1_25{suffix}"] = result["delta_1_25"]
        score.values["valid_pixels"] = float(result["valid_pixels"])
        for k in ks:  # the same numbers per frame, with the sequence's alignment
            d_star = gt[k]
            d = cv2.resize(pred[k], (d_star.shape[1], d_star.shape[0]), interpolation=cv2.INTER_CUBIC).astype(np.float64)
            d = np.maximum(result["scale"] * d + result["shift"], 1e-5)
            valid = (d_star > 0) & (d_star < metrics.DEPTH_MAX_M)
            if len(score.frames) <= k:
                score.frames.append({"frame": int(k)})
            if valid.any():
                score.frames[k][f"abs_rel{suffix}"] = float(np.mean(np.abs(d[valid] - d_star[valid]) / d_star[valid]))
                ratio = np.maximum(d[valid] / d_star[valid], d_star[valid] / d[valid])
                score.frames[k][f"delta_1_25{suffix}"] = float(np.mean(ratio < 1.25))
    score.weight = score.values["valid_pixels"]
    if truth.camera_to_world is None:
        score.notes.append("no camera poses for every frame (groundtruth.txt): scored on depth alone")
    elif len(ks) >= 3:
        try:
            cameras = _cameras(GroundTruth(camera_to_world=truth.camera_to_world[ks]), predictions)
        except ValueError as err:  # e.g. a camera that never moves cannot be aligned: the depth still counts
            score.notes.append(f"cameras not scored: {err}")
        else:
            score.values.update(cameras.values)
            for row, extra in zip(score.frames, cameras.frames):
                row.update({k: v for k, v in extra.items() if k != "frame"})
    return score


# ---------------------------------------------------------------- bodies
def _predicted_bodies(people: dict[str, np.ndarray], body, regressor: np.ndarray, frame: str) -> tuple[np.ndarray, np.ndarray]:
    """(n, J, 3) joints and (n, 6890, 3) SMPL vertices of a frame's predicted people, ``frame`` = cam | world."""
    vertices = people.get(f"vertices_{frame}")
    if vertices is None or len(vertices) == 0:
        return np.zeros((0, regressor.shape[0], 3)), np.zeros((0, 6890, 3))
    mapping = body.smplx2smpl()
    smpl = np.stack([mapping @ v.astype(np.float64) for v in vertices])
    return np.einsum("jv,nvc->njc", regressor, smpl), smpl


def _bodies(bench: Benchmark, truth: GroundTruth, predictions, body, fps: float) -> SequenceScore:
    """Camera-frame metrics frame by frame as matched (memory stays per frame); for world motion only the
    matched person's world joints and four foot vertices are kept for the sequence-level alignments."""
    score = SequenceScore()
    regressor = body.h36m14_regressor() if bench.regressor == "h36m14" else body.smpl_regressor()
    order = _H36M14_HIPS_FIRST if bench.regressor == "h36m14" else slice(None)
    world = bench.task == "world-bodies"
    ks = _frames(len(truth.joints_cam), predictions)
    score.evaluated = len(ks)
    if len(ks) < len(truth.joints_cam):
        score.notes.append(f"only {len(ks)} of {len(truth.joints_cam)} frames were run")
    count = misses = false_positives = meshes_missing = 0
    world_pairs: dict[str, list] = {"frame": [], "pred_j": [], "pred_feet": []}
    for k in ks:
        people = predictions.people(int(k))
        if len(people.get("track_id", ())) and "vertices_cam" not in people:
            meshes_missing += 1
        pred_j, pred_v = _predicted_bodies(people, body, regressor, "cam")
        gt_2d = truth.joints_2d[k]
        match = metrics.match_people(pred_j, predictions.source_intrinsics[k], gt_2d)
        count += len(gt_2d)
        misses += len(match.misses)
        false_positives += len(match.false_positives)
        for p, g in match.pairs:
            pj, gj = pred_j[p:p + 1, order], truth.joints_cam[k][g:g + 1].astype(np.float64)[:, order]
            gv = truth.vertices_cam[k][g:g + 1].astype(np.float64)
            score.frames.append({"frame": int(k), "person": int(g), "track_id": int(people["track_id"][p]),
                                 "mpjpe": float(metrics.mpjpe(pj, gj)[0]), "pa_mpjpe": float(metrics.pa_mpjpe(pj, gj)[0]),
                                 "pve": float(metrics.pve(pred_v[p:p + 1], gv, pj, gj)[0])})
        if world and len(match.pairs):
            p = int(match.pairs[0][0])  # one true person in EMDB-2 and RICH
            wj, wv = _predicted_bodies({name: v[p:p + 1] for name, v in people.items()}, body, regressor, "world")
            world_pairs["frame"].append(int(k))
            world_pairs["pred_j"].append(wj[0])
            world_pairs["pred_feet"].append(wv[0, list(metrics.SMPL_FOOT_VERTICES)])
    if meshes_missing:
        score.notes.append(f"{meshes_missing} frame(s) have people but no meshes (the SMPL-X model file was missing for the run)")
    score.values.update(metrics.detection_scores(count, misses, false_positives))
    if not score.frames:
        score.notes.append("no predicted person matched a true one: no body metrics")
        return score
    for name in ("mpjpe", "pa_mpjpe", "pve"):
        score.values[name] = float(np.mean([row[name] for row in score.frames]))
    score.weight = float(len(score.frames))
    if world:
        _world_metrics(score, truth, world_pairs, fps)
    return score


def _world_metrics(score: SequenceScore, truth: GroundTruth, pairs: dict, fps: float) -> None:
    frames = np.array(pairs["frame"])
    pred_j, pred_feet = np.stack(pairs["pred_j"]), np.stack(pairs["pred_feet"])
    gt_j = truth.joints_world[frames].astype(np.float64)
    gt_feet = truth.vertices_world[frames][:, list(metrics.SMPL_FOOT_VERTICES)].astype(np.float64)
    per: dict[str, np.ndarray] = {"wa_mpjpe": metrics.wa_mpjpe(pred_j, gt_j), "w_mpjpe": metrics.w_mpjpe(pred_j, gt_j)}
    try:
        per["rte"] = metrics.rte(pred_j[:, 0], gt_j[:, 0])
    except ValueError as err:
        score.notes.append(f"RTE: {err}")
    for name, values in per.items():
        score.values[name] = float(values.mean())
    if len(frames) >= 4:
        # the reference always passes 30; every benchmark here is 30 fps, so that is the sequence's rate
        score.values["jitter"] = float(metrics.jitter(pred_j, fps=fps).mean())
    sliding = metrics.foot_sliding(pred_feet, gt_feet, foot_vertices=tuple(range(len(metrics.SMPL_FOOT_VERTICES))))
    if sliding.size:
        score.values["foot_sliding"] = float(sliding.mean())
    by_frame = {row["frame"]: row for row in score.frames}
    for i, k in enumerate(frames):
        for name, values in per.items():
            by_frame[int(k)][name] = float(values[i])


def combine(scores: dict[str, SequenceScore]) -> dict[str, float]:
    """The dataset's numbers: each metric averaged over sequences weighted by ``weight`` (matched people for
    bodies, valid pixels for depth as the reference's ``np.average(weights=valid_pixels)``); camera errors are
    averaged over sequences equally, as the reference's relpose summary."""
    names = sorted({name for s in scores.values() for name in s.values if name != "valid_pixels"})
    out = {}
    for name in names:
        # a sequence where nobody matched still has detection scores: weigh it as little as possible, not 0
        pairs = [(s.values[name], 1.0 if name in _CAMERA_METRICS else max(s.weight, 1e-9))
                 for s in scores.values() if name in s.values]
        if pairs:
            values, weights = zip(*pairs)
            out[name] = float(np.average(values, weights=weights))
    return out

