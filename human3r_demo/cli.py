"""Command line: ``python -m human3r_demo run SOURCE --out DIR [options]`` and ``... live [SOURCE] --out DIR``.

``run`` streams the source through the session engine (:mod:`human3r_demo.session`) with a progress
bar, writes the exports and prints a summary. ``live`` reconstructs a camera, a stream URL or a video
file played at its own rate as it comes (:mod:`human3r_demo.live`: the latest frame wins), shows it in
a local Rerun viewer with a one-line live status, and writes the same exports when stopped. Errors are one clear line, never a traceback. Ctrl-C (or
SIGTERM) stops after the current frame; a second one stops at once; either way the files are
completed and moved into ``--out`` as one set, and further signals wait for that.
``batch INPUT... --out DIR`` runs many sources on Ray, one run folder each, skipping finished ones
(:mod:`human3r_demo.batch`). ``eval DATASET --root PATH`` runs a paper benchmark as a batch, scores it and
prints the paper's table (:mod:`human3r_demo.evaluation.runner`); ``eval tum|bodies RUN_DIR --gt F`` scores
one run against your own ground truth.
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from .options import OptionsError, RunOptions, add_arguments, options_from_arguments

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m human3r_demo", description="Human3R: people, scene and cameras from a video.")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="reconstruct a video (or image folder, or camera index) and export the results")
    run.add_argument("source", help="video file, folder of images, or a camera index such as 0")
    run.add_argument("--out", required=True, type=Path, help="output folder (replaced by this run's results as a whole)")
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    add_arguments(run)
    live = commands.add_parser("live", help="reconstruct a camera or stream as it films (the latest frame wins); Ctrl-C stops")
    live.add_argument("source", nargs="?", default="0",
                      help="camera index (default 0), stream URL (rtsp://, http://, ...) or a video file played at its own rate")
    live.add_argument("--out", required=True, type=Path, help="output folder for the exports, written when the session stops")
    live.add_argument("--viewer", choices=("spawn", "none"), default="spawn",
                      help="spawn: show the results in a local Rerun viewer (default); none: exports only")
    live.add_argument("--rrd", type=Path, default=None, help="also save the Rerun recording to this file")
    live.add_argument("--quiet", action="store_true", help="no live status line")
    add_arguments(live, skip=("subsample",))
    batch = commands.add_parser("batch", help="reconstruct many videos or image folders on Ray, one run folder each; "
                                "finished runs are skipped when run again")
    batch.add_argument("inputs", nargs="+", metavar="INPUT",
                       help="video files, image folders, or text files (.txt/.lst/.list) listing them one a line")
    batch.add_argument("--out", required=True, type=Path,
                       help="folder of the batch: one run folder per input (as `run` writes it), batch.json, batch.csv")
    batch.add_argument("--ray", default=None, help="local: start Ray inside this command; auto: join the running cluster; "
                       "or a cluster address (default: the cluster of $RAY_ADDRESS when set, else local)")
    batch.add_argument("--workers", type=int, default=None,
                       help="workers, each with its own model (default: one per GPU, or one per 4 CPU cores)")
    batch.add_argument("--gpus-per-task", type=float, default=None,
                       help="GPUs per worker (default 1; 0.5 puts two workers of a small variant on each GPU)")
    batch.add_argument("--retries", type=int, default=2,
                       help="start a clip again up to this many times after its worker died or crashed (default: 2)")
    batch.add_argument("--quiet", action="store_true", help="no progress bar")
    add_arguments(batch)
    _eval_parser(commands)
    return parser


def _eval_parser(commands) -> None:
    from .evaluation.datasets import BENCHMARKS

    ev = commands.add_parser("eval", help="score Human3R on a paper benchmark (3dpw, emdb1, emdb2, rich, tum, bonn), or a "
                             "run folder against your own ground truth (tum RUN_DIR --gt groundtruth.txt, bodies RUN_DIR --gt F.npz)")
    ev.add_argument("dataset", choices=(*BENCHMARKS, "bodies"), help="the benchmark, or 'bodies' / 'tum' with --gt")
    ev.add_argument("run_dir", nargs="?", type=Path, default=None, help="with --gt: a run folder to score")
    ev.add_argument("--root", type=Path, default=None, help="the benchmark's folder, as downloaded")
    ev.add_argument("--gt", type=Path, default=None, help="your own ground truth: a TUM trajectory (tum) or an npz of joints (bodies)")
    ev.add_argument("--out", type=Path, default=None, help="folder for runs and scores (default: eval_<dataset>)")
    ev.add_argument("--json", type=Path, default=None, help="also write the results to this JSON file")
    ev.add_argument("--model", default=RunOptions().model, help="model to evaluate (see `run --help`)")
    ev.add_argument("--device", default="auto", help="cpu | cuda | cuda:N | auto")
    ev.add_argument("--precision", default="auto", help="auto | fp32 | bf16 | fp16")
    ev.add_argument("--size", type=int, default=None, help="model input size instead of the reference's 512 (quick checks)")
    ev.add_argument("--max-frames", type=int, default=None, help="run at most this many frames per sequence (quick checks)")
    ev.add_argument("--smplx", default=None, help="SMPL-X model folder or SMPLX_NEUTRAL.npz for the run's meshes")
    ev.add_argument("--body-models", type=Path, default=None,
                    help="folder with smpl/, smplx/ (SMPL, SMPL-X, smplx2smpl.pkl, J_regressor_h36m.npy); "
                         "default $HUMAN3R_BODY_MODELS or data/body_models")
    ev.add_argument("--sequences", nargs="+", default=None, help="only these sequences")
    ev.add_argument("--ray", default="local", help="local | auto | a Ray cluster's address (see `batch`)")
    ev.add_argument("--workers", type=int, default=None, help="parallel workers (default: planned from the machine)")
    ev.add_argument("--quiet", action="store_true", help="no progress bar")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "run":
        return _run(args)
    if args.command == "live":
        return _live(args)
    if args.command == "batch":
        return _batch(args)
    if args.command == "eval":
        return _eval(args)
    return 2


def _source(text: str) -> str | int:
    return int(text) if text.isdigit() and not Path(text).exists() else text


def _run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .session import Session

    options = _options(args)
    if options is None:
        return 2
    session = Session(_source(args.source), options, args.out, metadata={"source": str(args.source)})
    with _StopOnSignal(session) as stop:  # until the command returns: a late signal never cuts the report short
        bar = None
        for progress in session.run(should_stop=lambda: stop.requested):
            if bar is None:
                bar = tqdm(total=progress.total, unit="frame", disable=args.quiet, dynamic_ncols=True)
            bar.update(1)
            bar.set_postfix(people=progress.result.num_people, tracks=progress.tracks)
        if bar is not None:
            bar.close()
        return _report(session.outcome, args.out)


def _live(args: argparse.Namespace) -> int:
    import threading

    from .live import LiveSession, play

    options = _options(args)
    if options is None:
        return 2
    recording = _live_recording(args)
    live = LiveSession(options, args.out, recording=recording, metadata={"source": str(args.source)})
    feeder = threading.Thread(target=play, args=(_source(args.source), live), name="live-source", daemon=True)
    with _StopOnSignal(live.session, on_stop=live.stop):
        feeder.start()
        width = 0
        for step in live.run():
            if not args.quiet:
                line = step.stats.status
                print("\r" + line.ljust(width), end="", file=sys.stderr, flush=True)
                width = len(line)
        if width:
            print(file=sys.stderr)
        live.stop()
        feeder.join(timeout=5)
        stats = live.stats
        cost = f"; the model took {stats.seconds_per_frame:.3f} s per frame (mean)" if stats.seconds_per_frame else ""
        print(f"live: {stats.processed} frame(s) processed, {stats.dropped} dropped of {stats.received} received{cost}",
              file=sys.stderr)
        return _report(live.outcome, args.out, live=True)


def _batch(args: argparse.Namespace) -> int:
    """Every input into its own run folder under ``--out`` (:mod:`human3r_demo.batch`); the exit status:
    0 all done (or already done), 2 some failed (each said in one line), 130 interrupted."""
    import os

    from .batch import BatchError, expand_inputs, run_batch

    options = _options(args)
    if options is None:
        return 2
    address = args.ray or ("auto" if os.environ.get("RAY_ADDRESS") else "local")
    stop = _StopBatchOnSignal()
    try:
        jobs = expand_inputs(args.inputs)
        with stop:
            report = run_batch(jobs, options, args.out, ray=address, workers=args.workers, gpus_per_task=args.gpus_per_task,
                               retries=args.retries, progress=not args.quiet, should_stop=lambda: stop.requested)
    except BatchError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for record in report.records:
        if record.status == "failed":
            print(f"error: {record.input}: {record.error}", file=sys.stderr)
    print(report.summary_line)
    remaining = [r.name for r in report.records if r.status == "interrupted"]
    if remaining:
        print(f"interrupted: {len(remaining)} clip(s) not finished ({', '.join(remaining)}); every finished run in "
              f"{args.out} is complete: run the same command again to do the rest", file=sys.stderr)
        return 130
    failed = report.count("failed")
    if failed:
        print(f"error: {failed} of {len(report.records)} clip(s) failed (listed above and in {args.out / 'batch.csv'})",
              file=sys.stderr)
        return 2
    return 0


def _eval(args: argparse.Namespace) -> int:
    """``eval``: a benchmark (run as a batch, then scored) or one run folder against the user's ground
    truth; prints the table in the paper's layout. Exit status 0, or 2 after one error line."""
    import json

    from .evaluation.runner import EvalError, evaluate

    stop = _StopBatchOnSignal()
    try:
        options = RunOptions(model=args.model, device=args.device, precision=args.precision, smplx=args.smplx,
                             max_frames=args.max_frames)
        if args.gt is not None:
            from .evaluation.own_truth import evaluate_run

            if args.run_dir is None:
                raise EvalError("--gt scores a run folder: give it as `eval tum RUN_DIR --gt groundtruth.txt`")
            outcome = evaluate_run(args.dataset, args.run_dir, args.gt, body_models=args.body_models)
        else:
            if args.root is None or args.dataset == "bodies":
                raise EvalError(f"eval {args.dataset} needs --root (the benchmark's folder) or a run folder with --gt")
            _warn_about(options)
            overrides = {"size": args.size} if args.size is not None else {}
            with stop:
                outcome = evaluate(args.dataset, args.root, options, args.out or Path(f"eval_{args.dataset}"),
                                   overrides=overrides, body_models=args.body_models, only=args.sequences, ray=args.ray,
                                   workers=args.workers, progress=not args.quiet, should_stop=lambda: stop.requested)
    except (EvalError, OptionsError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(outcome.table)
    if args.json is not None:
        tmp = args.json.with_name(args.json.name + ".partial")
        tmp.write_text(json.dumps(outcome.results, indent=1))
        tmp.replace(args.json)
    if stop.requested:
        print("interrupted: finished sequences are kept and scored; run the same command again to do the rest",
              file=sys.stderr)
        return 130
    return 2 if outcome.failed else 0


class _StopBatchOnSignal:
    """Ctrl-C / SIGTERM during a batch: the running clips end after their current frame (complete files) and no
    other starts; a second one stops at once (the running clips' folders stay as they were)."""

    def __init__(self) -> None:
        self.requested = False

    def __enter__(self) -> _StopBatchOnSignal:
        self._previous = {s: signal.signal(s, self._handle) for s in _StopOnSignal.SIGNALS}
        return self

    def __exit__(self, *exc: object) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)

    def _handle(self, signum: int, frame: object) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print("\nstopping: the running clips end after their current frame, finished runs are kept "
              "(Ctrl-C again to stop at once)", file=sys.stderr)


