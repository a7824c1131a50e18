"""The official key names and this project's, and the weights the official files hold twice or never use.

* :data:`KEY_PREFIXES`: the one table between the two namings, applied once on the way in
  (:func:`checkpoint_filter_fn`, after timm's function of that name) and once on the way out
  (:func:`to_official_state_dict`, for fixtures and conversions);
* the **aliases**: each DPT head stores its four projection convolutions twice, as
  ``scratch.layer_rn.{0..3}`` and ``scratch.layer{1..4}_rn`` (the same tensors);
* the weights **unused at inference** (:data:`UNUSED_AT_INFERENCE`), dropped on load.

docs/ARCHITECTURE.md 1.3 and 1.4.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field

import torch
from torch import Tensor

from ...config import ConfigError

__all__ = ["KEY_PREFIXES", "UNUSED_AT_INFERENCE", "CheckpointKeyError", "FilteredStateDict", "checkpoint_filter_fn",
           "is_alias", "module_to_official", "official_to_module", "to_official_state_dict"]


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
    ("downstream_head.pose_head.", "camera_head."),
    ("downstream_head.final_transform.", "dense_heads.final_transform."),
    ("downstream_head.dpt_self.", "dense_heads.dpt_self."),
    ("downstream_head.dpt_cross.", "dense_heads.dpt_cross."),
    ("downstream_head.dpt_rgb.", "dense_heads.dpt_rgb."),
    ("downstream_head.decpose.mlp.layers.", "smplx_head.pose_mlp."),
    ("downstream_head.decshape.mlp.layers.", "smplx_head.shape_mlp."),
    ("downstream_head.decexpression.mlp.layers.", "smplx_head.expression_mlp."),
    ("downstream_head.deccam.mlp.layers.", "smplx_head.cam_mlp."),
    ("downstream_head.init_body_pose", "smplx_head.init_body_pose"),
    ("downstream_head.init_betas", "smplx_head.init_betas"),
    ("downstream_head.init_expression", "smplx_head.init_expression"),
]

# Official keys that online inference never reads (docs/ARCHITECTURE.md 1.3). The first three groups are
# training-only: CUT3R's ray-map encoder (it can take camera rays instead of images) and the masked
# tokens of masked training; then DINOv2's mask token, two SMPL initialisations that only the
# training path reads, and the residual unit of each DPT's deepest fusion block, which has no skip
# input to process. 26.8 M of 848 M parameters for 672S; they are not built, and dropped on load.
UNUSED_AT_INFERENCE = re.compile(
    r"^(patch_embed_ray_map\.|enc_blocks_ray_map\.|enc_norm_ray_map\."
    r"|masked_(img|ray_map|smpl)_token$|mhmr_masked_(smpl|img)_token$"
    r"|backbone\.encoder\.mask_token$|downstream_head\.init_(cam|betas_kid)$"
    r"|downstream_head\.dpt_(self|cross|rgb)\.scratch\.refinenet4\.resConfUnit1\.)"
)

# scratch.layer{1..4}_rn.weight is the same tensor as scratch.layer_rn.{0..3}.weight
_ALIAS = re.compile(r"^(downstream_head\.dpt_(?:self|cross|rgb)\.scratch\.)layer(\d)_rn\.weight$")
_ALIASED = re.compile(r"^(downstream_head\.dpt_(?:self|cross|rgb)\.scratch\.)layer_rn\.(\d)\.weight$")


def is_alias(key: str) -> bool:
    """Whether an official key is the second name of a DPT projection weight."""
    return bool(_ALIAS.match(key))


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


@dataclass
class FilteredStateDict:
    """An official state dict translated to module names.

    Attributes:
        state_dict: module name -> tensor, ready for ``Human3R.load_state_dict``.
        dropped: official keys not loaded because inference never reads them.
        unknown: official keys this model has no place for (reported, never silently dropped).
    """

    state_dict: OrderedDict[str, Tensor]
    dropped: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)


def checkpoint_filter_fn(state_dict: Mapping[str, Tensor]) -> FilteredStateDict:
    """Official state dict -> module names, once, on the way in.

    A ``module.`` prefix on every key (DataParallel) is stripped, as the reference does. The alias
    copies ``scratch.layer{i}_rn`` are folded into ``scratch.layer_rn.{i-1}`` (when both are
    present they must be equal).
    """
    if state_dict and all(k.startswith("module.") for k in state_dict):
        state_dict = {k[len("module."):]: v for k, v in state_dict.items()}
    out = FilteredStateDict(OrderedDict())
    aliases: dict[str, Tensor] = {}
    for key, value in state_dict.items():
        alias = _ALIAS.match(key)
        if alias:
            aliases[f"{alias.group(1)}layer_rn.{int(alias.group(2)) - 1}.weight"] = value
        elif UNUSED_AT_INFERENCE.match(key):
            out.dropped.append(key)
        else:
            try:
                out.state_dict[official_to_module(key)] = value
            except CheckpointKeyError:
                out.unknown.append(key)
    for official, value in aliases.items():
        module_key = official_to_module(official)
        if module_key not in out.state_dict:
            out.state_dict[module_key] = value
        elif out.state_dict[module_key].shape != value.shape or not torch.equal(out.state_dict[module_key], value):
            raise ConfigError(f"the checkpoint's aliased DPT weights {official} and its layerN_rn copy differ")
    return out


def to_official_state_dict(model: torch.nn.Module) -> OrderedDict[str, Tensor]:
    """A model's weights under the official key names, the DPT alias keys included.

    The weights unused at inference (:data:`UNUSED_AT_INFERENCE`) are not part of the model, so
    they are absent here; everything else matches the official checkpoints key for key.
    """
    out: OrderedDict[str, Tensor] = OrderedDict()
    for key, value in model.state_dict().items():
        official = module_to_official(key)
        out[official] = value
        aliased = _ALIASED.match(official)
        if aliased:
            out[f"{aliased.group(1)}layer{int(aliased.group(2)) + 1}_rn.weight"] = value
    return out
