"""The evaluation metrics against independent computations written here, and analytic cases.

The independent side never calls human3r_demo.evaluation: alignments come from scipy's Kabsch
(``Rotation.align_vectors``) with the scale written out, camera errors from evo's own lower-level API,
per-frame errors from explicit loops.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from evo.core import metrics as evo_metrics
from evo.core.trajectory import PoseTrajectory3D
from scipy.spatial.transform import Rotation

from human3r_demo.evaluation import alignment, metrics

RTOL = 1e-6


def close(a, b, atol: float = 1e-9) -> None:
    np.testing.assert_allclose(a, b, rtol=RTOL, atol=atol)


def random_similarity(rng: np.random.Generator, scale: float = 1.7):
    R = Rotation.random(random_state=rng).as_matrix()
    return scale, R, rng.normal(size=3)


def body_sequence(rng: np.random.Generator, T: int = 40, J: int = 24) -> np.ndarray:
    """A walking-ish body: a rest pose moving along a curve, with small per-frame jiggle (metres)."""
    rest = rng.normal(scale=0.3, size=(J, 3))
    t = np.arange(T)[:, None]
    path = np.concatenate([0.03 * t, 0.2 * np.sin(0.1 * t), 0.01 * t], axis=1)
    return rest[None] + path[:, None] + rng.normal(scale=0.01, size=(T, J, 3))


def kabsch_similarity(source: np.ndarray, target: np.ndarray, with_scale: bool = True):
    """Independent Sim(3): scipy's rotation on centred points, then the closed-form scale and translation."""
    mu_s, mu_t = source.mean(axis=0), target.mean(axis=0)
    rot, _ = Rotation.align_vectors(target - mu_t, source - mu_s)  # minimises |target_c - R source_c|
    R = rot.as_matrix()
    rotated = (source - mu_s) @ R.T
    s = float(np.sum(rotated * (target - mu_t)) / np.sum((source - mu_s) ** 2)) if with_scale else 1.0
    return lambda x: s * x @ R.T + (mu_t - s * R @ mu_s)


