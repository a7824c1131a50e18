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

from human3r_demo import ConfigError, parity
from human3r_demo.checkpoints.official import config_from_reference_fields
from tests.conftest import synthetic_clip
from tests.fixture_writer import write_fixture


def test_shipped_fixture_passes_at_1e5(fixture_dir: Path) -> None:
    cmp = parity.run(fixture_dir)
    failed = {name: row.failures[:2] for name, row in cmp.rows.items() if not row.ok}
    assert cmp.ok, failed
    assert len(cmp.rows) == 118
    # the encoder reproduces the reference bit for bit: nothing needed the float16 allowance
    assert cmp.wide_elements == 0 and cmp.rows["enc.tokens"].max_abs == 0
    for name in ("enc.tokens", "dec.state_layer4", "out.smpl_rotmat", "frame.world_verts", "frame.intrinsics",
                 "tracking.smpl_id", "tf.dec.img_layer4", "frame.smpl_id", "out.smpl_id", "dec.ttt3r_gate_recomputed"):
        row = cmp.rows[name]
        assert row.ok and row.compared > 0, name
        assert row.worst_ratio < 0.5, (name, row.worst_ratio)  # comfortably inside 1e-5
    assert cmp.rows["out.smpl_id"].tolerance == "exact"


def test_the_command_line_prints_every_row_and_exits_zero(fixture_dir: Path) -> None:
    from human3r_demo.parity.__main__ import main

    buffer = io.StringIO()
    with redirect_stdout(buffer):
        code = main([str(fixture_dir)])
    assert code == 0 and "PARITY OK" in buffer.getvalue() and "118 tensors compared" in buffer.getvalue()


