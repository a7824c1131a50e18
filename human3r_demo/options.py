"""Every option of a reconstruction run, in one dataclass, each default written once.

:class:`RunOptions` is taken by :class:`~human3r_demo.stream.Reconstructor`,
:func:`~human3r_demo.stream.reconstruct`, the session engine behind the command line and the app,
and the notebooks. Each field carries everything said about it elsewhere - its help, its accepted
range or choices, the value that stands for "none" where a number must be typed, and how the app
shows it - so that the command line (:func:`add_arguments`) and the app's widgets
(:func:`option_specs`) are derived from the fields and an option is written once. Every value is
checked when the object is made, before anything heavy starts, and a bad one is refused with the
accepted range.

"The reference demo" below is fanegg/Human3R@e313921 ``demo.py`` (its command-line defaults).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import math
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import NoneType, UnionType
from typing import Any

from .config import DEFAULT_MODEL
from .device import PRECISIONS
from .model.detection import DETECTION_THRESHOLD
from .tracking import DUSTBIN_SCORE, MATCH_THRESHOLD, SINKHORN_ITERATIONS
from .world import WORLD_FRAMES

VIDEO_LAYOUTS = ("side-by-side", "overlay", "world")  # human3r_demo.render.LAYOUTS, without importing OpenGL

__all__ = ["OptionSpec", "OptionsError", "RunOptions", "add_arguments", "option_specs", "options_from_arguments",
           "options_from_inputs"]


class OptionsError(ValueError):
    """An option outside its accepted range; the message names the option and the range."""


def _option(default: Any, help: str, *, low: float | None = None, high: float | None = None,
            choices: tuple | None = None, flag: str | None = None, cli: bool = True, const: Any = None,
            none_as: Any = None, label: str | None = None, slider: tuple[float, float, float] | None = None,
            presets: tuple | None = None) -> Any:
    """A field with its help, range or choices.

    Args:
        flag: the command-line flag, when not ``--`` + the name with dashes.
        cli: offered on the command line.
        const: the value of the bare flag (``--render-video``).
        none_as: the value that stands for ``None`` where a value must be typed (``0``: never/all),
            on the command line and in the app; the dataclass itself takes ``None``.
        label: the app shows the option under this label (no label: not in the app).
        slider: ``(low, high, step)`` of the app's slider, inside the accepted range, where that range
            is too wide to slide through.
        presets: the values the app offers in a drop-down (any accepted value still works elsewhere).
    """
    return field(default=default, metadata={"help": help, "low": low, "high": high, "choices": choices, "flag": flag,
                                            "cli": cli, "const": const, "none_as": none_as, "label": label,
                                            "slider": slider, "presets": presets})


@dataclass(frozen=True)
class RunOptions:
    """How to run Human3R on one source. Defaults are the reference demo's unless a comment says why not."""

    # ------------------------------------------------------------------ the model
    model: str = _option(DEFAULT_MODEL, "an official variant (human3r_672S/672B/672L/896L), a .pth/.safetensors path, "
                         "tiny-random, or random:<variant> (untrained: meaningless geometry)")
    device: str = _option("auto", "cpu | cuda | cuda:N | auto (CUDA when available)")
    # bf16 where the hardware computes it natively (3-4x faster on AMX CPUs, point maps within 1e-2)
    precision: str = _option("auto", "auto (bf16 on CUDA and on CPUs with native bf16, else fp32) | fp32 | bf16 | fp16",
                             choices=PRECISIONS, label="Precision")
    # measured on a 2-core CPU: minutes to compile and no faster afterwards (benchmarks/RESULTS.md)
    compile: str = _option("off", "torch.compile the model: off | default | reduce-overhead (CUDA graphs); "
                           "compiles for minutes before the first frame", choices=("off", "default", "reduce-overhead"))

    # ------------------------------------------------------------------ frames in
    # the reference resizes the long side to 512; smaller is faster and coarser
    size: int = _option(512, "long side of the model input in pixels (a multiple of 16)", low=32, high=2048,
                        label="Input size (long side, px)", presets=(512, 384, 320, 256, 224))
    subsample: int = _option(1, "use every N-th frame of the source", low=1, high=10_000,
                             label="Use every N-th frame (uploads)", slider=(1, 10, 1))
    max_frames: int | None = _option(None, "stop after this many frames (0: all)", low=1, high=10**9, none_as=0,
                                     label="Max frames")
    # image folders, arrays and cameras carry no frame times; exports and players need a rate
    fps: float | None = _option(None, "frame rate of sources without timestamps (image folders); default 30", low=0.01, high=1000)

    # ------------------------------------------------------------------ the rollout
    use_ttt3r: bool = _option(True, "TTT3R gated state update (better on long videos) instead of overwriting the state",
                              flag="--no-ttt3r", label="TTT3R gated state update")
    # the reference never resets by default; its README runs long videos with 100
    reset_interval: int | None = _option(100, "reset the state every N frames (0: never)", low=1, high=10**9, none_as=0,
                                         label="Reset the state every N frames")
    detection_threshold: float = _option(DETECTION_THRESHOLD, "minimum head score of a person", low=0.0, high=1.0,
                                         label="Head detection threshold", slider=(0.05, 0.95, 0.05))
    shared_focal: bool = _option(False, "one running focal length for the clip instead of per frame")
    smplx: str | None = _option(None, "SMPL-X model folder or SMPLX_NEUTRAL.npz (default: $HUMAN3R_SMPLX_DIR or data/body_models)")

    # ------------------------------------------------------------------ tracking (human3r_demo.tracking)
    match_threshold: float = _option(MATCH_THRESHOLD, "minimum (m+n)-scaled Sinkhorn probability of a mutual match "
                                     "between a person and a remembered track", low=0.0, high=1.0)
    dustbin_score: float = _option(DUSTBIN_SCORE, "Sinkhorn score of 'no match' on the -distance scale (higher: more "
                                   "new tracks)", low=-1e4, high=1e4)
    sinkhorn_iterations: int = _option(SINKHORN_ITERATIONS, "Sinkhorn iterations per frame", low=1, high=1000)
    # the reference remembers every lost track forever; an untrained model makes thousands
    max_tracks: int = _option(256, "most tracks remembered by the tracker (and written as files)", low=1, high=100_000)
    # the reference never forgets a track, so a person who comes back gets their id again
    max_lost_frames: int | None = _option(None, "forget a track unseen for more than N frames (0: never)", low=1,
                                          high=10**9, none_as=0)
    # off as in the reference (each frame's own estimate); on, jitter drops ~3x for a little lag on fast limbs
    # (human3r_demo.smoothing, benchmarks/smoothing.py)
    smooth: bool = _option(False, "smooth each tracked person's pose over time with a causal One-Euro filter "
                           "(the viewer and every export see the smoothed poses)",
                           label="Smooth poses over time (One-Euro filter)")

    # ------------------------------------------------------------------ scene points (one filter: viewer and exports)
    # the reference viewer's default is 1.5; its README examples use 2
    confidence_threshold: float = _option(2.0, "keep scene points whose confidence is above this", low=1.0, high=1e6,
                                          label="Scene point confidence threshold", slider=(1.0, 10.0, 0.25))
    mask_threshold: float = _option(0.1, "pixels whose human-mask probability is above this are people", low=0.0, high=1.0)
    # people's edges bleed into the scene; the reference viewer grows the mask by a 10 px disk
    mask_dilation: int = _option(10, "grow the people mask by this many pixels before removing people", low=0, high=100)
    scene_points: int = _option(2_000_000, "most points in scene.ply (a uniform sample of everything seen)", low=1, high=10**8)
    # a viewer streamed over the network: ~1 MB per frame at 20k points
    viewer_points: int = _option(20_000, "most scene points per frame sent to the viewer", low=1, high=10**7,
                                 label="Scene points per frame (viewer)", slider=(1000, 100_000, 1000))
    accumulate_points: bool = _option(False, "show the scene points of all frames so far, not only the current one", cli=False,
                                      label="Accumulate scene points over time")

    # the world frame of every result, export and the viewer (human3r_demo.world)
    world: str = _option("first-camera", "first-camera (the first camera's frame, OpenCV axes) | floor (gravity up, "
                         "the floor at height 0) | model (the network's own, as the reference outputs it)",
                         choices=WORLD_FRAMES, label="World frame")

    # ------------------------------------------------------------------ exports
    # glTF viewers slow down with millions of points; scene.ply keeps scene_points
    gltf_points: int = _option(200_000, "most scene points in run.glb", low=0, high=10**7)
    glb_frame: int | None = _option(None, "frame whose meshes go into people.glb (default: the one with most people)", low=0, high=10**9)
    # what people share: the bodies over the input beside a world view (human3r_demo.render)
    render_video: str = _option("off", "write overlay.mp4: side-by-side (bodies over the frame | world view), overlay "
                                "or world; the bare flag means side-by-side", choices=("off", *VIDEO_LAYOUTS),
                                const="side-by-side", label="Rendered video")
    # what `eval` scores: per frame the cameras, depth and bodies (hundreds of kB a frame, so off by default)
    export_predictions: bool = _option(False, "also write predictions.npz: per frame the camera, intrinsics, depth map "
                                       "and each person's SMPL-X joints and vertices (what `eval` scores)")

    def __post_init__(self) -> None:
        specs = {spec.name: spec for spec in option_specs(type(self))}
        for spec in specs.values():
            object.__setattr__(self, spec.name, spec.check(getattr(self, spec.name)))
        if self.size % 16:  # the CUT3R patch
            low, high = specs["size"].accepted_range
            raise OptionsError(f"size must be a multiple of 16 between {_fmt(low)} and {_fmt(high)}, got {self.size}")
        if not 0.0 < self.detection_threshold < 1.0:
            raise OptionsError(f"detection_threshold must be between 0 and 1 (exclusive), got {self.detection_threshold}")

    def replace(self, **changes: Any) -> RunOptions:
        """A copy with some options changed (and checked)."""
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise OptionsError(f"unknown option(s): {', '.join(sorted(unknown))}")
        return dataclasses.replace(self, **changes)


