"""The adapter / rewriter (Adapter, algorithm §3): in what form.

For the current stage's modules (all of them in a stage's first round, the failing ones after remediate/simplify)
the node runs these steps, each a function below:

1. `write_questions`: the teacher writes new questions from seed items, or from the student's actual wrong answers
   on remedial-source items, at the module's current difficulty level (`samples_per_seed` per seed). With
   `adapter.item_format: json` one structured call writes the question, its steps and its final answer together
   (agents/item_drafts.py) instead of a question call and an answer call.
2. `screen`: before any answer is paid for, a question the run already answered is dropped (`repeated_question`:
   `unrepeated`), and a question that is cut (`cut_question`), misnames an entity its source
   names (`misnamed_entity`) or leaves out a name its source question names (`missing_entity`; both on packs whose
   items paraphrase their source), or duplicates a test-split question
   (`test_overlap`, the only use of the test split before the report) is dropped (agents/item_checks.py); so is one
   that duplicates a gate question with its source's reference, where that reference will verify the answer.
3. `answer_candidates`: the teacher answers each question with the enabled adaptations in its system prompt
   (concretization, decomposition, cognitive-load control, a fixed template, plain language; each a prompt file),
   shaped to the student's capacity; `vote_samples` samples where the answer must be verified by agreement.
4. `judge` (verify, check the answer's form, deduplicate, template): verified with the pack's checker against the
   source's reference when the question asks for the same thing (on short-answer checkers, a verified answer whose
   stated final answer fails the checker, "... the drin.\nAnswer: Drunken.", ends on "Answer: <reference>" instead:
   `fixed_final_answer`), by agreement of the teacher's samples otherwise;
   an answer with an empty final answer (`empty_answer`) or a misnamed entity is dropped; a duplicate (ROUGE-L >
   adapter.dedup_rouge) of a kept or gate item is dropped.
5. top up: a module left with fewer items than the round needs (`round_need`: what its stage still lacks of
   `min_items`, at least one) gets another pass with fresh samples (bounded).

Where a module's items are written from its seed items (a stage's first round, a forgotten module's replay), the
round's first pass also takes each seed item itself as a candidate (`seed_candidates`, `adapter.seed_examples`): the
seed's question goes through steps 2-4 like a written one, minus the question-form checks a pack's own question
needs no rewrite for, so the student meets the concrete case, answered by the teacher under the adaptations and
verified against its reference, before the rewrites; one that duplicates a gate item is dropped, and a seed kept
earlier in the run is not asked again. Where they are written from the student's wrong answers (remediate,
simplify), the concrete case is the remedial-source item the student got wrong, the same way
(`adapter.remedial_examples`, off by default: README Results, bench12): the question it missed, answered and
verified, then its rewrites. (Gate items are never sources, so passing the gate is still not memorisation.)

Step 1 writes a pass's questions in chunks of CHUNK, the round's modules taking turns (`chunks`); step 2 screens
each chunk at once; the survivors of several chunks wait to be answered together in whole batches of CHUNK answer
calls (`answer_batches`: a chunk's survivors alone would make a batch a third full), in their order, so the judge
sees them in the order one batch would give. The round runs within `Teacher.settling()` (`synthesize`): when the
teacher-token budget runs out in it, the calls the budget cannot pay are answered as not sent, and the student trains
on what the round kept; so a budget stop wastes at most the questions still waiting for their answers (fewer than
a batch's).

Kept items (`SynthesizedItem`) and dropped candidates (`DroppedItem`, with the reason) go to JSONL files; the round's
yield (written, kept, dropped by reason, teacher tokens per kept item: agents/synthesis_yield.py) is traced. The steps
that a baseline replaces (the adaptation text, the number of answer samples, the judge) are `AdapterSteps`; the
graph builder wires another set for the no_adapter ablation (baselines/ablations.py).
"""
from __future__ import annotations

import dataclasses
import itertools
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable

from agents import item_drafts, item_forms, synthesis_yield
from agents.item_checks import (
    HeldOutQuestions,
    Verdict,
    answer_words,
    complete_question,
    duplicate_of,
    empty_final_answer,
    entity_names,
    first_sentence,
    gate_duplicate,
    known_words,
    misnamed_entity,
    missing_entity,
    parse_question,
    verify_by_checker,
    verify_by_vote,
    with_final_answer,
    with_template,
    wrong_final_answer,
)
from agents.runtime import Services, context_for, read_jsonl, write_jsonl
from agents.trainer import stage_items
from ioa_state import Item, LearnerState
from ioa_state.records import DroppedItem, SynthesizedItem, WrongAnswer
from prompts import render, template
from tasks.checkers import normalize

