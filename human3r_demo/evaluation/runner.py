"""``eval``: run a benchmark's sequences as one batch, score each, write the files, build the table.

Folder ``--out`` after a run::

    frames/<sequence>/      links to the sequence's selected images, in order (the batch's sources)
    runs/<sequence>/        the run folders (``batch.json``, ``batch.csv`` beside them), with predictions.npz
    scores/<sequence>.json  the sequence's metrics, per frame too, and what they were computed from
    sequences.csv           one row per sequence;  per_frame.csv: one row per frame (and person)
    results.json            the dataset's numbers, settings, notes: what the table is printed from

Resumable: the batch skips runs that finished with the same options and frames, and a sequence whose
``scores/`` file was computed from the same ``predictions.npz`` (size and time) by the same scorer is
not scored again. Every file is written under a temporary name and renamed, so an interrupted
evaluation leaves the earlier files whole.
"""

from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..export.predictions import PREDICTIONS_FILE, Predictions
from ..options import RunOptions
from .datasets import Benchmark, DatasetError, Sequence, benchmark
from .datasets.body_models import BodyModelFiles, MissingBodyModel
from .scoring import SCORER_VERSION, SequenceScore, combine, score_sequence
from .table import format_table

__all__ = ["EvalError", "EvalOutcome", "evaluate", "prepare"]


class EvalError(ValueError):
    """An evaluation that cannot start (a dataset folder, a body model, an option); one line."""


@dataclass
class EvalOutcome:
    """What :func:`evaluate` returns: ``results`` (as written to ``results.json``) and the printed ``table``."""

    results: dict[str, Any]
    table: str
    failed: int
    # one row per scored frame ({"frame": source index, metric: value, ...}), for plots and the viewer
    per_frame: list[dict[str, Any]] = field(default_factory=list)


def prepare(name: str, root: str | os.PathLike, options: RunOptions, body_models: str | os.PathLike | None = None,
            only: list[str] | None = None) -> tuple[Benchmark, list[Sequence], BodyModelFiles]:
    """The benchmark, its sequences and the body models, every needed file checked before any frame runs."""
    try:
        bench = benchmark(name)
        sequences = bench.sequences(Path(root))
    except DatasetError as err:
        raise EvalError(str(err)) from None
    if only:
        unknown = sorted(set(only) - {s.name for s in sequences})
        if unknown:
            raise EvalError(f"no sequence {unknown[0]!r} in {root} (it has {', '.join(s.name for s in sequences[:5])}...)")
        sequences = [s for s in sequences if s.name in only]
    body = BodyModelFiles(body_models)
    try:
        body.check(bench.body_files)
        if bench.body_files:
            from ..body import find_smplx_file

            find_smplx_file(options.smplx)  # the run's own meshes
    except (MissingBodyModel, FileNotFoundError) as err:
        raise EvalError(f"{bench.title} needs {err}") from None
    return bench, sequences, body


