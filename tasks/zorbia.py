"""Two task packs about Zorbia, an invented country: `zorbia-mixed` (the embedded default) and `zorbia`.

Distilling a knowledge document into weights (context distillation): the teacher is a chat model given the Zorbia
knowledge sheet as its system prompt (the pack's `context`), the student the same or a smaller model without it. No
model knows these facts unaided, so the student starts far behind, and every phrasing of a fact in the test split is
one that no training item copies. Facts and phrasings live in packs/zorbia.json; categories become modules.
Split per fact, deterministic for `split_seed`: 1 phrasing seeds synthesis, 3 are probes, the rest are test items.

`zorbia-mixed` (ZorbiaMixedPack, packs/zorbia_mixed.json) is the embedded default since issue 12: bake a knowledge
document into a student without breaking what it already knows. The same sheet extended, and the domain mixes two
kinds of module, each fact's `kind` in packs/zorbia_mixed.json (kept in `Item.meta`, read by no decision):
- unknown: facts from the sheet (geography, culture, economy, government); the student cannot know them;
- known: general knowledge the student already answers without any sheet (capitals, opposites, plurals); they need
  no sheet entry, and the run has to leave them alone and keep them known.
Categories become modules. Split per fact, deterministic for `split_seed`: its 5 phrasings are shuffled, `n_seed`
(default 1) seed synthesis, the next `n_probe` (default 2) are probes, the rest (2) are test items, so every test
phrasing of a fact is one that no seed or probe copies. A module has 5 facts (economy 6): 5 seed, 10 probe (gate and
remedial halves of 5) and 10 test items; 36 facts, 180 items in all. The data is written by
benchmarks/domain/build_pack.py, which also holds the candidates that were measured and not kept.

Measured on the test split (benchmarks/measure_domain.py --items test: SmolLM2-135M-Instruct, greedy, 48 new tokens,
batch 32, contains checker; teacher with the sheet, student without):

| module     | kind    | teacher | student | test items | seed / probe items |
|------------|---------|---------|---------|------------|--------------------|
| geography  | unknown | 0.70    | 0.00    | 10         | 5 / 10             |
| culture    | unknown | 0.70    | 0.00    | 10         | 5 / 10             |
| economy    | unknown | 0.75    | 0.00    | 12         | 6 / 12             |
| government | unknown | 0.70    | 0.00    | 10         | 5 / 10             |
| capitals   | known   | 1.00    | 0.90    | 10         | 5 / 10             |
| opposites  | known   | 0.80    | 0.90    | 10         | 5 / 10             |
| plurals    | known   | 0.60    | 0.80    | 10         | 5 / 10             |

(2026-12-01, split_seed 0; 82 items took 929 s for the teacher and 727 s for the student on a 2-core machine
shared with other jobs, load ~14.) The bar was: unknown modules teacher >= 0.7 and student <= 0.2; known modules
student/teacher >= 0.9 (0.90, 1.12, 1.33). On the known modules the sheet lowers the teacher below the student (it
drifts to Zorbia: "the opposite meaning of 'happy' in the context of Zorbia"), so their gap is negative: mastered
from the first diagnosis.

Not kept: a procedural module converting drin to pel (needs the economy fact "One drin is worth 10 pel", with the
rule "multiply by 10" on the sheet): the teacher with the sheet answered 0.5 of its 10 test phrasings (it invents
coins, "A merde, or 2 drin in pel, is a coin worth 2000000"), below the 0.6 a module needs to be teachable here. Its
rule line stays on the sheet so that the sheet is the one measured. The longer sheet (21 facts, against 12 before)
costs the teacher accuracy: 0.7-0.75 on the fact modules (it mixes up names: "the tallest mountain is the Tamsel").

So the teacher of `zorbia-mixed` reads the sheet by passages (`context_passages = 4`, agents/context_passages.py): per
question, the sheet's opening line and the 4 fact lines most similar to the question. Measured on every phrasing
(benchmarks/measure_domain.py --passages 0 / --passages 4, 180 items, alone, 2026-12-04): teacher on geography 0.72 ->
0.92, culture 0.68 -> 0.80, economy 0.73 -> 0.83, government 0.68 -> 0.72; capitals 1.00 -> 0.88, opposites 0.84 ->
0.80, plurals 0.52 -> 0.56 (student without the sheet: 0.76 / 0.92 / 0.76 there, 0 on the facts). The fact line a
phrasing asks about is among its 4 passages for 102 of the 105 fact phrasings (96 with 2). A teacher call's system
prompt falls from the whole sheet (~300 tokens) to ~60. The choice of 4 was made before measuring and not tuned.
"""
from __future__ import annotations

