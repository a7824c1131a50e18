"""The renderer checked against geometry computed here: silhouettes against triangles projected with
numpy and filled by PIL, depth order, the virtual world camera, and the video read back by PyAV.

Needs an OpenGL context (Mesa's EGL on the CPU): without one these tests skip, unless
``HUMAN3R_REQUIRE_RENDERER=1`` (CI) makes that a failure.
"""

from __future__ import annotations

import dataclasses
import threading
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import trimesh
from PIL import Image, ImageDraw, ImageFilter

import human3r_demo as h3r
from human3r_demo.render import (
    Camera,
    Mesh,
    VideoRenderer,
    WorldHistory,
    render_overlay,
)
from human3r_demo.render.world import world_camera
from human3r_demo.results import FrameResult, Person
from human3r_demo.viz.colors import track_colour
from tests.conftest import synthetic_clip

W, H = 320, 200
K = np.array([[260.0, 0.0, 150.0], [0.0, 240.0, 110.0], [0.0, 0.0, 1.0]])  # fx != fy, off-centre


def pose(angle_deg: float, axis: str, translation) -> np.ndarray:
    """(4, 4) rotation about one axis, then a translation."""
    a = np.radians(angle_deg)
    c, s = np.cos(a), np.sin(a)
    R = {"x": [[1, 0, 0], [0, c, -s], [0, s, c]], "y": [[c, 0, s], [0, 1, 0], [-s, 0, c]]}[axis]
    T = np.eye(4)
    T[:3, :3], T[:3, 3] = R, translation
    return T


def transform(T: np.ndarray, points: np.ndarray) -> np.ndarray:
    return points @ T[:3, :3].T + T[:3, 3]


