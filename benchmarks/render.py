"""What a rendered video costs per frame, beside what the model costs for the same frames.

    python benchmarks/render.py [--variant tiny-random | human3r_672S] [--frames 8] [--size 512]
                                [--precision auto] [--device cpu] [--people 2] [--source clip.mp4] [--json out.json]
                                [--example docs/render_example.png --example-frame 2]

The frames of the bundled astronaut clip go through the model (``tiny-random``, or ``random:<variant>``:
real size, seeded random weights, timed as ``benchmarks/speed.py`` does: decoding to ``FrameResult``,
with the SMPL-X stand-in of the tests as body model), then each ``FrameResult`` is rendered: the
overlay, the world view, both side by side (what ``VideoRenderer.add`` draws), and the side-by-side
frame's H.264 encoding. The untrained detector is set to find about ``--people`` people per frame
(``speed.people_threshold``), since people are what the renderer draws. Medians after warm-up frames.
``--example`` also saves one side-by-side frame as a picture (the documentation's example).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

WARMUP = 2
CLIP = REPO / "data" / "examples" / "astronaut_camera_move.mp4"


def measure(args: argparse.Namespace) -> dict:
    """Per-frame milliseconds of every stage, and what they ran on."""
    import av
    import torch
    from PIL import Image
    from speed import _device_name, people_threshold

    import human3r_demo as h3r
    from human3r_demo.render import GLRenderer, WorldHistory, render_overlay, render_world
    from human3r_demo.render.video import panel_size
    from tests.smplx_standin import write

    warnings.simplefilter("ignore")
    name = "tiny-random" if args.variant == "tiny-random" else f"random:{args.variant}"
    model = h3r.load_model(name, device=args.device, precision=args.precision)
    smplx_dir = Path(tempfile.mkdtemp(prefix="h3r_render_"))
    write(smplx_dir)
    body = h3r.BodyModel(smplx_dir, device=model.device)
    threshold = people_threshold(model, args.source, args.size, args.people)
    recon = h3r.Reconstructor(model, h3r.RunOptions(size=args.size, reset_interval=None, detection_threshold=threshold),
                              body_model=body)

    def sync() -> None:
        if model.device.type == "cuda":
            torch.cuda.synchronize()

    times: dict[str, list[float]] = {k: [] for k in ("model", "overlay", "world", "side by side", "encoding")}
    people: list[int] = []
    renderer = GLRenderer()
    history, side_history = WorldHistory(), WorldHistory()
    out = av.open(str(Path(tempfile.mkdtemp(prefix="h3r_render_")) / "bench.mp4"), "w")
    stream = None
    source = iter(h3r.frames(args.source, max_frames=args.frames))
    while True:
        t0 = time.perf_counter()
        try:
            frame = next(source)
        except StopIteration:
            break
        result = recon.process(frame.rgb, frame.index, frame.timestamp)
        sync()
        times["model"].append((time.perf_counter() - t0) * 1000)
        people.append(result.num_people)
        size = panel_size(result.image.shape[1], result.image.shape[0], args.size)
        t0 = time.perf_counter()
        render_overlay(result, body.faces, renderer=renderer, size=size)
        times["overlay"].append((time.perf_counter() - t0) * 1000)
        t0 = time.perf_counter()
        render_world(result, body.faces, history, renderer=renderer, size=size)
        times["world"].append((time.perf_counter() - t0) * 1000)
        t0 = time.perf_counter()  # what VideoRenderer.add draws before encoding
        picture = np.concatenate([render_overlay(result, body.faces, renderer=renderer, size=size),
                                  render_world(result, body.faces, side_history, renderer=renderer, size=size)], axis=1)
        times["side by side"].append((time.perf_counter() - t0) * 1000)
        if args.example and len(people) - 1 == args.example_frame:
            Image.fromarray(picture).save(args.example)
        if stream is None:  # the encoder of VideoRenderer, set up the same way
            stream = out.add_stream("libx264", rate=10, options={"crf": "20", "preset": "veryfast"})
            stream.height, stream.width = picture.shape[:2]
            stream.pix_fmt = "yuv420p"
        t0 = time.perf_counter()
        for packet in stream.encode(av.VideoFrame.from_ndarray(picture, format="rgb24")):
            out.mux(packet)
        times["encoding"].append((time.perf_counter() - t0) * 1000)
    t0 = time.perf_counter()
    for packet in stream.encode():  # the frames x264 held back for its look-ahead
        out.mux(packet)
    flush_ms = (time.perf_counter() - t0) * 1000
    out.close()
    gl = renderer.info
    renderer.close()
    return {
        "variant": args.variant, "model": model.checkpoint_name, "dtype": str(model.dtype).removeprefix("torch."),
        "device": _device_name(args.device), "gl": f"{gl['GL_RENDERER']}, {gl['GL_VERSION']}",
        "frames": len(people), "people": people, "image": list(result.image.shape[:2]), "panel": list(size),
        "video": [picture.shape[1], picture.shape[0]], "times": times, "flush_ms": flush_ms,
        "date": time.strftime("%Y-%m-%d"), "torch": torch.__version__,
    }


def table(run: dict) -> str:
    """A markdown table of the medians, each against the model's time."""

    def med(values: list[float]) -> float:
        return statistics.median(values[WARMUP:] if len(values) > WARMUP else values)

    t = run["times"]
    model = med(t["model"])
    # x264 holds frames back for its look-ahead and encodes them later: the per-call times understate
    # it, so the encoding is everything it took, the end's flush included, over the frames
    encoding = (sum(t["encoding"]) + run["flush_ms"]) / len(t["encoding"])
    w, h = run["panel"]
    rows = [
        (f"model: {run['variant']} ({run['dtype']}), decode to FrameResult with SMPL-X", model),
        (f"overlay {w}x{h}", med(t["overlay"])),
        (f"world view {w}x{h}", med(t["world"])),
        (f"side by side {run['video'][0]}x{run['video'][1]} (both views, as VideoRenderer.add draws)", med(t["side by side"])),
        (f"H.264 encoding {run['video'][0]}x{run['video'][1]} (libx264 veryfast, crf 20; mean, with the final flush)", encoding),
    ]
    lines = [f"{run['device']}; OpenGL {run['gl']}; torch {run['torch']}; {run['date']}", "",
             f"{run['frames']} frames of {Path(run['source']).name}, model input {run['image'][1]}x{run['image'][0]}, "
             f"people per frame {run['people']}; medians after {WARMUP} warm-up frames", "",
             "| stage | ms/frame | vs the model |", "|---|---|---|"]
    lines += [f"| {name} | {ms:.1f} | {100 * ms / model:.1f} % |" for name, ms in rows]
    video = med(t["side by side"]) + encoding
    lines.append(f"| **a side-by-side video frame: rendering + encoding** | **{video:.1f}** | **{100 * video / model:.1f} %** |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variant", default="tiny-random", help="tiny-random, or a real-size variant built random (human3r_672S)")
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--size", type=int, default=512, help="model input and rendered views: long side in pixels")
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--people", type=int, default=2, help="set the untrained detector to find about this many people")
    parser.add_argument("--source", default=str(CLIP))
    parser.add_argument("--json", type=Path, default=None, help="also write the measurements here")
    parser.add_argument("--example", type=Path, default=None, help="save frame --example-frame side by side here (PNG)")
    parser.add_argument("--example-frame", type=int, default=2)
    args = parser.parse_args()
    run = measure(args)
    run["source"] = args.source
    if args.json:
        args.json.write_text(json.dumps(run, indent=1))
    print(table(run))


if __name__ == "__main__":
    main()
