"""The benchmark adapters on small files in each dataset's exact layout; hostile pickles; scoring a perfect prediction."""

from __future__ import annotations

import os
import pickle
import pickletools
from types import SimpleNamespace

import numpy as np
import pytest

from human3r_demo.evaluation.datasets import DatasetError, benchmark
from human3r_demo.evaluation.datasets.body_models import BodyModelFiles, MissingBodyModel
from human3r_demo.evaluation.datasets.tum import associate
from tests.eval_fixtures import py2_pickle, tum_rows, write_body_models, write_emdb, write_images, write_tum


def test_tum_pairs_images_and_poses_as_associate_py(tmp_path):
    root = write_tum(tmp_path)
    (seq,) = benchmark("tum").sequences(root)
    assert len(seq.images) == 4 and seq.images[1].name == sorted(p.name for p in (root / seq.name / "rgb").iterdir())[3]
    truth = seq.ground_truth(None)
    assert truth.camera_to_world.shape == (4, 4, 4)
    assert np.allclose(np.linalg.det(truth.camera_to_world[:, :3, :3]), 1.0)
    # closest pairs first, each stamp once, within 0.02 s
    assert associate({0.0: [], 1.0: []}, {0.015: [], 0.005: [], 0.99: []}) == [(0.0, 0.005), (1.0, 0.99)]


def test_emdb_subsets_by_their_own_flags_and_good_frames(tmp_path):
    write_emdb(tmp_path, name="P0_09_outdoor_walk", emdb1=True, emdb2=False)
    write_emdb(tmp_path, name="P1_14_outdoor_climb", emdb1=False, emdb2=True)
    assert [s.name for s in benchmark("emdb1").sequences(tmp_path)] == ["P0_09_outdoor_walk"]
    (seq,) = benchmark("emdb2").sequences(tmp_path)
    assert seq.name == "P1_14_outdoor_climb" and [p.name for p in seq.images] == ["00000.jpg", "00002.jpg", "00003.jpg", "00004.jpg"]
    truth = seq.ground_truth(BodyModelFiles(write_body_models(tmp_path / "bm")))
    assert truth.joints_world.shape == (4, 24, 3) and truth.vertices_cam[0].shape == (1, 6890, 3)
    # camera frame = extrinsics applied to the world joints (z about 3 m in front of the camera)
    assert 2.0 < truth.joints_cam[0][0, :, 2].mean() < 4.0


def test_hostile_pickle_is_refused_in_one_line_and_runs_nothing(tmp_path):
    marker = tmp_path / "MARKER"

    class Hostile:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    folder = tmp_path / "P0" / "09_outdoor_walk"
    write_images(folder / "images", 2)
    (folder / "P0_09_outdoor_walk_data.pkl").write_bytes(pickle.dumps({"name": Hostile()}, protocol=2))
    with pytest.raises(DatasetError) as err:
        benchmark("emdb1").sequences(tmp_path)
    assert "posix.system" in str(err.value) and "\n" not in str(err.value)
    assert not marker.exists()


def test_threedpw_frames_with_a_valid_actor(tmp_path):
    frames = 4
    data = {"sequence": "downtown_walking_00", "genders": ["m", "f"], "poses": [np.zeros((frames, 72))] * 2,
            "trans": [np.zeros((frames, 3))] * 2, "betas": [np.zeros(300)] * 2, "cam_poses": np.tile(np.eye(4), (frames, 1, 1)),
            "cam_intrinsics": np.eye(3), "campose_valid": [np.array([0, 1, 1, 0]), np.array([0, 0, 1, 0])]}
    (tmp_path / "sequenceFiles" / "test").mkdir(parents=True)
    path = tmp_path / "sequenceFiles" / "test" / "downtown_walking_00.pkl"
    py2_pickle(data, path)  # as Python 2 wrote it: array data in latin-1 str
    assert "SHORT_BINSTRING" in {op.name for op, _, _ in pickletools.genops(path.read_bytes())}
    write_images(tmp_path / "imageFiles" / "downtown_walking_00", frames, names=[f"image_{k:05d}.jpg" for k in range(frames)])
    (seq,) = benchmark("3dpw").sequences(tmp_path)
    assert [p.name for p in seq.images] == ["image_00001.jpg", "image_00002.jpg"]
    truth = seq.ground_truth(BodyModelFiles(write_body_models(tmp_path / "bm")))
    assert [len(j) for j in truth.joints_cam] == [1, 2] and truth.joints_cam[1].shape == (2, 14, 3)


