"""Where the time goes: a stream of frames through a real-size variant, stage by stage, precisions side by side.

    python benchmarks/speed.py [--variant human3r_672S] [--precision fp32 auto] [--frames 8] [--device cpu]
                               [--size 512] [--all-heads] [--compile] [--no-prefetch] [--source clip.mp4] [--json out.json]

Each precision runs in its own process (so peak memory is its own), one after another in one run of
this script (the machines are noisy: compare within a run). A process builds ``random:<variant>``
(real size, seeded random weights) and streams the frames twice through the same code as the CLI:

1. instrumented: every stage timed (forward hooks on the modules; CUDA synchronised around each),
   with ``torch.utils.flop_counter`` for the model stages' GFLOP (attention included: the counter
   has no formula for PyTorch's fused CPU attention kernel, so one is given here);
2. plain: end-to-end time per frame, decode to ``FrameResult`` (and to the exports and the viewer);
3. the machine's peak: a large float32 and a large bfloat16 matrix product, timed in the same
   process right after the stream; each stage's and the whole frame's GFLOP/s are printed as a
   share of the peak of the run's precision.

The first frames are warm-up (reported apart); the table gives medians over the rest. The fast path's
error is measured against the float32 run on the same frames. The default source is the bundled
astronaut clip scaled to 1920x1080 (so decoding and resizing cost what a real video costs).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections import defaultdict
from contextlib import contextmanager
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

MODEL_STAGES = ["CUT3R encoder", "DINOv2", "detection + prompts", "pose memory", "decoders", "camera head",
                "DPT self", "final_transform + DPT cross", "DPT rgb", "SMPL-X regressor", "model glue"]
STREAM_STAGES = ["decode", "preprocess", *MODEL_STAGES, "body model", "tracking", "post-processing", "logging", "export"]
WARMUP = 2


# ---------------------------------------------------------------------- the worker (one precision, one process)
def worker(args: argparse.Namespace) -> dict:
    import rerun as rr
    import torch

    import human3r_demo as h3r
    from human3r_demo import stream as stream_module
    from human3r_demo.export import Exporter
    from human3r_demo.io import prefetch
    from human3r_demo.viz.rerun import RerunLogger

    warnings.simplefilter("ignore")
    cuda = args.device.startswith("cuda")

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize()

    load_before = _load()
    start = time.perf_counter()
    model = h3r.load_model(f"random:{args.variant}", device=args.device, precision=args.precision)
    build_s = time.perf_counter() - start
    rss_after_build = _peak_rss_gib()
    body = h3r.BodyModel(args.smplx, device=model.device) if args.smplx else None
    faces = body.faces if body is not None else None
    dense = ("self", "cross", "rgb") if args.all_heads else ("self",)
    threshold = args.threshold or people_threshold(model, args.source, args.size, args.people)
    options = h3r.RunOptions(size=args.size, reset_interval=None, detection_threshold=threshold)
    runner = torch.compile(model) if args.compile else model
    recording = rr.RecordingStream("speed", recording_id="speed")
    recording.set_sinks(rr.FileSink(os.devnull))  # logged and encoded as for a viewer, then discarded

    def stream(recon):
        """FrameResults, produced the way the session engine produces them."""
        source = h3r.frames(args.source, max_frames=args.frames)
        for frame in (iter(source) if args.no_prefetch else prefetch(source)):
            if args.all_heads:
                yield recon.trace(frame.rgb, frame.index, frame.timestamp, dense_heads=dense)[0]
            else:
                yield recon.process(frame.rgb, frame.index, frame.timestamp)

    # ---- pass 1: every stage timed
    current: dict[str, float] = defaultdict(float)

    @contextmanager
    def timed(stage: str):
        sync()
        t0 = time.perf_counter()
        try:
            yield
        finally:
            sync()
            current[stage] += (time.perf_counter() - t0) * 1000

    def wrap(owner, name: str, stage: str):
        original = getattr(owner, name)

        def timed_call(*a, **k):
            with timed(stage):
                return original(*a, **k)
        setattr(owner, name, timed_call)
        return lambda: setattr(owner, name, original)

    handles, restore = [], []
    for module, stage in ((model.encoder, "CUT3R encoder"), (model.human_encoder, "DINOv2"),
                          (model.human_detector, "detection + prompts"), (model.prompt_fusion, "detection + prompts"),
                          (model.decoder, "decoders"), (model.camera_head, "camera head"),
                          (model.dense_heads.dpt_self, "DPT self"), (model.dense_heads.dpt_cross, "final_transform + DPT cross"),
                          (model.dense_heads.final_transform, "final_transform + DPT cross"), (model.dense_heads.dpt_rgb, "DPT rgb"),
                          (model.smplx_head, "SMPL-X regressor"), (model, "model total")):
        handles += timing_hooks(module, stage, sync, current)
    restore += [wrap(model.pose_memory, "inquire", "pose memory"), wrap(model.pose_memory, "update", "pose memory"),
                wrap(stream_module, "prepare_frame", "preprocess")]
    recon = h3r.Reconstructor(runner, options, body_model=body)
    wrap(recon.tracker, "update", "tracking")
    wrap(recon, "_postprocess", "post-processing (with body model)")
    if recon.body is not None:
        wrap(recon.body.layer, "forward", "body model")
    logger = RerunLogger(recording, faces, options)
    exporter = Exporter(tempfile.mkdtemp(prefix="h3r_speed_"), fps=10.0, body=body, options=options)
    times: dict[str, list[float]] = defaultdict(list)
    outputs, compile_s = [], None
    results = stream(recon)
    while True:
        current.clear()
        t0 = time.perf_counter()
        try:
            result = next(results)
        except StopIteration:
            break
        if compile_s is None and args.compile:
            compile_s = time.perf_counter() - t0
        # what the frame cost beyond the timed stages: waiting for the decoder
        current["decode"] = (time.perf_counter() - t0) * 1000 - current["model total"] - current["preprocess"] \
            - current["tracking"] - current["post-processing (with body model)"]
        with timed("logging"):
            logger.log(result)
        with timed("export"):
            exporter.add(result)
        current["post-processing"] = current.pop("post-processing (with body model)") - current.get("body model", 0.0)
        current["model glue"] = current["model total"] - sum(current[s] for s in MODEL_STAGES if s != "model glue")
        for stage, ms in current.items():
            times[stage].append(ms)
        outputs.append(result)
    exporter.close()
    for handle in handles:
        handle.remove()
    for undo in restore:
        undo()

    # ---- pass 2: end to end, nothing instrumented
    recon = h3r.Reconstructor(runner, options, body_model=body)
    logger = RerunLogger(recording, faces, options)
    exporter = Exporter(tempfile.mkdtemp(prefix="h3r_speed_"), fps=10.0, body=body, options=options)
    e2e, e2e_full = [], []
    results = stream(recon)
    while True:
        sync()
        t0 = time.perf_counter()
        try:
            result = next(results)
        except StopIteration:
            break
        sync()
        t1 = time.perf_counter()
        logger.log(result)
        exporter.add(result)
        e2e.append((t1 - t0) * 1000)
        e2e_full.append((time.perf_counter() - t0) * 1000)
    exporter.close()
    peak_rss = _peak_rss_gib()  # before counting FLOPs (a benchmark artefact, not part of the stream)
    flops = model_flops(model, outputs[-1].image, options, dense)
    peaks = matmul_peaks(args.device, sync)

    np.savez(args.out, **{f"{k}_{i}": v for i, r in enumerate(outputs) for k, v in _comparable(r).items()})
    return {
        "variant": args.variant, "precision": args.precision, "dtype": str(model.dtype).removeprefix("torch."),
        "device": _device_name(args.device), "source": args.source, "model_input": list(outputs[0].image.shape[:2]),
        "frames": len(outputs), "people": [r.num_people for r in outputs], "threshold": threshold, "build_s": build_s, "compile_s": compile_s,
        "stages": dict(times), "flops": flops, "matmul_peak_gflops": peaks, "e2e_ms": e2e, "e2e_full_ms": e2e_full,
        "peak_rss_gib": peak_rss, "rss_after_build_gib": rss_after_build,
        "cuda_max_gib": torch.cuda.max_memory_allocated() / 2**30 if cuda else None,
        "date": time.strftime("%Y-%m-%d"), "torch": torch.__version__, "load_before": load_before, "load_after": _load(),
    }


def interleaved(args: argparse.Namespace) -> dict:
    """End to end, every precision's model in this one process, frame by frame in turn.

    The machines are shared: a burst of other work during one precision's run and not the
    other's moves a ratio measured by separate runs. Here each frame goes through every model
    before the next frame, so noise falls on all of them alike; the ratio of medians is the figure.
    Frames are decoded once up front (decoding costs 4 ms of a 1080p frame; the per-process runs
    above time it).
    """
    import torch

    import human3r_demo as h3r

    warnings.simplefilter("ignore")
    cuda = args.device.startswith("cuda")
    load_before = _load()
    frames = list(h3r.frames(args.source, max_frames=args.interleaved))
    models = {p: h3r.load_model(f"random:{args.variant}", device=args.device, precision=p) for p in args.precision}
    threshold = args.threshold or people_threshold(models[args.precision[0]], args.source, args.size, args.people)
    options = h3r.RunOptions(size=args.size, reset_interval=None, detection_threshold=threshold)
    recons = {p: h3r.Reconstructor(model, options) for p, model in models.items()}
    times: dict[str, list[float]] = {p: [] for p in args.precision}
    for frame in frames:
        for precision, recon in recons.items():
            if cuda:
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            recon.process(frame.rgb, frame.index, frame.timestamp)
            if cuda:
                torch.cuda.synchronize()
            times[precision].append((time.perf_counter() - t0) * 1000)
    return {"times_ms": times, "load_before": load_before, "load_after": _load(), "frames": len(frames),
            "device": _device_name(args.device), "variant": args.variant}


def people_threshold(model, source: str, size: int, people: int) -> float:
    """A detection threshold at which the untrained model finds about ``people`` heads in the first frame.

    Random detectors score every token nearly alike, so which image shows how many "people" at the
    reference's 0.3 is arbitrary; people cost time (prompts, SMPL-X, the body model, tracking), so the
    benchmark sets the threshold halfway between the ``people``-th and next local maximum of that frame.
    """
    import torch

    import human3r_demo as h3r
    from human3r_demo.model.detection import nms3x3, squash_probability
    from human3r_demo.preprocess import prepare_frame

    inputs = prepare_frame(next(h3r.frames(source)).rgb, size, model.config.mhmr_img_res)
    with torch.inference_mode():
        tokens = model.human_encoder(model.normalize_mhmr(inputs.image_mhmr.to(model.device)).to(model.dtype))
        g = model.config.mhmr_grid
        scores = squash_probability(model.human_detector.score_mlp(tokens.float())).reshape(1, 1, g, g)
        peaks = nms3x3(scores).flatten().sort(descending=True).values.cpu()
    return float((peaks[people - 1] + peaks[people]) / 2)


def timing_hooks(module, stage: str, sync, current: dict[str, float]) -> list:
    """Forward hooks that add the module's wall time (ms) to ``current[stage]``."""
    starts: list[float] = []

    def before(m, inputs) -> None:
        sync()
        starts.append(time.perf_counter())

    def after(m, inputs, output) -> None:
        sync()
        current[stage] += (time.perf_counter() - starts.pop()) * 1000

    return [module.register_forward_pre_hook(before), module.register_forward_hook(after)]


