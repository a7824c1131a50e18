"""The shapes of official weights that reveal a configuration: checked on every load, and read when a
file carries no configuration of its own. docs/ARCHITECTURE.md 1.2.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from ...config import VARIANTS, ConfigError, Human3RConfig

__all__ = ["check_shapes", "expected_shapes", "infer_config"]


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
