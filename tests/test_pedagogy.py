"""Eq. 2-9 and every routing branch, on hand-made states with numbers worked out by hand."""
import math

import pytest

from baselines.ablations import one_round
from graph.routing import route_after_examine, route_after_plan
from ioa_state import Decision, Edge, LearnerState, Module, Observation, Stage, Thresholds
from ioa_state import pedagogy as ped

TH = Thresholds()


def test_eq2_gap_deficient_and_teacher_limited():
    # P_T 0.8, P_S 0.2: gap (0.8 - 0.2) / 0.8 = 0.75 > tau_gap 0.3 -> deficient
    assert ped.gap(0.8, 0.2, TH.eps) == pytest.approx(0.75)
    gaps, deficient, limited = ped.classify({"a": 0.8, "b": 0.5, "c": 0.2}, {"a": 0.2, "b": 0.4, "c": 0.0}, TH)
    assert gaps["b"] == pytest.approx(0.2)       # 0.1 / 0.5: not deficient
    assert deficient == ["a"]                      # c has gap 1.0 but P_T 0.2 < teacher_floor 0.3
    assert limited == ["c"]
    assert ped.mastery_ratio(0.72, 0.8, TH.eps) == pytest.approx(0.9)


def _obs(trained, **scores):
    return Observation(checkpoint="x", cycle=0, round=0, trained=list(trained), scores=scores,
                       counts={k: 4 for k in scores})


def test_eq3_measured_dependency_and_prior_blend():
    teacher = {"a": 0.8, "b": 0.5}
    obs = [_obs([], a=0.0, b=0.1),            # r(a) = 0 < tau_low: low condition, P_S(b) = 0.1
           _obs(["a"], a=0.8, b=0.5),         # r(a) = 1.0 >= tau_high: high condition, P_S(b) = 0.5
           _obs(["a", "b"], a=0.8, b=0.5)]    # b trained: not an observation for a -> b
    measured, n = ped.measured_dependency("a", "b", obs, teacher, TH)
    assert n == 1 and measured == pytest.approx((0.5 - 0.1) / 0.5, rel=1e-5)  # 0.8
    edges = ped.estimate_edges(["a", "b"], {("a", "b"): 0.5}, obs, teacher, TH)
    ab = next(e for e in edges if (e.src, e.dst) == ("a", "b"))
    assert ab.strength == pytest.approx((1 * 0.8 + 2 * 0.5) / 3, rel=1e-5)  # 0.6
    assert ab.kept and ab.source == "prior+measured"
    # b -> a: a was trained in every observation but the first, where r(b) is low: no high condition, no measure,
    # and no prior: no edge at all
    assert not any((e.src, e.dst) == ("b", "a") for e in edges)


def test_eq3_prior_only_until_both_conditions_observed():
    edges = ped.estimate_edges(["a", "b"], {("a", "b"): 0.25}, [_obs([], a=0.0, b=0.0)], {"a": 1, "b": 1}, TH)
    (e,) = edges
    assert e.strength == 0.25 and e.source == "prior" and not e.kept  # 0.25 <= tau_dep 0.3


def test_cycle_broken_at_weakest_edge():
    edges = [Edge(src="a", dst="b", strength=0.6, kept=True), Edge(src="b", dst="a", strength=0.4, kept=True)]
    out = ped.break_cycles(edges)
    assert [(e.src, e.dst, e.kept, e.broken_cycle) for e in out] == [("a", "b", True, False), ("b", "a", False, True)]


def test_eq4_severity():
    edges = [Edge(src="a", dst="b", strength=0.6, kept=True), Edge(src="a", dst="c", strength=0.2, kept=False)]
    sev = ped.severity({"a": 0.75, "b": 1.0}, edges, alpha=0.7)
    assert sev["a"] == pytest.approx(0.7 * 0.75 + 0.3 * 0.6)  # 0.705: only the kept edge counts
    assert sev["b"] == pytest.approx(0.7)


