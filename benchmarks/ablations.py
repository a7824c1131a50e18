"""Before and after, for each speed change kept in the model, measured side by side in one run.

    python benchmarks/ablations.py [--variant human3r_672S] [--precision fp32 bf16] [--repeats 5] [--device cpu]

For each precision, on a real-size random model and one 512x288 frame (A and B alternate, medians):

* **TTT3R gate**: the state decoder's gate from explicitly materialised attention logits (as the
  reference computes it) against the mean-key form with fused attention (what the model does);
* **DPT layout**: one DPT head with contiguous against channels-last convolution weights;
* **dense heads**: the three DPT heads (``self``, ``cross`` with ``final_transform``, ``rgb``) against
  the ``self`` head the stream reads;
* **attention kernel**: every attention through the fused kernel against the query-blocked one
  (:mod:`human3r_demo.model.attention`), for the whole model and per stage (DINOv2, CUT3R encoder,
  decoders); the device rule (:func:`human3r_demo.device.attention_kernel`) picks by these;
* **cross-attention k/v**: the decoders' separate ``projk`` and ``projv`` products against one
  product with the two weights stacked (tried; see RESULTS.md).

Each row also gives the largest difference between A and B (they compute the same thing; for the
attention kernels in bfloat16, two different roundings of it).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import human3r_demo as h3r  # noqa: E402
from human3r_demo.model import layers  # noqa: E402
from human3r_demo.model.attention import attention, forced_kernel  # noqa: E402
from human3r_demo.model.square_view import pad_to_square  # noqa: E402


def explicit_logits_forward(self, query, context, qpos=None, kpos=None, *, mean_logit=False, output_attentions=False):
    """CrossAttention as the reference runs it under TTT3R: logits materialised, softmax written out."""
    q = layers.split_heads(self.projq(query), self.num_heads)
    k = layers.split_heads(self.projk(context), self.num_heads)
    v = layers.split_heads(self.projv(context), self.num_heads)
    if self.rope is not None:
        q, k = self.rope(q, qpos), self.rope(k, kpos)
    logits = (q @ k.transpose(-2, -1)) * self.scale
    out = layers.CrossAttentionOutput(self.proj(layers.merge_heads(logits.softmax(dim=-1) @ v)))
    if mean_logit:
        out.mean_logit = logits.float().mean(dim=(1, 3))
    if output_attentions:
        out.logits, out.weights = logits, logits.softmax(dim=-1)
    return out


def fused_kv_forward(self, query, context, qpos=None, kpos=None, *, mean_logit=False, output_attentions=False):
    """CrossAttention with ``projk`` and ``projv`` as one product (weights stacked once, cached on the module)."""
    if not hasattr(self, "_kv"):
        self._kv = torch.nn.Linear(self.projk.in_features, 2 * self.projk.out_features).to(self.projk.weight)
        self._kv.weight.copy_(torch.cat([self.projk.weight, self.projv.weight]))
        self._kv.bias.copy_(torch.cat([self.projk.bias, self.projv.bias]))
    q = layers.split_heads(self.projq(query), self.num_heads)
    k, v = (layers.split_heads(t, self.num_heads) for t in self._kv(context).chunk(2, dim=-1))
    if self.rope is not None:
        q, k = self.rope(q, qpos), self.rope(k, kpos)
    out = layers.CrossAttentionOutput(self.proj(layers.merge_heads(attention(q, k, v, self.scale))))
    if mean_logit:
        mean_key = k.float().mean(dim=-2, keepdim=True)
        out.mean_logit = (q.float() @ mean_key.transpose(-2, -1))[..., 0].mean(dim=1) * self.scale
    return out


def with_kernel(kernel: str, fn):
    def run():
        with forced_kernel(kernel):
            return fn()
    return run


def timed(fn, sync) -> tuple[float, object]:
    sync()
    start = time.perf_counter()
    out = fn()
    sync()
    return (time.perf_counter() - start) * 1000, out


def ab(a, b, repeats: int, sync) -> tuple[float, float, object, object]:
    ta, tb = [], []
    for _ in range(repeats + 1):  # the first round is warm-up
        t, out_a = timed(a, sync)
        ta.append(t)
        t, out_b = timed(b, sync)
        tb.append(t)
    return statistics.median(ta[1:]), statistics.median(tb[1:]), out_a, out_b


def measure(args: argparse.Namespace, precision: str, image: torch.Tensor, sync) -> list[tuple]:
    """The three before/after pairs for one precision."""
    model = h3r.load_model(f"random:{args.variant}", device=args.device, precision=precision)
    square = pad_to_square(image, model.config.mhmr_img_res)
    rows = []
    with torch.inference_mode():
        first = model(image, square, dense_heads=("self",))
        out = model(image, square, first.state, dense_heads=("self",))
        tokens, pos, state, prompts = out.image_tokens, out.image_pos, first.state.state, out.prompts

        def decode():
            return model.decoder(state, tokens, pos, out.pose_query, prompts.prompts, prompts.positions, compute_gate=True)

        fused = layers.CrossAttention.forward

        def decode_explicit():
            layers.CrossAttention.forward = explicit_logits_forward
            try:
                return decode()
            finally:
                layers.CrossAttention.forward = fused

        ta, tb, a, b = ab(decode_explicit, decode, args.repeats, sync)
        rows.append((precision, "TTT3R gate: explicit logits -> mean key + fused attention (whole decoder)", ta, tb,
                     float((a.gate_logit - b.gate_logit).abs().max())))

        N = tokens.shape[1]
        decoded = out.decoder.image_layers
        _, mid, late, _ = model.config.dpt_hooks
        hooks = [decoded[0], decoded[mid][:, 1 : 1 + N], decoded[late][:, 1 : 1 + N], decoded[-1][:, 1 : 1 + N]]
        dpt = model.dense_heads.dpt_self

        def run_dpt():
            return dpt(hooks, (288, 512))

        def run_dpt_contiguous():
            dpt.to(memory_format=torch.contiguous_format)
            try:
                return run_dpt()
            finally:
                dpt.to(memory_format=torch.channels_last)

        ta, tb, a, b = ab(run_dpt_contiguous, run_dpt, args.repeats, sync)
        rows.append((precision, "DPT head: contiguous -> channels-last weights", ta, tb, float((a - b).abs().max())))

        heads_in = [decoded[0], decoded[mid][:, 1 : 1 + N], decoded[late][:, 1 : 1 + N], decoded[-1][:, : 1 + N]]
        ta, tb, a, b = ab(lambda: model.dense_heads(heads_in, pos, (288, 512), ("self", "cross", "rgb")),
                          lambda: model.dense_heads(heads_in, pos, (288, 512), ("self",)), args.repeats, sync)
        rows.append((precision, "dense heads: self + cross + rgb -> self only", ta, tb,
                     float((a.pts3d_self - b.pts3d_self).abs().max())))

        # attention kernels, per stage and for the whole (steady) frame
        mhmr = model.normalize_mhmr(square).to(model.dtype)
        stages = [("DINOv2", lambda: model.human_encoder(mhmr)), ("CUT3R encoder", lambda: model.encoder(image)[0]),
                  ("decoders", lambda: decode().new_state),
                  ("whole frame", lambda: model(image, square, first.state, dense_heads=("self",)).dense_heads.pts3d_self)]
        for name, fn in stages:
            ta, tb, a, b = ab(with_kernel("fused", fn), with_kernel("blocked", fn), args.repeats, sync)
            rows.append((precision, f"attention: fused -> blocked kernel ({name})", ta, tb, float((a.float() - b.float()).abs().max())))

        fused_kv = fused_kv_forward

        def decode_fused_kv():
            layers.CrossAttention.forward = fused_kv
            try:
                return decode()
            finally:
                layers.CrossAttention.forward = fused

        ta, tb, a, b = ab(decode, decode_fused_kv, args.repeats, sync)
        rows.append((precision, "cross-attention: projk, projv -> one stacked kv product (decoders)", ta, tb,
                     float((a.new_state.float() - b.new_state.float()).abs().max())))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variant", default="human3r_672S")
    parser.add_argument("--precision", nargs="+", default=["fp32", "bf16"])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    sync = torch.cuda.synchronize if args.device.startswith("cuda") else (lambda: None)
    image = (torch.rand(1, 3, 288, 512, generator=torch.Generator().manual_seed(0)) * 2 - 1).to(args.device)

    rows = [row for precision in args.precision for row in measure(args, precision, image, sync)]
    print(f"{args.variant} on {args.device} ({torch.get_num_threads()} threads), one 512x288 frame, medians of {args.repeats}; "
          f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} at the end\n")
    print("| precision | change | before ms | after ms | speed-up | max difference |")
    print("|---|---|---|---|---|---|")
    for precision, what, before, after, diff in rows:
        print(f"| {precision} | {what} | {before:.0f} | {after:.0f} | {before / after:.2f}x | {diff:.2g} |")


if __name__ == "__main__":
    main()