# checkers whose reference is a short final answer: a verified answer whose stated final answer fails them ends on
# the template's line with the reference (`fixed_final_answer`); a rouge reference is a whole text, a code item's its
# tests
FINAL_ANSWER_CHECKERS = ("contains", "exact", "numeric")
SEED_TEMPLATE = "seed"  # a Candidate's template when its question is its seed item's own (seed_candidates)
PASS_STRIDE = 300  # sample indices per pass (round * 1000 + pass * 300 + j): every pass draws fresh samples
CHUNK = 32  # questions written together, and answer calls made together (one in-process generate batch each)


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
    known: frozenset[str] = frozenset()  # words of the context and the pack's training items (misnamed_entity)
    check_names: bool = True  # paraphrase packs only: a rewrite of a new problem may rename its people
    passages: int = 0  # teacher.context_passages: the context a call gets is the passages its question needs

    def context_for(self, question: str) -> str | None:
        """The teacher's context for a call about `question` (the whole context when `passages` is 0)."""
        return context_for(self.context, self.passages, question)

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
    reply: str = ""  # the teacher's whole reply the question was parsed from
    reply_cut: bool = False  # that reply used all its max_tokens (finish reason "length")
    drafted: str | None = None  # item_format json: the answer written with the question (steps and final answer)

    def entities(self) -> list[str]:
        """The proper names its source names (the source's question and reference)."""
        return entity_names([self.source.prompt, self.source.reference or ""])


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
    """Verify, check the answer's form, deduplicate, template and cap one candidate (the IOA judge)."""
    cfg = svc.cfg
    if needs_vote(svc, cand.source):
        v = verify_by_vote(samples, cfg.thresholds.vote_agree)
    else:
        bar = cfg.adapter.verify_min_rouge if svc.pack.checker == "rouge" else cfg.adapter.verify_min_score
        v = verify_by_checker(samples[0], svc.pack.check(cand.source, samples[0]), bar, cand.source.reference)
        if v.kept and v.reference is not None and svc.pack.checker in FINAL_ANSWER_CHECKERS:
            v = fixed_final_answer(v, wrong_final_answer(v.answer, lambda a: svc.pack.check(cand.source, a), bar))
    if not v.kept:
        return Judged(False, v.answer, v.reason)
    bad = answer_form(plan, cand, v.answer)
    if bad is not None:
        return Judged(False, v.answer, bad)
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


def fixed_final_answer(v: Verdict, stated: str | None) -> Verdict:
    """A verified answer whose stated final answer failed the checker (`stated`) ends on the template's line with the
    reference instead (`with_final_answer`), as an answer that states none gets it (`with_template`); the item's
    verification records the line it replaced."""
    if stated is None:
        return v
    return dataclasses.replace(v, answer=with_final_answer(v.answer, v.reference),
                               verification={**v.verification, "final_answer_replaced": stated[:80]})


def question_form(plan: RoundPlan, cand: Candidate) -> str | None:
    """The drop reason of a question that is cut, misnames its source's entities or leaves one of its source
    question's names out (paraphrase packs), else None."""
    if cand.template == SEED_TEMPLATE:  # the pack's own question: nothing was written, nothing can be cut
        return None
    bound = item_drafts.QUESTION_MAX_CHARS if cand.drafted is not None else None
    why = complete_question(cand.question, cand.reply, cand.reply_cut, bound)
    if why is not None:
        return f"cut_question: {why}"
    if not plan.check_names:
        return None
    why = misnamed_entity(cand.question, cand.entities(), plan.known)
    if why is not None:
        return f"misnamed_entity: {why}"
    why = missing_entity(cand.question, cand.source.prompt)
    return None if why is None else f"missing_entity: {why}"


def answer_form(plan: RoundPlan, cand: Candidate, answer: str) -> str | None:
    """The drop reason of an answer with no final answer or a misnamed entity, else None."""
    why = empty_final_answer(answer)
    if why is not None:
        return f"empty_answer: {why}"
    if not plan.check_names:
        return None
    why = misnamed_entity(answer, cand.entities(), plan.known | known_words([cand.question]))
    return None if why is None else f"misnamed_entity: in the answer, {why}"


