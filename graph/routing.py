"""Routing rules of the graph: pure functions of the learner state (unit-tested on hand-made states).

After an exam the examiner has stored the §4 decision (and, after a last stage, a rediagnose/finish decision);
these functions only read it: advance / give up -> next stage's synthesis, remediate / simplify -> synthesis for the
failing modules, rediagnose -> diagnose, finish -> report.
"""
from __future__ import annotations

from typing import Literal

from ioa_state import LearnerState

Next = Literal["synthesize", "diagnose", "report"]


def route_after_plan(state: LearnerState) -> Literal["synthesize", "report"]:
    """No stage (nothing deficient and teachable): straight to the report."""
    return "synthesize" if state.stages else "report"


def route_after_examine(state: LearnerState) -> Next:
    last = state.decisions[-1]
    if last.kind == "finish" or state.status != "running":
        return "report"
    if last.kind == "rediagnose":
        return "diagnose"
    return "synthesize"
