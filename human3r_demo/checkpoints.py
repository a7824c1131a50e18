"""Finding, reading and caching Human3R weights.

* a variant name (``human3r_672S`` ...) is downloaded once from the HuggingFace repo
  ``faneggg/human3r`` into the normal hub cache;
* a ``.pth`` is an official *training* checkpoint (``model``, ``args``, ``epoch``...). It is read with
  ``torch.load(weights_only=True)``: tensors and plain containers only, with inert stand-ins for the
  configuration classes (OmegaConf, argparse) so the pickled ``args`` can be read without running
  anything from the file. Anything else referenced by the pickle is refused before loading.
* the model configuration comes from ``args.model`` through a restricted parser, checked against the
  tensor shapes;
* after a ``.pth`` has been read once, a converted ``.safetensors`` (with the configuration in its
  metadata, and a ``.json`` beside it) is written to the cache so the next load is a fast memory map.

Every failure becomes a :class:`CheckpointError` whose message says what to do.
"""

from __future__ import annotations

import _compat_pickle
import hashlib
import json
import os
import pickletools
import re
import warnings
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from .config import VARIANTS, ConfigError, Human3RConfig

if TYPE_CHECKING:
    from .model import Human3R

HF_REPO = "faneggg/human3r"
TINY_RANDOM = "tiny-random"
CACHE_ENV = "HUMAN3R_CACHE"
CONVERTED_FORMAT = "human3r_demo/1"

__all__ = [
    "CheckpointError",
    "HF_REPO",
    "LoadedCheckpoint",
    "TINY_RANDOM",
    "calibrate_random_model",
    "download_checkpoint",
    "read_checkpoint",
    "tiny_random_config",
    "weights_availability",
]


class CheckpointError(RuntimeError):
    """Weights that cannot be found, read or matched to a configuration; the message says why."""


@dataclass
class LoadedCheckpoint:
    """A state dict (official key names) with its configuration and where it came from."""

    state_dict: dict[str, Tensor]
    config: Human3RConfig
    source: str
    extra: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------------- download
def cache_dir() -> Path:
    """Where converted checkpoints go: ``$HUMAN3R_CACHE`` or ``~/.cache/human3r_demo``."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "human3r_demo")


def download_checkpoint(variant: str) -> Path:
    """Download (or find in the HuggingFace cache) the official ``<variant>.pth``; returns its path."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import (
        EntryNotFoundError,
        GatedRepoError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
    )

    filename = f"{variant}.pth"
    where = f"https://huggingface.co/{HF_REPO} ({filename})"
    advice = (
        f"Download it on a connected machine (`hf download {HF_REPO} {filename}`) and copy the hub cache, "
        f"or pass the path of a local copy; to try the interface without weights use '{TINY_RANDOM}'."
    )
    try:
        return Path(hf_hub_download(HF_REPO, filename))
    except LocalEntryNotFoundError:
        reason = (
            "the hub is set offline (HF_HUB_OFFLINE) and the file is not in the local cache"
            if _hub_offline()
            else "the hub could not be reached and the file is not in the local cache"
        )
        raise CheckpointError(f"cannot get the {variant} weights from {where}: {reason}. {advice}") from None
    except (RepositoryNotFoundError, GatedRepoError, EntryNotFoundError) as err:
        raise CheckpointError(f"cannot get the {variant} weights from {where}: {type(err).__name__}. {advice}") from None
    except OSError as err:  # network errors and a full disk are OSErrors
        raise CheckpointError(f"cannot get the {variant} weights from {where}: {err}. {advice}") from None


def _hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")


def _variant(name: str) -> str | None:
    key = name.removesuffix(".pth")
    if key in VARIANTS:
        return key
    return f"human3r_{key}" if f"human3r_{key}" in VARIANTS else None


def weights_availability(name: str) -> tuple[str, str]:
    """Whether ``load_model(name)`` can get its weights, without downloading anything.

    Returns ``(state, message)``, ``state`` one of ``"ready"`` (local file, cached, or tiny-random),
    ``"download"`` (not cached; the first load downloads it) and ``"unavailable"``.
    """
    if name == TINY_RANDOM or Path(name).is_file():
        return "ready", ""
    variant = _variant(name)
    if variant is None:
        return "unavailable", f"{name!r} is neither an official variant nor an existing file."
    from huggingface_hub import try_to_load_from_cache

    if isinstance(try_to_load_from_cache(HF_REPO, f"{variant}.pth"), str):
        return "ready", ""
    if _hub_offline():
        return "unavailable", (
            f"the {variant} weights are not in the local HuggingFace cache and the hub is offline "
            f"(HF_HUB_OFFLINE), so this model cannot run here."
        )
    return "download", f"the {variant} weights (3-5 GB) will be downloaded from huggingface.co/{HF_REPO} on the first run."


