"""Everything about the official checkpoint format, in one package.

The official state dict (``manifest_*.json``) uses CUT3R's flat names (``enc_blocks.3``,
``dec_blocks_state.7``, ``downstream_head.decpose.mlp.layers.0``, ...); the modules here are named
after what they are (``encoder.blocks.3``, ``decoder.state_blocks.7``, ``smplx_head.pose_mlp.0``).
For that format:

* :mod:`.keys` - the prefix table between the two namings (applied once each way), the DPT alias
  keys, and the weights inference never reads;
* :mod:`.shapes` - the shapes that reveal a configuration, checked on every load;
* :mod:`.model_string` - the configuration read from a checkpoint's constructor string without
  evaluating it, and from the reference's keyword arguments.

Adapted from fanegg/Human3R@e313921 ``src/dust3r/model.py`` (``ARCroco3DStereoConfig``,
``load_model``, ``strip_module``); docs/ARCHITECTURE.md 1.
"""

from .keys import (
    KEY_PREFIXES,
    UNUSED_AT_INFERENCE,
    CheckpointKeyError,
    FilteredStateDict,
    checkpoint_filter_fn,
    is_alias,
    module_to_official,
    official_to_module,
    to_official_state_dict,
)
from .model_string import config_from_model_string, config_from_reference_fields, parse_model_string
from .shapes import check_shapes, expected_shapes, infer_config

__all__ = [
    "KEY_PREFIXES",
    "UNUSED_AT_INFERENCE",
    "CheckpointKeyError",
    "FilteredStateDict",
    "check_shapes",
    "checkpoint_filter_fn",
    "config_from_model_string",
    "config_from_reference_fields",
    "expected_shapes",
    "infer_config",
    "is_alias",
    "module_to_official",
    "official_to_module",
    "parse_model_string",
    "to_official_state_dict",
]
