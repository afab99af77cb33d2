"""The embedded default's task pack: knowledge about Zorbia, an invented country.

Distilling a knowledge document into weights (context distillation): the teacher is a chat model given the Zorbia
knowledge sheet as its system prompt (the pack's `context`), the student the same or a smaller model without it. No
model knows these facts unaided, so the student starts far behind, and every phrasing of a fact in the test split is
one that no training item copies. Facts and phrasings live in packs/zorbia.json; categories become modules.
Split per fact, deterministic for `split_seed`: 1 phrasing seeds synthesis, 3 are probes, the rest are test items.
"""
from __future__ import annotations

import json
import random
from importlib import resources

from ioa_state import ConfigError, Item, TaskConfig
from tasks.checkers import contains_check


class ZorbiaPack:
    """Short-answer questions about Zorbia; answers checked by containment of the normalised reference."""

    name = "zorbia"
    checker = "contains"
    synthesis = "paraphrase"  # a synthesized item asks for the same fact as its seed, so the seed's reference verifies it

    def __init__(self, task: TaskConfig):
        self.task = task
        data = json.loads((resources.files("tasks.packs") / "zorbia.json").read_text())
        self.facts = data["facts"]
        self.context = data["sheet_intro"] + "\n" + "\n".join(f"- {f['fact']}" for f in self.facts)
        self.n_seed = task.n_seed or 1
        self.n_probe = task.n_probe or 3

    def items(self) -> list[Item]:
        out: list[Item] = []
        for fact in self.facts:
            questions = list(fact["questions"])
            rng = random.Random(f"{self.task.split_seed}:{fact['id']}")
            rng.shuffle(questions)
            if len(questions) < self.n_seed + self.n_probe + 1:
                raise ConfigError(f"zorbia fact {fact['id']} has {len(questions)} phrasings; n_seed + n_probe must leave one for test")
            for i, q in enumerate(questions):
                split = "seed" if i < self.n_seed else "probe" if i < self.n_seed + self.n_probe else "test"
                out.append(Item(id=f"{fact['id']}-{i}", prompt=q, reference=fact["answer"], category=fact["category"],
                                split=split, meta={"fact": fact["id"]}))
        return out[: self.task.limit] if self.task.limit else out

    def format_prompt(self, item: Item) -> str:
        return item.prompt

    def check(self, item: Item, answer: str) -> float:
        return contains_check(answer, item.reference or "")
