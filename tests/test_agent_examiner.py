"""The examiner and the transition nodes on hand-made states with a scripted student: the exam's observation, the
stored §4 decision, forgetting of a passed module, the wrong answers written for remediation, and the transitions."""
from __future__ import annotations

import json

from conftest import make_items

from agents import examiner, transitions
from ioa_state import LearnerState, Module, Stage

FACTS = {"rivers": [("river of Zorbia?", "Tamsel")], "money": [("currency of Zorbia?", "drin")]}


def _state(items, passed=()):
    mods = {}
    for cat in FACTS:
        probes = [it.id for it in items if it.category == cat and it.split == "probe"]
        mods[cat] = Module(id=cat, name=cat, gate_ids=probes[:4], remedial_ids=probes[4:], teacher_score=1.0,
                           teacher_level_scores={1: 1.0}, item_levels={i: 1 for i in probes})
    return LearnerState(run_id="t", modules=mods, targets=["rivers", "money"], passed=list(passed),
                        stages=[Stage(index=0, modules=["rivers"], difficulty=1.0, status="active")], total_rounds=1)


def test_an_exam_below_the_gate_stores_remediate_and_the_wrong_answers(services):
    items = make_items(FACTS)
    # the student knows two of the eight rivers phrasings (Q1, Q2)
    svc = services(items, lambda r: "", lambda p: "Tamsel" if p.startswith(("Q1 ", "Q2 ")) and "river" in p else "no")
    out = examiner.examine(_state(items), svc)
    obs = out["observations"][-1]
    assert obs.scores["rivers"] == 0.5 and out["stages"][0].rounds == 1
    assert obs.scores["money"] == 0.0 and obs.counts["money"] == 4          # watched: watch_items 4 gate items
    d = out["decisions"][-1]
    assert d.kind == "remediate" and d.failing == ["rivers"] and d.numbers["min_ratio"] == 0.5
    wrong = [json.loads(x) for x in (svc.run_dir / out["wrong_answers"].path).read_text().splitlines()]
    assert {w["item"] for w in wrong} == set(out["modules"]["rivers"].remedial_ids)
    assert svc.trace.of("decision")[0]["decision"] == "remediate"


def test_the_exam_event_names_the_items_each_module_missed_with_the_students_answer(services):
    items = make_items(FACTS)
    svc = services(items, lambda r: "", lambda p: "Tamsel" if p.startswith(("Q1 ", "Q2 ")) and "river" in p else
                   "It is the Velmor. It flows north.")
    state = _state(items)
    examiner.examine(state, svc)
    ev = svc.trace.of("exam")[0]
    gate = state.modules["rivers"].gate_ids
    assert ev["modules"] == ["rivers", "money"] and ev["items"] == {"rivers": 4, "money": 4}
    assert ev["scores"] == {"rivers": 0.5, "money": 0.0} and ev["ratios"] == {"rivers": 0.5, "money": 0.0}
    missed = ev["missed"]["rivers"]
    known = {it.id for it in items if it.prompt.startswith(("Q1 ", "Q2 "))}
    assert [m["item"] for m in missed] == [i for i in gate if i not in known]
    assert len(missed) == 2 and missed[0]["answer"] == "It is the Velmor." and missed[0]["reference"] == "Tamsel"
    assert len(ev["missed"]["money"]) == 4


def test_a_passed_module_that_falls_is_flagged_as_forgotten(services):
    items = make_items(FACTS)
    svc = services(items, lambda r: "", lambda p: "Tamsel")
    out = examiner.examine(_state(items, passed=["money"]), svc)
    assert out["forgetting"] == ["money"] and svc.trace.of("forgetting")[0]["module"] == "money"
    assert out["decisions"][-1].kind == "advance"


def test_the_advance_transition_closes_the_stage_and_rediagnoses(services):
    items = make_items(FACTS)
    svc = services(items, lambda r: "", lambda p: "Tamsel")
    state = _state(items)
    after_exam = state.model_copy(update=examiner.examine(state, svc))
    out = transitions.transition(after_exam, svc)
    assert out["stages"][0].status == "passed" and out["passed"] == ["rivers"]
    assert out["decisions"][-1].kind == "rediagnose" and out["cycle"] == 1
    assert [e["decision"] for e in svc.trace.of("decision")] == ["advance", "rediagnose"]


def test_a_module_known_from_the_start_is_examined_and_flagged_when_it_falls(services):
    # money was never in a stage but known at the first diagnosis: the exam scores all its gate items (not a watch
    # sample), and a fall below tau_mastery puts it into replay, marked as known from the start
    items = make_items(FACTS)
    svc = services(items, lambda r: "", lambda p: "Tamsel")
    state = _state(items).model_copy(update={"known": ["money"], "targets": ["rivers"]})
    out = examiner.examine(state, svc)
    assert out["observations"][-1].counts["money"] == 4 and out["forgetting"] == ["money"]
    ev = svc.trace.of("forgetting")[0]
    assert ev["known_at_start"] is True and ev["action"] == "replay items written from its seeds"
    # still known: nothing to flag
    svc2 = services(items, lambda r: "", lambda p: "Tamsel drin")
    assert examiner.examine(state, svc2)["forgetting"] == []
