"""Logit distillation from a local teacher (`student.loss: kd | sft+kd`): context distillation in its classic form.

The teacher sees its context as a system message, the student does not; both renderings end in the same answer
tokens (the answer is tokenized apart from the prompt, training/examples.py), so the teacher's next-token
distribution at each answer position lines up with the student's. The loss is the forward KL
KL(p_teacher || p_student) at temperature T (scaled by T^2, Hinton et al.), summed over answer tokens and divided
like TRL's loss (by the answer tokens of the whole batch, all processes counted); `sft+kd` mixes it with the usual
cross-entropy, `(1 - kd_weight) * CE + kd_weight * KL`. It runs inside TRL's SFTTrainer as a `compute_loss`
override: TRL's GKDTrainer generates on-policy completions and its DistillationTrainer needs one prompt for both
models, neither of which fits a teacher whose prompt differs from the student's. Needs a teacher in this process
(an `hf:` spec) whose vocabulary is the student's; anything else is a clear error before training starts.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from training.examples import IGNORE, encode_example


@dataclass
class LocalTeacher:
    """A teacher model in this process, its tokenizer and the context it is given (its system prompt)."""

    model: Any
    tokenizer: Any
    context: str | None = None


def check_tokenizers(student_tok, teacher_tok) -> None:
    """ValueError unless the two tokenizers map the same strings to the same ids."""
    sv, tv = student_tok.get_vocab(), teacher_tok.get_vocab()
    if sv != tv:
        diff = len(set(sv.items()) ^ set(tv.items()))
        raise ValueError(f"student.loss kd needs a teacher that shares the student's tokenizer: the vocabularies "
                         f"differ ({len(sv)} vs {len(tv)} tokens, {diff} entries apart)")


def encode_pair(student_tok, teacher_tok, example: dict, context: str | None, max_length: int) -> dict | None:
    """The student's encoding (no system) and the teacher's (context as system) with the same answer tokens;
    None when no answer token fits the student's `max_length`."""
    s = encode_example(student_tok, dict(example, system=None), max_length)
    if s is None:
        return None
    kept = sum(1 for t in s["labels"] if t != IGNORE)
    t = encode_example(teacher_tok, dict(example, system=context), 10 ** 9)
    n_prompt = sum(1 for x in t["labels"] if x == IGNORE)
    t_ids, t_labels = t["input_ids"][:n_prompt + kept], t["labels"][:n_prompt + kept]
    if [x for x in t_labels if x != IGNORE] != [x for x in s["labels"] if x != IGNORE]:
        raise ValueError("the teacher's chat template renders the answer with other tokens than the student's; "
                         "cannot align their distributions")
    return {"input_ids": s["input_ids"], "labels": s["labels"], "teacher_input_ids": t_ids,
            "teacher_labels": t_labels}


def kd_token_losses(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Per-token forward KL(teacher || student) at `temperature`, times T^2; inputs (N, V) in the same order."""
    t = teacher_logits.float() / temperature
    s = student_logits.float() / temperature
    p_t = F.softmax(t, dim=-1)
    return (p_t * (F.log_softmax(t, dim=-1) - F.log_softmax(s, dim=-1))).sum(-1) * temperature ** 2


def answer_logits(logits: torch.Tensor, labels: torch.Tensor, vocab: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The logits predicting each answer token (rows in order) and those tokens: `(N, vocab)`, `(N,)`."""
    shifted = labels[:, 1:]
    keep = shifted != IGNORE
    return logits[:, :-1][keep][:, :vocab], shifted[keep]


class KDCollator:
    """Pads the student's and the teacher's sequences of a batch apart (TRL's collator for each)."""

    def __init__(self, pad_id: int):
        from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

        self.base = DataCollatorForLanguageModeling(pad_token_id=pad_id)

    def __call__(self, rows: list[dict]) -> dict:
        out = self.base([{"input_ids": r["input_ids"], "labels": r["labels"]} for r in rows])
        t = self.base([{"input_ids": r["teacher_input_ids"], "labels": r["teacher_labels"]} for r in rows])
        out.update(teacher_input_ids=t["input_ids"], teacher_attention_mask=t["attention_mask"],
                   teacher_labels=t["labels"])
        return out


@functools.lru_cache(maxsize=1)
def kd_trainer_class():
    """The SFTTrainer subclass whose loss is KL to the teacher (plus CE for sft+kd)."""
    from training.trl_trainer import stats_trainer_class

    class KDTrainer(stats_trainer_class()):
        teacher: LocalTeacher
        mode: str = "kd"
        temperature: float = 1.0
        kd_weight: float = 0.5

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            t_ids = inputs.pop("teacher_input_ids")
            t_mask = inputs.pop("teacher_attention_mask")
            t_labels = inputs.pop("teacher_labels")
            if model.training:
                self._tok += int(inputs["attention_mask"].sum())
                self._ans += int((inputs["labels"] != IGNORE).sum())
            out = model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"], use_cache=False)
            vocab = len(self.processing_class)
            s_logits, targets = answer_logits(out.logits, inputs["labels"], vocab)
            tdev = next(self.teacher.model.parameters()).device
            with torch.no_grad():
                t_out = self.teacher.model(input_ids=t_ids.to(tdev), attention_mask=t_mask.to(tdev), use_cache=False)
            t_logits, _ = answer_logits(t_out.logits, t_labels.to(tdev), vocab)
            denom = num_items_in_batch if num_items_in_batch is not None else max(1, targets.numel())
            loss = kd_token_losses(s_logits, t_logits.to(s_logits.device), self.temperature).sum() / denom
            if self.mode == "sft+kd":
                ce = F.cross_entropy(s_logits.float(), targets, reduction="sum") / denom
                loss = (1 - self.kd_weight) * ce + self.kd_weight * loss
            if self.args.average_tokens_across_devices and num_items_in_batch is not None:
                loss = loss * self.accelerator.num_processes  # as TRL: DDP averages the gradients of the ranks
            return (loss, out) if return_outputs else loss

    return KDTrainer


def build_kd_trainer(model, tokenizer, examples: list[dict], cfg, args, teacher: LocalTeacher | None, peft):
    """The KD trainer over `examples` (called by training/trainer.py for `loss: kd | sft+kd`)."""
    from datasets import Dataset

    if teacher is None:
        raise ValueError(f"student.loss {cfg.loss!r} needs a teacher in this process (an hf: teacher spec)")
    check_tokenizers(tokenizer, teacher.tokenizer)
    rows = [r for r in (encode_pair(tokenizer, teacher.tokenizer, ex, teacher.context, cfg.max_length)
                        for ex in examples) if r is not None]
    teacher.model.eval()
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    trainer = kd_trainer_class()(model=model, args=args, train_dataset=Dataset.from_list(rows),
                                 processing_class=tokenizer, peft_config=peft, data_collator=KDCollator(pad))
    trainer.teacher, trainer.mode = teacher, cfg.loss
    trainer.temperature, trainer.kd_weight = cfg.kd_temperature, cfg.kd_weight
    return trainer
