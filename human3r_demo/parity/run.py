"""Driving this implementation over a fixture: free-running, teacher-forced and tracking rows.

* **free-running**: the clip goes through :class:`~human3r_demo.stream.Reconstructor` exactly as a
  user's video would (preprocessing from the source frames, resets, tracking, post-processing);
* **teacher-forced** (``tf.`` rows): each stage fed the reference's own inputs (decoders from the
  recorded encoder tokens, heads from the recorded decoder layers, post-processing from the recorded
  outputs), so a difference is pinned to one stage;
* **tracking** (``tracking.`` rows): the tracker alone on the fixture's designed tokens.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from pathlib import Path

import numpy as np
import roma
import torch
import torch.nn.functional as F
from torch import Tensor

from ..body import BodyModel
from ..checkpoints.official import checkpoint_filter_fn
from ..geometry import ChunkAligner, intrinsics_matrix, pose_to_matrix, transform_points, weiszfeld_focal
from ..model import DENSE_HEADS, Human3R
from ..model.dense_heads import dpt_hooks
from ..model.square_view import unpad_map
from ..options import RunOptions
from ..preprocess import resize_and_crop
from ..stream import ModelCall, Reconstructor
from ..tracking import Tracker
from .compare import TIE_TOL, Comparison
from .fixture import Fixture, fixture_smplx

__all__ = ["fixture_model", "frame_tensors", "run", "view_tensors"]

# free-running tensors that do not depend on the CUT3R encoder (never given the wider tolerance)
_ENCODER_INDEPENDENT = re.compile(
    r"^(in\.|mhmr\.|det\.|msk\.|enc\.pos$|enc\.patch$|dec\.(state_pos|pose_pos|smpl_pos)$|prompt\.loc_cut3r$"
    r"|out\.(msk|smpl_scores|smpl_loc)$|frame\.(scores_unpadded|msk_unpadded)$|clip\.pp$)"
)
_NMS_MAPS = ("det.scores_nms", "out.smpl_scores", "frame.scores_unpadded")
# the tracker's memory is unbounded in the reference
_UNBOUNDED_TRACKS = 100_000


def run(fixture_dir: str | Path, smplx: Path | None = None, fake_smplx_tool: Path | None = None) -> Comparison:
    """Compare this implementation with the fixture in ``fixture_dir``; returns every row."""
    fixture = Fixture.open(fixture_dir)
    cmp = Comparison()
    run_parity(fixture, smplx or fixture_smplx(fixture, fake_smplx_tool), cmp)
    if fixture.tracking is not None:
        run_tracking(fixture, cmp)
    return cmp


def fixture_model(fixture: Fixture) -> Human3R:
    """The fixture's float32 model, its official state dict translated on the way in."""
    model = Human3R(fixture.config).eval().requires_grad_(False)
    filtered = checkpoint_filter_fn(fixture.state_dict)
    if filtered.unknown:
        raise KeyError(f"the fixture's state dict has keys this model has no place for: {filtered.unknown[:5]}")
    model.load_state_dict(filtered.state_dict, strict=True)
    return model.prepare_for_inference(torch.float32)  # the production layout, in float32


