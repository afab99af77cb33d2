r"""The StateGraph wiring: one node per agent, labelled branches from graph/routing.py.

START -> diagnose -> plan -teach-> synthesize -> train -> examine --+-advance---> advance --+-next_stage-> synthesize
            ^                \-nothing_to_teach-> report             +-give_up---> give_up --+-rediagnose-> diagnose
            |                                                         |                        +-finish-----> report -> END
            +------------------------------------- rediagnose         +-remediate-> remediate -+-again------> synthesize
                                                                      +-simplify--> simplify  -+-finish-----> report

The run's services (config, task pack, teacher, student, trace) reach the nodes through LangGraph's runtime context
(`context_schema=Services`, `graph.stream(..., context=services)`), so the graph compiles without them. An ablation
(RunConfig.ablation) swaps in its own node functions (baselines/ablations.py); the IOA nodes never test it.
"""  # noqa: E501 - the state-machine diagram above is wider than a line
from __future__ import annotations

import time
from typing import Callable

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime

from agents import adapter, diagnostician, examiner, planner, reporter, trainer, transitions
from agents.runtime import Services
from baselines.ablations import node_variants
from graph import routing
from ioa_state import LearnerState

NODES: dict[str, Callable[[LearnerState, Services], dict]] = {
    "diagnose": diagnostician.diagnose,
    "plan": planner.plan,
    "synthesize": adapter.synthesize,
    "train": trainer.train,
    "examine": examiner.examine,
    **{name: transitions.transition for name in transitions.TRANSITIONS},
    "report": reporter.report,
}


def _node(name: str, fn, fallback: Callable[[], Services] | None):
    """The graph node: services from the runtime context (or `fallback`, for LangGraph Studio), traced."""
    def run(state: LearnerState, runtime: Runtime[Services]) -> dict:
        svc = runtime.context if isinstance(runtime.context, Services) else None
        if svc is None:
            if fallback is None:
                raise RuntimeError("the ioa graph needs its services as the run context: "
                                   "graph.stream(state, config, context=services)")
            svc = fallback()
        svc.student.load(state.student)
        stage = state.stage()
        svc.trace.emit("node_start", node=name, cycle=state.cycle, stage=stage.index if stage else None,
                       round=stage.rounds if stage else None)
        t0 = time.perf_counter()
        out = fn(state, svc)
        svc.trace.emit("node_end", node=name, cycle=out.get("cycle", state.cycle),
                       seconds=round(time.perf_counter() - t0, 3), updated=sorted(out))
        return out
    run.__name__ = name
    return run


def build(ablation: str = "none", fallback: Callable[[], Services] | None = None) -> StateGraph:
    """The uncompiled graph (for one ablation, or IOA itself)."""
    nodes = {**NODES, **node_variants(ablation)}
    g = StateGraph(LearnerState, context_schema=Services)
    for name, fn in nodes.items():
        g.add_node(name, _node(name, fn, fallback))
    g.add_edge(START, "diagnose")
    g.add_edge("diagnose", "plan")
    g.add_conditional_edges("plan", routing.route_after_plan, routing.PLAN_BRANCHES)
    g.add_edge("synthesize", "train")
    g.add_edge("train", "examine")
    g.add_conditional_edges("examine", routing.route_after_examine, routing.EXAM_BRANCHES)
    for name in ("advance", "give_up"):
        g.add_conditional_edges(name, routing.route_after_stage, routing.STAGE_BRANCHES)
    for name in ("remediate", "simplify"):
        g.add_conditional_edges(name, routing.route_after_round, routing.ROUND_BRANCHES)
    g.add_edge("report", END)
    return g
