"""Per-block tests: each block of the model against an independent computation written here.

In the style of transformers' and timm's model tests: small random blocks, float64 where it helps,
and the computation done a second way from the formulas of docs/ARCHITECTURE.md (not by calling the
block's own helpers). Nothing outside the repository is needed.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from human3r_demo.checkpoints.random_init import tiny_random_config
from human3r_demo.config import DINOv2Config, DPTConfig
from human3r_demo.geometry import pose_to_matrix
from human3r_demo.model.camera_head import CameraHead, camera_pose_activation
from human3r_demo.model.decoder import RecurrentDecoder
from human3r_demo.model.dense_heads import dpt_hooks
from human3r_demo.model.dinov2 import DINOv2
from human3r_demo.model.dpt import DPTHead
from human3r_demo.model.layers import CrossAttention
from human3r_demo.model.rope import RoPE2D
from human3r_demo.model.smplx_head import rot6d_to_rotmat


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _randomize(module: torch.nn.Module, seed: int) -> torch.nn.Module:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.2)
    return module.eval().requires_grad_(False)


# ---------------------------------------------------------------------- DINOv2 position interpolation
def _cubic_weights(t: float, a: float = -0.75) -> list[float]:
    """Keys' cubic convolution weights of the four taps at distances 1 + t, t, 1 - t, 2 - t."""

    def near(x: float) -> float:  # |x| <= 1
        return ((a + 2) * x - (a + 3)) * x * x + 1

    def far(x: float) -> float:  # 1 < |x| < 2
        return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a

    return [far(1 + t), near(t), near(1 - t), far(2 - t)]


def _bicubic_1d(table: np.ndarray, out_size: int, scale_factor: float) -> np.ndarray:
    """Resample axis 0 of ``table`` the way a bicubic resize given a ``scale_factor`` does: output
    pixel ``i`` reads the source at ``(i + 0.5) / scale_factor - 0.5`` (half-pixel centres), border
    taps clamped."""
    n = table.shape[0]
    out = np.zeros((out_size, *table.shape[1:]))
    for i in range(out_size):
        x = (i + 0.5) / scale_factor - 0.5
        x0 = math.floor(x)
        for tap, weight in zip(range(x0 - 1, x0 + 3), _cubic_weights(x - x0)):
            out[i] += weight * table[min(max(tap, 0), n - 1)]
    return out


@pytest.mark.parametrize("grid", [(7, 9), (3, 4)])
def test_dinov2_position_table_is_resized_by_scale_factor_g_plus_offset(grid: tuple[int, int]) -> None:
    config = DINOv2Config(embed_dim=8, depth=1, num_heads=2, img_size=70)  # a 5 x 5 position table
    model = _randomize(DINOv2(config), 0)
    M, (gh, gw) = config.pos_grid, grid
    table = model.pos_embed.detach().double().numpy()[0]
    patch = table[1:].reshape(M, M, -1)
    # separable: rows, then columns, each by (g + 0.1) / M
    rows = _bicubic_1d(patch, gh, (gh + config.interpolate_offset) / M)
    both = _bicubic_1d(rows.transpose(1, 0, 2), gw, (gw + config.interpolate_offset) / M).transpose(1, 0, 2)
    expected = np.concatenate([table[:1], both.reshape(gh * gw, -1)])
    got = model.interpolate_pos_embed(gh, gw).detach().double().numpy()[0]
    np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)
    # the class entry is never resized; a resize to size=g would read the source elsewhere
    np.testing.assert_array_equal(got[0], table[0])
    by_size = _bicubic_1d(patch, gh, gh / M)
    assert np.abs(by_size - rows).max() > 1e-3


def test_dinov2_keeps_its_table_at_the_training_size() -> None:
    config = DINOv2Config(embed_dim=8, depth=1, num_heads=2, img_size=70)
    model = _randomize(DINOv2(config), 1)
    assert torch.equal(model.interpolate_pos_embed(5, 5), model.pos_embed)


