"""``load_model``: a name or a file in, a ready ``Human3R`` out.

* a variant name (``human3r_672S`` ...) is downloaded once from the HuggingFace hub (:mod:`.hub`);
* a ``.pth`` is an official *training* checkpoint, read without running anything from it
  (:mod:`.safe_pickle`); its configuration comes from ``args.model`` through a literal-only parser
  and is checked against the tensor shapes (:mod:`.official`); a converted ``.safetensors`` copy is
  cached for fast reloads (:mod:`.cache`);
* ``tiny-random`` and ``random:<variant>`` are untrained models (:mod:`.random_init`).

Official key names are translated once, on the way in (:func:`~.official.checkpoint_filter_fn`);
weights that inference never reads are dropped there and reported in the log.
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..config import DEFAULT_MODEL, VARIANTS, ConfigError, Human3RConfig, variant_name
from ..device import resolve_device, resolve_precision
from ..model import Human3R
from .cache import CONVERTED_FORMAT, converted_path, write_converted
from .errors import CheckpointError
from .hub import download_checkpoint, weights_availability
from .official import check_shapes, checkpoint_filter_fn, config_from_model_string, infer_config
from .random_init import RANDOM_PREFIX, RANDOM_WARNING, TINY_RANDOM, build_random_model, random_config
from .safe_pickle import model_string, plain, safe_torch_load

__all__ = ["LoadedCheckpoint", "availability", "load_model", "read_checkpoint"]

log = logging.getLogger(__name__)


@dataclass
class LoadedCheckpoint:
    """A state dict (official key names) with its configuration and where it came from."""

    state_dict: dict[str, Tensor]
    config: Human3RConfig
    source: str
    extra: dict[str, Any] = field(default_factory=dict)


def read_checkpoint(path: str | os.PathLike, config: Human3RConfig | None = None) -> LoadedCheckpoint:
    """Read a ``.pth`` training checkpoint or a ``.safetensors`` file and work out its configuration.

    ``config`` overrides the configuration read from the file (it is still checked against the shapes).
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no such checkpoint file: {path}")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path.name} is empty")
    if path.suffix == ".safetensors":
        return _read_safetensors(path, config)
    if path.suffix not in (".pth", ".pt", ".bin", ".ckpt"):
        raise CheckpointError(f"{path.name}: unknown checkpoint type {path.suffix!r} (expected .pth or .safetensors)")

    cached = converted_path(path)
    if config is None and cached.is_file():
        try:
            return _read_safetensors(cached, None, source=str(path), require_format=True)
        except CheckpointError as err:
            log.info("re-reading %s: its converted cache is unusable (%s)", path.name, err)

    ckpt = safe_torch_load(path)
    if isinstance(ckpt, Mapping) and "model" in ckpt and isinstance(ckpt["model"], Mapping):
        state_dict, args = dict(ckpt["model"]), ckpt.get("args")
        extra = {k: plain(v) for k, v in ckpt.items() if k in ("epoch", "best_so_far")}
    elif isinstance(ckpt, Mapping) and ckpt and all(isinstance(v, Tensor) for v in ckpt.values()):
        state_dict, args, extra = dict(ckpt), None, {}
    else:
        raise CheckpointError(f"{path.name} holds no model weights (expected a dict with a 'model' state dict)")
    if state_dict and all(k.startswith("module.") for k in state_dict):
        state_dict = {k[len("module."):]: v for k, v in state_dict.items()}

    text = model_string(args)
    if text is not None:
        extra["model_string"] = text
    if config is None:
        try:
            config = config_from_model_string(text) if text is not None else infer_config(_shapes(state_dict), path.name)
        except ConfigError as err:
            where = "the model configuration in args.model" if text is not None else "its configuration"
            raise CheckpointError(f"{path.name}: cannot read {where}: {err}") from None
    _check(config, state_dict, path.name)
    loaded = LoadedCheckpoint(state_dict, config, str(path), extra)
    write_converted(state_dict, config, str(path), extra.get("model_string"), cached)
    return loaded


def _read_safetensors(
    path: Path, config: Human3RConfig | None, source: str | None = None, require_format: bool = False
) -> LoadedCheckpoint:
    from safetensors import SafetensorError, safe_open
    from safetensors.torch import load_file

    try:
        with safe_open(str(path), "pt") as f:
            metadata = f.metadata() or {}
        if require_format and metadata.get("format") != CONVERTED_FORMAT:
            raise CheckpointError(f"written in format {metadata.get('format')!r}, not {CONVERTED_FORMAT!r}")
        state_dict = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(f"{path.name} is not a readable safetensors file ({err})") from None
    extra: dict[str, Any] = {}
    if metadata.get("model_string"):
        extra["model_string"] = metadata["model_string"]
    if config is None:
        config_text = metadata.get("config")
        sidecar = path.with_suffix(".json")
        if config_text is None and sidecar.is_file():
            config_text = sidecar.read_text()
        try:
            if config_text is not None:
                config = Human3RConfig.from_dict(json.loads(config_text))
            else:
                config = infer_config(_shapes(state_dict), path.name)
        except (ConfigError, TypeError, ValueError) as err:
            raise CheckpointError(f"{path.name}: its configuration is unusable ({err})") from None
    _check(config, state_dict, path.name)
    return LoadedCheckpoint(state_dict, config, source or str(path), extra)


