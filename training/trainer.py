"""Supervised fine-tuning of the student on (prompt, answer) items: full or LoRA, loss on answer tokens only.

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
from dataclasses import dataclass, field
from typing import Callable

import torch

from ioa_state.config import StudentConfig
from training.device import autocast_ctx

IGNORE = -100
LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


@dataclass
class TrainStats:
    """What a training call did: optimizer steps, epochs (fractional), per-step losses, wall seconds, tokens seen
    (non-padding), answer tokens (those the loss counts) and examples skipped (no answer token within max_length)."""

    steps: int = 0
    epochs: float = 0.0
    losses: list[float] = field(default_factory=list)
    seconds: float = 0.0
    tokens: int = 0
    answer_tokens: int = 0
    skipped: int = 0


def example_messages(example: dict) -> list[dict]:
    """The chat messages of an example, without its answer."""
    msgs = []
    if example.get("system"):
        msgs.append({"role": "system", "content": example["system"]})
    msgs.append({"role": "user", "content": example["prompt"]})
    return msgs


def encode_example(tokenizer, example: dict, max_length: int) -> dict | None:
    """`{"input_ids", "labels"}` for one example, truncated to `max_length` tokens; labels are -100 on the prompt.
    None when no answer token survives the truncation."""
    msgs = example_messages(example)
    prompt_text = tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
    full_text = tokenizer.apply_chat_template(msgs + [{"role": "assistant", "content": example["answer"]}],
                                              tokenize=False)
    if not full_text.startswith(prompt_text):
        raise ValueError("the chat template does not render the prompt as a prefix of prompt + answer; "
                         "cannot mask the prompt exactly")
    answer_text = full_text[len(prompt_text):]
    p_ids = tokenizer(prompt_text, add_special_tokens=False)["input_ids"]
    a_ids = tokenizer(answer_text, add_special_tokens=False)["input_ids"]
    input_ids = (p_ids + a_ids)[:max_length]
    labels = ([IGNORE] * len(p_ids) + a_ids)[:max_length]
    if all(t == IGNORE for t in labels):
        return None
    return {"input_ids": input_ids, "labels": labels}


def collate(encoded: list[dict], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-pad a batch: padding gets `pad_id`, attention 0 and label -100."""
    width = max(len(e["input_ids"]) for e in encoded)
    ids = torch.full((len(encoded), width), pad_id, dtype=torch.long)
    labels = torch.full((len(encoded), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(encoded), width), dtype=torch.long)
    for r, e in enumerate(encoded):
        k = len(e["input_ids"])
        ids[r, :k] = torch.tensor(e["input_ids"], dtype=torch.long)
        labels[r, :k] = torch.tensor(e["labels"], dtype=torch.long)
        mask[r, :k] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def _wrap_lora(model, cfg: StudentConfig):
    from peft import LoraConfig, get_peft_model

    names = {n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)}
    targets = [t for t in LORA_TARGETS if t in names]
    if not targets:
        raise ValueError(f"LoRA: none of {LORA_TARGETS} found in {type(model).__name__}")
    lcfg = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=0.0, target_modules=targets,
                      bias="none", task_type="CAUSAL_LM")
    with warnings.catch_warnings():  # peft reads transformers' deprecated is_gradient_checkpointing
        warnings.simplefilter("ignore", FutureWarning)
        return get_peft_model(model, lcfg)


def _checkpointing(model, on: bool) -> None:
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


def train_sft(model, tokenizer, examples: list[dict], cfg: StudentConfig, *, seed: int, max_steps: int | None = None,
              progress: Callable[[int, int, float], None] | None = None, gradient_checkpointing: bool = False,
              max_grad_norm: float | None = 1.0):
    """Fine-tune `model` on `examples`; returns `(model, TrainStats)` with the model in eval mode.

    Runs `cfg.epochs` passes in batches of `cfg.batch_size`, or exactly `max_steps` optimizer steps when given
    (cycling through reshuffled epochs as needed). `progress(step, total, loss)` is called after every step.
    Full fine-tuning updates `model` in place; with `cfg.lora` the returned model is the merged base model."""
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
        _checkpointing(base, True)
    if cfg.lora:
        model = _wrap_lora(model, cfg)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.learning_rate, weight_decay=0.0)
    order_gen = torch.Generator().manual_seed(seed)
    try:
        while stats.steps < total:
            perm = torch.randperm(n, generator=order_gen).tolist()
            for b in range(0, n, cfg.batch_size):
                if stats.steps >= total:
                    break
                batch = {k: v.to(device) for k, v in collate([encoded[i] for i in perm[b:b + cfg.batch_size]],
                                                             pad_id).items()}
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
                if progress is not None:
                    progress(stats.steps, total, stats.losses[-1])
    finally:
        if gradient_checkpointing:
            _checkpointing(base, False)
        model.eval()
    if cfg.lora:
        model = model.merge_and_unload()
        model.eval()
    stats.epochs = stats.steps / steps_per_epoch
    stats.seconds = time.perf_counter() - t0
    return model, stats
