"""`python -m human3r_demo eval` end to end: a synthetic TUM-layout and a synthetic EMDB-layout sequence run
with tiny-random (untrained: the numbers are meaningless) through the batch engine, scored, tabled; the
files are read back with csv / json; a second call reruns nothing; your own ground truth against a run."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from human3r_demo.cli import main
from tests.eval_fixtures import write_body_models, write_emdb, write_tum


@pytest.fixture(scope="module")
def ray_session():
    """One local Ray for the module (the engine uses a Ray already started in this process)."""
    ray = pytest.importorskip("ray")
    from human3r_demo.batch import start_local_ray

    start_local_ray(num_cpus=2)
    yield
    ray.shutdown()


def _eval(argv: list[str], capsys) -> tuple[int, str, str]:
    code = main(["eval", *argv, "--model", "tiny-random", "--size", "64", "--workers", "1", "--quiet"])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_tum_end_to_end_and_resume(tmp_path, capsys, ray_session):
    root, out = write_tum(tmp_path / "tum"), tmp_path / "out"
    code, stdout, stderr = _eval(["tum", "--root", str(root), "--out", str(out), "--json", str(tmp_path / "r.json")], capsys)
    assert code == 0, stderr
    assert "TUM-dynamics" in stdout and "ATE m" in stdout and "Human3R (paper)" in stdout
    assert "untrained" in stdout  # said visibly
    results = json.loads((tmp_path / "r.json").read_text())
    assert results == json.loads((out / "results.json").read_text())
    assert results["sequences_scored"] == 1 and results["frames_scored"] == 4  # 12 paired frames, every 3rd
    assert results["dataset"]["ate"] >= 0
    rows = list(csv.DictReader((out / "per_frame.csv").open()))
    assert [int(r["frame"]) for r in rows] == [0, 1, 2, 3]
    assert float(rows[0]["ate"]) >= 0
    sequences = list(csv.DictReader((out / "sequences.csv").open()))
    assert sequences[0]["sequence"] == "rgbd_dataset_freiburg3_walking_xyz"
    score_file = out / "scores" / "rgbd_dataset_freiburg3_walking_xyz.json"
    stamp = score_file.stat().st_mtime_ns

    code, again, _ = _eval(["tum", "--root", str(root), "--out", str(out)], capsys)
    assert code == 0 and again == stdout
    batch = json.loads((out / "runs" / "batch.json").read_text())
    assert [c["status"] for c in batch["clips"]] == ["skipped"]
    assert score_file.stat().st_mtime_ns == stamp  # not rescored

    # the run kept its predictions, readable by numpy alone
    run_dir = out / "runs" / "rgbd_dataset_freiburg3_walking_xyz"
    with np.load(run_dir / "predictions.npz", allow_pickle=False) as npz:
        assert npz["camera_to_world"].shape == (4, 4, 4) and list(npz["frame_index"]) == [0, 1, 2, 3]
        assert npz["depth/000003"].ndim == 2 and str(npz["world_frame"]) == "first-camera"

    # bring your own ground truth: the run's cameras against the sequence's own TUM file
    gt = root / "rgbd_dataset_freiburg3_walking_xyz" / "groundtruth.txt"
    code = main(["eval", "tum", str(run_dir), "--gt", str(gt)])
    own = capsys.readouterr()
    assert code == 0, own.err
    assert "ate" in own.out and json.loads((run_dir / "eval" / "results.json").read_text())["values"]["ate"] >= 0


def test_emdb_end_to_end(tmp_path, capsys, ray_session, smplx_dir):
    root, out = write_emdb(tmp_path / "emdb"), tmp_path / "out"
    models = write_body_models(tmp_path / "body_models")
    code, stdout, stderr = _eval(["emdb1", "--root", str(root), "--out", str(out), "--body-models", str(models),
                                  "--smplx", str(smplx_dir)], capsys)
    assert code == 0, stderr
    assert "EMDB-1" in stdout and "PA-MPJPE" in stdout and "untrained" in stdout
    results = json.loads((out / "results.json").read_text())
    assert results["sequences_scored"] == 1 and results["frames_scored"] == 4  # 5 frames, one masked out
    assert {"precision", "recall", "f1"} <= set(results["dataset"])
    frames = sorted(p.name for p in (out / "frames" / "P0_09_outdoor_walk").iterdir())
    assert frames == ["000000.jpg", "000001.jpg", "000002.jpg", "000003.jpg"]
    assert (out / "frames" / "P0_09_outdoor_walk" / "000001.jpg").resolve().name == "00002.jpg"  # frame 1 skipped
    list(csv.DictReader((out / "per_frame.csv").open()))
    list(csv.DictReader((out / "sequences.csv").open()))


def test_missing_body_model_is_one_line_before_any_frame(tmp_path, capsys):
    root = write_emdb(tmp_path / "emdb")
    code = main(["eval", "emdb2", "--root", str(root), "--out", str(tmp_path / "out"), "--body-models", str(tmp_path / "none")])
    err = capsys.readouterr().err
    assert code == 2
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "SMPL_NEUTRAL" in errors[0] and "smpl.is.tue.mpg.de" in errors[0]
    assert not (tmp_path / "out").exists()


def test_own_bodies_against_a_run(tmp_path, capsys):
    """`eval bodies RUN_DIR --gt joints.npz`: the run's world joints of its most-seen track against the user's."""
    from types import SimpleNamespace

    from human3r_demo.export.predictions import PredictionWriter

    rng = np.random.default_rng(0)
    joints = np.cumsum(rng.normal(scale=0.05, size=(8, 127, 3)), axis=0) + np.array([0, 0, 3.0])
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    writer = PredictionWriter(run_dir / "predictions.npz")
    for k in range(8):
        person = SimpleNamespace(track_id=3, head_uv=np.zeros(2), joints=joints[k], joints_cam=joints[k],
                                 vertices=np.zeros((10475, 3)), vertices_cam=np.zeros((10475, 3)))
        writer.add(SimpleNamespace(index=k, image=np.zeros((64, 64, 3), np.uint8), source_size=(64, 64),
                                   world_frame="first-camera", camera_to_world=np.eye(4), intrinsics=np.eye(3),
                                   source_intrinsics=np.eye(3), depth=np.ones((64, 64)), people=[person]), k / 30)
    writer.close()
    gt = tmp_path / "joints.npz"
    np.savez(gt, joints_world=joints[:, :22] * 1.0)  # SMPL's / SMPL-X's first 22 body joints
    code = main(["eval", "bodies", str(run_dir), "--gt", str(gt)])
    out = capsys.readouterr()
    assert code == 0, out.err
    values = json.loads((run_dir / "eval" / "results.json").read_text())["values"]
    assert values["w_mpjpe"] < 1e-3 and values["wa_mpjpe"] < 1e-3 and values["rte"] < 1e-4  # float32 storage
    rows = list(csv.DictReader((run_dir / "eval" / "per_frame.csv").open()))
    assert len(rows) == 8
    np.savez(gt, joints_cam=joints[:, :22], frame=np.arange(8))
    assert main(["eval", "bodies", str(run_dir), "--gt", str(gt)]) == 0
    assert json.loads((run_dir / "eval" / "results.json").read_text())["values"]["pa_mpjpe"] < 1e-3
    np.savez(gt, something=np.zeros(3))
    assert main(["eval", "bodies", str(run_dir), "--gt", str(gt)]) == 2
    assert "neither joints_world nor joints_cam" in capsys.readouterr().err
