"""Compare this implementation with reference fixtures: ``python -m human3r_demo.parity FIXTURE_DIR``.

A fixture directory (format of ``shared/reference/fixtures``) holds a model configuration
(``*_config.json``), run options (``*_meta.json``), a state dict, a clip, and the reference's
recorded tensors per model call (``viewVV.<name>``), per output frame (``frameFF.<name>``) and for a
tracking scenario. Every size, count and option is read from those files.

Three kinds of checks, each printed as one row per tensor name (worst case over views/frames):

* **free-running**: the clip goes through :class:`~human3r_demo.stream.Reconstructor` exactly as a
  user's video would (preprocessing from the source frames, resets, tracking, post-processing);
* **teacher-forced** (``tf.`` rows): each stage fed the reference's own inputs (decoders from the
  recorded encoder tokens, heads from the recorded decoder layers, post-processing from the recorded
  outputs), so a difference is pinned to one stage;
* **tracking** (``tracking.`` rows): the tracker alone on the fixture's designed tokens.

Floats pass when ``|a - b| <= atol + rtol * |b|`` (1e-5 each). Integers, ids and shapes must be
equal. Two documented allowances, both counted in the summary: free-running tensors downstream of
the CUT3R encoder may use 1e-4 (its float16 rounding can flip on a 1-ulp difference), and NMS cells
whose pre-NMS score ties a neighbour's within 1e-5 are not compared after NMS.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import subprocess
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .body import BodyModel
from .config import Human3RConfig
from .geometry import ChunkAligner, intrinsics_matrix, pose_to_matrix
from .model import Human3R
from .preprocess import resize_and_crop, unpad_map
from .stream import Reconstructor, ViewRecord
from .tracking import Tracker

ATOL = RTOL = 1e-5
WIDE_TOL = 1e-4
TIE_TOL = 1e-5

# free-running tensors that do not depend on the CUT3R encoder (never given the wider tolerance)
_ENCODER_INDEPENDENT = re.compile(
    r"^(in\.|mhmr\.|det\.|msk\.|enc\.pos$|enc\.patch$|dec\.(state_pos|pose_pos|smpl_pos)$|prompt\.loc_cut3r$"
    r"|out\.(msk|smpl_scores|smpl_loc)$|frame\.(scores_unpadded|msk_unpadded)$|clip\.pp$)"
)
_NMS_MAPS = ("det.scores_nms", "out.smpl_scores", "frame.scores_unpadded")


@dataclass
class Row:
    """Accumulated comparison of one tensor name."""

    max_abs: float = 0.0
    worst_ratio: float = 0.0
    compared: int = 0
    wide_elements: int = 0
    exempt_cells: int = 0
    failures: list[str] = field(default_factory=list)
    tolerance: str = f"{ATOL:g}"

    @property
    def ok(self) -> bool:
        return not self.failures


class Comparison:
    def __init__(self) -> None:
        self.rows: dict[str, Row] = defaultdict(Row)

    def check(
        self,
        name: str,
        mine: Tensor | None,
        ref: Tensor,
        where: str,
        *,
        wide: bool = False,
        exempt: Tensor | None = None,
    ) -> None:
        row = self.rows[name]
        if mine is None:
            row.failures.append(f"{where}: not produced")
            return
        mine = mine.detach().cpu()
        if tuple(mine.shape) != tuple(ref.shape):
            row.failures.append(f"{where}: shape {tuple(mine.shape)} != {tuple(ref.shape)}")
            return
        row.compared += ref.numel()
        if not ref.is_floating_point():
            if not torch.equal(mine.to(ref.dtype), ref):
                bad = int((mine.to(ref.dtype) != ref).sum())
                row.failures.append(f"{where}: {bad} integer value(s) differ")
                row.max_abs = max(row.max_abs, float((mine.double() - ref.double()).abs().max()))
            row.tolerance = "exact"
            return
        if ref.numel() == 0:
            return
        a, b = mine.double(), ref.double()
        diff = (a - b).abs()
        nonfinite = ~(torch.isfinite(a) & torch.isfinite(b))
        diff = torch.where(nonfinite & (a == b), torch.zeros_like(diff), diff)
        if exempt is not None:
            row.exempt_cells += int(exempt.sum())
            diff = torch.where(exempt.expand_as(diff), torch.zeros_like(diff), diff)
        limit = ATOL + RTOL * b.abs()
        ratio = diff / limit
        ratio = torch.where(torch.isnan(ratio), torch.full_like(ratio, math.inf), ratio)
        row.max_abs = max(row.max_abs, float(diff.nan_to_num(math.inf).max()))
        row.worst_ratio = max(row.worst_ratio, float(ratio.max()))
        over = ratio > 1
        if not over.any():
            return
        if wide:
            row.tolerance = f"{ATOL:g} ({WIDE_TOL:g}*)"
            wide_ratio = diff / (WIDE_TOL + WIDE_TOL * b.abs())
            if not (wide_ratio > 1).any():
                row.wide_elements += int(over.sum())
                return
        row.failures.append(f"{where}: {int(over.sum())} element(s) over tolerance, max |diff| {float(diff.max()):.3g}")

    def missing(self, name: str, where: str) -> None:
        self.rows[name].failures.append(f"{where}: expected by the fixture, not produced")

    # ------------------------------------------------------------------ report
    def report(self, out=None, verbose: bool = False) -> bool:
        out = out or sys.stdout
        width = max(len(n) for n in self.rows) if self.rows else 10
        print(f"{'tensor':<{width}}  {'max |diff|':>10}  {'worst/tol':>9}  {'tolerance':<14} {'values':>9}  status", file=out)
        for name in sorted(self.rows, key=_row_order):
            r = self.rows[name]
            status = "ok" if r.ok else "FAIL"
            notes = []
            if r.wide_elements:
                notes.append(f"{r.wide_elements} element(s) needed {WIDE_TOL:g}")
            if r.exempt_cells:
                notes.append(f"{r.exempt_cells} NMS near-tie cell(s) exempt")
            line = f"{name:<{width}}  {r.max_abs:>10.3g}  {r.worst_ratio:>9.3g}  {r.tolerance:<14} {r.compared:>9}  {status}"
            print(line + (f"  ({'; '.join(notes)})" if notes else ""), file=out)
            if not r.ok:
                for failure in r.failures[: (None if verbose else 3)]:
                    print(f"{'':<{width}}    - {failure}", file=out)
        failed = [n for n, r in self.rows.items() if not r.ok]
        wide = sum(r.wide_elements for r in self.rows.values())
        exempt = sum(r.exempt_cells for r in self.rows.values())
        print(
            f"\n{len(self.rows)} tensors compared, {len(self.rows) - len(failed)} ok, {len(failed)} failed; "
            f"{wide} element(s) needed the float16-encoder tolerance {WIDE_TOL:g}; "
            f"{exempt} NMS near-tie cell(s) exempted.",
            file=out,
        )
        print("PARITY OK" if not failed else f"PARITY FAILED: {', '.join(sorted(failed)[:10])}", file=out)
        return not failed


def _row_order(name: str) -> tuple:
    groups = ("in.", "enc.", "mhmr.", "det.", "msk.", "prompt.", "mem.", "dec.", "head.", "out.", "track.", "frame.", "clip.", "tf.", "tracking.")
    group = next((i for i, g in enumerate(groups) if name.startswith(g)), len(groups))
    return (group, name)


# ---------------------------------------------------------------------- fixture files
@dataclass
class Fixture:
    root: Path
    prefix: str
    config: Human3RConfig
    config_json: dict
    meta: dict
    state_dict: dict[str, Tensor]
    clip: dict[str, np.ndarray]
    outputs: dict[str, Tensor]
    postprocess: dict[str, Tensor]
    tracking: dict[str, Tensor] | None

    @classmethod
    def open(cls, root: str | os.PathLike) -> Fixture:
        from safetensors.torch import load_file

        root = Path(root)
        configs = sorted(root.glob("*_config.json"))
        if not configs:
            raise FileNotFoundError(f"{root} has no *_config.json: not a fixture directory")
        prefix = configs[0].name[: -len("_config.json")]

        def need(suffix: str) -> Path:
            path = root / f"{prefix}_{suffix}"
            if not path.is_file():
                raise FileNotFoundError(f"fixture file missing: {path}")
            return path

        tracking = root / f"{prefix}_tracking.safetensors"
        with np.load(need("clip.npz")) as clip:
            clip_arrays = {k: clip[k] for k in clip.files}
        return cls(
            root=root,
            prefix=prefix,
            config=Human3RConfig.from_fixture(need("config.json")),
            config_json=json.loads(need("config.json").read_text()),
            meta=json.loads(need("meta.json").read_text()),
            state_dict=load_file(str(need("state_dict.safetensors"))),
            clip=clip_arrays,
            outputs=load_file(str(need("outputs.safetensors"))),
            postprocess=load_file(str(need("postprocess.safetensors"))),
            tracking=load_file(str(tracking)) if tracking.is_file() else None,
        )

    def option(self, name: str, default):
        """A run option from the meta file (or the config file), else ``default``."""
        for source in (self.meta, self.config_json, self.config_json.get("config", {})):
            if name in source:
                return source[name]
        return default

    def view(self, index: int) -> dict[str, Tensor]:
        prefix = f"view{index:02d}."
        return {k[len(prefix):]: v for k, v in self.outputs.items() if k.startswith(prefix)}

    def frame(self, index: int) -> dict[str, Tensor]:
        prefix = f"frame{index:02d}."
        return {k[len(prefix):]: v for k, v in self.postprocess.items() if k.startswith(prefix)}


# ---------------------------------------------------------------------- SMPL-X stand-in
def synthetic_smplx(seed: int, tool: Path | None, fixture_root: Path) -> Path:
    """Path of the synthetic SMPL-X model of ``fake_smplx.py --seed SEED``, generated once and cached."""
    from .checkpoints import cache_dir

    target = cache_dir() / "fake_smplx" / f"seed{seed}" / "SMPLX_NEUTRAL.npz"
    if target.is_file():
        return target
    if tool is None:
        candidates = [p / "tools" / "fake_smplx.py" for p in [fixture_root, *fixture_root.resolve().parents][:5]]
        candidates.append(Path(__file__).resolve().parents[2] / "shared" / "tools" / "fake_smplx.py")
        tool = next((c for c in candidates if c.is_file()), None)
    if tool is None or not Path(tool).is_file():
        raise FileNotFoundError("fake_smplx.py not found; pass --fake-smplx-tool or --smplx")
    target.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, str(tool), str(target.parent), "--seed", str(seed)], check=True, capture_output=True)
    return target


# ---------------------------------------------------------------------- what this implementation computed
def view_tensors(record: ViewRecord, model: Human3R, hooks: dict[str, Tensor]) -> dict[str, Tensor | None]:
    """This implementation's tensors of one model call, under the fixture's names."""
    out, det, prompts, dec = record.output, record.output.detections, record.output.prompts, record.output.decoder
    H, W = record.views.hw
    S = model.config.mhmr_img_res
    n = det.num_humans
    f = S / (2 * math.tan(math.radians(30)))
    t: dict[str, Tensor | None] = {
        "in.img": record.views.image,
        "in.img_mhmr": record.views.image_mhmr,
        "in.true_shape": torch.tensor([[H, W]], dtype=torch.int32),
        "in.K_mhmr": torch.tensor([[[f, 0, S // 2], [0, f, S // 2], [0, 0, 1]]], dtype=torch.float32),
        "enc.patch": hooks.get("enc.patch"),
        "enc.tokens": out.image_tokens,
        "enc.pos": out.image_pos,
        "mhmr.tokens": out.human_tokens,
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
        "mem.in": record.state_in.memory,
        "mem.pose_feat_out": dec.image_layers[-1][:, :1],
        "mem.out": record.state_out.memory,
        "dec.state_in": record.state_in.state,
        "dec.state_pos": model.decoder.state_positions(),
        "dec.pose_in": out.pose_query,
        "dec.pose_pos": torch.full((1, 1, 2), -1, dtype=torch.long),
        "dec.smpl_pos": prompts.positions,
        "dec.cross_attn_logits": dec.cross_attn_logits,
        "dec.ttt3r_gate_recomputed": torch.sigmoid(dec.gate_logit) if dec.gate_logit is not None else None,
        "head.pose_raw": out.heads.pose_raw,
        "head.token_cross": out.heads.tokens_cross,
        "out.pts3d_in_self_view": out.heads.pts3d_self,
        "out.conf_self": out.heads.conf_self,
        "out.pts3d_in_other_view": out.heads.pts3d_world,
        "out.conf": out.heads.conf_world,
        "out.rgb": out.heads.rgb,
        "out.camera_pose": out.heads.camera_pose,
        "out.msk": det.mask[..., None],
        "out.smpl_scores": det.head_scores_nms[..., None],
        "out.smpl_loc": det.head_uv[None],
    }
    t.update({k: v for k, v in hooks.items() if k.startswith("enc.block")})
    if not record.state_in.fresh:
        t.update({"mem.inquire_query": out.global_feature, "mem.inquire_mem": record.state_in.memory, "mem.inquire_out": out.pose_query})
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
                "out.smpl_transl": s.transl,
                "out.smpl_rotmat": s.rotmat,
                "out.smpl_id": record.match.ids[None],
            }
        )
    if record.match.cost is not None:
        t["track.cost"] = record.match.cost
        t["track.log_assign"] = record.match.log_assign
    return t


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
    config = fixture.config
    model = Human3R(config).eval()
    model.load_state_dict(fixture.state_dict, strict=True)
    size = int(fixture.option("size", 512))
    reset_interval = fixture.option("reset_interval", None)
    use_ttt3r = bool(fixture.option("use_ttt3r", True))
    threshold = float(fixture.option("detection_threshold", 0.3))
    frames = fixture.clip["source_frames"]
    n_frames = int(fixture.option("n_frames", len(frames)))

    # preprocessing of the source frames
    for i in range(n_frames):
        mine = torch.from_numpy(resize_and_crop(frames[i], size))
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
    recon = Reconstructor(
        model,
        size=size,
        use_ttt3r=use_ttt3r,
        reset_interval=int(reset_interval) if reset_interval else None,
        detection_threshold=threshold,
        body_model=body,
        max_tracks=None,
    )
    clip_rows: dict[str, list[Tensor]] = defaultdict(list)
    reference_chain = ChunkAligner()
    for i in range(n_frames):
        snapshots.clear()
        result, records = recon.process_views(frames[i], i, output_hidden_states=True, output_attentions=True)
        for record, captured in zip(records, snapshots):
            ref = fixture.view(record.view_index)
            where = f"view {record.view_index}"
            if not ref:
                cmp.missing("view", f"{where}: the fixture has no such view")
                continue
            mine = view_tensors(record, model, captured)
            exempt = near_tie_cells(ref["det.scores"]) if "det.scores" in ref else None
            for name, ref_tensor in ref.items():
                wide = not _ENCODER_INDEPENDENT.match(name)
                cmp.check(name, mine.get(name), ref_tensor, where, wide=wide, exempt=_nms_exempt(name, exempt, ref_tensor))
            teacher_forced_view(model, ref, cmp, where, use_ttt3r)

        view = records[0].view_index
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
        camera_to_world = reference_chain(ref_pose, records[0].reset)
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
        from .preprocess import mhmr_normalize

        cmp.check("tf.mhmr.tokens", model.human_encoder(mhmr_normalize(ref["in.img_mhmr"])), ref["mhmr.tokens"], where)
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
    _, mid, late, _ = cfg.dpt_hooks
    last = ref[f"dec.img_layer{L}"]
    hooks = [ref["dec.img_layer0"], ref[f"dec.img_layer{mid}"][:, 1 : 1 + N], ref[f"dec.img_layer{late}"][:, 1 : 1 + N], last[:, : 1 + N]]
    H, W = (int(v) for v in ref["in.true_shape"][0])
    heads = model.heads(hooks, ref["enc.pos"], (H, W))
    for name, mine in (
        ("out.pts3d_in_self_view", heads.pts3d_self),
        ("out.conf_self", heads.conf_self),
        ("out.pts3d_in_other_view", heads.pts3d_world),
        ("out.conf", heads.conf_world),
        ("out.rgb", heads.rgb),
        ("out.camera_pose", heads.camera_pose),
        ("head.token_cross", heads.tokens_cross),
    ):
        cmp.check(f"tf.{name}", mine, ref[name], where)
    n = ref["det.h_id"].shape[0]
    if n:
        g = cfg.mhmr_grid
        human_tokens = ref["mhmr.tokens"][0].reshape(g, g, -1)[ref["det.h_id"], ref["det.w_id"]][None]
        smplx = model.smplx_head(last[:, 1 + N :], human_tokens)
        for name, mine in (
            ("out.smpl_rotmat", smplx.rotmat),
            ("out.smpl_shape", smplx.betas),
            ("out.smpl_expression", smplx.expression),
            ("out.smpl_transl", smplx.transl),
        ):
            cmp.check(f"tf.{name}", mine, ref[name], where)


@torch.inference_mode()
def teacher_forced_frame(
    fixture: Fixture, frame: int, view: int, camera_to_world: Tensor, body: BodyModel, cmp: Comparison
) -> None:
    """Post-processing of one frame fed the reference's recorded model outputs.

    ``camera_to_world`` is the pose chained across resets from the recorded chunk poses."""
    import roma

    from .geometry import transform_points, weiszfeld_focal

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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m human3r_demo.parity", description=__doc__.split("\n\n")[0])
    parser.add_argument("fixture_dir", type=Path)
    parser.add_argument("--smplx", type=Path, help="SMPL-X model to use (default: generate the fixture's synthetic one)")
    parser.add_argument("--fake-smplx-tool", type=Path, help="path of fake_smplx.py (default: searched near the fixture)")
    parser.add_argument("--verbose", "-v", action="store_true", help="list every failing view/frame")
    args = parser.parse_args(argv)

    try:
        fixture = Fixture.open(args.fixture_dir)
        smplx_path = args.smplx or synthetic_smplx(int(fixture.option("smplx_seed", 0)), args.fake_smplx_tool, fixture.root)
    except (FileNotFoundError, subprocess.CalledProcessError, KeyError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    cmp = Comparison()
    print(f"fixture {fixture.root} ({fixture.prefix}): {fixture.config.describe()}; SMPL-X {smplx_path}")
    run_parity(fixture, smplx_path, cmp)
    if fixture.tracking is not None:
        run_tracking(fixture, cmp)
    return 0 if cmp.report(verbose=args.verbose) else 1


if __name__ == "__main__":
    sys.exit(main())
