"""Routing rules of the graph: pure functions of the learner state (unit-tested on hand-made states).

Each returns the name of a branch; the builder maps branch names to nodes (LangGraph's path map), so the compiled
graph's edges carry the design card's labels:

    plan     teach -> synthesize | nothing_to_teach -> report
    examine  advance | give_up | remediate | simplify -> the transition node of that name (agents/transitions.py)
    advance, give_up      next_stage -> synthesize | rediagnose -> diagnose | finish -> report
    remediate, simplify   again -> synthesize | finish -> report (max_rounds_total reached)
"""
from __future__ import annotations

from typing import Literal

from ioa_state import LearnerState

AfterPlan = Literal["teach", "nothing_to_teach"]
AfterExam = Literal["advance", "give_up", "remediate", "simplify"]
AfterStage = Literal["next_stage", "rediagnose", "finish"]
AfterRound = Literal["again", "finish"]

PLAN_BRANCHES: dict[str, str] = {"teach": "synthesize", "nothing_to_teach": "report"}
EXAM_BRANCHES: dict[str, str] = {k: k for k in ("advance", "give_up", "remediate", "simplify")}
STAGE_BRANCHES: dict[str, str] = {"next_stage": "synthesize", "rediagnose": "diagnose", "finish": "report"}
ROUND_BRANCHES: dict[str, str] = {"again": "synthesize", "finish": "report"}


def route_after_plan(state: LearnerState) -> AfterPlan:
    """No stage (nothing deficient and teachable): straight to the report."""
    return "teach" if state.stages else "nothing_to_teach"


def route_after_examine(state: LearnerState) -> AfterExam:
    """The transition the examiner's decision names."""
    kind = state.decisions[-1].kind
    if kind not in EXAM_BRANCHES:
        raise ValueError(f"the examiner stored a {kind!r} decision; expected one of {', '.join(EXAM_BRANCHES)}")
    return kind


def route_after_stage(state: LearnerState) -> AfterStage:
    """After advance / give up: the next stage, a new diagnosis, or the report."""
    last = state.decisions[-1]
    if last.kind == "finish" or state.status != "running":
        return "finish"
    return "rediagnose" if last.kind == "rediagnose" else "next_stage"


def route_after_round(state: LearnerState) -> AfterRound:
    """After remediate / simplify: another round, unless the run hit its round cap."""
    return "finish" if state.decisions[-1].kind == "finish" or state.status != "running" else "again"
