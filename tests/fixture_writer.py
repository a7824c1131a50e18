"""Write a fixture directory in the reference format from *this* implementation.

Used to check that the parity tool reads every size and option from the files (other model sizes,
aspect ratios, run options): a fixture written here must pass against itself, and a perturbed one
must fail. It says nothing about agreement with the reference - the shipped fixture does that.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

from human3r_demo import RunOptions, to_official_state_dict
from human3r_demo.body import BodyModel
from human3r_demo.checkpoints.official import config_from_reference_fields
from human3r_demo.model import DENSE_HEADS, Human3R
from human3r_demo.parity import frame_tensors, view_tensors
from human3r_demo.preprocess import resize_and_crop
from human3r_demo.stream import Reconstructor


def write_fixture(
    out: Path,
    reference_config: dict,
    frames: np.ndarray,
    *,
    size: int,
    reset_interval: int | None,
    use_ttt3r: bool,
    smplx_path: Path,
    dinov2_override: dict | None = None,
    dpt_override: dict | None = None,
    seed: int = 0,
    prefix: str = "tiny",
) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    config_json = {"config": reference_config, "dinov2_override": dinov2_override, "dpt_override": dpt_override}
    config = config_from_reference_fields(reference_config, dinov2_override, dpt_override)
    torch.manual_seed(seed)
    model = Human3R(config).eval()
    with torch.no_grad():  # spread the weights so that layers do not collapse to near-constants
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    (out / f"{prefix}_config.json").write_text(json.dumps(config_json))
    official = to_official_state_dict(model)
    save_file({k: v.clone().contiguous() for k, v in official.items()}, str(out / f"{prefix}_state_dict.safetensors"))
    preprocessed = np.stack([resize_and_crop(f, size) for f in frames])
    np.savez(out / f"{prefix}_clip.npz", source_frames=frames, preprocessed_frames=preprocessed)

    current: dict = {}
    snapshots: list = []
    model.encoder.patch_embed.register_forward_hook(lambda m, i, o: current.__setitem__("enc.patch", o[0]))
    model.encoder.register_forward_hook(lambda m, i, o: snapshots.append(dict(current)))
    for b, block in enumerate(model.encoder.blocks):
        block.register_forward_hook(lambda m, i, o, b=b: current.__setitem__(f"enc.block{b}", o))
    options = RunOptions(size=size, use_ttt3r=use_ttt3r, reset_interval=reset_interval, max_tracks=100_000, world="model")
    recon = Reconstructor(model, options, body_model=BodyModel(smplx_path))
    outputs, post, views_meta = {}, {}, []
    for i, frame in enumerate(frames):
        snapshots.clear()
        result, calls = recon.trace(frame, i, output_hidden_states=True, output_attentions=use_ttt3r, dense_heads=DENSE_HEADS)
        for call, captured in zip(calls, snapshots):
            tensors = view_tensors(call, model, captured)
            for name, value in tensors.items():
                if value is not None:
                    outputs[f"view{call.call_index:02d}.{name}"] = value.detach().clone().contiguous()
            views_meta.append({"view": call.call_index, "reset": call.reset, "source_frame": i,
                               "n_humans": call.output.num_humans})
        for name, value in frame_tensors(result).items():
            if value is not None:
                post[f"frame{i:02d}.{name}"] = value.detach().clone().contiguous()
    save_file(outputs, str(out / f"{prefix}_outputs.safetensors"))
    save_file(post, str(out / f"{prefix}_postprocess.safetensors"))
    meta = {"views": views_meta, "n_frames": len(frames), "reset_interval": reset_interval, "size": size,
            "use_ttt3r": use_ttt3r, "smplx_seed": 0}
    (out / f"{prefix}_meta.json").write_text(json.dumps(meta))
    return out
