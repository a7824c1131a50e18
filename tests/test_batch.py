"""``python -m human3r_demo batch`` and :func:`human3r_demo.batch.run_batch` on a local Ray of 2 CPUs.

The Ray tests share one local Ray (started and stopped by a module fixture, which also checks that no
Ray process outlives it), four small clips written here and one broken file. Every run folder is compared
with what ``run`` writes for the same clip alone, with the same one torch thread a batch worker gets on
two cores (more threads change the floating-point sums, and random weights amplify that).
"""

from __future__ import annotations

import csv
import json
import os
import signal
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

from human3r_demo.batch import (
    BatchError,
    BatchJob,
    ClipEvent,
    expand_inputs,
    fingerprint,
    finished_run,
    name_jobs,
    plan_workers,
    run_batch,
)
from human3r_demo.cli import main
from human3r_demo.options import RunOptions
from tests.conftest import synthetic_clip
from tests.media import write_video

MODEL = ["--model", "tiny-random", "--device", "cpu", "--size", "64"]
OPTIONS = RunOptions(model="tiny-random", device="cpu", size=64)
CLIPS = {"walk": 4, "jump": 4, "wave": 4, "long": 32}  # name: frames; "long" runs long enough to be killed mid-clip
RAY_SERVICES = ("raylet", "gcs_server")


# ---------------------------------------------------------------------- no Ray needed
def test_inputs_expand_list_files_and_names_never_collide(tmp_path: Path) -> None:
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "walk.mp4").write_bytes(b"")
    (tmp_path / "walk.avi").write_bytes(b"")
    (tmp_path / "seq").mkdir()
    listing = tmp_path / "inputs.txt"
    listing.write_text("# one input a line, relative to this file\na/walk.mp4\n\nb/walk.mp4\nseq\n")
    jobs = expand_inputs([listing, tmp_path / "walk.avi", tmp_path / "a" / "walk.mp4"])  # a/walk.mp4 twice: runs once
    assert [Path(j.source).relative_to(tmp_path).as_posix() for j in jobs] == ["a/walk.mp4", "b/walk.mp4", "seq", "walk.avi"]
    names = [j.name for j in name_jobs(jobs)]
    assert len(set(names)) == 4 and names[2] == "seq"
    assert all(n.startswith("walk-") for n in names[:2] + names[3:])
    assert names == [j.name for j in name_jobs(expand_inputs([listing, tmp_path / "walk.avi"]))]  # deterministic
    with pytest.raises(BatchError, match="would both be written"):
        name_jobs([BatchJob("x.mp4", name="same"), BatchJob("y.mp4", name="same")])
    with pytest.raises(BatchError, match="not a plain folder name"):
        name_jobs([BatchJob("x.mp4", name="../escape")])
    (tmp_path / "bad.txt").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(BatchError, match="cannot read the list file"):
        expand_inputs([tmp_path / "bad.txt"])


def test_plan_fits_workers_to_cores_and_gpus() -> None:
    two_cores = plan_workers([{"CPU": 2}], workers=2, gpus_per_task=None, use_gpu=False)
    assert (two_cores.workers, two_cores.threads, two_cores.gpus) == (2, 1, 0.0)
    assert plan_workers([{"CPU": 2}], workers=None, gpus_per_task=None, use_gpu=False).workers == 1
    sixteen = plan_workers([{"CPU": 16}], workers=None, gpus_per_task=None, use_gpu=False)
    assert sixteen.workers * sixteen.threads <= 16
    # two nodes: every worker must fit on one node's cores
    mixed = plan_workers([{"CPU": 16}, {"CPU": 2}], workers=3, gpus_per_task=None, use_gpu=False)
    assert 16 // mixed.threads + 2 // mixed.threads >= 3
    with pytest.raises(BatchError, match="at least one core"):
        plan_workers([{"CPU": 2}], workers=3, gpus_per_task=None, use_gpu=False)
    gpus = plan_workers([{"CPU": 16, "GPU": 8}], workers=None, gpus_per_task=None, use_gpu=True)
    assert (gpus.workers, gpus.gpus) == (8, 1.0) and gpus.workers * gpus.threads <= 16  # one worker per GPU
    packed = plan_workers([{"CPU": 16, "GPU": 8}], workers=None, gpus_per_task=0.5, use_gpu=True)
    assert (packed.workers, packed.gpus, packed.threads) == (16, 0.5, 1)
    with pytest.raises(BatchError, match="do not fit"):
        plan_workers([{"CPU": 16, "GPU": 2}], workers=3, gpus_per_task=None, use_gpu=True)


