"""Every option of a reconstruction run, in one dataclass, each default written once.

:class:`RunOptions` is taken by :class:`~human3r_demo.stream.Reconstructor`,
:func:`~human3r_demo.stream.reconstruct`, the session engine behind the command line and the app,
and the notebooks. The command line builds its flags from the fields (:func:`add_arguments`), and
the app reads its widgets' defaults and ranges from them. Every value is checked when the object is
made, before anything heavy starts, and a bad one is refused with the accepted range.

"The reference demo" below is fanegg/Human3R@e313921 ``demo.py`` (its command-line defaults).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from .config import DEFAULT_MODEL
from .device import PRECISIONS
from .model.detection import DETECTION_THRESHOLD
from .world import WORLD_FRAMES

VIDEO_LAYOUTS = ("side-by-side", "overlay", "world")  # human3r_demo.render.LAYOUTS, without importing OpenGL

__all__ = ["OptionsError", "RunOptions", "add_arguments", "options_from_arguments"]


class OptionsError(ValueError):
    """An option outside its accepted range; the message names the option and the range."""


def _option(default: Any, help: str, *, low: float | None = None, high: float | None = None,
            choices: tuple | None = None, flag: str | None = None, cli: bool = True, const: Any = None) -> Any:
    """A field with its help, range or choices; ``const``: the value of the bare flag (``--render-video``)."""
    return field(default=default, metadata={"help": help, "low": low, "high": high, "choices": choices, "flag": flag,
                                            "cli": cli, "const": const})


@dataclass(frozen=True)
class RunOptions:
    """How to run Human3R on one source. Defaults are the reference demo's unless a comment says why not."""

    # ------------------------------------------------------------------ the model
    model: str = _option(DEFAULT_MODEL, "an official variant (human3r_672S/672B/672L/896L), a .pth/.safetensors path, "
                         "tiny-random, or random:<variant> (untrained: meaningless geometry)")
    device: str = _option("auto", "cpu | cuda | cuda:N | auto (CUDA when available)")
    # bf16 where the hardware computes it natively (3-4x faster on AMX CPUs, point maps within 1e-2)
    precision: str = _option("auto", "auto (bf16 on CUDA and on CPUs with native bf16, else fp32) | fp32 | bf16 | fp16",
                             choices=PRECISIONS)
    # measured on a 2-core CPU: minutes to compile and no faster afterwards (benchmarks/RESULTS.md)
    compile: str = _option("off", "torch.compile the model: off | default | reduce-overhead (CUDA graphs); "
                           "compiles for minutes before the first frame", choices=("off", "default", "reduce-overhead"))

    # ------------------------------------------------------------------ frames in
    # the reference resizes the long side to 512; smaller is faster and coarser
    size: int = _option(512, "long side of the model input in pixels (a multiple of 16)", low=32, high=2048)
    subsample: int = _option(1, "use every N-th frame of the source", low=1, high=10_000)
    max_frames: int | None = _option(None, "stop after this many frames (default: all)", low=1, high=10**9)
    # image folders, arrays and cameras carry no frame times; exports and players need a rate
    fps: float | None = _option(None, "frame rate of sources without timestamps (image folders); default 30", low=0.01, high=1000)

    # ------------------------------------------------------------------ the rollout
    use_ttt3r: bool = _option(True, "TTT3R gated state update (better on long videos) instead of overwriting the state",
                              flag="--no-ttt3r")
    # the reference never resets by default; its README runs long videos with 100
    reset_interval: int | None = _option(100, "reset the state every N frames (0: never)", low=1, high=10**9)
    detection_threshold: float = _option(DETECTION_THRESHOLD, "minimum head score of a person", low=0.0, high=1.0)
    shared_focal: bool = _option(False, "one running focal length for the clip instead of per frame")
    # the reference remembers every lost track forever; an untrained model makes thousands
    max_tracks: int = _option(256, "most tracks remembered by the tracker (and written as files)", low=1, high=100_000)
    smplx: str | None = _option(None, "SMPL-X model folder or SMPLX_NEUTRAL.npz (default: $HUMAN3R_SMPLX_DIR or data/body_models)")

    # ------------------------------------------------------------------ scene points (one filter: viewer and exports)
    # the reference viewer's default is 1.5; its README examples use 2
    confidence_threshold: float = _option(2.0, "keep scene points whose confidence is above this", low=1.0, high=1e6)
    mask_threshold: float = _option(0.1, "pixels whose human-mask probability is above this are people", low=0.0, high=1.0)
    # people's edges bleed into the scene; the reference viewer grows the mask by a 10 px disk
    mask_dilation: int = _option(10, "grow the people mask by this many pixels before removing people", low=0, high=100)
    scene_points: int = _option(2_000_000, "most points in scene.ply (a uniform sample of everything seen)", low=1, high=10**8)
    # a viewer streamed over the network: ~1 MB per frame at 20k points
    viewer_points: int = _option(20_000, "most scene points per frame sent to the viewer", low=1, high=10**7)
    accumulate_points: bool = _option(False, "show the scene points of all frames so far, not only the current one", cli=False)

    # the world frame of every result, export and the viewer (human3r_demo.world)
    world: str = _option("first-camera", "first-camera (the first camera's frame, OpenCV axes) | floor (gravity up, "
                         "the floor at height 0) | model (the network's own, as the reference outputs it)",
                         choices=WORLD_FRAMES)

    # ------------------------------------------------------------------ exports
    # glTF viewers slow down with millions of points; scene.ply keeps scene_points
    gltf_points: int = _option(200_000, "most scene points in run.glb", low=0, high=10**7)
    glb_frame: int | None = _option(None, "frame whose meshes go into people.glb (default: the one with most people)", low=0, high=10**9)
    # what people share: the bodies over the input beside a world view (human3r_demo.render)
    render_video: str = _option("off", "write overlay.mp4: side-by-side (bodies over the frame | world view), overlay "
                                "or world; the bare flag means side-by-side", choices=("off", *VIDEO_LAYOUTS),
                                const="side-by-side")

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value, meta = getattr(self, f.name), f.metadata
            if value is None and "None" in str(f.type):
                continue
            if isinstance(f.default, bool):
                if not isinstance(value, bool):
                    raise OptionsError(f"{f.name} must be True or False, got {value!r}")
                continue
            if isinstance(f.default, str) or f.default is None and "str" in str(f.type):
                if not isinstance(value, str) or not value:
                    raise OptionsError(f"{f.name} must be a non-empty string, got {value!r}")
                if meta["choices"] and value not in meta["choices"]:
                    raise OptionsError(f"{f.name} must be one of {', '.join(meta['choices'])}, got {value!r}")
                continue
            integer = "int" in str(f.type)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and not float(value).is_integer()):
                raise OptionsError(f"{f.name} must be {'an integer' if integer else 'a number'}, got {value!r}")
            if not math.isfinite(value):
                raise OptionsError(f"{f.name} must be a finite number, got {value!r}")
            low, high = meta["low"], meta["high"]
            if (low is not None and value < low) or (high is not None and value > high):
                raise OptionsError(f"{f.name} must be between {_fmt(low)} and {_fmt(high)}, got {value!r}")
            if integer:
                object.__setattr__(self, f.name, int(value))
        if self.size % 16:
            raise OptionsError(f"size must be a multiple of 16 between 32 and 2048, got {self.size}")
        if not 0.0 < self.detection_threshold < 1.0:
            raise OptionsError(f"detection_threshold must be between 0 and 1 (exclusive), got {self.detection_threshold}")

    def replace(self, **changes: Any) -> RunOptions:
        """A copy with some options changed (and checked)."""
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise OptionsError(f"unknown option(s): {', '.join(sorted(unknown))}")
        return dataclasses.replace(self, **changes)

    @staticmethod
    def accepted_range(name: str) -> tuple[float | None, float | None]:
        """``(low, high)`` of a numeric option, for widgets."""
        f = {f.name: f for f in dataclasses.fields(RunOptions)}[name]
        return f.metadata["low"], f.metadata["high"]


