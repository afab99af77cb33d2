"""Student checkpoints: atomic save, content hash, load, and weight comparison.

`save_student` writes safetensors weights, config, generation config and tokenizer into a temporary sibling
directory and renames it to the final path, so a final name never holds a half-written checkpoint; it returns the
sha256 over the weight files (name and bytes, in name order), which `hash_student` recomputes from disk, so the
state can record a checkpoint by path and hash.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

import torch

from training.loading import load_model, share_perms

WEIGHT_GLOB = "*.safetensors"


def _weight_files(path: Path) -> list[Path]:
    files = sorted(p for p in Path(path).glob(WEIGHT_GLOB) if p.is_file())
    if not files:
        raise FileNotFoundError(f"no weight files ({WEIGHT_GLOB}) in {path}")
    return files


def hash_student(path: str | Path) -> str:
    """sha256 over the checkpoint's weight files: each file's name, then its bytes, in name order."""
    h = hashlib.sha256()
    for f in _weight_files(Path(path)):
        h.update(f.name.encode() + b"\0")
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def save_student(model, tokenizer, path: str | Path) -> str:
    """Save model and tokenizer to `path` atomically (temp dir, then rename; an existing checkpoint there is
    replaced) and return the weights' sha256 (see `hash_student`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    old = None
    try:
        model.save_pretrained(str(tmp), safe_serialization=True)
        tokenizer.save_pretrained(str(tmp))
        for f in tmp.iterdir():  # fsync so the rename never publishes data the disk has not got
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
        digest = hash_student(tmp)
        share_perms(tmp)
        if path.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.old-", dir=path.parent))
            os.rename(path, old)  # onto an empty directory: allowed
        os.rename(tmp, path)
    except BaseException:
        if old is not None and old.exists() and not path.exists():
            os.rename(old, path)
        raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    return digest


def load_student(path: str | Path, device: str | torch.device = "auto"):
    """`(model, tokenizer)` from a checkpoint directory written by `save_student` (or any HF model directory)."""
    return load_model(str(Path(path)), device=device)


def max_abs_diff(a, b) -> float:
    """Largest absolute difference between same-named parameters and buffers of two models (inf when their
    names or shapes differ)."""
    sa, sb = a.state_dict(), b.state_dict()
    if sa.keys() != sb.keys():
        return float("inf")
    worst = 0.0
    for k, ta in sa.items():
        tb = sb[k]
        if ta.shape != tb.shape:
            return float("inf")
        if ta.numel():
            worst = max(worst, float((ta.detach().float().cpu() - tb.detach().float().cpu()).abs().max()))
    return worst


def weights_equal(a, b, atol: float = 0.0) -> bool:
    """True when two models hold the same weights (exactly, or within `atol`)."""
    return max_abs_diff(a, b) <= atol
