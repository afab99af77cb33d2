"""The one-shot baseline (algorithm §5): Self-Instruct style synthesis on IOA's teacher budget, trained once.

For one random seed, given that seed's finished IOA run:

1. **Budget**: the teacher tokens the IOA run spent (its report's `teacher_tokens`, input + output, every role).
2. **Seed answers** (`adapter.seed_examples`, as the Adapter and LLM2LLM have them): the teacher answers every seed
   item greedily with its context, and each seed with its answer is a training item (Self-Instruct's pool starts
   from its seed tasks), so that no arm trains on a concrete case another arm lacks.
3. **Synthesis** with the rest of the budget, spread uniformly over the seed items (round-robin: seed 1, 2, ...,
   n, then seed 1 again with the next sample index): the teacher rewrites the seed question (prompts/synthesize.txt
   with an empty level hint, the teacher's context as system prompt, as the Adapter asks it; the sample index
   carries the run's seed, so seeds draw different samples) and answers the new question greedily with its context
   as the system prompt (no adaptations, no verification). Exact duplicate questions are dropped (and not
   answered). Calls go out in batches sized so that their predicted cost fits the remaining budget (a pair's
   prediction is the largest cost seen for an answered pair of its seed item; for a seed item whose questions so
   far all failed to parse, its largest question cost plus the largest answer cost seen; else the largest pair
   cost seen; else an upper bound from the prompt length and `max_tokens`); the loop stops when the next pair would
   pass the budget, so the spend ends at most one pair's cost below the budget (and above it only if a pair costs
   more than the prediction, built from the largest costs seen).
4. **Training**: the student from its initial weights, once, for exactly the IOA run's `optimizer_steps`
   (`Student.train(..., max_steps=...)`, cycling through reshuffled epochs when the items are fewer).
5. **Report**: the test split, scored with the pack's checker, per IOA module and overall, written to report.json in
   the shape graph/report.py writes (teacher and student-before numbers are the IOA run's: same teacher, same
   student, same test items; teacher-limited modules are the IOA run's).

Its run directory (runs/<id>/) holds config.yaml, teacher_cache.sqlite (every call, so a rerun or a resume after a
kill pays nothing twice), items/oneshot.jsonl and items/oneshot-dropped.jsonl, trace.jsonl (teacher calls and one
node_start / node_end pair per phase), student/final and report.json. The budget accounting counts what every reply
cost when it was first paid, cached or not, so a rerun takes exactly the same decisions from the cache.
"""
from __future__ import annotations

import json
import math
import re
import time
from pathlib import Path
from typing import Callable

from agents import item_forms
from agents.runtime import Services, write_json, write_jsonl
from agents.tracing import TraceWriter
from ioa_state import ConfigError, Item, LearnerState, RunConfig
from ioa_state.records import RunReport

ROLE = "adapter"  # the same usage bucket as the Adapter's item writing: the same action, without the pedagogy
MAX_BATCH_PAIRS = 512  # refresh the cost prediction at least this often
SEED_STRIDE = 1_000_000  # the run's seed enters every rewrite's sample index: other seeds, other samples


def _norm(text: str) -> str:
    """Exact-duplicate key: case and runs of whitespace ignored, nothing else."""
    return re.sub(r"\s+", " ", text.strip().casefold())


def _est_tokens(messages: list[dict], max_tokens: int) -> int:
    """An upper bound of a call's cost before anything is observed (the teacher client's own estimate)."""
    return math.ceil(sum(len(m["content"]) for m in messages) / 3) + max_tokens


class _Phase:
    """node_start / node_end trace events around one phase, so wall time sums the same way as a graph run's."""

    def __init__(self, trace: TraceWriter, name: str):
        self.trace, self.name = trace, name

    def __enter__(self):
        self.t0 = time.perf_counter()
        self.trace.emit("node_start", node=self.name, cycle=0, stage=None, round=None)
        return self

    def __exit__(self, *exc):
        self.trace.emit("node_end", node=self.name, cycle=0, seconds=round(time.perf_counter() - self.t0, 3),
                        updated=[], failed=exc[0] is not None)
        return False


