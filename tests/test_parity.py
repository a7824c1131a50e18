"""Parity with the reference (shipped fixtures) and generality of the parity tool."""

from __future__ import annotations

import io
import json
import shutil
from contextlib import redirect_stdout
from pathlib import Path

import numpy as np
import pytest
from safetensors.torch import load_file, save_file

from human3r_demo import parity
from tests.conftest import synthetic_clip
from tests.fixture_writer import write_fixture


def run_parity(fixture: Path, smplx: Path | None = None) -> tuple[int, str]:
    buffer = io.StringIO()
    args = [str(fixture)] + (["--smplx", str(smplx)] if smplx else [])
    with redirect_stdout(buffer):
        code = parity.main(args)
    return code, buffer.getvalue()


def test_shipped_fixture_passes_at_1e5(fixture_dir: Path) -> None:
    code, text = run_parity(fixture_dir)
    assert code == 0, text
    assert "PARITY OK" in text
    # the encoder reproduces the reference bit for bit: nothing needed the float16 allowance
    assert "0 element(s) needed the float16-encoder tolerance" in text
    rows = {line.split()[0]: line for line in text.splitlines() if line and not line.startswith((" ", "tensor", "fixture"))}
    for name in ("enc.tokens", "dec.state_layer4", "out.smpl_rotmat", "frame.world_verts", "frame.intrinsics",
                 "tracking.smpl_id", "tf.dec.img_layer4", "frame.smpl_id", "out.smpl_id"):
        assert name in rows and rows[name].rstrip().split()[5] == "ok", (name, rows.get(name))
    assert rows["enc.tokens"].split()[1] == "0"  # bit-exact


def test_a_perturbed_fixture_fails(fixture_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "fixture"
    shutil.copytree(fixture_dir, copy)
    outputs = load_file(str(copy / "tiny_outputs.safetensors"))
    outputs["view05.out.camera_pose"] = outputs["view05.out.camera_pose"] + 1e-4
    save_file(outputs, str(copy / "tiny_outputs.safetensors"))
    code, text = run_parity(copy)
    assert code == 1
    assert "PARITY FAILED" in text and "out.camera_pose" in text.split("PARITY FAILED")[1]


def test_a_missing_tensor_fails(fixture_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "fixture"
    shutil.copytree(fixture_dir, copy)
    outputs = load_file(str(copy / "tiny_outputs.safetensors"))
    outputs["view01.out.not_a_real_output"] = outputs["view01.out.camera_pose"].clone()
    save_file(outputs, str(copy / "tiny_outputs.safetensors"))
    code, text = run_parity(copy)
    assert code == 1 and "out.not_a_real_output" in text


TINY = {
    "output_mode": "pts3d+pose+smpl", "head_type": "dpt", "depth_mode": ["exp", "-inf", "inf"],
    "conf_mode": ["exp", 1, "inf"], "pose_mode": ["exp", "-inf", "inf"], "landscape_only": False,
    "state_pe": "2d", "pose_head": True, "rgb_head": True, "msk_head": True, "depth_head": False,
    "pose_conf_head": False, "backbone": "dinov2_vits14", "patch_size": 16, "pos_embed": "RoPE100",
}


@pytest.mark.parametrize(
    "case",
    [
        # portrait frames, no TTT3R, no resets, odd token grid, another DINOv2/DPT size
        dict(size=144, reset_interval=None, use_ttt3r=False, frame_hw=(150, 90), mhmr_img_res=98,
             dims=dict(enc_embed_dim=32, enc_depth=3, enc_num_heads=2, dec_embed_dim=24, dec_depth=5,
                       dec_num_heads=2, state_dec_num_heads=3, state_size=21, local_mem_size=5),
             dinov2=dict(embed_dim=16, depth=1, num_heads=2, img_size=56), dpt=dict(feature_dim=10, last_dim=6, layer_dims=[4, 6, 8, 10])),
        # the reference's square size-224 branch, resets every 2 frames
        dict(size=224, reset_interval=2, use_ttt3r=True, frame_hw=(120, 200), mhmr_img_res=112,
             dims=dict(enc_embed_dim=48, enc_depth=1, enc_num_heads=3, dec_embed_dim=32, dec_depth=4,
                       dec_num_heads=2, state_dec_num_heads=2, state_size=17, local_mem_size=3),
             dinov2=dict(embed_dim=24, depth=2, num_heads=3, img_size=70), dpt=dict(feature_dim=16, last_dim=8, layer_dims=[8, 12, 16, 24])),
    ],
    ids=["portrait-no-ttt3r", "size224-resets"],
)
def test_parity_tool_reads_sizes_and_options_from_the_files(case: dict, smplx_dir: Path, tmp_path: Path) -> None:
    h, w = case["frame_hw"]
    frames = synthetic_clip(5, h, w, seed=3)
    fields = dict(TINY, mhmr_img_res=case["mhmr_img_res"], **case["dims"])
    dinov2 = dict(patch_size=14, mlp_ratio=4, init_values=1.0, ffn_layer="mlp", block_chunks=0,
                  num_register_tokens=0, interpolate_antialias=False, interpolate_offset=0.1, **case["dinov2"])
    fixture = write_fixture(tmp_path / "fx", fields, frames, size=case["size"], reset_interval=case["reset_interval"],
                            use_ttt3r=case["use_ttt3r"], smplx_path=smplx_dir, dinov2_override=dinov2, dpt_override=case["dpt"])
    code, text = run_parity(fixture, smplx_dir)
    assert code == 0, text
    meta = json.loads((fixture / "tiny_meta.json").read_text())
    outputs = load_file(str(fixture / "tiny_outputs.safetensors"))
    L = case["dims"]["dec_depth"]
    assert f"dec.img_layer{L}" in text and ("dec.cross_attn_logits" in text) == case["use_ttt3r"]
    expected_views = len(frames) + (len(frames) // case["reset_interval"] if case["reset_interval"] else 0)
    assert len(meta["views"]) == expected_views
    assert f"view{expected_views - 1:02d}.out.camera_pose" in outputs
    assert np.load(fixture / "tiny_clip.npz")["preprocessed_frames"].shape[1:3] == (
        (224, 224) if case["size"] == 224 else (144, 80)
    )
