"""Per-frame metrics as Rerun time series: saved to .rrd and read back with Rerun's own reader."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
import rerun as rr
import rerun.blueprint as rrb
from rerun.chunk import RrdReader

from human3r_demo.evaluation import metrics
from human3r_demo.viz.metrics import FrameMetricsLogger, log_metric_series, metric_path, metrics_views


def read_back(path: Path) -> dict[str, dict]:
    """entity -> {"frames": [...], "values": [...], "labels": [...]} from the .rrd."""
    out: dict[str, dict] = defaultdict(lambda: {"frames": [], "values": [], "labels": []})
    for chunk in RrdReader(path).stream():
        batch = chunk.to_record_batch()
        names = batch.schema.names
        entry = out[chunk.entity_path]
        if "SeriesLines:names" in names:
            entry["labels"] += [v[0] for v in batch.column("SeriesLines:names").to_pylist()]
        if "Scalars:scalars" in names:
            assert "frame" in chunk.timeline_names
            entry["frames"] += batch.column("frame").to_pylist()
            entry["values"] += [v[0] for v in batch.column("Scalars:scalars").to_pylist()]
    return out


def test_series_land_on_the_frame_timeline_with_gaps_for_missing_values(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    gt = rng.normal(size=(6, 24, 3))
    pred = gt + rng.normal(scale=0.02, size=gt.shape)
    frames = np.array([10, 11, 12, 14, 15, 16])  # frame 13 has no ground truth
    pa = metrics.pa_mpjpe(pred, gt)
    pa[2] = np.nan  # no match in frame 12
    path = tmp_path / "metrics.rrd"
    rec = rr.RecordingStream("human3r_demo_test", recording_id="metrics")
    rec.save(str(path))
    assert log_metric_series(rec, "pa_mpjpe", pa, frames, track=3) == 5
    log_metric_series(rec, "rte", metrics.rte(pred[:, 0], gt[:, 0]), frames)
    log_metric_series(rec, "custom", [1.0, 2.0], [0, 1], unit="px")
    live = FrameMetricsLogger(rec)
    for frame, value in ((0, 0.5), (1, float("nan")), (2, 0.7)):
        live.log(frame, {"ate": value})
    rec.send_blueprint(rrb.Blueprint(rrb.Vertical(*metrics_views(["mm", "percent", "m"]))))
    rec.flush()
    rec.disconnect()

    series = read_back(path)
    pa_path = "/" + metric_path("pa_mpjpe", track=3)
    assert pa_path == "/metrics/mm/pa_mpjpe/track_3"
    keep = np.isfinite(pa)
    assert series[pa_path]["frames"] == frames[keep].tolist()
    np.testing.assert_allclose(series[pa_path]["values"], pa[keep], rtol=1e-12)
    assert series[pa_path]["labels"] == ["PA-MPJPE (mm, track 3)"]
    assert series["/metrics/percent/rte"]["frames"] == frames.tolist()
    assert series["/metrics/px/custom"]["values"] == [1.0, 2.0]
    assert series["/metrics/m/ate"]["frames"] == [0, 2] and series["/metrics/m/ate"]["values"] == [0.5, 0.7]
    assert series["/metrics/m/ate"]["labels"] == ["ATE (m)"]  # the legend once, not per frame


def test_bad_series_are_refused_in_one_line() -> None:
    rec = rr.RecordingStream("human3r_demo_test", recording_id="bad")
    with pytest.raises(ValueError, match="3 values for 2 frames"):
        log_metric_series(rec, "mpjpe", [1.0, 2.0, 3.0], [0, 1])
    with pytest.raises(ValueError, match="unknown metric"):
        log_metric_series(rec, "accuracy", [1.0], [0])
    with pytest.raises(ValueError, match="integers"):
        log_metric_series(rec, "mpjpe", [1.0], [0.5])
