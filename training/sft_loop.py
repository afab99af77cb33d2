"""The hand-written AdamW loop (`student.engine: loop`), kept to compare TRL's trainer against (bench_training.py).

Each example `{"prompt", "answer", "system"?}` is rendered with the chat template as an optional system message, the
user prompt and the assistant answer. The prompt part is tokenized exactly as generation tokenizes it (template
with the generation prompt), the rest of the rendered text (answer and end-of-turn) follows; labels are -100 on the
prompt and on padding, so the loss counts answer tokens only. Batches are right-padded (positions then start at 0
in every row), shuffled with a generator seeded by `seed`; `torch.manual_seed(seed)` fixes LoRA's init, so the same
inputs give bit-identical weights. AdamW, optional bf16 autocast, optional gradient checkpointing. A LoRA student
is merged back (`merge_and_unload`), so callers always get a plain model.
"""
from __future__ import annotations

import math
import time
import warnings
from typing import Callable

import torch

from ioa_state.config import StudentConfig
from training.device import autocast_ctx
from training.examples import IGNORE, TrainStats, collate, encode_example


def lora_config(model, cfg: StudentConfig):
    """peft's LoraConfig for `model`: `cfg.lora_targets` that the model has (a clear error when none)."""
    from peft import LoraConfig

    names = {n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)}
    targets = [t for t in cfg.lora_targets if t in names]
    if not targets:
        raise ValueError(f"LoRA: none of {cfg.lora_targets} found in {type(model).__name__}")
    return LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                      target_modules=targets, bias="none", task_type="CAUSAL_LM")


def _wrap_lora(model, cfg: StudentConfig):
    from peft import get_peft_model

    with warnings.catch_warnings():  # peft reads transformers' deprecated is_gradient_checkpointing
        warnings.simplefilter("ignore", FutureWarning)
        return get_peft_model(model, lora_config(model, cfg))


def set_checkpointing(model, on: bool) -> None:
    """Activation (gradient) checkpointing on or off: about half the peak memory for ~5% more time."""
    if on:
        if hasattr(model, "activation_checkpointing_enable"):  # transformers >= 5.x name
            model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
        else:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    elif hasattr(model, "activation_checkpointing_disable"):
        model.activation_checkpointing_disable()
    else:
        model.gradient_checkpointing_disable()


def _step(model, opt, params, batch: dict, device, cfg: StudentConfig, max_grad_norm: float | None,
          stats: TrainStats) -> None:
    """One optimizer step on one batch, counted into `stats`."""
    with autocast_ctx(device, cfg.bf16):
        out = model(**batch, use_cache=False)
    loss = out.loss
    loss.backward()
    if max_grad_norm:
        torch.nn.utils.clip_grad_norm_(params, max_grad_norm)
    opt.step()
    opt.zero_grad(set_to_none=True)
    stats.steps += 1
    stats.losses.append(float(loss.detach()))
    stats.tokens += int(batch["attention_mask"].sum())
    stats.answer_tokens += int((batch["labels"] != IGNORE).sum())


def train_sft_loop(model, tokenizer, examples: list[dict], cfg: StudentConfig, *, seed: int,
                   max_steps: int | None = None, progress: Callable[[int, int, float], None] | None = None,
                   gradient_checkpointing: bool = False, max_grad_norm: float | None = None):
    """Fine-tune `model` on `examples`; returns `(model, TrainStats)` with the model in eval mode.

    Runs `cfg.epochs` passes in batches of `cfg.batch_size`, or exactly `max_steps` optimizer steps when given
    (cycling through reshuffled epochs as needed). `progress(step, total, loss)` is called after every step.
    Full fine-tuning updates `model` in place; with `cfg.lora` the returned model is the merged base model.
    A constant learning rate (no schedule, no warm-up); clipping at `max_grad_norm` (None: `cfg.max_grad_norm`)."""
    max_grad_norm = cfg.max_grad_norm if max_grad_norm is None else max_grad_norm
    t0 = time.perf_counter()
    stats = TrainStats()
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    encoded = []
    for ex in examples:
        e = encode_example(tokenizer, ex, cfg.max_length)
        if e is None:
            stats.skipped += 1
        else:
            encoded.append(e)
    n = len(encoded)
    if n == 0 or max_steps == 0:
        model.eval()
        stats.seconds = time.perf_counter() - t0
        return model, stats
    steps_per_epoch = math.ceil(n / cfg.batch_size)
    total = max_steps if max_steps is not None else cfg.epochs * steps_per_epoch
    torch.manual_seed(seed)
    device = next(model.parameters()).device
    base = model
    if gradient_checkpointing:
        set_checkpointing(base, True)
    if cfg.lora:
        model = _wrap_lora(model, cfg)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay,
                            betas=(cfg.adam_beta1, cfg.adam_beta2), fused=cfg.optim == "adamw_torch_fused")
    order_gen = torch.Generator().manual_seed(seed)
    try:
        while stats.steps < total:
            perm = torch.randperm(n, generator=order_gen).tolist()
            for b in range(0, n, cfg.batch_size):
                if stats.steps >= total:
                    break
                batch = {k: v.to(device) for k, v in collate([encoded[i] for i in perm[b:b + cfg.batch_size]],
                                                             pad_id).items()}
                _step(model, opt, params, batch, device, cfg, max_grad_norm, stats)
                if progress is not None:
                    progress(stats.steps, total, stats.losses[-1])
    finally:
        if gradient_checkpointing:
            set_checkpointing(base, False)
        model.eval()
    if cfg.lora:
        model = model.merge_and_unload()
        model.eval()
    stats.epochs = stats.steps / steps_per_epoch
    stats.seconds = time.perf_counter() - t0
    return model, stats
