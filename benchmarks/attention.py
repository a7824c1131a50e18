"""Attention kernels against the matrix-product peak, and the CPU settings tried around them.

    python benchmarks/attention.py [--threads 2] [--large]      # the kernels, per attention shape
    python benchmarks/attention.py --settings [--rounds 3]      # threads, affinity, oneDNN on a DINOv2-S

**Kernels**: for each attention shape of the 672S model at 512x288 (and DINOv2-L at 896 with
``--large``), ``softmax(q k^T / 8) v`` in bfloat16 through the fused kernel
(``scaled_dot_product_attention``) and the query-blocked kernel at several block sizes, as GFLOP/s
(``4 h N M Dh`` per call) and as a share of a 2048^3 bfloat16 matrix product measured in the same
process; the float32 fused kernel beside them.

**Settings**: a bfloat16 DINOv2-S forward (672 px, 2,305 tokens; random weights) in fresh processes,
each setting in turn, ``--rounds`` times (so the machine's noise falls on all of them alike):
default; one thread; OpenMP threads bound to cores (``OMP_PROC_BIND=close OMP_PLACES=cores``);
oneDNN off for the bfloat16 products (``torch.backends.mkldnn``; MKL's bfloat16 GEMM instead).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

SHAPES = {  # name: (heads, queries, keys), Dh = 64
    "DINOv2-S self (2,305 tokens)": (6, 2305, 2305),
    "CUT3R encoder self (576)": (16, 576, 576),
    "decoder image self (579)": (12, 579, 579),
    "decoder image -> state (579 x 768)": (12, 579, 768),
    "decoder state self (768)": (12, 768, 768),
    "decoder state -> image (768 x 579)": (12, 768, 579),
}
LARGE = {"DINOv2-L self at 896 (4,097 tokens)": (16, 4097, 4097)}
BLOCKS = (2**18, 2**19, 2**20, 2**21)
SETTINGS = {  # name: environment of the process
    "default": {},
    "1 thread": {},
    "OMP_PROC_BIND=close OMP_PLACES=cores": {"OMP_PROC_BIND": "close", "OMP_PLACES": "cores"},
    "oneDNN off (MKL bf16 GEMM)": {},
}


def bench(fn, repeats: int = 5) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def kernels(args: argparse.Namespace) -> None:
    import torch
    import torch.nn.functional as F

    from human3r_demo.model.attention import blocked_attention

    if args.threads:
        torch.set_num_threads(args.threads)
    a, b = (torch.randn(2048, 2048).bfloat16() for _ in range(2))
    peak = 2 * 2048**3 / bench(lambda: a @ b) / 1e9
    print(f"{torch.get_num_threads()} threads; bfloat16 2048^3 matrix product {peak:.0f} GFLOP/s; "
          f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}\n")
    print("| attention (heads, Dh 64) | fp32 fused | bf16 fused | " + " | ".join(f"bf16 blocked {b >> 10}K" for b in BLOCKS) + " |")
    print("|---|" + "---|" * (2 + len(BLOCKS)))
    shapes = {**SHAPES, **(LARGE if args.large else {})}
    for name, (heads, N, M) in shapes.items():
        g = torch.Generator().manual_seed(0)
        q, k, v = (torch.randn(1, heads, n, 64, generator=g) for n in (N, M, M))
        gflop = 4 * heads * N * M * 64 / 1e9
        cells = [gflop / bench(lambda q=q, k=k, v=v: F.scaled_dot_product_attention(q, k, v))]
        q, k, v = q.bfloat16(), k.bfloat16(), v.bfloat16()
        cells.append(gflop / bench(lambda q=q, k=k, v=v: F.scaled_dot_product_attention(q, k, v)))
        for block in BLOCKS:
            cells.append(gflop / bench(lambda q=q, k=k, v=v, block=block: blocked_attention(q, k, v, None, block)))
        print(f"| {name} | " + " | ".join(f"{c:.0f} ({100 * c / peak:.0f} %)" for c in cells) + " |", flush=True)


def settings_worker(name: str) -> float:
    import torch

    from human3r_demo.config import DINOV2_NETWORKS
    from human3r_demo.model.dinov2 import DINOv2

    if name == "1 thread":
        torch.set_num_threads(1)
    elif name == "oneDNN off (MKL bf16 GEMM)":
        torch.backends.mkldnn.enabled = False
    torch.manual_seed(0)
    model = DINOv2(DINOV2_NETWORKS["dinov2_vits14"]).to(torch.bfloat16).eval()
    x = torch.randn(1, 3, 672, 672).bfloat16()
    with torch.inference_mode():
        return bench(lambda: model(x), repeats=3) * 1000


def settings(args: argparse.Namespace) -> None:
    results: dict[str, list[float]] = {name: [] for name in SETTINGS}
    for _ in range(args.rounds):
        for name, env in SETTINGS.items():
            done = subprocess.run([sys.executable, __file__, "--settings-worker", name], capture_output=True, text=True,
                                  env={**os.environ, **env}, check=True)
            results[name].append(json.loads(done.stdout.strip().splitlines()[-1]))
    print(f"DINOv2-S bfloat16 forward, 672 px, median of 3 per process, {args.rounds} rounds; load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())} at the end\n")
    print("| setting | ms per round | median |\n|---|---|---|")
    for name, ms in results.items():
        print(f"| {name} | {', '.join(f'{m:.0f}' for m in ms)} | {statistics.median(ms):.0f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--large", action="store_true", help="also DINOv2-L's 4,097 tokens (slow)")
    parser.add_argument("--settings", action="store_true")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--settings-worker", default=None, choices=list(SETTINGS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.settings_worker is not None:
        print(json.dumps(settings_worker(args.settings_worker)))
    elif args.settings:
        settings(args)
    else:
        kernels(args)


if __name__ == "__main__":
    main()
