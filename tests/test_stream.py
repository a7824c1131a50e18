"""reconstruct() end to end: the reference's post-processing and ids, options, missing SMPL-X."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import human3r_demo as h3r
from tests.conftest import synthetic_clip


@pytest.fixture(scope="module")
def fixture_model(fixture_dir: Path) -> h3r.Human3R:
    from human3r_demo.parity import Fixture, fixture_model

    return fixture_model(Fixture.open(fixture_dir))


def close(a, b, what: str) -> None:
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-5, rtol=1e-5, err_msg=what)


def test_reconstruct_matches_the_reference_post_processing(fixture_dir: Path, fixture_model, reference_smplx: Path) -> None:
    meta = json.loads((fixture_dir / "tiny_meta.json").read_text())
    clip = np.load(fixture_dir / "tiny_clip.npz")["source_frames"]
    post = {k: v.numpy() for k, v in load_file(str(fixture_dir / "tiny_postprocess.safetensors")).items()}
    results = list(
        h3r.reconstruct(clip, fixture_model, size=meta["size"], reset_interval=meta["reset_interval"],
                        use_ttt3r=meta["use_ttt3r"], body_model=reference_smplx, world="model")
    )
    assert len(results) == meta["n_frames"] == len(clip)
    for i, r in enumerate(results):
        p = f"frame{i:02d}."
        close(r.camera_to_world, post[p + "cam2world"], f"{p}cam2world")
        close(r.intrinsics, post[p + "intrinsics"], f"{p}intrinsics")
        close(r.points, post[p + "world_points"], f"{p}world_points")
        close(r.confidence, post[p + "world_conf"], f"{p}world_conf")
        close(r.depth, post[p + "depth"], f"{p}depth")
        close(r.human_mask[None], post[p + "msk_unpadded"], f"{p}msk_unpadded")
        assert r.track_ids == post[p + "smpl_id"].tolist()
        assert r.num_people == post[p + "smpl_shape"].shape[0]
        for k, person in enumerate(r.people):
            close(person.rotvec, post[p + "smpl_rotvec"][k], f"{p}rotvec[{k}]")
            close(person.betas, post[p + "smpl_shape"][k], f"{p}betas[{k}]")
            close(person.expression, post[p + "smpl_expression"][k], f"{p}expression[{k}]")
            close(person.head_position, post[p + "smpl_transl"][k], f"{p}head[{k}]")
            close(person.vertices, post[p + "world_verts"][k], f"{p}world_verts[{k}]")
            close(person.vertices_cam, post[p + "cam_smpl_v3d"][k], f"{p}cam_v3d[{k}]")
            close(person.joints_cam, post[p + "cam_smpl_j3d"][k], f"{p}cam_j3d[{k}]")
            close(person.pelvis_cam, post[p + "cam_smpl_transl_pelvis"][k, 0], f"{p}pelvis[{k}]")
    # the reference's track ids over the kept frames (duplicates of reset frames are not returned)
    kept = [v for i, v in enumerate(meta["views"]) if i == 0 or not meta["views"][i - 1]["reset"]]
    assert [r.track_ids for r in results] == [v["smpl_id"][0] if v["smpl_id"] else [] for v in kept]


def test_world_pose_and_standard_smplx_parameters_reproduce_the_mesh(tiny_model, smplx_dir: Path) -> None:
    """global_orient_world + transl_world in plain smplx give the world vertices."""
    import smplx

    results = list(h3r.reconstruct(synthetic_clip(3, 180, 320, seed=2), tiny_model, body_model=smplx_dir))
    result = results[-1]  # the camera has moved: world and camera frames differ
    assert result.people and not np.allclose(result.camera_to_world, np.eye(4), atol=1e-3)
    layer = smplx.create(str(smplx_dir / "SMPLX_NEUTRAL.npz"), "smplx", use_pca=False, flat_hand_mean=True, num_betas=10)
    for person in result.people:
        t = lambda a: torch.from_numpy(np.asarray(a, np.float32))[None]  # noqa: E731
        out = layer(
            betas=t(person.betas), expression=t(person.expression), global_orient=t(person.global_orient_world),
            body_pose=t(person.body_pose.reshape(-1)), left_hand_pose=t(person.left_hand_pose.reshape(-1)),
            right_hand_pose=t(person.right_hand_pose.reshape(-1)), jaw_pose=t(person.jaw_pose),
            leye_pose=t(person.leye_pose), reye_pose=t(person.reye_pose), transl=t(person.transl_world),
        )
        np.testing.assert_allclose(out.vertices[0].detach().numpy(), person.vertices, atol=2e-5)
        np.testing.assert_allclose(out.joints[0, 15].detach().numpy(), person.head_position_world, atol=2e-5)


def test_missing_smplx_still_reconstructs_with_one_clear_message(tiny_model, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("HUMAN3R_SMPLX_DIR", str(tmp_path / "nowhere"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        results = list(h3r.reconstruct(np.random.default_rng(0).integers(0, 255, (3, 288, 512, 3), dtype=np.uint8), tiny_model))
    messages = [str(w.message) for w in caught if "SMPL-X" in str(w.message)]
    assert len(messages) == 1 and "smpl-x.is.tue.mpg.de" in messages[0] and "HUMAN3R_SMPLX_DIR" in messages[0]
    people = [p for r in results for p in r.people]
    assert people, "the smoke model should detect someone on noise frames"
    assert all(p.vertices is None and p.transl is None and p.head_position.shape == (3,) for p in people)
    with pytest.raises(h3r.BodyModelNotFound, match="no SMPLX_NEUTRAL.npz found"):
        next(h3r.reconstruct(synthetic_clip(1), tiny_model, body_model=tmp_path / "typo"))


def test_shared_focal_is_a_running_median(tiny_model) -> None:
    clip = synthetic_clip(7, 90, 150, seed=1)
    per_frame = [r.focal for r in h3r.reconstruct(clip, tiny_model, size=112, body_model=None)]
    assert min(per_frame) > 0 and len(set(per_frame)) == len(per_frame)  # it jitters frame to frame
    shared = [r.intrinsics for r in h3r.reconstruct(clip, tiny_model, size=112, body_model=None, shared_focal=True)]
    for i, K in enumerate(shared):
        seen = sorted(per_frame[: i + 1])
        assert K[0, 0] == K[1, 1] == pytest.approx(seen[(len(seen) - 1) // 2], rel=0.005)
        assert K[0, 2] == 56 and K[1, 2] == 32


def test_options_are_validated(tiny_model) -> None:
    clip = synthetic_clip(1)
    with pytest.raises(h3r.OptionsError, match="size must be a multiple of 16"):
        next(h3r.reconstruct(clip, tiny_model, size=500))
    with pytest.raises(h3r.OptionsError, match="reset_interval must be between 1 and"):
        next(h3r.reconstruct(clip, tiny_model, reset_interval=0))
    with pytest.raises(h3r.OptionsError, match="detection_threshold must be between 0 and 1"):
        next(h3r.reconstruct(clip, tiny_model, detection_threshold=1.5))
    with pytest.raises(h3r.OptionsError, match="confidence_threshold must be a finite number"):
        next(h3r.reconstruct(clip, tiny_model, confidence_threshold=float("nan")))
    with pytest.raises(h3r.OptionsError, match="unknown option"):
        next(h3r.reconstruct(clip, tiny_model, point_budget=5))
