"""Pure decision functions of IOA: Eq. 2-9 and the §4 transition rule.

Every function here is a pure function of plain numbers or of the typed state plus the thresholds, so each can be
unit-tested on hand-made inputs. Equation numbers follow ../shared/docs/ioa-algorithm.md.
"""
from __future__ import annotations

import math

import networkx as nx

from ioa_state.config import Thresholds
from ioa_state.state import BUDGET_STOP, Decision, Edge, LearnerState, Observation, Stage


def mastery_ratio(p_s: float, p_t: float, eps: float) -> float:
    """r(k) = P_S(k) / max(P_T(k), eps)."""
    return p_s / max(p_t, eps)


def gap(p_t: float, p_s: float, eps: float) -> float:
    """Eq. 2: relative gap (P_T - P_S) / max(P_T, eps)."""
    return (p_t - p_s) / max(p_t, eps)


def classify(
    teacher: dict[str, float], student: dict[str, float], th: Thresholds
) -> tuple[dict[str, float], list[str], list[str]]:
    """Gaps of every module, the deficient modules (gap > tau_gap, teachable) and the teacher-limited ones."""
    gaps = {k: gap(teacher[k], student.get(k, 0.0), th.eps) for k in teacher}
    limited = sorted(k for k, pt in teacher.items() if pt < th.teacher_floor)
    deficient = sorted(k for k, g in gaps.items() if g > th.tau_gap and k not in limited)
    return gaps, deficient, limited


def measured_dependency(src: str, dst: str, observations: list[Observation], teacher: dict[str, float],
                        th: Thresholds) -> tuple[float | None, int]:
    """Eq. 3 from observations of the student taken while `dst` was still untrained.

    Dep(i->j) = (mean P_S(j | r(i) >= tau_high) - mean P_S(j | r(i) < tau_low))
                / (mean P_S(j | r(i) >= tau_high) + eps),
    clipped to [0, 1]. Returns (value or None when a condition has no observation, n = the smaller count).
    """
    high, low = [], []
    for obs in observations:
        if dst in obs.trained or src not in obs.scores or dst not in obs.scores:
            continue
        r_src = mastery_ratio(obs.scores[src], teacher.get(src, 0.0), th.eps)
        if r_src >= th.tau_high:
            high.append(obs.scores[dst])
        elif r_src < th.tau_low:
            low.append(obs.scores[dst])
    n = min(len(high), len(low))
    if n == 0:
        return None, 0
    mh, ml = sum(high) / len(high), sum(low) / len(low)
    return min(1.0, max(0.0, (mh - ml) / (mh + th.eps))), n


def estimate_edges(modules: list[str], prior: dict[tuple[str, str], float], observations: list[Observation],
                   teacher: dict[str, float], th: Thresholds) -> list[Edge]:
    """Prerequisite edges: (n*measured + 2*prior) / (n + 2), kept when > tau_dep, cycles broken at the weakest edge."""
    edges: list[Edge] = []
    for src in modules:
        for dst in modules:
            if src == dst:
                continue
            p = prior.get((src, dst), 0.0)
            measured, n = measured_dependency(src, dst, observations, teacher, th)
            if measured is None:
                strength, source = p, "prior"
            else:
                strength, source = (n * measured + 2 * p) / (n + 2), "prior+measured"
            if strength <= 0 and measured is None:
                continue
            edges.append(Edge(src=src, dst=dst, prior=p, measured=measured, n_obs=n, strength=strength,
                              source=source, kept=strength > th.tau_dep))
    return break_cycles(edges)


def break_cycles(edges: list[Edge]) -> list[Edge]:
    """Drop (mark not kept, broken_cycle) the weakest kept edge of each cycle until the kept graph is a DAG."""
    edges = [e.model_copy() for e in edges]
    while True:
        g = nx.DiGraph()
        for e in edges:
            if e.kept:
                g.add_edge(e.src, e.dst, edge=e)
        try:
            cycle = nx.find_cycle(g)
        except nx.NetworkXNoCycle:
            return edges
        weakest = min((g.edges[u, v]["edge"] for u, v in cycle), key=lambda e: (e.strength, e.src, e.dst))
        weakest.kept, weakest.broken_cycle = False, True


