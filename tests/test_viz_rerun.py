"""Rerun logging: a recording saved to .rrd and read back."""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
import rerun as rr
from rerun.chunk import RrdReader

import human3r_demo as h3r
from human3r_demo.body import BodyModel
from human3r_demo.viz.rerun import RerunLogger, default_blueprint, display_intrinsics
from tests.conftest import synthetic_clip


@pytest.fixture(scope="module")
def recorded(tiny_model, smplx_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    body = BodyModel(smplx_dir)
    results = list(h3r.reconstruct(synthetic_clip(8, 180, 320, seed=2), tiny_model, body_model=body))
    path = tmp_path_factory.mktemp("rrd") / "run.rrd"
    rec = rr.RecordingStream("human3r_demo_test", recording_id="test")
    rec.save(str(path))
    rec.send_blueprint(default_blueprint(accumulate_points=True))
    logger = RerunLogger(rec, body.faces, h3r.RunOptions(viewer_points=500))
    for result in results:
        logger.log(result, fps=2.0)
    rec.flush()
    rec.disconnect()
    chunks = defaultdict(list)
    for chunk in RrdReader(path).stream():
        chunks[chunk.entity_path].append(chunk)
    return results, chunks, body


def temporal_rows(chunks, path: str) -> int:
    return sum(c.num_rows for c in chunks.get(path, []) if not c.is_static)


def test_entity_layout_and_frame_timeline(recorded) -> None:
    results, chunks, _ = recorded
    for path in ("/world/camera", "/world/camera/image", "/world/points", "/world/camera/image/mask", "/stats/people"):
        assert temporal_rows(chunks, path) == len(results), path
        assert all("frame" in c.timeline_names for c in chunks[path] if not c.is_static)
    assert temporal_rows(chunks, "/world/trajectory") == len(results) - 1  # one segment per move
    assert any(c.is_static for c in chunks["/world"])  # ViewCoordinates set once


def test_one_mesh_per_track_with_static_faces_and_clears(recorded) -> None:
    results, chunks, body = recorded
    tracks = sorted({tid for r in results for tid in r.track_ids})
    assert len(tracks) >= 2
    people = sorted(p for p in chunks if p.count("/") == 3 and p.startswith("/world/people/"))
    assert people == sorted(f"/world/people/{t}" for t in tracks)
    for tid in tracks:
        path = f"/world/people/{tid}"
        static = [c for c in chunks[path] if c.is_static]
        assert len(static) == 1
        names = static[0].to_record_batch().schema.names
        assert any("triangle_indices" in n for n in names) and not any("vertex_positions" in n for n in names)
        triangles = next(static[0].to_record_batch().column(n) for n in names if "triangle_indices" in n)
        assert len(triangles[0].values) == len(body.faces)
        present = [r.index for r in results if tid in r.track_ids]
        absent_after_seen = [
            r.index for i, r in enumerate(results)
            if tid not in r.track_ids and i > 0 and tid in results[i - 1].track_ids
        ]
        # vertices on every frame the person is seen, a Clear on every frame they vanish
        assert temporal_rows(chunks, path) == len(present) + len(absent_after_seen)
        clears = [n for c in chunks[path] if not c.is_static for n in c.to_record_batch().schema.names if "Clear" in n or "clear" in n]
        assert bool(clears) == bool(absent_after_seen)


def test_degenerate_focal_is_displayable() -> None:
    K = np.diag([0.0, 0.0, 1.0]).astype(np.float32)
    fixed = display_intrinsics(K, 288, 512)
    assert fixed[0, 0] == pytest.approx(512 / (2 * np.tan(np.radians(30))))
    good = np.array([[400, 0, 256], [0, 400, 144], [0, 0, 1]], np.float32)
    assert display_intrinsics(good, 288, 512) is good


def test_with_a_renderer_the_camera_view_shows_shaded_meshes_not_dots(recorded, renderer, tmp_path: Path) -> None:
    results, _, body = recorded
    path = tmp_path / "rendered.rrd"
    rec = rr.RecordingStream("human3r_demo_test", recording_id="rendered")
    rec.save(str(path))
    logger = RerunLogger(rec, body.faces, h3r.RunOptions(viewer_points=500), renderer=renderer)
    for result in results:
        logger.log(result)
    rec.flush()
    rec.disconnect()
    entities = {chunk.entity_path for chunk in RrdReader(path).stream()}
    assert "/world/camera/image" in entities and "/world/camera/image/people" not in entities  # no vertex dots
    # a person moved 2 m in front of the camera (the untrained model's bodies may be anywhere)
    result = next(r for r in results if any(p.vertices is not None for p in r.people))
    person = next(p for p in result.people if p.vertices is not None)
    ahead = result.camera_to_world[:3, :3] @ np.array([0.0, 0.0, 2.0]) + result.camera_to_world[:3, 3]
    moved = dataclasses.replace(person, vertices=person.vertices - person.vertices.mean(0) + ahead)
    result = dataclasses.replace(result, people=[moved])
    shown = logger._camera_image(result)
    changed = (shown != result.image).any(-1)
    assert shown.shape == result.image.shape and 0.005 < changed.mean() < 1.0  # the bodies drawn over part of the frame