@dataclass(frozen=True)
class AdapterSteps:
    """The Adapter's replaceable steps; the defaults are IOA's."""

    adaptations: Callable[[Services, bool, float], tuple[str, list[str]]] = adaptation_text
    samples: Callable[[Services, Item], int] = answer_samples
    judge: Callable[..., Judged] = judge
    gate_screen: bool = True  # the judge's gate-duplicate rule, applied before the answer (step 2) where it can be
    repeat_screen: bool = True  # a question the run already answered is dropped before its answer (`unrepeated`)


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
    context = svc.teacher_context
    training = [t for it in svc.items.values() if it.split != "test" for t in (it.prompt, it.reference or "")]
    return RoundPlan(tag=f"c{state.cycle}-s{stage.index}-r{stage.rounds}", modules=list(modules),
                     simplify=state.mode == "simplify", round_no=state.total_rounds, stage=stage.index,
                     stage_round=stage.rounds, cycle=state.cycle, mode=state.mode, context=context,
                     known=frozenset(known_words([context or ""] + training)),
                     check_names=svc.pack_synthesis() == "paraphrase", passages=svc.context_passages)


def sources(state: LearnerState, svc: Services, module: str) -> list[tuple[Item, str | None]]:
    """(source item, student's wrong answer or None): wrong answers in remediate/simplify rounds, else seeds."""
    m = state.modules[module]
    if state.mode != "initial" and state.wrong_answers is not None:
        wrong = [WrongAnswer.model_validate(r) for r in read_jsonl(svc.run_dir, state.wrong_answers)]
        wrong = [w for w in wrong if w.module == module]
        if wrong:
            return [(svc.items[w.item], w.answer) for w in wrong]
    return [(svc.items[i], None) for i in m.seed_ids]


def _question_prompt(state: LearnerState, svc: Services, module: str, src: Item, wrong: str | None, hint: str,
                     names: tuple[str, str] = ("synthesize", "remediate")):
    if wrong is None:
        return render(
            names[0], module=state.modules[module].name, seed=svc.pack.format_prompt(src), level_hint=hint
        )
    return render(names[1], question=svc.pack.format_prompt(src), wrong=first_sentence(wrong),
                  reference=src.reference or "", level_hint=hint)


@dataclass(frozen=True)
class Slot:
    """One candidate to write: its module, source item (and the student's wrong answer), level and sample index."""

    module: str
    source: Item
    wrong: str | None
    level: int
    hint: str
    sample_index: int


def slots(state: LearnerState, svc: Services, plan: RoundPlan, todo: list[str], attempt: int) -> list[Slot]:
    """The candidates a pass writes for the modules in `todo` (a top-up pass also writes from the module's seeds)."""
    th = svc.cfg.thresholds
    out = []
    for k in todo:
        level = state.level.get(k, 1)
        hint = template(f"level_{level}") + (" " + template("simplify") if plan.simplify else "")
        srcs = sources(state, svc, k)
        if attempt:
            srcs += [(svc.items[i], None) for i in state.modules[k].seed_ids if all(s.id != i for s, _ in srcs)]
        # samples_per_seed (the paper's J_i) per source: a seed item, or a wrong answer in a remedial round. (It was
        # once raised to a first round's volume however few wrong answers there were: bench9's remedial rounds with
        # one wrong answer then wrote 110-120 rewrites of one question for 27,000-30,000 tokens and kept 2-7 items,
        # most dropped as repeats, duplicates or failed answers. A module short of what the round needs gets the top-up
        # pass: `round_need`.)
        for src, wrong in srcs:
            out += [Slot(k, src, wrong, level, hint, plan.round_no * 1000 + attempt * PASS_STRIDE + j)
                    for j in range(min(PASS_STRIDE, th.samples_per_seed))]
    return out


