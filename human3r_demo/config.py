"""Model configuration: one dataclass for every size that influences inference.

The official checkpoints store their configuration as a Python constructor string
(``args.model``, e.g. ``ARCroco3DStereo(ARCroco3DStereoConfig(..., backbone='dinov2_vits14',
mhmr_img_res=672))``). The reference runs ``eval`` on it; here it is read by a restricted parser
(:func:`parse_model_string`) that accepts literals only, and the result is cross-checked against the
tensor shapes of the weights (:meth:`Human3RConfig.check_shapes`).

Two sizes are hard-coded in the reference (the DINOv2 network and the DPT widths); they are fields
here, so the tiny parity configuration and the four official ones are built by the same code.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "ConfigError",
    "DINOv2Config",
    "DPTConfig",
    "Human3RConfig",
    "VARIANTS",
    "parse_model_string",
]


class ConfigError(ValueError):
    """A model configuration that is malformed or disagrees with the weights."""


@dataclass(frozen=True)
class DINOv2Config:
    """The Multi-HMR human encoder (a DINOv2 ViT with 14 px patches, no register tokens)."""

    embed_dim: int = 384
    depth: int = 12
    num_heads: int = 6
    patch_size: int = 14
    img_size: int = 518  # size of the learned position table: 1 + (518/14)^2 = 1 + 37*37 entries
    mlp_ratio: float = 4.0
    interpolate_offset: float = 0.1

    @property
    def pos_grid(self) -> int:
        return self.img_size // self.patch_size


# torch.hub names of the DINOv2 networks that Multi-HMR uses.
DINOV2_NETWORKS = {
    "dinov2_vits14": DINOv2Config(embed_dim=384, depth=12, num_heads=6),
    "dinov2_vitb14": DINOv2Config(embed_dim=768, depth=12, num_heads=12),
    "dinov2_vitl14": DINOv2Config(embed_dim=1024, depth=24, num_heads=16),
}


@dataclass(frozen=True)
class DPTConfig:
    """Widths of the DPT dense heads (official: 256 features, 128 last, [96, 192, 384, 768])."""

    feature_dim: int = 256
    last_dim: int = 128
    layer_dims: tuple[int, int, int, int] = (96, 192, 384, 768)


@dataclass(frozen=True)
class Human3RConfig:
    """Every size of a Human3R network that influences inference.

    Defaults are the official values shared by all four released variants; the variants differ
    only in the DINOv2 backbone and the Multi-HMR input resolution ``mhmr_img_res``.
    """

    # CUT3R image encoder (ViT-L/16 with 2D RoPE)
    enc_embed_dim: int = 1024
    enc_depth: int = 24
    enc_num_heads: int = 16
    patch_size: int = 16
    rope_base: float = 100.0
    # the two interleaved decoders
    dec_embed_dim: int = 768
    dec_depth: int = 12
    dec_num_heads: int = 12
    state_dec_num_heads: int = 16
    state_size: int = 768
    state_pe: str = "2d"
    local_mem_size: int = 256
    mlp_ratio: float = 4.0
    # Multi-HMR human branch
    backbone: str = "dinov2_vits14"
    dinov2: DINOv2Config = field(default_factory=DINOv2Config)
    mhmr_img_res: int = 672
    # dense heads
    dpt: DPTConfig = field(default_factory=DPTConfig)
    # present in the checkpoints (training-time ray-map encoder), unused at inference
    ray_enc_depth: int = 2

    def __post_init__(self) -> None:
        checks = [
            (self.enc_embed_dim % self.enc_num_heads == 0, "enc_embed_dim must divide by enc_num_heads"),
            ((self.enc_embed_dim // self.enc_num_heads) % 4 == 0, "encoder head dim must divide by 4 (2D RoPE)"),
            (self.dec_embed_dim % self.dec_num_heads == 0, "dec_embed_dim must divide by dec_num_heads"),
            ((self.dec_embed_dim // self.dec_num_heads) % 4 == 0, "decoder head dim must divide by 4 (2D RoPE)"),
            (self.dec_embed_dim % self.state_dec_num_heads == 0, "dec_embed_dim must divide by state_dec_num_heads"),
            ((self.dec_embed_dim // self.state_dec_num_heads) % 4 == 0, "state head dim must divide by 4"),
            ((2 * self.dec_embed_dim) % self.dec_num_heads == 0, "pose memory width must divide by dec_num_heads"),
            (self.state_pe in ("1d", "2d"), f"state_pe must be '1d' or '2d', not {self.state_pe!r}"),
            (self.dec_depth >= 4, "dec_depth must be at least 4 (the DPT reads layers L/2, 3L/4, L)"),
            (self.mhmr_img_res % self.dinov2.patch_size == 0, "mhmr_img_res must be a multiple of the DINOv2 patch size"),
            (self.state_size > 0 and self.local_mem_size > 0, "state_size and local_mem_size must be positive"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)

    # ------------------------------------------------------------------ derived sizes
    @property
    def mhmr_grid(self) -> int:
        """Side of the DINOv2 token grid, ``g = mhmr_img_res / 14`` (48 for 672, 64 for 896)."""
        return self.mhmr_img_res // self.dinov2.patch_size

    @property
    def dpt_hooks(self) -> tuple[int, int, int, int]:
        """Decoder layers read by the DPT heads: 0 (encoder tokens), L/2, 3L/4 and L."""
        L = self.dec_depth
        return (0, L * 2 // 4, L * 3 // 4, L)

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_variant(cls, name: str) -> Human3RConfig:
        """Configuration of an official checkpoint: ``human3r_672S``, ``_672B``, ``_672L``, ``_896L``."""
        key = name.removesuffix(".pth").removesuffix(".safetensors")
        key = key if key.startswith("human3r_") else f"human3r_{key}"
        if key not in VARIANTS:
            raise ConfigError(f"unknown Human3R variant {name!r}; known: {', '.join(VARIANTS)}")
        backbone, res = VARIANTS[key]
        return cls(backbone=backbone, dinov2=DINOV2_NETWORKS[backbone], mhmr_img_res=res)

    @classmethod
    def from_reference_fields(
        cls,
        fields: Mapping[str, Any],
        dinov2_override: Mapping[str, Any] | None = None,
        dpt_override: Mapping[str, Any] | None = None,
    ) -> Human3RConfig:
        """Build from the reference's ``ARCroco3DStereoConfig`` keyword arguments.

        ``fields`` is what :func:`parse_model_string` returns, or the ``config`` object of a parity
        fixture's ``tiny_config.json``; the two overrides replace the sizes that the reference
        hard-codes. Fields that would change the computation away from the one implemented here
        (another head type, output mode or activation) are refused rather than ignored.
        """
        fields = dict(fields)
        expected = {
            "output_mode": "pts3d+pose+smpl",
            "head_type": "dpt",
            "pos_embed": None,  # checked below: 'RoPE<base>'
            "depth_mode": ("exp", -math.inf, math.inf),
            "conf_mode": ("exp", 1, math.inf),
            "pose_mode": ("exp", -math.inf, math.inf),
            "pose_head": True,
            "rgb_head": True,
            "msk_head": True,
            "depth_head": False,
            "pose_conf_head": False,
        }
        for name, value in expected.items():
            if name not in fields or value is None:
                continue
            got = fields[name]
            if isinstance(value, tuple):
                got = tuple(_as_number(v) for v in got)
            if got != value:
                raise ConfigError(f"{name}={fields[name]!r} is not supported (this implementation runs {value!r})")

        pos_embed = fields.get("pos_embed", "RoPE100")
        if not (isinstance(pos_embed, str) and pos_embed.startswith("RoPE")):
            raise ConfigError(f"pos_embed={pos_embed!r} is not supported (expected 'RoPE<base>')")
        rope_base = float(pos_embed[len("RoPE"):])

        patch = fields.get("patch_size", 16)
        if isinstance(patch, (tuple, list)):
            if len(set(patch)) != 1:
                raise ConfigError(f"non-square patch_size {patch!r} is not supported")
            patch = patch[0]

        backbone = fields.get("backbone", "dinov2_vitl14")
        if backbone not in DINOV2_NETWORKS:
            raise ConfigError(f"backbone={backbone!r} is not one of {', '.join(DINOV2_NETWORKS)}")
        dinov2 = DINOV2_NETWORKS[backbone]
        if dinov2_override:
            dinov2 = _dinov2_from_override(dinov2_override)
        dpt = DPTConfig()
        if dpt_override:
            dpt = DPTConfig(
                feature_dim=int(dpt_override["feature_dim"]),
                last_dim=int(dpt_override["last_dim"]),
                layer_dims=tuple(int(d) for d in dpt_override["layer_dims"]),
            )

        defaults = cls()
        return cls(
            enc_embed_dim=int(fields.get("enc_embed_dim", defaults.enc_embed_dim)),
            enc_depth=int(fields.get("enc_depth", defaults.enc_depth)),
            enc_num_heads=int(fields.get("enc_num_heads", defaults.enc_num_heads)),
            patch_size=int(patch),
            rope_base=rope_base,
            dec_embed_dim=int(fields.get("dec_embed_dim", defaults.dec_embed_dim)),
            dec_depth=int(fields.get("dec_depth", defaults.dec_depth)),
            dec_num_heads=int(fields.get("dec_num_heads", defaults.dec_num_heads)),
            # the reference's defaults when a field is absent from the string
            state_dec_num_heads=int(fields.get("state_dec_num_heads", 16)),
            state_size=int(fields.get("state_size", 324)),
            state_pe=str(fields.get("state_pe", "2d")),
            local_mem_size=int(fields.get("local_mem_size", 256)),
            mlp_ratio=float(fields.get("mlp_ratio", 4.0)),
            backbone=backbone,
            dinov2=dinov2,
            mhmr_img_res=int(fields.get("mhmr_img_res", 896)),
            dpt=dpt,
            ray_enc_depth=int(fields.get("ray_enc_depth", 2)),
        )

    @classmethod
    def from_model_string(cls, text: str) -> Human3RConfig:
        """Read the ``args.model`` constructor string of a checkpoint, without executing it."""
        return cls.from_reference_fields(parse_model_string(text))

    @classmethod
    def from_fixture(cls, path: str | Path) -> Human3RConfig:
        """Read a parity fixture's ``tiny_config.json`` (reference fields plus size overrides)."""
        data = json.loads(Path(path).read_text())
        return cls.from_reference_fields(
            data["config"], data.get("dinov2_override"), data.get("dpt_override")
        )

    # ------------------------------------------------------------------ (de)serialisation
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Human3RConfig:
        data = dict(data)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ConfigError(f"unknown configuration fields: {sorted(unknown)}")
        if "dinov2" in data:
            data["dinov2"] = DINOv2Config(**data["dinov2"])
        if "dpt" in data:
            dpt = dict(data["dpt"])
            dpt["layer_dims"] = tuple(dpt["layer_dims"])
            data["dpt"] = DPTConfig(**dpt)
        return cls(**data)

    # ------------------------------------------------------------------ cross-check with weights
    def expected_shapes(self) -> dict[str, tuple[int, ...]]:
        """Shapes of the checkpoint entries that reveal the configuration (official key names)."""
        ed, dd, bb = self.enc_embed_dim, self.dec_embed_dim, self.dinov2.embed_dim
        L, p, q = self.dec_depth, self.patch_size, self.dinov2.patch_size
        return {
            "patch_embed.proj.weight": (ed, 3, p, p),
            f"enc_blocks.{self.enc_depth - 1}.mlp.fc1.weight": (int(ed * self.mlp_ratio), ed),
            "register_tokens.weight": (self.state_size, ed),
            "decoder_embed.weight": (dd, ed),
            f"dec_blocks.{L - 1}.attn.qkv.weight": (3 * dd, dd),
            f"dec_blocks_state.{L - 1}.attn.qkv.weight": (3 * dd, dd),
            "pose_retriever.mem": (1, self.local_mem_size, 2 * dd),
            "backbone.encoder.patch_embed.proj.weight": (bb, 3, q, q),
            "backbone.encoder.pos_embed": (1, 1 + self.dinov2.pos_grid**2, bb),
            f"backbone.encoder.blocks.{self.dinov2.depth - 1}.mlp.fc1.weight": (int(bb * self.dinov2.mlp_ratio), bb),
            "downstream_head.dpt_self.scratch.layer_rn.0.weight": (self.dpt.feature_dim, self.dpt.layer_dims[0], 3, 3),
            "downstream_head.dpt_self.scratch.layer_rn.3.weight": (self.dpt.feature_dim, self.dpt.layer_dims[3], 3, 3),
            "downstream_head.dpt_self.head.2.weight": (self.dpt.last_dim, self.dpt.feature_dim // 2, 3, 3),
        }

    def check_shapes(self, shapes: Mapping[str, tuple[int, ...]], source: str = "the weights") -> None:
        """Raise :class:`ConfigError` if ``shapes`` (official key -> shape) contradicts this config.

        Depths are checked too: the last block of each stack must exist and the next must not.
        """
        problems = []
        for key, expected in self.expected_shapes().items():
            got = shapes.get(key)
            if got is None:
                problems.append(f"{key}: missing (expected shape {list(expected)})")
            elif tuple(got) != tuple(expected):
                problems.append(f"{key}: shape {list(got)}, configuration expects {list(expected)}")
        for prefix, depth in (
            ("enc_blocks", self.enc_depth),
            ("dec_blocks", self.dec_depth),
            ("dec_blocks_state", self.dec_depth),
            ("backbone.encoder.blocks", self.dinov2.depth),
        ):
            if f"{prefix}.{depth}.norm1.weight" in shapes:
                problems.append(f"{prefix}: the weights have more than the configured {depth} blocks")
        if problems:
            raise ConfigError(
                f"the configuration ({self.describe()}) does not match {source}:\n  - "
                + "\n  - ".join(problems)
            )

    def describe(self) -> str:
        return (
            f"{self.backbone} @ {self.mhmr_img_res}px, encoder {self.enc_embed_dim}x{self.enc_depth}, "
            f"decoder {self.dec_embed_dim}x{self.dec_depth}, state {self.state_size}"
        )


# variant name -> (DINOv2 network, Multi-HMR resolution)
VARIANTS: dict[str, tuple[str, int]] = {
    "human3r_672S": ("dinov2_vits14", 672),
    "human3r_672B": ("dinov2_vitb14", 672),
    "human3r_672L": ("dinov2_vitl14", 672),
    "human3r_896L": ("dinov2_vitl14", 896),
}


def _dinov2_from_override(o: Mapping[str, Any]) -> DINOv2Config:
    if int(o.get("num_register_tokens", 0)) != 0:
        raise ConfigError("DINOv2 with register tokens is not what Multi-HMR uses")
    if o.get("ffn_layer", "mlp") != "mlp" or o.get("interpolate_antialias", False):
        raise ConfigError("only the plain-MLP DINOv2 without antialiased interpolation is supported")
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
    unary minus); anything else - attribute access, names other than ``inf``, arbitrary calls inside
    argument values - is a :class:`ConfigError`. The string is parsed, never executed.
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