# ---------------------------------------------------------------------- safe unpickling
class _ConfigStandIn:
    """Inert stand-in for a pickled configuration object: it records its state and runs nothing."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.__dict__["_args"] = args

    def __setstate__(self, state: Any) -> None:
        self.__dict__["_state"] = state

    def __setitem__(self, key: Any, value: Any) -> None:  # SETITEMS on a dict subclass
        self.__dict__.setdefault("_items", {})[key] = value


# configuration classes a training checkpoint's ``args`` may reference (besides omegaconf.*)
_CONFIG_GLOBALS = {
    "argparse.Namespace",
    "typing.Any",
    "builtins.dict",
    "builtins.list",
    "builtins.tuple",
    "builtins.set",
    "builtins.int",
    "builtins.float",
    "builtins.str",
    "builtins.bool",
    "collections.defaultdict",
    "pathlib.PosixPath",
    "pathlib.WindowsPath",
    "pathlib.Path",
}
# what torch itself needs to rebuild tensors (allowed by weights_only=True already)
_TORCH_GLOBAL = re.compile(r"^(torch\.|collections\.OrderedDict$|_codecs\.encode$|numpy\.core\.multiarray\._reconstruct$)")


def _pickled_globals(path: Path) -> set[str]:
    """The ``module.name`` globals referenced by a zip-format torch checkpoint, without unpickling it."""
    with zipfile.ZipFile(path) as archive:
        pickles = [n for n in archive.namelist() if n.endswith("data.pkl")]
        if not pickles:
            raise CheckpointError(f"{path.name} is a zip file but not a PyTorch checkpoint (no data.pkl)")
        data = archive.read(pickles[0])
    found, strings, memo = set(), [], {}
    for op, arg, _ in pickletools.genops(data):
        if op.name == "GLOBAL":
            module, name = arg.split(" ", 1)
            # protocol-2 pickles use Python 2 names (__builtin__.long); map them as pickle does
            module, name = _compat_pickle.NAME_MAPPING.get((module, name), (module, name))
            found.add(f"{_compat_pickle.IMPORT_MAPPING.get(module, module)}.{name}")
        elif op.name in ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE", "BINUNICODE8"):
            strings.append(arg)
        elif op.name in ("MEMOIZE", "BINPUT", "LONG_BINPUT", "PUT") and strings:
            memo[arg if op.name != "MEMOIZE" else len(memo)] = strings[-1]
        elif op.name in ("BINGET", "LONG_BINGET", "GET") and arg in memo:
            strings.append(memo[arg])
        elif op.name == "STACK_GLOBAL" and len(strings) >= 2:
            found.add(f"{strings[-2]}.{strings[-1]}")
    return found


def _safe_load(path: Path) -> Any:
    """``torch.load(weights_only=True)`` with stand-ins for configuration classes; refuses the rest."""
    globals_: set[str] = set()
    if zipfile.is_zipfile(path):
        try:
            globals_ = _pickled_globals(path)
        except (zipfile.BadZipFile, EOFError, ValueError) as err:
            raise CheckpointError(f"{path.name} is damaged ({err}); download it again") from None
    forbidden = sorted(
        g for g in globals_ if not (_TORCH_GLOBAL.match(g) or g in _CONFIG_GLOBALS or g.startswith("omegaconf."))
    )
    if forbidden:
        raise CheckpointError(
            f"refusing to load {path.name}: it references {', '.join(forbidden[:5])}, which is neither a tensor "
            f"nor a known configuration class. Nothing from the file was executed. If you trust its origin, "
            f"convert it to safetensors on a machine where that code is installed."
        )
    stand_ins = [(type(g.rsplit(".", 1)[1], (_ConfigStandIn,), {}), g) for g in globals_ if not _TORCH_GLOBAL.match(g)]
    for name in _CONFIG_GLOBALS:
        if name not in globals_:
            stand_ins.append((type(name.rsplit(".", 1)[1], (_ConfigStandIn,), {}), name))
    try:
        with torch.serialization.safe_globals(stand_ins):
            return torch.load(path, map_location="cpu", weights_only=True, mmap=zipfile.is_zipfile(path))
    except Exception as err:  # torch raises several types for damaged or foreign files
        text = str(err)
        unsupported = re.search(r"Unsupported global: GLOBAL ([\w.]+)", text)
        if unsupported:
            raise CheckpointError(
                f"refusing to load {path.name}: it references {unsupported.group(1)}, which is neither a tensor nor "
                f"a known configuration class. Nothing from the file was executed."
            ) from None
        if "central directory" in text or "zip archive" in text or isinstance(err, (EOFError, zipfile.BadZipFile)):
            raise CheckpointError(f"{path.name} is truncated or damaged ({text.splitlines()[0]}); download it again") from None
        raise CheckpointError(f"{path.name} is not a readable PyTorch checkpoint ({type(err).__name__}: {text.splitlines()[0] if text else ''})") from None


def _plain(obj: Any) -> Any:
    """Turn stand-ins (OmegaConf nodes, Namespace) into plain dicts, lists and values."""
    if isinstance(obj, _ConfigStandIn):
        state = obj.__dict__.get("_state")
        if isinstance(state, dict):
            if "_content" in state:
                return _plain(state["_content"])
            if "_val" in state:
                return _plain(state["_val"])
            return {k: _plain(v) for k, v in state.items() if not k.startswith("_")}
        if obj.__dict__.get("_items"):
            return {k: _plain(v) for k, v in obj.__dict__["_items"].items()}
        return None
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj


def _model_string(args: Any) -> str | None:
    plain = _plain(args)
    if isinstance(plain, dict) and isinstance(plain.get("model"), str):
        return plain["model"]
    return None


# ---------------------------------------------------------------------- reading
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

    cached = _converted_path(path)
    if config is None and cached.is_file():
        try:
            return _read_safetensors(cached, None, source=str(path))
        except CheckpointError as err:
            warnings.warn(f"ignoring a damaged converted cache {cached} ({err})", stacklevel=2)

    ckpt = _safe_load(path)
    if isinstance(ckpt, Mapping) and "model" in ckpt and isinstance(ckpt["model"], Mapping):
        state_dict, args = dict(ckpt["model"]), ckpt.get("args")
        extra = {k: _plain(v) for k, v in ckpt.items() if k in ("epoch", "best_so_far")}
    elif isinstance(ckpt, Mapping) and ckpt and all(isinstance(v, Tensor) for v in ckpt.values()):
        state_dict, args, extra = dict(ckpt), None, {}
    else:
        raise CheckpointError(f"{path.name} holds no model weights (expected a dict with a 'model' state dict)")
    if state_dict and all(k.startswith("module.") for k in state_dict):
        state_dict = {k[len("module."):]: v for k, v in state_dict.items()}

    if config is None:
        text = _model_string(args)
        if text is not None:
            try:
                config = Human3RConfig.from_model_string(text)
            except ConfigError as err:
                raise CheckpointError(f"{path.name}: cannot read the model configuration in args.model: {err}") from None
            extra["model_string"] = text
        else:
            config = infer_config(state_dict, path.name)
    _check(config, state_dict, path.name)
    loaded = LoadedCheckpoint(state_dict, config, str(path), extra)
    _write_converted(loaded, cached)
    return loaded


def _read_safetensors(path: Path, config: Human3RConfig | None, source: str | None = None) -> LoadedCheckpoint:
    from safetensors import SafetensorError, safe_open
    from safetensors.torch import load_file

    try:
        with safe_open(str(path), "pt") as f:
            metadata = f.metadata() or {}
        state_dict = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(f"{path.name} is not a readable safetensors file ({err})") from None
    extra: dict[str, Any] = {}
    if config is None:
        config_text = metadata.get("config")
        sidecar = path.with_suffix(".json")
        if config_text is None and sidecar.is_file():
            config_text = sidecar.read_text()
        if config_text is not None:
            try:
                config = Human3RConfig.from_dict(json.loads(config_text))
            except (ConfigError, TypeError, ValueError) as err:
                raise CheckpointError(f"{path.name}: its stored configuration is invalid ({err})") from None
        else:
            config = infer_config(state_dict, path.name)
    if metadata.get("model_string"):
        extra["model_string"] = metadata["model_string"]
    _check(config, state_dict, path.name)
    return LoadedCheckpoint(state_dict, config, source or str(path), extra)


def _check(config: Human3RConfig, state_dict: Mapping[str, Tensor], name: str) -> None:
    shapes = {k: tuple(v.shape) for k, v in state_dict.items()}
    try:
        config.check_shapes(shapes, source=name)
    except ConfigError as err:
        raise CheckpointError(str(err)) from None


def infer_config(state_dict: Mapping[str, Tensor], filename: str = "") -> Human3RConfig:
    """Configuration of an official-sized checkpoint from its tensor shapes and its file name.

    Head counts and the Multi-HMR resolution are not visible in the weights; the official values are
    assumed, and the resolution is read from the file name (``..._672...`` / ``..._896...``).
    """
    res = re.search(r"(672|896)", filename)
    try:
        bb = state_dict["backbone.encoder.patch_embed.proj.weight"].shape[0]
    except KeyError:
        raise CheckpointError(f"{filename}: not a Human3R checkpoint (no DINOv2 backbone weights)") from None
    backbone = {384: "dinov2_vits14", 768: "dinov2_vitb14", 1024: "dinov2_vitl14"}.get(bb)
    if backbone is None or res is None:
        raise CheckpointError(
            f"{filename} carries no configuration and its sizes are not an official variant's; "
            f"pass config=Human3RConfig(...) to load_model"
        )
    match = [v for v, (b, r) in VARIANTS.items() if b == backbone and r == int(res.group(1))]
    if not match:
        raise CheckpointError(f"{filename}: no official variant has {backbone} at {res.group(1)} px")
    return Human3RConfig.from_variant(match[0])


# ---------------------------------------------------------------------- converted cache
def _converted_path(path: Path) -> Path:
    """Cache file for a checkpoint, keyed by its resolved location, size and modification time."""
    real = path.resolve()
    stat = real.stat()
    key = hashlib.sha256(f"{real}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:16]
    return cache_dir() / "converted" / f"{path.stem}-{key}.safetensors"


def _write_converted(loaded: LoadedCheckpoint, target: Path) -> None:
    from safetensors.torch import save_file

    unique: dict[str, Tensor] = {}
    seen: set[tuple[int, int]] = set()
    for key, tensor in loaded.state_dict.items():
        ident = (tensor.untyped_storage().data_ptr(), tensor.storage_offset())
        if ident in seen or re.search(r"\.scratch\.layer\d_rn\.weight$", key):
            continue  # an alias of a tensor already written; restored on load
        seen.add(ident)
        unique[key] = tensor.contiguous()
    config_json = json.dumps(loaded.config.to_dict())
    metadata = {"format": CONVERTED_FORMAT, "config": config_json, "source": loaded.source}
    if "model_string" in loaded.extra:
        metadata["model_string"] = loaded.extra["model_string"]
    tmp = target.with_suffix(".tmp")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        save_file(unique, str(tmp), metadata=metadata)
        tmp.replace(target)
        target.with_suffix(".json").write_text(json.dumps(loaded.config.to_dict(), indent=1))
    except OSError as err:
        tmp.unlink(missing_ok=True)
        warnings.warn(f"could not write the converted cache {target} ({err}); the next load will be slow", stacklevel=3)


# ---------------------------------------------------------------------- tiny random model
def tiny_random_config() -> Human3RConfig:
    """A small configuration with every module of the official one, for offline smoke runs."""
    from .config import DINOv2Config, DPTConfig

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
        backbone="dinov2_vits14",
        dinov2=DINOv2Config(embed_dim=32, depth=2, num_heads=2, img_size=70),
        mhmr_img_res=224,
        dpt=DPTConfig(feature_dim=32, last_dim=16, layer_dims=(16, 24, 32, 48)),
    )


# ---------------------------------------------------------------------- the public loader
def load_model(
    name_or_path: str | os.PathLike = "human3r_672S",
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
    *,
    config: Human3RConfig | None = None,
    seed: int = 0,
) -> Human3R:
    """Load Human3R weights and return the model in eval mode.

    Args:
        name_or_path: an official variant (``human3r_672S``, ``human3r_672B``, ``human3r_672L``,
            ``human3r_896L``; downloaded from ``faneggg/human3r`` on first use), a local ``.pth`` or
            ``.safetensors`` file, or ``"tiny-random"`` (a small untrained model for offline smoke runs:
            its geometry is meaningless).
        device: where to run (default: CUDA if available, else CPU).
        dtype: weight and compute dtype (default float32).
        config: override the configuration read from the file (checked against its shapes).
        seed: random seed of ``tiny-random``.

    Returns:
        :class:`~human3r_demo.model.Human3R`; ``model.checkpoint_name`` says what was loaded and
        ``model.is_random`` is True for untrained weights.
    """
    from .model import Human3R

    device = torch.device(device) if device is not None else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    name = str(name_or_path)
    if name == TINY_RANDOM:
        warnings.warn(
            "tiny-random: an untrained model with random weights. Its geometry, people and cameras are "
            "meaningless; use it only to try the pipeline.",
            stacklevel=2,
        )
        torch.manual_seed(seed)
        model = Human3R(config or tiny_random_config())
        calibrate_random_model(model)
        model.is_random, model.checkpoint_name = True, TINY_RANDOM
        return model.eval().to(device=device, dtype=dtype or torch.float32)

    variant = _variant(name)
    if variant is not None and not Path(name).exists():
        path = download_checkpoint(variant)
    elif Path(name).exists():
        path = Path(name)
    else:
        raise CheckpointError(
            f"{name!r} is neither an official variant ({', '.join(VARIANTS)}), nor an existing file, nor '{TINY_RANDOM}'"
        )
    loaded = read_checkpoint(path, config)
    with torch.device("meta"):
        model = Human3R(loaded.config)
    result = model.load_state_dict(loaded.state_dict, strict=False, assign=True)
    missing = [k for k in result.missing_keys]
    if missing:
        raise CheckpointError(
            f"{path.name} lacks {len(missing)} weight(s) the model needs, e.g. {', '.join(missing[:5])}"
        )
    if result.unexpected_keys:
        warnings.warn(
            f"{path.name}: ignored {len(result.unexpected_keys)} entries this model does not have: "
            f"{', '.join(result.unexpected_keys[:8])}{' ...' if len(result.unexpected_keys) > 8 else ''}",
            stacklevel=2,
        )
    model.is_random, model.checkpoint_name = False, variant or path.name
    return model.eval().to(device=device, dtype=dtype or torch.float32)


def calibrate_random_model(model: Human3R, target_people: int = 2) -> None:
    """Give the untrained smoke model well-formed (still meaningless) outputs.

    Untrained, every DINOv2 token scores about the same, so a frame would show either nobody or
    dozens of people; the detector's bias is set so that a fixed synthetic image shows about
    ``target_people``, and the mask's so that about a tenth of it reads as people. The dense heads' output biases put points a few metres in front of the camera
    with confidences around 2, so viewers and exports have something to show. Reproducible: no
    randomness beyond the seed.
    """
    from .preprocess import mhmr_normalize, pad_to_square

    g = torch.Generator().manual_seed(1)
    image = pad_to_square(torch.rand(1, 3, 288, 512, generator=g) * 2 - 1, model.config.mhmr_img_res)
    with torch.no_grad():
        tokens = model.human_encoder(mhmr_normalize(image))
        score_layer = model.human_detector.score_mlp
        logits = score_layer(tokens)[0, :, 0] - score_layer[2].bias
        grid = model.config.mhmr_grid
        peaks = logits.reshape(1, 1, grid, grid)
        is_peak = torch.nn.functional.max_pool2d(peaks, 3, stride=1, padding=1) == peaks
        candidates = peaks[is_peak].sort(descending=True).values
        k = min(target_people, len(candidates) - 1)
        # a logit halfway between the k-th and (k+1)-th local maxima maps to the 0.3 threshold
        threshold_logit = torch.logit(torch.tensor(0.3))
        score_layer[2].bias.fill_(float(threshold_logit - (candidates[k - 1] + candidates[k]) / 2))
        # about a tenth of the pixels read as people (the mask threshold is 0.1)
        mask_layer = model.human_detector.mask_mlp
        mask_logits = mask_layer(tokens) - mask_layer[2].bias
        mask_layer[2].bias.fill_(float(torch.logit(torch.tensor(0.1)) - mask_logits.quantile(0.9)))
        for dpt in (model.heads.dpt_self, model.heads.dpt_cross):
            dpt.head[-1].bias.copy_(torch.tensor([0.0, 0.0, 1.4, 0.5]))  # xyz ~ 3 m ahead, conf ~ 2.6
