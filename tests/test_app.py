"""The app's engine (human3r_demo.app_engine) driven directly, and the app module's banners."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from rerun.chunk import RrdReader

from human3r_demo import RunOptions
from human3r_demo.app_engine import run_upload
from human3r_demo.body import BodyModel
from human3r_demo.session import ModelCache
from tests.conftest import REPO
from tests.media import write_empty_video

EXAMPLE = REPO / "data" / "examples" / "synthetic_shapes.mp4"


@pytest.fixture(scope="module")
def models() -> ModelCache:
    return ModelCache()


def run(video, workdir: Path, models: ModelCache, body=None, **options):
    options = RunOptions(model="tiny-random", device="cpu", precision="fp32", **options)
    return list(run_upload(video, options, workdir, models, body, recording_id="test-run"))


def test_a_run_streams_every_frame_and_offers_the_downloads(models, smplx_dir: Path, tmp_path: Path) -> None:
    updates = run(EXAMPLE, tmp_path / "run", models, BodyModel(smplx_dir), size=256)
    frames, last = updates[:-1], updates[-1]
    assert len(frames) == 12
    assert [u.status.split(" · ")[0] for u in frames] == [f"Frame {i} of 12" for i in range(1, 13)]
    assert all(u.rrd for u in frames) and frames[-1].progress == 1.0
    assert last.error is None and last.status.startswith("Done: 12 frame(s)")
    names = {p.name for p in last.files}
    assert {"recording.rrd", "smplx_tracks.zip", "scene.ply", "cameras_tum.txt", "people.glb"} <= names
    assert all(p.stat().st_size > 0 for p in last.files)
    rrd = next(p for p in last.files if p.name == "recording.rrd")
    assert any(c.entity_path == "/world/points" for c in RrdReader(rrd).stream())
    # the bytes that were streamed are a viewable recording too
    streamed = b"".join(u.rrd for u in updates)
    assert streamed.startswith(b"RRF") and len(streamed) > 100_000
    summary = json.loads(next(p for p in last.files if p.name == "summary.json").read_text())
    assert summary["random_weights"] is True and summary["frames"] == 12


def test_bad_uploads_are_clear_errors_and_the_next_run_works(models, tmp_path: Path) -> None:
    not_video = tmp_path / "notes.mp4"
    not_video.write_text("just text")
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(EXAMPLE.read_bytes()[: EXAMPLE.stat().st_size // 3])
    empty = write_empty_video(tmp_path / "empty.mp4")
    for video, message in (
        (not_video, "notes.mp4 is not a readable video"),
        (corrupt, "corrupt.mp4 is not a readable video"),
        (empty, "empty.mp4 contains no video frames"),
    ):
        updates = run(video, tmp_path / video.stem, models)
        assert len(updates) == 1 and message in updates[0].error
    good = run(EXAMPLE, tmp_path / "after", models, size=224, max_frames=3)
    assert good[-1].error is None and good[-1].status.startswith("Done: 3 frame(s)")


def test_weights_that_cannot_be_had_end_the_run_with_a_message(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    import huggingface_hub.constants as hub_constants

    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    updates = list(run_upload(EXAMPLE, RunOptions(model="human3r_672S"), tmp_path / "w", ModelCache(), None, recording_id="x"))
    assert len(updates) == 1 and "cannot get the human3r_672S weights" in updates[0].error


def test_stopping_early_leaves_complete_files(models, tmp_path: Path) -> None:
    stop_after = {"n": 0}

    def should_stop() -> bool:
        stop_after["n"] += 1
        return stop_after["n"] > 4

    updates = list(run_upload(EXAMPLE, RunOptions(model="tiny-random", size=224, precision="fp32"), tmp_path, models, None,
                              recording_id="s", should_stop=should_stop))
    assert updates[-1].status.startswith("Stopped: 4 frame(s)")
    import numpy as np

    assert np.loadtxt(tmp_path / "exports" / "cameras_tum.txt").shape == (4, 8)


def test_app_banners_offline_and_for_tiny_random(tmp_path: Path) -> None:
    code = (
        "import app\n"
        "print('BANNER1', app.model_banner('human3r_672S'))\n"
        "print('BANNER2', app.model_banner('tiny-random'))\n"
    )
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "hf"), HUMAN3R_SMPLX_DIR=str(tmp_path / "none"))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, env=env, timeout=180)
    assert out.returncode == 0, out.stderr
    first = out.stdout.split("BANNER1")[1].split("BANNER2")[0]
    second = out.stdout.split("BANNER2")[1]
    assert "not in the local HuggingFace cache and the hub is offline" in first and "tiny-random" in first
    assert "No GPU here" in first
    assert "untrained model with random weights" in second and "meaningless" in second
    assert "smpl-x.is.tue.mpg.de" in second  # missing SMPL-X: instructions, the rest works



def test_a_ground_truth_upload_is_scored_and_plotted_along_the_clip(models, tmp_path: Path) -> None:
    import numpy as np
    from scipy.spatial.transform import Rotation

    first = run(EXAMPLE, tmp_path / "first", models, size=224, max_frames=6)
    assert first[-1].error is None
    ours = np.loadtxt(tmp_path / "first" / "exports" / "cameras_tum.txt")
    # the ground truth: the same camera path seen in another frame at another scale, which the Sim(3)
    # alignment of ATE must undo exactly
    turn = Rotation.from_euler("xyz", [10, -35, 5], degrees=True)
    gt = ours.copy()
    gt[:, 1:4] = 2.5 * turn.apply(ours[:, 1:4]) + [1.0, -2.0, 0.5]
    gt[:, 4:] = (turn * Rotation.from_quat(ours[:, 4:])).as_quat()
    truth = tmp_path / "groundtruth.txt"
    np.savetxt(truth, gt, fmt="%.9f")

    options = RunOptions(model="tiny-random", device="cpu", precision="fp32", size=224, max_frames=6)
    updates = list(run_upload(EXAMPLE, options, tmp_path / "scored", models, None, recording_id="gt", ground_truth=truth))
    last = updates[-1]
    assert last.error is None and "Against the ground truth: ate" in last.status
    results = json.loads(next(p for p in last.files if p.name == "results.json").read_text())
    assert results["values"]["ate"] < 1e-5
    per_frame = next(p for p in last.files if p.name == "per_frame.csv").read_text().splitlines()
    assert len(per_frame) == 1 + 6
    rrd = next(p for p in last.files if p.name == "recording.rrd")
    ate_rows = sum(c.num_rows for c in RrdReader(rrd).stream() if c.entity_path == "/metrics/m/ate" and not c.is_static)
    assert ate_rows == 6


def test_a_ground_truth_of_another_kind_is_refused_before_anything_runs(models, tmp_path: Path) -> None:
    wrong = tmp_path / "truth.csv"
    wrong.write_text("0,0,0\n")
    options = RunOptions(model="tiny-random", device="cpu", precision="fp32", size=224, max_frames=2)
    updates = list(run_upload(EXAMPLE, options, tmp_path / "w", models, None, recording_id="x", ground_truth=wrong))
    assert len(updates) == 1 and "TUM trajectory (.txt) or an npz of joints (.npz), not truth.csv" in updates[0].error
    assert not (tmp_path / "w").exists()
