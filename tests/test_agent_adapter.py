"""The Adapter on a hand-made stage with a scripted teacher: questions written from seeds, answers verified against
the source's reference, duplicates of gate items dropped, each drop with its reason, a top-up pass for a module
short of min_items, and the no_adapter variant that keeps the items as first written."""
from __future__ import annotations

import json

import pytest
from conftest import make_items

from agents import adapter
from baselines.ablations import node_variants
from ioa_state import LearnerState, Module, Stage

FACTS = {"rivers": [("What is the river of Zorbia?", "Tamsel")]}


def _state(items, mode="initial"):
    seed = [it.id for it in items if it.split == "seed"]
    probes = [it.id for it in items if it.split == "probe"]
    m = Module(id="rivers", name="rivers", seed_ids=seed, gate_ids=probes[:4], remedial_ids=probes[4:],
               teacher_score=1.0)
    return LearnerState(run_id="t", modules={"rivers": m}, stages=[Stage(index=0, modules=["rivers"], difficulty=1.0,
                                                                         status="active")], mode=mode)


def rewrites(replies):
    """A teacher that answers the k-th rewrite request with replies[k % len] and every answer request with the fact."""
    count = {"q": 0}

    def reply(req):
        if req.tag.get("step") == "question":
            count["q"] += 1
            return replies[(count["q"] - 1) % len(replies)]
        return "The river is the Tamsel." if "wide" not in req.messages[-1]["content"] else "I am not sure."
    return reply


def _run(services, reply, steps=None, **over):
    items = make_items(FACTS, n_probe=8)
    svc = services(items, reply, lambda p: "", **{"thresholds.samples_per_seed": 4, "min_items": 1, **over})
    state = _state(items)
    out = adapter.synthesize(state, svc) if steps is None else steps(state, svc)
    kept = [json.loads(line) for line in (svc.run_dir / out["item_files"][-1].path).read_text().splitlines()]
    dropped = [json.loads(line) for line in (svc.run_dir / out["dropped_files"][-1].path).read_text().splitlines()]
    return svc, kept, dropped


def test_items_are_verified_deduplicated_and_every_drop_has_a_reason(services):
    replies = ["Which river runs longest through Zorbia?", "I would rather not.",
               "Which wide river is in Zorbia?", "Q1 What is the river of Zorbia?"]
    svc, kept, dropped = _run(services, rewrites(replies))
    assert [k["prompt"] for k in kept] == ["Which river runs longest through Zorbia?"]
    assert kept[0]["answer"].endswith("Answer: Tamsel") and kept[0]["template_filled"]
    assert kept[0]["verification"] == {"method": "checker", "score": 1.0}
    assert kept[0]["adaptations"] == ["concretization", "decomposition", "cognitive_load", "template", "plain_language"]
    reasons = sorted({d["reason"].split(":")[0] for d in dropped})
    assert reasons == ["duplicate of a gate item (ROUGE-L > 0.7)", "unparseable question", "verification failed"]
    events = svc.trace.of("synthesis")
    assert events[0]["kept"] == 1 and events[0]["dropped"] == len(dropped)


def test_a_module_short_of_min_items_gets_top_up_passes_then_stops_the_run(services):
    items = make_items(FACTS, n_probe=8)
    svc = services(items, rewrites(["I would rather not."]), lambda p: "", **{"thresholds.samples_per_seed": 4})
    with pytest.raises(adapter.ItemShortage, match="fewer than min_items 2"):
        adapter.synthesize(_state(items), svc)
    passes = sorted(
        {r.sample_index // adapter.PASS_STRIDE for r in svc.teacher.requests if r.tag["step"] == "question"}
    )
    assert passes == [0, 1, 2]                       # the first pass and top_up_passes 2, each with fresh samples


def test_no_adapter_keeps_every_parsed_item_as_first_written(services):
    steps = node_variants("no_adapter")["synthesize"]
    replies = ["Which river runs longest through Zorbia?", "Which wide river is in Zorbia?"]
    svc, kept, dropped = _run(services, rewrites(replies), steps=steps)
    assert len(kept) == 4 and dropped == []
    assert {k["answer"] for k in kept} == {"The river is the Tamsel.", "I am not sure."}
    assert all(k["adaptations"] == [] and k["verification"] == {"method": "none"} for k in kept)
    answer_reqs = [r for r in svc.teacher.requests if r.tag.get("step") == "answer"]
    assert "small explicit steps" not in answer_reqs[0].messages[0]["content"]


def test_a_forgotten_known_module_never_trained_gets_replay_items_from_its_seeds(services):
    facts = {"rivers": FACTS["rivers"], "money": [("What is the currency of Zorbia?", "drin")]}
    items = make_items(facts, n_probe=8)

    def reply(req):
        if req.tag.get("step") == "question":
            rivers = req.tag["module"] == "rivers"
            return "Which river runs through Zorbia?" if rivers else "What money does Zorbia use?"
        return "The Tamsel." if "river" in req.messages[-1]["content"] else "The drin."

    svc = services(items, reply, lambda p: "", **{"thresholds.samples_per_seed": 2, "min_items": 1})
    state = _state(items)
    money = Module(id="money", name="money", seed_ids=[i.id for i in items if i.category == "money" and
                                                        i.split == "seed"], teacher_score=1.0)
    state = state.model_copy(update={"modules": {**state.modules, "money": money}, "known": ["money"],
                                     "forgetting": ["money"]})
    assert adapter.replay_modules(state) == ["money"]
    out = adapter.synthesize(state, svc)
    kept = [json.loads(line) for line in (svc.run_dir / out["item_files"][-1].path).read_text().splitlines()]
    assert {r["module"] for r in kept} == {"rivers", "money"}
    # once trained, its items replay from the files: none written again
    assert adapter.replay_modules(state.model_copy(update={"trained": ["money"]})) == []