def test_eq5_targets_top_fraction_closed_under_prerequisites():
    edges = [Edge(src="a", dst="b", strength=0.6, kept=True), Edge(src="b", dst="c", strength=0.5, kept=True),
             Edge(src="x", dst="c", strength=0.9, kept=True)]
    sev = {"a": 0.7, "b": 0.71, "c": 0.9, "d": 0.1}
    # ceil(0.25 * 4) = 1 -> c; closure adds b, then a; x is teacher-limited: never targeted, a caveat instead
    targets, caveats = ped.select_targets(["a", "b", "c", "d"], ["x"], sev, edges, 0.25)
    assert targets == ["c", "b", "a"]
    assert len(caveats) == 1 and "x is teacher-limited" in caveats[0]
    assert ped.select_targets([], ["x"], sev, edges, 0.25) == ([], [])
    # ceil(0.5 * 4) = 2 -> c, b and closure a
    assert ped.select_targets(["a", "b", "c", "d"], [], sev, edges[:2], 0.5)[0] == ["c", "b", "a"]


def test_eq7_topological_stages_ordered_by_level_then_gap():
    edges = [Edge(src="a", dst="c", strength=0.6, kept=True), Edge(src="b", dst="c", strength=0.5, kept=True)]
    stages = ped.plan_stages(
        ["a", "b", "c"], edges, {"a": 2, "b": 1, "c": 1}, {"a": 0.5, "b": 0.6, "c": 0.6}, tau_zpd=1.0
    )
    assert [s.modules for s in stages] == [["b", "a"], ["c"]]  # b before a: level 1 < 2
    assert stages[0].difficulty == pytest.approx(0.55)


def test_eq8_zpd_split_moves_harder_modules_later():
    gaps = {"x": 0.2, "y": 0.3, "z": 0.8}
    # second layer mean gap (0.3 + 0.8) / 2 = 0.55, 0.35 above 0.2 > tau_zpd 0.15: y stays (0.1 above), z moves
    stages = ped.zpd_split([["x"], ["y", "z"]], gaps, 0.15)
    assert [s.modules for s in stages] == [["x"], ["y"], ["z"]]
    # an easier stage is fine (one-sided), and the first stage is exempt
    assert [s.modules for s in ped.zpd_split([["z", "y"], ["x"]], gaps, 0.15)] == [["z", "y"], ["x"]]


def test_eq9_mastery_gate_and_levels():
    assert ped.mastery_gate({"a": 0.95, "b": 0.9}, 0.9)
    assert not ped.mastery_gate({"a": 0.95, "b": 0.89}, 0.9)
    # level 1: 0.9 >= 0.9 * 1.0 passed; level 2: 0.4 < 0.9 * 0.5 = 0.45 not passed -> next round targets level 2
    assert ped.passed_level({1: 0.9, 2: 0.4}, {1: 1.0, 2: 0.5}, 0.9) == 1
    assert ped.target_level(1) == 2 and ped.target_level(3) == 3


def _state(history, rounds, scores, teacher=0.8, passed_before=(), cycle=0, n_stages=1, max_cycles=None):
    modules = {k: Module(id=k, name=k, teacher_score=teacher) for k in scores}
    stage = Stage(index=0, modules=sorted(scores), difficulty=1.0, status="active", rounds=rounds,
                  min_ratio_history=history)
    stages = [stage] + [Stage(index=i, modules=["later"], difficulty=1.0) for i in range(1, n_stages)]
    return LearnerState(run_id="t", cycle=cycle, modules=modules, stages=stages, current_stage=0,
                        observations=[_obs([], **scores)], passed=list(passed_before))


def test_decide_advance():
    s = _state([0.95], 1, {"a": 0.76, "b": 0.8})  # ratios 0.95, 1.0 >= 0.9
    d = ped.decide(s, TH)
    assert d.kind == "advance" and d.numbers["min_ratio"] == pytest.approx(0.95) and d.failing == []


