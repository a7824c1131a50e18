"""One animated glTF (``run.glb``) of a whole run: people, the camera and the scene, +Y up, metres.

* every person is a skinned SMPL-X rig: the 55 joints as nodes (rest offsets from the body model,
  skin weights from its blend weights, four per vertex), the mesh of their median shape, and per
  frame the joint rotations, the joint offsets of that frame's shape (so the joints sit exactly
  where Human3R's per-frame bodies put them) and the pelvis position; hidden (scaled to 0) on the
  frames they are not tracked. Without the SMPL-X file, a marker at each person's head instead;
* the camera is an animated perspective camera with the run's field of view;
* the scene points are a point primitive (a uniform sample within a budget).

Animation times are the source frame times. A world frame with y down (``first-camera``) hangs
under a node turned 180 degrees about x, so every viewer shows it upright. Writing happens once the
run ends, from data kept on disk meanwhile (:mod:`.tracks`), with pygltflib.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pygltflib as gl
import roma
import torch

from ..smplx_layout import JOINT_NAMES, NUM_JOINTS, PARENTS
from ..viz.colors import track_colour
from ..world import Y_UP
from .skeleton import SkeletonModel

__all__ = ["PersonAnimation", "write_run_gltf"]

_OPENCV_TO_GLTF_CAMERA = np.diag([1.0, -1.0, -1.0])  # a glTF camera looks down -z with +y up


@dataclass
class PersonAnimation:
    """One person over the L frames from their first to their last appearance (frames ``first`` to
    ``first + L - 1`` of the run; on frames in between where they are absent, values are held and the
    person is hidden). Only that stretch is keyed, so a run's file grows with what was seen, not with
    people times frames.

    Attributes:
        track_id: the person's id.
        first: the run frame of their first appearance.
        present: (L,) bool.
        rotvec: (L, 55, 3) rotations, SMPL-X order; the first is the body's orientation in the world.
        rest: (L, 55, 3) rest joints of each frame's shape and expression (with a skeleton), else None.
        pelvis: (L, 3) the pelvis in the world (with a skeleton), else None.
        head: (L, 3) the head joint in the world.
        betas: (10,) the median shape, for the mesh.
    """

    track_id: int
    first: int
    present: np.ndarray
    rotvec: np.ndarray
    rest: np.ndarray | None
    pelvis: np.ndarray | None
    head: np.ndarray
    betas: np.ndarray


class _Builder:
    """Accumulates accessors into one binary buffer."""

    def __init__(self) -> None:
        self.gltf = gl.GLTF2(asset=gl.Asset(generator="human3r_demo", version="2.0"))
        self.blob = bytearray()

    def accessor(self, data: np.ndarray, kind: str, *, component: int = gl.FLOAT, target: int | None = None,
                 normalized: bool = False, minmax: bool = False) -> int:
        data = np.ascontiguousarray(data)
        while len(self.blob) % 4:
            self.blob.append(0)
        offset = len(self.blob)
        self.blob += data.tobytes()
        self.gltf.bufferViews.append(gl.BufferView(buffer=0, byteOffset=offset, byteLength=data.nbytes, target=target))
        count = data.shape[0]
        accessor = gl.Accessor(bufferView=len(self.gltf.bufferViews) - 1, componentType=component, count=count,
                               type=kind, normalized=normalized or None)
        if minmax:
            flat = data.reshape(count, -1)
            accessor.min, accessor.max = flat.min(0).tolist(), flat.max(0).tolist()
        self.gltf.accessors.append(accessor)
        return len(self.gltf.accessors) - 1

    def node(self, **kwargs) -> int:
        self.gltf.nodes.append(gl.Node(**kwargs))
        return len(self.gltf.nodes) - 1

    def material(self, rgb: np.ndarray) -> int:
        colour = [*(np.asarray(rgb, np.float64) / 255.0).tolist(), 1.0]
        self.gltf.materials.append(gl.Material(pbrMetallicRoughness=gl.PbrMetallicRoughness(
            baseColorFactor=colour, metallicFactor=0.0, roughnessFactor=0.8), doubleSided=True))
        return len(self.gltf.materials) - 1

    def save(self, path: Path) -> None:
        self.gltf.buffers.append(gl.Buffer(byteLength=len(self.blob)))
        self.gltf.set_binary_blob(bytes(self.blob))
        tmp = path.with_name(path.name + ".partial")
        self.gltf.save_binary(str(tmp))
        tmp.replace(path)


def write_run_gltf(
    path: Path,
    *,
    times: np.ndarray,
    cameras: np.ndarray,
    yfov: float,
    aspect: float,
    world_axes: str,
    points: np.ndarray,
    colours: np.ndarray,
    people: Iterable[PersonAnimation],
    skeleton: SkeletonModel | None,
) -> Path:
    """Write ``run.glb``: ``times`` (N,) seconds (increasing), ``cameras`` (N, 4, 4) camera-to-world;
    ``people`` is consumed one person at a time."""
    b = _Builder()
    animation = _Animation(b, times)
    world = b.node(name="world", rotation=_quaternions(torch.from_numpy(Y_UP[world_axes])[None])[0].tolist())  # stood up, +Y
    roots = [world]
    _add_camera(b, animation, world, cameras, yfov, aspect)
    if len(points):
        _add_scene_points(b, world, points, colours)
    marker = None
    for person in people:
        holder = _add_person_holder(b, animation, world, person, len(times))
        if skeleton is not None:
            roots.append(_person_rig(b, person, holder, skeleton, animation.animate))
            continue
        if marker is None:
            marker = _marker_mesh(b)
        head = b.node(name=f"track_{person.track_id}/head", mesh=marker)
        b.gltf.nodes[holder].children.append(head)
        animation.animate(head, "translation", person.head, "VEC3", first=person.first)
    animation.write()
    b.gltf.scenes.append(gl.Scene(name="run", nodes=roots))
    b.gltf.scene = 0
    b.save(path)
    return path


class _Animation:
    """The run's one animation: channels keyed at the source frame times, written at the end."""

    def __init__(self, b: _Builder, times: np.ndarray) -> None:
        self.b, self.times = b, times
        self.inputs: dict[tuple[int, int], int] = {}  # (first frame, frames) -> time accessor
        self.channels: list[tuple[int, str, int, int, str]] = []  # (node, path, input, output accessor, interpolation)

    def keys(self, frames: list[int] | np.ndarray) -> int:
        """A time accessor for arbitrary run frames."""
        return self.b.accessor(self.times[frames].astype(np.float32), "SCALAR", minmax=True)

    def animate(self, node: int, prop: str, values: np.ndarray, kind: str, interpolation: str = gl.ANIM_LINEAR, *,
                first: int = 0, keys: int | None = None) -> None:
        """Key ``values`` at the run's frames ``first`` .. ``first + len(values) - 1`` (or at ``keys``)."""
        if keys is None:
            span = (first, len(values))
            if span not in self.inputs:
                self.inputs[span] = self.keys(np.arange(first, first + len(values)))
            keys = self.inputs[span]
        self.channels.append((node, prop, keys, self.b.accessor(values.astype(np.float32), kind), interpolation))

    def write(self) -> None:
        animation = gl.Animation(name="run", samplers=[], channels=[])
        for node, prop, source, output, interpolation in self.channels:
            animation.samplers.append(gl.AnimationSampler(input=source, output=output, interpolation=interpolation))
            animation.channels.append(gl.AnimationChannel(
                sampler=len(animation.samplers) - 1, target=gl.AnimationChannelTarget(node=node, path=prop)))
        self.b.gltf.animations.append(animation)


