"""The One-Euro filter (``--smooth``): causal, transparent to a constant, less jitter on a noisy walk,
and wired per track into the stream in the world frame."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

import human3r_demo as h3r
from human3r_demo.body import BodyModel
from human3r_demo.evaluation import metrics
from human3r_demo.smoothing import OneEuroFilter, PoseSmoother
from tests.conftest import synthetic_clip


def run(values: np.ndarray, fps: float = 30.0, **params) -> np.ndarray:
    f = OneEuroFilter(**params)
    return np.stack([f(v, i / fps) for i, v in enumerate(values)])


def test_the_filter_is_causal() -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(size=(40, 5))
    b = a.copy()
    b[25:] = rng.normal(size=(15, 5)) * 10  # a different future
    np.testing.assert_array_equal(run(a)[:25], run(b)[:25])
    assert not np.allclose(run(a)[25:], run(b)[25:])
    smoother_a, smoother_b = PoseSmoother(), PoseSmoother()
    rots = Rotation.random(40, random_state=1).as_matrix()[:, None]
    other = rots.copy()
    other[30:] = Rotation.random(10, random_state=2).as_matrix()[:, None]
    for i in range(30):
        ra, _ = smoother_a(7, i / 30, rots[i])
        rb, _ = smoother_b(7, i / 30, other[i])
        np.testing.assert_array_equal(ra, rb)


def test_a_constant_passes_unchanged() -> None:
    value = np.array([[0.3, -1.2, 4.0], [1e-3, 7.0, -2.5]])
    out = run(np.repeat(value[None], 20, axis=0), min_cutoff=0.1, beta=3.0)
    np.testing.assert_array_equal(out, np.repeat(value[None], 20, axis=0))  # bit for bit
    R = Rotation.from_rotvec([[0.1, 0.7, -0.3], [2.0, 0.0, 0.5]]).as_matrix()
    smoother = PoseSmoother()
    for i in range(10):
        rot, vectors = smoother(0, i / 30, R, head=value[0])
        np.testing.assert_allclose(rot, R, atol=1e-12)
        np.testing.assert_array_equal(vectors["head"], value[0])


def test_jitter_drops_on_a_noisy_walk_while_the_error_does_not_grow() -> None:
    fps = 30.0
    t = np.arange(150) / fps
    rng = np.random.default_rng(3)
    offsets = rng.normal(scale=0.3, size=(24, 3))
    truth = offsets[None] + np.stack([1.2 * t, 0.05 * np.sin(2 * np.pi * t), 0.3 * np.sin(0.5 * np.pi * t)], 1)[:, None]
    noisy = truth + rng.normal(scale=0.02, size=truth.shape)
    smoothed = run(noisy, fps)
    assert metrics.jitter(smoothed).mean() < 0.5 * metrics.jitter(noisy).mean()
    assert metrics.mpjpe(smoothed, truth).mean() < metrics.mpjpe(noisy, truth).mean()
    assert metrics.wa_mpjpe(smoothed, truth).mean() < metrics.wa_mpjpe(noisy, truth).mean()
    heavy = run(noisy, fps, min_cutoff=0.05, beta=0.0)  # too slow a cutoff lags behind the walk
    assert metrics.wa_mpjpe(heavy, truth).mean() > metrics.wa_mpjpe(noisy, truth).mean()


def test_a_track_that_returns_after_a_long_gap_is_not_dragged_back() -> None:
    smoother = PoseSmoother()
    for i in range(10):
        smoother(3, i / 30, np.eye(3)[None], head=np.zeros(3))
    _, far = smoother(3, 100.0, np.eye(3)[None], head=np.array([5.0, 0.0, 0.0]))  # 100 s later, elsewhere
    assert far["head"][0] > 4.99


def test_memory_is_bounded_by_the_number_of_tracks() -> None:
    smoother = PoseSmoother(max_tracks=4)
    for track in range(10):
        smoother(track, 0.0, np.eye(3)[None])
    assert list(smoother.tracks) == [6, 7, 8, 9]


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(ValueError, match="min_cutoff"):
        PoseSmoother(min_cutoff=0.0)


@pytest.fixture(scope="module")
def two_runs(tiny_model, smplx_dir: Path):
    torch.set_num_threads(1)
    body = BodyModel(smplx_dir)
    clip = synthetic_clip(6, 180, 320, seed=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        raw = list(h3r.reconstruct(clip, tiny_model, body_model=body, fps=10.0, size=256))
        smooth = list(h3r.reconstruct(clip, tiny_model, body_model=body, fps=10.0, size=256, smooth=True))
    return raw, smooth, body


def test_the_stream_smooths_each_track_in_the_world_frame(two_runs) -> None:
    raw, smooth, body = two_runs
    assert [r.track_ids for r in raw] == [r.track_ids for r in smooth]  # tracking is unchanged
    assert any(r.num_people for r in raw)
    filters: dict[int, OneEuroFilter] = {}
    changed = False
    for r_raw, r_smooth in zip(raw, smooth):
        for p_raw, p_smooth in zip(r_raw.people, r_smooth.people):
            # independently: the unsmoothed head path in the world, filtered per track with frame times index / fps
            f = filters.setdefault(p_raw.track_id, OneEuroFilter())
            expected = f(p_raw.head_position_world.astype(np.float64), r_raw.index / 10.0)
            np.testing.assert_allclose(p_smooth.head_position_world, expected, atol=1e-4)
            changed |= not np.allclose(p_smooth.head_position_world, p_raw.head_position_world, atol=1e-4)
            # the exported mesh is the body model of the smoothed parameters
            meshes = body(torch.from_numpy(p_smooth.rotvec)[None], torch.from_numpy(p_smooth.betas)[None],
                          torch.from_numpy(p_smooth.expression)[None], torch.from_numpy(p_smooth.head_position)[None])
            np.testing.assert_allclose(p_smooth.vertices_cam, meshes.vertices[0].numpy(), atol=1e-4)
            for rotvec in p_smooth.rotvec:
                assert np.linalg.norm(rotvec) <= math.pi + 1e-5
    assert changed, "no person was smoothed (is the filter wired?)"
    first = raw[0].people, smooth[0].people  # the first sample of a track passes unchanged
    for a, b in zip(*first):
        np.testing.assert_allclose(a.vertices, b.vertices, atol=1e-4)


def test_smooth_is_off_by_default_and_offered_on_the_command_line() -> None:
    import argparse

    from human3r_demo.options import add_arguments, options_from_arguments

    assert h3r.RunOptions().smooth is False
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    assert options_from_arguments(parser.parse_args(["--smooth"])).smooth is True
