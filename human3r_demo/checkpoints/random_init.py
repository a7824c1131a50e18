"""Untrained models: ``tiny-random`` for offline smoke runs, ``random:<variant>`` for measuring speed.

Both have every module of the official network and *meaningless* geometry. Their weights are drawn
parameter by parameter, each from its own generator seeded by ``(seed, parameter name)``, in
float32 and then stored in the model's dtype: a bfloat16 model holds exactly the rounded weights of
the float32 one (so the two can be compared), and no float32 copy of the whole model ever exists
(a real-size bfloat16 model builds in its final size).

Untrained, every DINOv2 token scores about the same, so a frame would show either nobody or
dozens of people, and the dense heads would put points anywhere. :func:`calibrate` sets four output
biases so that a fixed synthetic frame (:func:`calibration_scene`) shows about two people, a tenth of its pixels read as people,
and points sit a few metres ahead with confidences around 2 - what viewers, exports and timings
need to be representative. It runs on float32 copies of the human branch, so every dtype gets the
same biases.
"""

from __future__ import annotations

import hashlib
import math

import torch
from torch import nn

from ..config import DINOv2Config, DPTConfig, Human3RConfig, variant_name
from ..model import Human3R
from ..model.detection import DETECTION_THRESHOLD, HumanDetector
from ..model.dinov2 import DINOv2, LayerScale
from ..model.square_view import pad_to_square

__all__ = ["RANDOM_PREFIX", "TINY_RANDOM", "build_random_model", "random_config"]

TINY_RANDOM = "tiny-random"
RANDOM_PREFIX = "random:"
RANDOM_WARNING = (
    "an untrained model with random weights. Its geometry, people and cameras are meaningless; "
    "use it only to try the pipeline or to measure speed."
)
MASK_THRESHOLD = 0.1  # the human-mask threshold of the reference demo's viewer (demo.py@e313921, msk_threshold)


def tiny_random_config() -> Human3RConfig:
    """A small configuration with every module of the official one, for offline smoke runs."""
    return Human3RConfig(
        enc_embed_dim=64,
        enc_depth=2,
        enc_num_heads=2,
        dec_embed_dim=48,
        dec_depth=4,
        dec_num_heads=3,
        state_dec_num_heads=4,
        state_size=64,
        local_mem_size=16,
        dinov2=DINOv2Config(embed_dim=32, depth=2, num_heads=2, img_size=70),
        mhmr_img_res=224,
        dpt=DPTConfig(feature_dim=32, last_dim=16, layer_dims=(16, 24, 32, 48)),
    )


def random_config(name: str) -> Human3RConfig | None:
    """The configuration of ``tiny-random`` or ``random:<variant>``; ``None`` for any other name."""
    if name == TINY_RANDOM:
        return tiny_random_config()
    if name.startswith(RANDOM_PREFIX):
        variant = variant_name(name[len(RANDOM_PREFIX):])
        return Human3RConfig.from_variant(variant) if variant else None
    return None


def build_random_model(
    config: Human3RConfig, *, seed: int = 0, dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu", target_people: int = 2
) -> Human3R:
    """A calibrated random model in ``dtype`` on ``device`` (see the module docstring)."""
    with torch.device("meta"):
        model = Human3R(config)
    model.cast(dtype)  # on the meta device: only the recorded dtypes change
    model.to_empty(device=device)
    with torch.no_grad():
        fill_random(model, seed)
        model.smplx_head.reset_mean_parameters(device)
        model.init_non_persistent_buffers(device)
        calibrate(model, seed, target_people)
    return model.prepare_for_inference(dtype)


# Each parameter's draw is seeded by its name. Modules renamed since tiny-random's outputs were pinned
# (tests, notebooks) keep the names they were drawn under, so that a rename leaves the model unchanged.
_SEED_NAMES = (("camera_head.mlp.", "heads.camera_head."), ("dense_heads.", "heads."))


def _seed_name(name: str) -> str:
    for current, drawn_as in _SEED_NAMES:
        if name.startswith(current):
            return drawn_as + name[len(current):]
    return name


def fill_random(module: nn.Module, seed: int, prefix: str = "") -> None:
    """Give every parameter of ``module`` its seeded draw (names relative to the full model)."""
    for owner_name, owner in module.named_modules():
        for name, param in owner.named_parameters(recurse=False):
            full = f"{prefix}{owner_name}.{name}" if owner_name else f"{prefix}{name}"
            param.copy_(_draw(owner, name, param.shape, _generator(seed, _seed_name(full))))