def _add_camera(b: _Builder, animation: _Animation, world: int, cameras: np.ndarray, yfov: float, aspect: float) -> None:
    """The camera: a perspective camera with the run's field of view, moved along its path."""
    b.gltf.cameras.append(gl.Camera(type=gl.PERSPECTIVE, name="camera", perspective=gl.Perspective(
        yfov=float(yfov), aspectRatio=float(aspect), znear=0.01, zfar=1000.0)))
    camera = b.node(name="camera", camera=len(b.gltf.cameras) - 1)
    b.gltf.nodes[world].children.append(camera)
    rotations = torch.from_numpy(cameras[:, :3, :3] @ _OPENCV_TO_GLTF_CAMERA)
    animation.animate(camera, "translation", cameras[:, :3, 3], "VEC3")
    animation.animate(camera, "rotation", _quaternions(rotations), "VEC4")


def _add_scene_points(b: _Builder, world: int, points: np.ndarray, colours: np.ndarray) -> None:
    """The scene points as one point primitive with vertex colours."""
    position = b.accessor(points.astype(np.float32), "VEC3", target=gl.ARRAY_BUFFER, minmax=True)
    rgba = np.concatenate([colours.astype(np.uint8), np.full((len(colours), 1), 255, np.uint8)], axis=1)  # 4-byte aligned
    colour = b.accessor(rgba, "VEC4", component=gl.UNSIGNED_BYTE, target=gl.ARRAY_BUFFER, normalized=True)
    b.gltf.meshes.append(gl.Mesh(name="scene points", primitives=[gl.Primitive(
        attributes=gl.Attributes(POSITION=position, COLOR_0=colour), mode=gl.POINTS)]))
    b.gltf.nodes[world].children.append(b.node(name="scene", mesh=len(b.gltf.meshes) - 1))


