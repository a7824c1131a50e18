"""A body-shaped SMPL-X stand-in for tests: the real file needs a licence and cannot be fetched here.

It has exactly the arrays, shapes and dtypes that ``smplx.SMPLX`` reads (10,475 vertices, the 55
joints of the official kinematic tree, 400 shape + expression directions, 486 pose correctives), so
the whole SMPL-X code path runs. The geometry is a mannequin of closed capsules, one per bone, skinned
rigidly to the bone's first joint, so posed meshes look like a (crude) person in a render. Every
joint is the centre of a ring of vertices, which is what its ``J_regressor`` row averages, so the
regressed joints are exactly the rest skeleton below. It is not a human body model: tests only.

    python tests/smplx_standin.py OUT_DIR     # writes OUT_DIR/SMPLX_NEUTRAL.npz (about 1 MB)
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from human3r_demo.smplx_layout import JOINT_NAMES, NUM_JOINTS, PARENTS

NUM_VERTICES = 10475
SHAPE_DIRS, EXPRESSION_DIRS = 300, 100

# rest skeleton, metres, SMPL-X axes (x to the person's left, y up, z forward); spine joints on the axis
_BODY = {
    "pelvis": (0.0, 0.0, 0.0), "left_hip": (0.075, -0.07, 0.0), "right_hip": (-0.075, -0.07, 0.0),
    "spine1": (0.0, 0.11, 0.0), "left_knee": (0.09, -0.47, 0.01), "right_knee": (-0.09, -0.47, 0.01),
    "spine2": (0.0, 0.23, 0.0), "left_ankle": (0.09, -0.87, -0.02), "right_ankle": (-0.09, -0.87, -0.02),
    "spine3": (0.0, 0.30, 0.0), "left_foot": (0.10, -0.93, 0.09), "right_foot": (-0.10, -0.93, 0.09),
    "neck": (0.0, 0.50, 0.0), "left_collar": (0.07, 0.42, 0.0), "right_collar": (-0.07, 0.42, 0.0),
    "head": (0.0, 0.59, 0.02), "left_shoulder": (0.18, 0.44, 0.0), "right_shoulder": (-0.18, 0.44, 0.0),
    "left_elbow": (0.44, 0.43, -0.02), "right_elbow": (-0.44, 0.43, -0.02),
    "left_wrist": (0.69, 0.43, -0.02), "right_wrist": (-0.69, 0.43, -0.02),
    "jaw": (0.0, 0.57, 0.06), "left_eye_smplhf": (0.032, 0.67, 0.085), "right_eye_smplhf": (-0.032, 0.67, 0.085),
}
_FINGERS = {"index": 0.022, "middle": 0.004, "pinky": -0.034, "ring": -0.015}  # z of each finger


def rest_joints() -> np.ndarray:
    """(55, 3) the stand-in's rest skeleton in SMPL-X joint order."""
    joints = dict(_BODY)
    for side, sign in (("left", 1.0), ("right", -1.0)):
        wx, wy, wz = _BODY[f"{side}_wrist"]
        for finger, z in _FINGERS.items():
            for k in range(3):
                joints[f"{side}_{finger}{k + 1}"] = (wx + sign * (0.085 + 0.026 * k), wy, wz + z)
        for k in range(3):
            joints[f"{side}_thumb{k + 1}"] = (wx + sign * (0.025 + 0.024 * k), wy - 0.012, wz + 0.035 + 0.016 * k)
    return np.array([joints[name] for name in JOINT_NAMES], dtype=np.float64)


