"""The module tree speaks the official checkpoint layout, key for key and shape for shape."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from human3r_demo import Human3R, Human3RConfig
from human3r_demo.model.checkpoint_keys import UNUSED_AT_INFERENCE, from_official_keys


@pytest.mark.parametrize("variant", ["672S", "672B", "672L", "896L"])
def test_meta_model_has_exactly_the_manifest_keys_and_shapes(variant: str, shared_dir: Path) -> None:
    manifest = json.loads((shared_dir / "reference" / f"manifest_{variant}.json").read_text())
    with torch.device("meta"):
        model = Human3R(Human3RConfig.from_variant(f"human3r_{variant}"))
    state = model.state_dict()
    expected = manifest["keys"]
    assert set(state) == set(expected)
    assert {k: list(v.shape) for k, v in state.items()} == {k: v["shape"] for k, v in expected.items()}
    buffers = {k for k, v in expected.items() if v["kind"] == "buffer"}
    assert buffers == {k for k in state if k.startswith("downstream_head.init_")}
    assert model.num_parameters == manifest["total_params_unique"]
    # aliases are one tensor under two names
    for group in manifest["aliases"]:
        assert len({state[name].untyped_storage().data_ptr() for name in group}) == 1 or all(
            state[name].is_meta for name in group
        )


def test_state_dict_round_trip_and_unused_key_list(fixture_dir: Path) -> None:
    from safetensors.torch import load_file

    reference = load_file(str(fixture_dir / "tiny_state_dict.safetensors"))
    model = Human3R(Human3RConfig.from_fixture(fixture_dir / "tiny_config.json"))
    result = model.load_state_dict(reference)
    assert not result.missing_keys and not result.unexpected_keys
    saved = model.state_dict()
    assert set(saved) == set(reference) and all(torch.equal(saved[k], reference[k]) for k in reference)
    unused = [k for k in reference if UNUSED_AT_INFERENCE.match(k)]
    # ray-map encoder (2 blocks x 12 + patch 2 + norm 2), 5 masked tokens, DINOv2 mask token,
    # init_cam, init_betas_kid, and refinenet4.resConfUnit1 of the three DPT heads (4 each)
    assert len(unused) == 28 + 5 + 1 + 2 + 12


def test_unknown_keys_are_reported_not_dropped(fixture_dir: Path) -> None:
    from safetensors.torch import load_file

    reference = load_file(str(fixture_dir / "tiny_state_dict.safetensors"))
    reference["some_future_head.weight"] = torch.zeros(3)
    _, unknown = from_official_keys(reference)
    assert unknown == ["some_future_head.weight"]
    model = Human3R(Human3RConfig.from_fixture(fixture_dir / "tiny_config.json"))
    with pytest.raises(RuntimeError, match="unexpected key.*some_future_head.weight"):
        model.load_state_dict(reference)
    assert model.load_state_dict(reference, strict=False).unexpected_keys == ["some_future_head.weight"]
