"""Every export read back by an independent reader of its format and checked against the run's FrameResults.

glTF: the Khronos validator, then pygltflib and forward kinematics written here; BVH: bvhio; SMPL-X
npz: the smplx package; TUM: numpy; world frames and intrinsics against geometry built by hand.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import roma
import torch

import human3r_demo as h3r
from human3r_demo.export.cameras import usable_focal
from human3r_demo.session import Session
from human3r_demo.smplx_layout import AMASS_SLICES, NUM_JOINTS, ROTATION_SLICES
from human3r_demo.world import WorldFrame, fit_floor
from tests.conftest import synthetic_clip
from tests.validators import validate_gltf

FPS = 12.5


def run(tiny_model, smplx_dir: Path, out: Path, world: str) -> tuple[Path, list[h3r.FrameResult]]:
    options = h3r.RunOptions(precision="fp32", reset_interval=4, smplx=str(smplx_dir), world=world, fps=FPS, max_frames=10)
    session = Session(synthetic_clip(10, 180, 320, seed=2), options, out, models=tiny_model)
    results = [p.result for p in session.run()]
    assert session.outcome.error is None, session.outcome.error
    return out, results


@pytest.fixture(scope="module", params=["first-camera", "floor"])
def exported(request, tiny_model, smplx_dir: Path, tmp_path_factory) -> tuple[Path, list[h3r.FrameResult], str]:
    out, results = run(tiny_model, smplx_dir, tmp_path_factory.mktemp("exports") / "out", request.param)
    return out, results, request.param


# ---------------------------------------------------------------------- glTF
def read_glb(path: Path):
    import pygltflib

    gltf = pygltflib.GLTF2().load(str(path))
    blob = gltf.binary_blob()
    sizes = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4, "MAT4": 16}
    types = {pygltflib.FLOAT: np.float32, pygltflib.UNSIGNED_BYTE: np.uint8, pygltflib.UNSIGNED_INT: np.uint32}

    def array(index: int) -> np.ndarray:
        acc = gltf.accessors[index]
        view = gltf.bufferViews[acc.bufferView]
        data = np.frombuffer(blob, types[acc.componentType], acc.count * sizes[acc.type], view.byteOffset + (acc.byteOffset or 0))
        return data.reshape(acc.count, sizes[acc.type]) if sizes[acc.type] > 1 else data

    return gltf, array


def sample(keys: np.ndarray, values: np.ndarray, t: float, interpolation: str) -> np.ndarray:
    """A glTF sampler at time ``t``: clamped outside its keys, STEP holds, LINEAR interpolates (glTF 2.0, 3.11)."""
    if t <= keys[0]:
        return values[0]
    if t >= keys[-1]:
        return values[-1]
    k = int(np.searchsorted(keys, t, side="right")) - 1
    if interpolation == "STEP" or abs(t - keys[k]) < 1e-6:
        return values[k]
    w = (t - keys[k]) / (keys[k + 1] - keys[k])
    return (1 - w) * values[k] + w * values[k + 1]  # (translations only: rotations are sampled on their keys here)


def node_transforms(gltf, array, t: float) -> list[np.ndarray]:
    """Every node's global 4x4 at time ``t`` (seconds)."""
    animated: dict[tuple[int, str], np.ndarray] = {}
    for channel in gltf.animations[0].channels:
        sampler = gltf.animations[0].samplers[channel.sampler]
        value = sample(array(sampler.input), array(sampler.output), t, sampler.interpolation)
        animated[(channel.target.node, channel.target.path)] = value
    parents = {c: i for i, n in enumerate(gltf.nodes) for c in n.children}
    cache: dict[int, np.ndarray] = {}

    def local(i: int) -> np.ndarray:
        node = gltf.nodes[i]
        t = animated.get((i, "translation"), node.translation or [0, 0, 0])
        q = animated.get((i, "rotation"), node.rotation or [0, 0, 0, 1])
        s = animated.get((i, "scale"), node.scale or [1, 1, 1])
        M = np.eye(4)
        M[:3, :3] = roma.unitquat_to_rotmat(torch.tensor(np.asarray(q, np.float64))).numpy() * np.asarray(s, np.float64)
        M[:3, 3] = t
        return M

    def glob(i: int) -> np.ndarray:
        if i not in cache:
            cache[i] = (glob(parents[i]) if i in parents else np.eye(4)) @ local(i)
        return cache[i]

    return [glob(i) for i in range(len(gltf.nodes))]