def test_bonn_frames_30_to_139_paired_by_position(tmp_path):
    folder = tmp_path / "rgbd_bonn_balloon2"
    write_images(folder / "rgb", 150, size=(8, 8), names=[f"{1548266469 + i / 30:.5f}.png" for i in range(150)])
    (folder / "depth").mkdir()
    import cv2

    for i in range(150):
        cv2.imwrite(str(folder / "depth" / f"{1548266469 + i / 30 + 0.001:.5f}.png"), np.full((8, 8), 5000, np.uint16))
    (seq,) = benchmark("bonn").sequences(tmp_path)
    assert seq.name == "balloon2" and len(seq.images) == 110
    truth = seq.ground_truth(None)
    assert truth.depth_files[0].name == sorted(p.name for p in (folder / "depth").iterdir())[30]
    assert truth.depth_scale == 5000.0 and truth.camera_to_world is None  # no groundtruth.txt: depth alone
    # with groundtruth.txt (TUM format, 100 Hz) every image gets the pose closest in time
    stamps = 1548266469 - 0.05 + np.arange(600) / 100
    rows = tum_rows(600)
    (folder / "groundtruth.txt").write_text("".join(f"{t:.4f} " + " ".join(f"{v:.6f}" for v in r) + "\n" for t, r in zip(stamps, rows)))
    (seq,) = benchmark("bonn").sequences(tmp_path)
    poses = seq.ground_truth(None).camera_to_world
    assert poses.shape == (110, 4, 4)
    nearest = int(np.argmin(np.abs(stamps - (1548266469 + 30 / 30))))
    assert np.allclose(poses[0, :3, 3], rows[nearest, :3], atol=1e-6)


def test_rich_reads_gvhmr_labels_with_weights_only(tmp_path):
    import torch

    (tmp_path / "hmr4d_support").mkdir()
    (tmp_path / "resource").mkdir()
    video = "test/Gym_013_burpee4/cam_06"
    write_images(tmp_path / video, 5)
    params = {k: torch.zeros(3, n) for k, n in (("global_orient", 3), ("body_pose", 63), ("betas", 10), ("transl", 3))}
    torch.save({video: {"gender": "male", "frame_id": torch.tensor([0, 2, 4]), "gt_smplx_params": params}},
               tmp_path / "hmr4d_support" / "rich_test_labels.pt")
    torch.save({"Gym_6": (torch.eye(4), torch.eye(3))}, tmp_path / "resource" / "cam2params.pt")
    (seq,) = benchmark("rich").sequences(tmp_path)
    assert seq.name == "Gym_013_burpee4_cam_06" and [p.name for p in seq.images] == ["00000.jpg", "00002.jpg", "00004.jpg"]


def test_missing_body_model_names_the_file(tmp_path):
    with pytest.raises(MissingBodyModel, match="SMPL_MALE.*smpl.is.tue.mpg.de"):
        BodyModelFiles(tmp_path).check(("smpl:male",))
    with pytest.raises(MissingBodyModel, match="smplx2smpl.pkl.*fetch_smplx.sh"):
        BodyModelFiles(tmp_path / "other").check(("smplx2smpl.pkl",))


def test_a_perfect_camera_trajectory_scores_zero(tmp_path):
    from human3r_demo.evaluation.datasets import GroundTruth
    from human3r_demo.evaluation.datasets.tum import pose_matrices
    from human3r_demo.evaluation.scoring import score_sequence

    truth = pose_matrices(tum_rows(10))
    similar = truth.copy()
    similar[:, :3, 3] = 2.5 * truth[:, :3, 3] + 1.0  # a scaled, shifted copy: Sim(3) alignment removes it
    predictions = type("P", (), {"camera_to_world": similar, "__len__": lambda self: 10})()
    score = score_sequence(benchmark("tum"), GroundTruth(camera_to_world=truth), predictions)
    assert score.values["ate"] < 1e-9 and score.evaluated == 10


def _write_predictions(path, frames, camera_to_world, source_k, people, depth=None):
    """A predictions.npz through the real writer, from stand-in frame results."""
    from human3r_demo.export.predictions import PredictionWriter

    writer = PredictionWriter(path)
    for k in range(frames):
        result = SimpleNamespace(
            index=k, image=np.zeros((64, 96, 3), np.uint8), source_size=(96, 64), world_frame="first-camera",
            camera_to_world=camera_to_world[k], intrinsics=source_k, source_intrinsics=source_k,
            depth=depth[k] if depth is not None else np.ones((64, 96)), people=people[k])
        writer.add(result, k / 30)
    return writer.close()