def _shapes(state_dict: Mapping[str, Tensor]) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in state_dict.items()}


def _check(config: Human3RConfig, state_dict: Mapping[str, Tensor], name: str) -> None:
    try:
        check_shapes(config, _shapes(state_dict), source=name)
    except ConfigError as err:
        raise CheckpointError(str(err)) from None


def availability(name: str) -> tuple[str, str]:
    """Whether ``load_model(name)`` can get its weights, without downloading anything.

    Returns ``(state, message)``, ``state`` one of ``"ready"``, ``"download"`` (the first load
    downloads it) and ``"unavailable"``.
    """
    if random_config(name) is not None or Path(name).is_file():
        return "ready", ""
    variant = variant_name(name)
    if variant is None:
        return "unavailable", f"{name!r} is neither an official variant nor an existing file."
    return weights_availability(variant)


def load_model(
    name_or_path: str | os.PathLike = DEFAULT_MODEL,
    device: torch.device | str | None = None,
    precision: str = "auto",
    *,
    config: Human3RConfig | None = None,
    seed: int = 0,
) -> Human3R:
    """Load Human3R weights and return the model in eval mode, parameters frozen.

    Args:
        name_or_path: an official variant (``human3r_672S``, ``human3r_672B``, ``human3r_672L``,
            ``human3r_896L``; downloaded from ``faneggg/human3r`` on first use), a local ``.pth`` or
            ``.safetensors`` file, ``"tiny-random"`` (a small untrained model for offline smoke
            runs) or ``"random:<variant>"`` (a real-size untrained model, to measure speed).
            Untrained models warn: their geometry is meaningless.
        device: where to run (``None``/``"auto"``: CUDA if available, else CPU).
        precision: ``"auto"`` (bfloat16 where the hardware computes it natively, see
            :mod:`human3r_demo.device`), ``"fp32"``, ``"bf16"`` or ``"fp16"``; the weights are cast once.
        config: override the configuration read from the file (checked against its shapes).
        seed: random seed of the untrained models.

    Returns:
        :class:`~human3r_demo.model.Human3R`; ``model.checkpoint_name`` says what was loaded and
        ``model.is_random`` is True for untrained weights.
    """
    device = resolve_device(device)
    dtype = resolve_precision(precision, device)
    name = str(name_or_path)
    random_cfg = random_config(name)
    if random_cfg is not None:
        warnings.warn(f"{name}: {RANDOM_WARNING}", stacklevel=2)
        model = build_random_model(config or random_cfg, seed=seed, dtype=dtype, device=device)
        model.is_random, model.checkpoint_name = True, name
        return model
    path = _checkpoint_path(name)
    model = _model_from_checkpoint(path, config)
    model.prepare_for_inference(dtype, device)
    model.is_random, model.checkpoint_name = False, variant_name(path.name) or path.name
    return model


def _checkpoint_path(name: str) -> Path:
    """A local checkpoint file, downloading an official variant's on first use."""
    if name.startswith(RANDOM_PREFIX):
        raise CheckpointError(f"{name!r}: after 'random:' name an official variant ({', '.join(VARIANTS)})")
    path = Path(name)
    if path.exists():
        return path
    variant = variant_name(name)
    if variant is None:
        raise CheckpointError(
            f"{name!r} is neither an official variant ({', '.join(VARIANTS)}), nor an existing file, "
            f"nor '{TINY_RANDOM}' / 'random:<variant>'"
        )
    return download_checkpoint(variant)


def _model_from_checkpoint(path: Path, config: Human3RConfig | None) -> Human3R:
    """Read ``path``, translate its keys and load them into a model built on the meta device (no
    memory spent on weights that are about to be replaced); what was dropped or ignored is reported."""
    loaded = read_checkpoint(path, config)
    filtered = checkpoint_filter_fn(loaded.state_dict)
    with torch.device("meta"):
        model = Human3R(loaded.config)
    result = model.load_state_dict(filtered.state_dict, strict=False, assign=True)
    if result.missing_keys:
        missing = result.missing_keys
        raise CheckpointError(f"{path.name} lacks {len(missing)} weight(s) the model needs, e.g. {', '.join(missing[:5])}")
    if filtered.unknown:
        warnings.warn(
            f"{path.name}: ignored {len(filtered.unknown)} entries this model has no place for: "
            f"{', '.join(filtered.unknown[:8])}{' ...' if len(filtered.unknown) > 8 else ''}",
            stacklevel=3,
        )
    if filtered.dropped:
        log.info("%s: dropped %d weights that inference never reads: %s", path.name, len(filtered.dropped), ", ".join(filtered.dropped))
    model.init_non_persistent_buffers()
    return model
