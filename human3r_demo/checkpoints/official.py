"""Everything about the official checkpoint format, in one place.

The official state dict (``manifest_*.json``) uses CUT3R's flat names (``enc_blocks.3``,
``dec_blocks_state.7``, ``downstream_head.decpose.mlp.layers.0``, ...); the modules here are named
after what they are (``encoder.blocks.3``, ``decoder.state_blocks.7``, ``smplx_head.pose_mlp.0``).
This module holds, for that format:

* the prefix table between the two namings, applied once on the way in
  (:func:`checkpoint_filter_fn`, after timm's function of that name) and once on the way out
  (:func:`to_official_state_dict`, for fixtures and conversions);
* the **aliases**: each DPT head stores its four projection convolutions twice, as
  ``scratch.layer_rn.{0..3}`` and ``scratch.layer{1..4}_rn`` (the same tensors);
* the weights **unused at inference** (:data:`UNUSED_AT_INFERENCE`), dropped on load;
* the shapes that reveal a configuration (:func:`expected_shapes`, :func:`check_shapes`);
* the configuration read from the checkpoint's constructor string (``args.model``) by a parser
  that accepts literals only and never evaluates anything (:func:`parse_model_string`), and from
  the reference's keyword arguments (:func:`config_from_reference_fields`).

Adapted from fanegg/Human3R@e313921 ``src/dust3r/model.py`` (``ARCroco3DStereoConfig``,
``load_model``, ``strip_module``); ARCHITECTURE.md 1.
"""

from __future__ import annotations

import ast
import math
import re
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from ..config import DINOV2_NETWORKS, VARIANTS, ConfigError, DINOv2Config, DPTConfig, Human3RConfig

__all__ = [
    "FilteredStateDict",
    "UNUSED_AT_INFERENCE",
    "check_shapes",
    "checkpoint_filter_fn",
    "config_from_model_string",
    "config_from_reference_fields",
    "expected_shapes",
    "infer_config",
    "parse_model_string",
    "to_official_state_dict",
]

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
    ("downstream_head.init_expression", "smplx_head.init_expression"),
]

# Official keys that online inference never reads (ARCHITECTURE.md 1.3). The first three groups are
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


