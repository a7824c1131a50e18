"""The recurrent core: state tokens, the two interleaved decoders, and the pose memory.

Per frame, an *image stream* ``[pose token | image tokens | human prompts]`` and the *state stream*
(``state_size`` tokens that persist across frames) are decoded together. At every layer each stream
cross-attends to the other's previous layer, so the state reads the frame and the frame reads the
state. The normalised last state layer is the candidate new state; TTT3R turns the state decoder's
cross-attention into a per-token gate for how much of it to accept (:func:`ttt3r_update`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..config import Human3RConfig
from .layers import DecoderBlock, layer_norm
from .rope import RoPE2D


def state_positions(state_size: int, mode: str = "2d", device: torch.device | str = "cpu") -> Tensor:
    """RoPE positions of the state tokens, (1, Ns, 2) int64.

    ``'2d'``: token i sits at ``(i // w, i % w)`` on a grid of even width ``w ~ sqrt(Ns)``
    (768 tokens -> 28 wide); ``'1d'``: ``(i, i)``.
    """
    i = torch.arange(state_size, device=device)
    if mode == "1d":
        return torch.stack([i, i], dim=-1)[None]
    width = int(math.sqrt(state_size))
    width += width % 2
    return torch.stack([i // width, i % width], dim=-1)[None]


@dataclass
class DecoderOutput:
    """Result of decoding one frame.

    Attributes:
        new_state: (1, Ns, dd) candidate next state (``dec_norm_state`` of the last state layer).
        image_layers: L+1 tensors: index 0 the encoder tokens (1, N, ed), index l the image-stream
            output of layer l, (1, 1+N+n, dd); the last one is normalised (``dec_norm``).
        state_layers: L+1 state-stream tensors (1, Ns, dd) (index 0 = input state, L = ``new_state``),
            only when ``output_hidden_states``.
        gate_logit: (1, Ns) mean over layers, heads and keys of the state decoder's pre-softmax
            cross-attention logits (TTT3R), accumulated on the fly; ``None`` unless requested.
        cross_attn_logits: (L, heads, Ns, 1+N+n) every layer's state->image pre-softmax logits, only
            with ``output_attentions``.
        image_self_attentions: L tensors (1, heads, 1+N+n, 1+N+n), softmax weights of the image
            stream's self-attention (rows/columns ordered ``[pose | image | prompts]``);
            image_cross_attentions: L tensors (1, heads, 1+N+n, Ns), image stream -> state.
            Both only with ``output_attentions``.
    """

    new_state: Tensor
    image_layers: list[Tensor]
    state_layers: list[Tensor] | None = None
    gate_logit: Tensor | None = None
    cross_attn_logits: Tensor | None = None
    image_self_attentions: list[Tensor] | None = None
    image_cross_attentions: list[Tensor] | None = None


class RecurrentDecoder(nn.Module):
    """State initialisation and the interleaved state/image decoders."""

    def __init__(self, config: Human3RConfig) -> None:
        super().__init__()
        ed, dd, L = config.enc_embed_dim, config.dec_embed_dim, config.dec_depth
        rope = RoPE2D(config.rope_base)
        self.state_pe = config.state_pe
        # learned initial state: Ns register tokens of encoder width, projected to decoder width
        self.register_tokens = nn.Embedding(config.state_size, ed)
        self.state_embed = nn.Linear(ed, dd)
        # first-frame camera query; later frames query the pose memory instead
        self.pose_token = nn.Parameter(torch.zeros(1, 1, dd))
        self.image_embed = nn.Linear(ed, dd)
        self.image_blocks = nn.ModuleList(
            DecoderBlock(dd, config.dec_num_heads, config.mlp_ratio, rope=rope) for _ in range(L)
        )
        self.state_blocks = nn.ModuleList(
            DecoderBlock(dd, config.state_dec_num_heads, config.mlp_ratio, rope=rope) for _ in range(L)
        )
        self.image_norm = layer_norm(dd)
        self.state_norm = layer_norm(dd)

    def initial_state(self) -> Tensor:
        """The learned initial state ``(1, Ns, dd)``; it does not depend on any image."""
        return self.state_embed(self.register_tokens.weight)[None]

    def state_positions(self) -> Tensor:
        return state_positions(self.register_tokens.num_embeddings, self.state_pe, self.register_tokens.weight.device)

    def forward(
        self,
        state: Tensor,
        image_tokens: Tensor,
        image_pos: Tensor,
        pose_query: Tensor,
        human_prompts: Tensor,
        prompt_pos: Tensor,
        *,
        compute_gate: bool = False,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
    ) -> DecoderOutput:
        """Decode one frame.

        Args:
            state: (1, Ns, dd) current state.
            image_tokens: (1, N, ed) encoder output ``F``; image_pos: (1, N, 2).
            pose_query: (1, 1, dd) the pose token or the pose memory's answer (position (-1, -1)).
            human_prompts: (1, n, dd); prompt_pos: (1, n, 2), n may be 0.
            compute_gate: accumulate the TTT3R gate logits (``gate_logit``).
        """
        state_pos = self.state_positions()
        pose_pos = torch.full((1, 1, 2), -1, dtype=image_pos.dtype, device=image_pos.device)
        x = torch.cat([pose_query, self.image_embed(image_tokens), human_prompts], dim=1)
        x_pos = torch.cat([pose_pos, image_pos, prompt_pos.to(image_pos.dtype)], dim=1)
        z = state

        want_logits = compute_gate or output_attentions
        image_layers, state_layers, all_logits = [image_tokens], [state], []
        self_attentions, cross_attentions = [], []
        logit_sum = None
        for state_block, image_block in zip(self.state_blocks, self.image_blocks):
            # both streams read the previous layer of both streams
            z_next = state_block(z, x, state_pos, x_pos, return_logits=want_logits)
            x_next = image_block(x, z, x_pos, state_pos, output_attentions=output_attentions)
            x, z = x_next.tokens, z_next.tokens
            if output_attentions:
                self_attentions.append(x_next.self_attn_weights)
                cross_attentions.append(x_next.cross_attn_weights)
            if want_logits:
                layer_sum = z_next.cross_attn_logits.sum(dim=(1, 3))  # (1, Ns)
                logit_sum = layer_sum if logit_sum is None else logit_sum + layer_sum
                if output_attentions:
                    all_logits.append(z_next.cross_attn_logits)
            image_layers.append(x)
            state_layers.append(z)

        new_state = self.state_norm(z)
        image_layers[-1] = self.image_norm(x)
        state_layers[-1] = new_state

        gate_logit = None
        if want_logits:
            L, heads = len(self.state_blocks), self.state_blocks[0].cross_attn.num_heads
            gate_logit = logit_sum / (L * heads * x.shape[1])
        return DecoderOutput(
            new_state=new_state,
            image_layers=image_layers,
            state_layers=state_layers if output_hidden_states else None,
            gate_logit=gate_logit,
            cross_attn_logits=torch.cat(all_logits, dim=0) if output_attentions else None,
            image_self_attentions=self_attentions if output_attentions else None,
            image_cross_attentions=cross_attentions if output_attentions else None,
        )


def ttt3r_update(state: Tensor, new_state: Tensor, gate_logit: Tensor) -> Tensor:
    """TTT3R's gated state update: ``g = sigmoid(gate_logit)``, ``state <- g * new + (1 - g) * state``.

    ``state``, ``new_state`` (1, Ns, dd); ``gate_logit`` (1, Ns). The gate is per state token: tokens
    the frame attends to strongly are rewritten, the rest keep their memory.
    """
    gate = torch.sigmoid(gate_logit)[..., None]
    return new_state * gate + state * (1 - gate)


class PoseMemory(nn.Module):
    """CUT3R's pose retriever: a small memory of (image feature, camera pose feature) slots.

    ``inquire`` reads a pose query for a new frame from its global image feature; ``update`` writes
    the frame's feature and decoded pose token. Both are two :class:`DecoderBlock` s of width
    ``2 * dd`` without RoPE. ``mem`` is the learned initial memory (1, M, 2*dd).
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
        x = torch.cat([self.proj_q(global_feature), self.masked_token.expand(global_feature.shape[0], -1, -1)], dim=-1)
        for block in self.read_blocks:
            x = block(x, memory).tokens
        return x[..., -self.dim :]

    def update(self, memory: Tensor, global_feature: Tensor, pose_feature: Tensor) -> Tensor:
        """Write ``[proj_q(global_feature), pose_feature]`` (1, 1, 2dd) into ``memory`` (1, M, 2dd)."""
        entry = torch.cat([self.proj_q(global_feature), pose_feature], dim=-1)
        for block in self.write_blocks:
            memory = block(memory, entry).tokens
        return memory
