"""The curriculum planner (Organizer, algorithm §2): in what order.

Stages are the topological layers of the target subgraph (Eq. 7), ordered inside a layer by the teacher's level
then by gap, split where a stage would be more than tau_zpd harder than the one before (Eq. 8). Each module's item
level starts one above the highest level the student already passes.
"""
from __future__ import annotations

from agents.runtime import Services
from ioa_state import LearnerState, Stage, Thresholds
from ioa_state import pedagogy as ped


def ioa_stages(state: LearnerState, th: Thresholds) -> list[Stage]:
    """Eq. 7-8 stages of the targets (the no_organizer ablation replaces this step: baselines/ablations.py)."""
    levels = {k: m.level for k, m in state.modules.items()}
    return ped.plan_stages(state.targets, state.edges, levels, state.gap, th.tau_zpd)


def plan(state: LearnerState, svc: Services, make_stages=ioa_stages) -> dict:
    """The Organizer node."""
    th = svc.cfg.thresholds
    stages = make_stages(state, th)
    if stages:
        stages[0].status = "active"
    obs = state.last_observation()
    modules = {k: m.model_copy(deep=True) for k, m in state.modules.items()}
    item_level = dict(state.level)
    for k in state.targets:
        m = modules[k]
        m.passed_level = (
            ped.passed_level(obs.level_scores.get(k, {}), m.teacher_level_scores, th.tau_mastery) if obs else 0
        )
        item_level[k] = ped.target_level(m.passed_level)
    for s in stages:
        svc.trace.emit("stage_planned", node="plan", cycle=state.cycle, stage=s.index, modules=s.modules,
                       difficulty=round(s.difficulty, 6), tau_zpd=th.tau_zpd,
                       levels={k: item_level[k] for k in s.modules})
    svc.progress(f"plan: {len(stages)} stage(s): " + " | ".join(", ".join(s.modules) for s in stages))
    return {"stages": stages, "current_stage": 0, "round_in_stage": 0, "mode": "initial", "level": item_level,
            "modules": modules, "phase": "planned"}
