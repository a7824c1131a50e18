"""Human3R: CUT3R's recurrent 4D reconstruction plus Multi-HMR's human prompts, one frame at a time.

One call of :meth:`Human3R.step` is one turn of the online loop::

    F, pos     = encoder(image)                            # CUT3R image tokens
    T          = human_encoder(image_mhmr)                 # DINOv2 human tokens
    heads      = human_detector(T)                         # head scores, NMS, offsets, mask
    H          = prompt_fusion(T[heads], F[heads])         # one human prompt per person
    pose_query = pose_token on a fresh state, else pose_memory.inquire(mean(F))
    decoded    = decoder(state, F, pose_query, H)          # state <-> [pose | image | prompts]
    outputs    = dense heads + SMPL-X regressor            # points, camera, people
    state      = TTT3R-gated (or full) update; memory = pose_memory.update(...)

The module holds no per-sequence data: the recurrent state is passed in and returned
(:class:`RecurrentState`), so a stream, a notebook or a test can drive it frame by frame.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from ..config import Human3RConfig
from ..preprocess import mhmr_normalize
from .backbone import DINOv2
from .checkpoint_keys import UnusedCheckpointWeights, from_official_keys, to_official_keys
from .decoder import DecoderOutput, PoseMemory, RecurrentDecoder, ttt3r_update
from .encoder import ImageEncoder
from .heads import DenseHeads, HeadsOutput, SMPLXPrediction, SMPLXRegressor
from .human_heads import HeadDetections, HumanDetector, HumanPrompts, PromptFusion


@dataclass
class RecurrentState:
    """What the model carries from one frame to the next.

    Attributes:
        state: (1, Ns, dd) the scene state tokens.
        memory: (1, M, 2*dd) the pose memory.
        fresh: True on the first frame and right after a reset: the frame is decoded with the
            learned pose token instead of a memory read, and its new state is taken whole (no gate).
    """

    state: Tensor
    memory: Tensor
    fresh: bool = True


@dataclass
class Human3ROutput:
    """Everything computed for one frame (batch 1; n people, N = h*w image tokens).

    Attributes:
        heads: dense outputs (points, confidences, colours) and the camera pose.
        detections: head detections and the human mask.
        prompts: the fused human prompts and their CUT3R patches.
        smplx: SMPL-X parameters per person, ``None`` when n = 0.
        refined_human_tokens: (1, n, dd) the prompts after the decoder (used by the tracker).
        image_tokens: (1, N, ed) CUT3R encoder output; image_pos: (1, N, 2).
        human_tokens: (1, g*g, C_hmr) DINOv2 output.
        global_feature: (1, 1, ed) mean image token (the pose memory's key).
        pose_query: (1, 1, dd) what entered the decoder in the pose slot.
        decoder: per-layer decoder outputs, new state and TTT3R gate logits.
        gate: (1, Ns) the TTT3R gate that was applied, ``None`` if the state was overwritten.
    """

    heads: HeadsOutput
    detections: HeadDetections
    prompts: HumanPrompts
    smplx: SMPLXPrediction | None
    refined_human_tokens: Tensor
    image_tokens: Tensor
    image_pos: Tensor
    human_tokens: Tensor
    global_feature: Tensor
    pose_query: Tensor
    decoder: DecoderOutput
    gate: Tensor | None

    @property
    def num_humans(self) -> int:
        return self.detections.num_humans


class Human3R(nn.Module):
    """The full network. Build it from a :class:`~human3r_demo.config.Human3RConfig`.

    ``state_dict()`` and ``load_state_dict()`` use the official checkpoint key names (see
    :mod:`~human3r_demo.model.checkpoint_keys`); attribute names describe the parts.
    """

    def __init__(self, config: Human3RConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = ImageEncoder(config)
        self.decoder = RecurrentDecoder(config)
        self.pose_memory = PoseMemory(config)
        self.human_encoder = DINOv2(config.dinov2)
        self.human_detector = HumanDetector(config)
        self.prompt_fusion = PromptFusion(config)
        self.heads = DenseHeads(config)
        self.smplx_head = SMPLXRegressor(config)
        self.unused = UnusedCheckpointWeights(config)

    # ------------------------------------------------------------------ recurrent state
    @torch.no_grad()
    def initial_state(self) -> RecurrentState:
        """The learned initial state and pose memory (also what a reset returns to)."""
        return RecurrentState(self.decoder.initial_state(), self.pose_memory.mem.clone(), fresh=True)

    # ------------------------------------------------------------------ one frame
    @torch.inference_mode()
    def step(
        self,
        image: Tensor,
        image_mhmr: Tensor,
        state: RecurrentState | None = None,
        *,
        use_ttt3r: bool = True,
        detection_threshold: float = 0.3,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
    ) -> tuple[Human3ROutput, RecurrentState]:
        """Run the model on one frame and advance the recurrent state.

        Args:
            image: (1, 3, H, W) CUT3R view in [-1, 1], H and W multiples of 16.
            image_mhmr: (1, 3, S, S) Multi-HMR view in [-1, 1] (see :mod:`~human3r_demo.preprocess`).
            state: the state returned by the previous call; ``None`` starts a sequence.
            use_ttt3r: gate the state update with TTT3R (otherwise the new state replaces the old).
            detection_threshold: minimum head score of a detection.
            output_hidden_states / output_attentions: keep every decoder layer / every layer's
                state cross-attention logits in the output (for inspection; costs memory).

        Returns:
            ``(output, next_state)``.
        """
        if image.shape[0] != 1 or image_mhmr.shape[0] != 1:
            raise ValueError("Human3R runs one frame at a time (batch size 1)")
        dtype = self.decoder.state_embed.weight.dtype
        image, image_mhmr = image.to(dtype), image_mhmr.to(dtype)
        H, W = image.shape[-2:]
        if state is None:
            state = self.initial_state()

        image_tokens, image_pos = self.encoder(image)
        human_tokens = self.human_encoder(mhmr_normalize(image_mhmr))
        detections = self.human_detector(human_tokens, detection_threshold)
        prompts = self.prompt_fusion(detections, image_tokens, (H, W))

        global_feature = image_tokens.mean(dim=1, keepdim=True)
        if state.fresh:
            pose_query = self.decoder.pose_token
        else:
            pose_query = self.pose_memory.inquire(global_feature, state.memory)
        decoded = self.decoder(
            state.state,
            image_tokens,
            image_pos,
            pose_query,
            prompts.prompts,
            prompts.positions,
            # the reference computes the logits whenever TTT3R is on, even where it ignores them
            compute_gate=use_ttt3r,
            output_hidden_states=output_hidden_states,
            output_attentions=output_attentions,
        )

        N = image_tokens.shape[1]
        layers = decoded.image_layers
        final = layers[-1]
        _, mid, late, last = self.config.dpt_hooks
        hooks = [layers[0], layers[mid][:, 1 : 1 + N], layers[late][:, 1 : 1 + N], final[:, : 1 + N]]
        heads = self.heads(hooks, image_pos, (H, W))
        refined = final[:, 1 + N :]
        smplx = self.smplx_head(refined, detections.human_tokens) if detections.num_humans else None

        memory = self.pose_memory.update(state.memory, global_feature, final[:, :1])
        if use_ttt3r and not state.fresh:
            gate = torch.sigmoid(decoded.gate_logit)
            next_state = ttt3r_update(state.state, decoded.new_state, decoded.gate_logit)
        else:
            gate, next_state = None, decoded.new_state

        output = Human3ROutput(
            heads=heads,
            detections=detections,
            prompts=prompts,
            smplx=smplx,
            refined_human_tokens=refined,
            image_tokens=image_tokens,
            image_pos=image_pos,
            human_tokens=human_tokens,
            global_feature=global_feature,
            pose_query=pose_query,
            decoder=decoded,
            gate=gate,
        )
        return output, RecurrentState(next_state, memory, fresh=False)

    # ------------------------------------------------------------------ official checkpoint layout
    def state_dict(self, *args: Any, destination: Any = None, prefix: str = "", keep_vars: bool = False) -> Any:
        """The state dict under the official checkpoint key names (aliases included)."""
        if args:
            raise TypeError("pass state_dict arguments by keyword")
        official = to_official_keys(super().state_dict(keep_vars=keep_vars))
        if destination is None:
            return official
        for key, value in official.items():
            destination[prefix + key] = value
        return destination

    def load_state_dict(self, state_dict: Mapping[str, Tensor], strict: bool = True, assign: bool = False) -> Any:
        """Load an official-layout state dict (e.g. a checkpoint's ``model`` entry)."""
        renamed, unknown = from_official_keys(state_dict)
        if unknown and strict:
            raise RuntimeError(f"unexpected key(s) in state_dict: {', '.join(unknown[:10])}")
        result = super().load_state_dict(renamed, strict=strict, assign=assign)
        result.unexpected_keys.extend(unknown)
        return result

    @property
    def num_parameters(self) -> int:
        """Number of unique parameters (aliases counted once)."""
        return sum(p.numel() for p in self.parameters())

