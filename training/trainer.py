"""Supervised fine-tuning of the student through TRL's SFTTrainer: full or LoRA, loss on answer tokens only.

Examples `{"prompt", "answer", "system"?}` are rendered with the chat template and tokenized by
training/examples.py (the prompt exactly as generation tokenizes it, labels -100 on it), then handed to SFTTrainer
as a pre-tokenized prompt-completion dataset (`input_ids`, `labels`): TRL keeps the labels, truncates to
`max_length` and pads; its completion-only loss is then the loss on the answer tokens. LoRA goes through
`peft_config` and is merged back after training (callers always get a plain model). `sft_config` is the one place
where StudentConfig's fields become SFTConfig's (most share TRL's names; `epochs` -> `num_train_epochs`,
`batch_size` (global) -> `per_device_train_batch_size`, `warmup_ratio` -> `warmup_steps` as a ratio, bf16 and
gradient checkpointing only where training/device.py says the hardware has them). `max_steps` is honoured
exactly; `transformers.set_seed(seed)` before the trainer is built fixes the data order and LoRA's init, so the same
inputs give the same weights on the CPU. Under `accelerate launch` (training/launch.py) the same call runs DDP,
FSDP or DeepSpeed from the accelerate config, `batch_size` staying the global batch.

What TRL cannot do here, kept as it is: packing and padding-free batches need FlashAttention (not on the CPU), so
batches are right-padded; TRL's own chat-template tokenization is not used, because the exam generates from the
prompt tokenized alone and the masking must match it token for token (tests/test_training_trainer.py); logit
distillation (training/distill.py) runs in one process only, since the teacher stays in the parent's memory. The
hand-written loop stays as `student.engine: loop` (training/sft_loop.py) for the speed comparison.
"""
from __future__ import annotations

import math
import os
import tempfile
import time
import warnings
from typing import Callable

import torch

from ioa_state.config import StudentConfig
from training.device import bf16_supported
from training.examples import IGNORE, TrainStats, collate, encode_example, example_messages  # noqa: F401
from training.sft_loop import lora_config, set_checkpointing, train_sft_loop
from training.trl_trainer import stats_trainer_class


def world_size() -> int:
    """Processes training together (accelerate launch sets WORLD_SIZE), 1 outside a launch."""
    return max(1, int(os.environ.get("WORLD_SIZE", "1")))


def use_checkpointing(cfg: StudentConfig, device: torch.device, asked: bool | None = None) -> bool:
    """Gradient checkpointing: the caller's choice, else the config's, else on CUDA only (memory is short there;
    on the CPU it costs ~5% time for memory we have)."""
    for choice in (asked, cfg.gradient_checkpointing):
        if choice is not None:
            return bool(choice)
    return device.type == "cuda"


def sft_config(cfg: StudentConfig, *, seed: int, output_dir: str, device: torch.device,
               max_steps: int | None = None, gradient_checkpointing: bool = False, max_grad_norm: float | None = None):
    """The SFTConfig for a StudentConfig: the one documented mapping from our fields to TRL's."""
    from trl import SFTConfig

    procs = world_size()
    if cfg.batch_size % procs:
        raise ValueError(f"student.batch_size ({cfg.batch_size}) must be a multiple of the {procs} processes")
    return SFTConfig(
        output_dir=output_dir, seed=seed, data_seed=seed, report_to="none", save_strategy="no", logging_steps=1,
        disable_tqdm=True, dataloader_num_workers=0, use_cpu=device.type == "cpu",
        per_device_train_batch_size=cfg.batch_size // procs, gradient_accumulation_steps=1,
        num_train_epochs=cfg.epochs, max_steps=max_steps if max_steps is not None else -1,
        learning_rate=cfg.learning_rate, weight_decay=cfg.weight_decay, adam_beta1=cfg.adam_beta1,
        adam_beta2=cfg.adam_beta2, optim=cfg.optim,
        max_grad_norm=cfg.max_grad_norm if max_grad_norm is None else max_grad_norm,
        lr_scheduler_type=cfg.lr_scheduler_type, warmup_steps=cfg.warmup_ratio,
        bf16=bool(cfg.bf16 and bf16_supported(device)), fp16=False,
        activation_checkpointing=gradient_checkpointing, activation_checkpointing_kwargs={"use_reentrant": False},
        max_length=cfg.max_length, packing=False, padding_free=False, shuffle_dataset=False,
        remove_unused_columns=False, completion_only_loss=None, dataset_num_proc=None)