def view_tensors(call: ModelCall, model: Human3R, hooks: dict[str, Tensor]) -> dict[str, Tensor | None]:
    """This implementation's tensors of one model call, under the fixture's names."""
    out, det, prompts, dec = call.output, call.output.detections, call.output.prompts, call.output.decoder
    H, W = call.inputs.hw
    S = model.config.mhmr_img_res
    n = det.num_humans
    f = S / (2 * math.tan(math.radians(30)))
    t: dict[str, Tensor | None] = {
        "in.img": call.inputs.image,
        "in.img_mhmr": call.inputs.image_mhmr,
        "in.true_shape": torch.tensor([[H, W]], dtype=torch.int32),
        "in.K_mhmr": torch.tensor([[[f, 0, S // 2], [0, f, S // 2], [0, 0, 1]]], dtype=torch.float32),
        "enc.patch": hooks.get("enc.patch"),
        "enc.tokens": out.image_tokens,
        "enc.pos": out.image_pos,
        "mhmr.tokens": out.dinov2_tokens,
        "det.logits": det.head_logits,
        "det.scores": det.head_scores.reshape(1, -1, 1),
        "det.scores_nms": det.head_scores_nms[:, None],
        "det.img_id": torch.zeros(n, dtype=torch.long),
        "det.h_id": det.cells[:, 0],
        "det.w_id": det.cells[:, 1],
        "det.offset": det.offsets,
        "msk.lowres": det.mask_lowres,
        "prompt.loc_cut3r": prompts.head_uv,
        "prompt.fuse_in": prompts.fusion_input,
        "prompt.fused": prompts.prompts,
        "mem.global_img_feat": out.global_feature,
        "mem.in": call.state_in.memory,
        "mem.pose_feat_out": dec.image_layers[-1][:, :1],
        "mem.out": out.state.memory,
        "dec.state_in": call.state_in.state,
        "dec.state_pos": model.decoder.state_positions(),
        "dec.pose_in": out.pose_query,
        "dec.pose_pos": torch.full((1, 1, 2), -1, dtype=torch.long),
        "dec.smpl_pos": prompts.positions,
        "dec.cross_attn_logits": dec.cross_attn_logits,
        # the gate applied (TTT3R's fast path, from the mean key) where one was; else from the logits
        "dec.ttt3r_gate_recomputed": out.gate if out.gate is not None else _gate_from_logits(dec.cross_attn_logits),
        "head.pose_raw": out.camera_pose_raw,
        "head.token_cross": out.dense_heads.tokens_cross,
        "out.pts3d_in_self_view": out.dense_heads.pts3d_self,
        "out.conf_self": out.dense_heads.conf_self,
        "out.pts3d_in_other_view": out.dense_heads.pts3d_world,
        "out.conf": out.dense_heads.conf_world,
        "out.rgb": out.dense_heads.rgb,
        "out.camera_pose": out.camera_pose,
        "out.msk": det.mask[..., None],
        "out.smpl_scores": det.head_scores_nms[..., None],
        "out.smpl_loc": det.head_uv[None],
    }
    t.update({k: v for k, v in hooks.items() if k.startswith("enc.block")})
    if not call.state_in.fresh:
        t.update({"mem.inquire_query": out.global_feature, "mem.inquire_mem": call.state_in.memory, "mem.inquire_out": out.pose_query})
    for layer, tensor in enumerate(dec.image_layers):
        t[f"dec.img_layer{layer}"] = tensor
    for layer, tensor in enumerate(dec.state_layers or []):
        t[f"dec.state_layer{layer}"] = tensor
    if out.smplx is not None:
        s = out.smplx
        t.update(
            {
                "head.decpose_raw": s.raw_pose,
                "head.decshape_raw": s.raw_betas,
                "head.decexpression_raw": s.raw_expression,
                "head.deccam_raw": s.raw_cam,
                "out.smpl_shape": s.betas,
                "out.smpl_expression": s.expression,
                "out.smpl_transl": s.head_position,
                "out.smpl_rotmat": s.rotmat,
                "out.smpl_id": call.match.ids[None],
            }
        )
    if call.match.cost is not None:
        t["track.cost"] = call.match.cost
        t["track.log_assign"] = call.match.log_assign
    return t


def _gate_from_logits(logits: Tensor | None) -> Tensor | None:
    """TTT3R's gate from every layer's (L, heads, Ns, Nk) logits: sigmoid of their mean over all but Ns."""
    return None if logits is None else torch.sigmoid(logits.mean(dim=(0, 1, 3)))[None]


def frame_tensors(result) -> dict[str, Tensor | None]:
    """This implementation's post-processed tensors of one output frame, under the fixture's names."""
    people = result.people
    stack = lambda attr, shape: (  # noqa: E731
        torch.from_numpy(np.stack([getattr(p, attr) for p in people])) if people else torch.zeros(shape)
    )
    t: dict[str, Tensor | None] = {
        "cam2world": torch.from_numpy(result.camera_to_world),
        "intrinsics": torch.from_numpy(result.intrinsics),
        "world_points": torch.from_numpy(result.points),
        "world_conf": torch.from_numpy(result.confidence),
        "depth": torch.from_numpy(result.depth),
        "conf_self": torch.from_numpy(result.confidence),
        "scores_unpadded": torch.from_numpy(result.head_scores),
        "msk_unpadded": torch.from_numpy(result.human_mask)[None],
        "smpl_shape": stack("betas", (0, 10)),
        "smpl_rotvec": torch.from_numpy(np.stack([p.rotvec for p in people])) if people else torch.zeros(0, 53, 3),
        "smpl_transl": stack("head_position", (0, 3)),
        "smpl_id": torch.tensor(result.track_ids, dtype=torch.long),
    }
    if people:
        t["smpl_expression"] = stack("expression", (0, 10))
        t["cam_smpl_transl"] = stack("head_position", (0, 3))
    if people and people[0].vertices is not None:
        t["world_verts"] = stack("vertices", ())
        t["cam_smpl_v3d"] = stack("vertices_cam", ())
        t["cam_smpl_j3d"] = stack("joints_cam", ())
        t["cam_smpl_transl_pelvis"] = stack("pelvis_cam", ())[:, None]
    elif not people:
        t["world_verts"] = torch.zeros(0, 10475, 3)
    return t


# ---------------------------------------------------------------------- NMS near ties
def near_tie_cells(scores: Tensor) -> Tensor:
    """(g, g) bool: cells whose pre-NMS score is within 1e-5 of their best neighbour's (self excluded)."""
    g = math.isqrt(scores.numel())
    padded = F.pad(scores.reshape(1, 1, g, g).double(), (1, 1, 1, 1), value=-math.inf)
    neighbours = torch.stack(
        [padded[0, 0, 1 + dy : 1 + dy + g, 1 + dx : 1 + dx + g] for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx]
    )
    return (scores.reshape(g, g).double() - neighbours.max(dim=0).values).abs() <= TIE_TOL


# ---------------------------------------------------------------------- the run
def run_parity(fixture: Fixture, smplx_path: Path, cmp: Comparison) -> None:
    model = fixture_model(fixture)
    reset_interval = fixture.option("reset_interval", None)
    use_ttt3r = bool(fixture.option("use_ttt3r", True))
    options = RunOptions(
        size=int(fixture.option("size", 512)),
        use_ttt3r=use_ttt3r,
        reset_interval=int(reset_interval) if reset_interval else None,
        detection_threshold=float(fixture.option("detection_threshold", RunOptions.detection_threshold)),
        max_tracks=_UNBOUNDED_TRACKS,
        world="model",  # the reference demo's world: the first camera as the network predicts it
    )
    frames = fixture.clip["source_frames"]
    n_frames = int(fixture.option("n_frames", len(frames)))

    # preprocessing of the source frames
    for i in range(n_frames):
        mine = torch.from_numpy(resize_and_crop(frames[i], options.size))
        cmp.check("in.preprocessed_frames", mine, torch.from_numpy(fixture.clip["preprocessed_frames"][i]), f"frame {i}")

    # encoder intermediates (patch embedding, every block) captured per model call
    current: dict[str, Tensor] = {}
    snapshots: list[dict[str, Tensor]] = []
    handles = [
        model.encoder.patch_embed.register_forward_hook(lambda m, i, o: current.__setitem__("enc.patch", o[0])),
        model.encoder.register_forward_hook(lambda m, i, o: snapshots.append(dict(current))),
    ]
    for b, block in enumerate(model.encoder.blocks):
        handles.append(block.register_forward_hook(lambda m, i, o, b=b: current.__setitem__(f"enc.block{b}", o)))

    body = BodyModel(smplx_path)
    recon = Reconstructor(model, options, body_model=body)
    clip_rows: dict[str, list[Tensor]] = defaultdict(list)
    reference_chain = ChunkAligner()
    for i in range(n_frames):
        snapshots.clear()
        result, calls = recon.trace(frames[i], i, output_hidden_states=True, output_attentions=True, dense_heads=DENSE_HEADS)
        for call, captured in zip(calls, snapshots):
            ref = fixture.view(call.call_index)
            where = f"view {call.call_index}"
            if not ref:
                cmp.missing("view", f"{where}: the fixture has no such view")
                continue
            mine = view_tensors(call, model, captured)
            exempt = near_tie_cells(ref["det.scores"]) if "det.scores" in ref else None
            for name, ref_tensor in ref.items():
                wide = not _ENCODER_INDEPENDENT.match(name)
                cmp.check(name, mine.get(name), ref_tensor, where, wide=wide, exempt=_nms_exempt(name, exempt, ref_tensor))
            teacher_forced_view(model, ref, cmp, where, use_ttt3r)

        view = calls[0].call_index
        ref_frame = fixture.frame(i)
        mine_frame = frame_tensors(result)
        H, W = result.depth.shape
        pixel_exempt = unpad_map(near_tie_cells(fixture.view(view)["det.scores"])[None].float(), H, W)[0].bool()
        for name, ref_tensor in ref_frame.items():
            mask = pixel_exempt if name == "scores_unpadded" else None
            wide = not _ENCODER_INDEPENDENT.match(f"frame.{name}")
            cmp.check(f"frame.{name}", mine_frame.get(name), ref_tensor, f"frame {i}", wide=wide, exempt=mask)
        clip_rows["focal"].append(torch.tensor(result.focal))
        clip_rows["pp"].append(torch.from_numpy(result.intrinsics[:2, 2]))
        clip_rows["R_c2w"].append(torch.from_numpy(result.camera_to_world[:3, :3]))
        clip_rows["t_c2w"].append(torch.from_numpy(result.camera_to_world[:3, 3]))
        ref_pose = pose_to_matrix(fixture.view(view)["out.camera_pose"])[0]
        camera_to_world = reference_chain(ref_pose, calls[0].reset)
        teacher_forced_frame(fixture, i, view, camera_to_world, body, cmp)
    for name, values in clip_rows.items():
        if name in fixture.postprocess:
            cmp.check(f"clip.{name}", torch.stack(values).float(), fixture.postprocess[name], "clip", wide=name != "pp")
    for h in handles:
        h.remove()


def _nms_exempt(name: str, exempt: Tensor | None, ref: Tensor) -> Tensor | None:
    if exempt is None or name not in _NMS_MAPS[:2]:
        return None
    return exempt.reshape(ref.shape)


@torch.inference_mode()
def teacher_forced_view(model: Human3R, ref: dict[str, Tensor], cmp: Comparison, where: str, use_ttt3r: bool) -> None:
    """Each stage of one view fed the reference's recorded inputs."""
    cfg = model.config
    L = cfg.dec_depth
    if "in.img" in ref:
        tokens, _ = model.encoder(ref["in.img"])
        cmp.check("tf.enc.tokens", tokens, ref["enc.tokens"], where, wide=True)
    if "in.img_mhmr" in ref:
        cmp.check("tf.mhmr.tokens", model.human_encoder(model.normalize_mhmr(ref["in.img_mhmr"])), ref["mhmr.tokens"], where)
    if "mem.inquire_query" in ref:
        cmp.check("tf.mem.inquire_out", model.pose_memory.inquire(ref["mem.inquire_query"], ref["mem.inquire_mem"]), ref["mem.inquire_out"], where)
    cmp.check("tf.mem.out", model.pose_memory.update(ref["mem.in"], ref["mem.global_img_feat"], ref["mem.pose_feat_out"]), ref["mem.out"], where)

    dec = model.decoder(
        ref["dec.state_in"], ref["enc.tokens"], ref["enc.pos"], ref["dec.pose_in"], ref["prompt.fused"], ref["dec.smpl_pos"],
        compute_gate=use_ttt3r, output_hidden_states=True, output_attentions=use_ttt3r,
    )
    cmp.check(f"tf.dec.img_layer{L}", dec.image_layers[-1], ref[f"dec.img_layer{L}"], where)
    cmp.check(f"tf.dec.state_layer{L}", dec.new_state, ref[f"dec.state_layer{L}"], where)
    if "dec.cross_attn_logits" in ref:
        cmp.check("tf.dec.cross_attn_logits", dec.cross_attn_logits, ref["dec.cross_attn_logits"], where)

    N = ref["enc.tokens"].shape[1]
    last = ref[f"dec.img_layer{L}"]
    recorded_layers = {layer: ref[f"dec.img_layer{layer}"] for layer in cfg.dpt_hooks}
    H, W = (int(v) for v in ref["in.true_shape"][0])
    dense = model.dense_heads(dpt_hooks(recorded_layers, cfg.dpt_hooks, N), ref["enc.pos"], (H, W), DENSE_HEADS)
    camera_pose, _ = model.camera_head(last[:, 0])
    for name, mine in (
        ("out.pts3d_in_self_view", dense.pts3d_self),
        ("out.conf_self", dense.conf_self),
        ("out.pts3d_in_other_view", dense.pts3d_world),
        ("out.conf", dense.conf_world),
        ("out.rgb", dense.rgb),
        ("out.camera_pose", camera_pose),
        ("head.token_cross", dense.tokens_cross),
    ):
        cmp.check(f"tf.{name}", mine, ref[name], where)
    n = ref["det.h_id"].shape[0]
    if n:
        g = cfg.mhmr_grid
        detection_tokens = ref["mhmr.tokens"][0].reshape(g, g, -1)[ref["det.h_id"], ref["det.w_id"]][None]
        smplx = model.smplx_head(last[:, 1 + N :], detection_tokens)
        for name, mine in (
            ("out.smpl_rotmat", smplx.rotmat),
            ("out.smpl_shape", smplx.betas),
            ("out.smpl_expression", smplx.expression),
            ("out.smpl_transl", smplx.head_position),
        ):
            cmp.check(f"tf.{name}", mine, ref[name], where)


@torch.inference_mode()
def teacher_forced_frame(
    fixture: Fixture, frame: int, view: int, camera_to_world: Tensor, body: BodyModel, cmp: Comparison
) -> None:
    """Post-processing of one frame fed the reference's recorded model outputs.

    ``camera_to_world`` is the pose chained across resets from the recorded chunk poses."""
    ref_out, ref_post = fixture.view(view), fixture.frame(frame)
    where = f"frame {frame}"
    pts = ref_out["out.pts3d_in_self_view"]
    H, W = pts.shape[1:3]
    focal = weiszfeld_focal(pts)[0]
    cmp.check("tf.frame.intrinsics", intrinsics_matrix(float(focal), H, W), ref_post["intrinsics"], where)
    T = camera_to_world
    cmp.check("tf.frame.cam2world", T, ref_post["cam2world"], where)
    cmp.check("tf.frame.world_points", transform_points(T, pts[0]), ref_post["world_points"], where)
    if "out.smpl_rotmat" in ref_out:
        rotvec = roma.rotmat_to_rotvec(ref_out["out.smpl_rotmat"][0])
        cmp.check("tf.frame.smpl_rotvec", rotvec, ref_post["smpl_rotvec"], where)
        meshes = body(rotvec, ref_out["out.smpl_shape"][0], ref_out["out.smpl_expression"][0], ref_out["out.smpl_transl"][0])
        cmp.check("tf.frame.cam_smpl_v3d", meshes.vertices, ref_post["cam_smpl_v3d"], where)
        cmp.check("tf.frame.cam_smpl_j3d", meshes.joints, ref_post["cam_smpl_j3d"], where)
        cmp.check("tf.frame.world_verts", transform_points(T, meshes.vertices), ref_post["world_verts"], where)


def run_tracking(fixture: Fixture, cmp: Comparison) -> None:
    data = fixture.tracking
    views = sorted({int(k[4:6]) for k in data if k.startswith("view")})
    last = max(views) if views else -1
    tracker = Tracker(max_tracks=None)
    dim = next(v.shape[-1] for k, v in data.items() if k.endswith("injected_tokens"))
    for v in range(last + 1):
        p = f"view{v:02d}."
        tokens = data.get(p + "track.injected_tokens", torch.zeros(1, 0, dim))
        match = tracker.update(tokens)
        where = f"view {v}"
        if p + "out.smpl_id" in data:
            cmp.check("tracking.smpl_id", match.ids[None], data[p + "out.smpl_id"], where)
        elif match.ids.numel():
            cmp.rows["tracking.smpl_id"].failures.append(f"{where}: ids produced where the fixture has none")
        for name, mine in (("track.cost", match.cost), ("track.log_assign", match.log_assign)):
            if p + name in data:
                cmp.check(f"tracking.{name}", mine, data[p + name], where)
