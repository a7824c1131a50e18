"""Load time and memory of a real-size training-format checkpoint (random weights).

    python benchmarks/load_checkpoint.py [--variant human3r_672S] [--workdir /tmp/h3r_ckpt]

Writes a checkpoint shaped like the official ones (``model`` state dict, pickled OmegaConf ``args``
whose ``model`` string is the official constructor string, ``epoch``), then loads it twice in
fresh processes: the first load parses the .pth and writes the converted safetensors cache, the
second reads the cache. Needs ``omegaconf`` (requirements-dev.txt) to write the file.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MANIFESTS = REPO.parent / "shared" / "reference"

LOAD = """
import resource, sys, time
sys.path.insert(0, {repo!r})
start = time.perf_counter()
import human3r_demo as h3r
model = h3r.load_model({path!r}, device="cpu", precision={precision!r})
print(f"{{time.perf_counter() - start:.1f}} {{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f}} {{model.num_parameters}}")
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variant", default="human3r_672S")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/h3r_ckpt"))
    args = parser.parse_args()

    import torch
    from omegaconf import OmegaConf

    sys.path.insert(0, str(REPO))
    from human3r_demo import Human3RConfig, to_official_state_dict
    from human3r_demo.checkpoints.random_init import build_random_model

    manifest = json.loads((MANIFESTS / f"manifest_{args.variant.removeprefix('human3r_')}.json").read_text())
    args.workdir.mkdir(parents=True, exist_ok=True)
    path = args.workdir / f"{args.variant}.pth"
    if not path.exists():
        start = time.perf_counter()
        state = to_official_state_dict(build_random_model(Human3RConfig.from_variant(args.variant)))
        for key, entry in manifest["keys"].items():  # the training-only weights an official file carries too
            state.setdefault(key, torch.zeros(entry["shape"]))
        cfg = OmegaConf.create({"model": manifest["model_string"], "lr": 1e-5, "epoch": 0})
        torch.save({"model": state, "args": cfg, "epoch": 10}, path)
        del state
        print(f"wrote {path} ({path.stat().st_size / 2**30:.2f} GiB) in {time.perf_counter() - start:.0f} s")
    env = dict(os.environ, HUMAN3R_CACHE=str(args.workdir / "cache"))
    runs = [("first load (.pth -> model, writes the safetensors cache)", "fp32"), ("second load (from the cache)", "fp32"),
            ("from the cache, weights cast to bf16", "bf16")]
    for label, precision in runs:
        out = subprocess.run([sys.executable, "-c", LOAD.format(repo=str(REPO), path=str(path), precision=precision)],
                             capture_output=True, text=True, env=env, check=True)
        seconds, rss, params = out.stdout.split()
        print(f"{label}: {float(seconds):.1f} s, peak RSS {float(rss):.2f} GiB, {int(params) / 1e6:.0f} M parameters")


if __name__ == "__main__":
    main()
