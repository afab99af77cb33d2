"""The seed items as worked examples (adapter.seed_examples): in a round written from a module's seeds, each seed
item's own question is a candidate before the rewrites, answered by the teacher, verified against its reference,
deduplicated; a seed that duplicates a gate item is dropped before its answer is paid for; a round written from
wrong answers asks no seed, and with adapter.remedial_examples (off by default) the remedial-source items the
student missed instead; a seed kept earlier in the run, and the switch turned off ask none."""
from __future__ import annotations

import json

from conftest import make_items

from agents import adapter
from ioa_state import LearnerState, Module, Stage
from ioa_state.records import WrongAnswer

FACTS = {"rivers": [("What is the river of Zorbia?", "Tamsel"), ("What is the lake of Zorbia?", "Orm")]}


def _state(items, gate_ids=None):
    seed = [it.id for it in items if it.split == "seed"]
    probes = [it.id for it in items if it.split == "probe"]
    m = Module(id="rivers", name="rivers", seed_ids=seed, teacher_score=1.0,
               gate_ids=probes[:4] if gate_ids is None else gate_ids, remedial_ids=probes[4:])
    return LearnerState(run_id="t", modules={"rivers": m},
                        stages=[Stage(index=0, modules=["rivers"], difficulty=1.0, status="active")])


def teacher(req):
    if req.tag.get("step") == "question":
        return "Which river runs longest through Zorbia?" if "river" in req.messages[-1]["content"] \
            else "Which lake lies in Zorbia?"
    q = req.messages[-1]["content"]
    return "The river is the Tamsel." if "river" in q else "I do not know."


def _lines(svc, ref):
    return [json.loads(line) for line in (svc.run_dir / ref.path).read_text().splitlines()]


def _synthesize(services, items, state, **over):
    svc = services(items, teacher, lambda p: "", **{"thresholds.samples_per_seed": 2, "min_items": 1, **over})
    out = adapter.synthesize(state, svc)
    return svc, _lines(svc, out["item_files"][-1]), _lines(svc, out["dropped_files"][-1])


def test_a_first_round_keeps_each_seed_verified_before_its_rewrites(services):
    items = make_items(FACTS, n_probe=8, n_test=0)
    svc, kept, dropped = _synthesize(services, items, _state(items, gate_ids=[]))
    seeds = [k for k in kept if k["question_template"] == adapter.SEED_TEMPLATE]
    assert [k["prompt"] for k in seeds] == ["Q0 What is the river of Zorbia?"]  # the river's seed, as asked
    assert seeds[0]["verification"] == {"method": "checker", "score": 1.0} and kept[0] == seeds[0]
    assert seeds[0]["answer"].endswith("Answer: Tamsel")  # shaped like every item (the fixed template)
    wrong_lake = [d for d in dropped if d["question"] == "Q0 What is the lake of Zorbia?"]
    assert [d["reason"].split(":")[0] for d in wrong_lake] == ["verification failed"]  # verified like every item
    # the seeds' answer calls carry the adaptations, as every answer call does
    seed_calls = [r for r in svc.teacher.requests if r.messages[-1]["content"].startswith("Q0 ")]
    assert len(seed_calls) == 2 and all("small explicit steps" in r.messages[0]["content"] for r in seed_calls)


def test_a_seed_that_duplicates_a_gate_item_is_dropped_before_its_answer_is_paid_for(services):
    items = make_items(FACTS, n_probe=8, n_test=0)
    # the gate holds a phrasing of each fact ("Q1 What is the river of Zorbia?", ...): each seed duplicates one
    svc, kept, dropped = _synthesize(services, items, _state(items, gate_ids=["rivers-0-1", "rivers-1-1"]))
    assert not [k for k in kept if k["question_template"] == adapter.SEED_TEMPLATE]
    gate = [d for d in dropped if d["question"].startswith("Q0 ")]
    assert gate and all(d["reason"].startswith("duplicate of a gate item") for d in gate)
    assert not [r for r in svc.teacher.requests if r.messages[-1]["content"].startswith("Q0 ")]