@pytest.mark.parametrize("name", ["emdb1", "emdb2"])
def test_perfect_bodies_score_zero(tmp_path, name):
    """Predicted meshes equal to the ground truth (the stand-in smplx2smpl keeps the first 6890 vertices) score 0 mm,
    100 % recall, and for EMDB-2 0 world error; the run's predictions.npz is read back by numpy alone."""
    from human3r_demo.evaluation.scoring import score_sequence
    from human3r_demo.export.predictions import Predictions

    write_emdb(tmp_path, emdb1=True, emdb2=True)
    body = BodyModelFiles(write_body_models(tmp_path / "bm"))
    bench = benchmark(name)
    (seq,) = bench.sequences(tmp_path)
    truth = seq.ground_truth(body)
    frames = len(seq.images)
    pad = lambda v: np.concatenate([v, np.zeros((len(v), 10475 - 6890, 3))], axis=1)  # noqa: E731
    world_to_camera = np.asarray(pickle.loads((tmp_path / "P0/09_outdoor_walk/P0_09_outdoor_walk_data.pkl").read_bytes())
                                 ["camera"]["extrinsics"])[[0, 2, 3, 4]]
    people = [[SimpleNamespace(track_id=7, head_uv=np.zeros(2), vertices_cam=pad(truth.vertices_cam[k])[0],
                               vertices=pad(truth.vertices_world[k][None])[0], joints_cam=np.zeros((127, 3)),
                               joints=np.zeros((127, 3)))] for k in range(frames)]
    k_source = np.array([[80.0, 0, 48], [0, 80.0, 32], [0, 0, 1]])
    path = _write_predictions(tmp_path / "predictions.npz", frames, np.linalg.inv(world_to_camera), k_source, people)
    with np.load(path, allow_pickle=False) as npz:  # the independent reader
        assert npz["camera_to_world"].shape == (frames, 4, 4) and npz["depth/000000"].dtype == np.float16
        assert npz["people/000003/vertices_cam"].shape == (1, 10475, 3) and list(npz["people/000000/track_id"]) == [7]
        assert npz["world_frame"].shape == () and str(npz["world_frame"]) == "first-camera"
    with Predictions(path) as predictions:
        score = score_sequence(bench, truth, predictions, body, seq.fps)
    assert score.values["recall"] == 100.0 and score.values["precision"] == 100.0
    for metric in ("mpjpe", "pa_mpjpe", "pve"):
        assert score.values[metric] < 1e-3, metric
    if name == "emdb2":
        for metric in ("w_mpjpe", "wa_mpjpe", "rte"):
            assert score.values[metric] < 1e-3, metric
    assert [row["track_id"] for row in score.frames] == [7] * frames


def test_perfect_depth_scores_zero(tmp_path):
    import cv2

    from human3r_demo.evaluation.datasets import GroundTruth
    from human3r_demo.evaluation.scoring import score_sequence
    from human3r_demo.export.predictions import Predictions

    rng = np.random.default_rng(0)
    metres = rng.uniform(0.5, 5.0, (3, 64, 96))
    files = []
    for k, d in enumerate(metres):
        files.append(tmp_path / f"{k}.png")
        cv2.imwrite(str(files[-1]), np.round(d * 5000).astype(np.uint16))
    from human3r_demo.evaluation.datasets.tum import pose_matrices

    poses = pose_matrices(tum_rows(3))
    truth = GroundTruth(depth_files=files, camera_to_world=poses)
    path = _write_predictions(tmp_path / "predictions.npz", 3, poses, np.eye(3), [[]] * 3,
                              depth=np.round(metres * 5000) / 5000 * 2.0)  # twice too far: the scale fixes it
    with Predictions(path) as predictions:
        score = score_sequence(benchmark("bonn"), truth, predictions)
    assert score.values["abs_rel"] < 1e-3 and score.values["delta_1_25"] == 1.0
    assert score.values["abs_rel_metric"] == pytest.approx(1.0, abs=1e-3)  # metric: no alignment, 2x off
    assert score.values["ate"] < 1e-9 and "ate" in score.frames[0]  # the cameras too, where poses are known


def test_rich_labels_that_are_not_plain_data_are_refused(tmp_path):
    import torch

    marker = tmp_path / "MARKER"

    class Hostile:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    (tmp_path / "hmr4d_support").mkdir()
    torch.save({"test/Gym_013_burpee4/cam_06": Hostile()}, tmp_path / "hmr4d_support" / "rich_test_labels.pt")
    with pytest.raises(DatasetError, match="refusing .*rich_test_labels.pt"):
        benchmark("rich").sequences(tmp_path)
    assert not marker.exists()