def severity(gaps: dict[str, float], edges: list[Edge], alpha: float) -> dict[str, float]:
    """Eq. 4: alpha * gap + (1 - alpha) * mean Dep(k -> k') over kept successors k' (0 with none)."""
    out = {}
    for k, g in gaps.items():
        succ = [e.strength for e in edges if e.kept and e.src == k]
        out[k] = alpha * g + (1 - alpha) * (sum(succ) / len(succ) if succ else 0.0)
    return out


def select_targets(deficient: list[str], limited: list[str], sev: dict[str, float], edges: list[Edge],
                   target_fraction: float) -> tuple[list[str], list[str]]:
    """Eq. 5: top ceil(fraction * |deficient|) by severity (at least one), closed under deficient prerequisites.

    Teacher-limited modules are never targeted; a target whose prerequisite is teacher-limited gets a caveat.
    Returns (targets sorted by severity, caveats).
    """
    if not deficient:
        return [], []
    ranked = sorted(deficient, key=lambda k: (-sev.get(k, 0.0), k))
    chosen = set(ranked[:max(1, math.ceil(target_fraction * len(deficient)))])
    kept = [e for e in edges if e.kept]
    caveats: list[str] = []
    frontier = list(chosen)
    while frontier:
        k = frontier.pop()
        for e in kept:
            if e.dst != k:
                continue
            if e.src in limited:
                caveats.append(f"{k}: its prerequisite {e.src} is teacher-limited (strength {e.strength:.2f})")
            elif e.src in deficient and e.src not in chosen:
                chosen.add(e.src)
                frontier.append(e.src)
    return sorted(chosen, key=lambda k: (-sev.get(k, 0.0), k)), sorted(set(caveats))


def plan_stages(targets: list[str], edges: list[Edge], levels: dict[str, int], gaps: dict[str, float],
                tau_zpd: float) -> list[Stage]:
    """Eq. 7 topological layers of the target subgraph, ordered by (level, gap) inside a layer, then Eq. 8 ZPD
    splits."""
    g = nx.DiGraph()
    g.add_nodes_from(targets)
    g.add_edges_from((e.src, e.dst) for e in edges if e.kept and e.src in targets and e.dst in targets)
    layers = [sorted(layer, key=lambda k: (levels.get(k, 1), gaps.get(k, 0.0), k))
              for layer in nx.topological_generations(g)]
    return zpd_split(layers, gaps, tau_zpd)


def stage_difficulty(modules: list[str], gaps: dict[str, float]) -> float:
    """Eq. 8: a stage's difficulty is the mean gap of its modules."""
    return sum(gaps.get(k, 0.0) for k in modules) / len(modules)


def zpd_split(layers: list[list[str]], gaps: dict[str, float], tau_zpd: float) -> list[Stage]:
    """Split any stage more than tau_zpd harder than the one before: its harder modules move to a later stage.

    One-sided (an easier stage is fine); the first stage and one-module stages are exempt.
    """
    out: list[list[str]] = []
    queue = [list(layer) for layer in layers if layer]
    while queue:
        mods = queue.pop(0)
        if out and len(mods) > 1:
            prev = stage_difficulty(out[-1], gaps)
            if stage_difficulty(mods, gaps) - prev > tau_zpd:
                by_gap = sorted(mods, key=lambda k: (gaps.get(k, 0.0), k))
                keep = [by_gap[0]]
                for k in by_gap[1:]:
                    if stage_difficulty(keep + [k], gaps) - prev <= tau_zpd:
                        keep.append(k)
                    else:
                        break
                rest = [k for k in mods if k not in keep]
                out.append([k for k in mods if k in keep])
                if rest:
                    queue.insert(0, rest)
                continue
        out.append(mods)
    return [Stage(index=i, modules=m, difficulty=stage_difficulty(m, gaps)) for i, m in enumerate(out)]