def _generator(seed: int, name: str) -> torch.Generator:
    digest = hashlib.sha256(f"{seed}/{name}".encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") & (2**63 - 1))


def _draw(owner: nn.Module, name: str, shape: torch.Size, g: torch.Generator) -> torch.Tensor:
    """PyTorch's default initialisation of each layer type, drawn from ``g`` in float32."""
    if isinstance(owner, nn.LayerNorm):
        return torch.ones(shape) if name == "weight" else torch.zeros(shape)
    if isinstance(owner, LayerScale):
        return torch.ones(shape)
    if isinstance(owner, nn.Embedding):
        return torch.randn(shape, generator=g)
    if isinstance(owner, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
        weight_shape = owner.weight.shape
        receptive = math.prod(weight_shape[2:]) if len(weight_shape) > 2 else 1
        # ConvTranspose2d stores (in, out, k, k); PyTorch's fan-in reads dimension 1 for every layer type
        fan_in = weight_shape[1] * receptive
        bound = 1.0 / math.sqrt(fan_in)  # kaiming_uniform(a=sqrt(5)) for weights, and the bias rule
        return (torch.rand(shape, generator=g) * 2 - 1) * bound
    # learned tokens, the pose memory, the DINOv2 class token and position table
    return torch.randn(shape, generator=g) * 0.02


def calibration_scene(height: int = 288, width: int = 512) -> torch.Tensor:
    """A fixed synthetic frame in [-1, 1], (1, 3, H, W): a colour gradient, four discs, mild noise.

    Smooth content like this (and like real video) scores lower than pure noise under random
    weights; calibrating on it keeps about two detections on ordinary frames.
    """
    g = torch.Generator().manual_seed(1)
    yy, xx = torch.meshgrid(torch.arange(height, dtype=torch.float32), torch.arange(width, dtype=torch.float32), indexing="ij")
    image = torch.stack([xx / width, yy / height, torch.full_like(xx, 0.4)])
    for _ in range(4):
        u = torch.rand(6, generator=g)
        cx, cy, r = (0.1 + 0.8 * u[0]) * width, (0.2 + 0.6 * u[1]) * height, 20 + 30 * u[2]
        inside = (xx - cx) ** 2 + (yy - cy) ** 2 < r * r
        image[:, inside] = (0.2 + 0.8 * u[3:6])[:, None]
    image = image + 0.05 * torch.randn(image.shape, generator=g)
    return image.clamp(0, 1)[None] * 2 - 1


@torch.no_grad()
def calibrate(model: Human3R, seed: int, target_people: int = 2) -> None:
    """Set the detector, mask and dense-head output biases (see the module docstring)."""
    config = model.config
    # float32 copies of the human branch with the model's own draws
    encoder, detector = DINOv2(config.dinov2), HumanDetector(config)
    fill_random(encoder, seed, prefix="human_encoder.")
    fill_random(detector, seed, prefix="human_detector.")

    image = pad_to_square(calibration_scene(), config.mhmr_img_res)
    tokens = encoder(model.normalize_mhmr(image.to(model.device)).cpu())
    score_mlp, mask_mlp = detector.score_mlp, detector.mask_mlp
    logits = score_mlp(tokens)[0, :, 0] - score_mlp[2].bias
    grid = config.mhmr_grid
    peaks = logits.reshape(1, 1, grid, grid)
    is_peak = nn.functional.max_pool2d(peaks, 3, stride=1, padding=1) == peaks
    candidates = peaks[is_peak].sort(descending=True).values
    k = min(target_people, len(candidates) - 1)
    # a logit halfway between the k-th and (k+1)-th local maxima maps to the detection threshold
    score_bias = torch.logit(torch.tensor(DETECTION_THRESHOLD)) - (candidates[k - 1] + candidates[k]) / 2
    # about a tenth of the pixels read as people
    mask_logits = mask_mlp(tokens) - mask_mlp[2].bias
    mask_bias = torch.logit(torch.tensor(MASK_THRESHOLD)) - mask_logits.quantile(0.9)

    model.human_detector.score_mlp[2].bias.fill_(float(score_bias))
    model.human_detector.mask_mlp[2].bias.fill_(float(mask_bias))
    for dpt in (model.dense_heads.dpt_self, model.dense_heads.dpt_cross):
        # xyz about 3 m ahead (expm1(1.4) = 3.1), confidence about 1 + exp(0.5) = 2.6
        dpt.head[-1].bias.copy_(torch.tensor([0.0, 0.0, 1.4, 0.5]))
