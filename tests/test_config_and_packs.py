"""The embedded default's config is documented field by field, and its task pack is real and well split."""
from pathlib import Path

import yaml

from ioa_state import RunConfig, load_config
from tasks.zorbia import ZorbiaPack

ROOT = Path(__file__).resolve().parents[1]


def _keys(d, prefix=""):
    out = set()
    for k, v in d.items():
        out.add(prefix + k)
        if isinstance(v, dict) and k != "roles":
            out |= _keys(v, prefix + k + ".")
    return out


def test_default_example_documents_every_field_with_the_embedded_values():
    doc = yaml.safe_load((ROOT / "examples/default.yaml").read_text())
    defaults = load_config(None).model_dump(mode="json")
    assert _keys(doc) == _keys(defaults)
    assert load_config(ROOT / "examples/default.yaml") == load_config(None)
    # the embedded default keeps the paper's thresholds but one, named in EMBEDDED_DEFAULT
    from ioa_state.config import EMBEDDED_DEFAULT
    paper, embedded = RunConfig().thresholds.model_dump(), load_config(None).thresholds.model_dump()
    assert {k for k in paper if paper[k] != embedded[k]} == set(EMBEDDED_DEFAULT["thresholds"])
    assert load_config(None).teacher.max_reasks == EMBEDDED_DEFAULT["teacher"]["max_reasks"]


def test_every_example_config_loads():
    for path in (ROOT / "examples").glob("*.yaml"):
        load_config(path)


def test_zorbia_split_is_deterministic_disjoint_and_per_fact():
    a, b = ZorbiaPack(RunConfig().task).items(), ZorbiaPack(RunConfig().task).items()
    assert [i.model_dump() for i in a] == [i.model_dump() for i in b]
    assert len({i.id for i in a}) == len(a)
    by_fact = {}
    for it in a:
        by_fact.setdefault(it.meta["fact"], []).append(it.split)
    for splits in by_fact.values():
        assert splits.count("seed") == 1 and splits.count("probe") == 3 and splits.count("test") >= 1
    prompts = {}
    for it in a:
        prompts.setdefault(it.split, set()).add(it.prompt)
    assert not (prompts["test"] & (prompts["seed"] | prompts["probe"]))
    other = ZorbiaPack(RunConfig(task={"split_seed": 1}).task).items()
    assert [i.prompt for i in other] != [i.prompt for i in a]


def test_zorbia_context_holds_every_fact_and_checker_uses_references():
    pack = ZorbiaPack(RunConfig().task)
    item = next(i for i in pack.items() if i.meta["fact"] == "capital")
    assert "Velmora" in pack.context
    assert pack.check(item, "The capital of Zorbia is Velmora.") == 1.0
    assert pack.check(item, "It is Paris.") == 0.0