def _add_person_holder(b: _Builder, animation: _Animation, world: int, person: PersonAnimation, num_frames: int) -> int:
    """The node a person hangs from, visible on the frames they are seen: hidden (scale 0) from the
    start, and again after their last frame."""
    holder = b.node(name=f"track_{person.track_id}")
    b.gltf.nodes[world].children.append(holder)
    first, last = person.first, person.first + len(person.present) - 1
    before, after = first > 0, last + 1 < num_frames
    frames = [*([0] if before else []), *range(first, last + 1), *([last + 1] if after else [])]
    shown = np.array([*([0.0] if before else []), *person.present, *([0.0] if after else [])])
    animation.animate(holder, "scale", np.repeat(shown[:, None], 3, axis=1), "VEC3", gl.ANIM_STEP,
                      keys=animation.keys(frames))
    return holder


def _person_rig(b: _Builder, person: PersonAnimation, holder: int, skeleton: SkeletonModel, animate) -> int:
    """The 55 joint nodes under ``holder``, their animation, and the skinned mesh; returns the mesh node."""
    g = b.gltf
    rest_mean = skeleton.rest_joints(person.betas.astype(np.float64))
    joints = []
    for j in range(NUM_JOINTS):
        parent = PARENTS[j]
        offset = rest_mean[j] - (rest_mean[parent] if parent >= 0 else 0)
        node = b.node(name=f"track_{person.track_id}/{JOINT_NAMES[j]}", translation=offset.tolist())
        (g.nodes[holder] if parent < 0 else g.nodes[joints[parent]]).children.append(node)
        joints.append(node)
    # per frame: every joint's rotation and its offset for that frame's shape; the pelvis's world position
    quats = _quaternions(roma.rotvec_to_rotmat(torch.from_numpy(person.rotvec.astype(np.float64))))
    for j, node in enumerate(joints):
        animate(node, "rotation", quats[:, j], "VEC4", first=person.first)
        offset = person.pelvis if j == 0 else person.rest[:, j] - person.rest[:, PARENTS[j]]
        animate(node, "translation", offset, "VEC3", first=person.first)

    # the skin: bind pose = the median shape at rest; inverse bind matrices undo each joint's rest position
    ibm = np.tile(np.eye(4, dtype=np.float32), (NUM_JOINTS, 1, 1))
    ibm[:, :3, 3] = -rest_mean
    g.skins.append(gl.Skin(name=f"track_{person.track_id}", joints=joints, skeleton=joints[0],
                           inverseBindMatrices=b.accessor(ibm.transpose(0, 2, 1).reshape(NUM_JOINTS, 16), "MAT4")))
    vertices = skeleton.rest_vertices(person.betas.astype(np.float64)).astype(np.float32)
    weights = skeleton.lbs_weights
    top = np.argsort(-weights, axis=1)[:, :4]
    w = np.take_along_axis(weights, top, axis=1)
    w = (w / w.sum(1, keepdims=True)).astype(np.float32)
    top[w == 0] = 0  # glTF: a joint slot without weight must name joint 0
    faces = np.asarray(skeleton.faces, np.uint32)
    attributes = gl.Attributes(
        POSITION=b.accessor(vertices, "VEC3", target=gl.ARRAY_BUFFER, minmax=True),
        NORMAL=b.accessor(_normals(vertices, faces), "VEC3", target=gl.ARRAY_BUFFER),
        JOINTS_0=b.accessor(top.astype(np.uint8), "VEC4", component=gl.UNSIGNED_BYTE, target=gl.ARRAY_BUFFER),
        WEIGHTS_0=b.accessor(w, "VEC4", target=gl.ARRAY_BUFFER),
    )
    indices = b.accessor(faces.reshape(-1), "SCALAR", component=gl.UNSIGNED_INT, target=gl.ELEMENT_ARRAY_BUFFER)
    g.meshes.append(gl.Mesh(name=f"track_{person.track_id}", primitives=[gl.Primitive(
        attributes=attributes, indices=indices, material=b.material(track_colour(person.track_id)))]))
    return b.node(name=f"track_{person.track_id}/body", mesh=len(g.meshes) - 1, skin=len(g.skins) - 1)