def _live_recording(args: argparse.Namespace):
    """The Rerun recording of a live session: a spawned local viewer and/or an .rrd file, or none."""
    if args.viewer == "none" and args.rrd is None:
        return None
    import rerun as rr

    from .viz.rerun import default_blueprint

    rec = rr.RecordingStream("human3r_demo_live")
    sinks = []
    if args.viewer == "spawn":
        rr.spawn(recording=rec, connect=False)  # starts the native viewer, which listens on its default port
        sinks.append(rr.GrpcSink())
    if args.rrd is not None:
        sinks.append(rr.FileSink(str(args.rrd)))
    rec.set_sinks(*sinks)
    rec.send_blueprint(default_blueprint(accumulate_points=False))
    return rec


def _options(args: argparse.Namespace):
    """The run's options, with a warning for untrained models and a note without SMPL-X; ``None``
    (after one error line) when an option is refused."""
    try:
        options = options_from_arguments(args)
    except OptionsError as err:
        print(f"error: {err}", file=sys.stderr)
        return None
    _warn_about(options)
    return options


def _warn_about(options) -> None:
    from .checkpoints.random_init import RANDOM_WARNING, random_config

    if random_config(options.model) is not None:
        print(f"warning: {options.model}: {RANDOM_WARNING}", file=sys.stderr)
    if options.smplx is None:
        _note_missing_body_model()