# ---------------------------------------------------------------------- the DPT
def _reference_dpt(sd: dict[str, torch.Tensor], hooks: list[torch.Tensor], hw: tuple[int, int], patch: int) -> torch.Tensor:
    """docs/ARCHITECTURE.md 8.3 written out with functional ops on the named weights."""
    H, W = hw
    h, w = H // patch, W // patch

    def conv(x, name, stride=1, padding=0):
        return F.conv2d(x, sd[f"{name}.weight"], sd.get(f"{name}.bias"), stride=stride, padding=padding)

    def rcu(x, name):
        return conv(F.relu(conv(F.relu(x), f"{name}.conv1", padding=1)), f"{name}.conv2", padding=1) + x

    def up2(x):
        return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)

    def fuse(x, name, skip=None):
        if skip is not None:
            x = x + rcu(skip, f"{name}.resConfUnit1")
        return conv(up2(rcu(x, f"{name}.resConfUnit2")), f"{name}.out_conv")

    maps = [t.transpose(1, 2).reshape(1, t.shape[2], h, w) for t in hooks]
    l0 = conv(maps[0], "act_postprocess.0.0")
    l0 = F.conv_transpose2d(l0, sd["act_postprocess.0.1.weight"], sd["act_postprocess.0.1.bias"], stride=4)  # x4
    l1 = conv(maps[1], "act_postprocess.1.0")
    l1 = F.conv_transpose2d(l1, sd["act_postprocess.1.1.weight"], sd["act_postprocess.1.1.bias"], stride=2)  # x2
    l2 = conv(maps[2], "act_postprocess.2.0")
    l3 = conv(conv(maps[3], "act_postprocess.3.0"), "act_postprocess.3.1", stride=2, padding=1)  # /2
    l0, l1, l2, l3 = (conv(x, f"scratch.layer_rn.{i}", padding=1) for i, x in enumerate((l0, l1, l2, l3)))
    p4 = fuse(l3, "scratch.refinenet4")[:, :, : l2.shape[2], : l2.shape[3]]  # cropped to layer 3's size
    p1 = fuse(fuse(fuse(p4, "scratch.refinenet3", l2), "scratch.refinenet2", l1), "scratch.refinenet1", l0)
    out = up2(conv(p1, "head.0", padding=1))
    return conv(F.relu(conv(out, "head.2", padding=1)), "head.4")


@pytest.mark.parametrize("hw", [(48, 80), (64, 32)])  # 3 x 5 patches: odd, so the refinenet4 crop matters
def test_dpt_head_is_the_written_out_dpt(hw: tuple[int, int]) -> None:
    cfg = DPTConfig(feature_dim=10, last_dim=6, layer_dims=(4, 6, 8, 12))  # 10 -> 5 -> 6: the two widths differ
    hook_dims = (16, 12, 12, 12)
    dpt = _randomize(DPTHead(hook_dims, cfg, out_channels=4, patch_size=16), 2)
    h, w = hw[0] // 16, hw[1] // 16
    g = torch.Generator().manual_seed(3)
    hooks = [torch.randn(1, h * w, d, generator=g) for d in hook_dims]
    sd = {k: v.double() for k, v in dpt.state_dict().items()}
    expected = _reference_dpt(sd, [t.double() for t in hooks], hw, 16)
    got = dpt.double()(hooks, hw)
    assert got.shape == (1, 4, *hw)
    torch.testing.assert_close(got, expected, atol=1e-10, rtol=1e-10)
    assert dpt.head[0].out_channels == 5 and dpt.head[2].out_channels == 6


def test_dpt_hooks_take_the_image_tokens_and_keep_the_pose_token_last() -> None:
    N, n, L = 6, 2, 4
    layers = [torch.full((1, N, 3), -1.0)] + [torch.arange(1 + N + n).float()[None, :, None].expand(1, -1, 3) + 100 * i
                                             for i in range(1, L + 1)]
    first, mid, late, last = dpt_hooks(layers, (0, 2, 3, 4), N)
    assert first is layers[0]
    assert mid[0, :, 0].tolist() == [200 + k for k in range(1, 1 + N)]  # the N image tokens of layer 2
    assert late[0, :, 0].tolist() == [300 + k for k in range(1, 1 + N)]
    assert last[0, :, 0].tolist() == [400 + k for k in range(0, 1 + N)]  # pose token first, people dropped


# ---------------------------------------------------------------------- the camera head
def test_camera_pose_activation_is_the_formula() -> None:
    raw = torch.tensor([[0.3, -0.4, 1.2, -0.5, 0.1, 0.2, -0.7], [0.0, 0.0, 0.0, 2.0, 0.0, 0.0, 0.0]], dtype=torch.float64)
    got = camera_pose_activation(raw)
    for row, out in zip(raw.tolist(), got.tolist()):
        t, q = np.array(row[:3]), np.array(row[3:])
        d = np.linalg.norm(t)
        t_expected = t * math.expm1(d) / max(d, 1e-8)
        q_expected = q / np.linalg.norm(q)
        q_expected = -q_expected if q_expected[0] < 0 else q_expected
        np.testing.assert_allclose(out[:3], t_expected, atol=1e-12)
        np.testing.assert_allclose(out[3:], q_expected, atol=1e-12)