def seed_candidates(state: LearnerState, svc: Services, plan: RoundPlan,
                    earlier: dict[str, list[tuple[str, str]]]) -> list[Candidate]:
    """Each source item of the round's modules as a candidate of its own: a seed item where the module's items are
    written from its seeds (adapter.seed_examples), a remedial-source item the student got wrong where they are
    written from its wrong answers (adapter.remedial_examples; from_wrong_answer). Its question is the item's prompt
    as the student is asked it; one whose question was kept earlier in the run is left out (it would only be dropped
    as a duplicate after its answer was paid)."""
    on = {False: svc.cfg.adapter.seed_examples, True: svc.cfg.adapter.remedial_examples}
    out = []
    for k in plan.modules:
        srcs = sources(state, svc, k)
        if not on[any(wrong is not None for _, wrong in srcs)]:
            continue
        asked = {q.strip() for q, _ in earlier.get(k, [])}
        for src, wrong in srcs:
            q = svc.pack.format_prompt(src)
            if q.strip() not in asked:
                asked.add(q.strip())  # two wrong answers to one item: one candidate
                out.append(Candidate(k, src, wrong, SEED_TEMPLATE, state.level.get(k, 1), q, 0, reply=q))
    return out


def chunks(todo: list[Slot], size: int | None = None) -> list[list[Slot]]:
    """A pass's slots in chunks of `size`, the modules taking turns (each module's slots stay in their order, so its
    judging order, and with it the dedup rule's, is what one batch would give): a budget that runs out mid-round
    leaves fewer than a batch's questions unanswered, and every module of the round has had its share of the chunks
    before."""
    size = size or CHUNK
    by_module: dict[str, list[Slot]] = {}
    for s in todo:
        by_module.setdefault(s.module, []).append(s)
    turns = [s for row in itertools.zip_longest(*by_module.values()) for s in row if s is not None]
    return [turns[i:i + size] for i in range(0, len(turns), size)]


def dropped_item(plan: RoundPlan, module: str, source: Item, wrong: str | None, level: int, pass_: int,
                 question: str | None, reason: str, answer: str | None = None) -> DroppedItem:
    return DroppedItem(module=module, source=source.id, from_wrong_answer=wrong is not None, level=level,
                       mode=plan.mode, pass_=pass_, question=question, answer=answer, reason=reason)


def write_questions(state: LearnerState, svc: Services, plan: RoundPlan, todo_slots: list[Slot], attempt: int,
                    steps: AdapterSteps = IOA_STEPS) -> tuple[list[Candidate], list[DroppedItem]]:
    """Step 1: new questions for these slots, as free text (or whole items: adapter.item_format json)."""
    from agents.teacher import BUDGET_NOT_SENT, TeacherRequest

    if svc.cfg.adapter.item_format == "json":
        return draft_items(state, svc, plan, todo_slots, attempt, steps)
    cfg = svc.cfg
    form = item_forms.question_call_form(cfg)
    reqs, tmpls = [], []
    for s in todo_slots:
        p = _question_prompt(state, svc, s.module, s.source, s.wrong, s.hint)
        context = plan.context_for(s.source.prompt) if cfg.adapter.question_sheet else None
        sys_msg = [{"role": "system", "content": context}] if context else []
        reqs.append(TeacherRequest(
            messages=sys_msg + [{"role": "user", "content": p.text}], temperature=cfg.teacher.temperature,
            max_tokens=cfg.teacher.question_max_tokens, sample_index=s.sample_index, role="adapter", form=form,
            share_prompt=True,
            tag={"module": s.module, "item": s.source.id, "template": p.template, "step": "question", **plan.where}))
        tmpls.append(p.template)
    candidates, dropped = [], []
    for s, tmpl, rep in zip(todo_slots, tmpls, svc.teacher.ask(reqs)):
        if rep.error == BUDGET_NOT_SENT:  # a budget-cut round: never written, not a candidate
            continue
        q = parse_question(rep.text)
        if q is None:
            why = "unparseable question" if rep.error is None else f"teacher error: {rep.error}"
            if rep.error is None and form is not None and rep.tokens_out >= cfg.teacher.question_max_tokens:
                why = "cut_question: the reply was cut at max_tokens before its form closed"  # not a parse failure
            dropped.append(dropped_item(plan, s.module, s.source, s.wrong, s.level, attempt, rep.text, why))
        else:
            candidates.append(Candidate(s.module, s.source, s.wrong, tmpl, s.level, q, attempt, reply=rep.text or "",
                                        reply_cut=rep.tokens_out >= cfg.teacher.question_max_tokens))
    return candidates, dropped