# ---------------------------------------------------------------------- what a field says about itself
@dataclass(frozen=True)
class OptionSpec:
    """One option as the command line and the app see it: its type read from the dataclass, its
    default, and the metadata written beside the field (see :func:`_option`)."""

    name: str
    kind: type  # bool, int, float or str
    optional: bool  # None is a value (the field is ``X | None``)
    default: Any
    help: str
    low: float | None = None
    high: float | None = None
    choices: tuple | None = None
    flag: str | None = None
    cli: bool = True
    const: Any = None
    none_as: Any = None
    label: str | None = None
    slider: tuple[float, float, float] | None = None
    presets: tuple | None = None

    @property
    def accepted_range(self) -> tuple[float | None, float | None]:
        """``(low, high)`` of a numeric option (``None``: unbounded)."""
        return self.low, self.high

    def check(self, value: Any) -> Any:
        """``value`` if this option accepts it (an integral float becomes an int), else :class:`OptionsError`."""
        if value is None and self.optional:
            return None
        if self.kind is bool:
            if not isinstance(value, bool):
                raise OptionsError(f"{self.name} must be True or False, got {value!r}")
            return value
        if self.kind is str:
            if not isinstance(value, str) or not value:
                raise OptionsError(f"{self.name} must be a non-empty string, got {value!r}")
            if self.choices and value not in self.choices:
                raise OptionsError(f"{self.name} must be one of {', '.join(self.choices)}, got {value!r}")
            return value
        integer = self.kind is int
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and not float(value).is_integer()):
            raise OptionsError(f"{self.name} must be {'an integer' if integer else 'a number'}, got {value!r}")
        if not math.isfinite(value):
            raise OptionsError(f"{self.name} must be a finite number, got {value!r}")
        if (self.low is not None and value < self.low) or (self.high is not None and value > self.high):
            raise OptionsError(f"{self.name} must be between {_fmt(self.low)} and {_fmt(self.high)}, got {value!r}")
        return int(value) if integer else value

    def from_input(self, value: Any) -> Any:
        """A typed value (command line, app widget) as the dataclass takes it: ``none_as`` (or an empty
        field) becomes ``None``, a whole number typed into a float box becomes an int."""
        if self.none_as is not None and (value is None or (not isinstance(value, bool) and value == self.none_as)):
            return None
        if value is None or value == "":
            return None if self.optional else value
        if self.kind is int and isinstance(value, float) and value.is_integer():
            return int(value)
        return value

    def to_input(self, value: Any) -> Any:
        """The value as it is typed: ``None`` is shown as ``none_as`` where there is one."""
        return self.none_as if value is None and self.none_as is not None else value


