"""One scene-point filter: the viewer and scene.ply show the same points."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rerun as rr
import trimesh
from rerun.chunk import RrdReader

import human3r_demo as h3r
from human3r_demo.export import Exporter
from human3r_demo.scene import scene_point_mask
from human3r_demo.viz.rerun import RerunLogger
from tests.conftest import synthetic_clip


def test_viewer_and_scene_ply_use_the_same_points(tiny_model, tmp_path: Path) -> None:
    options = h3r.RunOptions(viewer_points=10**7, scene_points=10**8, mask_dilation=6, confidence_threshold=2.5)
    results = list(h3r.reconstruct(synthetic_clip(4, 180, 320, seed=2), tiny_model, options, body_model=None))
    # the filter: confident, not people (the mask grown by the dilation), finite
    for r in results:
        people = r.human_mask > options.mask_threshold
        assert r.scene_mask.sum() > 0 and not (r.scene_mask & people).any()
        assert not (r.scene_mask & (r.confidence <= options.confidence_threshold)).any()
        undilated = scene_point_mask(r.confidence, r.human_mask, r.points, confidence_threshold=2.5,
                                     mask_threshold=options.mask_threshold, mask_dilation=0)
        assert (r.scene_mask <= undilated).all() and r.scene_mask.sum() < undilated.sum()  # the dilation removed more

    rec = rr.RecordingStream("scene-test", recording_id="scene-test")
    rec.save(str(tmp_path / "run.rrd"))
    logger = RerunLogger(rec, None, options)
    with Exporter(tmp_path / "exports", fps=10.0, options=options) as exporter:
        for r in results:
            logger.log(r)
            exporter.add(r)
    rec.flush()
    rec.disconnect()

    logged = []
    for chunk in RrdReader(tmp_path / "run.rrd").stream():
        if chunk.entity_path == "/world/points" and not chunk.is_static:
            column = chunk.to_record_batch().column("Points3D:positions")
            logged += [np.asarray(column[i].values.flatten()).reshape(-1, 3) for i in range(len(column))]
    assert len(logged) == len(results)
    for points, r in zip(logged, results):
        np.testing.assert_array_equal(_rows(points), _rows(r.scene_points[0]))  # every frame: exactly the filter's points

    cloud = trimesh.load(tmp_path / "exports" / "scene.ply")  # read back by an independent reader
    everything = np.concatenate([r.scene_points[0] for r in results])
    np.testing.assert_array_equal(_rows(np.asarray(cloud.vertices, np.float32)), _rows(everything))  # all of them, nothing else


def _rows(points: np.ndarray) -> np.ndarray:
    """Points as a sorted set of rows (order-free comparison)."""
    return np.unique(np.asarray(points, np.float32), axis=0)
