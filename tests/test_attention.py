"""The attention kernels: the blocked kernel against softmax attention written out in float64, its
bfloat16 error bound, its memory per block, the device rule, and that every attention in the model
goes through the chosen kernel (float32 bit-for-bit the fused kernel it used before)."""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode

import human3r_demo as h3r
from human3r_demo import device as device_module
from human3r_demo.checkpoints.random_init import calibration_scene
from human3r_demo.model import attention as attention_module
from human3r_demo.model.attention import attention, blocked_attention, forced_kernel, kernel_for
from human3r_demo.model.layers import Attention, CrossAttention
from human3r_demo.model.square_view import pad_to_square

BF16_EPS = 2.0**-8  # bfloat16 keeps 8 significant bits: rounding moves a value by at most 2**-8 of it


def softmax_attention_float64(q, k, v, scale):
    """``softmax(q k^T * scale) v`` written out, in float64."""
    logits = (q.double() @ k.double().transpose(-2, -1)) * scale
    weights = torch.exp(logits - logits.amax(dim=-1, keepdim=True))
    return (weights / weights.sum(dim=-1, keepdim=True)) @ v.double()


def qkv(B, heads, N, M, Dh, Dv, dtype, spread=1.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(B, heads, N, Dh, generator=g) * spread
    k = torch.randn(B, heads, M, Dh, generator=g) * spread + 0.5  # a shared key component, as in trained ViTs
    v = torch.randn(B, heads, M, Dv, generator=g)
    return q.to(dtype), k.to(dtype), v.to(dtype)


# (B, heads, N queries, M keys, Dh, Dv, block_logits): odd token counts, blocks that do not divide N
# (the last block short), one row per block, one block for everything, cross-attention (N != M), B > 1.
SHAPES = [
    (1, 3, 37, 37, 16, 16, 5 * 3 * 37),  # 37 = 7 blocks of 5 and a last of 2
    (1, 2, 101, 64, 8, 8, 2 * 64),  # one query row per block
    (2, 4, 50, 77, 16, 12, 10**9),  # everything in one block, Dv != Dh
    (1, 6, 65, 129, 32, 32, 6 * 129 * 16),  # blocks of 16 rows over 65: 4 full blocks and a single last row
    (3, 1, 1, 9, 4, 4, 1),  # a single query (the pose memory's read), budget below one row
]


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "B{}h{}N{}M{}Dh{}Dv{}blk{}".format(*s))
@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-12), (torch.float32, 2e-6)])
def test_blocked_attention_is_softmax_attention(shape, dtype, tol) -> None:
    B, heads, N, M, Dh, Dv, block = shape
    q, k, v = qkv(B, heads, N, M, Dh, Dv, dtype)
    scale = Dh**-0.5
    got = blocked_attention(q, k, v, scale, block_logits=block)
    assert got.shape == (B, heads, N, Dv) and got.dtype == dtype
    torch.testing.assert_close(got.double(), softmax_attention_float64(q, k, v, scale), rtol=0, atol=tol)


def test_blocked_attention_takes_strided_views_and_the_default_scale() -> None:
    """The model hands it q, k, v as views into one fused qkv projection (not contiguous)."""
    B, N, heads, Dh = 1, 23, 3, 8
    x = torch.randn(B, N, 3, heads, Dh, dtype=torch.float64).transpose(1, 3)  # (B, heads, 3, N, Dh) view
    q, k, v = x[:, :, 0], x[:, :, 1], x[:, :, 2]
    assert not q.is_contiguous()
    torch.testing.assert_close(blocked_attention(q, k, v, block_logits=7 * heads * N),
                               softmax_attention_float64(q, k, v, Dh**-0.5), rtol=0, atol=1e-12)


