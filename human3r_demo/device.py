"""Where the model runs and in which precision: ``device`` and ``precision`` resolved once, with clear errors.

``precision="auto"`` picks bfloat16 where the hardware computes it natively - CUDA GPUs that support
it, and CPUs with AMX or AVX-512 BF16 (read from the CPU's feature flags, not guessed) - float16 on
older CUDA GPUs, and float32 everywhere else.

Attention has two kernels (:mod:`human3r_demo.model.attention`); :func:`attention_kernel` is the rule
that picks one per device and dtype.
"""

from __future__ import annotations

from pathlib import Path

import torch

__all__ = [
    "ATTENTION_KERNELS", "PRECISIONS", "DeviceError", "attention_kernel", "cpu_has_amx", "cpu_has_native_bf16",
    "resolve_device", "resolve_precision",
]

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
ATTENTION_KERNELS = ("fused", "blocked")
_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


class DeviceError(ValueError):
    """A device or precision that this machine cannot run; the message names what is available."""


def available_devices() -> list[str]:
    devices = ["cpu"]
    if torch.cuda.is_available():
        devices += ["cuda"] + [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        devices.append("mps")
    return devices


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``None``/``"auto"`` -> CUDA if available, else CPU; anything else is checked against this machine."""
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError):
        raise DeviceError(f"unknown device {device!r}; available here: {', '.join(available_devices())}") from None
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            reason = "this torch build has no CUDA" if torch.version.cuda is None else "no CUDA GPU is visible"
            raise DeviceError(f"device {device!r} is not available ({reason}); available here: {', '.join(available_devices())}")
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise DeviceError(f"device {device!r} does not exist; available here: {', '.join(available_devices())}")
    elif resolved.type == "mps" and "mps" not in available_devices():
        raise DeviceError(f"device {device!r} is not available; available here: {', '.join(available_devices())}")
    elif resolved.type not in ("cpu", "cuda", "mps"):
        raise DeviceError(f"device {device!r} is not supported; available here: {', '.join(available_devices())}")
    return resolved


def cpu_flags() -> set[str]:
    """The CPU's feature flags from ``/proc/cpuinfo`` (empty where there is none: macOS, Windows)."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    return set()


def _probe(name: str) -> bool:
    """A CPU-capability probe torch ships with (for machines without ``/proc/cpuinfo``)."""
    return bool(getattr(torch._C._cpu, name, lambda: False)())


def cpu_has_native_bf16() -> bool:
    """True when the CPU computes bfloat16 natively (AMX tiles or AVX-512 BF16)."""
    if Path("/proc/cpuinfo").is_file():
        return bool(cpu_flags() & {"amx_bf16", "avx512_bf16"})
    return _probe("_is_amx_tile_supported") or _probe("_is_avx512_bf16_supported")


def cpu_has_amx() -> bool:
    """True when the CPU has AMX bfloat16 tiles (Intel Sapphire Rapids and later)."""
    if Path("/proc/cpuinfo").is_file():
        return "amx_bf16" in cpu_flags()
    return _probe("_is_amx_tile_supported")


def attention_kernel(device: torch.device, dtype: torch.dtype) -> str:
    """Which attention kernel runs on ``device`` in ``dtype``: ``"fused"`` or ``"blocked"``.

    The rule: ``"blocked"`` (query blocks, bfloat16 products, float32 softmax) only for bfloat16 on
    a CPU with AVX-512 BF16 and no AMX; ``"fused"`` (``scaled_dot_product_attention``) everywhere
    else. Why, from measurements (``benchmarks/RESULTS.md``, ``benchmarks/ablations.py``):

    * float32 (any device): the fused kernel is at least as fast, and it is the reference's
      arithmetic; the float32 model's results stay bit-for-bit what they were.
    * CUDA: the fused flash / memory-efficient kernels never materialise the logits and are the
      fastest attention there is.
    * CPU with AMX: PyTorch's fused CPU kernel (ATen's flash-attention kernel) packs its bfloat16
      blocks for oneDNN's AMX micro-kernels, i.e. it does what the blocked kernel does without the
      logits' round trip through memory, so it is kept. Not yet measured on an AMX machine in this
      project: ``benchmarks/ablations.py`` prints the comparison wherever it runs.
    * CPU with AVX-512 BF16 and no AMX (AMD Zen 4, Intel Cooper Lake): the fused kernel's bfloat16
      runs no faster than its float32 (98 GFLOP/s for DINOv2-S's 2,305 tokens on the 2-core EPYC)
      while a bfloat16 matrix product runs at 400; the blocked kernel is 1.5-2x faster there.
    * CPU without native bfloat16 (explicit ``precision="bf16"``, which ``"auto"`` never picks):
      the products would be emulated; not measured, so the fused kernel stays.
    """
    if device.type == "cpu" and dtype == torch.bfloat16 and cpu_has_native_bf16() and not cpu_has_amx():
        return "blocked"
    return "fused"


def resolve_precision(precision: str, device: torch.device) -> torch.dtype:
    """``"auto" | "fp32" | "bf16" | "fp16"`` -> the compute dtype for ``device``."""
    if precision not in PRECISIONS:
        raise DeviceError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        if device.type == "cpu" and cpu_has_native_bf16():
            return torch.bfloat16
        return torch.float32
    if precision == "fp16" and device.type == "cpu":
        raise DeviceError("fp16 is for GPUs (CPUs have no fast float16 arithmetic); on a CPU use bf16 or fp32")
    return _DTYPES[precision]
