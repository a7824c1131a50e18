"""`python -m human3r_demo run`: every export written, reloaded and checked; errors and Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import trimesh

import human3r_demo as h3r
from tests.conftest import REPO, synthetic_clip
from tests.media import write_video

FPS = 10


@pytest.fixture(scope="module")
def people_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A synthetic clip on which the smoke model detects people (seed 2)."""
    return write_video(tmp_path_factory.mktemp("video") / "shapes.mp4", synthetic_clip(12, 180, 320, seed=2), fps=FPS)


def run_cli(*args: str, env: dict | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "human3r_demo", "run", *args, "--quiet"],
        capture_output=True, text=True, cwd=REPO, env={**os.environ, **(env or {})}, timeout=timeout,
    )


@pytest.fixture(scope="module")
def exported(people_video: Path, smplx_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("run") / "out"
    done = run_cli(str(people_video), "--out", str(out), "--model", "tiny-random", "--precision", "fp32",
                   "--smplx", str(smplx_dir), "--reset-interval", "5", "--scene-points", "5000")
    assert done.returncode == 0, done.stderr
    assert "done: 12 frame(s)" in done.stdout and "people tracked" in done.stdout
    assert "untrained model with random weights" in done.stderr  # said visibly
    return out


@pytest.fixture(scope="module")
def direct(people_video: Path, smplx_dir: Path, tiny_model) -> list[h3r.FrameResult]:
    return list(h3r.reconstruct(people_video, tiny_model, reset_interval=5, body_model=smplx_dir))


def test_camera_trajectory_tum_and_intrinsics(exported: Path, direct) -> None:
    import roma
    import torch

    tum = np.loadtxt(exported / "cameras_tum.txt")
    assert tum.shape == (12, 8)
    np.testing.assert_allclose(tum[:, 0], np.arange(12) / FPS, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(tum[:, 4:], axis=1), 1, atol=1e-6)
    for row, result in zip(tum, direct):
        R = roma.unitquat_to_rotmat(torch.from_numpy(row[4:])).numpy()
        np.testing.assert_allclose(R, result.camera_to_world[:3, :3], atol=1e-5)
        np.testing.assert_allclose(row[1:4], result.camera_to_world[:3, 3], atol=1e-5)
    intrinsics = json.loads((exported / "intrinsics.json").read_text())
    frames = intrinsics["frames"]
    assert {(f["model"]["width"], f["model"]["height"]) for f in frames} == {(512, 288)} and not intrinsics["sizes_vary"]
    assert {(f["source"]["width"], f["source"]["height"]) for f in frames} == {(320, 180)}
    assert [f["index"] for f in frames] == list(range(12))
    assert frames[3]["model"]["fx"] == pytest.approx(float(direct[3].intrinsics[0, 0]), abs=1e-4)
    assert frames[3]["source"]["fx"] == pytest.approx(float(direct[3].intrinsics[0, 0]) * 320 / 512, abs=1e-4)


def test_per_track_smplx_files(exported: Path, direct) -> None:
    expected: dict[int, list[tuple[int, h3r.Person]]] = {}
    for result in direct:
        for person in result.people:
            expected.setdefault(person.track_id, []).append((result.index, person))
    assert expected, "the clip should contain people"
    files = sorted((exported / "smplx").glob("track_*.npz"))
    with zipfile.ZipFile(exported / "smplx_tracks.zip") as z:
        assert sorted(z.namelist()) == [f"smplx/{f.name}" for f in files]
    by_track: dict[int, list[Path]] = {}
    for path in files:  # track_003.npz, or track_003_seg0.npz, track_003_seg1.npz ... in time order
        by_track.setdefault(int(path.stem.split("_")[1]), []).append(path)
    assert sorted(by_track) == sorted(expected)
    for track_id, paths in by_track.items():
        parts = [np.load(p) for p in sorted(paths, key=lambda p: int(p.stem.rsplit("seg", 1)[-1]) if "_seg" in p.stem else 0)]
        samples = expected[track_id]
        n = len(samples)
        poses = np.concatenate([d["poses"] for d in parts])
        head = np.concatenate([d["head_position"] for d in parts])
        assert poses.shape == (n, 165) and sum(len(d["trans"]) for d in parts) == n
        assert np.concatenate([d["frame_indices"] for d in parts]).tolist() == [i for i, _ in samples]
        np.testing.assert_allclose(np.concatenate([d["timestamps"] for d in parts]), [i / FPS for i, _ in samples], atol=1e-6)
        for d in parts:
            assert str(d["gender"]) == "neutral" and str(d["surface_model_type"]) == "smplx"
            assert float(d["mocap_frame_rate"]) == FPS and int(d["track_id"]) == track_id
            assert np.all(np.diff(d["frame_indices"]) == 1)  # a file holds consecutive frames only
            np.testing.assert_allclose(d["betas"], np.median([p.betas for _, p in samples], axis=0), atol=1e-6)
        for row, (_, person) in enumerate(samples):
            np.testing.assert_allclose(poses[row, :3], person.global_orient_world, atol=1e-6)
            np.testing.assert_allclose(poses[row, 3:66], person.body_pose.reshape(-1), atol=1e-6)
            np.testing.assert_allclose(poses[row, 75:120], person.left_hand_pose.reshape(-1), atol=1e-6)
            np.testing.assert_allclose(poses[row, 120:], person.right_hand_pose.reshape(-1), atol=1e-6)
            np.testing.assert_allclose(head[row], person.head_position_world, atol=1e-6)


def test_scene_point_cloud(exported: Path, direct) -> None:
    cloud = trimesh.load(exported / "scene.ply")
    assert isinstance(cloud, trimesh.PointCloud)
    assert len(cloud.vertices) == 5000  # the budget (far more confident points were seen)
    assert np.isfinite(cloud.vertices).all() and cloud.colors.shape == (5000, 4)
    everything = np.concatenate([r.points[r.confidence > 2.0] for r in direct])
    lo, hi = everything.min(0) - 1e-4, everything.max(0) + 1e-4
    assert ((cloud.vertices >= lo) & (cloud.vertices <= hi)).all()  # sampled from the scene, not invented


def test_people_glb_and_summary(exported: Path, direct) -> None:
    summary = json.loads((exported / "summary.json").read_text())
    assert summary["frames"] == 12 and summary["fps"] == FPS and summary["random_weights"] is True
    frame = summary["glb_frame"]
    people = next(r for r in direct if r.index == frame).people
    assert len(people) == max(r.num_people for r in direct)
    scene = trimesh.load(exported / "people.glb")
    assert sorted(scene.geometry) == sorted(f"track_{p.track_id}" for p in people)
    for person in people:
        mesh = scene.geometry[f"track_{person.track_id}"]
        assert mesh.vertices.shape == (10475, 3)
        # the first-camera world (y down) stood up for glTF's +Y up: 180 degrees about x
        np.testing.assert_allclose(mesh.vertices, person.vertices * [1, -1, -1], atol=1e-5)


def test_bad_inputs_are_one_clear_line(tmp_path: Path, people_video: Path) -> None:
    fake = tmp_path / "notes.mp4"
    fake.write_text("not a video")
    cases = [
        ([str(tmp_path / "missing.mp4")], "error: no such file or folder"),
        ([str(fake)], "error: notes.mp4 is not a readable video"),
        ([str(tmp_path)], "has no images"),
        ([str(people_video), "--subsample", "0"], "error: subsample must be between 1 and 10000, got 0"),
        ([str(people_video), "--max-frames", "-2"], "error: max_frames must be between 1 and"),  # 0: all frames
        ([str(people_video), "--smplx", str(tmp_path / "nope")], "error: no SMPLX_NEUTRAL.npz found"),
        ([str(people_video), "--size", "500"], "error: size must be a multiple of 16"),
        ([str(people_video), "--model", str(fake)], "error: notes.mp4: unknown checkpoint type"),
    ]
    for args, message in cases:
        done = run_cli(*args, "--out", str(tmp_path / "o"), *([] if "--model" in args else ["--model", "tiny-random"]))
        assert done.returncode == 2, (args, done.stderr)
        assert message in done.stderr, (args, done.stderr)
        assert "Traceback" not in done.stderr


def test_offline_without_weights_is_one_clear_line(tmp_path: Path, people_video: Path) -> None:
    done = run_cli(str(people_video), "--out", str(tmp_path / "o"), env={"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")})
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "error: cannot get the human3r_672S weights" in done.stderr and "tiny-random" in done.stderr


