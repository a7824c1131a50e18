"""The configuration of an official checkpoint, read from its constructor string (``args.model``) by a
parser that accepts literals only and never evaluates anything (:func:`parse_model_string`), and from
the reference's keyword arguments (:func:`config_from_reference_fields`). docs/ARCHITECTURE.md 1.1-1.2.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Mapping
from typing import Any

from ...config import DINOV2_NETWORKS, ConfigError, DINOv2Config, DPTConfig, Human3RConfig

__all__ = ["config_from_model_string", "config_from_reference_fields", "parse_model_string"]

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