def test_rounds_from_wrong_answers_earlier_kept_seeds_and_the_switch_off_ask_no_seed(services):
    items = make_items(FACTS, n_probe=8, n_test=0)
    svc = services(items, teacher, lambda p: "")
    state = _state(items, gate_ids=[])
    plan = adapter.round_plan(state, svc)
    assert [c.question for c in adapter.seed_candidates(state, svc, plan, {"rivers": []})] == [
        "Q0 What is the river of Zorbia?", "Q0 What is the lake of Zorbia?"]
    earlier = {"rivers": [("Q0 What is the river of Zorbia?", "The Tamsel.")]}
    assert [c.question for c in adapter.seed_candidates(state, svc, plan, earlier)] == [
        "Q0 What is the lake of Zorbia?"]
    # a remediate round written from the student's wrong answers: the seeds are not its sources
    probe = next(it for it in items if it.split == "probe")
    rows = [WrongAnswer(module="rivers", item=probe.id, prompt=probe.prompt, answer="The Nile.").model_dump()]
    ref = adapter.write_jsonl(svc.run_dir, "items/wrong.jsonl", rows, kind="items")
    remediate = state.model_copy(update={"mode": "remediate", "wrong_answers": ref})
    assert adapter.seed_candidates(remediate, svc, plan, {"rivers": []}) == []  # adapter.remedial_examples off
    rem = services(items, teacher, lambda p: "", **{"adapter.remedial_examples": True})
    wrong_items = adapter.seed_candidates(remediate, rem, plan, {"rivers": []})
    assert [(c.question, c.wrong, c.template) for c in wrong_items] == [
        (svc.pack.format_prompt(probe), "The Nile.", adapter.SEED_TEMPLATE)]  # the item it missed, not the seeds
    off = services(items, teacher, lambda p: "", **{"adapter.seed_examples": False})
    assert adapter.seed_candidates(state, off, adapter.round_plan(state, off), {"rivers": []}) == []


def test_a_remedial_round_keeps_the_item_the_student_missed_answered_and_verified(services):
    """adapter.remedial_examples (opt-in): the remedial-source item the student got wrong is a candidate before its
    rewrites, answered by the teacher under the adaptations and verified against its reference; kept as
    from_wrong_answer. A gate item is never asked (passing the gate stays no memorisation)."""
    from ioa_state.state import Decision

    items = make_items(FACTS, n_probe=8, n_test=0)
    probes = [it.id for it in items if it.split == "probe"]
    state = _state(items, gate_ids=[i for i in probes if i.startswith("rivers-1-")])  # the gate asks of the lake
    m = state.modules["rivers"].model_copy(update={"remedial_ids": [i for i in probes if i.startswith("rivers-0-")]})
    state = state.model_copy(update={"modules": {"rivers": m}})
    probe = next(it for it in items if it.id == m.remedial_ids[0])  # "Q1 What is the river of Zorbia?"
    svc = services(items, teacher, lambda p: "", **{"thresholds.samples_per_seed": 2, "min_items": 1,
                                                    "adapter.remedial_examples": True})
    rows = [WrongAnswer(module="rivers", item=probe.id, prompt=probe.prompt, answer="The Nile.",
                        reference=probe.reference).model_dump()]
    ref = adapter.write_jsonl(svc.run_dir, "items/c0-s0-r0-wrong.jsonl", rows, kind="items")
    remediate = Decision(kind="remediate", cycle=0, stage=0, round=0, reason="first round", failing=["rivers"])
    state = state.model_copy(update={"mode": "remediate", "wrong_answers": ref, "decisions": [remediate],
                                     "stages": [state.stages[0].model_copy(update={"rounds": 1})]})
    out = adapter.synthesize(state, svc)
    kept = _lines(svc, out["item_files"][-1])
    assert kept[0]["prompt"] == svc.pack.format_prompt(probe) and kept[0]["from_wrong_answer"]
    assert kept[0]["question_template"] == adapter.SEED_TEMPLATE and kept[0]["answer"].endswith("Answer: Tamsel")
    assert kept[0]["verification"] == {"method": "checker", "score": 1.0}
    asked = {r.messages[-1]["content"] for r in svc.teacher.requests if r.tag.get("step") == "answer"}
    gate = {svc.pack.format_prompt(svc.items[i]) for i in m.gate_ids}
    assert svc.pack.format_prompt(probe) in asked and not asked & gate
