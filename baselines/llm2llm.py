"""The LLM2LLM baseline (Lee et al. 2024, "LLM2LLM: Boosting LLMs with Novel Iterative Data Enhancement"; reference
code SqueezeAILab/LLM2LLM): targeted iterative data augmentation, at a fixed teacher-token budget.

For one random seed, given that seed's finished IOA run (for its modules, test split and optimizer steps):

1. **Seed data**: the teacher answers every seed item greedily, with its context (as every arm's items are the
   teacher's answers, no arm trains on a reference the others do not see).
2. **Train** the student from its initial weights on the seed data plus every item written so far, for exactly the
   IOA run's optimizer steps (`Student.train(..., max_steps=...)`).
3. **Evaluate** the trained student on the seed items (the pack's checker against each seed's reference, the same
   knowledge IOA's examiner uses on probe items); the seed items it still gets wrong are the only sources of new data.
4. **Augment**: for every wrong seed item, the teacher writes `thresholds.samples_per_seed` new questions from the
   question, the student's wrong answer and the teacher's answer (prompts/llm2llm.txt), and answers each greedily
   with its context. Exact duplicate questions are dropped. Calls go out in passes over the wrong seeds, in batches
   whose predicted cost (per seed, the one-shot arm's predictor, baselines/oneshot.py) fits the remaining budget.
5. Repeat 2-4 until the budget cannot pay another pair, nothing is wrong any more, or `MAX_ROUNDS`; the last
   trained student is scored on the test split.

The budget counts every teacher token: seed answers, rewrites and their answers, at what each call cost when it was
first paid (a rerun from the cache takes the same decisions). The report's `optimizer_steps` is the final student's
(the IOA run's); `baseline.optimizer_steps_total` counts every round's training. The run directory holds what the
one-shot arm's does, with items per round (items/llm2llm-r<k>.jsonl).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from collections import Counter
from pathlib import Path
from typing import Callable

from agents.item_forms import question_call_form
from agents.runtime import Services, write_json, write_jsonl
from baselines.oneshot import (
    ROLE,
    SEED_STRIDE,
    _PairCosts,
    _Phase,
    _score_test,
    _services,
    _Writer,
    build_oneshot_report,
    distill_teacher,
    seed_answers,
)
from ioa_state import Item, RunConfig
from ioa_state.records import RunReport

MAX_ROUNDS = 8  # a cap on training rounds (the reference code runs a fixed number of iterations)
# why the loop ended, in the report (`baseline.stopped`): the rounds cap, no seed item wrong, the budget could not pay
# another pair, or a round kept nothing for another reason
STOPS = ("max_rounds", "nothing_wrong", "budget", "no_new_items")


class _Augmenter(_Writer):
    """The teacher requests of LLM2LLM: new questions written from wrong answers (seed answers: `seed_answers`)."""

    def rewrite(self, src: Item, wrong: str, teacher_answer: str, round_no: int, j: int):
        from agents.item_checks import first_sentence
        from agents.teacher import TeacherRequest
        from prompts import render

        p = render("llm2llm", question=self.svc.pack.format_prompt(src), wrong=first_sentence(wrong),
                   answer=first_sentence(teacher_answer))
        req = TeacherRequest(messages=self.question_sys(src.prompt) + [{"role": "user", "content": p.text}],
                             temperature=self.cfg.teacher.temperature, max_tokens=self.cfg.teacher.question_max_tokens,
                             form=question_call_form(self.cfg),
                             sample_index=self.cfg.seed * SEED_STRIDE + round_no * 1000 + j, role=ROLE,
                             share_prompt=True,
                             tag={"item": src.id, "template": p.template, "step": "question", "baseline": "llm2llm",
                                  "round": round_no})
        return src, req, p.template


def wrong_seeds(svc: Services, seeds: list[Item]) -> dict[str, str]:
    """seed id -> the student's answer, for every seed item the student gets wrong (checker < 1)."""
    from agents import scoring

    answers = scoring.student_answers(svc, seeds)
    scores = scoring.check_all(svc, seeds, answers)
    return {s.id: answers[s.id] for s in seeds if scores[s.id] < 1.0}


