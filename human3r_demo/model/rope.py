"""2D rotary position embedding (RoPE2D, base 100) as used by CUT3R.

Each attention head of dimension ``Dh`` is split into a y half and an x half. Inside a half of
``D = Dh/2`` channels, channel ``i`` and channel ``i + D/2`` are rotated together by the angle
``pos * inv_freq[i]``, with the row position for the y half and the column position for the x half.

This is the formula of the CUDA kernel that the official model runs with (``curope``), written with
plain tensor ops: it accepts negative positions (the pose token sits at ``(-1, -1)``, which crashes
the reference's PyTorch fallback) and computes in float32 whatever the token dtype, rounding once
to that dtype at the end.

Adapted from fanegg/Human3R@e313921 ``src/croco/models/curope/kernels.cu`` (the kernel's arithmetic)
and ``src/croco/models/pos_embed.py`` (``RoPE2D``, its channel layout); docs/ARCHITECTURE.md 3.1.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class RoPE2D(nn.Module):
    """Rotate query/key heads by their 2D integer positions.

    Args:
        base: frequency base (100 for CUT3R, from ``pos_embed='RoPE100'``).
    """

    def __init__(self, base: float = 100.0) -> None:
        super().__init__()
        self.base = base

    def inv_freq(self, half_dim: int, device: torch.device) -> Tensor:
        """Frequencies ``1 / base^(2i / half_dim)``, i < half_dim/2, in float32 (shape ``(half_dim/2,)``)."""
        return 1.0 / (self.base ** (torch.arange(0, half_dim, 2, device=device).float() / half_dim))

    def forward(self, tokens: Tensor, positions: Tensor) -> Tensor:
        """Apply the rotation.

        Args:
            tokens: ``(B, heads, N, Dh)`` queries or keys, any float dtype.
            positions: ``(B, N, 2)`` integer ``(row, col)`` positions; may be negative.

        Returns:
            ``(B, heads, N, Dh)`` rotated tokens, same dtype as ``tokens``.
        """
        head_dim = tokens.shape[-1]
        if head_dim % 4:
            raise ValueError(f"RoPE2D needs a head dimension divisible by 4, got {head_dim}")
        inv_freq = self.inv_freq(head_dim // 2, tokens.device)
        x = tokens.float()
        y_half, x_half = x.chunk(2, dim=-1)
        rotated = (
            self._rotate(y_half, positions[..., 0], inv_freq),
            self._rotate(x_half, positions[..., 1], inv_freq),
        )
        return torch.cat(rotated, dim=-1).to(tokens.dtype)

    @staticmethod
    def _rotate(x: Tensor, pos: Tensor, inv_freq: Tensor) -> Tensor:
        # angles (B, 1, N, Q): float32 product of the integer position and the frequency
        angle = (pos.float()[..., None] * inv_freq)[:, None]
        cos, sin = angle.cos(), angle.sin()
        u, v = x.chunk(2, dim=-1)
        return torch.cat((u * cos - v * sin, v * cos + u * sin), dim=-1)