def test_decide_give_up_after_max_rounds():
    s = _state([0.1, 0.2, 0.3, 0.4, 0.5, 0.6], 6, {"a": 0.48})  # 6 rounds = 1 + max_remedial_rounds 5
    d = ped.decide(s, TH)
    assert d.kind == "give_up" and d.failing == ["a"]


def test_decide_remediate_first_round_and_on_progress():
    assert ped.decide(_state([0.25], 1, {"a": 0.2}), TH).kind == "remediate"
    d = ped.decide(_state([0.25, 0.5], 2, {"a": 0.4}), TH)   # progress 0.25 >= 0.02
    assert d.kind == "remediate" and d.numbers["progress"] == pytest.approx(0.25)


def test_decide_simplify_when_progress_stalls():
    d = ped.decide(_state([0.5, 0.51], 2, {"a": 0.408}), TH)  # progress 0.01 < min_progress 0.02
    assert d.kind == "simplify" and "progress +0.01 < min_progress 0.02" in d.reason


def _covered(student_b=0.2, cycle=0, give_ups=(), **kw):
    """a known (0.8 of teacher 0.8), b deficient unless student_b is high (teacher 0.8), c teacher-limited (0.2)."""
    teacher = {"a": 0.8, "b": 0.8, "c": 0.2}
    modules = {k: Module(id=k, name=k, teacher_score=t, teacher_limited=t < TH.teacher_floor)
               for k, t in teacher.items()}
    decisions = [Decision(kind="give_up", cycle=c, stage=0, round=3, reason="r", failing=["b"], modules=["b"])
                 for c in give_ups]
    return LearnerState(run_id="t", cycle=cycle, modules=modules, current_stage=1,
                        stages=[Stage(index=0, modules=["b"], difficulty=0.75, status="passed")],
                        observations=[_obs([], a=0.8, b=0.0, c=0.0), _obs(["b"], b=student_b)],
                        decisions=decisions, **kw)


def test_after_stage_rediagnoses_while_deficient_teachable_modules_remain():
    # b's latest score 0.2 of 0.8: gap 0.75 > tau_gap 0.3, teachable, never given up -> diagnose again
    s = _covered()
    assert ped.after_stage(s, TH, has_next_stage=True) is None
    d = ped.after_stage(s, TH, has_next_stage=False)
    assert d.kind == "rediagnose" and d.modules == ["b"] and d.numbers["remaining_teachable"] == 1
    # cycle 5 is the 6th of max_cycles 6: finish, naming what was left
    d = ped.after_stage(_covered(cycle=5), TH, False)
    assert d.kind == "finish" and "max_cycles 6 reached" in d.reason and "(b)" in d.reason


def test_after_stage_finishes_when_the_domain_is_covered():
    # b now 0.6 of 0.8: gap 0.25 <= 0.3, not deficient; a known, c teacher-limited -> nothing left to teach
    d = ped.after_stage(_covered(student_b=0.6), TH, False)
    assert d.kind == "finish" and d.numbers["remaining_teachable"] == 0 and "no deficient" in d.reason
    # b given up in cycles 0 and 1: retired (§1.6), so nothing is left either
    s = _covered(cycle=1, give_ups=(0, 1))
    assert ped.retired(s.decisions) == ["b"] and ped.given_up_cycles(s.decisions) == {"b": [0, 1]}
    assert ped.after_stage(s, TH, False).kind == "finish"
    # given up once only: still teachable
    assert ped.after_stage(_covered(cycle=1, give_ups=(0,)), TH, False).kind == "rediagnose"


def test_known_at_start_and_latest_scores():
    # r(a) = 0.72 / 0.8 = 0.9 >= tau_mastery 0.9 (known); r(b) = 0.7 / 0.8 = 0.875 (not); a 0-teacher module never
    assert ped.known_at_start({"a": 0.8, "b": 0.8, "z": 0.0}, {"a": 0.72, "b": 0.7, "z": 0.0}, TH) == ["a"]
    obs = [_obs([], a=0.1, b=0.2), _obs([], b=0.5)]
    assert ped.latest_scores(obs) == {"a": 0.1, "b": 0.5}