import json
import random
from importlib import resources

from ioa_state import ConfigError, Item, TaskConfig
from tasks.checkers import contains_check

__all__ = ["ZorbiaMixedPack", "ZorbiaPack", "load_data", "sheet", "split_fact"]


def load_data(name: str = "zorbia.json") -> dict:
    """The pack's data file from tasks/packs."""
    return json.loads((resources.files("tasks.packs") / name).read_text())


def sheet(data: dict) -> str:
    """The teacher's knowledge sheet: the intro, one line per unknown fact, then the rules (known facts and the
    worked conversions are not on it: the student knows the first, the teacher works out the second)."""
    lines = [f"- {f['fact']}" for f in data["facts"] if f.get("kind", "unknown") == "unknown"]
    lines += [f"- {r}" for r in data.get("rules", [])]
    return data["sheet_intro"] + "\n" + "\n".join(lines)


def split_fact(fact: dict, split_seed: int, n_seed: int, n_probe: int) -> list[tuple[str, str]]:
    """(split, phrasing) for each phrasing of one fact: shuffled for `split_seed`, then n_seed seed, n_probe probe,
    the rest test (at least one)."""
    questions = list(fact["questions"])
    if len(questions) < n_seed + n_probe + 1:
        raise ConfigError(f"zorbia fact {fact['id']} has {len(questions)} phrasings; task.n_seed + task.n_probe "
                          f"({n_seed} + {n_probe}) must leave one for test")
    random.Random(f"{split_seed}:{fact['id']}").shuffle(questions)
    return [("seed" if i < n_seed else "probe" if i < n_seed + n_probe else "test", q) for i, q in enumerate(questions)]


class ZorbiaPack:
    """Short-answer questions (Zorbia facts, drin conversions, general knowledge); answers checked by containment of
    the normalised reference."""

    name = "zorbia"
    checker = "contains"
    synthesis = "paraphrase"  # a rewritten item asks for its seed's fact, so the seed's reference verifies it
    data_file = "zorbia.json"
    default_probes = 3  # phrasings per fact: 1 seed, 3 probes, the rest (2) test

    def __init__(self, task: TaskConfig):
        self.task = task
        data = load_data(self.data_file)
        self.facts = data["facts"]
        self.context = sheet(data)
        self.n_seed = task.n_seed or 1
        self.n_probe = task.n_probe or self.default_probes

    def items(self) -> list[Item]:
        out: list[Item] = []
        for fact in self.facts:
            for i, (split, q) in enumerate(split_fact(fact, self.task.split_seed, self.n_seed, self.n_probe)):
                out.append(Item(id=f"{fact['id']}-{i}", prompt=q, reference=fact["answer"], category=fact["category"],
                                split=split, meta={"fact": fact["id"], "kind": fact.get("kind", "unknown")}))
        return out[: self.task.limit] if self.task.limit else out

    def format_prompt(self, item: Item) -> str:
        return item.prompt

    def check(self, item: Item, answer: str) -> float:
        return contains_check(answer, item.reference or "")


class ZorbiaMixedPack(ZorbiaPack):
    """The mixed domain (module docstring): Zorbia facts to learn and general knowledge to keep."""

    name = "zorbia-mixed"
    data_file = "zorbia_mixed.json"
    default_probes = 2  # 5 phrasings per fact: 1 seed, 2 probes, 2 test
    context_passages = 4  # the teacher reads the sheet by passages (module docstring; teacher.context_passages)
