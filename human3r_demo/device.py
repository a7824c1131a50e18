"""Where the model runs and in which precision: ``device`` and ``precision`` resolved once, with clear errors.

``precision="auto"`` picks bfloat16 where the hardware computes it natively - CUDA GPUs that support
it, and CPUs with AMX or AVX-512 BF16 (read from the CPU's feature flags, not guessed) - float16 on
older CUDA GPUs, and float32 everywhere else.
"""

from __future__ import annotations

from pathlib import Path

import torch

__all__ = ["PRECISIONS", "DeviceError", "cpu_has_native_bf16", "resolve_device", "resolve_precision"]

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
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


def cpu_has_native_bf16() -> bool:
    """True when the CPU computes bfloat16 natively (AMX tiles or AVX-512 BF16)."""
    flags: set[str] = set()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.startswith("flags"):
                flags.update(line.split(":", 1)[1].split())
                break
        return bool(flags & {"amx_bf16", "avx512_bf16"})
    # no /proc (macOS, Windows): ask the CPU-capability probes torch ships with
    probes = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")
    return any(getattr(torch._C._cpu, p, lambda: False)() for p in probes)


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