class _Writer:
    """The one-shot arm's teacher requests (a rewrite, then a greedy answer) and their accounting."""

    def __init__(self, svc: Services):
        from agents.teacher.backends import parse_spec

        cfg = self.cfg = svc.cfg
        self.svc = svc
        self.seeds = [it for it in svc.items.values() if it.split == "seed"]
        if not self.seeds:
            raise ConfigError(f"task pack {cfg.task.pack} has no seed items: the one-shot baseline needs some")
        context = svc.teacher_context
        self.sys_msg = [{"role": "system", "content": context}] if context else []  # the whole context
        self.answer_tokens = min(cfg.teacher.max_tokens, cfg.student.max_length // 2)
        self.backend, self.model = parse_spec(svc.teacher.spec_for(ROLE))
        self.prices = svc.teacher.accounts.prices
        self.usage = {"calls": 0, "cached": 0, "tokens_in": 0, "tokens_out": 0, "retries": 0, "failures": 0,
                      "cost_usd": 0.0}

    def system(self, question: str) -> list[dict]:
        """The system message of a call about `question`: the teacher's context, or the passages it needs (as the
        Adapter's calls get it: teacher.context_passages)."""
        context = self.svc.teacher_context_for(question)
        return [{"role": "system", "content": context}] if context else []

    def question_sys(self, seed: str) -> list[dict]:
        """The question call's system prompt, as the Adapter's (adapter.question_sheet)."""
        return self.system(seed) if self.cfg.adapter.question_sheet else []

    def question(self, n: int):
        """(seed item, request, template) of the n-th rewrite: round-robin over the seed items."""
        from agents.teacher import TeacherRequest
        from prompts import render

        r, i = divmod(n, len(self.seeds))
        src = self.seeds[i]
        p = render("synthesize", module=src.category or getattr(self.svc.pack, "name", None) or "the topic",
                   seed=self.svc.pack.format_prompt(src), level_hint="")
        req = TeacherRequest(messages=self.question_sys(src.prompt) + [{"role": "user", "content": p.text}],
                             temperature=self.cfg.teacher.temperature, max_tokens=self.cfg.teacher.question_max_tokens,
                             form=item_forms.question_call_form(self.cfg),
                             sample_index=self.cfg.seed * SEED_STRIDE + r, role=ROLE, share_prompt=True,
                             tag={"item": src.id, "template": p.template, "step": "question", "baseline": "oneshot",
                                  "round": r})
        return src, req, p.template

    def answer(self, q: str, src: Item, r: int):
        from agents.teacher import TeacherRequest

        return TeacherRequest(messages=self.system(q) + [{"role": "user", "content": q}], temperature=0.0,
                              max_tokens=self.answer_tokens, sample_index=0, role=ROLE,
                              tag={"item": src.id, "template": "context", "step": "answer", "baseline": "oneshot",
                                   "round": r})

    def count(self, replies) -> int:
        """Add replies to the arm's usage (cache hits at what they cost when paid); their tokens."""
        total = 0
        u = self.usage
        for rep in replies:
            u["calls"] += int(not rep.cached)
            u["cached"] += int(rep.cached)
            u["retries"] += rep.retries
            u["failures"] += int(rep.error is not None)
            u["tokens_in"] += rep.tokens_in
            u["tokens_out"] += rep.tokens_out
            u["cost_usd"] += self.prices.cost(self.backend, self.model, rep.tokens_in, rep.tokens_out)
            total += rep.tokens_in + rep.tokens_out
        return total

    def upper_bound(self, n: int) -> int:
        """A pair's cost before anything is observed: from the prompt length and max_tokens."""
        _, req, _ = self.question(n)
        q_tokens = self.cfg.teacher.question_max_tokens  # as the Adapter asks for a rewritten question
        return _est_tokens(req.messages, q_tokens) + _est_tokens(
            self.sys_msg + [{"role": "user", "content": "x" * 3 * q_tokens}], self.answer_tokens)


class _PairCosts:
    """What the next pair of a seed item will cost, from the largest costs seen so far (module doc, step 2)."""

    def __init__(self, n_seeds: int, upper_bound: Callable[[int], int]):
        self.n_seeds, self.upper_bound = n_seeds, upper_bound
        self.seed_max: dict[int, int] = {}      # the largest cost of an answered pair per seed item
        self.question_max: dict[int, int] = {}  # the largest question cost per seed item (answered or not)
        self.pair_max = self.answer_max = 0

    def predict(self, n: int) -> int:
        i = n % self.n_seeds
        if i in self.seed_max:
            return self.seed_max[i]
        if i in self.question_max and self.answer_max:  # only unparseable questions so far: the next may parse
            return self.question_max[i] + self.answer_max
        return self.pair_max or self.upper_bound(n)

    def batch_size(self, start: int, remaining: int) -> int:
        """How many pairs from `start` fit the remaining budget (the first batch: one round, to calibrate)."""
        cap = MAX_BATCH_PAIRS if self.pair_max else self.n_seeds
        k, planned = 0, 0
        while k < cap and planned + self.predict(start + k) <= remaining:
            planned += self.predict(start + k)
            k += 1
        return k

    def observe(self, start: int, cost: list[int], answered: set[int]) -> None:
        for bi, c in enumerate(cost):
            i = (start + bi) % self.n_seeds
            if bi in answered:
                self.seed_max[i] = max(self.seed_max.get(i, 0), c)
                self.pair_max = max(self.pair_max, c)
            else:
                self.question_max[i] = max(self.question_max.get(i, 0), c)


def held_out_questions(svc: Services):
    """The test split's questions (decontamination, as the Adapter does: every arm drops a rewrite that duplicates
    a test question, agents/item_checks.HeldOutQuestions at adapter.test_overlap_rouge)."""
    from agents.item_checks import HeldOutQuestions

    tests = [it.prompt for it in svc.items.values() if it.split == "test"]
    return HeldOutQuestions(tests, svc.cfg.adapter.test_overlap_rouge)


def _questions(batch, q_replies, seen: set[str], dropped: list[dict], held_out=None) -> list[tuple[int, str]]:
    """(batch index, question) of every rewrite that parsed, is new and is no test question; the rest go to
    `dropped`."""
    from agents.item_checks import parse_question

    todo = []
    for bi, ((src, req, _tmpl), rep) in enumerate(zip(batch, q_replies)):
        base = {"source": src.id, "module": src.category, "round": req.sample_index % SEED_STRIDE}
        q = parse_question(rep.text) if rep.error is None else None
        if q is None:
            dropped.append({**base, "question": rep.text, "reason": "unparseable question" if rep.error is None
                            else f"teacher error: {rep.error}"})
        elif _norm(q) in seen:
            dropped.append({**base, "question": q, "reason": "exact duplicate of a kept question"})
        elif held_out is not None and (hit := held_out.match(q)) is not None:
            dropped.append({**base, "question": q, "reason": f"test_overlap: duplicates the test question {hit!r}"})
        else:
            seen.add(_norm(q))
            todo.append((bi, q))
    return todo


def _answers(batch, todo, a_replies, cost: list[int], costs: _PairCosts, kept: list[dict], dropped: list[dict]):
    for (bi, q), rep in zip(todo, a_replies):
        src, req, tmpl = batch[bi]
        costs.answer_max = max(costs.answer_max, rep.tokens_in + rep.tokens_out)
        cost[bi] += rep.tokens_in + rep.tokens_out
        base = {"source": src.id, "module": src.category, "round": req.sample_index % SEED_STRIDE}
        if rep.error is not None or not (rep.text or "").strip():
            dropped.append({**base, "question": q, "reason": f"teacher error: {rep.error}" if rep.error
                            else "empty answer"})
            continue
        kept.append({"id": f"oneshot-{len(kept)}", **base, "prompt": q, "answer": rep.text.strip(),
                     "reference": None, "question_template": tmpl, "adaptations": [],
                     "verification": {"method": "none"}})


def seed_answers(w: _Writer, svc: Services, baseline: str, budget: int | None = None
                 ) -> tuple[list[dict], dict[str, str], int]:
    """The teacher's greedy answers to the seed items (with its context): (training items, seed id -> answer,
    tokens spent). With a `budget`, only the seeds whose predicted cost (prompt length and max_tokens) fits it are
    asked."""
    seeds, reqs, planned = [], [], 0
    for s in w.seeds:
        req = w.answer(svc.pack.format_prompt(s), s, 0)
        planned += _est_tokens(req.messages, req.max_tokens)
        if budget is not None and planned > budget:
            break
        seeds.append(s)
        reqs.append(req)
    replies = svc.teacher.ask(reqs) if reqs else []
    spent = w.count(replies)
    answers = {s.id: (r.text or "").strip() for s, r in zip(seeds, replies)}
    items = [{"id": f"{baseline}-seed-{i}", "source": s.id, "module": s.category, "round": 0,
              "prompt": svc.pack.format_prompt(s), "answer": answers[s.id], "reference": None,
              "question_template": "seed", "adaptations": [], "verification": {"method": "none"}}
             for i, s in enumerate(seeds) if answers[s.id]]
    return items, answers, spent


def synthesize(svc: Services, budget: int, progress: Callable[[str], None] = lambda m: None) -> dict:
    """Spend up to `budget` teacher tokens on Self-Instruct pairs, round-robin over the seed items.

    Returns {"kept": [...], "dropped": [...], "spent": int, "usage": {role: Usage dict}, "pairs": int,
    "rounds": float}. `spent` counts every reply at what it cost when paid (cache hits included)."""
    w = _Writer(svc)
    costs = _PairCosts(len(w.seeds), w.upper_bound)
    kept: list[dict] = []
    dropped: list[dict] = []
    seen: set[str] = set()
    held_out = held_out_questions(svc)
    spent, n_next = 0, 0
    if svc.cfg.adapter.seed_examples:  # step 2: the concrete cases, then the rewrites with what is left
        kept, _, spent = seed_answers(w, svc, "oneshot", budget)
        seen |= {_norm(r["prompt"]) for r in kept}
        progress(f"oneshot: {len(kept)} seed items answered, {spent}/{budget} teacher tokens")
    while (k := costs.batch_size(n_next, budget - spent)) > 0:  # 0: the next pair would pass the budget
        batch = [w.question(n) for n in range(n_next, n_next + k)]
        first_n, n_next = n_next, n_next + k
        q_replies = svc.teacher.ask([req for _, req, _ in batch])
        cost = [rep.tokens_in + rep.tokens_out for rep in q_replies]
        spent += w.count(q_replies)
        todo = _questions(batch, q_replies, seen, dropped, held_out)
        a_replies = svc.teacher.ask([w.answer(q, batch[bi][0], batch[bi][1].sample_index % SEED_STRIDE)
                                     for bi, q in todo])
        spent += w.count(a_replies)
        _answers(batch, todo, a_replies, cost, costs, kept, dropped)
        if sum(cost) == 0:  # every call failed: nothing more will be spent, stop instead of looping
            break
        costs.observe(first_n, cost, {bi for bi, _ in todo})  # every question that parsed was sent for an answer
        progress(f"oneshot: {n_next} pairs asked, {len(kept)} items kept, {spent}/{budget} teacher tokens")
    return {"kept": kept, "dropped": dropped, "spent": spent, "usage": {ROLE: w.usage}, "pairs": n_next,
            "rounds": round(n_next / len(w.seeds), 3), "pair_cost_max": costs.pair_max}


def module_test_ids(state: LearnerState) -> dict[str, list[str]]:
    return {k: list(m.test_ids) for k, m in sorted(state.modules.items())}


def build_oneshot_report(run_id: str, ioa_state: LearnerState, ioa_report: dict, after: dict[str, float],
                         eps: float, extra: dict) -> dict:
    """report.json of a one-shot run, in graph/report.py's shape where it makes sense."""
    from agents.reporter import retention, summary

    rows = []
    for k, m in sorted(ioa_state.modules.items()):
        t, b, a = ioa_state.test_teacher.get(k, 0.0), ioa_state.test_before.get(k, 0.0), after.get(k, 0.0)
        rows.append({"module": k, "name": m.name, "teacher_probe": m.teacher_score, "teacher": t, "before": b,
                     "after": a, "retention_before": retention(b, t, eps), "retention_after": retention(a, t, eps),
                     "teacher_limited": m.teacher_limited, "targeted": True, "passed": False, "not_mastered": False,
                     "deficient_at_start": k in ioa_state.first_deficient, "known_at_start": k in ioa_state.known,
                     "decisions": []})
    t = ioa_state.test_teacher.get("overall", 0.0)
    b = ioa_state.test_before.get("overall", 0.0)
    a = after.get("overall", 0.0)
    return {
        "run_id": run_id,
        "arm": "oneshot",
        **summary(rows, t, b, a, eps),
        "teacher_tokens": extra["spent"],
        "usage": extra["usage"],
        "optimizer_steps": extra["optimizer_steps"],
        "rounds": 1,
        "cycles": 1,
        "decisions": [],
        "caveats": extra.get("caveats", []),
        "reference_note": "teacher and student-before scores are the IOA run's (same teacher, student and test items)",
        "status": "finished",
        "stop_reason": None,
        "baseline": {
            "ioa_run": ioa_report.get("run_id"),
            "budget": extra["budget"],
            "spent": extra["spent"],
            "spent_fraction": extra["spent"] / extra["budget"] if extra["budget"] else None,
            "target_steps": extra["target_steps"],
            "pairs_asked": extra["pairs"],
            "rounds_over_seeds": extra["rounds"],
            "items_kept": extra["kept"],
            "items_dropped": extra["dropped"],
            "drop_reasons": extra["drop_reasons"],
            "loss_first": extra.get("loss_first"),
            "loss_last": extra.get("loss_last"),
        },
    }


def _ioa_run(ioa_run_dir: Path) -> tuple[dict, LearnerState]:
    """The finished IOA run the arm is matched to: its report and its final state (modules, test split)."""
    from agents.checkpoints import load_state

    report_path = ioa_run_dir / "report.json"
    if not report_path.is_file():
        raise ConfigError(f"the one-shot baseline needs a finished IOA run: {report_path} is missing")
    ioa_state = load_state(ioa_run_dir)
    if ioa_state is None or not ioa_state.modules:
        raise ConfigError(f"IOA run {ioa_run_dir} has no diagnosed modules to score the one-shot student on")
    return json.loads(report_path.read_text()), ioa_state


def _services(cfg: RunConfig, run_dir: Path, progress) -> Services:
    """The arm's services: the task pack, a teacher with its own cache in run_dir, the student, a trace."""
    from agents.runtime import load_task, save_config
    from agents.teacher import Teacher
    from training.student import Student

    run_dir.mkdir(parents=True, exist_ok=True)
    save_config(cfg, run_dir)
    pack, items = load_task(cfg)
    trace = TraceWriter(run_dir / "trace.jsonl")

    def teacher_event(event: dict) -> None:
        event = dict(event)
        trace.emit(event.pop("event", "teacher_call"), **event)

    return Services(cfg=cfg, run_dir=run_dir, pack=pack, items=items,
                    teacher=Teacher(cfg.teacher, run_dir, trace=teacher_event),
                    student=Student(cfg.student, run_dir, seed=cfg.seed), trace=trace, progress=progress)


def distill_teacher(svc: Services):
    """The in-process teacher for `student.loss: kd | sft+kd` (None for plain SFT): every arm trains the same way."""
    from agents.trainer import local_teacher

    return local_teacher(svc) if svc.cfg.student.loss != "sft" else None


def _train_once(svc: Services, kept: list[dict], steps: int, budget: int, caveats: list[str]):
    """The student from its initial weights, trained for exactly `steps` optimizer steps; its TrainStats or None."""
    from training.checkpoints import save_student

    student, cfg = svc.student, svc.cfg
    student.load(None)  # the initial weights, whatever ran before
    examples = [{"prompt": r["prompt"], "answer": r["answer"]} for r in kept]
    if not (examples and steps > 0):
        if steps > 0:
            caveats.append(f"no usable item within the budget of {budget} tokens: the student was not trained")
        return None
    def progress(s, n, loss):
        if s == n or s % 10 == 0:
            svc.progress(f"  oneshot step {s}/{n} loss {loss:.3f}")

    stats = student.train(examples, seed=cfg.seed * 1000 + 1, max_steps=steps, teacher=distill_teacher(svc),
                          progress=progress)
    save_student(student.model, student.tokenizer, svc.run_dir / "student" / "final")
    return stats


def _score_test(svc: Services, ioa_state: LearnerState) -> dict[str, float]:
    """The trained student's test-split scores per IOA module and overall."""
    from agents import scoring

    ids = module_test_ids(ioa_state)
    test_items = [svc.items[i] for k in ids for i in ids[k]]
    s = scoring.check_all(svc, test_items, scoring.student_answers(svc, test_items))
    after, _ = scoring.module_scores(ids, s)
    after["overall"] = scoring.mean(list(s.values()))
    return after


def run_oneshot(cfg: RunConfig, ioa_run_dir: str | Path, run_id: str, progress: Callable[[str], None] | None = None,
                budget: int | None = None, steps: int | None = None) -> tuple[Path, dict]:
    """The one-shot baseline for `cfg`'s seed against the finished IOA run in `ioa_run_dir`; returns
    (run directory, report). `budget` and `steps` default to the IOA report's teacher_tokens and optimizer_steps."""
    from collections import Counter

    progress = progress or (lambda m: None)
    ioa_run_dir = Path(ioa_run_dir)
    ioa_report, ioa_state = _ioa_run(ioa_run_dir)
    budget = int(ioa_report["teacher_tokens"] if budget is None else budget)
    steps = int(ioa_report["optimizer_steps"] if steps is None else steps)
    # the one-shot keeps its own budget (below); the client's reservation-based stop would cut it short
    cfg = cfg.model_copy(update={"run_id": run_id, "teacher": cfg.teacher.model_copy(update={"token_budget": None})})
    run_dir = Path(cfg.runs_dir) / run_id
    svc = _services(cfg, run_dir, progress)
    trace, caveats = svc.trace, []
    try:
        progress(f"oneshot {run_id}: budget {budget} teacher tokens, {steps} optimizer steps (from {ioa_run_dir.name})")
        with _Phase(trace, "synthesize"):
            syn = synthesize(svc, budget, progress)
            write_jsonl(run_dir, "items/oneshot.jsonl", syn["kept"], kind="items")
            write_jsonl(run_dir, "items/oneshot-dropped.jsonl", syn["dropped"], kind="items")
        trace.emit("synthesis", node="synthesize", kept=len(syn["kept"]), dropped=len(syn["dropped"]),
                   spent=syn["spent"], budget=budget, pairs=syn["pairs"])
        with _Phase(trace, "train"):
            stats = _train_once(svc, syn["kept"], steps, budget, caveats)
        losses = stats.losses if stats and stats.losses else [None]
        trace.emit("train", node="train", items=len(syn["kept"]), steps=stats.steps if stats else 0,
                   loss_first=losses[0], loss_last=losses[-1])
        with _Phase(trace, "report") as phase:
            after = _score_test(svc, ioa_state)
            reasons = Counter(d["reason"].split(":")[0] for d in syn["dropped"])
            data = build_oneshot_report(run_id, ioa_state, ioa_report, after, cfg.thresholds.eps, {
                "spent": syn["spent"], "usage": syn["usage"], "optimizer_steps": stats.steps if stats else 0,
                "budget": budget, "target_steps": steps, "pairs": syn["pairs"], "rounds": syn["rounds"],
                "kept": len(syn["kept"]), "dropped": len(syn["dropped"]), "drop_reasons": dict(reasons),
                "caveats": caveats, "loss_first": losses[0], "loss_last": losses[-1]})
            data["wall_s"] = round(trace.node_seconds() + time.perf_counter() - phase.t0, 1)
            data["context_passages"] = svc.context_passages
            write_json(run_dir, "report.json", RunReport.model_validate(data).model_dump(), kind="report")
        trace.emit("report", node="report", overall=data["overall"], teacher_tokens=data["teacher_tokens"])
        return run_dir, data
    finally:
        svc.teacher.close()
        trace.close()