def _quaternions(rotmats: torch.Tensor) -> np.ndarray:
    """(..., 3, 3) -> (..., 4) unit quaternions x, y, z, w (glTF's order), continuous in sign along the first axis."""
    q = roma.rotmat_to_unitquat(rotmats).numpy()
    for i in range(1, len(q)):  # flip to the hemisphere of the previous frame: interpolation takes the short way
        flip = (q[i] * q[i - 1]).sum(-1) < 0
        q[i][flip] *= -1
    return q


def _normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Unit vertex normals (area-weighted face normals); unit length even for unreferenced vertices."""
    tri = vertices[faces.astype(np.int64)]
    face_n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    normals = np.zeros_like(vertices)
    for k in range(3):
        np.add.at(normals, faces[:, k].astype(np.int64), face_n)
    length = np.linalg.norm(normals, axis=1, keepdims=True)
    normals = np.where(length > 1e-12, normals / np.maximum(length, 1e-12), np.array([0.0, 1.0, 0.0], np.float32))
    return normals.astype(np.float32)


def _marker_mesh(b: _Builder) -> int:
    """A 4 cm octahedron marking a head when there is no body model."""
    r = 0.04
    vertices = np.array([[r, 0, 0], [-r, 0, 0], [0, r, 0], [0, -r, 0], [0, 0, r], [0, 0, -r]], np.float32)
    faces = np.array([[0, 2, 4], [2, 1, 4], [1, 3, 4], [3, 0, 4], [2, 0, 5], [1, 2, 5], [3, 1, 5], [0, 3, 5]], np.uint32)
    attributes = gl.Attributes(POSITION=b.accessor(vertices, "VEC3", target=gl.ARRAY_BUFFER, minmax=True),
                               NORMAL=b.accessor(_normals(vertices, faces), "VEC3", target=gl.ARRAY_BUFFER))
    b.gltf.meshes.append(gl.Mesh(name="head marker", primitives=[gl.Primitive(
        attributes=attributes, indices=b.accessor(faces.reshape(-1), "SCALAR", component=gl.UNSIGNED_INT,
                                                  target=gl.ELEMENT_ARRAY_BUFFER), material=b.material(np.array([255, 200, 60])))]))
    return len(b.gltf.meshes) - 1


def field_of_view(focal: float, height: int) -> float:
    """Vertical field of view (radians) of a pinhole with ``focal`` pixels over ``height`` pixels."""
    return 2.0 * math.atan(height / (2.0 * focal))
