"""The converted-checkpoint cache: a ``.pth`` read once is kept as ``.safetensors`` + JSON config.

Safetensors files are memory-mapped, so the second load of a 3-5 GB checkpoint takes seconds and
no unpickling at all. Cache entries are keyed by the source file's resolved path, size and
modification time; the official key names are kept (the cache is a faithful copy, minus the DPT
alias keys, which the loader restores).
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path

from torch import Tensor

from ..config import Human3RConfig
from .official import is_alias

__all__ = ["CONVERTED_FORMAT", "cache_dir", "converted_path", "write_converted"]

CACHE_ENV = "HUMAN3R_CACHE"
# written into each converted file; files of another format are ignored (read from the .pth again)
CONVERTED_FORMAT = "human3r_demo/2"


def cache_dir() -> Path:
    """Where converted checkpoints go: ``$HUMAN3R_CACHE`` or ``~/.cache/human3r_demo``."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "human3r_demo")


def converted_path(path: Path) -> Path:
    """Cache file for a checkpoint, keyed by its resolved location, size and modification time."""
    real = path.resolve()
    stat = real.stat()
    key = hashlib.sha256(f"{real}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:16]
    return cache_dir() / "converted" / f"{path.stem}-{key}.safetensors"


def write_converted(state_dict: dict[str, Tensor], config: Human3RConfig, source: str, model_string: str | None, target: Path) -> None:
    """Write an official-layout state dict and its configuration to ``target``; never fails the load."""
    from safetensors.torch import save_file

    unique: dict[str, Tensor] = {}
    seen: set[tuple[int, int]] = set()
    for key, tensor in state_dict.items():
        ident = (tensor.untyped_storage().data_ptr(), tensor.storage_offset())
        if ident in seen or is_alias(key):
            continue  # an alias of a tensor already written; restored on load
        seen.add(ident)
        unique[key] = tensor.contiguous()
    config_json = json.dumps(config.to_dict())
    metadata = {"format": CONVERTED_FORMAT, "config": config_json, "source": source}
    if model_string is not None:
        metadata["model_string"] = model_string
    tmp = target.with_suffix(".tmp")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        save_file(unique, str(tmp), metadata=metadata)
        tmp.replace(target)
        target.with_suffix(".json").write_text(json.dumps(config.to_dict(), indent=1))
    except OSError as err:
        tmp.unlink(missing_ok=True)
        warnings.warn(f"could not write the converted cache {target} ({err}); the next load will be slow", stacklevel=3)
