"""Transformer building blocks shared by the CUT3R encoder, the decoders, the pose memory and the heads.

All follow the pre-norm ViT layout (timm / CroCo). Every ``Linear`` has a bias and every
``LayerNorm`` uses ``eps=1e-6``. Fused ``qkv`` projections are laid out ``[q | k | v]`` with the heads
contiguous inside each third, i.e. their output reshapes to ``(B, N, 3, heads, head_dim)``.
Attention always runs through :func:`~human3r_demo.model.attention.attention` (the fused kernel, or
the query-blocked one where the device rule picks it); attention maps and logits are computed on the
side, and only when asked for (``output_attentions``).

Adapted from fanegg/Human3R@e313921 ``src/dust3r/blocks.py`` (``Attention``, ``CrossAttention``,
``DecoderBlock``, ``ModLN``) and ``src/croco/models/blocks.py`` (``Block``, ``Mlp``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from .attention import attention
from .rope import RoPE2D


def layer_norm(dim: int) -> nn.LayerNorm:
    return nn.LayerNorm(dim, eps=1e-6)


class Mlp(nn.Module):
    """``fc2(GELU(fc1(x)))`` (keys ``fc1``, ``fc2``)."""

    def __init__(self, dim: int, hidden_dim: int, out_dim: int | None = None) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_dim, out_dim or dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(x)))


def two_layer_mlp(dim: int, hidden_dim: int, out_dim: int, act: type[nn.Module] = nn.GELU) -> nn.Sequential:
    """``Linear -> act -> Linear`` as a Sequential (parameter keys ``0`` and ``2``)."""
    return nn.Sequential(nn.Linear(dim, hidden_dim), act(), nn.Linear(hidden_dim, out_dim))


def split_heads(x: Tensor, num_heads: int) -> Tensor:
    """(B, N, C) -> (B, heads, N, C // heads)."""
    B, N, C = x.shape
    return x.reshape(B, N, num_heads, C // num_heads).transpose(1, 2)


def merge_heads(x: Tensor) -> Tensor:
    """(B, heads, N, Dh) -> (B, N, heads * Dh)."""
    B, heads, N, Dh = x.shape
    return x.transpose(1, 2).reshape(B, N, heads * Dh)


class Attention(nn.Module):
    """Multi-head self-attention with a fused ``qkv`` projection and optional 2D RoPE.

    Args:
        dim: token width.
        num_heads: number of heads.
        rope: rotary embedding applied to q and k, or ``None``.
        fp16_rope: round q and k to float16 before and after the rotation. The official CUT3R
            encoder does this (it feeds float16 tensors to the CUDA RoPE kernel), so the encoder
            must do it too to reproduce the released model; nothing else does.
    """

    def __init__(self, dim: int, num_heads: int, rope: RoPE2D | None = None, fp16_rope: bool = False) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.rope = rope
        self.fp16_rope = fp16_rope

    def forward(self, x: Tensor, pos: Tensor | None = None, output_attentions: bool = False) -> tuple[Tensor, Tensor | None]:
        """``x`` (B, N, C), ``pos`` (B, N, 2) integer positions -> ``((B, N, C), weights (B, heads, N, N) or None)``."""
        B, N, C = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, C // self.num_heads).transpose(1, 3)
        q, k, v = qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]  # each (B, heads, N, Dh)
        if self.rope is not None:
            q, k = self._rotate(q, pos), self._rotate(k, pos)
        out = self.proj(merge_heads(attention(q, k, v, self.scale)))
        weights = ((q @ k.transpose(-2, -1)) * self.scale).softmax(dim=-1) if output_attentions else None
        return out, weights

    def _rotate(self, t: Tensor, pos: Tensor) -> Tensor:
        if self.fp16_rope:
            return self.rope(t.to(torch.float16), pos).to(t.dtype)
        return self.rope(t, pos)


@dataclass
class CrossAttentionOutput:
    """``tokens`` (B, Nq, C); the optional extras are described in :meth:`CrossAttention.forward`."""

    tokens: Tensor
    mean_logit: Tensor | None = None
    logits: Tensor | None = None
    weights: Tensor | None = None


class CrossAttention(nn.Module):
    """Queries from one stream attend to keys/values of another (``projq``, ``projk``, ``projv``)."""

    def __init__(self, dim: int, num_heads: int, rope: RoPE2D | None = None) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.projq = nn.Linear(dim, dim)
        self.projk = nn.Linear(dim, dim)
        self.projv = nn.Linear(dim, dim)
        self.proj = nn.Linear(dim, dim)
        self.rope = rope

    def forward(
        self,
        query: Tensor,
        context: Tensor,
        qpos: Tensor | None = None,
        kpos: Tensor | None = None,
        *,
        mean_logit: bool = False,
        output_attentions: bool = False,
    ) -> CrossAttentionOutput:
        """``query`` (B, Nq, C) attends to ``context`` (B, Nk, C).

        Args:
            mean_logit: also return ``mean_logit`` (B, Nq), the pre-softmax logit ``q.k * scale``
                averaged over heads and keys, in float32 (TTT3R's gate). It equals ``q . mean(k)``,
                so the (B, heads, Nq, Nk) logits are never materialised for it.
            output_attentions: also return the pre-softmax ``logits`` and the softmax ``weights``
                (B, heads, Nq, Nk), for inspection.
        """
        q = split_heads(self.projq(query), self.num_heads)
        k = split_heads(self.projk(context), self.num_heads)
        v = split_heads(self.projv(context), self.num_heads)
        if self.rope is not None:
            q, k = self.rope(q, qpos), self.rope(k, kpos)
        out = CrossAttentionOutput(self.proj(merge_heads(attention(q, k, v, self.scale))))
        if mean_logit:
            mean_key = k.float().mean(dim=-2, keepdim=True)  # (B, heads, 1, Dh)
            out.mean_logit = (q.float() @ mean_key.transpose(-2, -1))[..., 0].mean(dim=1) * self.scale
        if output_attentions:
            out.logits = (q @ k.transpose(-2, -1)) * self.scale
            out.weights = out.logits.softmax(dim=-1)
        return out


class EncoderBlock(nn.Module):
    """Pre-norm ViT block: ``x += attn(norm1(x))``, ``x += mlp(norm2(x))``."""

    def __init__(
        self, dim: int, num_heads: int, mlp_ratio: float = 4.0, rope: RoPE2D | None = None, fp16_rope: bool = False
    ) -> None:
        super().__init__()
        self.norm1 = layer_norm(dim)
        self.attn = Attention(dim, num_heads, rope=rope, fp16_rope=fp16_rope)
        self.norm2 = layer_norm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: Tensor, pos: Tensor | None = None) -> Tensor:
        x = x + self.attn(self.norm1(x), pos)[0]
        return x + self.mlp(self.norm2(x))