def test_untaught_reason_names_why_each_module_was_not_taught():
    s = _covered(student_b=0.2, known=["a"], first_deficient=["b"])
    d_b = Decision(kind="advance", cycle=0, stage=0, round=1, reason="r", modules=["b"])
    s = s.model_copy(update={"decisions": [d_b]})
    assert ped.untaught_reason("b", s, TH) is None                                 # taught
    assert ped.untaught_reason("a", s, TH) == "known from the start (r 1.00 >= tau_mastery 0.90)"
    assert ped.untaught_reason("c", s, TH) == "teacher-limited (teacher 0.20 < teacher_floor 0.30)"
    # b deficient (gap 0.75) but never in a stage: why depends on how the run ended
    s2 = _covered(first_deficient=["b"])
    assert ped.untaught_reason("b", s2, TH) == "max_cycles 6 reached first"
    assert ped.untaught_reason("b", s2, TH, max_rounds_total=0) == "max_rounds_total 0 reached first"
    stopped = s2.model_copy(update={"stop_reason": "teacher token budget spent (10 of 10 tokens)"})
    assert ped.untaught_reason("b", stopped, TH) == "the teacher-token budget was spent first"
    # b rose to 0.6 without being taught (transfer): gap 0.25
    assert ped.untaught_reason("b", _covered(student_b=0.6, first_deficient=["b"]), TH) == (
        "not deficient any more (it was at the first diagnosis): gap 0.25 <= tau_gap 0.30")
    assert ped.untaught_reason("b", _covered(cycle=1, give_ups=(0, 1)), TH) == "given up in two cycles"


def _with(decision_kind, **kw):
    d = Decision(kind=decision_kind, cycle=0, stage=0, round=1, reason="r")
    return LearnerState(run_id="t", decisions=[d], stages=[Stage(index=0, modules=["a"], difficulty=1)], **kw)


@pytest.mark.parametrize("kind", ["advance", "give_up", "remediate", "simplify"])
def test_routing_after_examine_goes_to_the_transition_it_names(kind):
    from graph.routing import EXAM_BRANCHES

    assert EXAM_BRANCHES[route_after_examine(_with(kind))] == kind


def test_routing_after_examine_rejects_a_follow_up_decision():
    with pytest.raises(ValueError, match="rediagnose"):
        route_after_examine(_with("rediagnose"))


@pytest.mark.parametrize("kind,expected", [("advance", "synthesize"), ("give_up", "synthesize"),
                                           ("rediagnose", "diagnose"), ("finish", "report")])
def test_routing_after_a_stage(kind, expected):
    from graph.routing import STAGE_BRANCHES, route_after_stage

    assert STAGE_BRANCHES[route_after_stage(_with(kind))] == expected


def test_routing_after_a_round_and_a_stopped_run():
    from graph.routing import ROUND_BRANCHES, route_after_round, route_after_stage

    assert ROUND_BRANCHES[route_after_round(_with("remediate"))] == "synthesize"
    assert ROUND_BRANCHES[route_after_round(_with("finish"))] == "report"
    assert route_after_stage(_with("advance", status="stopped")) == "finish"


def test_routing_after_plan_without_stages_goes_to_report():
    from graph.routing import PLAN_BRANCHES

    assert PLAN_BRANCHES[route_after_plan(LearnerState(run_id="t"))] == "report"
    assert PLAN_BRANCHES[route_after_plan(_with("advance"))] == "synthesize"


def test_replan_pending_keeps_started_stages():
    stages = [
        Stage(index=0, modules=["a"], difficulty=1, status="active"),
        Stage(index=1, modules=["b", "c"], difficulty=1),
    ]
    edges = [Edge(src="b", dst="c", strength=0.8, kept=True)]
    out = ped.replan_pending(stages, 0, edges, {}, {"a": 1, "b": 1, "c": 1}, 0.15)
    assert [(s.index, s.modules) for s in out] == [(0, ["a"]), (1, ["b"]), (2, ["c"])]


