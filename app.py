"""Human3R demo app: upload a video and watch people, scene and camera stream into a Rerun viewer.

    python app.py [--model human3r_672S] [--device cuda]

Also the entry point of the HuggingFace Space. The server honours GRADIO_SERVER_NAME and
GRADIO_SERVER_PORT (default 127.0.0.1 and Gradio's port); the model can also come from
HUMAN3R_MODEL. Nothing is fetched from the internet at start (no analytics, no share tunnel).
"""

from __future__ import annotations

import argparse
import html
import os
import tempfile
import uuid
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr  # noqa: E402
import torch  # noqa: E402
from gradio_rerun import Rerun  # noqa: E402

from human3r_demo.app_engine import MODEL_CHOICES, VisitorSessions, find_body_model, run_upload  # noqa: E402
from human3r_demo.checkpoints import TINY_RANDOM, availability  # noqa: E402
from human3r_demo.device import PRECISIONS  # noqa: E402
from human3r_demo.io import SourceError, expected_count, probe  # noqa: E402
from human3r_demo.options import OptionsError, RunOptions  # noqa: E402
from human3r_demo.session import ModelCache  # noqa: E402

try:  # on a HuggingFace ZeroGPU Space the GPU is lent per call
    import spaces
except ImportError:
    spaces = None

HERE = Path(__file__).resolve().parent
DEFAULTS = RunOptions()
EXAMPLES = sorted((HERE / "data" / "examples").glob("*.mp4"))
VIDEO_TYPES = [".mp4", ".mov", ".webm", ".avi", ".mkv", ".m4v"]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Human3R demo app")
    parser.add_argument("--model", default=os.environ.get("HUMAN3R_MODEL", DEFAULTS.model),
                        help="default model: an official variant, a local .pth/.safetensors, or tiny-random")
    parser.add_argument("--device", default=None, help="cpu | cuda (default: cuda if available)")
    args, _ = parser.parse_known_args()
    return args


ARGS = parse_args()
MODELS = ModelCache()  # one model resident at a time, keyed by what it resolves to
BODY, SMPLX_HELP = find_body_model()
# the models a visitor may choose: the app's own, plus what the operator named at start (never a typed path)
CHOICES = MODEL_CHOICES if ARGS.model in MODEL_CHOICES else [ARGS.model, *MODEL_CHOICES]
VISITORS = VisitorSessions(Path(tempfile.gettempdir()) / "human3r_demo_sessions")
UNKNOWN_MODEL = f"Unknown model: choose one of {', '.join(CHOICES)}."


def checked_model(model: object) -> str:
    """A model choice as the app offers it; anything else is one generic error (nothing about the server's files)."""
    if not isinstance(model, str) or model not in CHOICES:
        raise gr.Error(UNKNOWN_MODEL)
    return model


# ---------------------------------------------------------------------- banners
def model_banner(model: str) -> str:
    """What people should know about the chosen model before they press Run."""
    if not isinstance(model, str) or model not in CHOICES:
        return f"⚠️ **{UNKNOWN_MODEL}**"
    notes = []
    if model == TINY_RANDOM:
        notes.append(
            "⚠️ **tiny-random is an untrained model with random weights.** Everything it shows — people, "
            "meshes, scene points, cameras — is meaningless. Use it to try the interface, not to look at results."
        )
    else:
        state, message = availability(model)
        if state == "unavailable":
            notes.append(f"⚠️ **{message}** Choose **tiny-random** to try the interface.")
        elif state == "download":
            notes.append(f"⬇️ {message}")
        if not torch.cuda.is_available():
            notes.append(
                "🐢 **No GPU here.** On 2 CPU cores a real model takes about 5 s (human3r_672S, bf16) to 23 s "
                "(human3r_896L) per 512-px frame. Keep clips short (set *max frames*), lower the size, or "
                "pick human3r_672S; tiny-random shows the interface at several frames per second."
            )
    if SMPLX_HELP:
        notes.append(f"ℹ️ **No SMPL-X body model, so no meshes** (people still appear as head points). {SMPLX_HELP}")
    return "\n\n".join(notes)


def status_html(text: str, progress: float | None = None, error: str | None = None) -> str:
    bar = f'<progress value="{progress:.3f}" max="1" style="width:100%"></progress>' if progress is not None else ""
    err = f'<div class="h3r-error" style="color:#c0392b"><b>Error:</b> {html.escape(error)}</div>' if error else ""
    return f'<div class="h3r-status">{html.escape(text)}</div>{bar}{err}'


# ---------------------------------------------------------------------- running
def _gpu_seconds(video, model, precision, size, subsample, max_frames, *args, **kwargs) -> int:
    """ZeroGPU time to ask for: about 0.2 s per frame of this clip plus loading, within the Space limits."""
    try:
        frames = probe(video).num_frames or 300
    except SourceError:
        frames = 1  # the run will stop at once with the error
    frames = expected_count(frames, max(int(subsample or 1), 1), int(max_frames) if max_frames else None)
    return int(min(300, 60 + 0.2 * frames))