def test_a_perturbed_fixture_fails(fixture_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "fixture"
    shutil.copytree(fixture_dir, copy)
    outputs = load_file(str(copy / "tiny_outputs.safetensors"))
    outputs["view05.out.camera_pose"] = outputs["view05.out.camera_pose"] + 1e-3
    save_file(outputs, str(copy / "tiny_outputs.safetensors"))
    cmp = parity.run(copy, smplx=parity.fixture_smplx(parity.Fixture.open(fixture_dir)))
    assert not cmp.ok
    failed = {n for n, r in cmp.rows.items() if not r.ok}
    # the pose itself, and what the teacher-forced rows derive from the perturbed pose
    assert "out.camera_pose" in failed and failed <= {"out.camera_pose", "tf.out.camera_pose", "tf.frame.cam2world",
                                                       "tf.frame.world_points", "tf.frame.world_verts"}, failed
    assert "view 5" in cmp.rows["out.camera_pose"].failures[0]


def test_a_missing_tensor_fails(fixture_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "fixture"
    shutil.copytree(fixture_dir, copy)
    outputs = load_file(str(copy / "tiny_outputs.safetensors"))
    outputs["view01.out.not_a_real_output"] = outputs["view01.out.camera_pose"].clone()
    save_file(outputs, str(copy / "tiny_outputs.safetensors"))
    cmp = parity.run(copy, smplx=parity.fixture_smplx(parity.Fixture.open(fixture_dir)))
    assert not cmp.rows["out.not_a_real_output"].ok and "not produced" in cmp.rows["out.not_a_real_output"].failures[0]


TINY = {
    "output_mode": "pts3d+pose+smpl", "head_type": "dpt", "depth_mode": ["exp", "-inf", "inf"],
    "conf_mode": ["exp", 1, "inf"], "pose_mode": ["exp", "-inf", "inf"], "landscape_only": False,
    "state_pe": "2d", "pose_head": True, "rgb_head": True, "msk_head": True, "depth_head": False,
    "pose_conf_head": False, "backbone": "dinov2_vits14", "patch_size": 16, "pos_embed": "RoPE100",
}
DINOV2 = dict(patch_size=14, mlp_ratio=4, init_values=1.0, ffn_layer="mlp", block_chunks=0,
              num_register_tokens=0, interpolate_antialias=False, interpolate_offset=0.1)


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
        # a 3-layer decoder (DPT hooks 0, 1, 2, 3) and the 1d state positions: the reference runs both
        dict(size=112, reset_interval=3, use_ttt3r=True, frame_hw=(90, 150), mhmr_img_res=84,
             dims=dict(enc_embed_dim=32, enc_depth=1, enc_num_heads=2, dec_embed_dim=16, dec_depth=3,
                       dec_num_heads=1, state_dec_num_heads=2, state_size=9, local_mem_size=2, state_pe="1d"),
             dinov2=dict(embed_dim=8, depth=1, num_heads=1, img_size=42), dpt=dict(feature_dim=8, last_dim=4, layer_dims=[4, 4, 8, 8])),
    ],
    ids=["portrait-no-ttt3r", "size224-resets", "three-layer-decoder"],
)
def test_parity_tool_reads_sizes_and_options_from_the_files(case: dict, smplx_dir: Path, tmp_path: Path) -> None:
    h, w = case["frame_hw"]
    frames = synthetic_clip(5, h, w, seed=3)
    fields = dict(TINY, mhmr_img_res=case["mhmr_img_res"], **case["dims"])
    fixture = write_fixture(tmp_path / "fx", fields, frames, size=case["size"], reset_interval=case["reset_interval"],
                            use_ttt3r=case["use_ttt3r"], smplx_path=smplx_dir, dinov2_override=dict(DINOV2, **case["dinov2"]),
                            dpt_override=case["dpt"])
    cmp = parity.run(fixture, smplx=smplx_dir / "SMPLX_NEUTRAL.npz")
    assert cmp.ok, {n: r.failures[:2] for n, r in cmp.rows.items() if not r.ok}
    meta = json.loads((fixture / "tiny_meta.json").read_text())
    outputs = load_file(str(fixture / "tiny_outputs.safetensors"))
    L = case["dims"]["dec_depth"]
    assert f"dec.img_layer{L}" in cmp.rows and ("dec.cross_attn_logits" in cmp.rows) == case["use_ttt3r"]
    expected_views = len(frames) + (len(frames) // case["reset_interval"] if case["reset_interval"] else 0)
    assert len(meta["views"]) == expected_views
    assert f"view{expected_views - 1:02d}.out.camera_pose" in outputs
    assert np.load(fixture / "tiny_clip.npz")["preprocessed_frames"].shape[1:3] == {144: (144, 80), 224: (224, 224), 112: (64, 112)}[case["size"]]


def test_only_configurations_the_reference_cannot_run_are_refused() -> None:
    fields = dict(TINY, enc_embed_dim=32, enc_depth=1, enc_num_heads=2, dec_embed_dim=16, dec_num_heads=1,
                  state_dec_num_heads=2, state_size=9, local_mem_size=2, mhmr_img_res=84)
    dinov2 = dict(DINOV2, embed_dim=8, depth=1, num_heads=1, img_size=42)
    assert config_from_reference_fields(dict(fields, dec_depth=2), dinov2).dpt_hooks == (0, 1, 1, 2)
    with pytest.raises(ConfigError, match="dec_depth must be at least 2"):
        config_from_reference_fields(dict(fields, dec_depth=1), dinov2)
    with pytest.raises(ConfigError, match="head dimension 6 is not a multiple of 4"):
        config_from_reference_fields(dict(fields, dec_embed_dim=12, dec_num_heads=2, dec_depth=2), dinov2)
    with pytest.raises(ConfigError, match="state_pe must be '1d' or '2d'"):
        config_from_reference_fields(dict(fields, dec_depth=2, state_pe="none"), dinov2)
    with pytest.raises(ConfigError, match="not a multiple of the DINOv2 patch size"):
        config_from_reference_fields(dict(fields, dec_depth=2, mhmr_img_res=90), dinov2)
