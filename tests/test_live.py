"""Live reconstruction: the latest-frame-wins policy, the `live` command, stream URLs, and the app's live engine."""

from __future__ import annotations

import functools
import http.server
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import human3r_demo as h3r
from human3r_demo.app_engine import run_live
from human3r_demo.io import frames
from human3r_demo.live import LiveSession, LiveSource, play
from human3r_demo.session import ModelCache
from tests.conftest import REPO, synthetic_clip
from tests.media import write_video

OPTIONS = h3r.RunOptions(model="tiny-random", device="cpu", precision="fp32", size=128)


@pytest.fixture()
def slow_model(tiny_model):
    """tiny-random made deliberately slow (0.25 s a frame) through a forward hook; the hook is removed after."""
    handle = tiny_model.register_forward_hook(lambda module, args, output: time.sleep(0.25))
    yield tiny_model
    handle.remove()


def test_the_latest_frame_wins_and_nothing_queues(slow_model) -> None:
    live = LiveSession(OPTIONS, models=slow_model, body=None)
    clip = synthetic_clip(8, 90, 160, seed=2)
    pending: list[int] = []

    def camera() -> None:  # 50 frames per second, far faster than the model, until it has done 6 frames
        try:
            live.source.consuming.wait(60)
            i, deadline = 0, time.monotonic() + 120
            while live.stats.processed < 6 and time.monotonic() < deadline:
                live.push(clip[i % len(clip)], capture_time=i / 50)
                pending.append(live.source.pending)
                i += 1
                time.sleep(0.02)
        finally:
            live.stop()

    feeder = threading.Thread(target=camera)
    feeder.start()
    indices, received_at_result = [], []
    for step in live.run():
        indices.append(step.result.index)
        received_at_result.append(step.stats.received)
        assert step.result.timestamp == pytest.approx(step.result.index / 50)  # the capture time, from the first frame
    feeder.join()
    stats = live.stats
    assert live.outcome.error is None and len(indices) >= 6
    assert max(pending) <= 1  # the queue never grows: one frame waits at most
    assert indices == sorted(indices) and len(set(indices)) == len(indices)  # results stay in capture order
    assert stats.processed == len(indices) and stats.dropped == stats.received - stats.processed  # every frame counted
    assert stats.dropped >= 5 * stats.processed  # at 0.25 s a frame, about 12 of every 13 frames are dropped
    # each processed frame was the newest when the model took it: the next one taken is the newest of those
    # that arrived meanwhile, never an older one (at 50 frames/s and 0.25 s a frame, >= 5 arrive in between)
    for taken, received_before in zip(indices[1:], received_at_result[:-1]):
        assert taken >= received_before - 1, (taken, received_before)


def test_a_source_that_ends_still_processes_its_last_frame_and_errors_reach_the_session(tiny_model) -> None:
    source = LiveSource()
    source.push(np.zeros((64, 96, 3), np.uint8), 0.0)
    source.push(np.ones((64, 96, 3), np.uint8), 0.1)  # replaces the first one
    source.finish()
    taken = list(source)
    assert [f.index for f in taken] == [1] and source.dropped == 1
    source = LiveSource()
    threading.Thread(target=play, args=("/no/such/video.mp4", source), daemon=True).start()
    with pytest.raises(h3r.io.SourceError, match="no such file"):  # raised where the frames are consumed
        list(source)
    live = LiveSession(OPTIONS, models=tiny_model, body=None)
    threading.Thread(target=play, args=(99, live.source), daemon=True).start()  # a camera that is not there
    list(live.run())
    assert live.outcome.error is not None and "camera 99" in live.outcome.error


def test_memory_stays_flat_over_a_long_live_session(tiny_model, tmp_path: Path) -> None:
    """A short stand-in for benchmarks/live_memory.py: the exporter keeps nothing per frame in memory."""
    live = LiveSession(OPTIONS.replace(size=64, gltf_points=1000, scene_points=1000), tmp_path / "out", models=tiny_model, body=None)
    frame = synthetic_clip(1, 72, 128)[0]

    def camera() -> None:
        try:
            live.source.consuming.wait(30)
            i, deadline = 0, time.monotonic() + 300
            while live.stats.processed < 300 and time.monotonic() < deadline:  # a 30 fps camera
                if not live.push(frame, capture_time=i / 30):
                    return
                i += 1
                time.sleep(1 / 30)
        finally:
            live.source.finish()

    threading.Thread(target=camera, daemon=True).start()
    rss = []
    for step in live.run():
        if step.progress.done % 50 == 0:
            rss.append(resident_kib())
    assert live.stats.processed >= 300 and len(rss) >= 5
    assert rss[-1] - rss[1] < 20_000, rss  # KiB: flat once warmed up
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["live"] is True and any("average rate" in n for n in summary["source_notes"])


