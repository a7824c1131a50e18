"""Clips per hour of ``batch`` with 1 and 2 workers (or more), side by side on the same clips, in one run.

    python benchmarks/batch_scaling.py [--model tiny-random] [--size 128] [--clips 6] [--frames 8]
                                       [--workers 1 2] [--device auto] [--gpus-per-task F] [--repeats 1]

One local Ray (all the cores this process may use, and the GPUs Ray finds) runs the same clips (copies
of the bundled astronaut example, ``--frames`` each) through :func:`human3r_demo.batch.run_batch` once per
worker count, into a fresh folder each time; with ``--repeats`` > 1 the worker counts take turns (the
machines are noisy: compare within a run). A warm-up batch of one clip runs first and is not counted (the first
load of a model may fill the checkpoint cache). The wall time is the batch's, workers' start and model
loading included (what a user waits for); the "models loaded" columns leave each worker's first clip out. On a CPU the
cores are split between the workers (workers x threads = cores); on a GPU node a worker takes one GPU
unless ``--gpus-per-task`` packs several on one. The load average (``/proc/loadavg``) is printed before and
after: other work on the machine slows both columns.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

EXAMPLE = REPO / "data" / "examples" / "astronaut_camera_move.mp4"


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def steady_clips_per_hour(report) -> float | None:
    """Clips per hour once the models are loaded: per worker, 3600 / the median seconds of its clips after its
    first (the longest one is the one that loaded the model); ``None`` when no worker ran two clips."""
    by_worker: dict[str, list[float]] = {}
    for record in report.records:
        by_worker.setdefault(record.worker, []).append(record.seconds)
    rates = [3600 / statistics.median(sorted(times)[:-1]) for times in by_worker.values() if len(times) > 1]
    return sum(rates) if rates else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="tiny-random", help="tiny-random, random:<variant> or a checkpoint")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--clips", type=int, default=6)
    parser.add_argument("--frames", type=int, default=8, help="frames of each clip")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--gpus-per-task", type=float, default=None)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--source", type=Path, default=EXAMPLE, help="the clip copied --clips times")
    args = parser.parse_args()

    import ray

    from human3r_demo.batch import BatchJob, plan_workers, run_batch, start_local_ray
    from human3r_demo.options import RunOptions

    warnings.simplefilter("ignore")
    options = RunOptions(model=args.model, size=args.size, device=args.device, max_frames=args.frames)
    work = Path(tempfile.mkdtemp(prefix="batch_scaling_"))
    clips = []
    for i in range(args.clips):
        clip = work / "clips" / f"clip_{i:02d}{args.source.suffix}"
        clip.parent.mkdir(parents=True, exist_ok=True)
        clip.symlink_to(args.source.resolve())
        clips.append(BatchJob(clip))
    load_before = load_average()
    start_local_ray()
    nodes = [n["Resources"] for n in ray.nodes() if n.get("Alive")]
    use_gpu = options.device != "cpu" and bool(sum(n.get("GPU", 0) for n in nodes))
    rows: dict[int, list[tuple[float, int, str, float | None]]] = {w: [] for w in args.workers}
    try:
        # not counted: the first load of a model can fill the checkpoint cache (a converted or generated
        # checkpoint), which would make whichever worker count runs first look slower
        warmup = run_batch(clips[:1], options, work / "warmup", workers=1, progress=False)
        if not warmup.ok:
            raise SystemExit(f"the warm-up failed: {warmup.summary_line}")
        for repeat in range(args.repeats):
            for workers in args.workers:
                out = work / f"out_{workers}_{repeat}"
                report = run_batch(clips, options, out, workers=workers, gpus_per_task=args.gpus_per_task, progress=False)
                if not report.ok:
                    raise SystemExit(f"the batch with {workers} worker(s) failed: {report.summary_line}")
                frames = sum(r.frames for r in report.records)
                rows[workers].append((report.seconds, frames, report.records[0].device or "?", steady_clips_per_hour(report)))
    finally:
        ray.shutdown()
    cores = sum(int(n.get("CPU", 0)) for n in nodes)
    gpus = sum(n.get("GPU", 0) for n in nodes)
    print(f"\n{args.model}, --size {args.size}, {args.clips} clips x {args.frames} frames of {args.source.name}; "
          f"{cores} CPU core(s), {gpus:g} GPU(s); {args.repeats} run(s) per worker count, median shown")
    print(f"load average (1/5/15 min) before: {load_before}; after: {load_average()}")
    print(f"warm-up (one clip, one worker, not counted): {warmup.seconds:.1f} s\n")
    print(f"| workers | threads each | GPUs each | device | wall s | clips/hour | frames/s | scaling vs {args.workers[0]} "
          "| clips/hour, models loaded | scaling, models loaded |")
    print("|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|")
    base = steady_base = None
    for workers in args.workers:
        plan = plan_workers(nodes, workers=min(workers, args.clips), gpus_per_task=args.gpus_per_task, use_gpu=use_gpu)
        seconds = statistics.median(r[0] for r in rows[workers])
        frames, device = rows[workers][0][1], rows[workers][0][2]
        steady = [r[3] for r in rows[workers] if r[3] is not None]
        steady = statistics.median(steady) if steady else None
        per_hour = args.clips / seconds * 3600
        base = base or per_hour
        steady_base = steady_base or steady
        steady_text = (f"{steady:.0f} | {steady / steady_base:.2f}x" if steady and steady_base else "n/a | n/a")
        print(f"| {workers} | {plan.threads} | {plan.gpus:g} | {device} | {seconds:.1f} | {per_hour:.0f} | "
              f"{frames / seconds:.2f} | {per_hour / base:.2f}x | {steady_text} |")
    print("\nclips/hour: the whole batch, workers' start and model loading included; 'models loaded': each worker's\n"
          "clips after its first (the first one loads the model), the sum over the workers of 3600 / median seconds per clip")
    print(f"\n(on {os.uname().nodename}; run folders in {work})")


if __name__ == "__main__":
    main()
