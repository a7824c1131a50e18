"""The parity fixture format (that of ``shared/reference/fixtures``), read without any assumption.

A fixture directory holds a model configuration (``*_config.json``: the reference's constructor
fields plus overrides of the sizes it hard-codes), run options (``*_meta.json``), a state dict with
the official key names, a clip, and the reference's recorded tensors per model call
(``viewVV.<name>``), per output frame (``frameFF.<name>``) and for a tracking scenario. Every size,
count and option is read from those files.

The post-processing rows need the SMPL-X stand-in the fixture was made with: the fixture's own
distribution ships its generator (``tools/fake_smplx.py``, run with the fixture's ``smplx_seed``),
which :func:`fixture_smplx` finds beside the fixture directory; ``--smplx`` gives one directly.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from torch import Tensor

from ..checkpoints.cache import cache_dir
from ..checkpoints.official import config_from_reference_fields
from ..config import Human3RConfig

__all__ = ["Fixture", "fixture_smplx"]


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

        config_json = json.loads(need("config.json").read_text())
        tracking = root / f"{prefix}_tracking.safetensors"
        with np.load(need("clip.npz")) as clip:
            clip_arrays = {k: clip[k] for k in clip.files}
        return cls(
            root=root,
            prefix=prefix,
            config=config_from_reference_fields(
                config_json["config"], config_json.get("dinov2_override"), config_json.get("dpt_override")
            ),
            config_json=config_json,
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


def fixture_smplx(fixture: Fixture, tool: Path | None = None) -> Path:
    """The SMPL-X stand-in of ``fake_smplx.py --seed <smplx_seed>``, generated once and cached.

    ``tool`` defaults to ``tools/fake_smplx.py`` in the fixture directory's distribution (the
    directory itself or one of its three parents).
    """
    seed = int(fixture.option("smplx_seed", 0))
    target = cache_dir() / "fake_smplx" / f"seed{seed}" / "SMPLX_NEUTRAL.npz"
    if target.is_file():
        return target
    if tool is None:
        near = [fixture.root, *fixture.root.resolve().parents][:4]
        tool = next((p / "tools" / "fake_smplx.py" for p in near if (p / "tools" / "fake_smplx.py").is_file()), None)
    if tool is None or not Path(tool).is_file():
        raise FileNotFoundError(f"no tools/fake_smplx.py beside {fixture.root}; pass --fake-smplx-tool or --smplx")
    target.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, str(tool), str(target.parent), "--seed", str(seed)], check=True, capture_output=True)
    return target