def projected_silhouette(vertices_cam: np.ndarray, faces: np.ndarray, K: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(H, W) bool: every triangle projected with ``K`` and filled by PIL."""
    uv = vertices_cam @ K.T
    uv = uv[:, :2] / uv[:, 2:3] + 0.5  # our pixel (j, i) is centred on (j, i); PIL's covers [j, j + 1) x [i, i + 1)
    canvas = Image.new("L", size, 0)
    draw = ImageDraw.Draw(canvas)
    for tri in uv[faces]:
        draw.polygon([tuple(p) for p in tri], fill=1)
    return np.asarray(canvas).astype(bool)


def person(track_id: int, vertices: np.ndarray | None, head_world: np.ndarray, head_cam: np.ndarray | None = None) -> Person:
    z3, z = np.zeros(3, np.float32), np.zeros
    return Person(track_id=track_id, score=0.9, head_uv=np.zeros(2), global_orient=z3, body_pose=z((21, 3)),
                  left_hand_pose=z((15, 3)), right_hand_pose=z((15, 3)), jaw_pose=z3, betas=z(10), expression=z(10),
                  head_position=head_world if head_cam is None else head_cam, global_orient_world=z3,
                  head_position_world=head_world, vertices=vertices)


def frame(people: list[Person], camera_to_world: np.ndarray, image: np.ndarray | None = None,
          world_frame: str = "first-camera") -> FrameResult:
    """A FrameResult built by hand: a flat scene 4 m in front of the camera, ``image`` (default black)."""
    image = np.zeros((H, W, 3), np.uint8) if image is None else image
    jj, ii = np.meshgrid(np.arange(W), np.arange(H))
    rays = np.stack([(jj - K[0, 2]) / K[0, 0], (ii - K[1, 2]) / K[1, 1], np.ones((H, W))], -1)
    points = transform(camera_to_world, 4.0 * rays.reshape(-1, 3)).reshape(H, W, 3)
    return FrameResult(index=0, timestamp=0.0, image=image, camera_to_world=camera_to_world, intrinsics=K, focal=K[0, 0],
                       points=points, confidence=np.ones((H, W)), depth=np.full((H, W), 4.0), human_mask=np.zeros((H, W)),
                       head_scores=np.zeros((H, W)), scene_mask=np.ones((H, W), bool), people=people,
                       source_intrinsics=K, source_size=(W, H), world_frame=world_frame)


# ---------------------------------------------------------------------- geometry
def test_sphere_silhouette_matches_the_projection(renderer):
    sphere = trimesh.creation.icosphere(subdivisions=4, radius=0.45)
    camera_to_world = pose(25.0, "y", [0.7, -0.3, 1.2])  # world points must go through its inverse
    centre_cam = np.array([0.35, -0.2, 2.6])  # off-axis: the principal point and both focals matter
    vertices_cam = sphere.vertices + centre_cam
    world = transform(camera_to_world, vertices_cam)
    result = frame([person(3, world.astype(np.float32), world.mean(0))], camera_to_world)

    drawn = render_overlay(result, np.asarray(sphere.faces), renderer=renderer, opacity=1.0).any(-1)
    expected = projected_silhouette(vertices_cam, np.asarray(sphere.faces), K, (W, H))
    iou = (drawn & expected).sum() / (drawn | expected).sum()
    assert iou >= 0.95, iou
    # a shift of the whole picture by half a pixel hardly moves the IoU: compare the centres too
    centre = lambda mask: np.argwhere(mask).mean(0)  # noqa: E731
    assert np.abs(centre(drawn) - centre(expected)).max() < 0.15, (centre(drawn), centre(expected))


def test_overlay_draws_in_the_track_colour_over_the_image(renderer):
    box = trimesh.creation.box([0.6, 0.6, 0.6])
    image = np.full((H, W, 3), 40, np.uint8)
    result = frame([person(5, (box.vertices + [0, 0, 3.0]).astype(np.float32), np.array([0, 0, 3.0]))], np.eye(4), image)
    out = render_overlay(result, np.asarray(box.faces), renderer=renderer, opacity=1.0)
    assert out.shape == (H, W, 3) and out.dtype == np.uint8
    inside = out[int(K[1, 2]), int(K[0, 2])].astype(float)
    colour = track_colour(5).astype(float)
    # shaded: a multiple of the track colour (lighting scales it), not the image
    assert np.corrcoef(inside, colour)[0, 1] > 0.95, (inside, colour)
    assert (out[0, 0] == 40).all()  # the image where no mesh is
    half = render_overlay(result, np.asarray(box.faces), renderer=renderer, opacity=0.5)[int(K[1, 2]), int(K[0, 2])]
    assert np.allclose(half, 0.5 * inside + 0.5 * 40, atol=2)


@pytest.mark.parametrize("order", ["near first", "far first"])
def test_the_nearer_mesh_wins_where_they_overlap(renderer, order):
    box = trimesh.creation.box([0.8, 0.8, 0.8])
    faces = np.asarray(box.faces)
    red, blue = np.array([230, 40, 40], np.uint8), np.array([40, 40, 230], np.uint8)
    near = Mesh((box.vertices + [-0.2, 0.0, 2.5]).astype(np.float32), faces, red)
    far = Mesh((box.vertices + [0.2, 0.1, 3.5]).astype(np.float32), faces, blue)
    meshes = [near, far] if order == "near first" else [far, near]
    rgba = renderer.render(Camera(K, np.eye(4), W, H), meshes=meshes)

    near_mask = projected_silhouette(near.vertices, faces, K, (W, H))
    far_mask = projected_silhouette(far.vertices, faces, K, (W, H))
    # a pixel's margin away from every edge, so anti-aliasing does not count
    shrink = lambda m: np.asarray(Image.fromarray(m.astype(np.uint8) * 255).filter(ImageFilter.MinFilter(5))) > 0  # noqa: E731
    both, far_only = shrink(near_mask & far_mask), shrink(far_mask & ~near_mask)
    assert both.sum() > 500 and far_only.sum() > 500  # the test's own premise: they overlap, partly
    assert (rgba[both][:, 0] > rgba[both][:, 2]).all()  # red in front
    assert (rgba[far_only][:, 2] > rgba[far_only][:, 0]).all()  # blue where it is alone


def test_closed_meshes_show_their_outside_only(renderer):
    box = trimesh.creation.box([1.0, 1.0, 1.0])  # counter-clockwise seen from outside, like SMPL-X
    faces, colour = np.asarray(box.faces), np.array([255, 255, 255], np.uint8)
    camera = Camera(K, np.eye(4), W, H)
    outside = renderer.render(camera, meshes=[Mesh((box.vertices + [0, 0, 3.0]).astype(np.float32), faces, colour)])
    inside = renderer.render(camera, meshes=[Mesh(box.vertices.astype(np.float32), faces, colour)])
    assert outside[..., 3].mean() > 0.05 * 255 and not inside[..., 3].any()


def test_a_person_without_a_mesh_is_a_disc_at_the_head(renderer):
    head_cam = np.array([-0.4, 0.1, 3.0])
    camera_to_world = pose(-10.0, "x", [0.0, 0.5, -1.0])
    result = frame([person(2, None, transform(camera_to_world, head_cam[None])[0], head_cam)], camera_to_world)
    drawn = render_overlay(result, None, renderer=renderer, opacity=1.0).any(-1)
    u, v = (K @ head_cam)[:2] / head_cam[2]
    rows, cols = np.nonzero(drawn)
    assert 50 < drawn.sum() < 2000
    assert abs(cols.mean() - u) < 1.0 and abs(rows.mean() - v) < 1.0


@pytest.mark.parametrize("world_frame", ["first-camera", "floor"])
def test_the_world_camera_looks_at_the_first_camera_from_behind_and_above(world_frame):
    up = np.array([0.0, -1.0, 0.0]) if world_frame == "first-camera" else np.array([0.0, 1.0, 0.0])
    # floor worlds are +y up, z back: the first camera 1.6 m up, looking along -z (turned 180 degrees about x)
    first = np.eye(4) if world_frame == "first-camera" else pose(180.0, "x", [0.0, 1.6, 0.0])
    result = frame([], first, world_frame=world_frame)
    history = WorldHistory()
    history.add(result)
    view = world_camera(history, result, 400, 300)
    assert history.scale == pytest.approx(4.0, rel=0.3)  # the flat scene is 4 m away (a little more off axis)

    def pixel(p: np.ndarray) -> np.ndarray:
        cam = transform(view.world_to_camera, p[None])[0]
        assert cam[2] > 0, "behind the virtual camera"
        return (view.K @ cam)[:2] / cam[2]

    centre, forward = first[:3, 3], first[:3, 2]
    for p in (centre, centre + 3.0 * forward):  # the camera and the scene ahead of it are in view
        u, v = pixel(p)
        assert 0 <= u < 400 and 0 <= v < 300, (p, u, v)
    assert pixel(centre + up)[1] < pixel(centre)[1]  # the world's up is up on screen
    eye = np.linalg.inv(view.world_to_camera)[:3, 3]
    assert (eye - centre) @ up > 0 and (eye - centre) @ forward < 0  # above, and behind


def test_the_camera_path_stays_bounded_and_whole():
    first = frame([], np.eye(4))
    history = WorldHistory(max_positions=64)
    for i in range(1000):
        moved = np.eye(4)
        moved[0, 3] = 0.01 * i
        history.add(dataclasses.replace(first, camera_to_world=moved))
    x = history.positions[:, 0]
    assert 32 <= len(x) <= 64
    assert x[0] == 0.0 and x[-1] > 9.5 and (np.diff(x) > 0).all()  # the start, the latest stretch, in order


def test_the_renderer_serves_any_thread(renderer):
    box = trimesh.creation.box([0.5, 0.5, 0.5])
    mesh = Mesh((box.vertices + [0, 0, 3.0]).astype(np.float32), np.asarray(box.faces), np.array([200, 200, 0], np.uint8))
    out = {}
    worker = threading.Thread(target=lambda: out.setdefault("rgba", renderer.render(Camera(K, np.eye(4), W, H), meshes=[mesh])))
    worker.start()
    worker.join()
    assert out["rgba"][..., 3].any()


# ---------------------------------------------------------------------- video
@pytest.fixture(scope="module")
def results(renderer, tiny_model, smplx_dir: Path) -> tuple[list[FrameResult], np.ndarray]:
    """Real FrameResults: the untrained tiny model and the SMPL-X stand-in on a synthetic clip
    (asks for ``renderer`` so that the video tests skip, or fail, as the others do without OpenGL)."""
    body = h3r.BodyModel(smplx_dir)
    frames = list(h3r.reconstruct(synthetic_clip(5, 180, 320, seed=3), tiny_model, body_model=body, precision="fp32"))
    assert any(p.vertices is not None for r in frames for p in r.people), "the test needs meshes"
    return frames, body.faces


def read_video(path: Path) -> tuple[int, tuple[int, int], Fraction]:
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        count = sum(1 for _ in container.decode(stream))
        return count, (stream.codec_context.width, stream.codec_context.height), stream.average_rate


@pytest.mark.parametrize("layout, size, expected", [("side-by-side", None, (1024, 288)), ("overlay", 256, (256, 144)),
                                                    ("world", 255, (254, 142))])
def test_the_video_has_every_frame_at_its_rate_and_size(results, tmp_path: Path, layout, size, expected):
    frames, faces = results
    path = tmp_path / "out" / "run.mp4"
    with VideoRenderer(path, 12.5, faces, layout=layout, size=size) as video:
        for result in frames:
            picture = video.add(result)
            assert picture.shape == (expected[1], expected[0], 3)
        assert not path.exists()  # the final name only once complete (the encoder writes run.partial.mp4 until then)
    assert sorted(p.name for p in path.parent.iterdir()) == ["run.mp4"]
    count, frame_size, rate = read_video(path)
    assert count == len(frames)
    assert frame_size == expected
    assert rate == Fraction(25, 2)


def test_an_interrupted_video_leaves_no_file(results, renderer, tmp_path: Path):
    frames, faces = results
    with pytest.raises(KeyboardInterrupt):
        with VideoRenderer(tmp_path / "run.mp4", 10, faces, size=128, renderer=renderer) as video:
            for i in range(100):  # until the encoder has written something (it holds a few frames back)
                video.add(frames[i % len(frames)])
                if (tmp_path / "run.partial.mp4").exists():
                    break
            assert (tmp_path / "run.partial.mp4").exists()
            raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(RuntimeError, match="closed"):
        video.add(frames[0])
    assert render_overlay(frames[0], faces, renderer=renderer).shape == frames[0].image.shape  # a shared renderer stays open
