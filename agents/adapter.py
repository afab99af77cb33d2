"""The adapter / rewriter (Adapter, algorithm §3): in what form.

For the current stage's modules (all of them in a stage's first round, the failing ones after remediate/simplify)
the node runs these steps, each a function below:

1. `write_questions`: the teacher writes new questions from seed items, or from the student's actual wrong answers
   on remedial-source items, at the module's current difficulty level (`samples_per_seed` per seed).
2. `answer_candidates`: the teacher answers each question with the enabled adaptations in its system prompt
   (concretization, decomposition, cognitive-load control, a fixed template, plain language; each a prompt file),
   shaped to the student's capacity; `vote_samples` samples where the answer must be verified by agreement.
3. `judge` (verify, then deduplicate, then template): the pure checks of agents/item_checks.py. Verified with the
   pack's checker against the source's reference when the question asks for the same thing, by agreement of the
   teacher's samples otherwise; a duplicate (ROUGE-L > adapter.dedup_rouge) of a kept or gate item is dropped.
4. top up: a module left with fewer than `min_items` items gets another pass with fresh samples (bounded).

Kept items (`SynthesizedItem`) and dropped candidates (`DroppedItem`, with the reason) go to JSONL files. The steps
that a baseline replaces (the adaptation text, the number of answer samples, the judge) are `AdapterSteps`; the
graph builder wires another set for the no_adapter ablation (baselines/ablations.py).
"""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable

from agents.item_checks import (
    answer_words,
    duplicate_of,
    first_sentence,
    parse_question,
    verify_by_checker,
    verify_by_vote,
    with_template,
)
from agents.runtime import Services, read_jsonl, write_jsonl
from ioa_state import Item, LearnerState
from ioa_state.records import DroppedItem, SynthesizedItem, WrongAnswer
from prompts import render, template

PASS_STRIDE = 300  # sample indices per pass (round * 1000 + pass * 300 + j): every pass draws fresh samples


class ItemShortage(RuntimeError):
    """A module kept fewer than min_items items: the run stops instead of training on nothing."""


@dataclass(frozen=True)
class RoundPlan:
    """What one synthesis round is for: its modules, mode and where its items are recorded."""

    tag: str
    modules: list[str]
    simplify: bool
    round_no: int
    stage: int
    stage_round: int
    cycle: int
    mode: str
    context: str | None

    @property
    def where(self) -> dict:
        return {"stage": self.stage, "round": self.stage_round, "cycle": self.cycle}


@dataclass(frozen=True)
class Candidate:
    """A question the teacher wrote, with what it was written from."""

    module: str
    source: Item
    wrong: str | None
    template: str
    level: int
    question: str
    pass_: int


@dataclass
class Judged:
    """A judge's verdict on one candidate: the item's fields when kept, else the drop reason (and the answer)."""

    kept: bool
    answer: str
    reason: str | None = None
    item: dict = field(default_factory=dict)


def adaptation_text(svc: Services, simplify: bool, ratio: float) -> tuple[str, list[str]]:
    """The system-prompt block for the enabled adaptations, and their names (stored with each item)."""
    names = svc.cfg.adaptations.enabled()
    parts = [template(n) for n in names]
    if simplify:
        parts.append(template("simplify"))
    ac = svc.cfg.adapter
    words = answer_words(ratio, svc.cfg.thresholds.tau_low, ac.short_answer_words, ac.answer_words)
    parts.append(render("capacity", words=words).text)
    return "\n".join(parts), names


def needs_vote(svc: Services, src: Item) -> bool:
    """An item is verified by agreement when its question asks something new, or its source has no reference."""
    return svc.pack_synthesis() != "paraphrase" or src.reference is None


def answer_samples(svc: Services, src: Item) -> int:
    return svc.cfg.thresholds.vote_samples if needs_vote(svc, src) else 1


