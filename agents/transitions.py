"""The transition nodes: advance, give_up, remediate, simplify (algorithm §4).

The examiner stores the §4 decision; the graph routes to the node of that name, which applies it
(`pedagogy.apply_decision`, pure): closes or continues the stage, sets the next round's mode and item levels, and,
after a last stage, appends the rediagnose or finish decision (traced like the examiner's). Each transition is its
own node so that the compiled graph (and LangGraph Studio's drawing) shows the design card's state machine.
"""
from __future__ import annotations

from agents.examiner import trace_decisions
from agents.runtime import Services
from ioa_state import LearnerState
from ioa_state import pedagogy as ped

TRANSITIONS = ("advance", "give_up", "remediate", "simplify")


def transition(state: LearnerState, svc: Services) -> dict:
    """Apply the last decision."""
    update = ped.apply_decision(state, svc.cfg.thresholds, svc.cfg.max_rounds_total)
    node = state.decisions[-1].kind
    trace_decisions(svc, update["decisions"][len(state.decisions):], state.stage().modules, node=node)
    return {**update, "phase": node}