def test_ctrl_c_leaves_valid_files(tmp_path: Path, smplx_dir: Path) -> None:
    video = write_video(tmp_path / "long.mp4", synthetic_clip(300, 180, 320, seed=2), fps=FPS)
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-m", "human3r_demo", "run", str(video), "--out", str(out), "--model", "tiny-random",
         "--smplx", str(smplx_dir), "--quiet"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    deadline = time.monotonic() + 120

    def frames_staged() -> int:  # the run writes into a staging folder beside --out until it ends
        staged = next(tmp_path.glob(".out.partial-*/cameras_tum.txt"), None)
        return staged.read_text().count("\n") - 1 if staged is not None and staged.exists() else 0

    while time.monotonic() < deadline and frames_staged() < 6:
        time.sleep(0.2)
    assert not out.exists()  # nothing in --out until the run ends
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "interrupted after" in stderr and "Traceback" not in stderr
    frames_done = int(stderr.split("interrupted after ")[1].split()[0])
    assert 5 <= frames_done < 300
    assert np.loadtxt(out / "cameras_tum.txt").shape == (frames_done, 8)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["frames"] == frames_done
    for path in (out / "smplx").glob("track_*.npz"):
        assert np.load(path)["poses"].shape[1] == 165
    assert isinstance(trimesh.load(out / "scene.ply"), trimesh.PointCloud)
    assert not list(out.rglob("*.tmp*")) and not list(tmp_path.glob(".out.*"))


def test_render_video_writes_an_mp4_at_the_source_rate(tmp_path: Path, smplx_dir: Path, renderer) -> None:
    import av

    clip = REPO / "data" / "examples" / "synthetic_shapes.mp4"  # 12 frames, 320x180, 10 fps
    out = tmp_path / "out"
    done = run_cli(str(clip), "--out", str(out), "--model", "tiny-random", "--precision", "fp32", "--smplx", str(smplx_dir),
                   "--render-video")
    assert done.returncode == 0, done.stderr
    with av.open(str(out / "overlay.mp4")) as container:
        stream = container.streams.video[0]
        decoded = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
        assert float(stream.average_rate) == pytest.approx(10.0)
    assert len(decoded) == 12 and decoded[0].shape == (288, 1024, 3)  # the model's 512x288 frame, twice: overlay | world
    assert not list(out.rglob("*.partial*"))
    assert json.loads((out / "summary.json").read_text())["files"]["video"] == "overlay.mp4"