def judge(svc: Services, plan: RoundPlan, cand: Candidate, samples: list[str], gate: list[Item],
          kept_texts: list[tuple[str, str]], kept_in_module: int, names: list[str]) -> Judged:
    """Verify, deduplicate, template and cap one candidate (the IOA judge)."""
    cfg = svc.cfg
    if needs_vote(svc, cand.source):
        v = verify_by_vote(samples, cfg.thresholds.vote_agree)
    else:
        bar = cfg.adapter.verify_min_rouge if svc.pack.checker == "rouge" else cfg.adapter.verify_min_score
        v = verify_by_checker(samples[0], svc.pack.check(cand.source, samples[0]), bar, cand.source.reference)
    if not v.kept:
        return Judged(False, v.answer, v.reason)
    dup, kind = duplicate_of(cand.question, v.answer, v.reference, gate, kept_texts, cfg.adapter.dedup_rouge)
    if dup is not None:
        return Judged(False, v.answer, f"duplicate of a {kind} (ROUGE-L > {cfg.adapter.dedup_rouge}): {dup!r}")
    answer, filled = with_template(v.answer, v.reference) if cfg.adaptations.template else (v.answer, False)
    if cfg.max_items_per_module and kept_in_module >= cfg.max_items_per_module:
        return Judged(False, answer, f"over max_items_per_module {cfg.max_items_per_module}")
    return Judged(
        True,
        answer,
        item={
            "reference": v.reference,
            "adaptations": names + (["simplify"] if plan.simplify else []),
            "template_filled": filled,
            "verification": v.verification,
        },
    )


@dataclass(frozen=True)
class AdapterSteps:
    """The Adapter's replaceable steps; the defaults are IOA's."""

    adaptations: Callable[[Services, bool, float], tuple[str, list[str]]] = adaptation_text
    samples: Callable[[Services, Item], int] = answer_samples
    judge: Callable[..., Judged] = judge


IOA_STEPS = AdapterSteps()


def replay_modules(state: LearnerState) -> list[str]:
    """§4 forgetting guard: modules known from the start that fell below tau_mastery and were never trained have no
    items to replay; this round writes them a first round's items from their seeds (charged to the budget)."""
    stage = state.stage()
    return [k for k in state.forgetting if k not in state.trained and k not in stage.modules]


def round_plan(state: LearnerState, svc: Services) -> RoundPlan:
    stage = state.stage()
    modules = stage.modules if state.mode == "initial" else (state.decisions[-1].failing or stage.modules)
    modules = list(modules) + [k for k in replay_modules(state) if k not in modules]
    return RoundPlan(tag=f"c{state.cycle}-s{stage.index}-r{stage.rounds}", modules=list(modules),
                     simplify=state.mode == "simplify", round_no=state.total_rounds, stage=stage.index,
                     stage_round=stage.rounds, cycle=state.cycle, mode=state.mode, context=svc.teacher_context)


def sources(state: LearnerState, svc: Services, module: str) -> list[tuple[Item, str | None]]:
    """(source item, student's wrong answer or None): wrong answers in remediate/simplify rounds, else seeds."""
    m = state.modules[module]
    if state.mode != "initial" and state.wrong_answers is not None:
        wrong = [WrongAnswer.model_validate(r) for r in read_jsonl(svc.run_dir, state.wrong_answers)]
        wrong = [w for w in wrong if w.module == module]
        if wrong:
            return [(svc.items[w.item], w.answer) for w in wrong]
    return [(svc.items[i], None) for i in m.seed_ids]


def _question_prompt(state: LearnerState, svc: Services, module: str, src: Item, wrong: str | None, hint: str):
    if wrong is None:
        return render(
            "synthesize", module=state.modules[module].name, seed=svc.pack.format_prompt(src), level_hint=hint
        )
    return render("remediate", question=svc.pack.format_prompt(src), wrong=first_sentence(wrong),
                  reference=src.reference or "", level_hint=hint)