def augment(w: _Augmenter, wrong: dict[str, str], teacher_answers: dict[str, str], round_no: int,
            budget_left: int, seen: set[str]) -> tuple[list[dict], list[dict], int]:
    """Step 4: new items from the wrong seed items only, within `budget_left` tokens; (kept, dropped, spent).
    The pairs go in passes over the wrong seeds (sample j of every wrong seed, then j + 1), and the next pair of a
    seed is predicted at the largest cost seen for that seed (before any: an upper bound from its prompt), as the
    one-shot arm does, so that the last batch fits the budget whatever the seeds' prompt lengths."""
    from baselines.oneshot import _answers, _est_tokens, _questions, held_out_questions

    held_out = held_out_questions(w.svc)
    by_id = {s.id: s for s in w.seeds}
    sources = sorted(wrong)
    plan = [(by_id[i], j) for j in range(w.cfg.thresholds.samples_per_seed) for i in sources]
    q_tokens = w.cfg.teacher.question_max_tokens

    def upper_bound(n: int) -> int:
        src, j = plan[n % len(plan)]
        _, req, _ = w.rewrite(src, wrong[src.id], teacher_answers[src.id], round_no, j)
        return _est_tokens(req.messages, q_tokens) + _est_tokens(
            w.sys_msg + [{"role": "user", "content": "x" * 3 * q_tokens}], w.answer_tokens)

    costs = _PairCosts(len(sources), upper_bound)  # slot n % len(sources): the seed of plan[n]
    kept: list[dict] = []
    dropped: list[dict] = []
    spent, pos = 0, 0
    while pos < len(plan):
        k = min(costs.batch_size(pos, budget_left - spent), len(plan) - pos)
        if k == 0:
            break
        batch = [w.rewrite(src, wrong[src.id], teacher_answers[src.id], round_no, j) for src, j in plan[pos:pos + k]]
        q_replies = w.svc.teacher.ask([req for _, req, _ in batch])
        cost = [r.tokens_in + r.tokens_out for r in q_replies]
        spent += w.count(q_replies)
        todo = _questions(batch, q_replies, seen, dropped, held_out)
        a_replies = w.svc.teacher.ask([w.answer(q, batch[bi][0], round_no) for bi, q in todo])
        spent += w.count(a_replies)
        _answers(batch, todo, a_replies, cost, costs, kept, dropped)
        costs.observe(pos, cost, {bi for bi, _ in todo})
        pos += k
        if sum(cost) == 0:
            break
    for r in kept:
        r["id"] = f"llm2llm-r{round_no}-{r['id'].split('-')[-1]}"
        r["baseline"] = "llm2llm"
    return kept, dropped, spent


def _seed_data(w: _Augmenter, svc: Services) -> tuple[list[dict], dict[str, str], int]:
    """Step 1: the teacher's answers to the seed items (training items, and the 'correct answer' LLM2LLM shows)."""
    return seed_answers(w, svc, "llm2llm")


def _train_round(svc: Services, pool: list[dict], steps: int, round_no: int):
    svc.student.load(None)  # every round starts again from the initial weights (LLM2LLM retrains from scratch)
    examples = [{"prompt": r["prompt"], "answer": r["answer"]} for r in pool]
    return svc.student.train(examples, seed=svc.cfg.seed * 1000 + 1 + round_no, max_steps=steps,
                             teacher=distill_teacher(svc))


LATEST = "student/llm2llm-latest"  # the newest round's trained student (one kept: each is the model's full size)


def round_key(pool: list[dict], steps: int, seed: int) -> str:
    """What a round's training depends on: its examples in order, its steps and its seed (sha256)."""
    h = hashlib.sha256(json.dumps([[r["prompt"], r["answer"]] for r in pool], ensure_ascii=False).encode())
    h.update(f"|{steps}|{seed}".encode())
    return h.hexdigest()


def _record_path(run_dir: Path, round_no: int) -> Path:
    return run_dir / "items" / f"llm2llm-r{round_no}-trained.json"