def matmul_peaks(device: str, sync, n: int = 4096, repeats: int = 4) -> dict[str, float]:
    """GFLOP/s of an ``n x n`` by ``n x n`` matrix product in float32 and in bfloat16 (best of ``repeats``)."""
    import torch

    peaks = {}
    for name, dtype in (("float32", torch.float32), ("bfloat16", torch.bfloat16)):
        a, b = (torch.randn(n, n, generator=torch.Generator().manual_seed(i)).to(device=device, dtype=dtype) for i in (0, 1))
        a @ b  # warm-up
        best = float("inf")
        for _ in range(repeats):
            sync()
            t0 = time.perf_counter()
            a @ b
            sync()
            best = min(best, time.perf_counter() - t0)
        peaks[name] = 2 * n**3 / best / 1e9
    return peaks


def attention_flop(query_shape, key_shape, value_shape, *args, **kwargs) -> int:
    """FLOPs of ``softmax(q k^T) v``: two products, ``2 B h N M (Dh + Dv)`` (the softmax not counted)."""
    B, h, N, Dh = query_shape
    M, Dv = key_shape[-2], value_shape[-1]
    return 2 * B * h * N * M * (Dh + Dv)


def model_flops(model, rgb: np.ndarray, options, dense) -> dict[str, float]:
    """GFLOP of each model stage on one frame (torch.utils.flop_counter, module hierarchy).

    Attention counts ``4 B h N M Dh`` with either kernel: the blocked kernel's products are counted
    as the matrix products they are; the fused CPU kernel gets the same formula (the counter has
    none for it: the figures before 2026-12-06 left attention out, about 20 % of a 672S frame).
    """
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from human3r_demo.model.square_view import pad_to_square
    from human3r_demo.preprocess import to_model_range

    image = to_model_range(rgb).to(model.device)
    state = model.initial_state()
    state.fresh = False  # a steady frame: the pose memory is read and the gate computed
    fused_cpu = {torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: attention_flop}
    with torch.inference_mode(), FlopCounterMode(display=False, custom_mapping=fused_cpu) as counter:
        model(image, pad_to_square(image, model.config.mhmr_img_res), state, dense_heads=dense)
    counts = counter.get_flop_counts()

    def total(*names: str) -> float:
        return sum(sum(counts.get(f"Human3R.{n}", {}).values()) for n in names) / 1e9

    return {
        "CUT3R encoder": total("encoder"), "DINOv2": total("human_encoder"),
        "detection + prompts": total("human_detector", "prompt_fusion"),
        # inquire/update are methods, not forward: count the blocks they call
        "pose memory": sum(sum(v.values()) for k, v in counts.items()
                           if re.fullmatch(r"Human3R\.pose_memory\.(proj_q|(read|write)_blocks\.\d+)", k)) / 1e9,
        "decoders": total("decoder"), "camera head": total("camera_head"), "DPT self": total("dense_heads.dpt_self"),
        "final_transform + DPT cross": total("dense_heads.dpt_cross", "dense_heads.final_transform"),
        "DPT rgb": total("dense_heads.dpt_rgb"), "SMPL-X regressor": total("smplx_head"),
        "model total": sum(counts.get("Human3R", {}).values()) / 1e9,
    }