def stage_ratios(modules: list[str], obs: Observation, teacher: dict[str, float], eps: float) -> dict[str, float]:
    """Mastery ratio of each module of a stage at one observation."""
    return {k: mastery_ratio(obs.scores.get(k, 0.0), teacher.get(k, 0.0), eps) for k in modules}


def mastery_gate(ratios: dict[str, float], tau_mastery: float) -> bool:
    """Eq. 9: the stage passes when min over its modules of r(k) >= tau_mastery."""
    return bool(ratios) and min(ratios.values()) >= tau_mastery


def passed_level(student_levels: dict[int, float], teacher_levels: dict[int, float], tau_mastery: float) -> int:
    """Highest item level L such that every level up to L is passed (student >= tau_mastery * teacher on it)."""
    best = 0
    for lvl in (1, 2, 3):
        if lvl not in teacher_levels:  # no gate item at this level: passed vacuously when the levels below are
            best = lvl
            continue
        if student_levels.get(lvl, 0.0) >= tau_mastery * teacher_levels[lvl] - 1e-12:
            best = lvl
        else:
            break
    return best


def target_level(passed: int) -> int:
    """Each round targets one level above the highest level passed, never more (1..3)."""
    return min(3, passed + 1)


def decide(state: LearnerState, th: Thresholds) -> Decision:
    """§4 transition after an exam, checked in order: advance, give up, remediate, simplify.

    Reads the current stage, its round count (rounds already examined, this one included) and the min mastery ratio
    history (this round last). Records the numbers and thresholds behind the choice.
    """
    stage = state.stage()
    if stage is None or not stage.min_ratio_history:
        raise ValueError("decide needs an active stage with at least one examined round")
    teacher = {k: m.teacher_score or 0.0 for k, m in state.modules.items()}
    obs = state.last_observation()
    ratios = stage_ratios(stage.modules, obs, teacher, th.eps)
    failing = sorted(k for k, r in ratios.items() if r < th.tau_mastery)
    min_r = stage.min_ratio_history[-1]
    prev = stage.min_ratio_history[-2] if len(stage.min_ratio_history) > 1 else None
    numbers = {
        "min_ratio": round(min_r, 6),
        "rounds": stage.rounds,
        **{f"r[{k}]": round(v, 6) for k, v in ratios.items()},
    }
    base = dict(cycle=state.cycle, stage=stage.index, round=stage.rounds, numbers=numbers, failing=failing,
                modules=list(stage.modules))
    if mastery_gate(ratios, th.tau_mastery):
        return Decision(kind="advance", reason=f"min mastery {min_r:.2f} >= tau_mastery {th.tau_mastery:.2f}",
                        thresholds={"tau_mastery": th.tau_mastery}, **base)
    if stage.rounds >= 1 + th.max_remedial_rounds:
        return Decision(kind="give_up", reason=f"min mastery {min_r:.2f} < tau_mastery {th.tau_mastery:.2f} after "
                        f"{stage.rounds} rounds = 1 + max_remedial_rounds {th.max_remedial_rounds}",
                        thresholds={"tau_mastery": th.tau_mastery, "max_remedial_rounds": th.max_remedial_rounds},
                        **base)
    if prev is None:
        return Decision(kind="remediate",
                        reason=f"first round of the stage; min mastery {min_r:.2f} < tau_mastery {th.tau_mastery:.2f}",
                        thresholds={"tau_mastery": th.tau_mastery}, **base)
    progress = min_r - prev
    base["numbers"]["progress"] = round(progress, 6)
    if progress >= th.min_progress - 1e-12:
        return Decision(kind="remediate", reason=f"progress {progress:+.2f} >= min_progress {th.min_progress:.2f}; "
                        f"min mastery {min_r:.2f} < tau_mastery {th.tau_mastery:.2f}",
                        thresholds={"tau_mastery": th.tau_mastery, "min_progress": th.min_progress}, **base)
    return Decision(kind="simplify", reason=f"min mastery {min_r:.2f} < tau_mastery {th.tau_mastery:.2f}; "
                    f"progress {progress:+.2f} < min_progress {th.min_progress:.2f}",
                    thresholds={"tau_mastery": th.tau_mastery, "min_progress": th.min_progress, "tau_low": th.tau_low},
                    **base)


