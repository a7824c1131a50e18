"""Loading weights: training-format .pth files, safetensors, the hub, and every way that can fail."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import human3r_demo as h3r
from human3r_demo.checkpoints import CheckpointError, read_checkpoint, to_official_state_dict
from human3r_demo.checkpoints.official import config_from_model_string, parse_model_string
from human3r_demo.config import Human3RConfig

REPO = Path(__file__).resolve().parent.parent

# The official constructor string (manifest_672S.json) with the CUT3R sizes shrunk; DINOv2 and DPT
# sizes are implied by `backbone` and fixed, as in the reference.
TINY_MODEL_STRING = (
    "ARCroco3DStereo(ARCroco3DStereoConfig(freeze='encoder_and_decoder_and_head',state_size=30,state_pe='2d',"
    "pos_embed='RoPE100',rgb_head=True,pose_head=True,msk_head=True,patch_embed_cls='PatchEmbedDust3R',"
    "img_size=(512,512),head_type='dpt',output_mode='pts3d+pose+smpl',depth_mode=('exp',-inf,inf),"
    "conf_mode=('exp',1,inf),pose_mode=('exp',-inf,inf),enc_embed_dim=48,enc_depth=2,enc_num_heads=2,"
    "dec_embed_dim=32,dec_depth=4,dec_num_heads=2,landscape_only=False,backbone='dinov2_vits14',"
    "mhmr_img_res=126,state_dec_num_heads=4,local_mem_size=8))"
)


def tiny_official_model() -> h3r.Human3R:
    torch.manual_seed(0)
    return h3r.Human3R(config_from_model_string(TINY_MODEL_STRING)).eval()


@pytest.fixture(scope="module")
def training_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A checkpoint in the official training format: model, pickled OmegaConf args, epoch, best_so_far."""
    from omegaconf import OmegaConf

    model = tiny_official_model()
    args = OmegaConf.create(
        {
            "model": TINY_MODEL_STRING,
            "pretrained": "checkpoints/cut3r_512_dpt_4_64.pth",
            "lr": 1e-5,
            "train_dataset": "10000 @ BEDLAM_Multi(split='train', ...)",
            "data": {"resolution": [[512, 384], [512, 336]], "num_views": 4},
        }
    )
    path = tmp_path_factory.mktemp("ckpt") / "human3r_tiny.pth"
    torch.save({"model": to_official_state_dict(model), "args": args, "epoch": 7, "best_so_far": 0.25}, path)
    return path


def test_training_checkpoint_loads_without_omegaconf_code(training_checkpoint: Path) -> None:
    loaded = read_checkpoint(training_checkpoint)
    assert loaded.config == config_from_model_string(TINY_MODEL_STRING)
    assert loaded.extra["epoch"] == 7 and loaded.extra["model_string"] == TINY_MODEL_STRING
    # the loader never imported omegaconf (the config classes were inert stand-ins)
    code = f"import sys, human3r_demo.checkpoints as c; c.read_checkpoint({str(training_checkpoint)!r}, None); print('omegaconf' in sys.modules)"
    env = dict(os.environ, HUMAN3R_CACHE=str(training_checkpoint.parent / "fresh_cache"))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_load_model_from_pth_matches_the_saved_weights_and_runs(training_checkpoint: Path) -> None:
    model = h3r.load_model(training_checkpoint, device="cpu", precision="fp32")
    assert model.is_random is False and model.checkpoint_name == "human3r_tiny.pth"
    reference = tiny_official_model().state_dict()
    loaded = model.state_dict()
    assert set(loaded) == set(reference)
    assert all(torch.equal(loaded[k], reference[k]) for k in reference)
    image = torch.rand(1, 3, 64, 112) * 2 - 1
    out = model(image, torch.nn.functional.pad(image, (7, 7, 31, 31), value=-1)[..., :126, :126])
    assert out.dense_heads.pts3d_self.shape == (1, 64, 112, 3) and not out.state.fresh


def test_second_load_uses_the_converted_safetensors_cache(training_checkpoint: Path) -> None:
    read_checkpoint(training_checkpoint)
    cache = Path(os.environ["HUMAN3R_CACHE"]) / "converted"
    converted = sorted(cache.glob("human3r_tiny-*.safetensors"))
    assert converted, "no converted cache was written"
    sidecar = converted[0].with_suffix(".json")
    assert Human3RConfig.from_dict(json.loads(sidecar.read_text())) == config_from_model_string(TINY_MODEL_STRING)
    again = read_checkpoint(training_checkpoint)
    assert again.source == str(training_checkpoint) and again.extra["model_string"] == TINY_MODEL_STRING
    # the cached copy drops the DPT alias keys; the model restores them
    model = h3r.load_model(converted[0], device="cpu", precision="fp32")
    assert set(to_official_state_dict(model)) == set(to_official_state_dict(tiny_official_model()))