def _report(outcome, out: Path, live: bool = False) -> int:
    """Print how the run ended; the exit status: 0 done (a live session ends by being stopped), 130
    interrupted, 2 failed."""
    for note in outcome.notes:
        print(f"note: {note} (recorded in summary.json)", file=sys.stderr)
    if outcome.error is not None:
        kept = f" ({outcome.frames} frame(s) before it were exported to {out})" if outcome.files else ""
        print(f"error: {outcome.error}{kept}", file=sys.stderr)
        return 2
    written = ", ".join(sorted(p.name for k, p in outcome.files.items() if not k.startswith("track_")))
    if outcome.stopped and not live:
        print(f"\ninterrupted after {outcome.frames} frame(s); {len(outcome.files)} file(s) in {out} are complete", file=sys.stderr)
        return 130
    print(f"done: {outcome.frames} frame(s) in {outcome.seconds:.1f} s ({outcome.frames / max(outcome.seconds, 1e-6):.2f} FPS), "
          f"{outcome.tracks} people tracked; wrote {written} to {out}")
    return 0


def _note_missing_body_model() -> None:
    from .body import BodyModelNotFound, find_smplx_file

    try:
        find_smplx_file(None)
    except BodyModelNotFound as err:
        print(f"note: {err}", file=sys.stderr)


class _StopOnSignal:
    """Ctrl-C / SIGTERM: finish the current frame, then stop. A second one stops at once (the files are
    still completed); while they are being completed, and until the command exits, further signals
    change nothing (the results are already safe)."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, session, on_stop=None) -> None:
        self.session = session
        self.on_stop = on_stop  # also told at the first signal (a live source stops waiting for frames)
        self.requested = False

    def __enter__(self) -> _StopOnSignal:
        self._previous = {s: signal.signal(s, self._handle) for s in self.SIGNALS}
        return self

    def __exit__(self, *exc: object) -> None:
        for s in self.SIGNALS:  # the command is about to exit: a late Ctrl-C must not turn into a traceback
            signal.signal(s, signal.SIG_IGN)

    def _handle(self, signum: int, frame: object) -> None:
        if self.session.finalizing:
            print("\nfinishing the files, one moment", file=sys.stderr)
        elif self.requested:
            raise KeyboardInterrupt
        else:
            self.requested = True
            if self.on_stop is not None:
                self.on_stop()
            print("\nstopping after the current frame (Ctrl-C again to stop at once)", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
