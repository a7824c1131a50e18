"""Dense read-outs of the decoded image stream: the DPT point maps, confidences and colours.

* :func:`dpt_hooks`: the four decoder layers the DPT heads read, trimmed to the image tokens;
* ``final_transform``: two transformer blocks on the image tokens, modulated by the pose token;
* three DPT heads: ``self`` (points in the camera frame + confidence), ``cross`` (points in the
  chunk's world frame, fed the pose-modulated tokens) and ``rgb`` (colours). The stream uses only
  ``self`` (world points are the camera points moved by the camera pose, as in the reference demo);
  the others are computed only when asked for (:data:`DENSE_HEADS`).

The camera head reads the same pose token; it sits beside these heads
(:mod:`~human3r_demo.model.camera_head`).

Adapted from fanegg/Human3R@e313921 ``src/dust3r/heads/dpt_head.py`` (``DPTPts3dPoseSMPL``),
``src/dust3r/blocks.py`` (``ModLN``) and ``src/dust3r/heads/postprocess.py``;
docs/ARCHITECTURE.md 8, 8.2-8.3.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from torch import Tensor, nn

from ..config import Human3RConfig
from .activations import exp_distance, squash_probability
from .dpt import DPTHead
from .layers import ModulatedBlock
from .rope import RoPE2D

__all__ = ["DENSE_HEADS", "DenseHeads", "DenseHeadsOutput", "dpt_hooks"]

# the three DPT heads, by the names of their checkpoint modules (dpt_self, dpt_cross, dpt_rgb)
DENSE_HEADS = ("self", "cross", "rgb")


def dpt_hooks(image_layers: Sequence[Tensor] | Mapping[int, Tensor], hook_layers: tuple[int, int, int, int], num_image_tokens: int) -> list[Tensor]:
    """The DPT inputs from the decoder's image stream ``[F_enc, X_1, ..., X_L]``, each (1, 1+N+n, d)
    (a mapping from layer to tensor works too: only the four hook layers are read).

    The two middle hooks keep the N image tokens only; the last keeps the pose token in front of them
    (the heads split it off); the first is the encoder output, which has neither pose nor people.

    Returns:
        ``[(1, N, ed), (1, N, dd), (1, N, dd), (1, 1+N, dd)]`` for ``hook_layers`` ``(0, mid, late, L)``
        (:attr:`Human3RConfig.dpt_hooks`).
    """
    first, mid, late, last = hook_layers
    N = num_image_tokens
    return [image_layers[first], image_layers[mid][:, 1 : 1 + N], image_layers[late][:, 1 : 1 + N],
            image_layers[last][:, : 1 + N]]


@dataclass
class DenseHeadsOutput:
    """Dense outputs of one frame (``B = 1``; H, W the CUT3R image size), float32.

    Attributes:
        pts3d_self: (1, H, W, 3) points in the camera frame; conf_self: (1, H, W) >= 1.
        pts3d_world, conf_world: the ``cross`` head's points predicted directly in the chunk's world
            frame and their confidence; tokens_cross: (1, N, dd) the pose-modulated tokens it reads.
        rgb: (1, H, W, 3) the ``rgb`` head's reconstructed colours in [-1, 1].
        The last four are ``None`` unless their head was asked for.
    """

    pts3d_self: Tensor
    conf_self: Tensor
    pts3d_world: Tensor | None = None
    conf_world: Tensor | None = None
    tokens_cross: Tensor | None = None
    rgb: Tensor | None = None


class DenseHeads(nn.Module):
    """``final_transform`` and the three DPT heads."""

    def __init__(self, config: Human3RConfig) -> None:
        super().__init__()
        ed, dd = config.enc_embed_dim, config.dec_embed_dim
        hook_dims = (ed, dd, dd, dd)
        rope = RoPE2D(config.rope_base)
        self.final_transform = nn.ModuleList(ModulatedBlock(dd, config.dec_num_heads, 4.0, rope=rope) for _ in range(2))
        self.dpt_self = DPTHead(hook_dims, config.dpt, 4, config.patch_size)
        self.dpt_cross = DPTHead(hook_dims, config.dpt, 4, config.patch_size)
        self.dpt_rgb = DPTHead(hook_dims, config.dpt, 3, config.patch_size)

    def forward(
        self,
        hooks: list[Tensor],
        image_pos: Tensor,
        image_hw: tuple[int, int],
        dense_heads: tuple[str, ...] = DENSE_HEADS,
    ) -> DenseHeadsOutput:
        """``hooks``: :func:`dpt_hooks` (the pose token kept only in the last one); ``image_pos`` (1, N, 2);
        ``dense_heads``: which DPT heads to run besides ``self`` (always run: the stream's points)."""
        unknown = set(dense_heads) - set(DENSE_HEADS)
        if unknown:
            raise ValueError(f"unknown dense heads {sorted(unknown)}; choose from {DENSE_HEADS}")
        pose_token, tokens = hooks[3][:, 0], hooks[3][:, 1:]
        self_hooks = hooks[:3] + [tokens]
        out_self = self.dpt_self(self_hooks, image_hw).permute(0, 2, 3, 1).float()
        out = DenseHeadsOutput(pts3d_self=exp_distance(out_self[..., :3]), conf_self=1 + out_self[..., 3].exp())
        if "cross" in dense_heads:
            dtype = self.final_transform[0].attn.qkv.weight.dtype
            tokens_cross, cond = tokens.to(dtype), pose_token.to(dtype)
            for block in self.final_transform:
                tokens_cross = block(tokens_cross, cond, image_pos)
            out_cross = self.dpt_cross(hooks[:3] + [tokens_cross], image_hw).permute(0, 2, 3, 1).float()
            out.pts3d_world = exp_distance(out_cross[..., :3])
            out.conf_world = 1 + out_cross[..., 3].exp()
            out.tokens_cross = tokens_cross
        if "rgb" in dense_heads:
            out_rgb = self.dpt_rgb(self_hooks, image_hw).permute(0, 2, 3, 1).float()
            out.rgb = (squash_probability(out_rgb) - 0.5) * 2
        return out


def __getattr__(name: str):
    if name == "HeadsOutput":  # the earlier name, kept one release (CHANGELOG.md)
        import warnings

        warnings.warn("HeadsOutput is now DenseHeadsOutput (the camera pose moved to Human3ROutput.camera_pose)",
                      DeprecationWarning, stacklevel=2)
        return DenseHeadsOutput
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