def write_questions(state: LearnerState, svc: Services, plan: RoundPlan, todo: list[str],
                    attempt: int) -> tuple[list[Candidate], list[DroppedItem]]:
    """Step 1: new questions for the modules in `todo` (a top-up pass also writes from the module's seeds)."""
    from agents.teacher import TeacherRequest

    cfg, th = svc.cfg, svc.cfg.thresholds
    sys_msg = [{"role": "system", "content": plan.context}] if plan.context else []
    reqs, meta = [], []
    for k in todo:
        level = state.level.get(k, 1)
        hint = template(f"level_{level}") + (" " + template("simplify") if plan.simplify else "")
        srcs = sources(state, svc, k)
        if attempt:
            srcs += [(svc.items[i], None) for i in state.modules[k].seed_ids if all(s.id != i for s, _ in srcs)]
        # as many candidates per module as a first round has, however few wrong answers there are to write from
        per_source = min(PASS_STRIDE, max(th.samples_per_seed, math.ceil(
            th.samples_per_seed * max(1, len(state.modules[k].seed_ids)) / max(1, len(srcs)))))
        for src, wrong in srcs:
            p = _question_prompt(state, svc, k, src, wrong, hint)
            for j in range(per_source):
                reqs.append(TeacherRequest(
                    messages=sys_msg + [{"role": "user", "content": p.text}], temperature=cfg.teacher.temperature,
                    max_tokens=cfg.teacher.question_max_tokens,
                    sample_index=plan.round_no * 1000 + attempt * PASS_STRIDE + j, role="adapter",
                    tag={"module": k, "item": src.id, "template": p.template, "step": "question", **plan.where}))
                meta.append((k, src, wrong, p.template, level))
    candidates, dropped = [], []
    for (k, src, wrong, tmpl, level), rep in zip(meta, svc.teacher.ask(reqs)):
        q = parse_question(rep.text)
        if q is None:
            dropped.append(
                DroppedItem(
                    module=k,
                    source=src.id,
                    from_wrong_answer=wrong is not None,
                    level=level,
                    mode=plan.mode,
                    pass_=attempt,
                    question=rep.text,
                    reason="unparseable question" if rep.error is None else f"teacher error: {rep.error}",
                )
            )
        else:
            candidates.append(Candidate(k, src, wrong, tmpl, level, q, attempt))
    return candidates, dropped