def test_thresholds_out_of_range_rejected():
    from ioa_state import ConfigError, load_config
    with pytest.raises(ConfigError, match="thresholds.tau_gap"):
        load_config(None, {"thresholds.tau_gap": 1.5})
    with pytest.raises(ConfigError, match="tau_low"):
        load_config(None, {"thresholds.tau_low": 0.95})
    assert math.isclose(load_config(None).thresholds.tau_mastery, 0.9)


def _examined(kind, failing=(), rounds=1, n_stages=2, **kw):
    mods = {k: Module(id=k, name=k, passed_level=1, teacher_score=0.8) for k in ("a", "b")}
    kw.setdefault("observations", [_obs([], a=0.2, b=0.0)])  # a: gap 0.75, still deficient after a give-up
    stages = [Stage(index=0, modules=["a"], difficulty=1.0, status="active", rounds=rounds),
              Stage(index=1, modules=["b"], difficulty=1.0)][:n_stages]
    d = Decision(kind=kind, cycle=0, stage=0, round=rounds, reason="r", failing=list(failing), modules=["a"])
    return LearnerState(run_id="t", modules=mods, stages=stages, decisions=[d], level={"a": 2}, total_rounds=3, **kw)


def test_apply_advance_closes_the_stage_and_activates_the_next():
    up = ped.apply_decision(_examined("advance"), TH, max_rounds_total=40)
    assert [s.status for s in up["stages"]] == ["passed", "active"] and up["current_stage"] == 1
    assert up["passed"] == ["a"] and up["mode"] == "initial" and up["level"]["a"] == 2   # passed level 1 -> target 2


def test_apply_give_up_on_the_last_stage_records_not_mastered_and_rediagnoses():
    up = ped.apply_decision(_examined("give_up", failing=["a"], n_stages=1), TH, max_rounds_total=40)
    assert up["not_mastered"] == ["a"] and up["passed"] == [] and up["stages"][0].status == "gave_up"
    assert [d.kind for d in up["decisions"]] == ["give_up", "rediagnose"] and up["cycle"] == 1


def test_no_organizer_gives_each_stage_one_round_and_the_loop_diagnoses_again():
    # the ablation's exam: r(a) = 0.2 / 0.8 = 0.25 < tau_mastery 0.9 after the first round, which IOA remediates;
    # without the Organizer the stage ends there, as a give-up of its failing module
    d = one_round(_state([0.25], 1, {"a": 0.2}), TH)
    assert d.kind == "give_up" and d.failing == ["a"] and "no mastery gate" in d.reason
    # the loop around the stage is IOA's: a still deficient (gap 0.75 > tau_gap), given up once -> diagnose again
    s = _state([0.25], 1, {"a": 0.2}).model_copy(update={"decisions": [d]})
    up = ped.apply_decision(s, TH, max_rounds_total=40)
    assert [x.kind for x in up["decisions"]] == ["give_up", "rediagnose"] and up["cycle"] == 1
    # given up in two cycles: retired (§1.6), so the arm stops as IOA would
    again = d.model_copy(update={"cycle": 1})
    s2 = _state([0.25], 1, {"a": 0.2}, cycle=1).model_copy(update={"decisions": [d, again]})
    assert ped.apply_decision(s2, TH, max_rounds_total=40)["decisions"][-1].kind == "finish"


def test_apply_simplify_lowers_the_failing_modules_level_and_the_round_cap_finishes():
    up = ped.apply_decision(_examined("simplify", failing=["a"]), TH, max_rounds_total=40)
    assert up["mode"] == "simplify" and up["level"]["a"] == 1            # min(target 2, level 2) - 1
    capped = ped.apply_decision(_examined("remediate", failing=["a"]), TH, max_rounds_total=3)
    assert capped["decisions"][-1].kind == "finish" and "max_rounds_total 3" in capped["decisions"][-1].reason
