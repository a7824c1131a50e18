"""Model configuration: one frozen dataclass with every size that influences inference.

The four released variants differ only in the DINOv2 backbone and the Multi-HMR input resolution
(:data:`VARIANTS`). Two sizes that the reference hard-codes (the DINOv2 network and the DPT widths)
are fields here, so the tiny parity configurations and the official ones are built by the same code.

Reading a configuration *from* an official checkpoint (its constructor string, its key names and
shapes) is the business of :mod:`human3r_demo.checkpoints.official`; this module knows nothing of
the official file format. "The reference" below is fanegg/Human3R@e313921: ``src/dust3r/model.py``
(``ARCroco3DStereoConfig``, the model) and ``src/mhmr/blocks/dinov2.py`` (the DINOv2 it builds).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["DEFAULT_MODEL", "ConfigError", "DINOv2Config", "DINOV2_NETWORKS", "DPTConfig", "Human3RConfig", "VARIANTS", "variant_name"]


class ConfigError(ValueError):
    """A model configuration that is malformed or disagrees with the weights."""


@dataclass(frozen=True)
class DINOv2Config:
    """The Multi-HMR human encoder: a DINOv2 ViT with 14 px patches and no register tokens."""

    embed_dim: int = 384
    depth: int = 12
    num_heads: int = 6
    patch_size: int = 14
    # side of the learned position table: 1 + (518/14)^2 = 1 + 37*37 entries
    img_size: int = 518
    mlp_ratio: float = 4.0
    # DINOv2 resizes its position table by (g + offset) / 37, not to g exactly (docs/ARCHITECTURE.md 5.1)
    interpolate_offset: float = 0.1

    @property
    def pos_grid(self) -> int:
        return self.img_size // self.patch_size


# torch.hub names of the DINOv2 networks that Multi-HMR uses
DINOV2_NETWORKS: dict[str, DINOv2Config] = {
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

    Defaults are the official values shared by all four released variants. ``__post_init__`` refuses
    only what the reference itself cannot run (each check says which reference operation would fail).
    """

    # CUT3R image encoder (ViT-L/16 with 2D RoPE)
    enc_embed_dim: int = 1024
    enc_depth: int = 24
    enc_num_heads: int = 16
    patch_size: int = 16
    rope_base: float = 100.0
    # the two interleaved decoders (image stream: dec_num_heads, state stream: state_dec_num_heads)
    dec_embed_dim: int = 768
    dec_depth: int = 12
    dec_num_heads: int = 12
    state_dec_num_heads: int = 16
    state_size: int = 768
    # state token positions: '2d' on a grid of even width ~ sqrt(state_size), or '1d' (i, i)
    state_pe: str = "2d"
    local_mem_size: int = 256
    mlp_ratio: float = 4.0
    # Multi-HMR human branch
    dinov2: DINOv2Config = field(default_factory=DINOv2Config)
    mhmr_img_res: int = 672
    # dense heads
    dpt: DPTConfig = field(default_factory=DPTConfig)

    def __post_init__(self) -> None:
        def head_dim(width: int, heads: int, what: str, rope: bool) -> None:
            # the fused projections reshape (B, N, width) into (B, N, heads, width // heads)
            if heads < 1 or width % heads:
                raise ConfigError(f"{what}: width {width} does not split into {heads} heads")
            # RoPE2D rotates pairs inside a y half and an x half of each head
            if rope and (width // heads) % 4:
                raise ConfigError(f"{what}: head dimension {width // heads} is not a multiple of 4 (2D RoPE)")

        head_dim(self.enc_embed_dim, self.enc_num_heads, "encoder", rope=True)
        head_dim(self.dec_embed_dim, self.dec_num_heads, "image decoder", rope=True)
        head_dim(self.dec_embed_dim, self.state_dec_num_heads, "state decoder", rope=True)
        head_dim(2 * self.dec_embed_dim, self.dec_num_heads, "pose memory", rope=False)
        head_dim(self.dinov2.embed_dim, self.dinov2.num_heads, "DINOv2", rope=False)
        if self.state_pe not in ("1d", "2d"):
            # 'none' gives the RoPE decoders no positions, anything else no positions at all
            raise ConfigError(f"state_pe must be '1d' or '2d' (RoPE needs state positions), not {self.state_pe!r}")
        if self.dec_depth < 2:
            # the DPT reads decoder layers 0, L*2//4, L*3//4, L; with L = 1 the second hook is layer 0
            # (the encoder tokens), from which the reference cuts a pose token it does not have
            raise ConfigError(f"dec_depth must be at least 2 (the DPT hook L*2//4 would be the encoder output), got {self.dec_depth}")
        if self.mhmr_img_res % self.dinov2.patch_size:
            # DINOv2's patch embedding asserts that the image is a whole number of patches
            raise ConfigError(f"mhmr_img_res {self.mhmr_img_res} is not a multiple of the DINOv2 patch size {self.dinov2.patch_size}")

    # ------------------------------------------------------------------ derived sizes
    @property
    def dinov2_network(self) -> str:
        """The hub name of the DINOv2 network with these sizes (``dinov2_vits14``...), or its sizes."""
        for name, network in DINOV2_NETWORKS.items():
            if (network.embed_dim, network.depth, network.num_heads) == (self.dinov2.embed_dim, self.dinov2.depth,
                                                                          self.dinov2.num_heads):
                return name
        return f"DINOv2 {self.dinov2.embed_dim}x{self.dinov2.depth}"

    @property
    def mhmr_grid(self) -> int:
        """Side of the DINOv2 token grid, ``g = mhmr_img_res / 14`` (48 for 672, 64 for 896)."""
        return self.mhmr_img_res // self.dinov2.patch_size

    @property
    def dpt_hooks(self) -> tuple[int, int, int, int]:
        """Decoder layers read by the DPT heads: 0 (encoder tokens), L*2//4, L*3//4 and L."""
        L = self.dec_depth
        return (0, L * 2 // 4, L * 3 // 4, L)

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_variant(cls, name: str) -> Human3RConfig:
        """Configuration of an official variant: ``human3r_672S``, ``_672B``, ``_672L``, ``_896L``."""
        key = variant_name(name)
        if key is None:
            raise ConfigError(f"unknown Human3R variant {name!r}; known: {', '.join(VARIANTS)}")
        backbone, res = VARIANTS[key]
        return cls(dinov2=DINOV2_NETWORKS[backbone], mhmr_img_res=res)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Human3RConfig:
        data = dict(data)
        # configurations written before the DINOv2 network was named by its sizes alone (``dinov2``)
        # carry its hub name too; the sizes are what builds the model
        data.pop("backbone", None)
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

    def describe(self) -> str:
        return (
            f"{self.dinov2_network} @ {self.mhmr_img_res}px, encoder {self.enc_embed_dim}x{self.enc_depth}, "
            f"decoder {self.dec_embed_dim}x{self.dec_depth}, state {self.state_size}"
        )


# the variant a user gets when they name none: the smallest and fastest
DEFAULT_MODEL = "human3r_672S"

# variant name -> (DINOv2 network, Multi-HMR resolution)
VARIANTS: dict[str, tuple[str, int]] = {
    "human3r_672S": ("dinov2_vits14", 672),
    "human3r_672B": ("dinov2_vitb14", 672),
    "human3r_672L": ("dinov2_vitl14", 672),
    "human3r_896L": ("dinov2_vitl14", 896),
}


def variant_name(name: str) -> str | None:
    """``'672S'``, ``'human3r_672S'`` or ``'human3r_672S.pth'`` -> ``'human3r_672S'``; else ``None``."""
    key = str(name).removesuffix(".pth").removesuffix(".safetensors")
    key = key if key.startswith("human3r_") else f"human3r_{key}"
    return key if key in VARIANTS else None