def test_run_glb_is_valid_and_animates_the_run(exported) -> None:
    out, results, world = exported
    report = validate_gltf(out / "run.glb", out / "people.glb")
    assert (report[0]["numErrors"], report[0]["numWarnings"]) == (0, 0), report[0]["messages"][:5]
    assert report[1]["numErrors"] == 0
    gltf, array = read_glb(out / "run.glb")
    names = {n.name: i for i, n in enumerate(gltf.nodes)}
    assert [a.name for a in gltf.animations] == ["run"] and len(gltf.cameras) == 1  # what README tells three.js users
    up = np.diag([1.0, -1.0, -1.0]) if world == "first-camera" else np.eye(3)  # the world, stood up
    camera_node = names["camera"]
    camera_sampler = next(gltf.animations[0].samplers[c.sampler] for c in gltf.animations[0].channels if c.target.node == camera_node)
    times = array(camera_sampler.input)
    np.testing.assert_allclose(times, np.arange(len(results)) / FPS, atol=1e-5)  # the frames' times
    tracks = sorted({t for r in results for t in r.track_ids})
    assert len(tracks) >= 2 and all(f"track_{t}" in names for t in tracks)
    checked = 0
    for k, result in enumerate(results):
        globals_ = node_transforms(gltf, array, float(times[k]))
        camera = globals_[names["camera"]]
        np.testing.assert_allclose(camera[:3, 3], up @ result.camera_to_world[:3, 3], atol=1e-5)
        np.testing.assert_allclose(camera[:3, :3], up @ result.camera_to_world[:3, :3] @ np.diag([1.0, -1.0, -1.0]), atol=1e-5)
        for t in tracks:
            person = next((p for p in result.people if p.track_id == t), None)
            scale = np.linalg.norm(globals_[names[f"track_{t}"]][:3, 0])
            assert scale == (1.0 if person is not None else 0.0)  # hidden while not tracked
            if person is None:
                continue
            fk = np.stack([globals_[names[f"track_{t}/{name}"]][:3, 3] for name in h3r.smplx_layout.JOINT_NAMES])
            np.testing.assert_allclose(fk, person.joints[:NUM_JOINTS] @ up.T, atol=1e-3)  # within 1 mm
            checked += 1
    assert checked >= 10
    skins = {s.name for s in gltf.skins}
    assert skins == {f"track_{t}" for t in tracks}
    assert gltf.cameras[0].perspective.yfov > 0 and len(gltf.meshes[0].primitives) == 1  # the camera and the points


# ---------------------------------------------------------------------- SMPL-X npz
def test_smplx_npz_reproduces_the_track_meshes_through_smplx(exported, smplx_dir: Path) -> None:
    import smplx

    out, results, _ = exported
    layer = smplx.create(str(smplx_dir / "SMPLX_NEUTRAL.npz"), "smplx", use_pca=False, flat_hand_mean=True, num_betas=10)
    body = h3r.BodyModel(smplx_dir)
    files = sorted((out / "smplx").glob("track_*.npz"))
    assert files and any("_seg1" in f.name for f in files)  # people who leave and come back: one file per stretch
    for path in files:
        data = np.load(path)
        n = len(data["poses"])
        assert np.allclose(np.diff(data["timestamps"]), 1 / FPS) and np.all(np.diff(data["frame_indices"]) == 1)  # even rows
        assert float(data["mocap_frame_rate"]) == float(data["mocap_framerate"]) == FPS
        assert bool(data["flat_hand_mean"]) and not bool(data["use_pca"]) and data["betas"].shape == (10,)
        t = lambda k, data=data: torch.from_numpy(np.asarray(data[k], np.float32))  # noqa: E731
        mesh = layer(betas=t("betas").expand(n, -1), expression=t("expression"), transl=t("trans"),
                     **{k: t(k) for k in AMASS_SLICES})
        # the same person placed as Human3R places them (by the head), with the file's one shape
        rotvec = np.zeros((n, 53, 3), np.float32)
        for name, sl in ROTATION_SLICES.items():
            rotvec[:, sl] = data[name].reshape(n, -1, 3)
        expected = body(torch.from_numpy(rotvec), t("betas").expand(n, -1), t("expression"), t("head_position"))
        np.testing.assert_allclose(mesh.vertices.detach().numpy(), expected.vertices.numpy(), atol=1e-4)
        np.testing.assert_allclose(mesh.joints[:, 15].detach().numpy(), data["head_position"], atol=1e-4)