def test_finished_means_complete_with_the_same_fingerprint(tmp_path: Path) -> None:
    clip = write_video(tmp_path / "clip.mp4", synthetic_clip(2, 48, 64))
    key = fingerprint(OPTIONS, clip)
    assert fingerprint(OPTIONS.replace(reset_interval=50), clip) != key
    assert BatchJob(clip, options_override={"reset_interval": 50}).options(OPTIONS).reset_interval == 50
    run = tmp_path / "run"
    run.mkdir()
    complete = {"generator": "human3r_demo run", "frames": 2, "stopped": False, "error": None, "batch": {"fingerprint": key}}
    for changes, finished in [({}, True), ({"stopped": True}, False), ({"error": "disk full"}, False),
                              ({"batch": {"fingerprint": "other options"}}, False), ({"generator": "someone"}, False)]:
        (run / "summary.json").write_text(json.dumps({**complete, **changes}))
        assert (finished_run(run, key) is not None) == finished, changes
    os.utime(clip, ns=(0, 0))  # the same name, another recording
    assert fingerprint(OPTIONS, clip) != key


# ---------------------------------------------------------------------- on a local Ray of 2 CPUs
def _ray_services(root: int) -> list[str]:
    """Names of the raylet / GCS processes descended from process ``root`` (read from /proc)."""
    parents, names = {}, {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            name, rest = stat[stat.index("(") + 1:stat.rindex(")")], stat[stat.rindex(")") + 2:].split()
            parents[int(entry.name)], names[int(entry.name)] = int(rest[1]), name
    def descends(pid: int) -> bool:
        while pid in parents and pid > 1:
            pid = parents[pid]
            if pid == root:
                return True
        return False
    return [names[p] for p in parents if names[p] in RAY_SERVICES and descends(p)]


@pytest.fixture(scope="module")
def local_ray():
    """A local Ray of 2 CPUs for this module; afterwards, no raylet or GCS server of it may be left."""
    ray = pytest.importorskip("ray")
    from human3r_demo.batch import start_local_ray

    assert not ray.is_initialized()
    start_local_ray(num_cpus=2)
    assert set(_ray_services(os.getpid())) == set(RAY_SERVICES)
    yield ray
    ray.shutdown()
    deadline = time.monotonic() + 20
    while _ray_services(os.getpid()) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _ray_services(os.getpid()) == [], "Ray processes outlived ray.shutdown()"


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The clips, a broken file, and ``run``'s output for each clip alone (one torch thread)."""
    import torch

    folder = tmp_path_factory.mktemp("batch_clips")
    paths = {name: write_video(folder / f"{name}.mp4", synthetic_clip(n, 96, 128, seed=i)) for i, (name, n) in enumerate(CLIPS.items())}
    paths["broken"] = folder / "broken.mp4"
    paths["broken"].write_bytes(b"this is not a video\n" * 20)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for name in CLIPS:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                assert main(["run", str(paths[name]), "--out", str(folder / "alone" / name), *MODEL, "--quiet"]) == 0
    finally:
        torch.set_num_threads(threads)
    return paths


def _assert_same_arrays(run: Path, alone: Path) -> None:
    """The same cameras (TUM text) and SMPL-X tracks (npz arrays) as ``run`` wrote for the clip alone."""
    np.testing.assert_array_equal(np.loadtxt(run / "cameras_tum.txt"), np.loadtxt(alone / "cameras_tum.txt"))
    tracks = sorted(p.name for p in (alone / "smplx").glob("*.npz"))
    assert tracks and tracks == sorted(p.name for p in (run / "smplx").glob("*.npz"))
    for track in tracks:
        with np.load(run / "smplx" / track, allow_pickle=False) as got, np.load(alone / "smplx" / track, allow_pickle=False) as want:
            assert got.files == want.files
            for key in want.files:
                np.testing.assert_array_equal(got[key], want[key], err_msg=f"{track}: {key}")


def _records(out: Path) -> dict[str, dict]:
    """batch.json and batch.csv, read with the json and csv modules; the two must agree."""
    data = json.loads((out / "batch.json").read_text())
    with open(out / "batch.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["name"] for r in rows] == [c["name"] for c in data["clips"]]
    for row, clip in zip(rows, data["clips"]):
        assert row["status"] == clip["status"] and int(row["frames"]) == clip["frames"]
        assert int(row["attempts"]) == clip["attempts"]
    assert data["summary"]["clips"] == len(rows)
    return {c["name"]: c for c in data["clips"]}


@pytest.fixture(scope="module")
def first_batch(local_ray, clips, tmp_path_factory: pytest.TempPathFactory):
    """The four clips and the broken file on 2 workers; the worker running the long clip is killed
    (SIGKILL, by its pid) after that clip's first frame."""
    out = tmp_path_factory.mktemp("batch") / "out"
    killed: list[ClipEvent] = []

    def kill_mid_clip(event: ClipEvent) -> None:
        if event.job == 0 and not killed and event.done < event.total:
            os.kill(event.worker.pid, signal.SIGKILL)
            killed.append(event)

    order = ["long", *(n for n in CLIPS if n != "long"), "broken"]  # the long clip first: its retry overlaps the others
    report = run_batch([BatchJob(clips[name]) for name in order], OPTIONS, out, workers=2, progress=False,
                       on_event=kill_mid_clip)
    return out, report, killed


def test_batch_writes_what_run_writes_and_records_the_broken_file(clips, first_batch) -> None:
    out, report, _ = first_batch
    assert not report.ok and "4 done, 1 failed" in report.summary_line
    records = _records(out)
    broken = records["broken"]
    assert broken["status"] == "failed" and "not a readable video" in broken["error"] and "\n" not in broken["error"]
    for name, frames in CLIPS.items():
        record = records[name]
        assert (record["status"], record["frames"], record["error"]) == ("done", frames, None)
        assert record["device"] == "cpu" and record["worker"] and record["fps"] > 0
        _assert_same_arrays(out / name, clips["broken"].parent / "alone" / name)
    assert len({r["worker"] for r in records.values() if r["worker"]}) >= 2  # both workers took clips
    assert sorted(p.name for p in out.iterdir()) == sorted([*CLIPS, "batch.csv", "batch.json"])  # no staging left


def test_killed_worker_loses_only_its_clip(first_batch) -> None:
    out, report, killed = first_batch
    assert killed, "the long clip never reported a frame"
    assert killed[0].worker.threads == 1  # 2 workers x 1 torch thread on 2 cores
    records = {r.name: r for r in report.records}
    assert records["long"].status == "done" and records["long"].attempts == 2
    assert records["long"].worker != killed[0].worker.name  # retried on another worker process
    assert all(records[n].attempts == 1 for n in CLIPS if n != "long")
    assert _records(out)["long"]["attempts"] == 2


def test_second_call_recomputes_nothing_and_exits_non_zero(clips, first_batch, capsys) -> None:
    out = first_batch[0]
    before = {name: (out / name / "summary.json").stat() for name in CLIPS}
    inputs = [str(clips[name]) for name in (*CLIPS, "broken")]
    rc = main(["batch", *inputs, "--out", str(out), *MODEL, "--workers", "2", "--quiet"])
    captured = capsys.readouterr()
    assert rc == 2  # the broken file is still broken, and the command says so
    assert "error: 1 of 5 clip(s) failed" in captured.err
    assert "not a readable video" in next(line for line in captured.err.splitlines() if "broken.mp4:" in line)
    assert "4 skipped, 1 failed; 0 frame(s) computed" in captured.out
    records = _records(out)
    for name in CLIPS:
        assert records[name]["status"] == "skipped" and records[name]["attempts"] == 0
        after = (out / name / "summary.json").stat()
        assert (after.st_ino, after.st_mtime_ns) == (before[name].st_ino, before[name].st_mtime_ns)


def test_ctrl_c_keeps_finished_runs_and_says_what_remains(local_ray, clips, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    order = ["walk", "long", "jump"]

    def interrupt_after_first_clip() -> None:  # Ctrl-C once the first run folder is in place
        deadline = time.monotonic() + 120
        while not (out / "walk" / "summary.json").exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        os.kill(os.getpid(), signal.SIGINT)

    watcher = threading.Thread(target=interrupt_after_first_clip, daemon=True)
    watcher.start()
    rc = main(["batch", *(str(clips[n]) for n in order), "--out", str(out), *MODEL, "--workers", "1", "--quiet"])
    watcher.join()
    err = capsys.readouterr().err
    assert rc == 130
    records = _records(out)
    assert records["walk"]["status"] == "done"
    _assert_same_arrays(out / "walk", clips["broken"].parent / "alone" / "walk")
    assert records["jump"]["status"] == "interrupted" and records["jump"]["attempts"] == 0 and not (out / "jump").exists()
    remaining = [n for n in order if records[n]["status"] == "interrupted"]
    assert f"interrupted: {len(remaining)} clip(s) not finished ({', '.join(remaining)})" in err
    if records["long"]["status"] == "interrupted" and records["long"]["frames"]:  # stopped after its current frame:
        summary = json.loads((out / "long" / "summary.json").read_text())  # complete files, marked stopped
        assert summary["stopped"] is True and summary["frames"] == records["long"]["frames"] < CLIPS["long"]
