"""The StateGraph wiring: one node per agent, conditional edges from graph/routing.py.

START -> diagnose -> plan -> synthesize -> train -> examine -+- advance/remediate/simplify -> synthesize
                      ^                                        +- rediagnose -> diagnose
                      +----------------------------------------+- finish -> report -> END
"""
from __future__ import annotations

import time

from langgraph.graph import END, START, StateGraph

from agents import adapter, diagnostician, examiner, planner, trainer
from agents.runtime import Services
from graph import report, routing
from ioa_state import LearnerState

NODES = {
    "diagnose": diagnostician.diagnose,
    "plan": planner.plan,
    "synthesize": adapter.synthesize,
    "train": trainer.train,
    "examine": examiner.examine,
    "report": report.report,
}


def _node(name: str, fn, svc: Services):
    def run(state: LearnerState) -> dict:
        svc.student.load(state.student)
        stage = state.stage()
        svc.trace.emit("node_start", node=name, cycle=state.cycle, stage=stage.index if stage else None,
                       round=stage.rounds if stage else None)
        t0 = time.perf_counter()
        out = fn(state, svc)
        svc.trace.emit("node_end", node=name, cycle=out.get("cycle", state.cycle), seconds=round(time.perf_counter() - t0, 3),
                       updated=sorted(out))
        return out
    run.__name__ = name
    return run


def build(svc: Services) -> StateGraph:
    """The uncompiled graph for one run's services."""
    g = StateGraph(LearnerState)
    for name, fn in NODES.items():
        g.add_node(name, _node(name, fn, svc))
    g.add_edge(START, "diagnose")
    g.add_edge("diagnose", "plan")
    g.add_conditional_edges("plan", routing.route_after_plan, ["synthesize", "report"])
    g.add_edge("synthesize", "train")
    g.add_edge("train", "examine")
    g.add_conditional_edges("examine", routing.route_after_examine, ["synthesize", "diagnose", "report"])
    g.add_edge("report", END)
    return g