def test_smplx_npz_opens_in_the_blender_addon_and_aitviewer(exported) -> None:
    """What the SMPL-X Blender add-on (Add Animation) and aitviewer's SMPLSequence.from_amass read from the file."""
    out, _, _ = exported
    for path in (out / "smplx").glob("*.npz"):
        with np.load(path) as data:
            # the add-on: these keys, int(frame rate) >= its target rate (set it at most to this), 55 joints
            assert {"trans", "gender", "mocap_frame_rate", "betas", "poses"} <= set(data.files)
            assert int(data["mocap_frame_rate"]) >= 1 and data["poses"].shape[1] // 3 == 55 and str(data["gender"]) == "neutral"
            # aitviewer: poses split at 3 (root), 66 (body) and 66 + 90 hands; mocap_framerate
            assert data["poses"][:, 3:66].shape[1] == 63 and float(data["mocap_framerate"]) > 0


# ---------------------------------------------------------------------- BVH
def test_bvh_joints_match_the_smplx_layer(exported, smplx_dir: Path) -> None:
    import bvhio
    import smplx

    out, _, world = exported
    layer = smplx.create(str(smplx_dir / "SMPLX_NEUTRAL.npz"), "smplx", use_pca=False, flat_hand_mean=True, num_betas=10)
    up = np.diag([1.0, -1.0, -1.0]) if world == "first-camera" else np.eye(3)
    files = sorted((out / "bvh").glob("*.bvh"))
    assert [f.stem for f in files] == [f.stem for f in sorted((out / "smplx").glob("*.npz"))]
    for path in files:
        data = np.load(out / "smplx" / f"{path.stem}.npz")
        n = len(data["poses"])
        t = lambda k, data=data: torch.from_numpy(np.asarray(data[k], np.float32))  # noqa: E731
        # the BVH skeleton has the person's rest shape with a neutral face
        joints = layer(betas=t("betas").expand(n, -1), expression=torch.zeros(n, 10), transl=t("trans"),
                       **{k: t(k) for k in AMASS_SLICES}).joints.detach().numpy()
        assert abs(bvhio.readAsBvh(str(path)).FrameTime - 1 / FPS) < 1e-6
        root = bvhio.readAsHierarchy(str(path))
        layout = root.layout()
        for frame in range(n):
            root.loadPose(frame)
            got = np.array([list(j.PositionWorld) for j, _, _ in layout])
            index = [h3r.smplx_layout.JOINT_NAMES.index(j.Name) for j, _, _ in layout]
            np.testing.assert_allclose(got, joints[frame, index] @ up.T, atol=1e-3)  # within 1 mm, Y up


# ---------------------------------------------------------------------- cameras, world frames, intrinsics
def test_first_camera_world_starts_at_the_identity(exported) -> None:
    out, results, world = exported
    tum = np.loadtxt(out / "cameras_tum.txt")
    assert tum.shape == (len(results), 8)
    if world == "first-camera":
        np.testing.assert_allclose(tum[0, 1:], [0, 0, 0, 0, 0, 0, 1], atol=1e-6)
        np.testing.assert_allclose(results[0].camera_to_world, np.eye(4), atol=1e-6)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["world_frame"] == world and "run.glb" in summary["files"].values()