def latest_scores(observations: list[Observation]) -> dict[str, float]:
    """Each module's student score at the most recent observation that scored it."""
    out: dict[str, float] = {}
    for obs in observations:
        out.update(obs.scores)
    return out


def given_up_cycles(decisions: list[Decision]) -> dict[str, list[int]]:
    """The cycles in which each module was given up (failing at a give_up decision)."""
    out: dict[str, set[int]] = {}
    for d in decisions:
        if d.kind == "give_up":
            for k in d.failing:
                out.setdefault(k, set()).add(d.cycle)
    return {k: sorted(v) for k, v in out.items()}


def taught(decisions: list[Decision]) -> set[str]:
    """Modules that were in a stage that was examined (any §4 decision names them)."""
    return {k for d in decisions if d.kind in ("advance", "give_up", "remediate", "simplify") for k in d.modules}


def retired(decisions: list[Decision]) -> list[str]:
    """§1.6: modules given up in two cycles are not targeted again."""
    return sorted(k for k, cycles in given_up_cycles(decisions).items() if len(cycles) >= 2)


def known_at_start(teacher: dict[str, float], student: dict[str, float], th: Thresholds) -> list[str]:
    """§4: modules the student masters before any training (r >= tau_mastery at the first diagnosis), teachable
    or not; the examiner watches them for forgetting."""
    return sorted(k for k, pt in teacher.items()
                  if pt > 0 and mastery_ratio(student.get(k, 0.0), pt, th.eps) >= th.tau_mastery - 1e-12)


def remaining_teachable(state: LearnerState, th: Thresholds) -> list[str]:
    """Deficient, teachable modules not given up twice, by their latest scores: what a new diagnosis would find."""
    teacher = {k: m.teacher_score or 0.0 for k, m in state.modules.items()}
    _, deficient, _ = classify(teacher, latest_scores(state.observations), th)
    gone = set(retired(state.decisions))
    return [k for k in deficient if k not in gone]


def after_stage(state: LearnerState, th: Thresholds, has_next_stage: bool) -> Decision | None:
    """After advance or give-up on the last stage (§4 re-diagnose): a new diagnosis while cycles remain and
    deficient, teachable modules not given up twice remain (by their latest scores), else finish."""
    if has_next_stage:
        return None
    left = remaining_teachable(state, th)
    base = dict(cycle=state.cycle, stage=state.current_stage, round=0,
                numbers={"cycles_run": state.cycle + 1, "remaining_teachable": len(left)},
                thresholds={"max_cycles": th.max_cycles, "tau_gap": th.tau_gap}, modules=left)
    if not left:
        return Decision(kind="finish", reason="last stage done; no deficient, teachable module is left that was not "
                        "given up twice", **base)
    if state.cycle + 1 < th.max_cycles:
        return Decision(kind="rediagnose", reason=f"last stage done; {len(left)} deficient, teachable modules left "
                        f"({', '.join(left)}); cycle {state.cycle + 1} of max_cycles {th.max_cycles}", **base)
    return Decision(kind="finish", reason=f"last stage done; max_cycles {th.max_cycles} reached with {len(left)} "
                    f"deficient modules left ({', '.join(left)})", **base)


