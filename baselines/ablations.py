"""The three ablations as alternative node steps: IOA with one component switched off (RunConfig.ablation).

The graph builder (graph/builder.py) wires these instead of IOA's steps; the IOA nodes themselves never test the
ablation:

    no_identifier  every teachable module not yet passed is a target, with uniform weight (no gaps, no severity)
    no_organizer   one stage holding every target, one round, no mastery gate, no ZPD; the loop around it is IOA's
                   (§4 re-diagnose: each diagnosis's targets get their one round, a module given up twice is left),
                   so the arm can spend the budget it is given
    no_adapter     the teacher's items as first written: no adaptation, no verification, no deduplication
"""
from __future__ import annotations

from functools import partial
from typing import Callable

from agents import adapter, diagnostician, examiner, planner
from agents.adapter import AdapterSteps, Judged
from ioa_state import Decision, LearnerState, Stage, Thresholds
from ioa_state import pedagogy as ped

ABLATIONS = ("no_identifier", "no_organizer", "no_adapter")


def uniform_targets(state: LearnerState, modules, deficient, limited, sev, edges, th):
    """no_identifier: every teachable module not yet passed, severity 1 for all."""
    _, caveats = ped.select_targets(deficient, limited, sev, edges, th.target_fraction)
    targets = sorted(k for k in modules if k not in limited and k not in state.passed)
    return targets, {k: 1.0 for k in modules}, caveats


def one_stage(state: LearnerState, th: Thresholds) -> list[Stage]:
    """no_organizer: one stage of every target, in no prerequisite order, without ZPD splits."""
    if not state.targets:
        return []
    return [Stage(index=0, modules=list(state.targets), difficulty=ped.stage_difficulty(state.targets, state.gap))]


def one_round(view: LearnerState, th: Thresholds) -> Decision:
    """no_organizer: no mastery gate, one round per stage (anything but advance becomes give up)."""
    d = ped.decide(view, th)
    if d.kind == "advance":
        return d
    return d.model_copy(update={"kind": "give_up",
                                "reason": "ablation no_organizer: no mastery gate, one round per stage; " + d.reason})


def no_adaptations(svc, simplify: bool, ratio: float) -> tuple[str, list[str]]:
    return "", []


def one_sample(svc, src) -> int:
    return 1


def keep_as_written(svc, plan, cand, samples, gate, kept_texts, kept_in_module, names) -> Judged:
    """no_adapter: the teacher's first answer kept unverified, not deduplicated, not templated."""
    return Judged(True, samples[0], item={"reference": cand.source.reference, "adaptations": [],
                                          "template_filled": False, "verification": {"method": "none"}})


def node_variants(ablation: str) -> dict[str, Callable]:
    """The node functions an ablation replaces (node name -> function(state, svc)); {} for IOA itself."""
    if ablation == "none":
        return {}
    if ablation == "no_identifier":
        return {"diagnose": partial(diagnostician.diagnose, targeting=uniform_targets)}
    if ablation == "no_organizer":
        return {"plan": partial(planner.plan, make_stages=one_stage),
                "examine": partial(examiner.examine, policy=examiner.ExamPolicy(decide=one_round))}
    if ablation == "no_adapter":
        steps = AdapterSteps(adaptations=no_adaptations, samples=one_sample, judge=keep_as_written,
                             gate_screen=False, repeat_screen=False)
        return {"synthesize": partial(adapter.synthesize, steps=steps)}
    raise ValueError(f"unknown ablation {ablation!r}: choose none or one of {', '.join(ABLATIONS)}")
