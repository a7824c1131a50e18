"""Bring your own ground truth: score one run folder against a TUM trajectory or an npz of joints.

``eval tum RUN_DIR --gt groundtruth.txt``
    The run's ``cameras_tum.txt`` against a TUM trajectory (``timestamp tx ty tz qx qy qz qw``, camera to
    world). Poses are paired by time as TUM's ``associate.py`` (at most 0.02 s apart); when the two
    files' times do not overlap (a run's times start at 0, a recording's at the clock), both are moved
    to start at 0 first. ATE and RPE through evo (Sim(3) alignment), as the paper's Table 2.

``eval bodies RUN_DIR --gt F.npz``
    The run's ``predictions.npz`` (made with ``--export-predictions`` and the SMPL-X model) against an
    npz holding ``joints_world`` or ``joints_cam``: (T, J, 3) metres of one person, the first J joints
    of SMPL-X's order (J <= 127; SMPL's first 22 joints are the same joints in the same order), with
    optional ``frame`` (T,) int: the run's frame index of each row (default 0 .. T-1). The person is
    ``track`` (optional int in the npz) or the track seen in most of those frames. World joints give
    W-MPJPE, WA-MPJPE, RTE and jitter; camera joints MPJPE and PA-MPJPE.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np

from ..export.predictions import PREDICTIONS_FILE, Predictions
from . import metrics
from .datasets import DatasetError
from .datasets.tum import MAX_DIFFERENCE, associate, read_file_list, read_trajectory
from .runner import EvalError, EvalOutcome

__all__ = ["evaluate_run"]


def evaluate_run(kind: str, run_dir: str | Path, gt: str | Path, body_models=None) -> EvalOutcome:
    run_dir, gt = Path(run_dir), Path(gt)
    if not run_dir.is_dir():
        raise EvalError(f"no run folder {run_dir}")
    if not gt.is_file():
        raise EvalError(f"no ground-truth file {gt}")
    try:
        if kind == "tum":
            values, per_frame, notes = _tum(run_dir, gt)
        elif kind == "bodies":
            values, per_frame, notes = _bodies(run_dir, gt)
        else:
            raise EvalError(f"--gt works with 'tum' (a TUM trajectory) or 'bodies' (an npz of joints), not {kind!r}")
    except DatasetError as err:
        raise EvalError(str(err)) from None
    except ValueError as err:
        raise EvalError(f"cannot score {run_dir} against {gt}: {err}") from None
    results = {"benchmark": kind, "run": str(run_dir), "ground_truth": str(gt), "values": values, "notes": notes}
    (run_dir / "eval").mkdir(exist_ok=True)
    for name, text in (("results.json", json.dumps(results, indent=1)), ("per_frame.csv", _csv(per_frame))):
        tmp = run_dir / "eval" / (name + ".partial")
        tmp.write_text(text)
        tmp.replace(run_dir / "eval" / name)
    lines = [f"{run_dir} against {gt}:"] + [f"  {name:>12}  {value:.4f}" for name, value in values.items()]
    lines += [f"note: {n}" for n in notes] + [f"per-frame values: {run_dir / 'eval' / 'per_frame.csv'}"]
    return EvalOutcome(results, "\n".join(lines), 0, per_frame)


def _tum(run_dir: Path, gt: Path):
    ours = run_dir / "cameras_tum.txt"
    if not ours.is_file():
        raise EvalError(f"{run_dir} has no cameras_tum.txt (not a run folder?)")
    run_list, gt_list = read_file_list(ours), read_file_list(gt)
    notes = []
    offset = 0.0
    if max(run_list) < min(gt_list) or max(gt_list) < min(run_list):
        offset = min(run_list) - min(gt_list)
        notes.append(f"the times do not overlap: ground truth shifted by {offset:+.3f} s to start with the run")
    pairs = associate(run_list, gt_list, offset=offset)
    if len(pairs) < 3:
        raise EvalError(f"only {len(pairs)} pose(s) of {ours} have a ground-truth pose within {MAX_DIFFERENCE} s")
    run_t, run_poses = read_trajectory(ours)
    gt_t, gt_poses = read_trajectory(gt)
    pred = run_poses[np.searchsorted(run_t, [a for a, _ in pairs])]
    truth = gt_poses[np.searchsorted(gt_t, [b for _, b in pairs])]
    ate, rpe = metrics.ate(pred, truth), metrics.rpe(pred, truth)
    values = {"ate": ate.rmse, "rpe_trans": rpe.translation.rmse, "rpe_rot": rpe.rotation.rmse}
    frame_of = _frame_indices(run_dir)
    rows = [{"frame": frame_of.get(a), "time": a, "ate": float(ate.values[i])} for i, (a, _) in enumerate(pairs)]
    notes.append(f"{len(pairs)} of {len(run_list)} poses paired")
    return values, rows, notes


def _frame_indices(run_dir: Path) -> dict[float, int]:
    """The source frame index of each pose time of ``cameras_tum.txt`` (from ``intrinsics.json``, which
    lists every frame's index and time); empty when that file is missing."""
    path = run_dir / "intrinsics.json"
    if not path.is_file():
        return {}
    frames = json.loads(path.read_text()).get("frames", [])
    # the TUM file writes times with 9 significant digits: key both by the same rounding
    return {float(f"{f['timestamp']:.9g}"): int(f["index"]) for f in frames}


def _bodies(run_dir: Path, gt: Path):
    path = run_dir / PREDICTIONS_FILE
    if not path.is_file():
        raise EvalError(f"{run_dir} has no {PREDICTIONS_FILE}: run with --export-predictions (and the SMPL-X model)")
    try:
        with np.load(gt, allow_pickle=False) as data:
            truth = {k: data[k] for k in data.files}
    except (OSError, ValueError) as err:
        raise EvalError(f"{gt} is not a readable npz without pickles ({err})") from None
    frame_kind = "world" if "joints_world" in truth else "cam" if "joints_cam" in truth else None
    if frame_kind is None:
        raise EvalError(f"{gt} holds neither joints_world nor joints_cam (T, J, 3)")
    joints = np.asarray(truth[f"joints_{frame_kind}"], dtype=np.float64)
    if joints.ndim != 3 or joints.shape[2] != 3 or not 3 <= joints.shape[1] <= 127:
        raise EvalError(f"{gt}: joints_{frame_kind} must be (T, J, 3) with 3 <= J <= 127, got {joints.shape}")
    frames = np.asarray(truth.get("frame", np.arange(len(joints))), dtype=np.int64)
    with Predictions(path) as p:
        index = {int(f): k for k, f in enumerate(p.frame_index)}
        people = {int(f): p.people(index[int(f)]) for f in frames if int(f) in index}
    if not people:
        raise EvalError(f"none of the frames in {gt} was run")
    track = int(truth["track"]) if "track" in truth else _most_seen_track(people.values())
    if track is None:
        raise EvalError("nobody was detected in the run's frames")
    rows, pred, kept = [], [], []
    for i, f in enumerate(frames):
        ppl = people.get(int(f))
        if ppl is None or track not in ppl.get("track_id", ()):
            continue
        if f"joints_{frame_kind}" not in ppl:
            raise EvalError(f"{path} has no joints (the run had no SMPL-X model file)")
        pred.append(ppl[f"joints_{frame_kind}"][list(ppl["track_id"]).index(track), : joints.shape[1]])
        kept.append(i)
    if len(kept) < 2:
        raise EvalError(f"track {track} is in only {len(kept)} of the ground truth's frames")
    pred, truth_j = np.stack(pred).astype(np.float64), joints[kept]
    notes = [f"track {track}: {len(kept)} of {len(frames)} frames"]
    if frame_kind == "cam":
        per = {"mpjpe": metrics.mpjpe(pred, truth_j), "pa_mpjpe": metrics.pa_mpjpe(pred, truth_j)}
    else:
        per = {"wa_mpjpe": metrics.wa_mpjpe(pred, truth_j), "w_mpjpe": metrics.w_mpjpe(pred, truth_j)}
        try:
            per["rte"] = metrics.rte(pred[:, 0], truth_j[:, 0])
        except ValueError as err:
            notes.append(f"RTE: {err}")
    values = {k: float(v.mean()) for k, v in per.items()}
    if frame_kind == "world" and len(pred) >= 4:
        values["jitter"] = float(metrics.jitter(pred).mean())
    for j, i in enumerate(kept):
        rows.append({"frame": int(frames[i]), **{k: float(v[j]) for k, v in per.items()}})
    return values, rows, notes


def _most_seen_track(people) -> int | None:
    """The track id present in most of the given frames' people, ``None`` if nobody was seen."""
    seen = Counter(int(t) for frame in people for t in frame.get("track_id", ()))
    return seen.most_common(1)[0][0] if seen else None


def _csv(rows: list[dict]) -> str:
    if not rows:
        return ""
    names = list(rows[0])
    return "\n".join([",".join(names)] + [",".join(str(r.get(n, "")) for n in names) for r in rows]) + "\n"