def loop_error_mm(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.array([np.mean([math.dist(p, q) for p, q in zip(fa, fb)]) for fa, fb in zip(a, b)]) * 1000


# ------------------------------------------------------------------------------ alignment


def test_umeyama_recovers_a_known_similarity_and_matches_kabsch() -> None:
    rng = np.random.default_rng(0)
    src = rng.normal(size=(30, 3))
    s, R, t = random_similarity(rng)
    fit = alignment.umeyama(src, s * src @ R.T + t)
    close(fit.scale, s)
    close(fit.rotation, R, atol=1e-12)
    close(fit.translation, t, atol=1e-12)
    noisy_target = s * src @ R.T + t + rng.normal(scale=0.2, size=src.shape)
    close(alignment.umeyama(src, noisy_target).apply(src), kabsch_similarity(src, noisy_target)(src))
    rigid = alignment.umeyama(src, noisy_target, with_scale=False)
    close(rigid.scale, 1.0)
    close(rigid.apply(src), kabsch_similarity(src, noisy_target, with_scale=False)(src))


def test_procrustes_never_returns_a_reflection() -> None:
    rng = np.random.default_rng(1)
    gt = rng.normal(size=(5, 17, 3))
    mirrored = gt * np.array([1.0, 1.0, -1.0])  # the best orthogonal map is the mirror, det -1
    fit = alignment.umeyama(mirrored, gt)
    close(np.linalg.det(fit.rotation), np.ones(5))
    aligned = alignment.procrustes_align(mirrored, gt)
    expected = np.stack([kabsch_similarity(m, g)(m) for m, g in zip(mirrored, gt)])
    close(aligned, expected)
    assert loop_error_mm(aligned, gt).min() > 1.0  # a mirror image cannot be explained away


def test_alignment_refuses_coincident_points() -> None:
    with pytest.raises(ValueError, match="coincide"):
        alignment.umeyama(np.zeros((4, 3)), np.ones((4, 3)))


# ------------------------------------------------------------------------------ camera-frame bodies


def test_mpjpe_centres_each_body_on_its_own_hips() -> None:
    rng = np.random.default_rng(2)
    gt = body_sequence(rng)
    pred = gt + rng.normal(scale=0.05, size=gt.shape) + np.array([0.0, 0.0, 3.0])  # a depth error
    centred = [(p - (p[1] + p[2]) / 2, g - (g[1] + g[2]) / 2) for p, g in zip(pred, gt)]
    expected = loop_error_mm([c[0] for c in centred], [c[1] for c in centred])
    close(metrics.mpjpe(pred, gt), expected)
    close(metrics.mpjpe(gt + np.array([1.0, -2.0, 5.0]), gt), np.zeros(len(gt)), atol=1e-9)


def test_pa_mpjpe_against_kabsch_and_zero_for_a_similar_body() -> None:
    rng = np.random.default_rng(3)
    gt = body_sequence(rng, T=12)
    pred = gt + rng.normal(scale=0.04, size=gt.shape)
    expected = []
    for p, g in zip(pred, gt):
        p, g = p - (p[1] + p[2]) / 2, g - (g[1] + g[2]) / 2
        expected.append(np.mean(np.linalg.norm(kabsch_similarity(p, g)(p) - g, axis=1)) * 1000)
    close(metrics.pa_mpjpe(pred, gt), expected)
    assert np.all(metrics.pa_mpjpe(pred, gt) < metrics.mpjpe(pred, gt))
    # each frame its own similarity of the ground truth: PA-MPJPE is 0, MPJPE is not
    similar = np.stack([s * g @ R.T + t for g, (s, R, t) in zip(gt, (random_similarity(rng, 0.5 + f) for f in range(12)))])
    close(metrics.pa_mpjpe(similar, gt), np.zeros(12), atol=1e-9)
    assert metrics.mpjpe(similar, gt).min() > 10


def test_pve_centres_vertices_on_the_joint_pelvis() -> None:
    rng = np.random.default_rng(4)
    gt_j, gt_v = body_sequence(rng, T=6), rng.normal(size=(6, 50, 3))
    pred_j = gt_j + rng.normal(scale=0.02, size=gt_j.shape)
    pred_v = gt_v + rng.normal(scale=0.03, size=gt_v.shape) + 2.0
    pelvis_p = (pred_j[:, 1] + pred_j[:, 2]) / 2
    pelvis_g = (gt_j[:, 1] + gt_j[:, 2]) / 2
    expected = loop_error_mm(pred_v - pelvis_p[:, None], gt_v - pelvis_g[:, None])
    close(metrics.pve(pred_v, gt_v, pred_j, gt_j), expected)


# ------------------------------------------------------------------------------ world-frame motion


def chunked_reference(pred, gt, chunk, first):
    out = []
    for start in range(0, len(pred), chunk):
        p, g = pred[start : start + chunk], gt[start : start + chunk]
        fit = slice(0, first)
        move = kabsch_similarity(p[fit].reshape(-1, 3), g[fit].reshape(-1, 3))
        out.extend(np.mean(np.linalg.norm(move(pf) - gf, axis=1)) * 1000 for pf, gf in zip(p, g))
    return np.array(out)


def test_w_and_wa_mpjpe_against_kabsch_on_chunks() -> None:
    rng = np.random.default_rng(5)
    gt = body_sequence(rng, T=57)
    s, R, t = random_similarity(rng)
    pred = s * gt @ R.T + t + np.cumsum(rng.normal(scale=0.01, size=(57, 1, 3)), axis=0)  # drift
    close(metrics.w_mpjpe(pred, gt, chunk=20), chunked_reference(pred, gt, 20, 2))
    close(metrics.wa_mpjpe(pred, gt, chunk=20), chunked_reference(pred, gt, 20, None))
    close(metrics.wa_mpjpe(pred, gt), chunked_reference(pred, gt, 100, None))  # one partial chunk


def test_an_error_in_a_chunks_third_frame_shows_up_whole_in_w_mpjpe_only() -> None:
    rng = np.random.default_rng(6)
    gt = body_sequence(rng, T=20)
    s, R, t = random_similarity(rng, scale=2.0)
    pred = s * gt @ R.T + t
    close(metrics.w_mpjpe(pred, gt, chunk=10), np.zeros(20), atol=1e-9)
    close(metrics.wa_mpjpe(pred, gt, chunk=10), np.zeros(20), atol=1e-9)
    offset = np.array([0.3, 0.0, 0.4])  # 0.5 m in the prediction's frame, 0.25 m once the scale 2 is undone
    pred[12] += offset  # the third frame of the second chunk
    w, wa = metrics.w_mpjpe(pred, gt, chunk=10), metrics.wa_mpjpe(pred, gt, chunk=10)
    expected = np.zeros(20)
    expected[12] = 250.0
    close(w, expected, atol=1e-9)  # fitted on frames 10-11, which are right: the error stays where it is
    close(wa, chunked_reference(pred, gt, 10, None))
    assert wa[12] < 0.95 * 250 and np.all(wa[10:20] > 1)  # the whole-chunk fit smears it over the chunk
    close(wa[:10], np.zeros(10), atol=1e-9)


def test_rte_is_zero_for_a_rigidly_moved_path_and_matches_kabsch() -> None:
    rng = np.random.default_rng(7)
    gt = np.cumsum(rng.normal(scale=0.05, size=(80, 3)), axis=0)
    _, R, t = random_similarity(rng)
    close(metrics.rte(gt @ R.T + t, gt), np.zeros(80), atol=1e-9)
    scaled = 1.3 * gt @ R.T + t  # RTE fits no scale: a scale error counts
    assert metrics.rte(scaled, gt).mean() > 1
    pred = gt @ R.T + t + rng.normal(scale=0.05, size=gt.shape)
    length = sum(math.dist(a, b) for a, b in zip(gt, gt[1:]))
    expected = np.linalg.norm(kabsch_similarity(pred, gt, with_scale=False)(pred) - gt, axis=1) / length * 100
    close(metrics.rte(pred, gt), expected)
    with pytest.raises(ValueError, match="never moves"):
        metrics.rte(pred, np.zeros_like(gt))


def test_jitter_of_a_cubic_motion_is_its_constant_third_derivative() -> None:
    fps = 30.0
    t = np.arange(10) / fps
    a = np.array([0.5, -1.0, 2.0])  # x(t) = a t^3, third derivative 6a (m/s^3)
    joints = np.repeat((a * t[:, None] ** 3)[:, None], 4, axis=1) + np.arange(4)[None, :, None]
    close(metrics.jitter(joints, fps=fps), np.full(7, 6 * np.linalg.norm(a) / 10))
    rng = np.random.default_rng(8)
    noisy = rng.normal(size=(12, 5, 3))
    expected = [np.mean([np.linalg.norm(noisy[i + 3, j] - 3 * noisy[i + 2, j] + 3 * noisy[i + 1, j] - noisy[i, j]) for j in range(5)]) * fps**3 / 10 for i in range(9)]
    close(metrics.jitter(noisy, fps=fps), expected)


def test_foot_sliding_counts_predicted_motion_where_the_ground_truth_foot_rests() -> None:
    T, feet = 5, metrics.SMPL_FOOT_VERTICES
    gt = np.zeros((T, 6890, 3))
    gt[:, feet[0], 0] = [0.0, 0.0, 0.5, 0.5, 0.5]  # lifted between frames 1 and 2: no contact there
    pred = gt.copy()
    pred[:, feet[1], 1] = [0.0, 0.002, 0.004, 0.004, 0.010]  # slides while the ground truth rests
    values = metrics.foot_sliding(pred, gt)
    # 4 frame pairs x 4 vertices, minus the lifted pair of vertex 0: 15 in contact, row-major order
    expected = []
    for step in range(T - 1):
        for v in feet:
            if np.linalg.norm(gt[step + 1, v] - gt[step, v]) < 0.01:
                expected.append(np.linalg.norm(pred[step + 1, v] - pred[step, v]) * 1000)
    assert len(values) == 15
    close(values, expected)
    with pytest.raises(ValueError, match="SMPL"):
        metrics.foot_sliding(pred[:, :100], gt[:, :100])


# ------------------------------------------------------------------------------ people matching


def test_greedy_matching_projects_with_the_predicted_intrinsics() -> None:
    K = np.array([[500.0, 0, 320], [0, 500, 240], [0, 0, 1]])
    rng = np.random.default_rng(9)
    body = rng.normal(scale=0.3, size=(24, 3))
    centres = np.array([[-1.0, 0, 5], [1.0, 0, 5], [0, 0, 4]])
    people = body[None] + centres[:, None]  # three ground-truth people
    uv = people @ K.T
    gt_2d = uv[..., :2] / uv[..., 2:]
    # predictions: person 1 (slightly off), person 0, and a ghost far away; person 2 is missed
    pred = np.stack([people[1] + 0.01, people[0], body + np.array([30.0, 30.0, 5.0])])
    pred = np.concatenate([pred, np.zeros((3, 3, 3))], axis=1)  # more joints than the ground truth: cut
    match = metrics.match_people(pred, K, gt_2d)
    assert match.pairs.tolist() == [[1, 0], [0, 1]]  # the exact one first
    assert match.false_positives == [2] and match.misses == [2]
    empty = metrics.match_people(np.zeros((0, 24, 3)), K, gt_2d)
    assert empty.pairs.shape == (0, 2) and empty.misses == [0, 1, 2]
    assert metrics.match_people(pred, K, gt_2d[:0]).false_positives == [0, 1, 2]
    # a person on the camera's plane projects to infinity: no box, no match (and no NaN accepted as a match)
    on_plane = pred[:1].copy()
    on_plane[..., 2] = 0.0
    assert metrics.match_people(on_plane, K, gt_2d).pairs.shape == (0, 2)
    # the same detection with the wrong intrinsics lands elsewhere and is not matched
    wrong = metrics.match_people(pred[:1], K * np.array([[4.0], [4.0], [1.0]]), gt_2d[:1])
    assert wrong.pairs.shape == (0, 2)


def test_detection_scores_round_like_the_reference() -> None:
    # 10 people, 2 missed, 1 false positive: P = 8/9 -> 0.89, R = 0.8, F1 = 8/9.5 -> 0.84
    scores = metrics.detection_scores(10, misses=2, false_positives=1)
    assert scores == pytest.approx({"precision": 89.0, "recall": 80.0, "f1": 84.0})
    assert metrics.detection_scores(0, 0, 3) == {"precision": 0.0, "recall": 0.0, "f1": 0.0}


# ------------------------------------------------------------------------------ depth


def test_depth_metric_and_scale_alignment() -> None:
    rng = np.random.default_rng(10)
    gt = rng.uniform(0.5, 8.0, size=(3, 24, 32))
    gt[0, :2] = 0.0  # missing
    gt[1, :1] = 90.0  # beyond 70 m
    valid = (gt > 0) & (gt < 70)
    pred = gt * 0.5 * rng.uniform(0.9, 1.1, size=gt.shape)
    result = metrics.depth(pred, gt, align="metric")
    d, g = pred[valid], gt[valid]
    assert result["valid_pixels"] == valid.sum()
    close(result["abs_rel"], np.mean(np.abs(d - g) / g))
    close(result["delta_1_25"], np.mean(np.maximum(d / g, g / d) < 1.25))
    # the reference's L1 scale: 10 Weiszfeld steps from the L2 start, written independently
    s = g.mean() / d.mean()
    for _ in range(10):
        w = 1 / (np.abs(s * d - g) + 1e-8)
        s = (w * d * g).sum() / (w * d * d).sum()
    scaled = metrics.depth(pred, gt, align="scale")
    close(scaled["scale"], s)
    close(scaled["abs_rel"], np.mean(np.abs(s * d - g) / g))
    # and it is close to the L1 optimum, the weighted median of the ratios g/d with weights d
    # (10 iterations do not reach it exactly: the reference stops there too)
    ratios, order = g / d, np.argsort(g / d)
    cumulative = np.cumsum(d[order])
    weighted_median = ratios[order][np.searchsorted(cumulative, cumulative[-1] / 2)]
    l1 = lambda scale: np.abs(scale * d - g).sum()  # noqa: E731
    assert l1(weighted_median) <= l1(s) < 1.001 * l1(weighted_median)
    exact = metrics.depth(gt / 3, gt, align="scale")
    close([exact["abs_rel"], exact["delta_1_25"], exact["scale"]], [0.0, 1.0, 3.0], atol=1e-9)


def test_depth_scale_and_shift_follows_the_references_adam() -> None:
    rng = np.random.default_rng(11)
    gt = rng.uniform(1.0, 5.0, size=(2, 10, 12))
    pred = (gt - 0.3) / 2 + rng.normal(scale=0.01, size=gt.shape)
    d, g = pred.ravel(), gt.ravel()
    # Adam on sum |s d + t - g|, written out (torch's defaults: betas 0.9, 0.999, eps 1e-8)
    theta = np.array([np.sort(g)[(len(g) - 1) // 2] / np.sort(d)[(len(d) - 1) // 2], 0.0])
    m, v, previous = np.zeros(2), np.zeros(2), None
    for step in range(1, 1001):
        r = theta[0] * d + theta[1] - g
        loss = np.abs(r).sum()
        grad = np.array([(np.sign(r) * d).sum(), np.sign(r).sum()])
        m = 0.9 * m + 0.1 * grad
        v = 0.999 * v + 0.001 * grad**2
        theta = theta - 1e-4 * (m / (1 - 0.9**step)) / (np.sqrt(v / (1 - 0.999**step)) + 1e-8)
        if previous is not None and abs(previous - loss) < 1e-6:
            break
        previous = loss
    result = metrics.depth(pred, gt, align="scale&shift")
    close([result["scale"], result["shift"]], theta)
    close(result["abs_rel"], np.mean(np.abs(theta[0] * d + theta[1] - g) / g))


def test_depth_resizes_the_prediction_to_the_ground_truth() -> None:
    gt = np.full((2, 30, 40), 4.0)
    result = metrics.depth(np.full((2, 15, 20), 2.0, dtype=np.float32), gt, align="metric")
    close([result["abs_rel"], result["delta_1_25"]], [0.5, 0.0])
    with pytest.raises(ValueError, match="no valid"):
        metrics.depth(np.ones((1, 4, 4)), np.zeros((1, 4, 4)))
    with pytest.raises(ValueError, match="NaN or infinite"):
        metrics.depth(np.full((1, 4, 4), np.nan), np.ones((1, 4, 4)))
    with pytest.raises(ValueError, match="unknown depth alignment"):
        metrics.depth(np.ones((1, 4, 4)), np.ones((1, 4, 4)), align="median")


def test_depth_average_weights_sequences_by_valid_pixels() -> None:
    seqs = [{"abs_rel": 0.1, "delta_1_25": 0.9, "valid_pixels": 300}, {"abs_rel": 0.4, "delta_1_25": 0.5, "valid_pixels": 100}]
    close(list(metrics.average_depth(seqs).values()), [(0.1 * 300 + 0.4 * 100) / 400, (0.9 * 300 + 0.5 * 100) / 400])


# ------------------------------------------------------------------------------ cameras (evo)


def camera_path(rng: np.random.Generator, T: int = 30) -> np.ndarray:
    poses = np.tile(np.eye(4), (T, 1, 1))
    angles = np.cumsum(rng.normal(scale=0.05, size=(T, 3)), axis=0)
    poses[:, :3, :3] = Rotation.from_rotvec(angles).as_matrix()
    poses[:, :3, 3] = np.cumsum(rng.normal(scale=0.1, size=(T, 3)), axis=0)
    return poses


def noisy_similar_path(rng, gt):
    s, R, t = random_similarity(rng, scale=0.4)
    pred = gt.copy()
    pred[:, :3, :3] = R @ gt[:, :3, :3] @ Rotation.from_rotvec(rng.normal(scale=0.02, size=(len(gt), 3))).as_matrix()
    pred[:, :3, 3] = s * gt[:, :3, 3] @ R.T + t + rng.normal(scale=0.02, size=(len(gt), 3))
    return pred


def test_ate_is_evos_sim3_ape_rmse() -> None:
    rng = np.random.default_rng(12)
    gt = camera_path(rng)
    pred = noisy_similar_path(rng, gt)
    result = metrics.ate(pred, gt)
    # evo's own lower-level API
    stamps = np.arange(len(gt), dtype=float)
    ref, est = PoseTrajectory3D(poses_se3=list(gt), timestamps=stamps), PoseTrajectory3D(poses_se3=list(pred), timestamps=stamps)
    est.align(ref, correct_scale=True)
    ape = evo_metrics.APE(evo_metrics.PoseRelation.translation_part)
    ape.process_data((ref, est))
    close(result.rmse, ape.get_statistic(evo_metrics.StatisticsType.rmse))
    # and a Sim(3) written here
    move = kabsch_similarity(pred[:, :3, 3], gt[:, :3, 3])
    errors = np.linalg.norm(move(pred[:, :3, 3]) - gt[:, :3, 3], axis=1)
    close(result.values, errors)
    close(result.rmse, np.sqrt(np.mean(errors**2)))
    assert result.unit == "m"
    similar = gt.copy()
    similar[:, :3, 3] = 3.0 * gt[:, :3, 3] + 1.0  # a scaled, shifted copy: nothing left after Sim(3)
    close(metrics.ate(similar, gt).rmse, 0.0, atol=1e-9)


def test_rpe_of_frame_to_frame_motions() -> None:
    rng = np.random.default_rng(13)
    gt = camera_path(rng)
    pred = noisy_similar_path(rng, gt)
    result = metrics.rpe(pred, gt)
    # written here: Sim(3) on the camera centres; then the error of each relative motion
    move = kabsch_similarity(pred[:, :3, 3], gt[:, :3, 3])
    R_fit, _ = Rotation.align_vectors(gt[:, :3, 3] - gt[:, :3, 3].mean(0), pred[:, :3, 3] - pred[:, :3, 3].mean(0))
    aligned = pred.copy()
    aligned[:, :3, :3] = R_fit.as_matrix() @ pred[:, :3, :3]
    aligned[:, :3, 3] = move(pred[:, :3, 3])
    trans, rot = [], []
    for i in range(len(gt) - 1):
        q = np.linalg.inv(gt[i]) @ gt[i + 1]
        p = np.linalg.inv(aligned[i]) @ aligned[i + 1]
        e = np.linalg.inv(q) @ p
        trans.append(np.linalg.norm(e[:3, 3]))
        rot.append(np.degrees(Rotation.from_matrix(e[:3, :3]).magnitude()))
    close(result.translation.values, trans)
    close(result.rotation.values, rot, atol=1e-7)
    close(result.translation.rmse, np.sqrt(np.mean(np.square(trans))))
    close(result.rotation.rmse, np.sqrt(np.mean(np.square(rot))), atol=1e-7)
    assert result.rotation.unit == "deg"


def test_camera_errors_refuse_unpaired_or_broken_poses() -> None:
    gt = camera_path(np.random.default_rng(14), T=10)
    with pytest.raises(ValueError, match="pair them"):
        metrics.ate(gt[:9], gt)
    broken = gt.copy()
    broken[3, 0, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        metrics.rpe(broken, gt)


def test_metrics_refuse_mismatched_shapes_in_one_line() -> None:
    with pytest.raises(ValueError, match="differ in shape"):
        metrics.mpjpe(np.zeros((3, 24, 3)), np.zeros((3, 14, 3)))
    with pytest.raises(ValueError, match=r"\(T, J, 3\)"):
        metrics.pa_mpjpe(np.zeros((3, 24)), np.zeros((3, 24)))
