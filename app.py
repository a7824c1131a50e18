"""Human3R demo app: upload a video, or film with the browser's camera, and watch people, scene and
camera stream into a Rerun viewer.

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

from human3r_demo.app_engine import (  # noqa: E402
    GROUND_TRUTH_KINDS,
    MODEL_CHOICES,
    VisitorSessions,
    find_body_model,
    run_live,
    run_upload,
)
from human3r_demo.checkpoints import TINY_RANDOM, availability  # noqa: E402
from human3r_demo.io import SourceError, expected_count, probe  # noqa: E402
from human3r_demo.options import OptionsError, OptionSpec, RunOptions, option_specs, options_from_inputs  # noqa: E402
from human3r_demo.session import ModelCache  # noqa: E402

try:  # on a HuggingFace ZeroGPU Space the GPU is lent per call
    import spaces
except ImportError:
    spaces = None

HERE = Path(__file__).resolve().parent
DEFAULTS = RunOptions()
# the options the app shows, as RunOptions describes them (a field with a label); the model is chosen apart
SHOWN = [spec for spec in option_specs(RunOptions) if spec.label and spec.name != "model"]
EXAMPLES = sorted((HERE / "data" / "examples").glob("*.mp4"))
VIDEO_TYPES = [".mp4", ".mov", ".webm", ".avi", ".mkv", ".m4v"]
GROUND_TRUTH_TYPES = list(GROUND_TRUTH_KINDS)


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
def _gpu_seconds(request, video, ground_truth, model, *values) -> int:
    """ZeroGPU time to ask for: about 0.2 s per frame of this clip plus loading, within the Space limits."""
    try:
        frames = probe(video).num_frames or 300
    except SourceError:
        frames = 1  # the run will stop at once with the error
    try:
        options = read_options(model, *values)
    except gr.Error:
        return 60  # the run will stop at once with the error
    frames = expected_count(frames, options.subsample, options.max_frames)
    return int(min(300, 60 + 0.2 * frames))


def read_options(model, *values) -> RunOptions:
    """The run's options from the model and the option widgets, in :data:`SHOWN`'s order (shared by the
    upload and the live tab), or a clear error."""
    if len(values) != len(SHOWN):
        raise gr.Error(f"expected {len(SHOWN)} option values ({', '.join(s.name for s in SHOWN)}), got {len(values)}")
    typed = {spec.name: value for spec, value in zip(SHOWN, values)}
    try:
        return options_from_inputs({"model": checked_model(model), "device": ARGS.device or DEFAULTS.device, **typed})
    except (OptionsError, TypeError, ValueError) as err:
        raise gr.Error(str(err)) from None


def visitor_of(request: gr.Request | None) -> str:
    return request.session_hash if request and request.session_hash else "local"


def outputs_of(update) -> tuple:
    """An engine update as the app's outputs: viewer bytes, status, downloads, the rendered video."""
    video = next((str(p) for p in update.files if p.name == "overlay.mp4"), None)
    return (update.rrd, status_html(update.status, update.progress, update.error),
            [str(p) for p in update.files] or None, gr.update(value=video, visible=video is not None))


# the request comes first: Gradio passes it by position, and the option values follow the model
def run(request: gr.Request, video, ground_truth, model, *values):
    """Stream one reconstruction: yields (viewer bytes, status, downloads, video) after every frame; with a
    ground truth, the finished run is scored against it (per-frame errors in the viewer, files to download)."""
    if video is None:
        raise gr.Error("Upload a video (or pick an example) first.")
    options = read_options(model, *values)
    visitor = visitor_of(request)
    stop = VISITORS.start(visitor)
    if stop is None:  # queued by a visitor who has left since: do not run
        return
    try:
        work = VISITORS.folder(visitor) / uuid.uuid4().hex[:8]
        for update in run_upload(video, options, work, MODELS, BODY, recording_id=str(uuid.uuid4()), should_stop=stop.is_set,
                                 ground_truth=ground_truth):
            if update.error:
                gr.Warning(update.error)
            yield outputs_of(update)
    finally:
        VISITORS.finish(visitor)


