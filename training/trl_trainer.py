"""TRL's SFTTrainer as the trainer node uses it: counting the tokens it trained on, with transformers' own loss.

training/trainer.py builds its SFT runs from it and training/distill.py subclasses it for the KL loss; neither
imports the other at module level.
"""
from __future__ import annotations

import functools

import torch

from training.examples import IGNORE


@functools.lru_cache(maxsize=1)
def stats_trainer_class():
    """SFTTrainer counting the tokens it trained on, all processes summed (built on first use: importing TRL is
    slow, and most imports of this module never train). training/distill.py subclasses it for the KL loss."""
    from transformers import Trainer
    from trl import SFTTrainer

    class StatsSFTTrainer(SFTTrainer):
        _tok = _ans = 0

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            if model.training:
                self._tok += int(inputs["attention_mask"].sum())
                self._ans += int((inputs["labels"] != IGNORE).sum())
            # transformers' own loss (the model's cross-entropy over num_items_in_batch, scaled for DDP as TRL's):
            # TRL's fused LM head also computes entropy and token accuracy over the vocabulary at every step, which
            # made a CPU step up to 2x slower than the hand loop's (benchmarks/bench_training.py)
            inputs["use_cache"] = False
            return Trainer.compute_loss(self, model, inputs, return_outputs=return_outputs,
                                        num_items_in_batch=num_items_in_batch)

        def token_counts(self) -> tuple[int, int]:
            t = torch.tensor([self._tok, self._ans], device=self.accelerator.device)
            t = self.accelerator.reduce(t, reduction="sum")
            return int(t[0]), int(t[1])

    return StatsSFTTrainer
