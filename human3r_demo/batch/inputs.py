"""What a batch runs: its jobs, their run-folder names, and whether a job already finished.

A job is one source (a video file or an image folder) run into its own folder under the batch's output
folder. The folder is named after the source (``walk.mp4`` -> ``walk``); sources whose names would
collide (``a/walk.mp4`` and ``b/walk.mp4``, ``walk.mp4`` and ``walk.avi``) all get a short hash of their
full path (``walk-3f9c2a``), so the same inputs always land in the same folders and two never share one.

A job is finished when its folder's ``summary.json`` says the run completed (not stopped, no error) with
the same *fingerprint*: a hash of the job's effective options and of the source file(s) as they are on
disk (size and modification time), so a changed option or a re-recorded video is run again.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..options import RunOptions
from ..run_folder import RUN_MARKER

__all__ = ["BatchError", "BatchJob", "LIST_SUFFIXES", "expand_inputs", "fingerprint", "finished_run", "name_jobs"]

# a text file listing one input a line (relative paths are relative to the list file)
LIST_SUFFIXES = (".txt", ".lst", ".list")
# files the batch writes beside the run folders
REPORT_NAMES = ("batch.json", "batch.csv")


class BatchError(ValueError):
    """A batch that cannot start (no inputs, an unreadable list file, two jobs with one name); one line."""


@dataclass(frozen=True)
class BatchJob:
    """One source of a batch.

    Attributes:
        source: a video file or a folder of images.
        name: the run folder's name under the batch's output folder (default: from the source, see
            :func:`name_jobs`).
        options_override: options of this job that differ from the batch's (a benchmark's sequences
            can differ in ``reset_interval``), as ``{field: value}`` of :class:`RunOptions`.
    """

    source: str | os.PathLike
    name: str | None = None
    options_override: dict[str, Any] = field(default_factory=dict)

    def options(self, base: RunOptions) -> RunOptions:
        """The options this job runs with (raises :class:`~human3r_demo.options.OptionsError` for a bad override)."""
        return base.replace(**self.options_override) if self.options_override else base


def expand_inputs(inputs: list[str | os.PathLike]) -> list[BatchJob]:
    """The jobs of command-line inputs: video files and image folders as they are, list files
    (``.txt``/``.lst``/``.list``: one input a line, ``#`` comments) replaced by what they list. The same
    source given twice runs once."""
    sources: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.suffix.lower() in LIST_SUFFIXES and path.is_file():
            sources.extend(_read_list(path))
        else:
            sources.append(path)
    if not sources:
        raise BatchError("no inputs: give video files, image folders or a list file (one input a line)")
    unique: dict[str, Path] = {}
    for path in sources:
        unique.setdefault(os.path.abspath(path), path)
    return [BatchJob(source=str(path)) for path in unique.values()]


def _read_list(path: Path) -> list[Path]:
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise BatchError(f"cannot read the list file {path}: {getattr(err, 'strerror', None) or err}") from None
    entries = [line.strip() for line in lines]
    return [p if p.is_absolute() else path.parent / p for p in (Path(e) for e in entries if e and not e.startswith("#"))]


def name_jobs(jobs: list[BatchJob]) -> list[BatchJob]:
    """``jobs`` with every name set: given names kept, the others from the source (see the module's doc).

    Raises :class:`BatchError` when two jobs would share a folder."""
    stems = {i: _stem(job.source) for i, job in enumerate(jobs) if job.name is None}
    taken = Counter(stems.values()) + Counter(job.name for job in jobs if job.name is not None)
    named = []
    for i, job in enumerate(jobs):
        if job.name is None:
            stem = stems[i]
            clash = taken[stem] > 1 or stem in REPORT_NAMES
            name = f"{stem}-{hashlib.sha1(os.path.abspath(job.source).encode()).hexdigest()[:6]}" if clash else stem
            job = dataclasses.replace(job, name=name)
        elif not job.name or job.name != Path(job.name).name or job.name.startswith(".") or job.name in REPORT_NAMES:
            raise BatchError(f"the run name {job.name!r} of {job.source} is not a plain folder name")
        named.append(job)
    seen: dict[str, BatchJob] = {}
    for job in named:
        if job.name in seen:
            raise BatchError(f"{seen[job.name].source} and {job.source} would both be written to the run folder {job.name!r}")
        seen[job.name] = job
    return named


def _stem(source: str | os.PathLike) -> str:
    path = Path(os.path.abspath(source))
    stem = path.name if path.is_dir() else path.stem
    return re.sub(r"[^A-Za-z0-9._-]+", "_", stem).lstrip(".") or "input"


def fingerprint(options: RunOptions, source: str | os.PathLike) -> str:
    """A hash of everything that decides a run's files: the effective options and the source on disk."""
    content = {"options": dataclasses.asdict(options), "source": _source_signature(Path(source))}
    return hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _source_signature(path: Path) -> list:
    """Path, size and modification time of the source file, or of every file directly in a folder."""
    try:
        if path.is_dir():
            return [os.path.abspath(path), sorted((e.name, e.stat().st_size, e.stat().st_mtime_ns)
                                                  for e in os.scandir(path) if e.is_file())]
        stat = path.stat()
        return [os.path.abspath(path), stat.st_size, stat.st_mtime_ns]
    except OSError:
        return [os.path.abspath(path), None]


def finished_run(run_dir: Path, fingerprint_: str) -> dict | None:
    """The summary of a complete run in ``run_dir`` made with the same fingerprint, else ``None``."""
    try:
        summary = json.loads((run_dir / "summary.json").read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(summary, dict) or summary.get("generator") != RUN_MARKER:
        return None
    batch = summary.get("batch")
    complete = not summary.get("stopped") and summary.get("error") is None and summary.get("frames", 0) > 0
    if complete and isinstance(batch, dict) and batch.get("fingerprint") == fingerprint_:
        return summary
    return None
