"""The examiner: scores the student after a round and decides what happens next (algorithm §4).

Steps:
1. `exam_plan`: which items to score: the gate items of the stage's modules and of every mastered module (passed
   in an earlier stage, or known from the first diagnosis: the forgetting check), `watch_items` gate items of every
   targeted module not yet trained (the observations Eq. 3 needs), and the stage's remedial-source items (their
   wrong answers feed remedial synthesis).
2. `take_exam`: the student answers them; the pack's checker scores them; one `Observation`; `trace_exam` traces
   each module's score and ratio and the items it missed, with the student's answers.
3. `update_stage`: the stage's round count, min mastery ratio history and each module's passed item level.
4. `forgotten`: mastered modules that fell below tau_mastery go back into replay (a known module that was never
   trained gets replay items written by the Adapter from its seeds, agents/adapter.py `replay_modules`).
5. `reestimate_edges`: Eq. 3 again; the stages not yet started are planned again when the kept edges changed.
6. the pure §4 decision (`pedagogy.decide`), stored and traced; the graph then routes to the transition node it
   names (advance / give_up / remediate / simplify: agents/transitions.py), which applies it.

`ExamPolicy` holds the decision rule a baseline replaces (the no_organizer ablation, baselines/ablations.py).
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Callable

from agents import scoring
from agents.item_checks import first_sentence
from agents.runtime import Services, write_jsonl
from ioa_state import Decision, LearnerState, Observation, Thresholds
from ioa_state import pedagogy as ped
from ioa_state.records import WrongAnswer


@dataclass(frozen=True)
class ExamPolicy:
    """How an exam turns into a transition: the §4 rule."""

    decide: Callable[[LearnerState, Thresholds], Decision] = ped.decide


IOA_POLICY = ExamPolicy()


@dataclass(frozen=True)
class ExamPlan:
    ids_by_module: dict[str, list[str]]
    remedial: list[str]
    passed: list[str]

    @property
    def all_ids(self) -> list[str]:
        return sorted({i for ids in self.ids_by_module.values() for i in ids} | set(self.remedial))


def exam_plan(state: LearnerState, seed: int, watch_items: int) -> ExamPlan:
    """Step 1: the items of this exam, per module (watched modules get a fixed sample of their gate items)."""
    stage = state.stage()
    passed = [k for k in dict.fromkeys(state.passed + state.known) if k not in stage.modules]  # mastered (§4)
    watched = [k for k in state.targets if k not in state.trained and k not in stage.modules]
    ids_by_module = {k: state.modules[k].gate_ids for k in stage.modules + passed}
    for k in watched:
        ids = sorted(state.modules[k].gate_ids)
        random.Random(f"{seed}:watch:{k}").shuffle(ids)
        ids_by_module[k] = sorted(ids[:watch_items])
    remedial = [i for k in stage.modules for i in state.modules[k].remedial_ids]
    return ExamPlan(ids_by_module, remedial, passed)


def take_exam(
    state: LearnerState, svc: Services, plan: ExamPlan
) -> tuple[Observation, dict[str, str], dict[str, float]]:
    """Step 2: the student's answers and scores, and the observation they make."""
    items = [svc.items[i] for i in plan.all_ids]
    stage = state.stage()
    svc.progress(f"examine c{state.cycle}-s{stage.index}-r{stage.rounds}: {len(items)} items")
    answers = scoring.student_answers(svc, items)
    by_item = scoring.check_all(svc, items, answers)
    scores, counts = scoring.module_scores(plan.ids_by_module, by_item)
    obs = Observation(checkpoint=state.student.path if state.student else "initial", cycle=state.cycle,
                      round=state.total_rounds, trained=list(state.trained), scores=scores, counts=counts,
                      level_scores={k: scoring.level_scores(state.modules[k].gate_ids, state.modules[k].item_levels,
                                                            by_item) for k in stage.modules})
    return obs, answers, by_item


def trace_exam(state: LearnerState, svc: Services, plan: ExamPlan, obs: Observation, answers: dict[str, str],
               by_item: dict[str, float]) -> None:
    """An `exam` event: each examined module's score and mastery ratio, and the exam items it missed with the
    student's answer (first sentence), so a stage that stalls shows which facts it keeps missing."""
    th = svc.cfg.thresholds
    teacher = {k: m.teacher_score or 0.0 for k, m in state.modules.items()}
    missed = {k: [{"item": i, "prompt": svc.items[i].prompt, "reference": svc.items[i].reference,
                   "answer": first_sentence(answers.get(i, ""))} for i in ids if by_item.get(i, 0.0) < 1.0]
              for k, ids in plan.ids_by_module.items()}
    svc.trace.emit("exam", node="examine", cycle=state.cycle, stage=state.stage().index,
                   round=state.stage().rounds, modules=list(plan.ids_by_module),
                   scores={k: round(obs.scores.get(k, 0.0), 6) for k in plan.ids_by_module},
                   ratios={k: round(ped.mastery_ratio(obs.scores.get(k, 0.0), teacher[k], th.eps), 6)
                           for k in plan.ids_by_module},
                   items={k: len(ids) for k, ids in plan.ids_by_module.items()}, missed=missed)