def answer_candidates(state: LearnerState, svc: Services, plan: RoundPlan, candidates: list[Candidate],
                      steps: AdapterSteps) -> list[list[str]]:
    """Step 2: the teacher's answers to each candidate, shaped by the adaptations (one list of samples each)."""
    from agents.teacher import TeacherRequest

    cfg, th = svc.cfg, svc.cfg.thresholds
    obs = state.last_observation()
    reqs, index = [], []
    for ci, c in enumerate(candidates):
        ratio = (
            obs.scores.get(c.module, 0.0) / max(state.modules[c.module].teacher_score or 0.0, th.eps) if obs else 0.0
        )
        adapt, _ = steps.adaptations(svc, plan.simplify, ratio)
        solve = render("solve", context=plan.context or "", adaptations=adapt)
        n = steps.samples(svc, c.source)
        for s in range(n):
            reqs.append(TeacherRequest(
                messages=[{"role": "system", "content": solve.text}, {"role": "user", "content": c.question}],
                temperature=0.0 if n == 1 else cfg.teacher.temperature,
                max_tokens=min(cfg.teacher.max_tokens, cfg.student.max_length // 2), sample_index=s, role="adapter",
                tag={"module": c.module, "item": c.source.id, "template": "solve", "step": "answer", **plan.where}))
            index.append(ci)
    answers: list[list[str]] = [[] for _ in candidates]
    for ci, rep in zip(index, svc.teacher.ask(reqs)):
        answers[ci].append(rep.text or "")
    return [a or [""] for a in answers]


def judge_all(
    state: LearnerState,
    svc: Services,
    plan: RoundPlan,
    candidates: list[Candidate],
    answers: list[list[str]],
    steps: AdapterSteps,
    names: list[str],
    earlier: dict[str, list[tuple[str, str]]],
    kept: list[SynthesizedItem],
    dropped: list[DroppedItem],
) -> None:
    """Step 3: judge every candidate in order, appending to `kept` and `dropped`."""
    gate = {k: [svc.items[i] for i in state.modules[k].gate_ids] for k in plan.modules}
    for c, samples in zip(candidates, answers):
        mine = [(r.prompt, r.answer) for r in kept if r.module == c.module]
        j = steps.judge(svc, plan, c, samples, gate[c.module], earlier[c.module] + mine, len(mine), names)
        if not j.kept:
            dropped.append(DroppedItem(module=c.module, source=c.source.id, from_wrong_answer=c.wrong is not None,
                                       level=c.level, mode=plan.mode, pass_=c.pass_, question=c.question,
                                       answer=j.answer, reason=j.reason))
            continue
        kept.append(SynthesizedItem(id=f"{plan.tag}-{c.module}-{len(kept)}", module=c.module, prompt=c.question,
                                    answer=j.answer, level=c.level, mode=plan.mode, source=c.source.id,
                                    from_wrong_answer=c.wrong is not None, question_template=c.template,
                                    **plan.where, **j.item))


def earlier_items(state: LearnerState, svc: Services, modules: list[str]) -> dict[str, list[tuple[str, str]]]:
    """(question, answer) of every item kept so far in this run, per module (for the dedup rule)."""
    earlier: dict[str, list[tuple[str, str]]] = {k: [] for k in modules}
    for ref in state.item_files:
        for r in read_jsonl(svc.run_dir, ref):
            if r.get("module") in earlier:
                earlier[r["module"]].append((r["prompt"], r["answer"]))
    return earlier


def record(state: LearnerState, svc: Services, plan: RoundPlan, kept: list[SynthesizedItem],
           dropped: list[DroppedItem], names: list[str]) -> dict:
    """Step 5: write the round's files and trace; stop the run when a module kept fewer than min_items."""
    counts = Counter(r.module for r in kept)
    rows = [d.model_dump(by_alias=True, exclude_none=True) for d in dropped]
    drop_ref = write_jsonl(svc.run_dir, f"items/{plan.tag}-dropped.jsonl", rows, kind="items", stage=plan.stage,
                           round=plan.stage_round)
    for k in plan.modules:
        reasons = Counter(d.reason_kind for d in dropped if d.module == k)
        svc.trace.emit("synthesis", node="synthesize", cycle=plan.cycle, stage=plan.stage, round=plan.stage_round,
                       module=k, mode=plan.mode, level=state.level.get(k, 1), kept=counts[k],
                       dropped=sum(reasons.values()), drop_reasons=dict(reasons), adaptations=names)
    for row in rows:
        svc.trace.emit("item_dropped", node="synthesize", cycle=plan.cycle, stage=plan.stage, round=plan.stage_round,
                       **row)
    short = [k for k in plan.modules if counts[k] < svc.cfg.min_items and k in state.stage().modules]
    if short:
        k = short[0]
        reasons = dict(Counter(d.reason_kind for d in dropped if d.module == k))
        raise ItemShortage(f"module {k}: the teacher's replies gave {counts[k]} usable items, fewer than min_items "
                           f"{svc.cfg.min_items} (dropped: {reasons}); see {drop_ref.path} - check the teacher "
                           f"backend, or continue with `ioa resume {state.run_id} --set min_items=1`")
    ref = write_jsonl(svc.run_dir, f"items/{plan.tag}.jsonl", [r.model_dump(exclude_none=True) for r in kept],
                      kind="items", stage=plan.stage, round=plan.stage_round)
    svc.progress(f"synthesize {plan.tag}: kept {len(kept)} items ({dict(counts)}), dropped {len(dropped)}")
    return {"item_files": state.item_files + [ref], "dropped_files": state.dropped_files + [drop_ref],
            "phase": "synthesized", "usage": svc.usage()}


def synthesize(state: LearnerState, svc: Services, steps: AdapterSteps = IOA_STEPS) -> dict:
    """The Adapter node: write, shape, verify and deduplicate the round's items (top-up passes when short)."""
    plan = round_plan(state, svc)
    svc.progress(f"synthesize {plan.tag}: {plan.mode} items for {', '.join(plan.modules)}")
    _, names = steps.adaptations(svc, plan.simplify, 1.0)
    earlier = earlier_items(state, svc, plan.modules)
    kept: list[SynthesizedItem] = []
    dropped: list[DroppedItem] = []
    todo = list(plan.modules)
    for attempt in range(1 + svc.cfg.adapter.top_up_passes):
        candidates, unparsed = write_questions(state, svc, plan, todo, attempt)
        dropped += unparsed
        answers = answer_candidates(state, svc, plan, candidates, steps)
        judge_all(state, svc, plan, candidates, answers, steps, names, earlier, kept, dropped)
        counts = Counter(r.module for r in kept)
        todo = [k for k in plan.modules if counts[k] < svc.cfg.min_items]
        if not todo or attempt == svc.cfg.adapter.top_up_passes:
            break
        svc.progress(f"synthesize {plan.tag}: {', '.join(todo)} short of min_items {svc.cfg.min_items}: "
                     f"top-up pass {attempt + 1}")
    return record(state, svc, plan, kept, dropped, names)