def run(video, model, precision, size, subsample, max_frames, use_ttt3r, reset_interval, detection_threshold,
        confidence_threshold, viewer_points, accumulate, request: gr.Request):
    """Stream one reconstruction: yields (viewer bytes, status, downloads) after every frame."""
    if video is None:
        raise gr.Error("Upload a video (or pick an example) first.")
    try:
        options = DEFAULTS.replace(
            model=checked_model(model),
            device=ARGS.device or DEFAULTS.device,
            precision=precision,
            size=int(size),
            subsample=int(subsample or 1),
            max_frames=int(max_frames) if max_frames else None,
            use_ttt3r=bool(use_ttt3r),
            reset_interval=int(reset_interval) if reset_interval else None,
            detection_threshold=float(detection_threshold),
            confidence_threshold=float(confidence_threshold),
            viewer_points=int(viewer_points),
            accumulate_points=bool(accumulate),
        )
    except (OptionsError, TypeError, ValueError) as err:
        raise gr.Error(str(err)) from None
    visitor = request.session_hash if request and request.session_hash else "local"
    stop = VISITORS.start(visitor)
    if stop is None:  # queued by a visitor who has left since: do not run
        return
    try:
        work = VISITORS.folder(visitor) / uuid.uuid4().hex[:8]
        for update in run_upload(video, options, work, MODELS, BODY, recording_id=str(uuid.uuid4()), should_stop=stop.is_set):
            if update.error:
                gr.Warning(update.error)
            yield update.rrd, status_html(update.status, update.progress, update.error), [str(p) for p in update.files] or None
    finally:
        VISITORS.finish(visitor)


if spaces is not None:
    run = spaces.GPU(duration=_gpu_seconds)(run)


def stop(request: gr.Request) -> str:
    """Stop the caller's own run after its current frame; the run then reports and offers what it made."""
    visitor = request.session_hash if request and request.session_hash else "local"
    if VISITORS.stop(visitor):
        return status_html("Stopping after the current frame…")
    return status_html("Nothing is running.")


def leave(request: gr.Request) -> None:
    if request and request.session_hash:
        VISITORS.leave(request.session_hash)


# ---------------------------------------------------------------------- layout
with gr.Blocks(title="Human3R demo", delete_cache=(3600, 3600)) as demo:
    gr.Markdown(
        "# Human3R: everyone, everywhere, all at once\n"
        "Upload a video: every person becomes a tracked SMPL-X body in a world-frame scene, with the camera "
        "path, streamed into the 3D viewer while it is computed. Scrub the timeline to move through time."
    )
    banner = gr.Markdown(model_banner(ARGS.model), elem_id="h3r-banner")
    with gr.Row():
        with gr.Column(scale=1, min_width=320):
            video = gr.File(label="Video", file_types=VIDEO_TYPES, type="filepath", elem_id="h3r-video")
            if EXAMPLES:
                gr.Examples([[str(p)] for p in EXAMPLES], inputs=[video], label="Examples")
            model = gr.Dropdown(CHOICES, value=ARGS.model, label="Model", allow_custom_value=False, elem_id="h3r-model")
            with gr.Accordion("Options", open=False):
                precision = gr.Dropdown(list(PRECISIONS), value=DEFAULTS.precision, label="Precision",
                                        info="auto: bf16 where the hardware computes it natively (faster), else fp32")
                size = gr.Dropdown([512, 384, 320, 256, 224], value=DEFAULTS.size, label="Input size (long side, px)")
                subsample = gr.Slider(1, 10, value=DEFAULTS.subsample, step=1, label="Use every N-th frame")
                max_frames = gr.Number(value=0, precision=0, minimum=0, label="Max frames (0 = all)", elem_id="h3r-max-frames")
                use_ttt3r = gr.Checkbox(value=DEFAULTS.use_ttt3r, label="TTT3R gated state update (better on long videos)")
                reset_interval = gr.Number(value=DEFAULTS.reset_interval, precision=0, minimum=0,
                                           label="Reset the state every N frames (0 = never)")
                detection_threshold = gr.Slider(0.05, 0.95, value=DEFAULTS.detection_threshold, step=0.05,
                                                label="Head detection threshold")
                confidence_threshold = gr.Slider(1.0, 10.0, value=DEFAULTS.confidence_threshold, step=0.25,
                                                 label="Scene point confidence threshold")
                viewer_points = gr.Slider(1000, 100_000, value=DEFAULTS.viewer_points, step=1000, label="Scene points per frame (viewer)")
                accumulate = gr.Checkbox(value=DEFAULTS.accumulate_points, label="Accumulate scene points over time")
            with gr.Row():
                run_button = gr.Button("Run", variant="primary", elem_id="h3r-run")
                stop_button = gr.Button("Stop", variant="stop", elem_id="h3r-stop")
            status = gr.HTML(status_html("Ready."), elem_id="h3r-status")
            downloads = gr.File(label="Downloads", file_count="multiple", interactive=False, elem_id="h3r-downloads")
        with gr.Column(scale=3):
            viewer = Rerun(streaming=True, height=720, elem_id="h3r-viewer",
                           panel_states={"time": "collapsed", "blueprint": "hidden", "selection": "hidden"})

    model.change(model_banner, inputs=[model], outputs=[banner], api_name="banner")
    run_button.click(
        run,
        inputs=[video, model, precision, size, subsample, max_frames, use_ttt3r, reset_interval, detection_threshold,
                confidence_threshold, viewer_points, accumulate],
        outputs=[viewer, status, downloads],
        api_name="run",
    )
    # not queued behind the run it stops
    stop_button.click(stop, outputs=[status], api_name="stop", concurrency_limit=None, queue=False)
    demo.unload(leave)


if __name__ == "__main__":
    demo.queue(default_concurrency_limit=1, max_size=16).launch(ssr_mode=False, allowed_paths=[str(HERE / "data" / "examples")])