def test_camera_head_mlp_and_the_pose_matrix() -> None:
    head = _randomize(CameraHead(tiny_random_config()), 4)
    token = torch.randn(1, head.mlp.fc1.in_features, generator=torch.Generator().manual_seed(5))
    pose, raw = head(token)
    fc1, fc2 = head.mlp.fc1, head.mlp.fc2
    hidden = token @ fc1.weight.T + fc1.bias
    hidden = 0.5 * hidden * (1 + torch.erf(hidden / math.sqrt(2)))  # exact GELU
    torch.testing.assert_close(raw, hidden @ fc2.weight.T + fc2.bias, atol=1e-5, rtol=1e-5)
    # camera-to-world from (w, x, y, z), the textbook formula with s = 2 / |q|^2
    T = pose_to_matrix(pose.double())[0].numpy()
    w, x, y, z = pose[0, 3:].double().tolist()
    s = 2 / (w * w + x * x + y * y + z * z)
    R = np.array([[1 - s * (y * y + z * z), s * (x * y - z * w), s * (x * z + y * w)],
                  [s * (x * y + z * w), 1 - s * (x * x + z * z), s * (y * z - x * w)],
                  [s * (x * z - y * w), s * (y * z + x * w), 1 - s * (x * x + y * y)]])
    np.testing.assert_allclose(T[:3, :3], R, atol=1e-6)
    np.testing.assert_allclose(T[:3, 3], pose[0, :3].double().numpy(), atol=1e-12)
    np.testing.assert_allclose(T[3], [0, 0, 0, 1])


# ---------------------------------------------------------------------- 6D -> rotation
def test_rot6d_is_gram_schmidt_on_the_columns_of_a_row_major_3x2() -> None:
    g = torch.Generator().manual_seed(6)
    six = torch.randn(20, 6, generator=g, dtype=torch.float64)
    six[0] = torch.tensor([1.0, 0.0, 0.0, 1.0, 0.0, 0.0])  # the identity's 6D
    got = rot6d_to_rotmat(six).numpy()
    for a, R in zip(six.numpy(), got):
        u, v = a[[0, 2, 4]], a[[1, 3, 5]]  # [[a0, a1], [a2, a3], [a4, a5]]: columns u and v
        b1 = u / max(np.linalg.norm(u), 1e-6)
        b2 = v - b1.dot(v) * b1
        b2 = b2 / max(np.linalg.norm(b2), 1e-6)
        expected = np.stack([b1, b2, np.cross(b1, b2)], axis=1)
        np.testing.assert_allclose(R, expected, atol=1e-12)
        np.testing.assert_allclose(R @ R.T, np.eye(3), atol=1e-12)
        assert np.linalg.det(R) == pytest.approx(1.0)
    np.testing.assert_allclose(got[0], np.eye(3), atol=1e-15)


# ---------------------------------------------------------------------- the TTT3R gate shortcut
def test_mean_logit_from_the_mean_key_equals_the_mean_of_explicit_logits() -> None:
    dim, heads, Nq, Nk = 24, 2, 7, 11
    rope = RoPE2D(100.0)
    attn = _randomize(CrossAttention(dim, heads, rope=rope), 7)
    g = torch.Generator().manual_seed(8)
    query, context = torch.randn(1, Nq, dim, generator=g), torch.randn(1, Nk, dim, generator=g)
    qpos = torch.randint(0, 5, (1, Nq, 2), generator=g)
    kpos = torch.cat([torch.full((1, 1, 2), -1), torch.randint(0, 5, (1, Nk - 1, 2), generator=g)], dim=1)  # a pose token
    out = attn(query, context, qpos, kpos, mean_logit=True)

    def heads_of(x: torch.Tensor) -> torch.Tensor:  # (1, N, C) -> (1, heads, N, C / heads)
        return x.reshape(1, x.shape[1], heads, dim // heads).transpose(1, 2)

    q = rope(heads_of(attn.projq(query)), qpos).double()
    k = rope(heads_of(attn.projk(context)), kpos).double()
    logits = q @ k.transpose(-2, -1) / math.sqrt(dim // heads)  # (1, heads, Nq, Nk), every one of them
    torch.testing.assert_close(out.mean_logit.double(), logits.mean(dim=(1, 3)), atol=1e-5, rtol=1e-5)


def test_decoder_gate_logit_is_the_mean_over_layers_heads_and_keys() -> None:
    config = tiny_random_config()
    decoder = _randomize(RecurrentDecoder(config), 9)
    g = torch.Generator().manual_seed(10)
    h, w, n = 2, 3, 1
    image_tokens = torch.randn(1, h * w, config.enc_embed_dim, generator=g)
    image_pos = torch.stack(torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij"), -1).reshape(1, -1, 2)
    state = decoder.initial_state().detach()
    pose = torch.randn(1, 1, config.dec_embed_dim, generator=g)
    prompts, prompt_pos = torch.randn(1, n, config.dec_embed_dim, generator=g), torch.tensor([[[1, 2]]])
    with torch.no_grad():
        out = decoder(state, image_tokens, image_pos, pose, prompts, prompt_pos, compute_gate=True, output_attentions=True)
    # every layer's explicit (heads, Ns, 1 + N + n) logits, averaged as docs/ARCHITECTURE.md 7 says
    assert out.cross_attn_logits.shape[-1] == 1 + h * w + n
    torch.testing.assert_close(out.gate_logit, out.cross_attn_logits.mean(dim=(0, 1, 3))[None], atol=1e-5, rtol=1e-5)
