"""The examiner: scores the student after a round and decides what happens next (algorithm §4).

Scores the student on the gate items of the stage's modules and of already-passed modules (forgetting check), on
`watch_items` gate items of every targeted module not yet trained (the observations Eq. 3 needs), and on the
stage's remedial-source items (their wrong answers feed remedial synthesis). Then re-estimates the prerequisite
edges, re-plans the stages not yet started when the kept edges changed, and applies the pure §4 decision.
"""
from __future__ import annotations

import random

from agents import scoring
from agents.runtime import Services, write_jsonl
from ioa_state import LearnerState, Observation
from ioa_state import pedagogy as ped


def examine(state: LearnerState, svc: Services) -> dict:
    """The examiner node."""
    th, cfg = svc.cfg.thresholds, svc.cfg
    stages = [s.model_copy(deep=True) for s in state.stages]
    stage = stages[state.current_stage]
    modules = {k: m.model_copy(deep=True) for k, m in state.modules.items()}
    tag = f"c{state.cycle}-s{stage.index}-r{stage.rounds}"
    passed = [k for k in state.passed if k not in stage.modules]
    watched = [k for k in state.targets if k not in state.trained and k not in stage.modules]
    ids_by_module = {k: modules[k].gate_ids for k in stage.modules + passed}
    for k in watched:
        ids = sorted(modules[k].gate_ids)
        random.Random(f"{cfg.seed}:watch:{k}").shuffle(ids)
        ids_by_module[k] = sorted(ids[: cfg.watch_items])
    remedial = [i for k in stage.modules for i in modules[k].remedial_ids]
    all_ids = sorted({i for ids in ids_by_module.values() for i in ids} | set(remedial))
    items = [svc.items[i] for i in all_ids]
    svc.progress(f"examine {tag}: {len(items)} items")
    answers = scoring.student_answers(svc, items)
    scores_by_item = scoring.check_all(svc, items, answers)
    scores, counts = scoring.module_scores(ids_by_module, scores_by_item)
    obs = Observation(checkpoint=state.student.path if state.student else "initial", cycle=state.cycle,
                      round=state.total_rounds, trained=list(state.trained), scores=scores, counts=counts,
                      level_scores={k: scoring.level_scores(modules[k].gate_ids, modules[k].item_levels, scores_by_item)
                                    for k in stage.modules})
    observations = state.observations + [obs]
    teacher = {k: m.teacher_score or 0.0 for k, m in modules.items()}
    ratios = ped.stage_ratios(stage.modules, obs, teacher, th.eps)
    stage.rounds += 1
    stage.min_ratio_history.append(min(ratios.values()))
    for k in stage.modules:
        modules[k].passed_level = ped.passed_level(obs.level_scores[k], modules[k].teacher_level_scores, th.tau_mastery)
    forgetting = sorted({k for k in passed if ped.mastery_ratio(scores.get(k, 0.0), teacher[k], th.eps) < th.tau_mastery}
                        | {k for k in state.forgetting if k not in passed})
    for k in forgetting:
        if k not in state.forgetting:
            svc.trace.emit("forgetting", node="examine", cycle=state.cycle, stage=stage.index, module=k,
                           ratio=round(ped.mastery_ratio(scores.get(k, 0.0), teacher[k], th.eps), 6),
                           tau_mastery=th.tau_mastery, action="back into replay")
    wrong = [{"item": i, "module": k, "prompt": svc.items[i].prompt, "answer": answers[i],
              "reference": svc.items[i].reference} for k in stage.modules for i in modules[k].remedial_ids
             if scores_by_item[i] < 1.0]
    wrong_ref = write_jsonl(svc.run_dir, f"items/{tag}-wrong.jsonl", wrong, kind="generations", stage=stage.index, round=stage.rounds - 1)

    prior = {(e.src, e.dst): e.prior for e in state.edges}
    edges = ped.estimate_edges(sorted(modules), prior, observations, teacher, th)
    before = {(e.src, e.dst): (round(e.strength, 6), e.kept) for e in state.edges}
    for e in edges:
        if before.get((e.src, e.dst)) != (round(e.strength, 6), e.kept):
            svc.trace.emit("edge", node="examine", cycle=state.cycle, stage=stage.index, round=stage.rounds - 1,
                           src=e.src, dst=e.dst, prior=e.prior, measured=e.measured, n_obs=e.n_obs,
                           strength=round(e.strength, 6), tau_dep=th.tau_dep, kept=e.kept, source=e.source,
                           broken_cycle=e.broken_cycle)
    if {(e.src, e.dst) for e in edges if e.kept} != {(e.src, e.dst) for e in state.edges if e.kept}:
        levels = {k: m.level for k, m in modules.items()}
        stages = ped.replan_pending(stages, state.current_stage, edges, levels, state.gap, th.tau_zpd)
        stage = stages[state.current_stage]
        svc.trace.emit("replan", node="examine", cycle=state.cycle, stage=stage.index,
                       kept_edges=[(e.src, e.dst, round(e.strength, 4)) for e in edges if e.kept],
                       stages=[s.modules for s in stages])

    view = state.model_copy(update={"stages": stages, "observations": observations, "modules": modules})
    decision = ped.decide(view, th)
    if cfg.ablation == "no_organizer" and decision.kind != "advance":  # baseline: no mastery gate, one round
        decision = decision.model_copy(update={"kind": "give_up", "reason": "ablation no_organizer: no mastery gate, one round per stage; " + decision.reason})
    decisions = state.decisions + [decision]
    level = dict(state.level)
    for k in stage.modules:
        level[k] = ped.target_level(modules[k].passed_level)
    update = {"stages": stages, "modules": modules, "observations": observations, "forgetting": forgetting,
              "wrong_answers": wrong_ref, "edges": edges, "phase": "examined", "round_in_stage": stage.rounds}
    current, mode, cycle = state.current_stage, "initial", state.cycle
    passed_all, not_mastered = list(state.passed), list(state.not_mastered)
    if decision.kind in ("advance", "give_up"):
        stage.status = "passed" if decision.kind == "advance" else "gave_up"
        passed_all += [k for k in stage.modules if k not in decision.failing and k not in passed_all]
        not_mastered += [k for k in decision.failing if k not in not_mastered]
        current += 1
        follow = ped.after_stage(view.model_copy(update={"current_stage": state.current_stage}), th, current < len(stages),
                                 single_cycle=cfg.ablation == "no_organizer")
        if follow is None:
            stages[current].status = "active"
        else:
            decisions.append(follow)
            if follow.kind == "rediagnose":
                cycle += 1
    elif state.total_rounds >= cfg.max_rounds_total:
        decisions.append(ped.Decision(kind="finish", cycle=state.cycle, stage=stage.index, round=stage.rounds,
                                      reason=f"max_rounds_total {cfg.max_rounds_total} reached",
                                      numbers={"total_rounds": state.total_rounds}, thresholds={}))
    else:
        mode = decision.kind
        if decision.kind == "simplify":
            for k in decision.failing:
                level[k] = max(1, min(level[k], state.level.get(k, 1)) - 1)
    for d in decisions[len(state.decisions):]:
        svc.trace.emit("decision", node="examine", cycle=d.cycle, stage=d.stage, round=d.round, decision=d.kind,
                       reason=d.reason, numbers=d.numbers, thresholds=d.thresholds, failing=d.failing,
                       modules=d.modules or list(stage.modules))
        svc.progress(f"decision: {d.kind} - {d.reason}")
    return {**update, "decisions": decisions, "current_stage": current, "mode": mode, "cycle": cycle,
            "passed": passed_all, "not_mastered": not_mastered, "level": level, "usage": svc.usage()}
