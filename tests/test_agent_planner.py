"""The planner (Organizer) on hand-made states: prerequisite layers (Eq. 7), item levels, the no_organizer variant."""
from __future__ import annotations

from conftest import make_items

from agents import planner
from baselines.ablations import one_stage
from ioa_state import Edge, LearnerState, Module, Observation


def _state(targets, edges=()):
    mods = {k: Module(id=k, name=k, level=1, teacher_score=1.0, teacher_level_scores={1: 1.0}) for k in "abc"}
    obs = Observation(checkpoint="initial", source="diagnose", cycle=0, round=0,
                      scores={k: 0.0 for k in mods}, level_scores={k: {1: 0.0} for k in mods})
    return LearnerState(run_id="t", modules=mods, targets=targets, edges=list(edges), observations=[obs],
                        gap={"a": 1.0, "b": 0.9, "c": 0.95})


def test_stages_follow_the_kept_prerequisites(services):
    svc = services(make_items({}), lambda r: "", lambda p: "")
    edges = [Edge(src="b", dst="a", strength=0.8, kept=True), Edge(src="c", dst="a", strength=0.2, kept=False)]
    out = planner.plan(_state(["a", "b", "c"], edges), svc)
    assert [s.modules for s in out["stages"]] == [["b", "c"], ["a"]]
    assert out["stages"][0].status == "active" and out["stages"][1].status == "pending"
    assert out["level"] == {"a": 1, "b": 1, "c": 1}            # nothing passed yet: level 1
    assert [e["modules"] for e in svc.trace.of("stage_planned")] == [["b", "c"], ["a"]]


def test_no_organizer_plans_one_stage_of_every_target(services):
    svc = services(make_items({}), lambda r: "", lambda p: "")
    edges = [Edge(src="b", dst="a", strength=0.8, kept=True)]
    out = planner.plan(_state(["a", "b", "c"], edges), svc, make_stages=one_stage)
    assert [s.modules for s in out["stages"]] == [["a", "b", "c"]]


def test_no_target_no_stage(services):
    svc = services(make_items({}), lambda r: "", lambda p: "")
    assert planner.plan(_state([]), svc)["stages"] == []