def _base_type(hint: Any) -> tuple[type, bool]:
    """``int | None`` -> ``(int, True)``; ``float`` -> ``(float, False)``."""
    if isinstance(hint, UnionType) or typing.get_origin(hint) is typing.Union:
        args = [a for a in typing.get_args(hint) if a is not NoneType]
        if len(args) != 1:
            raise TypeError(f"an option is one type or None, not {hint}")
        return args[0], True
    return hint, False


def option_specs(options: type[RunOptions] | None = None) -> list[OptionSpec]:
    """Every option of ``options`` (default: :class:`RunOptions`) in field order."""
    return list(_specs(options or RunOptions))


@functools.cache
def _specs(options: type) -> tuple[OptionSpec, ...]:
    hints = typing.get_type_hints(options)
    return tuple(OptionSpec(name=f.name, kind=_base_type(hints[f.name])[0], optional=_base_type(hints[f.name])[1],
                            default=f.default, **f.metadata) for f in dataclasses.fields(options))


def _fmt(v: float | None) -> str:
    return "-inf" if v is None else f"{v:g}"


def options_from_inputs(values: Mapping[str, Any], base: RunOptions | None = None) -> RunOptions:
    """The options typed on the command line or into the app (``0`` for "never" where an option says so)
    over ``base`` (default: the defaults); an :class:`OptionsError` names a refused value."""
    base = base or RunOptions()
    specs = {spec.name: spec for spec in option_specs(type(base))}
    unknown = set(values) - set(specs)
    if unknown:
        raise OptionsError(f"unknown option(s): {', '.join(sorted(unknown))}")
    return base.replace(**{name: specs[name].from_input(value) for name, value in values.items()})


# ---------------------------------------------------------------------- command line
def add_arguments(parser: argparse.ArgumentParser, *, skip: tuple[str, ...] = ()) -> None:
    """Add one flag per option (``--reset-interval`` for ``reset_interval``), defaults from :class:`RunOptions`."""
    for spec in option_specs():
        if not spec.cli or spec.name in skip:
            continue
        flag = spec.flag or "--" + spec.name.replace("_", "-")
        if spec.kind is bool:
            action = "store_false" if spec.default else "store_true"
            parser.add_argument(flag, dest=spec.name, action=action, help=spec.help)
            continue
        shown = spec.to_input(spec.default)
        shown = "none" if shown is None else shown
        bare = {"nargs": "?", "const": spec.const} if spec.const is not None else {}
        parser.add_argument(flag, dest=spec.name, type=spec.kind, default=spec.to_input(spec.default),
                            choices=spec.choices, help=f"{spec.help} (default: {shown})", **bare)


def options_from_arguments(args: argparse.Namespace) -> RunOptions:
    """The :class:`RunOptions` of parsed arguments (``--reset-interval 0`` means never)."""
    return options_from_inputs({spec.name: getattr(args, spec.name) for spec in option_specs() if hasattr(args, spec.name)})