# ---------------------------------------------------------------------- shapes
def expected_shapes(config: Human3RConfig) -> dict[str, tuple[int, ...]]:
    """Shapes of the official checkpoint entries that reveal a configuration."""
    ed, dd, bb = config.enc_embed_dim, config.dec_embed_dim, config.dinov2.embed_dim
    L, p, q, dpt = config.dec_depth, config.patch_size, config.dinov2.patch_size, config.dpt
    return {
        "patch_embed.proj.weight": (ed, 3, p, p),
        f"enc_blocks.{config.enc_depth - 1}.mlp.fc1.weight": (int(ed * config.mlp_ratio), ed),
        "register_tokens.weight": (config.state_size, ed),
        "decoder_embed.weight": (dd, ed),
        f"dec_blocks.{L - 1}.attn.qkv.weight": (3 * dd, dd),
        f"dec_blocks_state.{L - 1}.attn.qkv.weight": (3 * dd, dd),
        "pose_retriever.mem": (1, config.local_mem_size, 2 * dd),
        "backbone.encoder.patch_embed.proj.weight": (bb, 3, q, q),
        "backbone.encoder.pos_embed": (1, 1 + config.dinov2.pos_grid**2, bb),
        f"backbone.encoder.blocks.{config.dinov2.depth - 1}.mlp.fc1.weight": (int(bb * config.dinov2.mlp_ratio), bb),
        "downstream_head.dpt_self.scratch.layer_rn.0.weight": (dpt.feature_dim, dpt.layer_dims[0], 3, 3),
        "downstream_head.dpt_self.scratch.layer_rn.3.weight": (dpt.feature_dim, dpt.layer_dims[3], 3, 3),
        "downstream_head.dpt_self.head.2.weight": (dpt.last_dim, dpt.feature_dim // 2, 3, 3),
    }


def check_shapes(config: Human3RConfig, shapes: Mapping[str, tuple[int, ...]], source: str = "the weights") -> None:
    """Raise :class:`ConfigError` if ``shapes`` (official key -> shape) contradicts ``config``.

    Depths are checked too: the last block of each stack must exist and the next must not.
    """
    problems = []
    for key, expected in expected_shapes(config).items():
        got = shapes.get(key)
        if got is None:
            problems.append(f"{key}: missing (expected shape {list(expected)})")
        elif tuple(got) != tuple(expected):
            problems.append(f"{key}: shape {list(got)}, configuration expects {list(expected)}")
    for prefix, depth in (
        ("enc_blocks", config.enc_depth),
        ("dec_blocks", config.dec_depth),
        ("dec_blocks_state", config.dec_depth),
        ("backbone.encoder.blocks", config.dinov2.depth),
    ):
        if f"{prefix}.{depth}.norm1.weight" in shapes:
            problems.append(f"{prefix}: the weights have more than the configured {depth} blocks")
    if problems:
        raise ConfigError(f"the configuration ({config.describe()}) does not match {source}:\n  - " + "\n  - ".join(problems))


def infer_config(shapes: Mapping[str, tuple[int, ...]], filename: str = "") -> Human3RConfig:
    """Configuration of an official-sized checkpoint from its tensor shapes and its file name.

    Head counts and the Multi-HMR resolution are not visible in the weights; the official values are
    assumed, and the resolution is read from the file name (``..._672...`` / ``..._896...``).
    """
    res = re.search(r"(672|896)", filename)
    bb_shape = shapes.get("backbone.encoder.patch_embed.proj.weight")
    if bb_shape is None:
        raise ConfigError(f"{filename}: not a Human3R checkpoint (no DINOv2 backbone weights)")
    backbone = {384: "dinov2_vits14", 768: "dinov2_vitb14", 1024: "dinov2_vitl14"}.get(bb_shape[0])
    if backbone is None or res is None:
        raise ConfigError(
            f"{filename} carries no configuration and its sizes are not an official variant's; "
            f"pass config=Human3RConfig(...) to load_model"
        )
    match = [v for v, (b, r) in VARIANTS.items() if b == backbone and r == int(res.group(1))]
    if not match:
        raise ConfigError(f"{filename}: no official variant has {backbone} at {res.group(1)} px")
    return Human3RConfig.from_variant(match[0])


# ---------------------------------------------------------------------- configuration from the reference's fields
# fields that select the computation itself; another value would be another model, not implemented here
_IMPLEMENTED = {
    "output_mode": "pts3d+pose+smpl",
    "head_type": "dpt",
    "depth_mode": ("exp", -math.inf, math.inf),
    "conf_mode": ("exp", 1, math.inf),
    "pose_mode": ("exp", -math.inf, math.inf),
    "pose_head": True,
    "rgb_head": True,
    "msk_head": True,
    "depth_head": False,
    "pose_conf_head": False,
}


def config_from_reference_fields(
    fields: Mapping[str, Any],
    dinov2_override: Mapping[str, Any] | None = None,
    dpt_override: Mapping[str, Any] | None = None,
) -> Human3RConfig:
    """Build a configuration from the reference's ``ARCroco3DStereoConfig`` keyword arguments.

    ``fields`` is what :func:`parse_model_string` returns, or the ``config`` object of a parity
    fixture's ``tiny_config.json``; the two overrides replace the sizes the reference hard-codes.
    A field that selects another computation (another head type, output mode or activation) is
    refused rather than ignored. Absent fields take the reference's constructor defaults.
    """
    fields = dict(fields)
    for name, value in _IMPLEMENTED.items():
        if name not in fields:
            continue
        got = fields[name]
        if isinstance(value, tuple):
            got = tuple(_as_number(v) for v in got)
        if got != value:
            raise ConfigError(f"{name}={fields[name]!r} is not implemented here (this package runs {value!r})")

    pos_embed = fields.get("pos_embed", "RoPE100")
    if not (isinstance(pos_embed, str) and pos_embed.startswith("RoPE")):
        raise ConfigError(f"pos_embed={pos_embed!r} is not implemented here (expected 'RoPE<base>')")
    patch = fields.get("patch_size", 16)
    if isinstance(patch, (tuple, list)):
        if len(set(patch)) != 1:
            raise ConfigError(f"non-square patch_size {patch!r} is not implemented here")
        patch = patch[0]
    backbone = fields.get("backbone", "dinov2_vitl14")
    if backbone not in DINOV2_NETWORKS:
        raise ConfigError(f"backbone={backbone!r} is not one of {', '.join(DINOV2_NETWORKS)}")
    dinov2 = _dinov2_from_override(dinov2_override) if dinov2_override else DINOV2_NETWORKS[backbone]
    dpt = DPTConfig()
    if dpt_override:
        dpt = DPTConfig(
            feature_dim=int(dpt_override["feature_dim"]),
            last_dim=int(dpt_override["last_dim"]),
            layer_dims=tuple(int(d) for d in dpt_override["layer_dims"]),
        )
    # the reference constructor's defaults where a field is absent from the string
    return Human3RConfig(
        enc_embed_dim=int(fields.get("enc_embed_dim", 1024)),
        enc_depth=int(fields.get("enc_depth", 24)),
        enc_num_heads=int(fields.get("enc_num_heads", 16)),
        patch_size=int(patch),
        rope_base=float(pos_embed[len("RoPE"):]),
        dec_embed_dim=int(fields.get("dec_embed_dim", 768)),
        dec_depth=int(fields.get("dec_depth", 12)),
        dec_num_heads=int(fields.get("dec_num_heads", 12)),
        state_dec_num_heads=int(fields.get("state_dec_num_heads", 16)),
        state_size=int(fields.get("state_size", 324)),
        state_pe=str(fields.get("state_pe", "2d")),
        local_mem_size=int(fields.get("local_mem_size", 256)),
        mlp_ratio=float(fields.get("mlp_ratio", 4.0)),
        backbone=backbone,
        dinov2=dinov2,
        mhmr_img_res=int(fields.get("mhmr_img_res", 896)),
        dpt=dpt,
    )


def config_from_model_string(text: str) -> Human3RConfig:
    """Read the ``args.model`` constructor string of a checkpoint, without executing it."""
    return config_from_reference_fields(parse_model_string(text))


def _dinov2_from_override(o: Mapping[str, Any]) -> DINOv2Config:
    if int(o.get("num_register_tokens", 0)) != 0:
        raise ConfigError("DINOv2 with register tokens is not what Multi-HMR uses (not implemented here)")
    if o.get("ffn_layer", "mlp") != "mlp" or o.get("interpolate_antialias", False):
        raise ConfigError("only the plain-MLP DINOv2 without antialiased interpolation is implemented here")
    return DINOv2Config(
        embed_dim=int(o["embed_dim"]),
        depth=int(o["depth"]),
        num_heads=int(o["num_heads"]),
        patch_size=int(o.get("patch_size", 14)),
        img_size=int(o.get("img_size", 518)),
        mlp_ratio=float(o.get("mlp_ratio", 4.0)),
        interpolate_offset=float(o.get("interpolate_offset", 0.1)),
    )


def _as_number(value: Any) -> Any:
    if isinstance(value, str) and value in ("inf", "-inf", "+inf"):
        return float(value)
    return value


# ---------------------------------------------------------------------- restricted parser
_NAMED_CONSTANTS = {"inf": math.inf, "True": True, "False": False, "None": None}


def parse_model_string(text: str) -> dict[str, Any]:
    """Extract the keyword arguments of the ``...Config(...)`` call in a model constructor string.

    Only literals are accepted (strings, numbers, booleans, ``inf``, tuples and lists of those, and
    unary minus); anything else - attribute access, names other than ``inf``, calls inside argument
    values - is a :class:`ConfigError`. The string is parsed, never executed.
    """
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as err:
        raise ConfigError(f"the model string is not a Python expression: {err.msg}") from None
    call = tree.body
    if not isinstance(call, ast.Call):
        raise ConfigError("the model string is not a constructor call")
    # ARCroco3DStereo(ARCroco3DStereoConfig(...)): the configuration is the inner call
    if not call.keywords and len(call.args) == 1 and isinstance(call.args[0], ast.Call):
        call = call.args[0]
    if call.args:
        raise ConfigError("positional arguments in the model configuration are not supported")
    fields = {}
    for kw in call.keywords:
        if kw.arg is None:
            raise ConfigError("'**' arguments in the model string are not supported")
        fields[kw.arg] = _literal(kw.value, kw.arg)
    return fields


def _literal(node: ast.AST, name: str) -> Any:
    if isinstance(node, ast.Constant) and isinstance(node.value, (str, int, float, bool, type(None))):
        return node.value
    if isinstance(node, ast.Name) and node.id in _NAMED_CONSTANTS:
        return _NAMED_CONSTANTS[node.id]
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        value = _literal(node.operand, name)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, (ast.Tuple, ast.List)):
        return tuple(_literal(e, name) for e in node.elts)
    # anything that is not a literal (function calls, attributes, names) is never evaluated
    raise ConfigError(f"the value of {name!r} in the model string is not a literal: {ast.unparse(node)!r}")