def evaluate(name: str, root: str | os.PathLike, options: RunOptions, out_dir: str | os.PathLike, *,
             overrides: dict[str, Any] | None = None, body_models: str | os.PathLike | None = None,
             only: list[str] | None = None, ray: str = "local", workers: int | None = None,
             progress: bool = True, should_stop=None) -> EvalOutcome:
    """Run and score benchmark ``name`` from its files under ``root`` into ``out_dir``.

    Args:
        options: the run options; the benchmark's reference settings replace theirs, then ``overrides``
            (e.g. a smaller ``size`` for a quick check) replace those.
        body_models: the body-model folder (:mod:`.datasets.body_models`).
        only: score only these sequences.
        should_stop: asked during the batch; once True, running sequences end after their current frame
            (they are then reported as interrupted, not scored) and no other starts.
    """
    from ..batch import BatchError, BatchJob, run_batch
    from ..checkpoints.random_init import random_config

    bench, sequences, body = prepare(name, root, options, body_models, only)
    out = Path(out_dir)
    settings = {**bench.settings, **(overrides or {})}
    jobs = []
    for seq in sequences:
        frames = _link_frames(seq, out / "frames" / seq.name)
        jobs.append(BatchJob(str(frames), name=seq.name, options_override={**settings, "fps": seq.fps, "export_predictions": True}))
    try:
        report = run_batch(jobs, options, out / "runs", ray=ray, workers=workers, progress=progress, should_stop=should_stop)
    except BatchError as err:
        raise EvalError(str(err)) from None
    scores: dict[str, SequenceScore] = {}
    notes, failed = [], 0
    for seq, record in zip(sequences, report.records):
        if record.status not in ("done", "skipped"):
            failed += 1
            notes.append(f"{seq.name}: {record.status}" + (f" ({record.error})" if record.error else ""))
            continue
        try:
            scores[seq.name] = _score(bench, seq, Path(record.run_dir), body, out / "scores")
        except (ValueError, FileNotFoundError, MissingBodyModel) as err:
            failed += 1
            notes.append(f"{seq.name}: not scored ({err})")
    for seq_name, score in scores.items():
        notes += [f"{seq_name}: {n}" for n in score.notes]
    results = {
        "benchmark": bench.name, "title": bench.title, "task": bench.task, "model": options.model,
        "untrained": random_config(options.model) is not None,
        "settings": settings, "settings_source": bench.source,
        "sequences_total": len(sequences), "sequences_scored": len(scores),
        "frames_scored": sum(s.evaluated for s in scores.values()),
        "dataset": combine(scores) if scores else {},
        "sequences": {n: s.values for n, s in scores.items()},
        "notes": notes,
    }
    _write_tables(out, scores)
    _atomic(out / "results.json", json.dumps(results, indent=1, default=_plain))
    return EvalOutcome(results, format_table(results), failed)


def _link_frames(seq: Sequence, folder: Path) -> Path:
    """A folder of links ``000000.jpg`` ... to the sequence's images, so the batch runs exactly them, in order."""
    wanted = {f"{i:06d}{p.suffix.lower()}": p.resolve() for i, p in enumerate(seq.images)}
    folder.mkdir(parents=True, exist_ok=True)
    for entry in folder.iterdir():
        if entry.name not in wanted or not entry.is_symlink() or entry.resolve() != wanted[entry.name]:
            entry.unlink()
    for name, target in wanted.items():
        link = folder / name
        if not link.is_symlink():
            link.symlink_to(target)
    return folder


def _score(bench: Benchmark, seq: Sequence, run_dir: Path, body: BodyModelFiles, scores_dir: Path) -> SequenceScore:
    path = run_dir / PREDICTIONS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing (the run was made without export_predictions)")
    stat = path.stat()
    made_from = {"predictions": [stat.st_size, stat.st_mtime_ns], "scorer": SCORER_VERSION, "frames": len(seq.images)}
    cached = scores_dir / f"{seq.name}.json"
    try:
        saved = json.loads(cached.read_text())
        if saved.get("made_from") == made_from:
            return SequenceScore(saved["values"], saved["frames"], saved["notes"], saved["weight"], saved["evaluated"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    truth = seq.ground_truth(body)
    with Predictions(path) as predictions:
        score = score_sequence(bench, truth, predictions, body, seq.fps)
    scores_dir.mkdir(parents=True, exist_ok=True)
    _atomic(cached, json.dumps({"made_from": made_from, "values": score.values, "frames": score.frames,
                                "notes": score.notes, "weight": score.weight,
                                "evaluated": score.evaluated}, default=_plain))
    return score


def _write_tables(out: Path, scores: dict[str, SequenceScore]) -> None:
    value_names = sorted({k for s in scores.values() for k in s.values})
    _atomic(out / "sequences.csv", _csv(["sequence", *value_names], ({"sequence": n, **s.values} for n, s in scores.items())))
    frame_names = sorted({k for s in scores.values() for row in s.frames for k in row} - {"frame", "person", "track_id"})
    head = ["sequence", "frame", "person", "track_id", *frame_names]
    _atomic(out / "per_frame.csv", _csv(head, ({"sequence": n, **row} for n, s in scores.items() for row in s.frames)))


def _csv(header: list[str], rows) -> str:
    text = io.StringIO()
    writer = csv.DictWriter(text, header, restval="", extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(row)
    return text.getvalue()


def _atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    tmp.write_text(text)
    tmp.replace(path)


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
