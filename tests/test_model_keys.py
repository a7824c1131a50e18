"""The model speaks the official checkpoint layout through one translation, and is a plain nn.Module."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from human3r_demo import Human3R, Human3RConfig, to_official_state_dict
from human3r_demo.checkpoints.official import UNUSED_AT_INFERENCE, checkpoint_filter_fn
from human3r_demo.checkpoints.random_init import tiny_random_config

# what the loader drops, per variant (docs/ARCHITECTURE.md 1.3): the ray-map encoder (2 blocks x 12 keys,
# patch embedding 2, norm 2), 5 masked tokens, DINOv2's mask token, init_cam, init_betas_kid, and
# refinenet4.resConfUnit1 (conv1/conv2 weight and bias) of the three DPT heads
DROPPED = 28 + 5 + 1 + 2 + 12


@pytest.mark.parametrize("variant", ["672S", "672B", "672L", "896L"])
def test_meta_model_has_the_manifest_keys_less_the_dropped_ones(variant: str, shared_dir: Path) -> None:
    manifest = json.loads((shared_dir / "reference" / f"manifest_{variant}.json").read_text())
    with torch.device("meta"):
        model = Human3R(Human3RConfig.from_variant(f"human3r_{variant}"))
    official = to_official_state_dict(model)
    expected = manifest["keys"]
    dropped = {k for k in expected if UNUSED_AT_INFERENCE.match(k)}
    assert len(dropped) == DROPPED
    assert set(official) == set(expected) - dropped
    assert {k: list(v.shape) for k, v in official.items()} == {k: expected[k]["shape"] for k in official}
    buffers = {k for k, v in expected.items() if v["kind"] == "buffer"} - dropped
    assert buffers == {k for k in official if k.startswith("downstream_head.init_")}
    dropped_params = sum(torch.Size(expected[k]["shape"]).numel() for k in dropped if expected[k]["kind"] != "buffer")
    assert model.num_parameters == manifest["total_params_unique"] - dropped_params
    if variant == "672S":
        assert model.num_parameters == 817_703_406  # 848,016,494 in the checkpoint
    # the DPT aliases are one tensor under two names
    for group in manifest["aliases"]:
        assert all(name in official for name in group)


def test_the_loader_filter_translates_once_and_reports(fixture_dir: Path) -> None:
    from safetensors.torch import load_file

    reference = load_file(str(fixture_dir / "tiny_state_dict.safetensors"))
    reference["some_future_head.weight"] = torch.zeros(3)
    filtered = checkpoint_filter_fn(reference)
    assert filtered.unknown == ["some_future_head.weight"]
    assert len(filtered.dropped) == DROPPED and all(UNUSED_AT_INFERENCE.match(k) for k in filtered.dropped)
    from human3r_demo.parity import Fixture

    model = Human3R(Fixture.open(fixture_dir).config)
    model.load_state_dict(filtered.state_dict, strict=True)  # every module weight present, nothing extra
    back = to_official_state_dict(model)
    assert set(back) == set(reference) - set(filtered.dropped) - {"some_future_head.weight"}
    assert all(torch.equal(back[k], reference[k]) for k in back)


def test_a_nested_model_round_trips_its_state_dict() -> None:
    torch.manual_seed(0)
    model = Human3R(tiny_random_config())
    wrapper = nn.Sequential(model)
    state = wrapper.state_dict()
    assert "0.encoder.patch_embed.proj.weight" in state
    assert set(state) == {f"0.{k}" for k, _ in model.named_parameters()} | {f"0.{k}" for k, _ in model.named_buffers() if "mhmr_" not in k}
    torch.manual_seed(1)
    other = nn.Sequential(Human3R(tiny_random_config()))
    other.load_state_dict(state)  # strict
    assert all(torch.equal(a, b) for a, b in zip(other.state_dict().values(), state.values()))


def test_model_is_called_like_any_module_and_hooks_fire() -> None:
    torch.manual_seed(0)
    model = Human3R(tiny_random_config()).eval()
    seen = []
    model.dense_heads.register_forward_hook(lambda m, i, o: seen.append(o.pts3d_self.shape))
    image = torch.rand(1, 3, 64, 112) * 2 - 1
    from human3r_demo.model.square_view import pad_to_square

    with torch.no_grad():
        first = model(image, pad_to_square(image, 224))
        second = model(image, pad_to_square(image, 224), first.state)
    assert seen == [(1, 64, 112, 3)] * 2
    assert first.state.fresh is False and second.gate is not None and first.gate is None
    assert model.device == torch.device("cpu") and model.dtype == torch.float32


def test_the_model_package_imports_neither_numpy_nor_pil_nor_the_preprocessing() -> None:
    import ast

    import human3r_demo.model as package

    for path in Path(package.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom):
                names = [("." * node.level) + (node.module or "")]
            for name in names:
                assert not name.startswith(("numpy", "PIL", "..preprocess", "..io")), (path.name, name)
