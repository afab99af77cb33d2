"""Task packs and the registry: deterministic disjoint splits, sizes, the JSONL pack's mapping and auto checker, and
the one-line ConfigErrors a user's mistake produces."""
from __future__ import annotations

import json
from collections import Counter

import pytest

from ioa_state import ConfigError, Item, TaskConfig
from tasks import registry
from tasks.base import TaskPack
from tasks.gsm8k import INSTRUCTION, Gsm8kPack
from tasks.jsonl import auto_checker
from tasks.registry import load_pack


def _write_jsonl(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return str(path)


def _records(n, cats=("geo", "math", "chem")):
    return [{"prompt": f"question {i}?", "answer": f"word{i}", "category": cats[i % len(cats)]} for i in range(n)]


def _ids(items, split):
    return {it.id for it in items if it.split == split}


def test_gsm8k_split_deterministic_disjoint():
    a = load_pack(TaskConfig(pack="gsm8k")).items()
    b = load_pack(TaskConfig(pack="gsm8k")).items()
    assert [(it.id, it.split) for it in a] == [(it.id, it.split) for it in b]
    seed, probe, test = _ids(a, "seed"), _ids(a, "probe"), _ids(a, "test")
    assert (len(seed), len(probe), len(test)) == Gsm8kPack.default_sizes
    assert not (seed & probe) and not (seed & test) and not (probe & test)
    assert len({it.id for it in a}) == len(a)
    assert all(it.reference and "####" in it.reference and it.category is None for it in a)
    other = load_pack(TaskConfig(pack="gsm8k", split_seed=1)).items()
    assert _ids(other, "test") != test  # another seed, another split


def test_gsm8k_sizes_limit_and_prompt():
    pack = load_pack(TaskConfig(pack="gsm8k", limit=40))  # defaults do not fit: shares 20/50/30 %
    sizes = Counter(it.split for it in pack.items())
    assert sum(sizes.values()) == 40 and sizes["seed"] == 8 and sizes["probe"] == 20 and sizes["test"] == 12
    assert all(int(it.id.split("-")[1]) < 40 for it in pack.items())
    pack = load_pack(TaskConfig(pack="gsm8k", n_seed=5, n_probe=10, n_test=7))
    assert Counter(it.split for it in pack.items()) == {"seed": 5, "probe": 10, "test": 7}
    item = pack.items()[0]
    assert pack.format_prompt(item) == f"{item.prompt}\n\n{INSTRUCTION}"
    assert pack.check(item, f"Long work...\nAnswer: {item.meta['answer']}") == 1.0
    assert pack.check(item, "Answer: -123456") == 0.0


def test_ids_stable_under_resplit():
    small = {it.id: it.prompt for it in load_pack(TaskConfig(pack="gsm8k", limit=30)).items()}
    full = {it.id: it.prompt for it in load_pack(TaskConfig(pack="gsm8k")).items()}
    assert all(full[i] == p for i, p in small.items() if i in full)


def test_humaneval_pack_items():
    pack = load_pack(TaskConfig(pack="humaneval"))
    items = pack.items()
    assert len(items) == 164 and Counter(it.split for it in items) == {"seed": 32, "probe": 80, "test": 52}
    it = next(i for i in items if i.id == "humaneval-000")
    assert it.meta["task_id"] == "HumanEval/0" and it.meta["entry_point"] == "has_close_elements"
    prompt = pack.format_prompt(it)
    assert prompt.startswith("Complete this Python function") and "def has_close_elements" in prompt


def test_jsonl_mapping_and_stratified_split(tmp_path):
    recs = [{"q": f"What is item {i}?", "a": f"thing {i}", "topic": ["geo", "math"][i % 2], "id": f"r{i}"}
            for i in range(40)]
    path = _write_jsonl(tmp_path / "data.jsonl", recs)
    task = TaskConfig(pack="jsonl", path=path, prompt_field="q", answer_field="a", category_field="topic",
                      n_seed=10, n_probe=20, n_test=10)
    items = load_pack(task).items()
    assert [it.id for it in items] == [f"r{i}" for i in range(40)]  # record ids kept, source order
    assert items[3].prompt == "What is item 3?" and items[3].reference == "thing 3" and items[3].category == "math"
    for split, n in (("seed", 10), ("probe", 20), ("test", 10)):
        cats = Counter(it.category for it in items if it.split == split)
        assert cats == {"geo": n // 2, "math": n // 2}  # every split holds each category in proportion
    assert [it.split for it in items] == [it.split for it in load_pack(task).items()]


def test_jsonl_defaults_and_missing_references(tmp_path):
    recs = [{"prompt": f"Tell me about {i}"} for i in range(10)]
    recs[0]["answer"] = None
    pack = load_pack(TaskConfig(pack="jsonl", path=_write_jsonl(tmp_path / "free.jsonl", recs)))
    items = pack.items()
    assert all(it.reference is None and it.category is None for it in items)
    assert Counter(it.split for it in items) == {"seed": 2, "probe": 5, "test": 3}
    assert items[0].id == "free-00001"
    assert pack.checker == "rouge"  # nothing to compare against but the teacher's (long) answer
    with pytest.raises(ValueError, match="no reference"):
        pack.check(items[0], "anything")


@pytest.mark.parametrize("refs, expected", [
    (["72", "#### 1,000", "$5", None], "numeric"),
    (["Paris", "the red one", "42"], "contains"),
    (["Paris", "a much longer reference answer with many words"], "rouge"),
    ([None, None], "rouge"),
])
def test_auto_checker(refs, expected):
    assert auto_checker(refs) == expected


def test_jsonl_auto_and_explicit_checker(tmp_path):
    recs = [{"prompt": f"{i}+{i}?", "answer": 2 * i} for i in range(8)]
    path = _write_jsonl(tmp_path / "sums.jsonl", recs)
    pack = load_pack(TaskConfig(pack="jsonl", path=path))
    assert pack.checker == "numeric" and pack.items()[3].reference == "6"
    assert pack.check(pack.items()[3], "3+3 makes 6") == 1.0
    assert load_pack(TaskConfig(pack="jsonl", path=path, checker="exact")).checker == "exact"


def test_jsonl_code_checker(tmp_path):
    recs = [{"prompt": "Write add(a, b).", "tests": ["assert add(1, 2) == 3", "assert add(0, 0) == 0"]},
            {"prompt": "Write neg(x).", "tests": ["assert neg(2) == -2"]},
            {"prompt": "Write one().", "tests": ["assert one() == 1"]},
            {"prompt": "Write two().", "tests": ["assert two() == 2"]}]
    pack = load_pack(TaskConfig(pack="jsonl", path=_write_jsonl(tmp_path / "mbpp.jsonl", recs), answer_field="tests",
                                checker="code"))
    item = next(i for i in pack.items() if i.prompt.startswith("Write add"))
    assert pack.check(item, "```python\ndef add(a, b):\n    return a + b\n```") == 1.0
    assert pack.check(item, "```python\ndef add(a, b):\n    return a - b\n```") == 0.0


def test_registry_unknown_pack():
    with pytest.raises(ConfigError, match="unknown task pack 'nope'.*set task.pack"):
        load_pack(TaskConfig(pack="nope"))


def test_registry_missing_module(monkeypatch):
    monkeypatch.setitem(registry.PACKS, "ghost", ("tasks.no_such_pack_module", "GhostPack"))
    with pytest.raises(ConfigError, match="not installed"):
        load_pack(TaskConfig(pack="ghost"))


def test_registry_jsonl_errors(tmp_path):
    with pytest.raises(ConfigError, match="needs task.path"):
        load_pack(TaskConfig(pack="jsonl"))
    with pytest.raises(ConfigError, match="not found"):
        load_pack(TaskConfig(pack="jsonl", path=str(tmp_path / "missing.jsonl")))
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n\n")
    with pytest.raises(ConfigError, match="no records"):
        load_pack(TaskConfig(pack="jsonl", path=str(empty)))
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "ok"}\n{not json\n')
    with pytest.raises(ConfigError, match="line 2 is not valid JSON"):
        load_pack(TaskConfig(pack="jsonl", path=str(bad)))
    path = _write_jsonl(tmp_path / "d.jsonl", _records(12))
    with pytest.raises(ConfigError, match="has no field 'question'.*task.prompt_field"):
        load_pack(TaskConfig(pack="jsonl", path=path, prompt_field="question"))
    with pytest.raises(ConfigError, match="field 'label' \\(task.answer_field\\)"):
        load_pack(TaskConfig(pack="jsonl", path=path, answer_field="label"))
    with pytest.raises(ConfigError, match="field 'kind' \\(task.category_field\\)"):
        load_pack(TaskConfig(pack="jsonl", path=path, category_field="kind"))
    with pytest.raises(ConfigError, match="has 12 items but the splits need"):
        load_pack(TaskConfig(pack="jsonl", path=path, n_probe=20))
    tiny = _write_jsonl(tmp_path / "tiny.jsonl", _records(3))
    with pytest.raises(ConfigError, match="has 3 items"):
        load_pack(TaskConfig(pack="jsonl", path=tiny))
    with pytest.raises(ConfigError, match="has 12 items"):
        load_pack(TaskConfig(pack="gsm8k", limit=12, n_seed=4, n_probe=8, n_test=4))


def test_error_messages_are_one_line(tmp_path):
    for task in (TaskConfig(pack="nope"), TaskConfig(pack="jsonl", path=str(tmp_path / "x.jsonl"))):
        with pytest.raises(ConfigError) as e:
            load_pack(task)
        assert "\n" not in str(e.value)


def test_checker_override_rules():
    assert load_pack(TaskConfig(pack="gsm8k", checker="contains", limit=20)).checker == "contains"
    with pytest.raises(ConfigError, match="cannot use"):
        load_pack(TaskConfig(pack="humaneval", checker="numeric"))


class _TinyPack(TaskPack):
    name = "tiny"
    checker = "contains"

    def __init__(self, task, n):
        self.n = n
        super().__init__(task)

    def _load(self):
        return [Item(id=f"t{i}", prompt=f"p{i}", reference=f"r{i}", category="ab"[i % 2]) for i in range(self.n)]


@pytest.mark.parametrize("n", [4, 5, 9, 50, 333])
def test_split_sizes_fill_and_minimums(n):
    items = _TinyPack(TaskConfig(pack="tiny"), n).items()
    sizes = Counter(it.split for it in items)
    assert sum(sizes.values()) == n and sizes["seed"] >= 1 and sizes["probe"] >= 2 and sizes["test"] >= 1


def test_split_partial_explicit_sizes():
    items = _TinyPack(TaskConfig(pack="tiny", n_probe=60), 100).items()
    sizes = Counter(it.split for it in items)
    assert sizes["probe"] == 60 and sizes["seed"] + sizes["test"] == 40 and sizes["seed"] < sizes["test"]


def test_duplicate_ids_rejected():
    class Dup(_TinyPack):
        def _load(self):
            return [Item(id="same", prompt=str(i)) for i in range(6)]

    with pytest.raises(ConfigError, match="duplicate item ids"):
        Dup(TaskConfig(pack="tiny"), 6).items()
