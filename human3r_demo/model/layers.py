"""Transformer building blocks shared by the CUT3R encoder, the decoders and the heads.

All follow the pre-norm ViT layout (timm / CroCo). Every ``Linear`` has a bias and every
``LayerNorm`` uses ``eps=1e-6``. Fused ``qkv`` projections are laid out ``[q | k | v]`` with the heads
contiguous inside each third, i.e. their output reshapes to ``(B, N, 3, heads, head_dim)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .rope import RoPE2D


def layer_norm(dim: int) -> nn.LayerNorm:
    return nn.LayerNorm(dim, eps=1e-6)


class Mlp(nn.Module):
    """``fc2(GELU(fc1(x)))``, hidden width ``ratio * dim`` (keys ``fc1``, ``fc2``)."""

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
        self.head_dim = dim // num_heads
        self.scale = self.head_dim**-0.5
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.rope = rope
        self.fp16_rope = fp16_rope

    def forward(self, x: Tensor, pos: Tensor | None = None) -> Tensor:
        """``x`` (B, N, C), ``pos`` (B, N, 2) integer positions -> (B, N, C)."""
        B, N, C = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, self.head_dim).transpose(1, 3)
        q, k, v = qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]  # each (B, heads, N, Dh)
        if self.rope is not None:
            q, k = self._rotate(q, pos), self._rotate(k, pos)
        out = F.scaled_dot_product_attention(q, k, v, scale=self.scale)
        return self.proj(out.transpose(1, 2).reshape(B, N, C))

    def attention_weights(self, x: Tensor, pos: Tensor | None = None) -> Tensor:
        """Softmax attention weights (B, heads, N, N) of ``x``, for inspection (not used by forward)."""
        B, N, _ = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, self.head_dim).transpose(1, 3)
        q, k = qkv[:, :, 0], qkv[:, :, 1]
        if self.rope is not None:
            q, k = self._rotate(q, pos), self._rotate(k, pos)
        return ((q @ k.transpose(-2, -1)) * self.scale).softmax(dim=-1)

    def _rotate(self, t: Tensor, pos: Tensor) -> Tensor:
        if self.fp16_rope:
            return self.rope(t.to(torch.float16), pos).to(t.dtype)
        return self.rope(t, pos)


class CrossAttention(nn.Module):
    """Queries from one stream attend to keys/values of another (``projq``, ``projk``, ``projv``).

    With ``return_logits=True`` the attention is computed explicitly and the pre-softmax logits
    ``(B, heads, Nq, Nk)`` are returned too; TTT3R derives its state-update gate from them.
    """

    def __init__(self, dim: int, num_heads: int, rope: RoPE2D | None = None) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim**-0.5
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
        return_logits: bool = False,
    ) -> tuple[Tensor, Tensor | None]:
        """``query`` (B, Nq, C) attends to ``context`` (B, Nk, C) -> ``((B, Nq, C), logits or None)``."""
        B, Nq, C = query.shape
        q = self._heads(self.projq(query))
        k = self._heads(self.projk(context))
        v = self._heads(self.projv(context))
        if self.rope is not None:
            q, k = self.rope(q, qpos), self.rope(k, kpos)
        if return_logits:
            logits = (q @ k.transpose(-2, -1)) * self.scale  # (B, heads, Nq, Nk)
            out = logits.softmax(dim=-1) @ v
        else:
            logits = None
            out = F.scaled_dot_product_attention(q, k, v, scale=self.scale)
        return self.proj(out.transpose(1, 2).reshape(B, Nq, C)), logits

    def attention_weights(self, query: Tensor, context: Tensor, qpos: Tensor | None = None, kpos: Tensor | None = None) -> Tensor:
        """Softmax attention weights (B, heads, Nq, Nk), for inspection (not used by forward)."""
        q, k = self._heads(self.projq(query)), self._heads(self.projk(context))
        if self.rope is not None:
            q, k = self.rope(q, qpos), self.rope(k, kpos)
        return ((q @ k.transpose(-2, -1)) * self.scale).softmax(dim=-1)

    def _heads(self, x: Tensor) -> Tensor:
        B, N, _ = x.shape
        return x.reshape(B, N, self.num_heads, self.head_dim).permute(0, 2, 1, 3)


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
        x = x + self.attn(self.norm1(x), pos)
        return x + self.mlp(self.norm2(x))


@dataclass
class DecoderBlockOutput:
    tokens: Tensor  # (B, N, C) the updated query stream
    cross_attn_logits: Tensor | None = None  # (B, heads, N, Nk) pre-softmax, when requested
    self_attn_weights: Tensor | None = None  # (B, heads, N, N), with output_attentions
    cross_attn_weights: Tensor | None = None  # (B, heads, N, Nk), with output_attentions


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
        return_logits: bool = False,
        output_attentions: bool = False,
    ) -> DecoderBlockOutput:
        """``x`` (B, N, C) with positions ``xpos``, ``y`` (B, M, C) with ``ypos``.

        ``output_attentions`` also returns both attention maps (recomputed for inspection).
        """
        normed = self.norm1(x)
        self_weights = self.attn.attention_weights(normed, xpos) if output_attentions else None
        x = x + self.attn(normed, xpos)
        y = self.norm_y(y)
        query = self.norm2(x)
        cross_weights = self.cross_attn.attention_weights(query, y, xpos, ypos) if output_attentions else None
        attended, logits = self.cross_attn(query, y, xpos, ypos, return_logits=return_logits)
        x = x + attended
        x = x + self.mlp(self.norm3(x))
        return DecoderBlockOutput(x, logits, self_weights, cross_weights)


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
        x = x + self.attn(self.norm1(x, cond), pos)
        return x + self.mlp(self.norm2(x, cond))