def _trained(svc: Services, w: _Augmenter, pool: list[dict], steps: int, round_no: int):
    """Train round `round_no` from the initial weights and find the seed items still wrong: (stats, wrong, whether
    it was read back). A round that an earlier attempt of this run finished (its record under items/ names the same
    inputs) is read back instead, so a killed run resumes without training again; its student, needed only for the
    last round, is the one saved at LATEST. The record is written after the student, atomically."""
    from training.checkpoints import save_student
    from training.examples import TrainStats

    run_dir, trace = svc.run_dir, svc.trace
    key = round_key(pool, steps, svc.cfg.seed * 1000 + 1 + round_no)
    path = _record_path(run_dir, round_no)
    if path.is_file():
        rec = json.loads(path.read_text())
        if rec.get("key") == key:
            return TrainStats(**rec["stats"]), rec["wrong"], True
    with _Phase(trace, "train"):
        stats = _train_round(svc, pool, steps, round_no)
    trace.emit("train", node="train", round=round_no, items=len(pool), steps=stats.steps,
               loss_first=stats.losses[0] if stats.losses else None,
               loss_last=stats.losses[-1] if stats.losses else None)
    with _Phase(trace, "examine"):
        wrong = wrong_seeds(svc, w.seeds)
    save_student(svc.student.model, svc.student.tokenizer, run_dir / LATEST)
    write_json(run_dir, str(path.relative_to(run_dir)), {"key": key, "round": round_no, "wrong": wrong,
                                                         "stats": dataclasses.asdict(stats)})
    (run_dir / LATEST / "round.json").write_text(json.dumps({"key": key, "round": round_no}))
    return stats, wrong, False


def _last_student(svc: Services, pool: list[dict], steps: int, round_no: int) -> None:
    """The last round's student in memory: the one saved at LATEST when it is that round's, else trained again."""
    from training.checkpoints import load_student

    key = round_key(pool, steps, svc.cfg.seed * 1000 + 1 + round_no)
    mark = svc.run_dir / LATEST / "round.json"
    if mark.is_file() and json.loads(mark.read_text()).get("key") == key:
        svc.student.model, svc.student.tokenizer = load_student(svc.run_dir / LATEST, device=svc.student.device)
        return
    with _Phase(svc.trace, "train"):
        _train_round(svc, pool, steps, round_no)


def _train_and_augment(svc: Services, w: _Augmenter, pool: list[dict],
                       teacher_answers: dict[str, str], spent: int, budget: int, steps: int,
                       progress: Callable[[str], None]):
    """Steps 2-5: train, find the wrong seeds, augment, until the budget, the wrong answers or MAX_ROUNDS run out;
    (dropped items, tokens spent, last round's training stats, rounds, optimizer steps over every round, why it
    stopped: one of STOPS). Extends `pool` in place."""
    trace, run_dir = svc.trace, svc.run_dir
    rounds, dropped, seen, stats, total_steps = 0, [], {r["prompt"].strip().casefold() for r in pool}, None, 0
    stopped = "max_rounds"
    while True:
        trained_pool = list(pool)
        stats, wrong, read_back = _trained(svc, w, pool, steps, rounds)
        if read_back:
            progress(f"llm2llm round {rounds}: trained before this attempt (read back)")
        total_steps += stats.steps
        rounds += 1
        if not wrong or rounds >= MAX_ROUNDS:
            stopped = "max_rounds" if wrong else "nothing_wrong"
            break
        with _Phase(trace, "synthesize"):
            new, bad, cost = augment(w, wrong, teacher_answers, rounds, budget - spent, seen)
            spent += cost
            dropped += bad
            write_jsonl(run_dir, f"items/llm2llm-r{rounds}.jsonl", new, kind="items")
        trace.emit("synthesis", node="synthesize", round=rounds, wrong=len(wrong), kept=len(new),
                   dropped=len(bad), spent=spent, budget=budget)
        progress(f"llm2llm round {rounds}: {len(wrong)} seed items wrong, {len(new)} new items, "
                 f"{spent}/{budget} teacher tokens")
        if not new:
            stopped = "budget" if cost == 0 else "no_new_items"  # nothing paid: not even one pair fitted
            break
        pool += new
    if read_back:  # the last round's student was trained by an earlier attempt
        _last_student(svc, trained_pool, steps, rounds - 1)
    return dropped, spent, stats, rounds, total_steps, stopped