def draft_items(state: LearnerState, svc: Services, plan: RoundPlan, todo: list[Slot], attempt: int,
                steps: AdapterSteps) -> tuple[list[Candidate], list[DroppedItem]]:
    """Step 1 with item_format json: one structured call per candidate writes its question, steps and final answer
    (agents/item_drafts.py), with the module's context and adaptations in the system prompt. A reply that does not
    validate against the schema (or was cut before its JSON closed) is a `parse` drop."""
    from agents.teacher import BUDGET_NOT_SENT, TeacherRequest

    cfg = svc.cfg
    reqs, tmpls = [], []
    for s in todo:
        adapt, _ = steps.adaptations(svc, plan.simplify, module_ratio(state, svc, s.module))
        system = render("item_system", context=plan.context_for(s.source.prompt) or "", adaptations=adapt)
        p = _question_prompt(state, svc, s.module, s.source, s.wrong, s.hint, ("item_synthesize", "item_remediate"))
        reqs.append(TeacherRequest(
            messages=[{"role": "system", "content": system.text}, {"role": "user", "content": p.text}],
            temperature=cfg.teacher.temperature, max_tokens=item_drafts.ITEM_MAX_TOKENS,
            sample_index=s.sample_index, role="adapter", share_prompt=True,
            tag={"module": s.module, "item": s.source.id, "template": p.template, "step": "item", **plan.where}))
        tmpls.append(p.template)
    candidates, dropped = [], []
    for s, tmpl, rep in zip(todo, tmpls, svc.teacher.ask_structured(reqs, item_drafts.ItemDraft)):
        if rep.error == BUDGET_NOT_SENT:  # a budget-cut round: never written, not a candidate
            continue
        if rep.value is None:
            why = f"parse: {rep.error}" if rep.raw is not None else f"teacher error: {rep.error}"
            dropped.append(dropped_item(plan, s.module, s.source, s.wrong, s.level, attempt, rep.raw, why))
            continue
        candidates.append(Candidate(s.module, s.source, s.wrong, tmpl, s.level, item_drafts.question_text(rep.value),
                                    attempt, drafted=item_drafts.answer_text(rep.value)))
    return candidates, dropped


def screen(state: LearnerState, svc: Services, plan: RoundPlan, candidates: list[Candidate],
           gate_screen: bool = True) -> tuple[list[Candidate], list[DroppedItem]]:
    """Step 2: drop, before their answers are paid for, the questions that duplicate a test-split question (exact, or
    content-word ROUGE-L >= adapter.test_overlap_rouge; only the question text is compared), are cut, misname
    their source's entities or leave out a name of their source's question; and, where the answer will be verified
    against the source's reference, those that duplicate a gate question asking for it (the judge's gate rule,
    applied before the answer instead of after)."""
    bar, dedup = svc.cfg.adapter.test_overlap_rouge, svc.cfg.adapter.dedup_rouge
    tests = HeldOutQuestions([it.prompt for it in svc.items.values() if it.split == "test"], bar)
    kept, dropped = [], []
    for c in candidates:
        hit = tests.match(c.question)
        why = (f"test_overlap: duplicates the test question {hit!r} (exact, or content-word ROUGE-L >= {bar})"
               if hit is not None else question_form(plan, c))
        if why is None and gate_screen and not needs_vote(svc, c.source):
            gate = [svc.items[i] for i in state.modules[c.module].gate_ids]
            dup = gate_duplicate(c.question, c.source.reference, gate, dedup)
            why = None if dup is None else f"duplicate of a gate item (ROUGE-L > {dedup}): {dup!r}"
        if why is None:
            kept.append(c)
        else:
            dropped.append(dropped_item(plan, c.module, c.source, c.wrong, c.level, c.pass_, c.question, why,
                                        c.drafted))
    return kept, dropped


def unrepeated(plan: RoundPlan, candidates: list[Candidate], asked: set[str]
               ) -> tuple[list[Candidate], list[DroppedItem]]:
    """Drop, before its answer is paid for, a question the run has already answered (the same words once
    normalised: an earlier candidate of the round, or a kept item of the run), as `repeated_question`; the judge
    would drop its item as a duplicate, or fail it as it failed the first. Adds the others to `asked`."""
    kept, dropped = [], []
    for c in candidates:
        key = normalize(c.question)
        if key in asked:
            dropped.append(dropped_item(plan, c.module, c.source, c.wrong, c.level, c.pass_, c.question,
                                        "repeated_question: the run already answered this question", c.drafted))
            continue
        asked.add(key)
        kept.append(c)
    return kept, dropped


