"""The one place where the official checkpoint layout meets this implementation's module names.

The official state dict (``manifest_*.json``) uses CUT3R's flat names (``enc_blocks.3``,
``dec_blocks_state.7``, ``downstream_head.decpose.mlp.layers.0``, ...). The modules here are named
after what they are (``encoder.blocks.3``, ``decoder.state_blocks.7``, ``smplx_head.pose_mlp.0``).
This file holds the prefix table between the two, plus the two other compatibility details:

* **aliases**: each DPT head stores its four projection convolutions twice, as
  ``scratch.layer_rn.{0..3}`` and ``scratch.layer{1..4}_rn`` (the same tensors);
* **unused weights**: the checkpoints carry training-time tensors that online inference never reads
  (CUT3R's ray-map encoder, masked tokens). :class:`UnusedCheckpointWeights` keeps them so that a
  loaded model's ``state_dict()`` is the checkpoint's state dict, key for key.

:meth:`Human3R.state_dict` and :meth:`Human3R.load_state_dict` speak the official layout through
:func:`to_official_keys` / :func:`from_official_keys`; ``named_parameters()`` uses the module names.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Mapping

import torch
from torch import Tensor, nn

from ..config import Human3RConfig
from .encoder import PatchEmbed
from .layers import EncoderBlock, layer_norm

# (official prefix, module prefix); an entry without a trailing dot is a whole key
KEY_PREFIXES: list[tuple[str, str]] = [
    ("patch_embed.", "encoder.patch_embed."),
    ("enc_blocks.", "encoder.blocks."),
    ("enc_norm.", "encoder.norm."),
    ("register_tokens.", "decoder.register_tokens."),
    ("decoder_embed_state.", "decoder.state_embed."),
    ("decoder_embed.", "decoder.image_embed."),
    ("dec_blocks_state.", "decoder.state_blocks."),
    ("dec_blocks.", "decoder.image_blocks."),
    ("dec_norm_state.", "decoder.state_norm."),
    ("dec_norm.", "decoder.image_norm."),
    ("pose_token", "decoder.pose_token"),
    ("pose_retriever.", "pose_memory."),
    ("backbone.encoder.", "human_encoder."),
    ("downstream_head.mlp_classif.", "human_detector.score_mlp."),
    ("downstream_head.mlp_offset.", "human_detector.offset_mlp."),
    ("downstream_head.mlp_msk.mlp.layers.", "human_detector.mask_mlp."),
    ("downstream_head.mlp_fuse.mlp.layers.", "prompt_fusion.mlp."),
    ("downstream_head.pose_head.mlp.", "heads.camera_head."),
    ("downstream_head.final_transform.", "heads.final_transform."),
    ("downstream_head.dpt_self.", "heads.dpt_self."),
    ("downstream_head.dpt_cross.", "heads.dpt_cross."),
    ("downstream_head.dpt_rgb.", "heads.dpt_rgb."),
    ("downstream_head.decpose.mlp.layers.", "smplx_head.pose_mlp."),
    ("downstream_head.decshape.mlp.layers.", "smplx_head.shape_mlp."),
    ("downstream_head.decexpression.mlp.layers.", "smplx_head.expression_mlp."),
    ("downstream_head.deccam.mlp.layers.", "smplx_head.cam_mlp."),
    ("downstream_head.init_body_pose", "smplx_head.init_body_pose"),
    ("downstream_head.init_betas", "smplx_head.init_betas"),
    ("downstream_head.init_betas_kid", "smplx_head.init_betas_kid"),
    ("downstream_head.init_cam", "smplx_head.init_cam"),
    ("downstream_head.init_expression", "smplx_head.init_expression"),
    # stored in the checkpoints, never read by online inference
    ("patch_embed_ray_map.", "unused.patch_embed_ray_map."),
    ("enc_blocks_ray_map.", "unused.enc_blocks_ray_map."),
    ("enc_norm_ray_map.", "unused.enc_norm_ray_map."),
    ("masked_img_token", "unused.masked_img_token"),
    ("masked_ray_map_token", "unused.masked_ray_map_token"),
    ("masked_smpl_token", "unused.masked_smpl_token"),
    ("mhmr_masked_smpl_token", "unused.mhmr_masked_smpl_token"),
    ("mhmr_masked_img_token", "unused.mhmr_masked_img_token"),
]

# official keys that are loaded but not used by inference, for reporting
UNUSED_AT_INFERENCE = re.compile(
    r"^(patch_embed_ray_map\.|enc_blocks_ray_map\.|enc_norm_ray_map\.|masked_\w+_token$|mhmr_masked_\w+_token$"
    r"|backbone\.encoder\.mask_token$|downstream_head\.init_(cam|betas_kid)$"
    r"|downstream_head\.dpt_\w+\.scratch\.refinenet4\.resConfUnit1\.)"
)

_DPT_ALIAS = re.compile(r"^(downstream_head\.dpt_\w+\.scratch\.)layer_rn\.(\d)\.weight$")
_DPT_ALIAS_OFFICIAL = re.compile(r"^(downstream_head\.dpt_\w+\.scratch\.)layer(\d)_rn\.weight$")


class CheckpointKeyError(KeyError):
    """A key that has no place in this model."""


def official_to_module(key: str) -> str:
    for official, module in KEY_PREFIXES:
        if official.endswith(".") and key.startswith(official):
            return module + key[len(official):]
        if key == official:
            return module
    raise CheckpointKeyError(key)


def module_to_official(key: str) -> str:
    for official, module in KEY_PREFIXES:
        if module.endswith(".") and key.startswith(module):
            return official + key[len(module):]
        if key == module:
            return official
    raise CheckpointKeyError(key)


def to_official_keys(state_dict: Mapping[str, Tensor]) -> OrderedDict[str, Tensor]:
    """Module-named state dict -> the official layout, with the DPT alias keys added."""
    out: OrderedDict[str, Tensor] = OrderedDict()
    for key, value in state_dict.items():
        official = module_to_official(key)
        out[official] = value
        alias = _DPT_ALIAS.match(official)
        if alias:
            out[f"{alias.group(1)}layer{int(alias.group(2)) + 1}_rn.weight"] = value
    return out


def from_official_keys(state_dict: Mapping[str, Tensor]) -> tuple[OrderedDict[str, Tensor], list[str]]:
    """Official state dict -> module names.

    The alias copies ``scratch.layer{i}_rn`` are folded into ``scratch.layer_rn.{i-1}`` (when both are
    present they must be equal). Returns ``(renamed, unknown_keys)``; unknown keys are not dropped
    silently but returned for the caller to report.
    """
    out: OrderedDict[str, Tensor] = OrderedDict()
    unknown: list[str] = []
    aliases: dict[str, Tensor] = {}
    for key, value in state_dict.items():
        alias = _DPT_ALIAS_OFFICIAL.match(key)
        if alias:
            aliases[f"{alias.group(1)}layer_rn.{int(alias.group(2)) - 1}.weight"] = value
            continue
        try:
            out[official_to_module(key)] = value
        except CheckpointKeyError:
            unknown.append(key)
    for official, value in aliases.items():
        module_key = official_to_module(official)
        if module_key not in out:
            out[module_key] = value
        elif out[module_key].shape != value.shape or not torch.equal(out[module_key], value):
            raise ValueError(f"the checkpoint's aliased DPT weights {official} and its layerN_rn copy differ")
    return out, unknown


class UnusedCheckpointWeights(nn.Module):
    """Training-time weights that the official checkpoints carry and inference never reads.

    CUT3R can take ray maps (camera rays) instead of images; its ray-map encoder and the masked
    tokens of training live here only so that ``state_dict()`` matches the checkpoint exactly.
    """

    def __init__(self, config: Human3RConfig) -> None:
        super().__init__()
        ed, bb = config.enc_embed_dim, config.dinov2.embed_dim
        self.patch_embed_ray_map = PatchEmbed(6, ed, config.patch_size)
        self.enc_blocks_ray_map = nn.ModuleList(
            EncoderBlock(ed, config.enc_num_heads, config.mlp_ratio) for _ in range(config.ray_enc_depth)
        )
        self.enc_norm_ray_map = layer_norm(ed)
        self.masked_img_token = nn.Parameter(torch.zeros(1, ed))
        self.masked_ray_map_token = nn.Parameter(torch.zeros(1, ed))
        self.masked_smpl_token = nn.Parameter(torch.zeros(1, ed))
        self.mhmr_masked_smpl_token = nn.Parameter(torch.zeros(1, bb))
        self.mhmr_masked_img_token = nn.Parameter(torch.zeros(1, bb))
