"""The numerics, unit by unit, against values written out by hand. Needs nothing outside the repository."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import roma
import torch

import human3r_demo as h3r
from human3r_demo.geometry import ChunkAligner, RunningFocal, pose_to_matrix, weiszfeld_focal
from human3r_demo.model.decoder import ttt3r_update
from human3r_demo.model.detection import nms3x3
from human3r_demo.model.rope import RoPE2D
from human3r_demo.model.square_view import pad_to_square, unpad_map, unpad_uv


def test_rope2d_is_the_rotation_written_out() -> None:
    torch.manual_seed(0)
    heads, N, Dh = 2, 5, 8
    tokens = torch.randn(1, heads, N, Dh)
    positions = torch.tensor([[[-1, -1], [0, 0], [0, 3], [2, 1], [7, 5]]])  # the pose token sits at (-1, -1)
    out = RoPE2D(base=100.0)(tokens, positions)
    Q = Dh // 4  # frequencies per half
    expected = torch.empty_like(tokens)
    for h in range(heads):
        for n in range(N):
            for half, axis in ((0, 0), (1, 1)):  # the y half rotates by the row, the x half by the column
                base = half * Dh // 2
                for i in range(Q):
                    theta = positions[0, n, axis].item() / 100.0 ** (i / Q)
                    a, b = tokens[0, h, n, base + i].item(), tokens[0, h, n, base + i + Q].item()
                    expected[0, h, n, base + i] = a * math.cos(theta) - b * math.sin(theta)
                    expected[0, h, n, base + i + Q] = b * math.cos(theta) + a * math.sin(theta)
    torch.testing.assert_close(out, expected, atol=1e-6, rtol=1e-6)
    # a rotation: norms of every (a, b) pair are kept; position 0 is the identity
    torch.testing.assert_close(out[0, :, 1], tokens[0, :, 1])
    with pytest.raises(ValueError, match="divisible by 4"):
        RoPE2D()(torch.randn(1, 1, 2, 6), positions[:, :2])


def test_ttt3r_update_blends_each_state_token_by_its_gate() -> None:
    old, new = torch.zeros(1, 3, 4), torch.ones(1, 3, 4)
    logit = torch.tensor([[-40.0, 0.0, 40.0]])  # keep, half, replace
    out = ttt3r_update(old, new, logit)
    torch.testing.assert_close(out[0, :, 0], torch.tensor([0.0, 0.5, 1.0]))
    g = torch.sigmoid(torch.tensor([0.3]))
    torch.testing.assert_close(ttt3r_update(torch.full((1, 1, 2), 2.0), torch.full((1, 1, 2), 6.0), torch.tensor([[0.3]])),
                               (g * 6 + (1 - g) * 2).expand(1, 1, 2))


def test_weiszfeld_recovers_a_pinhole_focal_despite_outliers() -> None:
    H, W, f = 48, 64, 57.0
    ys, xs = torch.meshgrid(torch.arange(H, dtype=torch.float64), torch.arange(W, dtype=torch.float64), indexing="ij")
    depth = 2.0 + torch.rand(H, W, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    pts = torch.stack([(xs - W // 2) / f * depth, (ys - H // 2) / f * depth, depth], dim=-1)[None]
    assert float(weiszfeld_focal(pts)[0]) == pytest.approx(f, rel=1e-6)
    corrupted = pts.clone()
    corrupted[0, :6, :, :2] *= 3.0  # 12 % of the pixels wildly off: the robust fit barely moves
    assert float(weiszfeld_focal(corrupted)[0]) == pytest.approx(f, rel=0.02)


def test_running_focal_is_the_median_so_far() -> None:
    running = RunningFocal()
    seen = []
    for focal in (500.0, 800.0, 100.0, 520.0, 510.0, float("nan"), 0.0):
        shown = running.update(focal, 512)
        if math.isfinite(focal) and focal > 0:
            seen.append(focal)
        assert shown == pytest.approx(sorted(seen)[(len(seen) - 1) // 2], rel=0.003)


def test_chunk_aligner_chains_chunks_into_the_first_frame() -> None:
    g = torch.Generator().manual_seed(0)
    world = [torch.eye(4)]
    for _ in range(7):  # a known trajectory
        step = torch.eye(4)
        step[:3, :3] = roma.rotvec_to_rotmat(0.2 * torch.randn(3, generator=g))
        step[:3, 3] = torch.randn(3, generator=g)
        world.append(world[-1] @ step)
    resets = {2, 5}  # frames after which the state is reset; the next chunk starts at the reset frame
    aligner, chunk_origin = ChunkAligner(), torch.eye(4)
    for k, T in enumerate(world):
        in_chunk = torch.linalg.inv(chunk_origin) @ T  # what the model predicts: relative to its chunk's first frame
        torch.testing.assert_close(aligner(in_chunk, k in resets), T, atol=1e-5, rtol=1e-5)
        if k in resets:
            chunk_origin = T


def test_nms_keeps_local_maxima_and_every_tie() -> None:
    scores = torch.tensor([[0.1, 0.2, 0.1, 0.0, 0.0],
                           [0.2, 0.9, 0.3, 0.0, 0.0],
                           [0.1, 0.3, 0.2, 0.5, 0.5],
                           [0.0, 0.0, 0.0, 0.1, 0.0],
                           [0.4, 0.0, 0.0, 0.0, 0.6]])[None, None]
    kept = nms3x3(scores)[0, 0]
    # the two 0.5s tie: both stay; (4, 0) is a maximum of its own neighbourhood; the rest is suppressed
    assert (kept > 0).nonzero().tolist() == [[1, 1], [2, 3], [2, 4], [4, 0], [4, 4]]
    assert torch.equal(kept[kept > 0], scores[0, 0][kept > 0])


def test_unpad_uv_and_unpad_map_invert_the_square_padding() -> None:
    H, W, S = 64, 112, 126
    image = torch.zeros(1, 1, H, W)
    image[0, 0, 20, 30] = 1.0
    square = pad_to_square(image, S, pad_value=0.0)
    scale, top = S / W, (S - int(H * S / W)) // 2
    uv_square = torch.tensor([[30.5 * scale, 20.5 * scale + top]])  # the pixel's centre in the square
    torch.testing.assert_close(unpad_uv(uv_square, S, H, W), torch.tensor([[30.5, 20.5]]), atol=0.05, rtol=0)
    # clamped into the image: a point in the padding lands on the border
    assert unpad_uv(torch.tensor([[5.0, 2.0]]), S, H, W)[0, 1] == 0
    row, col = divmod(int(square[0, 0].argmax()), S)  # where pad_to_square put the marked pixel
    assert abs(col + 0.5 - uv_square[0, 0]) < 1 and abs(row + 0.5 - uv_square[0, 1]) < 1
    # a 9x9 map over the square, back over the image: nearest cell of the (112 x 112) square, centre crop
    grid = torch.arange(81, dtype=torch.float32).reshape(1, 9, 9)
    back = unpad_map(grid, H, W)
    M, crop = max(H, W), (max(H, W) - H) // 2
    expected = torch.tensor([[grid[0, (r + crop) * 9 // M, c * 9 // M] for c in range(W)] for r in range(H)])
    assert torch.equal(back[0], expected)


def test_pose_to_matrix_round_trips() -> None:
    g = torch.Generator().manual_seed(0)
    q = torch.nn.functional.normalize(torch.randn(4, 4, generator=g), dim=-1)  # (w, x, y, z)
    t = torch.randn(4, 3, generator=g)
    T = pose_to_matrix(torch.cat([t, q], dim=-1))
    R = T[:, :3, :3]
    torch.testing.assert_close(R @ R.transpose(1, 2), torch.eye(3).expand(4, 3, 3), atol=1e-5, rtol=0)
    torch.testing.assert_close(torch.linalg.det(R), torch.ones(4), atol=1e-5, rtol=0)
    back = roma.rotmat_to_unitquat(R)[:, [3, 0, 1, 2]]  # roma's (x, y, z, w) -> (w, x, y, z)
    back = torch.where(back[:, :1] * q[:, :1] < 0, -back, back)
    torch.testing.assert_close(back, q, atol=1e-5, rtol=0)
    torch.testing.assert_close(T[:, :3, 3], t)


def test_seeded_tiny_random_model_gives_pinned_outputs() -> None:
    """transformers' expected-slice habit: a change anywhere in the network moves these numbers."""
    from human3r_demo.checkpoints.random_init import calibration_scene

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = h3r.load_model("tiny-random", device="cpu", precision="fp32")
    image = calibration_scene(64, 112)
    square = pad_to_square(image, model.config.mhmr_img_res)
    with torch.no_grad():
        first = model(image, square)
        second = model(image, square, first.state)
    assert first.detections.cells.tolist() == [[4, 14]] and second.num_humans == 1
    expected = {
        "points": (first.dense_heads.pts3d_self[0, 10, 20:23], [[-0.084771, -0.025411, 3.020618], [-0.087252, -0.022506, 3.021343],
                                                          [-0.089609, -0.019425, 3.022873]]),
        "camera 1": (first.camera_pose[0], [0.224858, -0.160945, -0.289413, 0.689311, 0.647992, -0.113419, -0.303467]),
        "camera 2": (second.camera_pose[0], [0.607830, 0.038744, -0.451401, 0.432335, -0.837965, 0.138023, 0.303069]),
        "gate": (second.gate[0, :4], [0.503514, 0.472668, 0.489553, 0.483562]),
        "head": (first.smplx.head_position[0, 0], [0.459106, -0.209269, 0.365019]),
        "state": (second.state.state[0, 0, :4], [0.016752, 0.795722, 0.409122, -0.463277]),
    }
    for name, (got, want) in expected.items():
        torch.testing.assert_close(got, torch.tensor(want), atol=1e-4, rtol=1e-4, msg=name)


@pytest.mark.slow
def test_torch_compile_runs_a_frame() -> None:
    """The model is a plain nn.Module: torch.compile (inductor, CPU) runs it and agrees with eager mode."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = h3r.load_model("tiny-random", device="cpu", precision="fp32")
    image = torch.rand(1, 3, 64, 112, generator=torch.Generator().manual_seed(0)) * 2 - 1
    square = pad_to_square(image, model.config.mhmr_img_res)
    with torch.no_grad():
        eager = model(image, square)
        compiled = torch.compile(model)(image, square)
    torch.testing.assert_close(compiled.dense_heads.pts3d_self, eager.dense_heads.pts3d_self, atol=1e-4, rtol=1e-4)
    assert compiled.detections.cells.tolist() == eager.detections.cells.tolist()
    assert np.isfinite(compiled.camera_pose.numpy()).all()