def test_a_malicious_pickle_is_refused_without_running_it(tmp_path: Path) -> None:
    sentinel = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {sentinel}",))

    path = tmp_path / "evil.pth"
    torch.save({"model": {"w": torch.zeros(1)}, "args": Payload()}, path)
    with pytest.raises(CheckpointError, match=r"refusing to load evil\.pth: it references posix\.system") as err:
        read_checkpoint(path)
    assert "Nothing from the file was executed" in str(err.value)
    assert not sentinel.exists()


def test_a_truncated_checkpoint_is_a_clear_error(training_checkpoint: Path, tmp_path: Path) -> None:
    data = training_checkpoint.read_bytes()
    path = tmp_path / "human3r_cut.pth"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"human3r_cut\.pth is (truncated or damaged|damaged)"):
        read_checkpoint(path)


def test_a_file_of_the_wrong_type_is_a_clear_error(tmp_path: Path) -> None:
    png = tmp_path / "photo.pth"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 64)
    with pytest.raises(CheckpointError, match=r"photo\.pth is not a (readable )?PyTorch checkpoint"):
        read_checkpoint(png)
    text = tmp_path / "weights.onnx"
    text.write_text("not weights")
    with pytest.raises(CheckpointError, match=r"unknown checkpoint type '\.onnx'"):
        read_checkpoint(text)
    empty = tmp_path / "empty.safetensors"
    empty.write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty"):
        read_checkpoint(empty)
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}")
    with pytest.raises(CheckpointError, match=r"bad\.safetensors is not a readable safetensors file"):
        read_checkpoint(bad)


def test_a_shape_mismatch_names_the_tensor(tmp_path: Path) -> None:
    from omegaconf import OmegaConf

    model = tiny_official_model()
    wrong = TINY_MODEL_STRING.replace("state_size=30", "state_size=31")
    path = tmp_path / "mismatch.pth"
    torch.save({"model": to_official_state_dict(model), "args": OmegaConf.create({"model": wrong}), "epoch": 0}, path)
    with pytest.raises(CheckpointError, match=r"register_tokens\.weight: shape \[30, 48\], configuration expects \[31, 48\]"):
        read_checkpoint(path)


def test_missing_file_and_unknown_name(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="no such checkpoint file"):
        read_checkpoint(tmp_path / "nope.pth")
    with pytest.raises(CheckpointError, match="neither an official variant"):
        h3r.load_model("human3r_999X")


def test_offline_hub_without_cache_is_a_clear_error(tmp_path: Path) -> None:
    code = "import human3r_demo as h; h.load_model('human3r_672S')"
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "hf"), HUMAN3R_CACHE=str(tmp_path / "c"))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, env=env, timeout=120)
    assert out.returncode != 0
    assert "CheckpointError: cannot get the human3r_672S weights from https://huggingface.co/faneggg/human3r" in out.stderr
    assert "offline (HF_HUB_OFFLINE) and the file is not in the local cache" in out.stderr
    assert "tiny-random" in out.stderr


def test_a_cached_hub_file_is_found_offline(tmp_path: Path, training_checkpoint: Path) -> None:
    """The normal HF cache layout is honoured: a file placed there loads with the hub offline."""
    code = (
        "import huggingface_hub, human3r_demo.checkpoints.hub as c\n"
        "p = c.download_checkpoint('human3r_672S'); print(p)"
    )
    hub = tmp_path / "hf" / "hub" / "models--faneggg--human3r"
    (hub / "refs").mkdir(parents=True)
    (hub / "refs" / "main").write_text("0" * 40)
    snapshot = hub / "snapshots" / ("0" * 40)
    snapshot.mkdir(parents=True)
    (snapshot / "human3r_672S.pth").write_bytes(training_checkpoint.read_bytes())
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "hf"))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("human3r_672S.pth")


def test_tiny_random_says_it_is_random() -> None:
    with pytest.warns(UserWarning, match="random weights.*meaningless"):
        model = h3r.load_model("tiny-random", device="cpu")
    assert model.is_random and model.checkpoint_name == "tiny-random"


def test_official_model_strings_parse_to_the_variant_configs(shared_dir: Path) -> None:
    for variant in ("672S", "672B", "672L", "896L"):
        manifest = json.loads((shared_dir / "reference" / f"manifest_{variant}.json").read_text())
        config = config_from_model_string(manifest["model_string"])
        assert config == Human3RConfig.from_variant(f"human3r_{variant}")
        assert parse_model_string(manifest["model_string"])["depth_mode"] == ("exp", float("-inf"), float("inf"))


def test_model_string_parser_never_evaluates() -> None:
    for evil in (
        "ARCroco3DStereo(ARCroco3DStereoConfig(state_size=__import__('os').system('true')))",
        "ARCroco3DStereo(ARCroco3DStereoConfig(backbone=open('/etc/passwd').read()))",
        "ARCroco3DStereo(ARCroco3DStereoConfig(state_size=x.y))",
    ):
        with pytest.raises(h3r.ConfigError, match="not a literal"):
            parse_model_string(evil)
    with pytest.raises(h3r.ConfigError, match="output_mode='naive' is not implemented here"):
        config_from_model_string("A(C(output_mode='naive'))")
