"""Device choice and bf16 autocast for the student.

`pick_device("auto")` takes CUDA when there is one, else the CPU. `autocast_ctx(device, bf16)` returns a bf16
autocast context where the hardware runs bf16 fast (CUDA with bf16 support; a CPU with avx512_bf16 or AMX), and a
no-op context otherwise, so callers never branch on the machine. CPUs without native bf16 would emulate it, slower
than fp32, so they get fp32. `apply_thread_setting()` honours `$IOA_TORCH_THREADS` (measured on a 2-core machine
shared with another busy process: 2 torch threads generated 0.7 tokens/s, 1 thread 17), or, where
`$IOA_TORCH_THREADS_FILE` names a file holding a positive count, that file's count: `ioa bench --jobs` rewrites it as
its jobs end, so the jobs still running take the cores the ended ones left (bench/jobs.py); model loading, every
generate call and every training round apply it.
"""
from __future__ import annotations

import contextlib
import functools
import os
import sys
from pathlib import Path

import torch

_DEVICE_PREFS = ("auto", "cpu", "cuda")


def pick_device(pref: str = "auto") -> torch.device:
    """The torch device for a preference `auto | cpu | cuda` (or an explicit `cuda:N`)."""
    pref = (pref or "auto").strip().lower()
    if pref == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if pref == "cpu":
        return torch.device("cpu")
    if pref == "cuda" or pref.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise RuntimeError(f"device {pref!r} asked for, but torch sees no CUDA device here (use 'auto' or 'cpu')")
        return torch.device(pref)
    raise ValueError(f"unknown device {pref!r}: use one of {', '.join(_DEVICE_PREFS)}")


@functools.lru_cache(maxsize=1)
def cpu_supports_bf16() -> bool:
    """True when this CPU computes bf16 natively (x86 avx512_bf16 / AMX, or arm64 bf16), as read from the OS."""
    flags: set[str] = set()
    if sys.platform.startswith("linux"):
        try:
            with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
                for line in f:
                    key = line.split(":", 1)[0].strip().lower()
                    if key in ("flags", "features"):
                        flags.update(line.split(":", 1)[1].split())
                        break
        except OSError:
            return False
    if flags & {"avx512_bf16", "amx_bf16", "bf16"}:
        return bool(torch.backends.mkldnn.is_available())
    return False


def bf16_supported(device: torch.device | str) -> bool:
    """Whether bf16 autocast is worth using on `device`."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return cpu_supports_bf16()
    return False


def autocast_ctx(device: torch.device | str, bf16: bool):
    """A bf16 autocast context on `device` when `bf16` is asked for and supported, else a no-op context."""
    device = torch.device(device)
    if bf16 and bf16_supported(device):
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


THREADS_FILE_ENV = "IOA_TORCH_THREADS_FILE"


def shared_thread_count() -> int | None:
    """The count in the file `$IOA_TORCH_THREADS_FILE` names; None when unset, unreadable or not a positive integer
    (the file is its writer's, rewritten whole by a rename: a bad one leaves the count as it is)."""
    path = os.environ.get(THREADS_FILE_ENV, "").strip()
    if not path:
        return None
    try:
        n = int(Path(path).read_text(encoding="utf-8").strip())
    except (OSError, ValueError):
        return None
    return n if n >= 1 else None


def apply_thread_setting() -> int:
    """Set torch's intra-op threads from `$IOA_TORCH_THREADS_FILE`'s count, else `$IOA_TORCH_THREADS` when it is a
    positive integer; returns the count in use. On a machine whose cores other processes also use, fewer threads than
    cores avoids oversubscription."""
    n = shared_thread_count()
    value = os.environ.get("IOA_TORCH_THREADS", "").strip()
    if n is None and value:
        try:
            n = int(value)
        except ValueError:
            raise ValueError(f"IOA_TORCH_THREADS must be a positive integer, got {value!r}") from None
        if n < 1:
            raise ValueError(f"IOA_TORCH_THREADS must be a positive integer, got {value!r}")
    if n is not None and torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return torch.get_num_threads()