def test_the_floor_of_a_synthetic_scene_is_found_at_height_zero() -> None:
    rng = np.random.default_rng(0)
    pitch = np.radians(25)  # a camera 1.4 m above the floor, looking down by 25 degrees
    R = np.array([[1, 0, 0], [0, np.cos(pitch), -np.sin(pitch)], [0, np.sin(pitch), np.cos(pitch)]])
    floor = np.stack([rng.uniform(-3, 3, 4000), np.full(4000, 1.4), rng.uniform(0.5, 8, 4000)], 1)
    floor[:, 1] += rng.normal(0, 0.005, 4000)  # 5 mm of noise
    wall = np.stack([rng.uniform(-3, 3, 3000), rng.uniform(-1.5, 1.4, 3000), np.full(3000, 8.0)], 1)
    table = np.stack([rng.uniform(-0.5, 0.5, 1500), np.full(1500, 0.65), rng.uniform(2, 3, 1500)], 1)  # a large level surface
    feet = np.array([[0.3, 1.4, 3.0], [0.5, 1.4, 3.1]])
    to_camera = lambda p: p @ R  # noqa: E731  (points of the level frame seen from the pitched camera)
    world = WorldFrame.floor(to_camera(np.concatenate([floor, wall, table])), to_camera(feet))
    assert world.note is None
    T = world.from_first_camera
    heights = (to_camera(floor) @ T[:3, :3].T + T[:3, 3])[:, 1]
    assert abs(np.median(heights)) < 0.01 and np.abs(heights).max() < 0.05  # the floor at height 0 within 1 cm
    camera_height = T[1, 3]
    assert camera_height == pytest.approx(1.4, abs=0.01)
    assert fit_floor(np.zeros((2, 3)), np.empty((0, 3))) is None
    fallback = WorldFrame.floor(np.empty((0, 3)), np.empty((0, 3)))
    assert fallback.note is not None and "no floor plane" in fallback.note


def test_intrinsics_are_given_for_the_source_pixels_too(tiny_model, tmp_path: Path) -> None:
    clip = synthetic_clip(2, 360, 640, seed=1)
    session = Session(clip, h3r.RunOptions(precision="fp32", size=256), tmp_path / "out", models=tiny_model, body=None)
    result = [p.result for p in session.run()][0]
    data = json.loads((tmp_path / "out" / "intrinsics.json").read_text())["frames"][0]
    assert (data["model"]["width"], data["model"]["height"]) == (256, 144)
    assert (data["source"]["width"], data["source"]["height"]) == (640, 360)
    # a point seen by the model's camera lands on the same spot of the source frame, scaled
    Km, Ks = result.intrinsics.astype(np.float64), result.source_intrinsics
    Km[0, 0] = Km[1, 1] = 200.0  # any focal: the relation is what is checked
    Ks = h3r.preprocess.crop_geometry(640, 360, 256).source_intrinsics(Km)
    p = np.array([0.3, -0.2, 2.0])
    um, us = Km @ p / p[2], Ks @ p / p[2]
    np.testing.assert_allclose((us[:2] + 0.5) * 256 / 640 - 0.5, um[:2], atol=1e-9)
    assert data["usable"] == usable_focal(data["model"]["fx"], 256, 144)
    # flagged: no focal, a negative one, and one wider than 170 degrees (what untrained weights predict)
    assert not any(usable_focal(f, 512, 288) for f in (0.0, -300.0, float("nan"), 20.0))
    assert usable_focal(400.0, 512, 288)


def test_without_the_smplx_file_run_glb_marks_the_heads(tiny_model, tmp_path: Path) -> None:
    options = h3r.RunOptions(precision="fp32", size=256, fps=FPS, max_frames=6)
    session = Session(synthetic_clip(6, 180, 320, seed=2), options, tmp_path / "out", models=tiny_model, body=None)
    results = [p.result for p in session.run()]
    report = validate_gltf(tmp_path / "out" / "run.glb")[0]
    assert (report["numErrors"], report["numWarnings"]) == (0, 0), report["messages"][:5]
    gltf, array = read_glb(tmp_path / "out" / "run.glb")
    names = {n.name: i for i, n in enumerate(gltf.nodes)}
    up = np.diag([1.0, -1.0, -1.0])
    for k, result in enumerate(results):
        globals_ = node_transforms(gltf, array, k / FPS)
        for person in result.people:
            np.testing.assert_allclose(globals_[names[f"track_{person.track_id}/head"]][:3, 3],
                                       up @ person.head_position_world, atol=1e-5)
    assert not gltf.skins and not list((tmp_path / "out").glob("bvh*"))