def encode_all(tokenizer, examples: list[dict], max_length: int) -> tuple[list[dict], int]:
    """The encoded examples with an answer token left within `max_length`, and how many were skipped."""
    encoded = [encode_example(tokenizer, ex, max_length) for ex in examples]
    kept = [e for e in encoded if e is not None]
    return kept, len(encoded) - len(kept)


def _progress_callback(stats: TrainStats, total: int, progress):
    from transformers import TrainerCallback

    class _Record(TrainerCallback):
        """Per-step losses from the trainer's logs (logging_steps=1), and the caller's progress hook."""

        def on_log(self, args, state, control, logs=None, **kw):
            if logs and "loss" in logs and state.global_step > len(stats.losses):
                stats.losses.append(float(logs["loss"]))
                if progress is not None:
                    progress(state.global_step, total, stats.losses[-1])

    return _Record()


def train_sft(model, tokenizer, examples: list[dict], cfg: StudentConfig, *, seed: int, max_steps: int | None = None,
              progress: Callable[[int, int, float], None] | None = None, gradient_checkpointing: bool | None = None,
              max_grad_norm: float | None = None, teacher=None):
    """Fine-tune `model` on `examples`; returns `(model, TrainStats)` with the model in eval mode.

    Runs `cfg.epochs` passes in (global) batches of `cfg.batch_size`, or exactly `max_steps` optimizer steps when
    given (cycling through reshuffled epochs as needed). `progress(step, total, loss)` is called after every step.
    Full fine-tuning updates `model` in place; with `cfg.lora` the returned model is the merged base model.
    `teacher` (training/distill.py `LocalTeacher`) is needed by `cfg.loss` kd and sft+kd."""
    device = next(model.parameters()).device
    gc = use_checkpointing(cfg, device, gradient_checkpointing)
    if cfg.engine == "loop":
        if cfg.loss != "sft":
            raise ValueError(f"student.loss {cfg.loss!r} needs student.engine: trl")
        return train_sft_loop(model, tokenizer, examples, cfg, seed=seed, max_steps=max_steps, progress=progress,
                              gradient_checkpointing=gc, max_grad_norm=max_grad_norm)
    t0 = time.perf_counter()
    stats = TrainStats()
    encoded, stats.skipped = encode_all(tokenizer, examples, cfg.max_length)
    if not encoded or max_steps == 0:
        model.eval()
        stats.seconds = time.perf_counter() - t0
        return model, stats
    steps_per_epoch = math.ceil(len(encoded) / cfg.batch_size)
    total = max_steps if max_steps is not None else cfg.epochs * steps_per_epoch
    with tempfile.TemporaryDirectory(prefix="ioa-sft-") as out:
        from transformers import PrinterCallback

        args = sft_config(cfg, seed=seed, output_dir=out, device=device, max_steps=total,
                          gradient_checkpointing=gc, max_grad_norm=max_grad_norm)
        trainer = _build_trainer(model, tokenizer, encoded, examples, cfg, args, teacher)
        trainer.add_callback(_progress_callback(stats, total, progress))
        trainer.remove_callback(PrinterCallback)  # it prints every log dict; the progress hook reports instead
        try:
            trainer.train()
        finally:
            trained = trainer.model
            set_checkpointing(model, False)
            trained.eval()
    stats.steps = trainer.state.global_step
    stats.tokens, stats.answer_tokens = trainer.token_counts()
    if cfg.lora:
        trained = trained.merge_and_unload()
        trained.eval()
    stats.epochs = stats.steps / steps_per_epoch
    stats.seconds = time.perf_counter() - t0
    return trained, stats


def _build_trainer(model, tokenizer, encoded, examples, cfg, args, teacher):
    from datasets import Dataset
    from datasets.utils.logging import disable_progress_bar
    from transformers import set_seed

    disable_progress_bar()  # the run's own progress lines say where training is

    set_seed(args.seed)  # before peft builds the adapters: LoRA's init is part of "same inputs, same weights"
    peft = lora_config(model, cfg) if cfg.lora else None
    with warnings.catch_warnings():  # peft and TRL warn about transformers' deprecations, not about us
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", UserWarning)
        if cfg.loss == "sft":
            rows = [{"input_ids": e["input_ids"], "labels": e["labels"]} for e in encoded]
            return stats_trainer_class()(model=model, args=args, train_dataset=Dataset.from_list(rows),
                                           processing_class=tokenizer, peft_config=peft)
        from training.distill import build_kd_trainer

        return build_kd_trainer(model, tokenizer, examples, cfg, args, teacher, peft)
