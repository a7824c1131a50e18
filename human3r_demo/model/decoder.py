"""The recurrent core: the state tokens and the two interleaved decoders (one *rollout* step).

Per frame, an *image stream* ``[pose token | image tokens | human prompts]`` and the *state stream*
(``state_size`` tokens that persist across frames) are decoded together. At every layer each stream
cross-attends to the other's previous layer, so the state reads the frame and the frame reads the
state. The normalised last state layer is the candidate new state ``S'_t``; TTT3R turns the state
decoder's cross-attention into a per-token learning rate ``beta_t`` for how much of it to accept::

    beta_t = sigmoid(mean over layers, heads and keys of the state->image attention logits)
    S_t    = beta_t * S'_t + (1 - beta_t) * S_{t-1}          (:func:`ttt3r_update`)

which the TTT3R paper reads as one step of test-time training, ``S_t = S_{t-1} - beta_t * grad``.

Adapted from fanegg/Human3R@e313921 ``src/dust3r/model.py`` (``_encode_state``, ``_init_state``,
``_decoder``, ``_recurrent_rollout`` and the TTT3R update in ``forward_recurrent_lighter``);
docs/ARCHITECTURE.md 4.1, 6 and 7.
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
        new_state: (1, Ns, dd) candidate next state ``S'_t`` (``dec_norm_state`` of the last state layer).
        image_layers: L+1 tensors: index 0 the encoder tokens (1, N, ed), index l the image-stream
            output of layer l, (1, 1+N+n, dd); the last one is normalised (``dec_norm``).
        state_layers: L+1 state-stream tensors (1, Ns, dd) (index 0 = input state, L = ``new_state``),
            only with ``output_hidden_states``.
        gate_logit: (1, Ns) float32, the mean over layers, heads and keys of the state decoder's
            pre-softmax cross-attention logits (TTT3R); ``None`` unless ``compute_gate``.
        cross_attn_logits: (L, heads, Ns, 1+N+n) every layer's state->image pre-softmax logits;
            image_self_attentions: L tensors (1, heads, 1+N+n, 1+N+n), softmax weights of the image
            stream's self-attention (rows/columns ordered ``[pose | image | prompts]``);
            image_cross_attentions: L tensors (1, heads, 1+N+n, Ns), image stream -> state.
            All three only with ``output_attentions``.
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
        """The learned initial state ``S_0`` (1, Ns, dd); it does not depend on any image."""
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
            state: (1, Ns, dd) current state ``S_{t-1}``.
            image_tokens: (1, N, ed) encoder output ``F_t``; image_pos: (1, N, 2).
            pose_query: (1, 1, dd) the pose token or the pose memory's answer (position (-1, -1)).
            human_prompts: (1, n, dd); prompt_pos: (1, n, 2), n may be 0.
            compute_gate: compute the TTT3R gate logits (``gate_logit``).
        """
        dtype = self.state_embed.weight.dtype
        state_pos = self.state_positions()
        pose_pos = torch.full((1, 1, 2), -1, dtype=image_pos.dtype, device=image_pos.device)
        x = torch.cat([pose_query.to(dtype), self.image_embed(image_tokens.to(dtype)), human_prompts.to(dtype)], dim=1)
        x_pos = torch.cat([pose_pos, image_pos, prompt_pos.to(image_pos.dtype)], dim=1)
        z = state.to(dtype)

        image_layers, state_layers, logits = [image_tokens], [z], []
        self_attentions, cross_attentions = [], []
        logit_sum = None
        for state_block, image_block in zip(self.state_blocks, self.image_blocks):
            # both streams read the previous layer of both streams
            z_next = state_block(z, x, state_pos, x_pos, mean_logit=compute_gate, output_attentions=output_attentions)
            x_next = image_block(x, z, x_pos, state_pos, output_attentions=output_attentions)
            x, z = x_next.tokens, z_next.tokens
            if compute_gate:
                logit_sum = z_next.mean_logit if logit_sum is None else logit_sum + z_next.mean_logit
            if output_attentions:
                logits.append(z_next.cross_attn_logits)
                self_attentions.append(x_next.self_attn_weights)
                cross_attentions.append(x_next.cross_attn_weights)
            image_layers.append(x)
            state_layers.append(z)

        new_state = self.state_norm(z)
        image_layers[-1] = self.image_norm(x)
        state_layers[-1] = new_state
        return DecoderOutput(
            new_state=new_state,
            image_layers=image_layers,
            state_layers=state_layers if output_hidden_states else None,
            gate_logit=logit_sum / len(self.state_blocks) if compute_gate else None,
            cross_attn_logits=torch.cat(logits, dim=0) if output_attentions else None,
            image_self_attentions=self_attentions if output_attentions else None,
            image_cross_attentions=cross_attentions if output_attentions else None,
        )


def ttt3r_update(state: Tensor, new_state: Tensor, gate_logit: Tensor) -> Tensor:
    """TTT3R's gated state update: ``beta = sigmoid(gate_logit)``, ``S <- beta * S' + (1 - beta) * S``.

    ``state``, ``new_state`` (1, Ns, dd); ``gate_logit`` (1, Ns). The gate is per state token: tokens
    the frame attends to strongly are rewritten, the rest keep their memory. Computed in the
    dtype of ``state`` (float32 for a stream, whatever the model's precision).
    """
    gate = torch.sigmoid(gate_logit.to(state.dtype))[..., None]
    return new_state.to(state.dtype) * gate + state * (1 - gate)