def _comparable(result) -> dict[str, np.ndarray]:
    T = result.camera_to_world
    cam = (result.points - T[:3, 3]) @ T[:3, :3]  # world -> camera frame
    people = result.people
    return {
        "points_cam": cam.astype(np.float32), "pose": T, "focal": np.float64(result.focal),
        "cells": np.array([p.head_uv for p in people], np.float32).reshape(-1, 2),
        "rotvec": np.array([p.rotvec for p in people], np.float32).reshape(-1, 53, 3),
        "betas": np.array([p.betas for p in people], np.float32).reshape(-1, 10),
        "head": np.array([p.head_position for p in people], np.float32).reshape(-1, 3),
    }


def _load() -> str:
    """The 1, 5 and 15 minute load averages (``uptime``): how busy the machine was."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def _device_name(device: str) -> str:
    import torch

    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    name = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                 if line.startswith("model name")), "CPU") if Path("/proc/cpuinfo").exists() else "CPU"
    from human3r_demo.device import cpu_has_native_bf16

    return f"{name}, {torch.get_num_threads()} threads, native bf16: {'yes' if cpu_has_native_bf16() else 'no'}"


# ---------------------------------------------------------------------- the parent: runs, comparison, table
def fast_path_error(reference: Path, candidate: Path, frames: int) -> dict[str, float]:
    a, b = np.load(reference), np.load(candidate)
    rel, trans, rot, focal, mismatched, rotvec, betas, head = [], [], [], [], 0, [0.0], [0.0], [0.0]
    for i in range(frames):
        p, q = a[f"points_cam_{i}"], b[f"points_cam_{i}"]
        rel.append(float(np.linalg.norm(q - p) / np.linalg.norm(p)))
        Ta, Tb = a[f"pose_{i}"], b[f"pose_{i}"]
        trans.append(float(np.linalg.norm(Ta[:3, 3] - Tb[:3, 3])))
        cos = np.clip((np.trace(Ta[:3, :3].T @ Tb[:3, :3]) - 1) / 2, -1, 1)
        rot.append(float(np.degrees(np.arccos(cos))))
        focal.append(float(abs(b[f"focal_{i}"] - a[f"focal_{i}"]) / max(abs(a[f"focal_{i}"]), 1e-9)))
        ca, cb = a[f"cells_{i}"], b[f"cells_{i}"]
        if ca.shape != cb.shape or np.abs(ca - cb).max(initial=0) > 2.0:
            mismatched += 1
            continue
        if len(ca):
            rotvec.append(float(np.abs(a[f"rotvec_{i}"] - b[f"rotvec_{i}"]).max()))
            betas.append(float(np.abs(a[f"betas_{i}"] - b[f"betas_{i}"]).max()))
            head.append(float(np.abs(a[f"head_{i}"] - b[f"head_{i}"]).max()))
    return {"point maps, relative (max over frames)": max(rel), "camera translation (m)": max(trans),
            "camera rotation (deg)": max(rot), "focal, relative": max(focal),
            "frames whose detections differ": mismatched,
            "SMPL-X rotations (rad, max)": max(rotvec), "SMPL-X betas (max)": max(betas), "head position (m, max)": max(head)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variant", default="human3r_672S")
    parser.add_argument("--precision", nargs="+", default=["fp32", "auto"],
                        help="runs to compare, the first is the error reference; a run may add +noprefetch, +compile, +allheads")
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--source", default=None, help="a video (default: the astronaut example at 1920x1080)")
    parser.add_argument("--smplx", default=None, help="SMPL-X file for the body model stage (default: the test stand-in)")
    parser.add_argument("--people", type=int, default=2, help="set the untrained detector to find about this many people")
    parser.add_argument("--threshold", type=float, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--all-heads", action="store_true", help="also run the two DPT heads the stream does not use")
    parser.add_argument("--compile", action="store_true", help="torch.compile the model (compile time reported apart)")
    parser.add_argument("--no-prefetch", action="store_true", help="decode in the main thread")
    parser.add_argument("--interleaved", type=int, default=0, metavar="FRAMES",
                        help="also time end to end with all precisions in one process, frame by frame in turn")
    parser.add_argument("--only-interleaved", action="store_true",
                        help="only that (--frames frames), no per-stage runs: the ratio when time is short")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument("--table", type=Path, default=None, help="print the table of an earlier --json and stop")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.table:
        print(table(json.loads(args.table.read_text())))
        return
    if args.worker:
        if args.interleaved:
            print("RESULT " + json.dumps(interleaved(args)))
            return
        args.precision = args.precision[0]
        print("RESULT " + json.dumps(worker(args)))
        return

    work = Path(tempfile.mkdtemp(prefix="h3r_speed_"))
    if args.source is None:
        args.source = str(make_hd_clip(work / "astronaut_1080p.mp4", args.frames))
    if args.smplx is None:
        sys.path.insert(0, str(REPO))
        from tests.smplx_standin import write

        args.smplx = str(write(work / "smplx"))
    if args.only_interleaved:
        print(interleaved_summary(run_interleaved(args, None)))
        return
    runs = []
    for run in args.precision:
        precision, *flags = run.split("+")  # e.g. auto+noprefetch, auto+compile
        out = work / f"{run}.npz"
        cmd = [sys.executable, __file__, "--worker", "--out", str(out), "--variant", args.variant, "--precision", precision,
               "--frames", str(args.frames), "--size", str(args.size), "--device", args.device, "--source", args.source,
               "--smplx", args.smplx, "--people", str(args.people)] \
            + (["--threshold", str(runs[0]["threshold"])] if runs else []) \
            + (["--all-heads"] if args.all_heads or "allheads" in flags else []) \
            + (["--compile"] if args.compile or "compile" in flags else []) \
            + (["--no-prefetch"] if args.no_prefetch or "noprefetch" in flags else [])
        print(f"running {args.variant} {run} on {args.device} ...", file=sys.stderr, flush=True)
        done = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, PYTHONWARNINGS="ignore"))
        line = next((ln for ln in done.stdout.splitlines() if ln.startswith("RESULT ")), None)
        if line is None:
            sys.exit(f"the {precision} run failed:\n{done.stderr[-3000:]}")
        info = json.loads(line[len("RESULT "):])
        info["npz"], info["precision"] = str(out), run
        runs.append(info)
    for info in runs[1:]:
        info["error_vs_" + runs[0]["precision"]] = fast_path_error(Path(runs[0]["npz"]), Path(info["npz"]), info["frames"])
    if args.interleaved:
        runs[0]["interleaved"] = run_interleaved(args, runs[0]["threshold"])
    (work / "runs.json").write_text(json.dumps(runs, indent=1))
    if args.json:
        args.json.write_text(json.dumps(runs, indent=1))
    print(table(runs))


def run_interleaved(args: argparse.Namespace, threshold: float | None) -> dict:
    """:func:`interleaved` in a fresh process (its own memory, as the per-precision runs)."""
    plain = [run.split("+")[0] for run in args.precision]
    print(f"running {args.variant} {' and '.join(plain)} interleaved on {args.device} ...", file=sys.stderr, flush=True)
    cmd = [sys.executable, __file__, "--worker", "--interleaved", str(args.interleaved or args.frames), "--variant", args.variant,
           "--precision", *plain, "--size", str(args.size), "--device", args.device, "--source", args.source,
           "--people", str(args.people)] + (["--threshold", str(threshold)] if threshold is not None else [])
    done = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, PYTHONWARNINGS="ignore"))
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("RESULT ")), None)
    if line is None:
        sys.exit(f"the interleaved run failed:\n{done.stderr[-3000:]}")
    return json.loads(line[len("RESULT "):])


def interleaved_summary(inter: dict) -> str:
    """One line: each precision's median end-to-end time when run in turn, and their ratio."""
    def med(values: list[float]) -> float:
        return statistics.median(values[WARMUP:] if len(values) > WARMUP else values)

    medians = {p: med(t) for p, t in inter["times_ms"].items()}
    names = list(medians)
    return (f"- **interleaved in one process** ({inter['variant']}, {inter['device']}; {inter['frames']} frames, each "
            f"through every model in turn, medians after {WARMUP}; load average {inter['load_before']} before, "
            f"{inter['load_after']} after): " + ", ".join(f"{p} {ms:.0f} ms/frame" for p, ms in medians.items())
            + (f"; **{names[0]} / {names[-1]} = {medians[names[0]] / medians[names[-1]]:.2f}x**" if len(names) > 1 else "")
            + "; per frame: " + "; ".join(", ".join(f"{inter['times_ms'][p][i]:.0f}" for p in names)
                                          for i in range(inter["frames"])))