def resident_kib() -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


# ---------------------------------------------------------------------- the command line
def live_cli(*args: str, timeout: int = 300) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "human3r_demo", "live", *args], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "HUMAN3R_SMPLX_DIR": "/nonexistent"})


@pytest.fixture(scope="module")
def camera_clip(tmp_path_factory) -> Path:
    """3 s at 30 fps: a file standing in for a camera."""
    return write_video(tmp_path_factory.mktemp("live") / "camera.mp4", synthetic_clip(90, 180, 320, seed=2), fps=30)


def test_live_on_a_file_at_its_own_rate_drops_what_the_model_cannot_keep_up_with(camera_clip: Path, tmp_path: Path) -> None:
    proc = live_cli(str(camera_clip), "--out", str(tmp_path / "live"), "--viewer", "none",
                    "--model", "tiny-random", "--precision", "fp32", "--size", "512")
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr
    found = re.search(r"live: (\d+) frame\(s\) processed, (\d+) dropped of (\d+) received; the model took ([\d.]+) s per frame", stderr)
    processed, dropped, received = map(int, found.groups()[:3])
    seconds_per_frame = float(found.group(4))
    assert received == 90 and processed + dropped == received  # every frame of the 3 s clip arrived, each counted once
    expected = min(90, 3.0 / seconds_per_frame + 1)  # what the model can do while the clip plays (and the last frame)
    assert 0.5 * expected <= processed <= 1.3 * expected + 2, (processed, seconds_per_frame)
    assert dropped > 0  # at 512 px tiny-random is slower than the clip's 30 frames per second
    assert "Live · " in stderr and "dropped" in stderr  # the one-line live status
    summary = json.loads((tmp_path / "live" / "summary.json").read_text())
    assert summary["frames"] == processed and summary["live"] is True


def test_ctrl_c_ends_a_live_session_with_valid_exports(tmp_path: Path) -> None:
    clip = write_video(tmp_path / "long.mp4", synthetic_clip(300, 90, 160, seed=2), fps=30)  # 10 s
    out = tmp_path / "out"
    proc = live_cli(str(clip), "--out", str(out), "--viewer", "none", "--rrd", str(tmp_path / "live.rrd"),
                    "--model", "tiny-random", "--precision", "fp32", "--size", "128")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not list(tmp_path.glob(".out.partial-*/cameras_tum.txt")):  # frames are coming
        time.sleep(0.2)
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr  # stopping is how a live session ends
    assert "Traceback" not in stderr and "done:" not in stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["stopped"] is True and summary["frames"] >= 1
    assert np.loadtxt(out / "cameras_tum.txt", ndmin=2).shape == (summary["frames"], 8)
    assert (out / "run.glb").stat().st_size > 0 and (tmp_path / "live.rrd").stat().st_size > 0


def test_a_stream_url_is_read_through_pyav(camera_clip: Path) -> None:
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(camera_clip.parent))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/{camera_clip.name}"
        got = list(frames(url, max_frames=5))
        assert [f.index for f in got] == [0, 1, 2, 3, 4] and got[0].rgb.shape == (180, 320, 3)
        with pytest.raises(h3r.io.SourceError):
            list(frames(f"http://127.0.0.1:{server.server_address[1]}/missing.mp4"))
    finally:
        server.shutdown()


# ---------------------------------------------------------------------- the app's engine
def test_the_app_live_engine_streams_and_offers_the_downloads(tmp_path: Path) -> None:
    from rerun.chunk import RrdReader

    sessions = []
    updates = run_live(OPTIONS, tmp_path / "work", ModelCache(), None, recording_id="live-test", on_start=sessions.append)
    first = next(updates)
    assert "start the camera" in first.status
    threading.Thread(target=play, args=(synthetic_clip(40, 90, 160, seed=2), sessions[0]), daemon=True).start()
    rest = list(updates)
    statuses = [u.status for u in rest]
    assert any("processed" in s and "dropped" in s and "latency" in s for s in statuses)
    last = rest[-1]
    assert last.error is None and "Live:" in last.status
    names = {p.name for p in last.files}
    assert {"recording.rrd", "run.glb", "cameras_tum.txt", "summary.json"} <= names
    streamed = b"".join(u.rrd for u in [first, *rest])  # what the viewer received: a valid recording
    (tmp_path / "stream.rrd").write_bytes(streamed)
    entities = {c.entity_path for c in RrdReader(tmp_path / "stream.rrd").stream()}
    assert {"/world/camera", "/world/points"} <= entities