def live(request: gr.Request, model, *values):
    """Reconstruct the visitor's camera until they press Stop: yields (viewer bytes, status, downloads, video)."""
    options = read_options(model, *values)
    visitor = visitor_of(request)
    stop = VISITORS.start(visitor)
    if stop is None:
        return
    try:
        work = VISITORS.folder(visitor) / uuid.uuid4().hex[:8]
        updates = run_live(options, work, MODELS, BODY, recording_id=str(uuid.uuid4()),
                           on_start=lambda session: VISITORS.attach_live(visitor, session))
        for update in updates:
            if update.error:
                gr.Warning(update.error)
            yield outputs_of(update)
    finally:
        VISITORS.finish(visitor)


def camera_frame(frame, request: gr.Request) -> None:
    """A frame from the visitor's camera: to their live session if one runs (the newest frame wins there)."""
    session = VISITORS.live(visitor_of(request))
    if session is not None and frame is not None:
        session.push(frame)


if spaces is not None:
    run = spaces.GPU(duration=_gpu_seconds)(run)
    live = spaces.GPU(duration=300)(live)  # the longest a ZeroGPU Space lends a GPU to one call


def stop(request: gr.Request) -> str:
    """Stop the caller's own run after its current frame; the run then reports and offers what it made."""
    if VISITORS.stop(visitor_of(request)):
        return status_html("Stopping after the current frame…")
    return status_html("Nothing is running.")


def leave(request: gr.Request) -> None:
    if request and request.session_hash:
        VISITORS.leave(request.session_hash)


def live_note(model: str, size: int) -> str:
    """What frame rate to expect live, said plainly (the view shows each frame the model finishes)."""
    if torch.cuda.is_available():
        return "The model runs on the GPU: expect several reconstructed frames per second."
    if model == TINY_RANDOM:
        return ("On this CPU tiny-random reconstructs about 5-10 frames per second at 512 px (more at smaller sizes); "
                "its results are meaningless, it shows how the live view works.")
    return (f"🐢 **No GPU here: expect one reconstructed frame every 5-25 s** ({model} at {int(size)} px on 2 CPU cores). "
            "The view shows each frame the model finishes and skips the ones that arrive meanwhile. For a livelier "
            "view choose input size 256, or tiny-random to see the interface.")


# ---------------------------------------------------------------------- layout
def option_widget(spec: OptionSpec) -> gr.Component:
    """The widget of one option, built from what :class:`RunOptions` says about it: its label, default,
    help, and its choices, presets, slider or accepted range."""
    common = {"label": spec.label, "info": spec.help, "value": spec.to_input(spec.default),
              "elem_id": "h3r-" + spec.name.replace("_", "-")}
    if spec.kind is bool:
        return gr.Checkbox(**common)
    if spec.choices or spec.presets:
        return gr.Dropdown(list(spec.choices or spec.presets), **common)
    if spec.slider:
        low, high, step = spec.slider
        return gr.Slider(low, high, step=step, **common)
    low, high = spec.accepted_range
    if spec.none_as is not None:
        low = min(low, spec.none_as) if low is not None else None
    return gr.Number(minimum=low, maximum=high, precision=0 if spec.kind is int else None, **common)


