"""What ``--smooth`` (the causal One-Euro filter, human3r_demo.smoothing) does to jitter and accuracy.

    python benchmarks/smoothing.py [--seconds 10] [--fps 30] [--rotation-noise-deg 3] [--position-noise-cm 2]

A synthetic walk (the 22 SMPL-X body joints on their kinematic tree, a 1 Hz gait, turning while it
walks) is the ground truth. The "prediction" is that walk with independent noise on every joint
rotation and on the root position each frame, as a per-frame estimator's output trembles. The same
:class:`~human3r_demo.smoothing.PoseSmoother` the stream uses then filters the rotations and the root
position, and the metrics of human3r_demo.evaluation score each row against the ground truth:
jitter (10 m/s^3, lower is smoother; the ground truth's own is the floor), MPJPE and PA-MPJPE (mm,
pelvis-centred), W-MPJPE and WA-MPJPE (mm, 100-frame chunks), and the time the filter takes per person
and frame. A filter that smooths too hard lags behind the motion, which MPJPE shows.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from human3r_demo.evaluation import metrics  # noqa: E402
from human3r_demo.smoothing import BETA, MIN_CUTOFF_HZ, PoseSmoother  # noqa: E402
from human3r_demo.smplx_layout import PARENTS  # noqa: E402

BODY = 22  # pelvis + 21 body joints: the SMPL joint set the metrics use
# a rest pose (metres, y up, facing +z), roughly an adult's SMPL-X joints
REST = np.array([
    [0.0, 0.0, 0.0], [0.06, -0.09, 0.0], [-0.06, -0.09, 0.0], [0.0, 0.11, 0.0], [0.1, -0.47, 0.0], [-0.1, -0.47, 0.0],
    [0.0, 0.25, 0.0], [0.09, -0.87, -0.04], [-0.09, -0.87, -0.04], [0.0, 0.31, 0.0], [0.11, -0.93, 0.08],
    [-0.11, -0.93, 0.08], [0.0, 0.52, 0.0], [0.08, 0.43, 0.0], [-0.08, 0.43, 0.0], [0.0, 0.58, 0.05],
    [0.18, 0.46, 0.0], [-0.18, 0.46, 0.0], [0.43, 0.46, 0.0], [-0.43, 0.46, 0.0], [0.68, 0.46, 0.0], [-0.68, 0.46, 0.0],
])  # fmt: skip


def walk(seconds: float, fps: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Ground truth: local joint rotations (T, 22, 3, 3) and the root position (T, 3)."""
    t = np.arange(int(seconds * fps)) / fps
    gait = 2 * np.pi * 1.0 * t  # one stride a second
    rotvec = np.zeros((len(t), BODY, 3))
    rotvec[:, 0, 1] = 0.2 * t  # turning slowly while walking
    rotvec[:, 1, 0], rotvec[:, 2, 0] = 0.5 * np.sin(gait), -0.5 * np.sin(gait)  # hips
    rotvec[:, 4, 0], rotvec[:, 5, 0] = 0.6 * (1 + np.sin(gait - 1)), 0.6 * (1 - np.sin(gait - 1))  # knees
    rotvec[:, 16, 0], rotvec[:, 17, 0] = -0.4 * np.sin(gait), 0.4 * np.sin(gait)  # shoulders swing
    rotvec[:, 18, 1], rotvec[:, 19, 1] = 0.3 + 0.2 * np.sin(gait), -0.3 + 0.2 * np.sin(gait)  # elbows
    others = [3, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 20, 21]  # spine, feet, neck, head, wrists: a little sway
    freq, phase = rng.uniform(0.5, 1.5, (len(others), 3)), rng.uniform(0, 2 * np.pi, (len(others), 3))
    rotvec[:, others] += 0.1 * np.sin(2 * np.pi * freq[None] * t[:, None, None] + phase[None])
    heading = rotvec[:, 0, 1]
    speed = 1.2  # m/s
    root = np.stack([np.cumsum(speed / fps * np.sin(heading)), 0.9 + 0.02 * np.sin(2 * gait), np.cumsum(speed / fps * np.cos(heading))], axis=1)
    return Rotation.from_rotvec(rotvec.reshape(-1, 3)).as_matrix().reshape(len(t), BODY, 3, 3), root