def test_threedpw_two_people_matched_in_2d(tmp_path):
    """Two actors, predicted in the opposite order: the 2D matching pairs each with its own ground truth (0 mm),
    the 14 H36M joints are scored, and an extra predicted person counts as a false positive."""
    from human3r_demo.evaluation.scoring import score_sequence
    from human3r_demo.export.predictions import Predictions

    frames = 3
    cam_poses = np.tile(np.eye(4), (frames, 1, 1))
    cam_poses[:, 2, 3] = 4.0
    k_source = np.array([[100.0, 0, 48], [0, 100.0, 32], [0, 0, 1]])
    data = {"sequence": "courtyard_basketball_00", "genders": ["m", "f"], "poses": [np.zeros((frames, 72))] * 2,
            "trans": [np.tile([-0.8, 0, 0], (frames, 1)), np.tile([0.8, 0, 0], (frames, 1))], "betas": [np.zeros(10)] * 2,
            "cam_poses": cam_poses, "cam_intrinsics": k_source, "campose_valid": [np.ones(frames)] * 2}
    (tmp_path / "sequenceFiles" / "test").mkdir(parents=True)
    py2_pickle(data, tmp_path / "sequenceFiles" / "test" / "courtyard_basketball_00.pkl")
    write_images(tmp_path / "imageFiles" / "courtyard_basketball_00", frames, names=[f"image_{k:05d}.jpg" for k in range(frames)])
    body = BodyModelFiles(write_body_models(tmp_path / "bm"))
    bench = benchmark("3dpw")
    (seq,) = bench.sequences(tmp_path)
    truth = seq.ground_truth(body)
    pad = lambda v: np.concatenate([v, np.zeros((10475 - 6890, 3))])  # noqa: E731
    far = truth.vertices_cam[0][0] + np.array([30.0, 0, 0])  # someone the ground truth does not have
    people = [[SimpleNamespace(track_id=t, head_uv=np.zeros(2), vertices_cam=pad(v), vertices=pad(v), joints_cam=np.zeros((127, 3)),
                               joints=np.zeros((127, 3))) for t, v in ((1, truth.vertices_cam[k][1]), (2, truth.vertices_cam[k][0]), (3, far))]
              for k in range(frames)]
    path = _write_predictions(tmp_path / "predictions.npz", frames, np.tile(np.eye(4), (frames, 1, 1)), k_source, people)
    with Predictions(path) as predictions:
        score = score_sequence(bench, truth, predictions, body, seq.fps)
    assert score.values["mpjpe"] < 1e-3 and score.values["pa_mpjpe"] < 1e-3 and score.values["pve"] < 1e-3
    assert score.values["recall"] == 100.0 and score.values["precision"] == 67.0  # the reference rounds to 2 decimals
    assert sorted((row["person"], row["track_id"]) for row in score.frames[:2]) == [(0, 2), (1, 1)]


def test_smpl_pkl_with_sparse_regressor_loads_and_chumpy_is_refused(tmp_path):
    """SMPL's .pkl release (a Python 2 pickle, J_regressor a scipy sparse matrix) through the restricted unpickler;
    one with chumpy objects is refused with the way out, and nothing from either runs."""
    import scipy.sparse

    root = write_body_models(tmp_path / "npz")
    with np.load(root / "smpl" / "SMPL_MALE.npz") as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays["J_regressor"] = scipy.sparse.csc_matrix(arrays["J_regressor"])
    (tmp_path / "pkl" / "smpl").mkdir(parents=True)
    py2_pickle(arrays, tmp_path / "pkl" / "smpl" / "SMPL_MALE.pkl")
    from_pkl = BodyModelFiles(tmp_path / "pkl").smpl_vertices("male", *(np.zeros((2, n)) for n in (3, 69, 10, 3)))
    from_npz = BodyModelFiles(root).smpl_vertices("male", *(np.zeros((2, n)) for n in (3, 69, 10, 3)))
    assert np.allclose(from_pkl, from_npz, atol=1e-6)  # float32 layers: the sparse and dense regressors round apart
    # GLOBAL chumpy.ch Ch, an empty tuple, NEWOBJ: what an unconverted SMPL file references
    (tmp_path / "pkl" / "smpl" / "SMPL_FEMALE.pkl").write_bytes(b"\x80\x02cchumpy.ch\nCh\nq\x00)\x81q\x01.")
    from human3r_demo.checkpoints.safe_pickle import PickleRefused

    with pytest.raises(PickleRefused, match="chumpy.ch.Ch.*convert it to .npz"):
        BodyModelFiles(tmp_path / "pkl").smpl("female")