@dataclass
class DecoderBlockOutput:
    """One decoder block's result; the extras are ``None`` unless requested.

    Attributes:
        tokens: (B, N, C) the updated query stream.
        mean_logit: (B, N) cross-attention pre-softmax logit averaged over heads and keys (float32).
        cross_attn_logits: (B, heads, N, M) pre-softmax cross-attention logits.
        self_attn_weights: (B, heads, N, N); cross_attn_weights: (B, heads, N, M) softmax weights.
    """

    tokens: Tensor
    mean_logit: Tensor | None = None
    cross_attn_logits: Tensor | None = None
    self_attn_weights: Tensor | None = None
    cross_attn_weights: Tensor | None = None


class DecoderBlock(nn.Module):
    """Updates a stream ``x`` by self-attention, then cross-attention to a second stream ``y``.

    ``y`` is layer-normalised (``norm_y``) before it is used as keys and values and is itself left
    unchanged. Used by the image decoder, the state decoder and the pose memory.
    """

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, rope: RoPE2D | None = None) -> None:
        super().__init__()
        self.norm1 = layer_norm(dim)
        self.attn = Attention(dim, num_heads, rope=rope)
        self.cross_attn = CrossAttention(dim, num_heads, rope=rope)
        self.norm2 = layer_norm(dim)
        self.norm3 = layer_norm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.norm_y = layer_norm(dim)

    def forward(
        self,
        x: Tensor,
        y: Tensor,
        xpos: Tensor | None = None,
        ypos: Tensor | None = None,
        *,
        mean_logit: bool = False,
        output_attentions: bool = False,
    ) -> DecoderBlockOutput:
        """``x`` (B, N, C) with positions ``xpos``, ``y`` (B, M, C) with ``ypos``."""
        attended, self_weights = self.attn(self.norm1(x), xpos, output_attentions=output_attentions)
        x = x + attended
        cross = self.cross_attn(
            self.norm2(x), self.norm_y(y), xpos, ypos, mean_logit=mean_logit, output_attentions=output_attentions
        )
        x = x + cross.tokens
        x = x + self.mlp(self.norm3(x))
        return DecoderBlockOutput(x, cross.mean_logit, cross.logits, self_weights, cross.weights)


class ModulatedLayerNorm(nn.Module):
    """adaLN: ``LN(x) * (1 + scale) + shift`` with ``[shift, scale] = Linear(SiLU(c))`` (keys ``norm``, ``mlp.1``)."""

    def __init__(self, dim: int, cond_dim: int) -> None:
        super().__init__()
        self.norm = layer_norm(dim)
        self.mlp = nn.Sequential(nn.SiLU(), nn.Linear(cond_dim, 2 * dim))

    def forward(self, x: Tensor, cond: Tensor) -> Tensor:
        """``x`` (B, N, C), ``cond`` (B, C_cond)."""
        shift, scale = self.mlp(cond).chunk(2, dim=-1)
        return self.norm(x) * (1 + scale.unsqueeze(1)) + shift.unsqueeze(1)


class ModulatedBlock(nn.Module):
    """Pre-norm ViT block whose two norms are modulated by a condition (the camera pose token)."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, rope: RoPE2D | None = None) -> None:
        super().__init__()
        self.norm1 = ModulatedLayerNorm(dim, dim)
        self.attn = Attention(dim, num_heads, rope=rope)
        self.norm2 = ModulatedLayerNorm(dim, dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: Tensor, cond: Tensor, pos: Tensor) -> Tensor:
        x = x + self.attn(self.norm1(x, cond), pos)[0]
        return x + self.mlp(self.norm2(x, cond))