def _report(svc: Services, w: _Augmenter, ioa_state, ioa_report: dict, phase: _Phase, tally: dict) -> dict:
    """The LLM2LLM arm's report.json (the one-shot arm's layout, plus its rounds), written into the run."""
    after = _score_test(svc, ioa_state)
    cfg, stats, dropped = svc.cfg, tally["stats"], tally["dropped"]
    losses = stats.losses if stats and stats.losses else [None]
    caveats = [] if stats else [f"the IOA run trained {tally['steps']} optimizer steps: this student was not trained"]
    data = build_oneshot_report(cfg.run_id, ioa_state, ioa_report, after, cfg.thresholds.eps, {
        "spent": tally["spent"], "usage": {ROLE: w.usage}, "optimizer_steps": stats.steps if stats else 0,
        "caveats": caveats,
        "budget": tally["budget"], "target_steps": tally["steps"], "pairs": tally["pairs"],
        "rounds": tally["rounds"], "kept": tally["pairs"], "dropped": len(dropped),
        "drop_reasons": dict(Counter(d["reason"].split(":")[0] for d in dropped)),
        "loss_first": losses[0], "loss_last": losses[-1]})
    data["arm"] = "llm2llm"
    data["context_passages"] = svc.context_passages
    data["baseline"].update({"optimizer_steps_total": tally["total_steps"], "training_rounds": tally["rounds"],
                             "stopped": tally["stopped"],
                             "reference": "Lee et al. 2024, arXiv 2403.15042 (SqueezeAILab/LLM2LLM)"})
    data["wall_s"] = round(svc.trace.node_seconds() + time.perf_counter() - phase.t0, 1)
    write_json(svc.run_dir, "report.json", RunReport.model_validate(data).model_dump(), kind="report")
    return data


def run_llm2llm(cfg: RunConfig, ioa_run_dir: str | Path, run_id: str, progress: Callable[[str], None] | None = None,
                budget: int | None = None, steps: int | None = None) -> tuple[Path, dict]:
    """The LLM2LLM baseline for `cfg`'s seed against the finished IOA run in `ioa_run_dir`; returns
    (run directory, report). `budget` and `steps` default to the IOA report's teacher_tokens and optimizer_steps."""
    from baselines.oneshot import _ioa_run
    from training.checkpoints import save_student

    progress = progress or (lambda m: None)
    ioa_report, ioa_state = _ioa_run(Path(ioa_run_dir))
    budget = int(ioa_report["teacher_tokens"] if budget is None else budget)
    steps = int(ioa_report["optimizer_steps"] if steps is None else steps)
    cfg = cfg.model_copy(update={"run_id": run_id, "teacher": cfg.teacher.model_copy(update={"token_budget": None})})
    run_dir = Path(cfg.runs_dir) / run_id
    svc = _services(cfg, run_dir, progress)
    trace, w = svc.trace, _Augmenter(svc)
    try:
        with _Phase(trace, "synthesize"):
            pool, teacher_answers, spent = _seed_data(w, svc)
            write_jsonl(run_dir, "items/llm2llm-r0.jsonl", pool, kind="items")
        if steps > 0:
            dropped, spent, stats, rounds, total_steps, stopped = _train_and_augment(
                svc, w, pool, teacher_answers, spent, budget, steps, progress)
            save_student(svc.student.model, svc.student.tokenizer, run_dir / "student" / "final")
        else:  # the IOA run trained no step within its budget: the same step accounting leaves this student as it is
            dropped, stats, rounds, total_steps, stopped = [], None, 0, 0, None
        write_jsonl(run_dir, "items/llm2llm-dropped.jsonl", dropped, kind="items")
        with _Phase(trace, "report") as phase:
            data = _report(svc, w, ioa_state, ioa_report, phase, {
                "spent": spent, "stats": stats, "budget": budget, "steps": steps, "pairs": len(pool),
                "rounds": rounds, "dropped": dropped, "total_steps": total_steps, "stopped": stopped})
        trace.emit("report", node="report", overall=data["overall"], teacher_tokens=data["teacher_tokens"])
        return run_dir, json.loads((run_dir / "report.json").read_text())
    finally:
        svc.teacher.close()
        trace.close()