def _capsule(a: np.ndarray, b: np.ndarray, radius: float, segments: int, ring_ts: list[float], cap_rings: int = 3):
    """Vertices and faces of a closed capsule from a to b; ring_ts (0..1 along a->b) become cylinder rings.

    Returns (vertices (M, 3), faces (F, 3), t (M,) along the axis, index of the ring at t=0 in vertices).
    """
    axis = b - a
    length = np.linalg.norm(axis)
    d = axis / length
    helper = np.array([0.0, 0.0, 1.0]) if abs(d[2]) < 0.9 else np.array([1.0, 0.0, 0.0])
    u = np.cross(d, helper)
    u /= np.linalg.norm(u)
    w = np.cross(d, u)
    angles = np.arange(segments) * 2 * np.pi / segments
    circle = np.cos(angles)[:, None] * u + np.sin(angles)[:, None] * w  # (S, 3)
    ring_ts = list(ring_ts) + list(np.linspace(0, 1, max(2, int(length / 0.06) + 1)))  # a ring every ~6 cm
    n = cap_rings
    cap = [(np.cos(np.pi / 2 * k / n), np.sin(np.pi / 2 * k / n)) for k in range(1, n)]  # hemispherical caps
    rings = [(-radius * c / length, radius * r) for c, r in cap]
    rings += [(t, radius) for t in sorted(set(ring_ts) | {0.0, 1.0})]
    rings += [(1 + radius * c / length, radius * r) for c, r in reversed(cap)]
    verts, ts = [a - d * radius], [-radius / length]  # bottom pole
    for t, r in rings:
        verts.extend(a + axis * t + r * circle)
        ts.extend([t] * segments)
    verts.append(b + d * radius)
    ts.append(1 + radius / length)
    faces = []
    S, R = segments, len(rings)
    for s in range(S):  # bottom fan, quads between rings, top fan (outward-facing)
        faces.append((0, 1 + (s + 1) % S, 1 + s))
        for ring in range(R - 1):
            p, q = 1 + ring * S, 1 + (ring + 1) * S
            faces.append((p + s, p + (s + 1) % S, q + s))
            faces.append((q + s, p + (s + 1) % S, q + (s + 1) % S))
        top, last = 1 + R * S, 1 + (R - 1) * S
        faces.append((top, last + s, last + (s + 1) % S))
    start_ring = 1 + [t for t, _ in rings].index(0.0) * S
    return np.array(verts), np.array(faces), np.array(ts), start_ring