def forward_kinematics(local: np.ndarray, root: np.ndarray) -> np.ndarray:
    """World joints (T, 22, 3) of local rotations (T, 22, 3, 3) on the rest skeleton, pelvis at ``root``."""
    world_rot = np.empty_like(local)
    joints = np.empty((len(local), BODY, 3))
    world_rot[:, 0], joints[:, 0] = local[:, 0], root
    for j in range(1, BODY):
        p = PARENTS[j]
        world_rot[:, j] = world_rot[:, p] @ local[:, j]
        joints[:, j] = joints[:, p] + np.einsum("tij,j->ti", world_rot[:, p], REST[j] - REST[p])
    return joints


def add_noise(local: np.ndarray, root: np.ndarray, rot_deg: float, pos_cm: float, rng: np.random.Generator):
    noise = Rotation.from_rotvec(rng.normal(scale=np.radians(rot_deg), size=(local.size // 9, 3))).as_matrix()
    return local @ noise.reshape(local.shape), root + rng.normal(scale=pos_cm / 100, size=root.shape)


def smooth(local: np.ndarray, root: np.ndarray, fps: float, **params: float) -> tuple[np.ndarray, np.ndarray, float]:
    smoother = PoseSmoother(**params)
    out_rot, out_root = np.empty_like(local), np.empty_like(root)
    start = time.perf_counter()
    for i in range(len(local)):
        out_rot[i], vectors = smoother(0, i / fps, local[i], position=root[i])
        out_root[i] = vectors["position"]
    return out_rot, out_root, (time.perf_counter() - start) / len(local)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument("--rotation-noise-deg", type=float, default=3.0)
    parser.add_argument("--position-noise-cm", type=float, default=2.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    local, root = walk(args.seconds, args.fps, rng)
    gt = forward_kinematics(local, root)
    noisy_local, noisy_root = add_noise(local, root, args.rotation_noise_deg, args.position_noise_cm, rng)

    rows = [("ground truth", gt, None)]
    rows.append(("noisy (no smoothing)", forward_kinematics(noisy_local, noisy_root), None))
    settings = [(MIN_CUTOFF_HZ, BETA, " (the default)"), (3.0, BETA, ""), (MIN_CUTOFF_HZ, 0.5, ""), (MIN_CUTOFF_HZ, 0.0, ""),
                (0.3, 0.0, "")]
    for min_cutoff, beta, note in settings:
        s_local, s_root, per_frame = smooth(noisy_local, noisy_root, args.fps, min_cutoff=min_cutoff, beta=beta)
        rows.append((f"One-Euro min_cutoff={min_cutoff:g} Hz, beta={beta:g}{note}", forward_kinematics(s_local, s_root), per_frame))

    print(f"{len(gt)} frames at {args.fps:g} fps, 22 joints; noise {args.rotation_noise_deg:g} deg per rotation, "
          f"{args.position_noise_cm:g} cm on the root (seed {args.seed})\n")
    header = "| | jitter (10 m/s^3) | MPJPE (mm) | PA-MPJPE (mm) | W-MPJPE (mm) | WA-MPJPE (mm) | filter per person-frame |"
    print(header)
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, joints, per_frame in rows:
        cost = "" if per_frame is None else f"{per_frame * 1e6:.0f} us"
        values = [metrics.jitter(joints, fps=args.fps).mean()]
        if joints is gt:
            print(f"| {name} | {values[0]:.1f} | | | | | |")
            continue
        values += [metrics.mpjpe(joints, gt).mean(), metrics.pa_mpjpe(joints, gt).mean(),
                   metrics.w_mpjpe(joints, gt).mean(), metrics.wa_mpjpe(joints, gt).mean()]
        print(f"| {name} | " + " | ".join(f"{v:.1f}" for v in values) + f" | {cost} |")


if __name__ == "__main__":
    main()
