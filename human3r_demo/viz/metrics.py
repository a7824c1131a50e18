"""Per-frame evaluation metrics as Rerun time series, on the recording's ``frame`` timeline.

Beside the 3D view, a reader then sees *where along the clip* the error comes from: a reset, a person
walking out of view, a fast turn. Each metric is one entity ``metrics/<unit>/<name>`` (one more level
per track for body metrics), so one plot per unit never mixes millimetres with percent::

    from human3r_demo.evaluation import metrics
    from human3r_demo.viz.metrics import log_metric_series, metrics_views

    log_metric_series(rec, "pa_mpjpe", metrics.pa_mpjpe(pred, gt), frames, track=3)
    log_metric_series(rec, "ate", metrics.ate(pred_T, gt_T).values, frames)
    rec.send_blueprint(rrb.Blueprint(rrb.Horizontal(my_views, rrb.Vertical(*metrics_views(["mm", "m"])))))

or, while a run streams, :class:`FrameMetricsLogger` for one frame at a time.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import rerun as rr
import rerun.blueprint as rrb

__all__ = ["METRICS", "METRICS_ROOT", "FrameMetricsLogger", "log_metric_series", "metric_path", "metrics_views"]

METRICS_ROOT = "metrics"

# name -> (label, unit) of each per-frame metric of human3r_demo.evaluation.metrics
METRICS: dict[str, tuple[str, str]] = {
    "mpjpe": ("MPJPE", "mm"),
    "pa_mpjpe": ("PA-MPJPE", "mm"),
    "pve": ("PVE", "mm"),
    "w_mpjpe": ("W-MPJPE", "mm"),
    "wa_mpjpe": ("WA-MPJPE", "mm"),
    "rte": ("RTE", "percent"),
    "jitter": ("jitter", "10 m/s^3"),
    "ate": ("ATE", "m"),
    "rpe_translation": ("RPE translation", "m"),
    "rpe_rotation": ("RPE rotation", "deg"),
    "abs_rel": ("AbsRel", "ratio"),
    "delta_1_25": ("delta < 1.25", "ratio"),
}


def _unit_segment(unit: str) -> str:
    return unit.replace(" ", "_").replace("/", "_per_").replace("^", "")


def metric_path(name: str, unit: str | None = None, track: int | None = None) -> str:
    """The entity of a metric: ``metrics/<unit>/<name>`` or ``metrics/<unit>/<name>/track_<id>``."""
    unit = unit if unit is not None else _known(name)[1]
    path = f"{METRICS_ROOT}/{_unit_segment(unit)}/{name}"
    return path if track is None else f"{path}/track_{track}"


def _known(name: str) -> tuple[str, str]:
    if name not in METRICS:
        raise ValueError(f"unknown metric {name!r}: pass its unit (known: {', '.join(METRICS)})")
    return METRICS[name]


def _series_label(name: str, unit: str | None, track: int | None) -> tuple[str, str]:
    """The legend of a series and its unit."""
    if unit is None:
        label, unit = _known(name)
    else:
        label = METRICS.get(name, (name, unit))[0]
    suffix = "" if track is None else f", track {track}"
    return f"{label} ({unit}{suffix})", unit


def log_metric_series(
    rec: rr.RecordingStream,
    name: str,
    values: Sequence[float] | np.ndarray,
    frames: Sequence[int] | np.ndarray,
    *,
    unit: str | None = None,
    track: int | None = None,
) -> int:
    """Log one metric's per-frame values at once (``send_columns``) on the ``frame`` timeline.

    Args:
        rec: the recording.
        name: a key of :data:`METRICS` (``"pa_mpjpe"``), or any name with its ``unit``.
        values: (N,) the metric, one value per entry of ``frames``; non-finite values (frames without
            a match) are left out, so the plot shows a gap rather than a fake zero.
        frames: (N,) the frame index of each value (the ``frame`` timeline of the recording, i.e.
            :attr:`FrameResult.index`).
        unit: the unit (needed for names not in :data:`METRICS`).
        track: the person's track id, for body metrics.

    Returns:
        How many values were logged.
    """
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    frames = np.asarray(frames).reshape(-1)
    if len(values) != len(frames):
        raise ValueError(f"{name}: {len(values)} values for {len(frames)} frames")
    if not np.issubdtype(frames.dtype, np.integer):
        raise ValueError(f"{name}: frame indices must be integers, got {frames.dtype}")
    label, unit = _series_label(name, unit, track)
    path = metric_path(name, unit, track)
    rec.log(path, rr.SeriesLines(names=label), static=True)
    keep = np.isfinite(values)
    if keep.any():
        rr.send_columns(path, indexes=[rr.TimeColumn("frame", sequence=frames[keep])],
                        columns=rr.Scalars.columns(scalars=values[keep]), recording=rec)
    return int(keep.sum())


class FrameMetricsLogger:
    """Logs metrics one frame at a time while a run streams (known names of :data:`METRICS`).

    Each series' legend is logged once (static); a non-finite value (no match this frame) is skipped.
    """

    def __init__(self, rec: rr.RecordingStream) -> None:
        self.rec = rec
        self.declared: set[str] = set()

    def log(self, frame: int, values: Mapping[str, float], *, track: int | None = None) -> None:
        """Log ``values`` (name -> value) at ``frame`` on the ``frame`` timeline."""
        self.rec.set_time("frame", sequence=int(frame))
        for name, value in values.items():
            label, unit = _series_label(name, None, track)
            path = metric_path(name, unit, track)
            if path not in self.declared:
                self.rec.log(path, rr.SeriesLines(names=label), static=True)
                self.declared.add(path)
            if np.isfinite(value):
                self.rec.log(path, rr.Scalars(float(value)))


def metrics_views(units: Iterable[str] = ("mm", "percent", "m", "deg", "ratio")) -> list[rrb.TimeSeriesView]:
    """One time-series view per unit, for a blueprint beside the 3D views."""
    return [rrb.TimeSeriesView(origin=f"{METRICS_ROOT}/{_unit_segment(u)}", name=f"Metrics ({u})") for u in units]