def module_ratio(state: LearnerState, svc: Services, module: str) -> float:
    """The module's latest mastery ratio (0 before any exam): what the capacity rule shapes the answers to."""
    obs = state.last_observation()
    teacher = max(state.modules[module].teacher_score or 0.0, svc.cfg.thresholds.eps)
    return obs.scores.get(module, 0.0) / teacher if obs else 0.0


def answer_candidates(state: LearnerState, svc: Services, plan: RoundPlan, candidates: list[Candidate],
                      steps: AdapterSteps) -> list[list[str] | None]:
    """Step 3: the teacher's answers to each candidate, shaped by the adaptations (one list of samples each, None
    where a sample was not sent for the budget); a drafted item (item_format json) already has its first sample and
    is asked only the rest of a vote's samples."""
    from agents.teacher import BUDGET_NOT_SENT, TeacherRequest

    cfg = svc.cfg
    max_tokens = min(cfg.teacher.max_tokens, cfg.student.max_length // 2)
    reqs, index = [], []
    for ci, c in enumerate(candidates):
        adapt, names = steps.adaptations(svc, plan.simplify, module_ratio(state, svc, c.module))
        solve = render("solve", context=plan.context_for(c.question) or "", adaptations=adapt)
        # the fixed template's form, where the template adaptation is asked for (adapter.text_form)
        steps_allowed = item_forms.answer_steps(c.level, cfg.adapter.answer_steps_by_level)
        form = item_forms.answer_form(max_tokens, steps_allowed) if cfg.adapter.text_form and "template" in names \
            else None
        n = steps.samples(svc, c.source)
        for s in range(0 if c.drafted is None else 1, n):
            reqs.append(TeacherRequest(
                messages=[{"role": "system", "content": solve.text}, {"role": "user", "content": c.question}],
                temperature=0.0 if n == 1 else cfg.teacher.temperature,
                max_tokens=max_tokens, sample_index=s, role="adapter", form=form, share_prompt=n > 1,
                tag={"module": c.module, "item": c.source.id, "template": "solve", "step": "answer", **plan.where}))
            index.append(ci)
    answers: list[list[str]] = [[] if c.drafted is None else [c.drafted] for c in candidates]
    unpaid: set[int] = set()
    for ci, rep in zip(index, svc.teacher.ask(reqs) if reqs else []):
        if rep.error == BUDGET_NOT_SENT:
            unpaid.add(ci)
        answers[ci].append(rep.text or "")
    return [None if ci in unpaid else (a or [""]) for ci, a in enumerate(answers)]


def paid_for(plan: RoundPlan, candidates: list[Candidate], answers: list[list[str] | None]
             ) -> tuple[list[Candidate], list[list[str]], list[DroppedItem]]:
    """The candidates whose every answer sample was paid for; the others (a budget-cut round: the budget ran out
    before their answers were sent) are dropped as `budget_spent`, not judged on missing samples."""
    keep = [(c, a) for c, a in zip(candidates, answers) if a is not None]
    dropped = [dropped_item(plan, c.module, c.source, c.wrong, c.level, c.pass_, c.question,
                            "budget_spent: the teacher-token budget ran out before its answer was sent", c.drafted)
               for c, a in zip(candidates, answers) if a is None]
    return [c for c, _ in keep], [a for _, a in keep], dropped


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


def stage_counts(state: LearnerState, svc: Services, plan: RoundPlan) -> Counter:
    """Items kept so far for each module in the round's stage: its earlier rounds, what the trainer trains on with
    this round's (the trainer's own selection, agents/trainer.py `stage_items`)."""
    here, _ = stage_items([read_jsonl(svc.run_dir, ref) for ref in state.item_files], plan.cycle, plan.stage)
    return Counter(r.get("module") for r in here)


def round_need(min_items: int, had: Counter, modules: list[str]) -> dict[str, int]:
    """The items each module must keep in this round: what its stage still lacks of `min_items`, and at least one.
    In a stage's first round that is min_items; in a remedial round whose stage already holds min_items items of the
    module it is one new item, because the student trains on the whole stage's items: a remedial round adds practice,
    it does not need a first round's volume again. (Counted per round, bench10's third rounds kept one item from the
    wrong answers, fell short of min_items 2 and paid a top-up pass over every seed: 70-155 candidates and 18-38k
    teacher tokens for 2-14 items.)"""
    return {k: max(1, min_items - had[k]) for k in modules}


def record(state: LearnerState, svc: Services, plan: RoundPlan, kept: list[SynthesizedItem],
           dropped: list[DroppedItem], names: list[str], need: dict[str, int], paid_tokens: int = 0,
           not_sent: int | None = None) -> dict:
    """Step 6: write the round's files and trace (with the round's yield); stop the run when a module kept fewer
    items than it needed (`need`, `round_need`), unless the budget cut the round (`not_sent`: the calls it could not
    pay; the round then trains on what it kept). `paid_tokens`: the teacher tokens this round's synthesis paid (cache
    hits cost nothing)."""
    counts = Counter(r.module for r in kept)
    rows = [d.model_dump(by_alias=True, exclude_none=True) for d in dropped]
    drop_ref = write_jsonl(svc.run_dir, f"items/{plan.tag}-dropped.jsonl", rows, kind="items", stage=plan.stage,
                           round=plan.stage_round)
    y = synthesis_yield.round_yield(plan.tag, [r.model_dump() for r in kept], rows, paid_tokens)
    cut = {} if not_sent is None else {"budget_cut": True, "not_sent": not_sent}
    svc.trace.emit("synthesis_yield", node="synthesize", cycle=plan.cycle, stage=plan.stage, round=plan.stage_round,
                   item_format=svc.cfg.adapter.item_format, **y, **cut)
    for k in plan.modules:
        reasons = Counter(d.reason_kind for d in dropped if d.module == k)
        svc.trace.emit("synthesis", node="synthesize", cycle=plan.cycle, stage=plan.stage, round=plan.stage_round,
                       module=k, mode=plan.mode, level=state.level.get(k, 1), kept=counts[k],
                       dropped=sum(reasons.values()), drop_reasons=dict(reasons), adaptations=names)
    for row in rows:
        svc.trace.emit("item_dropped", node="synthesize", cycle=plan.cycle, stage=plan.stage, round=plan.stage_round,
                       **row)
    short = [k for k in plan.modules if counts[k] < need[k] and k in state.stage().modules]
    if short and not_sent is None:
        k = short[0]
        reasons = dict(Counter(d.reason_kind for d in dropped if d.module == k))
        raise ItemShortage(f"module {k}: the teacher's replies gave {counts[k]} usable items, fewer than the {need[k]} "
                           f"the round needs (min_items {svc.cfg.min_items} over the stage; dropped: {reasons}); "
                           f"see {drop_ref.path} - check the teacher "
                           f"backend, or continue with `ioa resume {state.run_id} --set min_items=1`")
    ref = write_jsonl(svc.run_dir, f"items/{plan.tag}.jsonl", [r.model_dump(exclude_none=True) for r in kept],
                      kind="items", stage=plan.stage, round=plan.stage_round)
    tpk = y["teacher_tokens_per_kept_item"]
    svc.progress(f"synthesize {plan.tag}: kept {len(kept)} items ({dict(counts)}), dropped {len(dropped)}"
                 + (f"; {tpk:,.0f} teacher tokens paid per kept item" if tpk is not None else "")
                 + (f"; the budget cut the round ({not_sent} calls not sent): "
                    + ("training on what it paid for" if kept else "nothing to train on, the run stops at its budget")
                    if not_sent is not None else ""))
    return {"item_files": state.item_files + [ref], "dropped_files": state.dropped_files + [drop_ref],
            "phase": "synthesized", "usage": svc.usage()}


def answer_batches(svc: Services, steps: AdapterSteps, pending: list[Candidate], full_only: bool) -> int:
    """How many of the pending candidates (a prefix) to answer now. Screening drops half or more of a chunk's
    questions, so a chunk's survivors alone would be answered in a batch a third full, and on a CPU a step of 11 rows
    costs 0.65x one of 32 (SmolLM2-135M on 2 cores: 0.29 s against 0.45 s): the survivors of several chunks are
    answered together, in whole batches of CHUNK answer calls (a candidate asks `steps.samples` of them, a drafted
    one one less). With `full_only` False (a pass's end), all of them."""
    if not full_only:
        return len(pending)
    calls = [steps.samples(svc, c.source) - (c.drafted is not None) for c in pending]
    full = sum(calls) // CHUNK * CHUNK
    total, take = 0, 0
    for k, n in enumerate(calls, 1):
        total += n
        if total > full:
            break
        take = k
    return take if full else 0


def write_round(state: LearnerState, svc: Services, plan: RoundPlan, steps: AdapterSteps, names: list[str],
                need: dict[str, int]) -> tuple[list[SynthesizedItem], list[DroppedItem]]:
    """Steps 1-5 for every module of the round: passes until each module has the items it needs (`round_need`), the
    top-up passes are spent, or a pass had calls the budget could not pay."""
    earlier = earlier_items(state, svc, plan.modules)
    kept: list[SynthesizedItem] = []
    dropped: list[DroppedItem] = []
    todo = list(plan.modules)

    asked = {normalize(q) for k in plan.modules for q, _ in earlier[k]}  # questions answered in this run so far

    pending: list[Candidate] = []  # screened candidates waiting for their answers, in judging order

    def screen_chunk(candidates: list[Candidate], unparsed: list[DroppedItem]) -> None:
        candidates, screened = screen(state, svc, plan, candidates, steps.gate_screen)
        if steps.repeat_screen:
            candidates, repeated = unrepeated(plan, candidates, asked)
            screened += repeated
        dropped.extend(unparsed + screened)
        pending.extend(candidates)

    def answer_pending(full_only: bool) -> None:
        """Answer and judge the pending candidates in order: with `full_only`, only as many as fill whole batches
        of CHUNK answer calls (`answer_batches`), the rest wait for the next chunk's."""
        take = answer_batches(svc, steps, pending, full_only)
        if not take:
            return
        candidates = pending[:take]
        del pending[:take]
        answers = answer_candidates(state, svc, plan, candidates, steps)
        candidates, answers, unpaid = paid_for(plan, candidates, answers)
        dropped.extend(unpaid)
        judge_all(state, svc, plan, candidates, answers, steps, names, earlier, kept, dropped)

    seeds = seed_candidates(state, svc, plan, earlier)
    for i in range(0, len(seeds), CHUNK):  # the concrete cases first: the rewrites are deduplicated against them
        screen_chunk(seeds[i:i + CHUNK], [])
        answer_pending(full_only=True)
    for attempt in range(1 + svc.cfg.adapter.top_up_passes):
        unsent_before = svc.teacher.not_sent
        for chunk in chunks(slots(state, svc, plan, todo, attempt)):
            screen_chunk(*write_questions(state, svc, plan, chunk, attempt, steps))
            answer_pending(full_only=True)
        answer_pending(full_only=False)
        counts = Counter(r.module for r in kept)
        todo = [k for k in plan.modules if counts[k] < need[k]]
        if not todo or attempt == svc.cfg.adapter.top_up_passes or svc.teacher.not_sent > unsent_before:
            break
        svc.progress(f"synthesize {plan.tag}: {', '.join(f'{k} ({counts[k]} of {need[k]})' for k in todo)} short of "
                     f"the items the round needs: top-up pass {attempt + 1}")
    return kept, dropped


def synthesize(state: LearnerState, svc: Services, steps: AdapterSteps = IOA_STEPS) -> dict:
    """The Adapter node: write, screen, shape, verify and deduplicate the round's items (top-up passes when
    short). The round runs within `Teacher.settling()`: when the token budget runs out in it, the calls it cannot
    pay come back as not sent, and the student trains on the items the round kept; the next teacher call then stops
    the run at its budget (§5). A round the budget cut before any item was kept is recorded (its files, its yield)
    and stops the run at once: the BudgetExhausted carries the dropped file for the state (graph/runner.py)."""
    from agents.teacher import BudgetExhausted

    plan = round_plan(state, svc)
    paid_before = synthesis_yield.usage_tokens(svc.usage())
    svc.progress(f"synthesize {plan.tag}: {plan.mode} items for {', '.join(plan.modules)}")
    _, names = steps.adaptations(svc, plan.simplify, 1.0)
    unsent_before = svc.teacher.not_sent
    need = round_need(svc.cfg.min_items, stage_counts(state, svc, plan), plan.modules)
    with svc.teacher.settling():
        kept, dropped = write_round(state, svc, plan, steps, names, need)
    not_sent = svc.teacher.not_sent - unsent_before
    paid = synthesis_yield.usage_tokens(svc.usage()) - paid_before
    out = record(state, svc, plan, kept, dropped, names, need, paid, not_sent or None)
    if not_sent and not kept:  # recorded (the run's yield counts its candidates), then the budget stop
        stop = BudgetExhausted(svc.teacher.spent_tokens, svc.cfg.teacher.token_budget or 0, [], not_sent)
        stop.state_update = {"dropped_files": out["dropped_files"][-1:]}
        raise stop
    return out