def update_stage(state: LearnerState, obs: Observation, th: Thresholds) -> tuple[list, dict]:
    """Step 3: stages and modules after the exam (the stage's round, min ratio history, passed levels)."""
    stages = [s.model_copy(deep=True) for s in state.stages]
    modules = {k: m.model_copy(deep=True) for k, m in state.modules.items()}
    stage = stages[state.current_stage]
    teacher = {k: m.teacher_score or 0.0 for k, m in modules.items()}
    ratios = ped.stage_ratios(stage.modules, obs, teacher, th.eps)
    stage.rounds += 1
    stage.min_ratio_history.append(min(ratios.values()))
    for k in stage.modules:
        modules[k].passed_level = ped.passed_level(obs.level_scores[k], modules[k].teacher_level_scores, th.tau_mastery)
    return stages, modules


def forgotten(state: LearnerState, svc: Services, plan: ExamPlan, obs: Observation) -> list[str]:
    """Step 4: mastered modules (passed or known) below tau_mastery now (traced when newly so), plus those already
    in replay."""
    th = svc.cfg.thresholds
    teacher = {k: m.teacher_score or 0.0 for k, m in state.modules.items()}
    ratio = {k: ped.mastery_ratio(obs.scores.get(k, 0.0), teacher[k], th.eps) for k in plan.passed}
    out = sorted({k for k in plan.passed if ratio[k] < th.tau_mastery}
                 | {k for k in state.forgetting if k not in plan.passed})
    for k in out:
        if k not in state.forgetting:
            svc.trace.emit("forgetting", node="examine", cycle=state.cycle, stage=state.stage().index, module=k,
                           ratio=round(ratio[k], 6), tau_mastery=th.tau_mastery,
                           known_at_start=k in state.known and k not in state.passed,
                           action="back into replay" if k in state.trained else "replay items written from its seeds")
    return out


def write_wrong_answers(state: LearnerState, svc: Services, answers: dict[str, str], by_item: dict[str, float]):
    stage = state.stage()
    wrong = [WrongAnswer(item=i, module=k, prompt=svc.items[i].prompt, answer=answers[i],
                         reference=svc.items[i].reference).model_dump()
             for k in stage.modules for i in state.modules[k].remedial_ids if by_item[i] < 1.0]
    return write_jsonl(svc.run_dir, f"items/c{state.cycle}-s{stage.index}-r{stage.rounds}-wrong.jsonl", wrong,
                       kind="generations", stage=stage.index, round=stage.rounds)


def reestimate_edges(state: LearnerState, svc: Services, observations: list[Observation], modules: dict,
                     stages: list) -> tuple[list, list]:
    """Step 5: Eq. 3 on every observation so far; changed edges traced; pending stages re-planned on a change."""
    th = svc.cfg.thresholds
    teacher = {k: m.teacher_score or 0.0 for k, m in modules.items()}
    prior = {(e.src, e.dst): e.prior for e in state.edges}
    edges = ped.estimate_edges(sorted(modules), prior, observations, teacher, th)
    before = {(e.src, e.dst): (round(e.strength, 6), e.kept) for e in state.edges}
    stage = stages[state.current_stage]
    for e in edges:
        if before.get((e.src, e.dst)) != (round(e.strength, 6), e.kept):
            svc.trace.emit("edge", node="examine", cycle=state.cycle, stage=stage.index, round=stage.rounds - 1,
                           src=e.src, dst=e.dst, prior=e.prior, measured=e.measured, n_obs=e.n_obs,
                           strength=round(e.strength, 6), tau_dep=th.tau_dep, kept=e.kept, source=e.source,
                           broken_cycle=e.broken_cycle)
    if {(e.src, e.dst) for e in edges if e.kept} != {(e.src, e.dst) for e in state.edges if e.kept}:
        levels = {k: m.level for k, m in modules.items()}
        stages = ped.replan_pending(stages, state.current_stage, edges, levels, state.gap, th.tau_zpd)
        svc.trace.emit("replan", node="examine", cycle=state.cycle, stage=stages[state.current_stage].index,
                       kept_edges=[(e.src, e.dst, round(e.strength, 4)) for e in edges if e.kept],
                       stages=[s.modules for s in stages])
    return edges, stages


def trace_decisions(svc: Services, decisions: list[Decision], modules: list[str], node: str = "examine") -> None:
    """A `decision` event (and a progress line) per new decision."""
    for d in decisions:
        svc.trace.emit("decision", node=node, cycle=d.cycle, stage=d.stage, round=d.round, decision=d.kind,
                       reason=d.reason, numbers=d.numbers, thresholds=d.thresholds, failing=d.failing,
                       modules=d.modules or list(modules))
        svc.progress(f"decision: {d.kind} - {d.reason}")


def examine(state: LearnerState, svc: Services, policy: ExamPolicy = IOA_POLICY) -> dict:
    """The examiner node."""
    th, cfg = svc.cfg.thresholds, svc.cfg
    plan = exam_plan(state, cfg.seed, cfg.watch_items)
    obs, answers, by_item = take_exam(state, svc, plan)
    trace_exam(state, svc, plan, obs, answers, by_item)
    observations = state.observations + [obs]
    stages, modules = update_stage(state, obs, th)
    forgetting = forgotten(state, svc, plan, obs)
    wrong_ref = write_wrong_answers(state, svc, answers, by_item)
    edges, stages = reestimate_edges(state, svc, observations, modules, stages)
    view = state.model_copy(update={"stages": stages, "observations": observations, "modules": modules})
    decision = policy.decide(view, th)
    trace_decisions(svc, [decision], stages[state.current_stage].modules)
    return {"stages": stages, "modules": modules, "observations": observations, "forgetting": forgetting,
            "wrong_answers": wrong_ref, "edges": edges, "decisions": state.decisions + [decision],
            "phase": "examined", "round_in_stage": stages[state.current_stage].rounds, "usage": svc.usage()}