def build() -> dict[str, np.ndarray]:
    J = rest_joints()
    idx = {name: i for i, name in enumerate(JOINT_NAMES)}
    up = np.array([0.0, 1.0, 0.0])
    # (start joint, end point, radius, segments, joint each vertex follows, extra ring positions)
    parts: list[tuple] = [
        ("pelvis", J[idx["neck"]], 0.13, 40, None, [J[idx[s]][1] / J[idx["neck"]][1] for s in ("spine1", "spine2", "spine3")]),
        ("neck", J[idx["head"]], 0.05, 24, "neck", []),
        ("jaw", J[idx["jaw"]] + np.array([0.0, -0.025, 0.04]), 0.022, 16, "jaw", []),
    ]
    for side in ("left", "right"):
        s = f"{side}_"
        parts += [
            (s + "hip", J[idx[s + "knee"]], 0.072, 32, s + "hip", []),
            (s + "knee", J[idx[s + "ankle"]], 0.052, 28, s + "knee", []),
            (s + "ankle", J[idx[s + "foot"]], 0.042, 20, s + "ankle", []),
            (s + "foot", J[idx[s + "foot"]] + np.array([0.0, 0.0, 0.07]), 0.036, 20, s + "foot", []),
            (s + "collar", J[idx[s + "shoulder"]], 0.05, 20, s + "collar", []),
            (s + "shoulder", J[idx[s + "elbow"]], 0.047, 24, s + "shoulder", []),
            (s + "elbow", J[idx[s + "wrist"]], 0.04, 24, s + "elbow", []),
            (s + "wrist", J[idx[s + "middle1"]], 0.03, 20, s + "wrist", []),
        ]
        for finger in ("index", "middle", "pinky", "ring", "thumb"):
            names = [f"{s}{finger}{k}" for k in (1, 2, 3)]
            tip = 2 * J[idx[names[2]]] - J[idx[names[1]]]
            for k, name in enumerate(names):
                end = J[idx[names[k + 1]]] if k < 2 else tip
                parts.append((name, end, 0.0085, 10, name, []))

    vertices, faces, weights, regressor_rows = [], [], [], {}
    count = 0
    for start, end, radius, segments, follows, ring_ts in parts:
        a = J[idx[start]]
        v, f, t, ring = _capsule(a, end, radius, segments, ring_ts)
        faces.append(f + count)
        w = np.zeros((len(v), NUM_JOINTS))
        if follows is None:  # the torso: each vertex follows the spine joint just below it
            spine = ["pelvis", "spine1", "spine2", "spine3", "neck"]
            heights = [J[idx[n]][1] for n in spine]
            below = np.searchsorted(heights, v[:, 1], side="right") - 1
            w[np.arange(len(v)), [idx[spine[max(b, 0)]] for b in below]] = 1
        else:
            w[:, idx[follows]] = 1
        weights.append(w)
        regressor_rows.setdefault(idx[start], count + ring + np.arange(segments))
        if follows is None:  # the spine joints are rings of the torso
            for n in ("spine1", "spine2", "spine3"):
                k = int(np.argmin(np.abs(t - J[idx[n]][1] / (end - a)[1])))
                regressor_rows[idx[n]] = count + k + np.arange(segments)
        if start == "neck":  # the head joint is the ring at the top of the neck
            k = int(np.nonzero(np.isclose(t, 1.0))[0][0])
            regressor_rows[idx["head"]] = count + k + np.arange(segments)
        vertices.append(v)
        count += len(v)
    for name, centre, radius, follows in (("head", J[idx["head"]] + 0.075 * up + np.array([0, 0, 0.01]), 0.1, "head"),
                                          ("left_eye_smplhf", J[idx["left_eye_smplhf"]], 0.012, "left_eye_smplhf"),
                                          ("right_eye_smplhf", J[idx["right_eye_smplhf"]], 0.012, "right_eye_smplhf")):
        segments, caps = (48, 18) if name == "head" else (10, 4)
        v, f, _, ring = _capsule(centre - 1e-4 * up, centre + 1e-4 * up, radius, segments, [], cap_rings=caps)
        faces.append(f + count)
        w = np.zeros((len(v), NUM_JOINTS))
        w[:, idx[follows]] = 1
        weights.append(w)
        if name != "head":
            regressor_rows[idx[name]] = count + np.arange(len(v))  # a symmetric ball: its mean is the centre
        vertices.append(v)
        count += len(v)
    v_template = np.concatenate(vertices)
    assert len(v_template) <= NUM_VERTICES, len(v_template)
    spare = NUM_VERTICES - len(v_template)  # unreferenced vertices, hidden in the pelvis
    v_template = np.concatenate([v_template, np.repeat(J[:1], spare, axis=0)])
    lbs = np.concatenate(weights + [np.eye(NUM_JOINTS)[np.zeros(spare, int)]])
    f = np.concatenate(faces).astype(np.uint32)

    J_regressor = np.zeros((NUM_JOINTS, NUM_VERTICES))
    assert sorted(regressor_rows) == list(range(NUM_JOINTS)), sorted(set(range(NUM_JOINTS)) - set(regressor_rows))
    for j, rows in regressor_rows.items():
        J_regressor[j, rows] = 1.0 / len(rows)

    shapedirs = np.zeros((NUM_VERTICES, 3, SHAPE_DIRS + EXPRESSION_DIRS), np.float32)
    centred = v_template - J[0]
    shapedirs[:, :, 0] = 0.03 * centred  # beta 0: overall size
    shapedirs[:, 0, 1] = 0.04 * centred[:, 0]  # beta 1: width
    shapedirs[:, 2, 2] = 0.04 * centred[:, 2]  # beta 2: depth
    shapedirs[:, 1, 3] = 0.02 * np.clip(centred[:, 1], None, 0)  # beta 3: leg length
    face = np.linalg.norm(v_template - (J[idx["head"]] + 0.075 * up), axis=1) < 0.11
    for k in range(10):  # expressions move the face a little
        shapedirs[face, k % 3, SHAPE_DIRS + k] = 0.004 * (1 + k % 4)

    head_faces = np.nonzero(face[f[:, 0]])[0]
    rng = np.random.default_rng(0)
    bary = rng.random((51, 3)) + 0.1
    dynamic_bary = rng.random((79, 17, 3)) + 0.1
    parents = np.array(PARENTS, dtype=np.int64)
    parents[0] = 4294967295  # the official files store the root's parent as uint32 -1
    return {
        "v_template": v_template,
        "f": f,
        "J_regressor": J_regressor,
        "weights": lbs,
        "kintree_table": np.stack([parents, np.arange(NUM_JOINTS)]),
        "shapedirs": shapedirs,
        "posedirs": np.zeros((NUM_VERTICES, 3, (NUM_JOINTS - 1) * 9), np.float32),
        "hands_componentsl": np.eye(45),
        "hands_componentsr": np.eye(45),
        "hands_meanl": np.zeros(45),
        "hands_meanr": np.zeros(45),
        "lmk_faces_idx": head_faces[rng.integers(0, len(head_faces), 51)].astype(np.int64),
        "lmk_bary_coords": bary / bary.sum(1, keepdims=True),
        "dynamic_lmk_faces_idx": head_faces[rng.integers(0, len(head_faces), (79, 17))].astype(np.int64),
        "dynamic_lmk_bary_coords": dynamic_bary / dynamic_bary.sum(-1, keepdims=True),
    }


def write(out_dir: str | Path) -> Path:
    """Write ``out_dir/SMPLX_NEUTRAL.npz`` (compressed) and return its path."""
    out = Path(out_dir) / "SMPLX_NEUTRAL.npz"
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, **build())
    return out


if __name__ == "__main__":
    print(write(sys.argv[1] if len(sys.argv) > 1 else "."))