def _fmt(v: float | None) -> str:
    return "-inf" if v is None else f"{v:g}"


# ---------------------------------------------------------------------- command line
def add_arguments(parser: argparse.ArgumentParser, *, skip: tuple[str, ...] = ()) -> None:
    """Add one flag per option (``--reset-interval`` for ``reset_interval``), defaults from :class:`RunOptions`."""
    defaults = RunOptions()
    for f in dataclasses.fields(RunOptions):
        meta = f.metadata
        if not meta["cli"] or f.name in skip:
            continue
        flag = meta["flag"] or "--" + f.name.replace("_", "-")
        default = getattr(defaults, f.name)
        if isinstance(f.default, bool):
            action = "store_false" if default else "store_true"
            parser.add_argument(flag, dest=f.name, action=action, help=meta["help"])
            continue
        kind = int if "int" in str(f.type) else float if "float" in str(f.type) else str
        shown = "none" if default is None else default
        bare = {"nargs": "?", "const": meta["const"]} if meta["const"] is not None else {}
        parser.add_argument(flag, dest=f.name, type=kind, default=default, choices=meta["choices"],
                            help=f"{meta['help']} (default: {shown})", **bare)


def options_from_arguments(args: argparse.Namespace) -> RunOptions:
    """The :class:`RunOptions` of parsed arguments; ``--reset-interval 0`` means never."""
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(RunOptions) if hasattr(args, f.name)}
    if values.get("reset_interval") == 0:
        values["reset_interval"] = None
    return RunOptions(**values)