def make_hd_clip(path: Path, frames: int) -> Path:
    import av
    from PIL import Image

    import human3r_demo as h3r

    container = av.open(str(path), "w")
    stream = container.add_stream("libx264", rate=10)
    stream.width, stream.height, stream.pix_fmt = 1920, 1080, "yuv420p"
    for frame in h3r.frames(REPO / "data" / "examples" / "astronaut_camera_move.mp4", max_frames=frames):
        big = np.asarray(Image.fromarray(frame.rgb).resize((1920, 1080), Image.BICUBIC))
        for packet in stream.encode(av.VideoFrame.from_ndarray(big, format="rgb24")):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
    container.close()
    return path


def table(runs: list[dict]) -> str:
    """The stage table (markdown) and the end-to-end, memory and error lines."""

    def med(values: list[float]) -> float:
        return statistics.median(values[WARMUP:] if len(values) > WARMUP else values)

    first = runs[0]
    lines = [f"{first['variant']}, {first['device']}, torch {first['torch']}, {first['date']}; model input "
             f"{first['model_input'][1]}x{first['model_input'][0]} from {Path(first['source']).name}; {first['frames']} frames, "
             f"medians after {WARMUP} warm-up frames; people per frame {first['people']}", ""]
    for r in runs:
        peaks = r["matmul_peak_gflops"]
        lines.append(f"- {r['precision']} run: matrix-product peak {peaks['float32']:.0f} GFLOP/s float32, "
                     f"{peaks['bfloat16']:.0f} bfloat16 (4096^3, best of 4, right after the stream); "
                     f"load average {r['load_before']} before, {r['load_after']} after")
    lines.append("")
    header = "| stage | GFLOP |" + "".join(f" {r['precision']} ({r['dtype']}) ms | share | GFLOP/s | of peak |" for r in runs)
    header += " speed-up |" if len(runs) > 1 else ""
    lines += [header, "|" + "---|" * (2 + 4 * len(runs) + (len(runs) > 1))]
    totals = [sum(med(r["stages"][s]) for s in STREAM_STAGES if s in r["stages"]) for r in runs]
    for stage in STREAM_STAGES:
        if not all(stage in r["stages"] and med(r["stages"][stage]) > 0.005 for r in runs):
            continue
        gflop = first["flops"].get(stage)
        cells = f"| {stage} | {gflop:.1f} |" if gflop else f"| {stage} | |"
        values = [med(r["stages"][stage]) for r in runs]
        for r, ms, total in zip(runs, values, totals):
            rate = f"{gflop / (ms / 1000):.0f} | {100 * gflop / (ms / 1000) / _peak(r):.0f} %" if gflop else " |"
            cells += f" {ms:.1f} | {100 * ms / total:.1f} % | {rate} |"
        if len(runs) > 1:
            cells += f" {values[0] / values[-1]:.2f}x |"
        lines.append(cells)
    model_gflop = first["flops"]["model total"]
    lines.append("| **all stages** | " + f"{model_gflop:.1f} |"
                 + "".join(f" **{t:.0f}** | 100 % | {model_gflop / (t / 1000):.0f} | **{100 * model_gflop / (t / 1000) / _peak(r):.0f} %** |"
                           for r, t in zip(runs, totals))
                 + (f" {totals[0] / totals[-1]:.2f}x |" if len(runs) > 1 else ""))
    lines.append("")
    for r in runs:
        model_ms = sum(med(r["stages"][s]) for s in MODEL_STAGES if s in r["stages"])
        e2e, full = med(r["e2e_ms"]), med(r["e2e_full_ms"])
        lines.append(
            f"- {r['precision']} ({r['dtype']}): end to end **{e2e:.0f} ms/frame ({1000 / e2e:.2f} FPS**, {1000 * model_gflop / e2e:.0f} "
            f"GFLOP/s, {1e5 * model_gflop / e2e / _peak(r):.0f} % of the peak) from decoding to the "
            f"FrameResult, {full:.0f} ms with viewer logging and exports; the model stages sum to {model_ms:.0f} ms, so end "
            f"to end is {100 * (e2e / model_ms - 1):+.1f} % of the model; peak RSS {r['peak_rss_gib']:.2f} GiB "
            f"({r['rss_after_build_gib']:.2f} after building the model)"
            + (f"; peak CUDA memory {r['cuda_max_gib']:.2f} GiB" if r["cuda_max_gib"] is not None else "")
            + f"; model built in {r['build_s']:.1f} s" + (f"; first (compiling) frame {r['compile_s']:.0f} s" if r["compile_s"] else ""))
    if len(runs) > 1:
        speed = med(runs[0]["e2e_ms"]) / med(runs[-1]["e2e_ms"])
        lines.append(f"- end-to-end speed-up of {runs[-1]['precision']} over {runs[0]['precision']}: **{speed:.2f}x**")
        for r in runs[1:]:
            err = r["error_vs_" + runs[0]["precision"]]
            lines.append(f"- {r['precision']} against {runs[0]['precision']} on the same frames: "
                         + "; ".join(f"{k} {v:.3g}" for k, v in err.items()))
    if "interleaved" in first:
        lines.append(interleaved_summary(first["interleaved"]))
    return "\n".join(lines)


def _peak(run: dict) -> float:
    """The matrix-product peak of the run's compute dtype (GFLOP/s)."""
    return run["matmul_peak_gflops"]["bfloat16" if run["dtype"] == "bfloat16" else "float32"]


if __name__ == "__main__":
    main()
