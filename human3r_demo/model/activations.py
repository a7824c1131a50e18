"""The output activations the read-outs share, each written once.

* :func:`exp_distance` - the reference's ``'exp'`` mode: a raw 3-vector becomes a point at distance
  ``expm1(|v|)`` along it. Points of the DPT heads, the camera translation and the SMPL-X head
  position are all read this way (docs/ARCHITECTURE.md 8.1, 8.3, 8.4).
* :func:`squash_probability` - a sigmoid kept away from exactly 0 and 1: the head scores, the human
  mask and the colours of the ``rgb`` DPT head (docs/ARCHITECTURE.md 5.2, 8.3).

Adapted from fanegg/Human3R@e313921 ``src/dust3r/heads/postprocess.py`` (``reg_dense_depth``,
``postprocess``) and ``src/dust3r/model.py`` (``smpl_tokenizer_mhmr``).
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["exp_distance", "squash_probability"]


def exp_distance(xyz: Tensor) -> Tensor:
    """(..., 3) raw vectors -> points at distance ``expm1(|v|)`` along ``v`` (the ``'exp'`` depth mode)."""
    d = xyz.norm(dim=-1, keepdim=True)
    return xyz / d.clip(min=1e-8) * torch.expm1(d)


def squash_probability(logits: Tensor, eps: float = 1e-6) -> Tensor:
    """``sigmoid(x) * (1 - 2 eps) + eps``: probabilities kept away from exactly 0 and 1."""
    return torch.sigmoid(logits) * (1 - 2 * eps) + eps
