"""Hostile and unusual input: nothing we read runs code, no run damages earlier results, one line for each problem.

Each test names the case it covers from the robustness review (bad 1-8, poor a-n). The app's cases
(bad 7, poor j-l) are driven through its API in tests/test_app_api.py.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import pickle
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import human3r_demo as h3r
from human3r_demo.checkpoints import CheckpointError, read_checkpoint
from human3r_demo.io import SourceError, frames
from human3r_demo.session import ModelCache, Session
from tests.conftest import REPO, synthetic_clip
from tests.media import write_video

TINY = ["--model", "tiny-random", "--precision", "fp32", "--quiet"]


class Payload:
    """Unpickling this touches a marker file: proof that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def cli(*args: str, env: dict | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "human3r_demo", "run", *args], capture_output=True, text=True, cwd=REPO,
                          env={**os.environ, **(env or {})}, timeout=timeout)


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` with the sha256 of its bytes."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return write_video(tmp_path_factory.mktemp("clip") / "people.mp4", synthetic_clip(6, 180, 320, seed=2), fps=10)


@pytest.fixture(scope="module")
def evil_smplx(tmp_path_factory) -> tuple[Path, Path]:
    """A folder with a pickle named SMPLX_NEUTRAL.npz, and the marker its code would create."""
    folder = tmp_path_factory.mktemp("evil_smplx")
    marker = folder / "pwned"
    (folder / "SMPLX_NEUTRAL.npz").write_bytes(pickle.dumps(Payload(marker)))
    return folder, marker


# ---------------------------------------------------------------------- bad 1: body-model files never run code
def test_bad1_a_pickle_named_smplx_is_refused_everywhere(evil_smplx, clip, tmp_path, monkeypatch) -> None:
    folder, marker = evil_smplx
    with pytest.raises(h3r.BodyModelError, match="holds pickled data, which can run code"):
        h3r.BodyModel(folder)  # explicit folder (the API's body_model=...)
    monkeypatch.setenv("HUMAN3R_SMPLX_DIR", str(folder))
    with pytest.raises(h3r.BodyModelError, match="refusing"):
        h3r.BodyModel()  # $HUMAN3R_SMPLX_DIR, the default of every entry point
    done = cli(str(clip), "--out", str(tmp_path / "o"), "--smplx", str(folder), *TINY)  # --smplx DIR
    assert done.returncode == 2 and "refusing" in done.stderr and "Traceback" not in done.stderr
    code = "import app; print('BANNER', app.model_banner('tiny-random'))"  # the app at start
    started = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=180,
                             env={**os.environ, "HUMAN3R_SMPLX_DIR": str(folder), "HF_HUB_OFFLINE": "1"})
    assert started.returncode == 0, started.stderr
    assert "pickled data" in started.stdout.split("BANNER")[1]
    assert not marker.exists()


def test_bad1_a_pickled_array_inside_a_real_npz_is_refused(smplx_dir: Path, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    with np.load(smplx_dir / "SMPLX_NEUTRAL.npz") as real:
        arrays = {k: real[k] for k in real.files}
    arrays["v_template"] = np.array([Payload(marker)], dtype=object)
    np.savez(tmp_path / "SMPLX_NEUTRAL.npz", **arrays)
    with pytest.raises(h3r.BodyModelError, match="pickled data"):
        h3r.BodyModel(tmp_path)
    arrays["v_template"] = arrays["shapedirs"][:, :, 0].astype(np.float64)
    arrays["weights"] = np.zeros((10475, 54))  # a wrong shape is named
    np.savez(tmp_path / "SMPLX_NEUTRAL.npz", **arrays)
    with pytest.raises(h3r.BodyModelError, match=r"not an SMPL-X model: weights is float64 \[10475, 54\], expected floating \[10475, 55\]"):
        h3r.BodyModel(tmp_path)
    assert not marker.exists()


# ---------------------------------------------------------------------- bad 2: every image mode scaled correctly
@pytest.mark.parametrize("mode", ["I;16", "I", "F", "P", "PA", "LA", "RGBA", "CMYK", "1", "L"])
def test_bad2_images_of_every_mode_become_correct_8bit_rgb(mode: str, tmp_path: Path) -> None:
    ramp = np.tile(np.linspace(0, 1, 128), (96, 1))  # left black, right white
    if mode == "I;16":
        img = Image.fromarray((ramp * 65535).astype(np.uint16))  # what PIL opens a 16-bit greyscale PNG as
        img.save(tmp_path / "frame.png")
        img = Image.open(tmp_path / "frame.png")
    elif mode == "I":
        img = Image.fromarray((ramp * 65535).astype(np.int32))
    elif mode == "F":
        img = Image.fromarray(ramp.astype(np.float32))
    elif mode == "1":
        img = Image.fromarray(ramp > 0.5)
    else:
        img = Image.fromarray((ramp * 255).astype(np.uint8)).convert(mode)
    assert img.mode == mode
    rgb = next(frames([img])).rgb
    assert rgb.shape == (96, 128, 3) and rgb.dtype == np.uint8
    grey = rgb.astype(float).mean(-1)
    assert grey[:, :8].mean() < 20 and grey[:, -8:].mean() > 235, (mode, grey[:, :8].mean(), grey[:, -8:].mean())
    assert abs(grey[:, 60:68].mean() - 127) < 25 or mode == "1"  # mid-grey stays mid-grey (not 99 % white)
    if mode == "I;16":  # and read from a file, as a folder of frames
        assert np.array_equal(next(frames(tmp_path)).rgb, rgb)


# ---------------------------------------------------------------------- bad 3, 4: each run owns its output
def test_bad3_reusing_an_output_folder_never_mixes_runs(clip, smplx_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = cli(str(clip), "--out", str(out), "--smplx", str(smplx_dir), *TINY)
    assert first.returncode == 0, first.stderr
    assert (out / "people.glb").exists() and list((out / "smplx").glob("track_*.npz"))
    second = cli(str(clip), "--out", str(out), "--max-frames", "2", "--max-tracks", "1", *TINY,
                 env={"HUMAN3R_SMPLX_DIR": str(tmp_path / "none")})
    assert second.returncode == 0, second.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["frames"] == 2 and not (out / "people.glb").exists()  # nothing of the first run survives
    written = sorted(p.name for p in (out / "smplx").glob("track_*.npz"))
    with zipfile.ZipFile(out / "smplx_tracks.zip") as z:
        assert sorted(Path(n).name for n in z.namelist()) == written
    assert len({name.split("_")[1] for name in written}) == len(summary["tracks"]) <= 1  # one file per stretch of a track


def test_bad4_a_run_failing_on_its_first_frame_leaves_the_folder_byte_for_byte(clip, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert cli(str(clip), "--out", str(out), *TINY).returncode == 0
    before = snapshot(out)
    folder = tmp_path / "images"
    folder.mkdir()
    (folder / "0001.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")  # the first frame cannot be read
    Image.fromarray(synthetic_clip(1)[0]).save(folder / "0002.png")
    failed = cli(str(folder), "--out", str(out), *TINY)
    assert failed.returncode == 2 and "0001.png is not a readable image" in failed.stderr
    assert snapshot(out) == before and not list(tmp_path.glob(".out.*"))


# ---------------------------------------------------------------------- bad 5: disk full
def test_bad5_disk_full_is_one_line_and_damages_nothing(clip, tmp_path: Path, tiny_model, monkeypatch) -> None:
    out = tmp_path / "out"
    options = h3r.RunOptions(precision="fp32")
    list(Session(clip, options, out, models=tiny_model).run())
    before = snapshot(out)

    real_savez, calls = np.savez, {"n": 0}

    def savez_until_full(*a, **k):  # the disk fills up after the first track file
        calls["n"] += 1
        if calls["n"] > 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_savez(*a, **k)

    monkeypatch.setattr(np, "savez", savez_until_full)
    session = Session(clip, options.replace(max_frames=6), out, models=tiny_model)
    list(session.run())
    error = session.outcome.error
    assert error is not None and "\n" not in error
    assert "No space left on device" in error and str(out) in error and "nothing was kept" in error
    assert snapshot(out) == before and not list(tmp_path.glob(".out.*"))


# ---------------------------------------------------------------------- bad 6, poor h: Ctrl-C twice, SIGTERM
@pytest.mark.parametrize("signals", [(signal.SIGINT, signal.SIGINT), (signal.SIGTERM,)], ids=["ctrl-c-twice", "sigterm"])
def test_bad6_interrupts_leave_a_complete_valid_run(signals, smplx_dir: Path, tmp_path: Path) -> None:
    video = write_video(tmp_path / "long.mp4", synthetic_clip(300, 180, 320, seed=2), fps=10)
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "human3r_demo", "run", str(video), "--out", str(out), "--smplx",
                             str(smplx_dir), *TINY], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        staged = next(tmp_path.glob(".out.partial-*/cameras_tum.txt"), None)
        if staged is not None and staged.read_text().count("\n") > 4:
            break
        time.sleep(0.2)
    for sig in signals:
        proc.send_signal(sig)
        time.sleep(0.3)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and "interrupted after" in stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["stopped"] is True and summary["frames"] >= 4
    assert np.loadtxt(out / "cameras_tum.txt").shape == (summary["frames"], 8)
    with zipfile.ZipFile(out / "smplx_tracks.zip") as z:
        assert z.testzip() is None
        assert {int(Path(n).stem.split("_")[1]) for n in z.namelist()} == {int(t) for t in summary["tracks"]}
    assert not list(out.rglob("*.tmp*")) and not list(tmp_path.glob(".out.*"))


# ---------------------------------------------------------------------- bad 8: the model cache is bounded
def test_bad8_spellings_of_one_checkpoint_share_one_cached_model(tmp_path: Path, monkeypatch) -> None:
    from safetensors.torch import save_file

    from human3r_demo.checkpoints.random_init import tiny_random_config

    torch.manual_seed(0)
    path = tmp_path / "weights" / "tiny.safetensors"
    path.parent.mkdir()
    state = {k: v.clone() for k, v in h3r.to_official_state_dict(h3r.Human3R(tiny_random_config())).items()}
    save_file(state, str(path), metadata={"config": json.dumps(tiny_random_config().to_dict())})
    (tmp_path / "link.safetensors").symlink_to(path)
    monkeypatch.chdir(tmp_path)
    spellings = [str(path), "weights/tiny.safetensors", "./weights/tiny.safetensors", "weights/../weights/tiny.safetensors",
                 "link.safetensors", str(tmp_path / "weights" / "." / "tiny.safetensors")] * 4
    cache = ModelCache()
    models = {id(cache.get(h3r.RunOptions(model=s, precision="fp32", device="cpu"))) for s in spellings[:20]}
    assert len(models) == 1 and len(cache) == 1
    cache.get(h3r.RunOptions(model="tiny-random", precision="fp32", device="cpu"))
    assert len(cache) == 1  # switching evicts: one model resident


# ---------------------------------------------------------------------- poor a-i, m, n
def test_poor_a_a_truncated_video_is_one_note_recorded_in_the_summary(tmp_path: Path) -> None:
    mkv = write_video(tmp_path / "full.mkv", synthetic_clip(40, 180, 320)).read_bytes()
    (tmp_path / "short.mkv").write_bytes(mkv[: len(mkv) // 2])
    done = cli(str(tmp_path / "short.mkv"), "--out", str(tmp_path / "out"), *TINY)
    assert done.returncode == 0, done.stderr
    assert "note: short.mkv ended after" in done.stderr and "Warning" not in done.stderr
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert any("seems truncated" in n for n in summary["source_notes"])


def test_poor_b_a_mixed_size_image_folder_records_each_frame_size(tiny_model, tmp_path: Path) -> None:
    folder = tmp_path / "images"
    folder.mkdir()
    Image.fromarray(synthetic_clip(1, 180, 320)[0]).save(folder / "a.png")
    Image.fromarray(synthetic_clip(1, 240, 240)[0]).save(folder / "b.png")
    list(Session(folder, h3r.RunOptions(precision="fp32"), tmp_path / "out", models=tiny_model).run())
    intrinsics = json.loads((tmp_path / "out" / "intrinsics.json").read_text())
    assert intrinsics["sizes_vary"] is True
    assert [(f["model"]["width"], f["model"]["height"]) for f in intrinsics["frames"]] == [(512, 288), (512, 384)]
    assert [(f["source"]["width"], f["source"]["height"]) for f in intrinsics["frames"]] == [(320, 180), (240, 240)]


def test_poor_c_d_e_f_n_problems_are_one_line_before_the_model_loads(clip, tmp_path: Path) -> None:
    a_file = tmp_path / "taken"
    a_file.write_text("a file, not a folder")
    offline = {"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}  # the default model cannot load here
    cases = [
        (["7"], "error: camera 7 could not be opened"),
        ([str(clip), "--out", str(a_file)], "exists and is not a folder"),
        ([str(clip), "--confidence-threshold", "nan"], "confidence_threshold must be a finite number"),
        ([str(clip), "--device", "bogus"], "unknown device 'bogus'; available here: cpu"),
        ([str(clip), "--precision", "fp16"], "fp16 is for GPUs"),
        ([str(clip), "--size", "4000"], "size must be between 32 and 2048"),
    ]
    if not torch.cuda.is_available():
        cases.append(([str(clip), "--device", "cuda"], "device 'cuda' is not available"))
    for args, message in cases:
        out = [] if "--out" in args else ["--out", str(tmp_path / "o")]
        done = cli(*args, *out, "--quiet", env=offline)
        assert done.returncode == 2, (args, done.stderr)
        lines = [ln for ln in done.stderr.splitlines() if ln.strip() and not ln.startswith("note:")]
        assert lines == [lines[0]] and message in lines[0], (args, done.stderr)  # one line, and not the weights'
        assert "[ WARN" not in done.stderr and "Traceback" not in done.stderr


def test_poor_g_old_format_pickles_are_refused_without_suggesting_to_run_them(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "legacy.pth"
    torch.save({"model": {"w": torch.zeros(2)}, "args": Payload(marker)}, path, _use_new_zipfile_serialization=False)
    with pytest.raises(CheckpointError) as err:
        read_checkpoint(path)
    assert "posix.system" in str(err.value) and "weights_only" not in str(err.value) and not marker.exists()


def test_poor_i_non_images_in_a_frame_list_say_what_they_are() -> None:
    for item, what in ((None, "NoneType"), ("a.png", "str"), ({"rgb": 1}, "dict"), (b"\x00" * 10, "bytes")):
        with pytest.raises(SourceError, match=f"frame 1 is a {what}, not an image"):
            list(frames([np.zeros((80, 100, 3), np.uint8), item]))


def test_poor_m_the_tracks_kept_and_written_are_capped(tiny_model, tmp_path: Path) -> None:
    options = h3r.RunOptions(precision="fp32", max_tracks=2, reset_interval=2)
    clip = synthetic_clip(12, 180, 320, seed=4)
    session = Session(clip, options, tmp_path / "out", models=tiny_model)
    list(session.run())
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    files = list((tmp_path / "out" / "smplx").glob("track_*.npz"))
    assert len({f.name.split("_")[1] for f in files}) == len(summary["tracks"]) <= 2  # one file per stretch of a track
    assert summary["tracks_dropped"] > 0 and any("max_tracks" in n for n in summary["notes"])