def untaught_reason(module: str, state: LearnerState, th: Thresholds,
                    max_rounds_total: int | None = None) -> str | None:
    """Why a module was not taught to mastery (§4 report), or None when it was trained and not given up twice.

    In order: given up in two cycles; (for a module never trained) teacher-limited; known from the start
    (r >= tau_mastery at the first diagnosis); not deficient at the last diagnosis (gap <= tau_gap); the budget ran
    out first; the run stopped for another reason; max_rounds_total or max_cycles reached first."""
    if module in retired(state.decisions):
        return "given up in two cycles"
    if module in taught(state.decisions):
        return None
    m = state.modules[module]
    pt = m.teacher_score or 0.0
    first = state.observations[0].scores if state.observations else {}
    if m.teacher_limited:
        return f"teacher-limited (teacher {pt:.2f} < teacher_floor {th.teacher_floor:.2f})"
    if module in state.known:
        replayed = " (forgot it, and was replayed)" if module in state.trained else ""
        r0 = mastery_ratio(first.get(module, 0.0), pt, th.eps)
        return f"known from the start (r {r0:.2f} >= tau_mastery {th.tau_mastery:.2f}){replayed}"
    now = gap(pt, latest_scores(state.observations).get(module, 0.0), th.eps)
    if now <= th.tau_gap:
        was = " any more (it was at the first diagnosis)" if module in state.first_deficient else ""
        return f"not deficient{was}: gap {now:.2f} <= tau_gap {th.tau_gap:.2f}"
    if (state.stop_reason or "").startswith(BUDGET_STOP):
        return "the teacher-token budget was spent first"
    if state.stop_reason:
        return f"the run stopped first ({state.stop_reason})"
    if max_rounds_total is not None and state.total_rounds >= max_rounds_total:
        return f"max_rounds_total {max_rounds_total} reached first"
    return f"max_cycles {th.max_cycles} reached first"


def replan_pending(stages: list[Stage], current: int, edges: list[Edge], levels: dict[str, int],
                   gaps: dict[str, float], tau_zpd: float) -> list[Stage]:
    """When the kept edges change, plan the stages not yet started again; started stages stay as they are."""
    done = stages[: current + 1]
    pending = [k for s in stages[current + 1:] for k in s.modules]
    if not pending:
        return [s.model_copy() for s in stages]
    fresh = plan_stages(pending, edges, levels, gaps, tau_zpd)
    return [s.model_copy() for s in done] + [
        s.model_copy(update={"index": current + 1 + i}) for i, s in enumerate(fresh)
    ]


def apply_decision(view: LearnerState, th: Thresholds, max_rounds_total: int) -> dict:
    """The state changes the last decision (a §4 decision, stored by the examiner) makes, as a partial update (pure).

    advance / give up: the stage is closed (passed / gave_up), its modules recorded as passed or not mastered, and
    the next stage activated, or (after the last) a rediagnose / finish decision appended (`after_stage`).
    remediate / simplify: the next round's mode; simplify lowers the failing modules' item level by one.
    A run past `max_rounds_total` rounds finishes. Each module of the stage targets one level above the highest it
    passed (`target_level`), before simplify lowers it.
    """
    decision = view.decisions[-1]
    stages = [s.model_copy(deep=True) for s in view.stages]
    stage = stages[view.current_stage]
    decisions = list(view.decisions)
    level = dict(view.level)
    for k in stage.modules:
        level[k] = target_level(view.modules[k].passed_level)
    current, mode, cycle = view.current_stage, "initial", view.cycle
    passed, not_mastered = list(view.passed), list(view.not_mastered)
    if decision.kind in ("advance", "give_up"):
        stage.status = "passed" if decision.kind == "advance" else "gave_up"
        passed += [k for k in stage.modules if k not in decision.failing and k not in passed]
        not_mastered += [k for k in decision.failing if k not in not_mastered]
        current += 1
        follow = after_stage(view, th, current < len(stages))
        if follow is None:
            stages[current].status = "active"
        else:
            decisions.append(follow)
            cycle += int(follow.kind == "rediagnose")
    elif view.total_rounds >= max_rounds_total:
        decisions.append(Decision(kind="finish", cycle=view.cycle, stage=stage.index, round=stage.rounds,
                                  reason=f"max_rounds_total {max_rounds_total} reached",
                                  numbers={"total_rounds": view.total_rounds}, thresholds={}))
    else:
        mode = decision.kind
        if decision.kind == "simplify":
            for k in decision.failing:
                level[k] = max(1, min(level[k], view.level.get(k, 1)) - 1)
    return {"stages": stages, "decisions": decisions, "current_stage": current, "mode": mode, "cycle": cycle,
            "passed": passed, "not_mastered": not_mastered, "level": level}
