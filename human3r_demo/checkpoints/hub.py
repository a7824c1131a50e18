"""The official weights on the HuggingFace hub: ``faneggg/human3r``, one ``.pth`` per variant.

Downloads go into the normal hub cache (``HF_HOME``), so a file fetched once, or copied there from a
connected machine, is found offline.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..config import variant_name
from .errors import CheckpointError

__all__ = ["HF_REPO", "download_checkpoint", "hub_offline", "weights_availability"]

HF_REPO = "faneggg/human3r"


def hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")


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
        f"or pass the path of a local copy; to try the interface without weights use 'tiny-random'."
    )
    try:
        return Path(hf_hub_download(HF_REPO, filename))
    except LocalEntryNotFoundError:
        reason = (
            "the hub is set offline (HF_HUB_OFFLINE) and the file is not in the local cache"
            if hub_offline()
            else "the hub could not be reached and the file is not in the local cache"
        )
        raise CheckpointError(f"cannot get the {variant} weights from {where}: {reason}. {advice}") from None
    except (RepositoryNotFoundError, GatedRepoError, EntryNotFoundError) as err:
        raise CheckpointError(f"cannot get the {variant} weights from {where}: {type(err).__name__}. {advice}") from None
    except OSError as err:  # network errors and a full disk are OSErrors
        raise CheckpointError(f"cannot get the {variant} weights from {where}: {err}. {advice}") from None


def weights_availability(variant: str) -> tuple[str, str]:
    """Whether the official ``variant``'s weights can be had, without downloading anything.

    Returns ``(state, message)``, ``state`` one of ``"ready"`` (in the hub cache), ``"download"``
    (not cached; the first load downloads it) and ``"unavailable"`` (offline and not cached).
    """
    variant = variant_name(variant) or variant
    from huggingface_hub import try_to_load_from_cache

    if isinstance(try_to_load_from_cache(HF_REPO, f"{variant}.pth"), str):
        return "ready", ""
    if hub_offline():
        return "unavailable", (
            f"the {variant} weights are not in the local HuggingFace cache and the hub is offline "
            f"(HF_HUB_OFFLINE), so this model cannot run here."
        )
    return "download", f"the {variant} weights (3-5 GB) will be downloaded from huggingface.co/{HF_REPO} on the first run."
