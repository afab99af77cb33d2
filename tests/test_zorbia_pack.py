"""The mixed domain (tasks/packs/zorbia_mixed.json, pack `zorbia-mixed`): module sizes, the sheet, the split, knobs."""
from __future__ import annotations

from collections import Counter, defaultdict

import pytest

from ioa_state import ConfigError, TaskConfig
from tasks.registry import load_pack
from tasks.zorbia import ZorbiaMixedPack, ZorbiaPack, load_data, sheet, split_fact

DATA = load_data("zorbia_mixed.json")


def test_every_module_has_enough_probes_and_tests_for_the_identifier():
    items = ZorbiaMixedPack(TaskConfig(pack="zorbia-mixed")).items()
    per = defaultdict(Counter)
    for it in items:
        per[it.category][it.split] += 1
    assert len(per) >= 6
    for module, n in per.items():
        assert n["probe"] >= 8, module   # min_probe_items: halved into gate and remedial parts
        assert n["test"] >= 10, module   # one test item moves a module's score by at most 10 points
        assert n["seed"] >= 1, module


def test_the_domain_holds_known_and_unknown_modules():
    kinds = {f["category"]: f["kind"] for f in DATA["facts"]}
    assert set(Counter(kinds.values())) == {"known", "unknown"}
    for f in DATA["facts"]:
        assert kinds[f["category"]] == f["kind"], f["id"]  # a module is of one kind


def test_sheet_holds_the_unknown_facts_and_the_rule_only():
    text = sheet(DATA)
    for f in DATA["facts"]:
        assert (f["fact"] in text) == (f["kind"] == "unknown"), f["id"]
    assert "multiply the number of drin by 10" in text
    assert "Paris" not in text  # known facts need no sheet entry
    assert ZorbiaMixedPack(TaskConfig(pack="zorbia-mixed")).context == text


def test_references_check_as_answers_and_reject_others():
    pack = ZorbiaMixedPack(TaskConfig(pack="zorbia-mixed"))
    for it in pack.items():
        assert pack.check(it, f"I think it is {it.reference}.") == 1.0
    paris = next(it for it in pack.items() if it.meta["fact"] == "capitals-france")
    assert pack.check(paris, "The capital of France is Lyon.") == 0.0


def test_test_phrasings_are_never_a_seed_or_probe_phrasing_of_the_same_fact():
    by_fact = defaultdict(lambda: defaultdict(set))
    for it in ZorbiaMixedPack(TaskConfig(pack="zorbia-mixed")).items():
        by_fact[it.meta["fact"]][it.split].add(it.prompt.lower().strip(" ?."))
    for fact, splits in by_fact.items():
        assert not splits["test"] & (splits["seed"] | splits["probe"]), fact


def test_n_seed_and_n_probe_set_the_split_per_fact():
    items = load_pack(TaskConfig(pack="zorbia-mixed", n_seed=2, n_probe=1)).items()
    per_fact = defaultdict(Counter)
    for it in items:
        per_fact[it.meta["fact"]][it.split] += 1
    assert all(c["seed"] == 2 and c["probe"] == 1 and c["test"] == 2 for c in per_fact.values())


def test_a_split_that_leaves_no_test_phrasing_is_a_config_error():
    with pytest.raises(ConfigError, match="must leave one for test"):
        load_pack(TaskConfig(pack="zorbia-mixed", n_seed=2, n_probe=3))
    fact = {"id": "x", "questions": ["a?", "b?", "c?"]}
    assert [s for s, _ in split_fact(fact, 0, 1, 1)] == ["seed", "probe", "test"]
    with pytest.raises(ConfigError):
        split_fact(fact, 0, 2, 1)


def test_the_first_fifty_items_are_the_geography_and_culture_modules():
    # tests take task.limit 50 as a small two-module domain
    items = ZorbiaMixedPack(TaskConfig(pack="zorbia-mixed", limit=50)).items()
    assert Counter(it.category for it in items) == {"geography": 25, "culture": 25}


def test_the_embedded_default_keeps_its_data_and_split():
    """`zorbia` (the embedded default) is unchanged: 12 facts, 6 phrasings each, 1 seed, 3 probes, 2 tests."""
    items = ZorbiaPack(TaskConfig()).items()
    assert len(items) == 72 and Counter(it.split for it in items) == {"seed": 12, "probe": 36, "test": 24}
    assert all(it.meta["kind"] == "unknown" for it in items)