@pytest.mark.parametrize("spread", [0.5, 1.5, 3.0])
def test_blocked_attention_bf16_error_is_within_its_bound(spread) -> None:
    """In bfloat16, against the exact attention of the same (rounded) inputs, per query row:

        |error| <= 2**-8 * (2 * max_j |s_j| + 3) * max_j |v_j|

    where ``s`` are the row's logits ``q.k * scale``: the logits are rounded to bfloat16 (each off
    by at most 2**-8 |s|, which moves a softmax weight p by at most 2 * 2**-8 max|s| * p), the weights
    are rounded (2**-8 p), and the output is rounded (2**-8 |out| <= 2**-8 max|v|). The products
    accumulate in float32 and the softmax runs in float32, which add nothing visible at this scale;
    a softmax in bfloat16 or a lost float32 accumulator breaks the bound.
    """
    q, k, v = qkv(1, 4, 150, 97, 64, 64, torch.bfloat16, spread=spread)
    scale = 64**-0.5
    exact = softmax_attention_float64(q, k, v, scale)
    got = blocked_attention(q, k, v, scale, block_logits=4 * 97 * 32).double()
    logits = (q.double() @ k.double().transpose(-2, -1)) * scale
    bound = BF16_EPS * (2 * logits.abs().amax(dim=-1) + 3) * v.double().abs().amax(dim=-2)[:, :, None, :].amax(-1)
    error = (got - exact).abs().amax(dim=-1)
    assert (error <= bound).all(), float((error / bound).max())
    assert float((error / bound).max()) > 0.01  # a real bfloat16 computation, the bound not vacuous by 100x


def test_bf16_softmax_runs_in_float32() -> None:
    """PyTorch's CPU softmax of a bfloat16 tensor computes in float32 and rounds once (what
    :func:`blocked_attention` relies on): within one bfloat16 rounding of the exact softmax."""
    logits = (torch.randn(4, 33, 1000, generator=torch.Generator().manual_seed(0)) * 4).bfloat16()
    exact = torch.softmax(logits.double(), dim=-1)
    got = torch.softmax(logits, dim=-1)
    assert got.dtype == torch.bfloat16
    assert ((got.double() - exact).abs() <= BF16_EPS * exact + 1e-30).all()
    in_place = logits.clone()
    torch.softmax(in_place, dim=-1, out=in_place)  # how the blocked kernel calls it
    assert torch.equal(in_place, got)


class _LargestTensor(TorchDispatchMode):
    """Records the largest tensor any operation returns."""

    def __init__(self) -> None:
        super().__init__()
        self.largest = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(t, torch.Tensor):
                self.largest = max(self.largest, t.numel())
        return out


def test_blocked_attention_memory_is_bounded_per_block() -> None:
    heads, N, M, Dh = 4, 300, 400, 16
    q, k, v = qkv(1, heads, N, M, Dh, Dh, torch.bfloat16)
    block = heads * M * 10
    with _LargestTensor() as seen:
        blocked_attention(q, k, v, block_logits=block)
    # views of the inputs and the output are the largest tensors, never the (heads, N, M) logits (480,000)
    assert seen.largest <= max(block, heads * M * Dh, heads * N * Dh)
    with _LargestTensor() as seen:
        blocked_attention(q, k, v, block_logits=10**9)
    assert seen.largest == heads * N * M  # the same call with one block does hold them: the check sees it


def test_the_device_rule(monkeypatch) -> None:
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    monkeypatch.setattr(device_module, "cpu_flags", lambda: {"avx512f", "avx512_bf16"})  # AMD Zen 4
    assert device_module.attention_kernel(cpu, torch.bfloat16) == "blocked"
    assert device_module.attention_kernel(cpu, torch.float32) == "fused"
    assert device_module.attention_kernel(cuda, torch.bfloat16) == "fused"
    monkeypatch.setattr(device_module, "cpu_flags", lambda: {"avx512f", "avx512_bf16", "amx_tile", "amx_bf16"})  # Xeon 4th gen
    assert device_module.attention_kernel(cpu, torch.bfloat16) == "fused"
    monkeypatch.setattr(device_module, "cpu_flags", lambda: {"avx2"})  # no native bf16
    assert device_module.attention_kernel(cpu, torch.bfloat16) == "fused"


