"""The DPT dense head: four token maps from the decoder -> a full-resolution map.

The hooks (encoder tokens and decoder layers L*2//4, L*3//4, L) are reassembled at strides 4, 8,
16 and 32 of the input image, projected to ``feature_dim`` channels, fused coarse to fine by
residual convolution units, and upsampled twice more by the fusion blocks and the output head.

Parameter names (``act_postprocess``, ``scratch.layer_rn``, ``refinenet``, ``resConfUnit``) are those
of the DPT / MiDaS code the official model inherits. Adapted from fanegg/Human3R@e313921
``src/croco/models/dpt_block.py`` (``DPTOutputAdapter``) and ``src/dust3r/heads/dpt_head.py``
(``DPTOutputAdapter_fix``); docs/ARCHITECTURE.md 8.3.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from ..config import DPTConfig


class ResidualConvUnit(nn.Module):
    """``conv2(relu(conv1(relu(x)))) + x``, 3x3 convolutions."""

    def __init__(self, features: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(features, features, 3, padding=1)
        self.conv2 = nn.Conv2d(features, features, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv2(F.relu(self.conv1(F.relu(x)))) + x


class FeatureFusionBlock(nn.Module):
    """``out_conv(up2(RCU2(x + RCU1(skip))))``.

    The deepest block (``refinenet4``) has no skip input; its ``resConfUnit1`` is in the checkpoints
    but never runs, so it is not built here (``skip=False``) and is dropped on load.
    """

    def __init__(self, features: int, skip: bool = True) -> None:
        super().__init__()
        if skip:
            self.resConfUnit1 = ResidualConvUnit(features)
        self.resConfUnit2 = ResidualConvUnit(features)
        self.out_conv = nn.Conv2d(features, features, 1)

    def forward(self, x: Tensor, skip: Tensor | None = None) -> Tensor:
        if skip is not None:
            x = x + self.resConfUnit1(skip)
        x = self.resConfUnit2(x)
        x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)
        return self.out_conv(x)


class DPTScratch(nn.Module):
    def __init__(self, cfg: DPTConfig) -> None:
        super().__init__()
        self.layer_rn = nn.ModuleList(nn.Conv2d(d, cfg.feature_dim, 3, padding=1, bias=False) for d in cfg.layer_dims)
        self.refinenet1 = FeatureFusionBlock(cfg.feature_dim)
        self.refinenet2 = FeatureFusionBlock(cfg.feature_dim)
        self.refinenet3 = FeatureFusionBlock(cfg.feature_dim)
        self.refinenet4 = FeatureFusionBlock(cfg.feature_dim, skip=False)


class DPTHead(nn.Module):
    """Dense prediction from four token maps (hooks) to a full-resolution ``out_channels`` map."""

    def __init__(self, hook_dims: tuple[int, int, int, int], cfg: DPTConfig, out_channels: int, patch_size: int) -> None:
        super().__init__()
        self.patch_size = patch_size
        d = cfg.layer_dims

        def reassemble(i: int, *resample: nn.Module) -> nn.Sequential:
            return nn.Sequential(nn.Conv2d(hook_dims[i], d[i], 1), *resample)

        self.act_postprocess = nn.ModuleList(
            [
                reassemble(0, nn.ConvTranspose2d(d[0], d[0], kernel_size=4, stride=4)),
                reassemble(1, nn.ConvTranspose2d(d[1], d[1], kernel_size=2, stride=2)),
                reassemble(2),
                reassemble(3, nn.Conv2d(d[3], d[3], 3, stride=2, padding=1)),
            ]
        )
        self.scratch = DPTScratch(cfg)
        # the first conv halves feature_dim; the second maps to last_dim (docs/ARCHITECTURE.md 8.3, step 4)
        half = cfg.feature_dim // 2
        self.head = nn.Sequential(
            nn.Conv2d(cfg.feature_dim, half, 3, padding=1),
            nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True),
            nn.Conv2d(half, cfg.last_dim, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(cfg.last_dim, out_channels, 1),
        )

    def forward(self, hooks: list[Tensor], image_hw: tuple[int, int]) -> Tensor:
        """``hooks``: four (B, h*w, C_i) token maps -> (B, out_channels, H, W)."""
        H, W = image_hw
        h, w = H // self.patch_size, W // self.patch_size
        dtype = self.head[0].weight.dtype
        maps = [t.to(dtype).transpose(1, 2).reshape(t.shape[0], t.shape[2], h, w) for t in hooks]
        layers = [rn(post(m)) for m, post, rn in zip(maps, self.act_postprocess, self.scratch.layer_rn)]
        s = self.scratch
        # the stride-32 map has ceil(h/2) rows; crop back to the stride-16 size when h or w is odd
        path = s.refinenet4(layers[3])[:, :, : layers[2].shape[2], : layers[2].shape[3]]
        path = s.refinenet3(path, layers[2])
        path = s.refinenet2(path, layers[1])
        path = s.refinenet1(path, layers[0])
        return self.head(path)
