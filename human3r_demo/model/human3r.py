"""Human3R: CUT3R's recurrent 4D reconstruction plus Multi-HMR's human prompts, one frame at a time.

One call of :meth:`Human3R.forward` is one step of the online *rollout*::

    F, pos     = encoder(image)                            # CUT3R image tokens F_t
    T          = human_encoder(image_mhmr)                 # DINOv2 token grid
    detected   = human_detector(T)                         # head scores, NMS, offsets, mask
    H          = prompt_fusion(T[detected], F[detected])   # one human prompt per person
    pose_query = pose_token on a fresh state, else pose_memory.inquire(mean(F))
    decoded    = decoder(S_{t-1}, F, pose_query, H)        # state <-> [pose | image | prompts]
    camera     = camera_head(decoded pose token)           # camera-to-world pose
    points     = dense_heads(DPT hooks of decoded)         # point maps, confidences
    people     = smplx_head(decoded prompts, T[detected])  # SMPL-X per person
    S_t        = TTT3R-gated (or full) update; memory = pose_memory.update(...)

``T[detected]`` are the *detection tokens*, one per person; docs/ARCHITECTURE.md names every module
with the reference's checkpoint keys beside it.

The module holds no per-sequence data: the recurrent state is passed in and returned in the output
(:class:`RecurrentState`), so a stream, a notebook or a test can drive it frame by frame.

Adapted from fanegg/Human3R@e313921 ``src/dust3r/model.py`` (``ARCroco3DStereo.forward_recurrent_lighter``
for batch size 1, ``use_ttt3r``); docs/ARCHITECTURE.md 11.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from types import SimpleNamespace

import torch
from torch import Tensor, nn

from ..config import Human3RConfig
from .camera_head import CameraHead
from .decoder import DecoderOutput, RecurrentDecoder, ttt3r_update
from .dense_heads import DENSE_HEADS, DenseHeads, DenseHeadsOutput, dpt_hooks
from .detection import DETECTION_THRESHOLD, HeadDetections, HumanDetector
from .dinov2 import DINOv2
from .encoder import ImageEncoder
from .pose_memory import PoseMemory
from .prompts import HumanPrompts, PromptFusion
from .smplx_head import SMPLXPrediction, SMPLXRegressor

# ImageNet statistics of the DINOv2 input normalisation
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class RecurrentState:
    """What the model carries from one frame to the next (float32, whatever the model's precision:
    the gated update blends it over thousands of frames).

    Attributes:
        state: (1, Ns, dd) the scene state tokens ``S_t``.
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
        camera_pose: (1, 7) ``[t, q_wxyz]`` camera-to-world (float32); camera_pose_raw: (1, 7) before
            the activation (:mod:`~human3r_demo.model.camera_head`).
        dense_heads: the DPT outputs (points, confidences, colours), float32.
        detections: head detections, the detection tokens and the human mask.
        prompts: the fused human prompts and their CUT3R patches.
        smplx: SMPL-X parameters per person, ``None`` when n = 0.
        refined_human_tokens: (1, n, dd) the prompts after the decoder (what the tracker matches).
        image_tokens: (1, N, ed) CUT3R encoder output ``F``; image_pos: (1, N, 2).
        dinov2_tokens: (1, g*g, C_hmr) the whole DINOv2 token grid ``T`` (the detector's input).
        global_feature: (1, 1, ed) mean image token (the pose memory's key).
        pose_query: (1, 1, dd) what entered the decoder in the pose slot.
        decoder: per-layer decoder outputs and the new state candidate.
        gate: (1, Ns) TTT3R's ``beta_t`` that was applied, ``None`` if the state was overwritten.
        state: the recurrent state to pass to the next frame.
    """

    camera_pose: Tensor
    camera_pose_raw: Tensor
    dense_heads: DenseHeadsOutput
    detections: HeadDetections
    prompts: HumanPrompts
    smplx: SMPLXPrediction | None
    refined_human_tokens: Tensor
    image_tokens: Tensor
    image_pos: Tensor
    dinov2_tokens: Tensor
    global_feature: Tensor
    pose_query: Tensor
    decoder: DecoderOutput
    gate: Tensor | None
    state: RecurrentState

    @property
    def num_humans(self) -> int:
        return self.detections.num_humans

    # ------------------------------------------------------------------ names kept one release (CHANGELOG.md)
    @property
    def heads(self) -> SimpleNamespace:
        """Deprecated: :attr:`dense_heads` with :attr:`camera_pose` and ``pose_raw`` beside it, as before."""
        warnings.warn("Human3ROutput.heads is now Human3ROutput.dense_heads; the camera pose is "
                      "Human3ROutput.camera_pose (and camera_pose_raw)", DeprecationWarning, stacklevel=2)
        return SimpleNamespace(**vars(self.dense_heads), camera_pose=self.camera_pose, pose_raw=self.camera_pose_raw)

    @property
    def human_tokens(self) -> Tensor:
        """Deprecated name of :attr:`dinov2_tokens`."""
        warnings.warn("Human3ROutput.human_tokens is now Human3ROutput.dinov2_tokens (the detected ones are "
                      "detections.detection_tokens)", DeprecationWarning, stacklevel=2)
        return self.dinov2_tokens


class Human3R(nn.Module):
    """The full network, built from a :class:`~human3r_demo.config.Human3RConfig`.

    A plain ``nn.Module``: its ``state_dict()`` uses the module names below. Official checkpoints
    are translated on the way in by :func:`human3r_demo.load_model` (and back by
    :func:`human3r_demo.to_official_state_dict`).

    Attributes:
        checkpoint_name: what the weights are (a variant name, a file name, ``tiny-random``...),
            set by the loader; ``None`` for a freshly built model.
        is_random: True for untrained weights, whose geometry is meaningless.
    """

    # parts that compute in float32 whatever the model's precision: detection decisions, the camera
    # pose and the SMPL-X parameters are taken on float32 numbers (each is cheap; see :meth:`cast`)
    _keep_in_fp32_modules = ("human_detector", "camera_head", "smplx_head")

    def __init__(self, config: Human3RConfig) -> None:
        super().__init__()
        self.config = config
        self.checkpoint_name: str | None = None
        self.is_random = False
        self.encoder = ImageEncoder(config)
        self.decoder = RecurrentDecoder(config)
        self.pose_memory = PoseMemory(config)
        self.human_encoder = DINOv2(config.dinov2)
        self.human_detector = HumanDetector(config)
        self.prompt_fusion = PromptFusion(config)
        self.camera_head = CameraHead(config)
        self.dense_heads = DenseHeads(config)
        self.smplx_head = SMPLXRegressor(config)
        self.init_non_persistent_buffers()

    def init_non_persistent_buffers(self, device: torch.device | str | None = None) -> None:
        """Create the buffers that checkpoints do not hold: the DINOv2 input normalisation.

        Called by ``__init__``, and again by the loader after it built the model on the meta device.
        """
        for name, values in (("mhmr_mean", IMAGENET_MEAN), ("mhmr_std", IMAGENET_STD)):
            self.register_buffer(name, torch.tensor(values, device=device).view(1, 3, 1, 1), persistent=False)

    # ------------------------------------------------------------------ device and precision
    @property
    def device(self) -> torch.device:
        return self.mhmr_mean.device

    @property
    def dtype(self) -> torch.dtype:
        """The compute dtype (that of the CUT3R encoder); ``_keep_in_fp32_modules`` stay float32."""
        return self.encoder.patch_embed.proj.weight.dtype

    def cast(self, dtype: torch.dtype) -> Human3R:
        """Cast the weights to ``dtype`` once, keeping ``_keep_in_fp32_modules`` and the buffers float32.

        Reduced precision pays where the arithmetic is: the encoders, the decoders, the pose memory
        and the DPT heads. Everything downstream of the network (poses, rotations, focal, tracking,
        the body model) is computed on float32 copies of its outputs.
        """
        keep = tuple(self._keep_in_fp32_modules)
        for name, module in self.named_modules():
            inside_kept = any(name == k or name.startswith(k + ".") for k in keep)
            target = torch.float32 if inside_kept else dtype
            for key, param in module.named_parameters(recurse=False):
                if param.is_floating_point() and param.dtype != target:
                    setattr(module, key, nn.Parameter(param.detach().to(target), requires_grad=param.requires_grad))
        return self

    def prepare_for_inference(self, dtype: torch.dtype = torch.float32, device: torch.device | str | None = None) -> Human3R:
        """Cast (:meth:`cast`), move, freeze, switch to eval mode, and store the DPT convolution weights
        channels-last: oneDNN and cuDNN run those convolutions faster in that layout (measured on CPU:
        a DPT head 15 % faster in float32, 26 % in bfloat16; ``benchmarks/RESULTS.md``)."""
        self.cast(dtype)
        if device is not None:
            self.to(device)
        self.dense_heads.to(memory_format=torch.channels_last)
        return self.eval().requires_grad_(False)

    # ------------------------------------------------------------------ recurrent state
    @torch.no_grad()
    def initial_state(self) -> RecurrentState:
        """The learned initial state ``S_0`` and pose memory (also what a reset returns to)."""
        return RecurrentState(self.decoder.initial_state().float(), self.pose_memory.mem.detach().float().clone(), fresh=True)

    def normalize_mhmr(self, image_mhmr: Tensor) -> Tensor:
        """Multi-HMR view in [-1, 1] -> ImageNet-normalised DINOv2 input (float32)."""
        return (image_mhmr.float() * 0.5 + 0.5 - self.mhmr_mean) / self.mhmr_std

    # ------------------------------------------------------------------ one frame
    def forward(
        self,
        image: Tensor,
        image_mhmr: Tensor,
        state: RecurrentState | None = None,
        *,
        use_ttt3r: bool = True,
        detection_threshold: float = DETECTION_THRESHOLD,
        dense_heads: tuple[str, ...] = DENSE_HEADS,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
    ) -> Human3ROutput:
        """Run the model on one frame and advance the recurrent state.

        Args:
            image: (1, 3, H, W) CUT3R view in [-1, 1], H and W multiples of 16.
            image_mhmr: (1, 3, S, S) Multi-HMR view in [-1, 1] (see :mod:`~human3r_demo.preprocess`).
            state: ``output.state`` of the previous call; ``None`` starts a sequence.
            use_ttt3r: gate the state update with TTT3R (otherwise the new state replaces the old).
            detection_threshold: minimum head score ``tau`` of a detection.
            dense_heads: which DPT heads to run (``"self"`` always runs; ``"cross"`` and ``"rgb"``
                only here, since the stream never reads them).
            output_hidden_states / output_attentions: keep every decoder layer / every layer's
                attention maps and logits in the output (for inspection; costs memory).

        Returns:
            :class:`Human3ROutput`, with ``output.state`` the state for the next frame.
        """
        if image.shape[0] != 1 or image_mhmr.shape[0] != 1:
            raise ValueError("Human3R runs one frame at a time (batch size 1)")
        H, W = image.shape[-2:]
        if state is None:
            state = self.initial_state()

        image_tokens, image_pos = self.encoder(image.to(self.dtype))
        dinov2_tokens = self.human_encoder(self.normalize_mhmr(image_mhmr).to(self.dtype))
        detections = self.human_detector(dinov2_tokens, detection_threshold)
        prompts = self.prompt_fusion(detections, image_tokens, (H, W))

        global_feature = image_tokens.mean(dim=1, keepdim=True)
        if state.fresh:
            pose_query = self.decoder.pose_token
        else:
            pose_query = self.pose_memory.inquire(global_feature, state.memory)
        gated = use_ttt3r and not state.fresh
        decoded = self.decoder(
            state.state,
            image_tokens,
            image_pos,
            pose_query,
            prompts.prompts,
            prompts.positions,
            compute_gate=gated,
            output_hidden_states=output_hidden_states,
            output_attentions=output_attentions,
        )

        N = image_tokens.shape[1]
        final = decoded.image_layers[-1]  # [pose token | N image tokens | n people]
        camera_pose, camera_pose_raw = self.camera_head(final[:, 0])
        hooks = dpt_hooks(decoded.image_layers, self.config.dpt_hooks, N)
        dense = self.dense_heads(hooks, image_pos, (H, W), dense_heads)
        refined = final[:, 1 + N :]
        smplx = self.smplx_head(refined, detections.detection_tokens) if detections.num_humans else None

        memory = self.pose_memory.update(state.memory, global_feature, final[:, :1]).float()
        if gated:
            gate = torch.sigmoid(decoded.gate_logit)
            next_state = ttt3r_update(state.state, decoded.new_state, decoded.gate_logit)
        else:
            gate, next_state = None, decoded.new_state.float()

        return Human3ROutput(
            camera_pose=camera_pose,
            camera_pose_raw=camera_pose_raw,
            dense_heads=dense,
            detections=detections,
            prompts=prompts,
            smplx=smplx,
            refined_human_tokens=refined,
            image_tokens=image_tokens,
            image_pos=image_pos,
            dinov2_tokens=dinov2_tokens,
            global_feature=global_feature,
            pose_query=pose_query,
            decoder=decoded,
            gate=gate,
            state=RecurrentState(next_state, memory, fresh=False),
        )

    @property
    def heads(self) -> DenseHeads:
        """Deprecated name of :attr:`dense_heads` (the camera head is now :attr:`camera_head`)."""
        warnings.warn("Human3R.heads is now Human3R.dense_heads; its camera_head is Human3R.camera_head",
                      DeprecationWarning, stacklevel=2)
        return self.dense_heads

    @property
    def num_parameters(self) -> int:
        """Number of parameters."""
        return sum(p.numel() for p in self.parameters())
