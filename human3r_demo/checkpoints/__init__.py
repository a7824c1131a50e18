"""Finding, reading and caching Human3R weights; the official checkpoint format; untrained models.

Every failure is a :class:`CheckpointError` whose message says what to do.
"""

from .errors import CheckpointError
from .hub import HF_REPO
from .loader import LoadedCheckpoint, availability, load_model, read_checkpoint
from .official import checkpoint_filter_fn, to_official_state_dict
from .random_init import RANDOM_PREFIX, TINY_RANDOM

__all__ = [
    "CheckpointError",
    "HF_REPO",
    "LoadedCheckpoint",
    "RANDOM_PREFIX",
    "TINY_RANDOM",
    "availability",
    "checkpoint_filter_fn",
    "load_model",
    "read_checkpoint",
    "to_official_state_dict",
]