def test_forced_kernel_and_its_errors() -> None:
    cpu = torch.device("cpu")
    with forced_kernel("blocked"):
        assert kernel_for(cpu, torch.float32) == "blocked"
        with forced_kernel("fused"):
            assert kernel_for(cpu, torch.float32) == "fused"
        assert kernel_for(cpu, torch.float32) == "blocked"
    assert kernel_for(cpu, torch.float32) == "fused"
    with pytest.raises(ValueError, match="attention kernel must be one of fused, blocked, got 'flash'"):
        with forced_kernel("flash"):
            pass


def test_float32_attention_is_the_fused_kernel_bit_for_bit() -> None:
    """The float32 model computes exactly what it computed before the kernel choice existed."""
    torch.manual_seed(0)
    q, k, v = qkv(1, 4, 45, 45, 16, 16, torch.float32)
    assert torch.equal(attention(q, k, v, 0.25), F.scaled_dot_product_attention(q, k, v, scale=0.25))
    self_attn, cross_attn = Attention(64, 4).eval(), CrossAttention(64, 4).eval()
    x, y = torch.randn(1, 45, 64), torch.randn(1, 30, 64)
    with torch.no_grad():
        qkv_ = self_attn.qkv(x).reshape(1, 45, 3, 4, 16).transpose(1, 3)
        before = self_attn.proj(F.scaled_dot_product_attention(qkv_[:, :, 0], qkv_[:, :, 1], qkv_[:, :, 2], scale=0.25)
                                .transpose(1, 2).reshape(1, 45, 64))
        assert torch.equal(self_attn(x)[0], before)
        q_, k_, v_ = (p(t).reshape(1, -1, 4, 16).transpose(1, 2) for p, t in
                      ((cross_attn.projq, x), (cross_attn.projk, y), (cross_attn.projv, y)))
        before = cross_attn.proj(F.scaled_dot_product_attention(q_, k_, v_, scale=0.25).transpose(1, 2).reshape(1, 45, 64))
        assert torch.equal(cross_attn(x, y).tokens, before)


def test_every_attention_in_the_model_runs_the_chosen_kernel(monkeypatch) -> None:
    """bfloat16 tiny-random with the blocked kernel forced: the fused kernel is never called (DINOv2,
    encoder, decoders, TTT3R state decoder, pose memory, heads), and the frame agrees with the
    fused kernel's within bfloat16 error."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: a second thread only adds waiting
    try:
        _every_attention_runs_the_chosen_kernel(monkeypatch)
    finally:
        torch.set_num_threads(threads)


def _every_attention_runs_the_chosen_kernel(monkeypatch) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = h3r.load_model("tiny-random", device="cpu", precision="bf16")
    image = calibration_scene(64, 112)
    square = pad_to_square(image, model.config.mhmr_img_res)
    results = {}
    for kernel in ("fused", "blocked"):
        calls = {"blocked": 0}
        real_blocked = attention_module.blocked_attention

        def counted(*args, calls=calls, real_blocked=real_blocked, **kwargs):
            calls["blocked"] += 1
            return real_blocked(*args, **kwargs)

        with monkeypatch.context() as m, forced_kernel(kernel), torch.inference_mode():
            m.setattr(attention_module, "blocked_attention", counted)
            if kernel == "blocked":
                m.setattr(attention_module.F, "scaled_dot_product_attention", _never)
            first = model(image, square, dense_heads=("self",))
            second = model(image.flip(-1), pad_to_square(image.flip(-1), model.config.mhmr_img_res), first.state,
                           dense_heads=("self",))  # a steady frame: pose memory read, TTT3R gate computed
        results[kernel] = (second.dense_heads.pts3d_self, calls["blocked"])
    assert results["fused"][1] == 0
    cfg = model.config
    per_frame = cfg.dinov2.depth + cfg.enc_depth + 4 * cfg.dec_depth  # decoders: self + cross in both streams
    pose_memory = 2 * 2 + 2 * (2 * 2)  # frame 1 writes (2 blocks, self + cross); frame 2 reads and writes
    assert results["blocked"][1] == 2 * per_frame + pose_memory
    fused, blocked = results["fused"][0], results["blocked"][0]
    assert float((blocked - fused).norm() / fused.norm()) < 2e-2


def _never(*args, **kwargs):
    raise AssertionError("the fused kernel ran although the blocked kernel was forced")