with gr.Blocks(title="Human3R demo", delete_cache=(3600, 3600)) as demo:
    gr.Markdown(
        "# Human3R: everyone, everywhere, all at once\n"
        "Upload a video or film with your camera: every person becomes a tracked SMPL-X body in a world-frame scene, "
        "with the camera path, streamed into the 3D viewer while it is computed. Scrub the timeline to move through time."
    )
    banner = gr.Markdown(model_banner(ARGS.model), elem_id="h3r-banner")
    with gr.Row():
        with gr.Column(scale=1, min_width=320):
            model = gr.Dropdown(CHOICES, value=ARGS.model, label="Model", allow_custom_value=False, elem_id="h3r-model")
            with gr.Tabs():
                with gr.Tab("Upload", elem_id="h3r-upload-tab"):
                    video = gr.File(label="Video", file_types=VIDEO_TYPES, type="filepath", elem_id="h3r-video")
                    if EXAMPLES:
                        gr.Examples([[str(p)] for p in EXAMPLES], inputs=[video], label="Examples")
                    ground_truth = gr.File(label="Ground truth (optional): a TUM trajectory (.txt) or an npz of joints",
                                           file_types=GROUND_TRUTH_TYPES, type="filepath", elem_id="h3r-ground-truth")
                    with gr.Row():
                        run_button = gr.Button("Run", variant="primary", elem_id="h3r-run")
                        stop_button = gr.Button("Stop", variant="stop", elem_id="h3r-stop")
                    stop_notice = gr.HTML("", elem_id="h3r-stop-notice")
                    status = gr.HTML(status_html("Ready."), elem_id="h3r-status")
                    downloads = gr.File(label="Downloads", file_count="multiple", interactive=False, elem_id="h3r-downloads")
                with gr.Tab("Live", elem_id="h3r-live-tab"):
                    note = gr.Markdown(live_note(ARGS.model, DEFAULTS.size), elem_id="h3r-live-note")
                    camera = gr.Image(sources=["webcam"], streaming=True, type="numpy", label="Camera", elem_id="h3r-camera")
                    with gr.Row():
                        live_button = gr.Button("Start", variant="primary", elem_id="h3r-live-start")
                        live_stop_button = gr.Button("Stop", variant="stop", elem_id="h3r-live-stop")
                    live_stop_notice = gr.HTML("", elem_id="h3r-live-stop-notice")
                    live_status = gr.HTML(status_html("Start the camera, then press Start."), elem_id="h3r-live-status")
                    live_downloads = gr.File(label="Downloads", file_count="multiple", interactive=False,
                                             elem_id="h3r-live-downloads")
            with gr.Accordion("Options", open=False):
                OPTION_WIDGETS = {spec.name: option_widget(spec) for spec in SHOWN}
        with gr.Column(scale=3):
            viewer = Rerun(streaming=True, height=720, elem_id="h3r-viewer",
                           panel_states={"time": "collapsed", "blueprint": "hidden", "selection": "hidden"})
            rendered = gr.Video(label="Rendered video (overlay.mp4)", visible=False, interactive=False,
                                elem_id="h3r-video-player")

    controls = [model, *OPTION_WIDGETS.values()]
    model.change(model_banner, inputs=[model], outputs=[banner], api_name="banner")
    gr.on([model.change, OPTION_WIDGETS["size"].change], live_note, inputs=[model, OPTION_WIDGETS["size"]], outputs=[note],
          api_name=False, queue=False)
    # one reconstruction at a time (the model is shared): uploads and live sessions queue together
    run_button.click(run, inputs=[video, ground_truth, *controls], outputs=[viewer, status, downloads, rendered], api_name="run",
                     concurrency_id="reconstruction")
    live_button.click(live, inputs=controls, outputs=[viewer, live_status, live_downloads, rendered], api_name="live",
                      concurrency_id="reconstruction")
    # frames are handed over as they come, never queued behind the reconstruction they feed
    camera.stream(camera_frame, inputs=[camera], outputs=None, stream_every=0.2, concurrency_limit=None,
                  api_name=False, show_progress="hidden")
    # not queued behind the run they stop; they answer in a notice of their own, so that their answer never
    # lands on top of the run's last status (a live session can end before the answer arrives)
    stop_button.click(stop, outputs=[stop_notice], api_name="stop", concurrency_limit=None, queue=False)
    live_stop_button.click(stop, outputs=[live_stop_notice], api_name="live_stop", concurrency_limit=None, queue=False)
    run_button.click(lambda: "", outputs=[stop_notice], api_name=False, queue=False)
    live_button.click(lambda: "", outputs=[live_stop_notice], api_name=False, queue=False)
    demo.unload(leave)


if __name__ == "__main__":
    demo.queue(default_concurrency_limit=1, max_size=16).launch(ssr_mode=False, allowed_paths=[str(HERE / "data" / "examples")])
