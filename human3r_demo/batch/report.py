"""What a batch tells people: one record per clip, ``batch.json`` + ``batch.csv``, and one progress bar.

Both files are rewritten (atomically: a temporary file moved over the old one) every time a clip ends,
so they describe the batch so far even if the command itself is killed.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["BatchReport", "ClipRecord", "ProgressBar", "STATUSES"]

# done: run now; skipped: a finished run with the same options was already there; failed: an error
# (after the retries); interrupted: stopped by Ctrl-C, or never started (attempts 0)
STATUSES = ("done", "skipped", "failed", "interrupted")


@dataclass
class ClipRecord:
    """How one input of the batch ended.

    Attributes:
        input: the source as given; name: its run folder's name; run_dir: the run folder.
        status: one of :data:`STATUSES`.
        frames: frames processed (for a skipped run: those of the run found); seconds: the clip's wall
            time on its worker (model loading included for a worker's first clip); fps: frames / seconds.
        error: one line when the clip failed (its last attempt's error).
        worker: ``host:pid`` of the worker that ran it last; device: the device it ran on (``cpu``,
            ``cuda:0`` with the physical GPU id of that node).
        attempts: how many times it was started (0: never, e.g. skipped or interrupted before its turn).
    """

    input: str
    name: str
    run_dir: str
    status: str = "interrupted"
    frames: int = 0
    seconds: float = 0.0
    fps: float = 0.0
    error: str | None = None
    worker: str | None = None
    device: str | None = None
    attempts: int = 0

    def ended(self, status: str, frames: int = 0, seconds: float = 0.0, error: str | None = None) -> None:
        self.status, self.frames, self.seconds, self.error = status, frames, round(seconds, 3), error
        self.fps = round(frames / seconds, 3) if seconds > 0 else 0.0


@dataclass
class BatchReport:
    """Every clip's record, in the order of the inputs; ``seconds``: the batch's wall time; ``workers``:
    the worker processes (``host:pid``) that ran clips."""

    records: list[ClipRecord]
    out_dir: Path
    seconds: float = 0.0
    workers: list[str] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.records)

    @property
    def ok(self) -> bool:
        """Every clip is done or was already done."""
        return all(r.status in ("done", "skipped") for r in self.records)

    @property
    def summary_line(self) -> str:
        counts = ", ".join(f"{self.count(s)} {s}" for s in STATUSES if self.count(s))
        frames = sum(r.frames for r in self.records if r.status == "done")
        rate = f", {frames / self.seconds:.2f} frames/s" if self.seconds > 0 and frames else ""
        return (f"batch: {len(self.records)} clip(s): {counts or 'nothing to do'}; {frames} frame(s) computed in "
                f"{self.seconds:.1f} s{rate}; report in {self.out_dir / 'batch.json'}")

    def write(self) -> None:
        """``batch.json`` (the summary and every record) and ``batch.csv`` (one row per clip) in ``out_dir``."""
        rows = [dataclasses.asdict(r) for r in self.records]
        summary = {"clips": len(rows), **{s: self.count(s) for s in STATUSES}, "seconds": round(self.seconds, 3),
                   "workers": self.workers}
        _atomic(self.out_dir / "batch.json", json.dumps({"summary": summary, "clips": rows}, indent=1))
        table = io.StringIO()
        writer = csv.DictWriter(table, fieldnames=[f.name for f in dataclasses.fields(ClipRecord)], lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        _atomic(self.out_dir / "batch.csv", table.getvalue())


def _atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.partial-{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


class ProgressBar:
    """One tqdm bar over the frames of every clip to compute, with the clips done / failed / remaining.

    A clip's frames count from its last attempt (a retried clip starts again from 0)."""

    def __init__(self, totals: dict[int, int | None], *, disable: bool = False) -> None:
        from tqdm import tqdm

        self.totals = dict(totals)
        self.done: dict[int, int] = {}
        self.clips = {"done": 0, "failed": 0}
        self.bar = tqdm(total=self._total(), unit="frame", disable=disable, dynamic_ncols=True, smoothing=0.1)
        self._postfix()

    def _total(self) -> int:
        return sum(t or 0 for t in self.totals.values())

    def frames(self, job: int, done: int, total: int | None) -> None:
        """Job ``job`` has processed ``done`` frames of ``total`` (in its current attempt)."""
        if total and total != self.totals.get(job):
            self.totals[job] = total
            self.bar.total = self._total()
        self.done[job] = done
        self.bar.n = sum(self.done.values())
        self.bar.refresh()

    def clip(self, job: int, status: str, frames: int) -> None:
        """Job ``job`` ended: its bar share becomes the frames it really processed (for a failed one: 0)."""
        self.totals[job] = self.done[job] = frames if status == "done" else 0
        if status in self.clips:
            self.clips[status] += 1
        self.bar.total = self._total()
        self.bar.n = sum(self.done.values())
        self._postfix()

    def _postfix(self) -> None:
        left = len(self.totals) - sum(self.clips.values())
        self.bar.set_postfix_str(f"clips {self.clips['done']} done, {self.clips['failed']} failed, {left} left")

    def close(self) -> None:
        self.bar.close()
