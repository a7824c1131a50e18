"""The running app driven through its API by two gradio_client clients: typed paths, Stop, visitors who leave.

Robustness review cases bad 7 (only the app's own models; nothing revealed about the server's files)
and poor j-l (queued jobs of departed visitors, Stop that stops and says so, Stop from an API client).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.browser import free_port, wait_until_serving
from tests.conftest import REPO, synthetic_clip
from tests.media import write_video

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def app(smplx_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    port = free_port()
    tmp = tmp_path_factory.mktemp("app_tmp")
    env = dict(os.environ, GRADIO_SERVER_PORT=str(port), HF_HUB_OFFLINE="1", HF_HOME=str(tmp / "hf"), TMPDIR=str(tmp),
               HUMAN3R_SMPLX_DIR=str(smplx_dir), HUMAN3R_MODEL="tiny-random", GRADIO_ANALYTICS_ENABLED="False",
               GRADIO_HEARTBEAT_INTERVAL="0.5")
    log = open(tmp / "app.log", "w")
    proc = subprocess.Popen([sys.executable, "app.py", "--device", "cpu"], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    wait_until_serving(url, proc, 120, f"the app (log: {log.name})")
    yield url, tmp / "human3r_demo_sessions"
    proc.terminate()
    proc.wait(timeout=30)
    log.close()


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory) -> Path:
    return write_video(tmp_path_factory.mktemp("clips") / "long.mp4", synthetic_clip(400, 180, 320, seed=2), fps=10)


def run_args(video: Path, model: str = "tiny-random") -> list:
    """The /run endpoint's inputs: the video, no ground truth, the model, then every option the app shows
    (the fields of RunOptions with a label, in field order) at its default but for a fast, small run."""
    from gradio_client import handle_file

    from human3r_demo.options import RunOptions, option_specs

    fast = {"precision": "fp32", "size": 224, "viewer_points": 2000}
    shown = [spec for spec in option_specs(RunOptions) if spec.label and spec.name != "model"]
    return [handle_file(str(video)), None, model, *(spec.to_input(fast.get(spec.name, spec.default)) for spec in shown)]


def test_typed_paths_are_refused_alike_and_reveal_nothing(app, tmp_path: Path) -> None:
    from gradio_client import Client

    url, _ = app
    client = Client(url, verbose=False)
    real = tmp_path / "weights.pth"
    real.write_bytes(b"not really weights")
    answers = set()
    for typed in ("/etc/passwd", str(real), str(tmp_path / "missing.pth"), "../../etc/hosts"):
        for endpoint, args in (("/banner", [typed]), ("/run", run_args(REPO / "data" / "examples" / "synthetic_shapes.mp4", typed))):
            with pytest.raises(Exception) as err:
                client.predict(*args, api_name=endpoint)
            message = str(err.value)
            assert "not in the list of choices" in message or "Unknown model" in message, message
            answers.add((endpoint, message.replace(typed, "<typed>")))
    assert len(answers) == 2  # one answer per endpoint, the same whether the path exists or not
    client.close()


def test_stop_from_an_api_client_stops_its_run_and_offers_what_it_made(app, long_clip: Path) -> None:
    from gradio_client import Client

    url, sessions = app
    client = Client(url, verbose=False)
    job = client.submit(*run_args(long_clip), api_name="/run")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not any("Frame 3" in str(o) or "Frame 4" in str(o) for o in job.outputs()):
        time.sleep(0.2)
    assert client.predict(api_name="/stop").find("Stopping after the current frame") >= 0
    viewer, status, downloads, rendered = job.result(timeout=120)
    assert "Stopped:" in status and "frame(s)" in status, status
    names = {Path(str(d)).name for d in downloads}
    assert {"recording.rrd", "summary.json", "cameras_tum.txt"} <= names, names
    assert "Nothing is running" in client.predict(api_name="/stop")
    assert (sessions / client.session_hash).exists()
    client.close()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (sessions / client.session_hash).exists():
        time.sleep(0.5)
    assert not (sessions / client.session_hash).exists()  # the visitor left: their files went with them


def test_a_queued_job_of_a_visitor_who_left_never_runs(app, long_clip: Path) -> None:
    from gradio_client import Client

    url, sessions = app
    first, second = Client(url, verbose=False), Client(url, verbose=False)
    running = first.submit(*run_args(long_clip), api_name="/run")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (sessions / first.session_hash).exists():
        time.sleep(0.2)
    queued = second.submit(*run_args(long_clip), api_name="/run")  # waits: one run at a time
    time.sleep(1.0)
    second.close()  # the second visitor leaves while their job waits
    del queued
    time.sleep(3.0)
    first.predict(api_name="/stop")
    running.result(timeout=120)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # the queue moves on: the departed visitor's job must not start
        assert not (sessions / second.session_hash).exists()
        time.sleep(0.25)
    first.close()
