"""Scaled dot-product attention ``softmax(q k^T * scale) v`` with the kernel chosen per device.

Every attention in the model (DINOv2, the CUT3R encoder, both decoders and their cross-attention,
the pose memory, the TTT3R state decoder) calls :func:`attention`. Two kernels compute the same thing:

* ``"fused"``: ``torch.nn.functional.scaled_dot_product_attention``, one fused kernel that never
  materialises the logits. In float32, and on CUDA or on CPUs with AMX in any precision, it is the
  fastest there is, and the float32 model always uses it (its results are those of the reference).
* ``"blocked"``: :func:`blocked_attention`, queries in blocks; per block the two products ``q k^T``
  and ``P v`` are batched bfloat16 matrix products (the same oneDNN kernels as the linear layers)
  and the softmax between them runs in float32. On a CPU with AVX-512 BF16 but no AMX (AMD Zen 4,
  Intel Cooper Lake), PyTorch's fused CPU kernel gains nothing from bfloat16 and runs at a third of
  the matrix-product speed; the blocked form runs at about two thirds of it
  (``benchmarks/RESULTS.md``). Memory is bounded per block (:data:`BLOCK_LOGITS`), not per sequence.

Which kernel runs is the rule in :func:`human3r_demo.device.attention_kernel`, looked up once per
(device type, dtype).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import Tensor

from ..device import ATTENTION_KERNELS, attention_kernel

__all__ = ["BLOCK_LOGITS", "attention", "blocked_attention", "forced_kernel", "kernel_for"]

# Logits held at once by the blocked kernel: 2**20 bfloat16 logits and their probabilities are 4 MiB,
# which keeps a block's softmax in the CPU's caches. Measured on the AMD EPYC (Zen 4, 1 MiB L2 per
# core, 2 threads): 2**18 to 2**21 are within 10 % of each other; 2**17 is slower (small products),
# 2**22 slower again (the block leaves the caches).
BLOCK_LOGITS = 2**20

_chosen: dict[tuple[str, torch.dtype], str] = {}
_forced: str | None = None


def kernel_for(device: torch.device, dtype: torch.dtype) -> str:
    """The kernel :func:`attention` runs for tensors on ``device`` in ``dtype`` (the device rule, cached)."""
    if _forced is not None:
        return _forced
    key = (device.type, dtype)
    if key not in _chosen:
        _chosen[key] = attention_kernel(device, dtype)
    return _chosen[key]


@contextmanager
def forced_kernel(kernel: str) -> Iterator[None]:
    """Run every attention with ``kernel`` inside the block (benchmarks' before/after, tests)."""
    global _forced
    if kernel not in ATTENTION_KERNELS:
        raise ValueError(f"attention kernel must be one of {', '.join(ATTENTION_KERNELS)}, got {kernel!r}")
    previous, _forced = _forced, kernel
    try:
        yield
    finally:
        _forced = previous


def attention(q: Tensor, k: Tensor, v: Tensor, scale: float | None = None) -> Tensor:
    """``q`` (B, heads, N, Dh), ``k`` (B, heads, M, Dh), ``v`` (B, heads, M, Dv) -> (B, heads, N, Dv).

    ``scale`` defaults to ``Dh ** -0.5``.
    """
    if kernel_for(q.device, q.dtype) == "blocked":
        return blocked_attention(q, k, v, scale)
    return F.scaled_dot_product_attention(q, k, v, scale=scale)


def blocked_attention(q: Tensor, k: Tensor, v: Tensor, scale: float | None = None, block_logits: int = BLOCK_LOGITS) -> Tensor:
    """Query-blocked attention: per block of query rows, ``softmax(q k^T * scale) v``.

    Shapes as :func:`attention`. Each block computes its logits (B*heads, rows, M) with one batched
    matrix product (``scale`` applied to the float32 accumulator, before rounding to ``q.dtype``),
    their softmax, and one batched product with ``v``; ``rows = block_logits // (B * heads * M)``
    (at least one), so at most about ``block_logits`` logits and as many probabilities exist at once.

    Precision: in bfloat16 both products accumulate in float32 (oneDNN) and round their result to
    bfloat16; PyTorch's CPU softmax of a bfloat16 tensor converts each row to float32, subtracts
    its maximum, exponentiates, sums and normalises in float32 and rounds the probabilities once
    (tested in ``tests/test_attention.py``, also that in place it computes the same). In float32
    or float64 every step is in that dtype.
    """
    B, heads, N, Dh = q.shape
    M, Dv = k.shape[-2], v.shape[-1]
    scale = Dh**-0.5 if scale is None else scale
    # contiguous once: q, k and v are usually strided views of one qkv projection, and a strided
    # operand is copied by every product, i.e. once per block (5x slower on DINOv2-L at 896 px)
    q3 = q.reshape(B * heads, N, Dh).contiguous()
    kt = k.reshape(B * heads, M, Dh).contiguous().transpose(1, 2)
    v3 = v.reshape(B * heads, M, Dv).contiguous()
    out = q.new_empty(B * heads, N, Dv)
    rows = max(1, min(N, block_logits // max(1, B * heads * M)))
    logits = q.new_empty(B * heads, rows, M)
    for start in range(0, N, rows):
        stop = min(start + rows, N)
        block = logits[:, : stop - start]
        torch.baddbmm(block, q3[:, start:stop], kt, beta=0, alpha=scale, out=block)
        torch.softmax(block, dim=-1, out=block)  # in place: 1.5x faster than a new tensor (stays in cache)
        torch.bmm(block, v3, out=out[:, start:stop])
    return out.reshape(B, heads, N, Dv)
