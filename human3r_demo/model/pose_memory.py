"""CUT3R's pose retriever: a small memory of (image feature, camera pose feature) slots.

After the first frame of a chunk, the decoder's pose query is not the learned pose token but what
the memory answers for the frame's global feature (the mean image token); after decoding, the
frame's feature and its decoded pose token are written back. Both directions are two decoder blocks
of width ``2 * dd`` without RoPE.

Adapted from fanegg/Human3R@e313921 ``src/dust3r/model.py`` (``LocalMemory``); docs/ARCHITECTURE.md 4.2.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..config import Human3RConfig
from .layers import DecoderBlock


class PoseMemory(nn.Module):
    """``inquire`` reads a pose query for a new frame; ``update`` writes the frame into the memory.

    ``mem`` is the learned initial memory (1, M, 2*dd); the running memory is passed in and out.
    """

    def __init__(self, config: Human3RConfig) -> None:
        super().__init__()
        dd, width = config.dec_embed_dim, 2 * config.dec_embed_dim
        self.dim = dd
        self.proj_q = nn.Linear(config.enc_embed_dim, dd)
        self.masked_token = nn.Parameter(torch.zeros(1, 1, dd))
        self.mem = nn.Parameter(torch.zeros(1, config.local_mem_size, width))
        self.read_blocks = nn.ModuleList(DecoderBlock(width, config.dec_num_heads, config.mlp_ratio) for _ in range(2))
        self.write_blocks = nn.ModuleList(DecoderBlock(width, config.dec_num_heads, config.mlp_ratio) for _ in range(2))

    def inquire(self, global_feature: Tensor, memory: Tensor) -> Tensor:
        """``global_feature`` (1, 1, ed), ``memory`` (1, M, 2dd) -> pose query (1, 1, dd)."""
        dtype = self.proj_q.weight.dtype
        x = torch.cat([self.proj_q(global_feature.to(dtype)), self.masked_token.expand(global_feature.shape[0], -1, -1)], dim=-1)
        memory = memory.to(dtype)
        for block in self.read_blocks:
            x = block(x, memory).tokens
        return x[..., -self.dim :]

    def update(self, memory: Tensor, global_feature: Tensor, pose_feature: Tensor) -> Tensor:
        """Write ``[proj_q(global_feature), pose_feature]`` (1, 1, 2dd) into ``memory`` (1, M, 2dd)."""
        dtype = self.proj_q.weight.dtype
        entry = torch.cat([self.proj_q(global_feature.to(dtype)), pose_feature.to(dtype)], dim=-1)
        memory = memory.to(dtype)
        for block in self.write_blocks:
            memory = block(memory, entry).tokens
        return memory
