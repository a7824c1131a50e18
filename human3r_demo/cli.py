"""Command line: ``python -m human3r_demo run VIDEO --out DIR [options]``.

Streams the video through the model with a progress bar, writes the exports as it goes (see
:mod:`human3r_demo.export`) and prints a summary. Errors are one clear line, never a traceback;
Ctrl-C stops after the current frame and leaves valid files (a second Ctrl-C aborts at once, still
closing the files).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
import warnings
from pathlib import Path

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m human3r_demo", description="Human3R: people, scene and cameras from a video.")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="reconstruct a video (or image folder, or camera index) and export the results")
    run.add_argument("source", help="video file, folder of images, or a camera index such as 0")
    run.add_argument("--out", required=True, type=Path, help="output folder")
    run.add_argument("--model", default=os.environ.get("HUMAN3R_MODEL", "human3r_672S"),
                     help="human3r_672S (default) | human3r_672B | human3r_672L | human3r_896L | a .pth/.safetensors path | tiny-random")
    run.add_argument("--size", type=int, default=512, help="long side of the model input (multiple of 16; default 512)")
    run.add_argument("--subsample", type=int, default=1, help="use every N-th frame")
    run.add_argument("--max-frames", type=int, default=None, help="stop after this many frames")
    run.add_argument("--reset-interval", type=int, default=100, help="reset the state every N frames (0: never)")
    run.add_argument("--no-ttt3r", action="store_true", help="overwrite the state every frame instead of TTT3R's gated update")
    run.add_argument("--detection-threshold", type=float, default=0.3)
    run.add_argument("--shared-focal", action="store_true", help="one running focal length for the clip instead of per frame")
    run.add_argument("--smplx", default=None, help="SMPL-X model folder or file (default: $HUMAN3R_SMPLX_DIR or data/body_models)")
    run.add_argument("--confidence-threshold", type=float, default=2.0, help="scene points kept above this confidence")
    run.add_argument("--point-budget", type=int, default=2_000_000, help="most points in scene.ply")
    run.add_argument("--glb-frame", type=int, default=None, help="frame whose meshes go to people.glb (default: most people)")
    run.add_argument("--device", default=None, help="cpu | cuda (default: cuda if available)")
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "run":
        return _run(args)
    return 2


def _run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .body import BodyModel, BodyModelNotFound
    from .checkpoints import CheckpointError, load_model
    from .config import ConfigError
    from .export import Exporter
    from .io import SourceError, frames, probe
    from .stream import Reconstructor

    source: str | int = int(args.source) if args.source.isdigit() and not Path(args.source).exists() else args.source
    exporter = None
    done = 0
    start = time.perf_counter()
    try:
        if args.subsample < 1:
            raise SourceError(f"--subsample must be at least 1, got {args.subsample}")
        if args.max_frames is not None and args.max_frames < 1:
            raise SourceError(f"--max-frames must be at least 1, got {args.max_frames}")
        info = probe(source) if not isinstance(source, int) else None
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model = load_model(args.model, device=args.device)
        for w in caught:
            print(f"warning: {w.message}", file=sys.stderr)
        body = None
        try:
            body = BodyModel(args.smplx, device=next(model.parameters()).device)
        except BodyModelNotFound as err:
            if args.smplx is not None:
                raise
            print(f"note: {err}", file=sys.stderr)
        recon = Reconstructor(
            model,
            size=args.size,
            use_ttt3r=not args.no_ttt3r,
            reset_interval=args.reset_interval or None,
            detection_threshold=args.detection_threshold,
            body_model=body,
            shared_focal=args.shared_focal,
        )
        fps = info.fps / args.subsample if info and info.fps else None
        total = info.num_frames if info else None
        if total is not None:
            total = -(-total // args.subsample)
            total = min(total, args.max_frames) if args.max_frames else total
        exporter = Exporter(
            args.out,
            fps=fps,
            faces=body.faces if body is not None else None,
            point_budget=args.point_budget,
            confidence_threshold=args.confidence_threshold,
            glb_frame=args.glb_frame,
            metadata={"source": str(args.source), "model": getattr(model, "checkpoint_name", args.model),
                      "random_weights": bool(getattr(model, "is_random", False)), "size": args.size},
        )
        tracks: set[int] = set()
        stop = _StopOnInterrupt()
        bar = tqdm(total=total, unit="frame", disable=args.quiet, dynamic_ncols=True)
        with stop:
            for frame in frames(source, subsample=args.subsample, max_frames=args.max_frames):
                result = recon.process(frame.rgb, frame.index, frame.timestamp)
                exporter.add(result)
                tracks.update(result.track_ids)
                done += 1
                bar.update(1)
                bar.set_postfix(people=result.num_people, tracks=len(tracks))
                if stop.requested:
                    raise KeyboardInterrupt
        bar.close()
    except KeyboardInterrupt:
        files = exporter.close() if exporter is not None else {}
        print(f"\ninterrupted after {done} frame(s); {len(files)} file(s) in {args.out} are complete", file=sys.stderr)
        return 130
    except (SourceError, CheckpointError, BodyModelNotFound, ConfigError, ValueError, OSError) as err:
        files = exporter.close() if exporter is not None else {}
        kept = f" ({done} frame(s) before the error were exported to {args.out})" if done else ""
        print(f"error: {err}{kept}", file=sys.stderr)
        return 2
    files = exporter.close()
    elapsed = time.perf_counter() - start
    print(
        f"done: {done} frame(s) in {elapsed:.1f} s ({done / elapsed:.2f} FPS), {len(tracks)} people tracked; "
        f"wrote {', '.join(sorted(p.name for k, p in files.items() if not k.startswith('track_')))} to {args.out}"
    )
    return 0


class _StopOnInterrupt:
    """First Ctrl-C: finish the current frame, then stop. A second Ctrl-C aborts at once."""

    def __init__(self) -> None:
        self.requested = False

    def __enter__(self) -> _StopOnInterrupt:
        self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        signal.signal(signal.SIGINT, self._previous)

    def _handle(self, signum: int, frame: object) -> None:
        self.requested = True
        signal.signal(signal.SIGINT, self._previous)
        print("\nstopping after the current frame (Ctrl-C again to abort now)", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
