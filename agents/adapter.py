"""The adapter / rewriter (Adapter, algorithm §3): in what form.

For the current stage's modules (all of them in a stage's first round, the failing ones after remediate/simplify)
the teacher writes new questions from seed items, or from the student's actual wrong answers on remedial-source
items, at the module's current difficulty level; then answers each with the enabled adaptations in its system
prompt (concretization, decomposition, cognitive-load control, a fixed template, plain language; each a prompt file)
shaped to the student's capacity. Every candidate is verified (the pack's checker against the source's reference
when the question asks for the same thing; agreement of vote_samples teacher samples otherwise) and deduplicated
(ROUGE-L > 0.7 against kept items and the module's gate items). Kept and dropped candidates go to JSONL files.
"""
from __future__ import annotations

import math
import re
from collections import Counter

from agents.runtime import Services, read_jsonl, write_jsonl
from ioa_state import Item, LearnerState
from prompts import render, template
from tasks.checkers import final_answer, normalize, rouge_l

DUPLICATE_ROUGE = 0.7  # the algorithm page's dedup threshold
TOP_UP_PASSES = 2  # extra synthesis passes for a module that kept fewer than min_items items
PASS_STRIDE = 300  # sample indices per pass (round * 1000 + pass * 300 + j): every pass draws fresh samples


class ItemShortage(RuntimeError):
    """A module kept fewer than min_items items: the run stops instead of training on nothing."""


def first_sentence(text: str, limit: int = 160) -> str:
    """The first line or sentence of a student's answer, enough to show what it got wrong."""
    text = (text or "").strip().splitlines()[0] if (text or "").strip() else "(no answer)"
    m = re.match(r"(.+?[.!?])(\s|$)", text)
    return (m.group(1) if m else text)[:limit]


def parse_question(text: str | None) -> str | None:
    """The question in a reply: a quoted question if there is one, else the first sentence ending in '?'.

    None when the reply holds no question (small teachers often answer instead of rewriting)."""
    text = (text or "").strip()
    quoted = re.findall(r'["“]([^"”]{8,300}\?)["”]', text)
    if quoted:
        return quoted[0].strip()
    for line in text.splitlines():
        line = re.sub(r"^\s*(new question|question|q)\s*[:\-]\s*", "", line.strip(), flags=re.I).strip().strip('"\'“”')
        m = re.match(r"([^?]{8,300}\?)", line)
        if m and len(m.group(1).split()) >= 3:
            return m.group(1).strip()
    return None


def with_template(answer: str, reference: str | None) -> tuple[str, bool]:
    """Make sure a verified answer ends with the fixed 'Answer: ...' line; True when the line had to be added."""
    if re.search(r"(?im)^\s*answer\s*:", answer):
        return answer.strip(), False
    final = reference if reference is not None else final_answer(answer)
    return f"{answer.strip()}\nAnswer: {final}", True


def duplicate_of(question: str, answer: str, reference: str | None, gate: list[Item],
                 kept: list[tuple[str, str]]) -> tuple[str | None, str]:
    """Dedup rule: the whole item (question + answer) within ROUGE-L 0.7 of a kept item, or the question within
    ROUGE-L 0.7 of a gate item asking for the same reference (so that passing the gate is never memorisation)."""
    for g in gate:
        same_answer = reference is None or g.reference is None or normalize(g.reference) == normalize(reference)
        if same_answer and rouge_l(question, g.prompt) > DUPLICATE_ROUGE:
            return g.prompt, "gate item"
    text = f"{question}\n{answer}"
    for q, a in kept:
        if rouge_l(text, f"{q}\n{a}") > DUPLICATE_ROUGE:
            return q, "kept item"
    return None, ""


def adaptation_text(svc: Services, simplify: bool, ratio: float) -> tuple[str, list[str]]:
    """The system-prompt block for the enabled adaptations, and their names (stored with each item)."""
    if svc.cfg.ablation == "no_adapter":
        return "", []
    names = svc.cfg.adaptations.enabled()
    parts = [template(n) for n in names]
    if simplify:
        parts.append(template("simplify"))
    words = 30 if ratio < svc.cfg.thresholds.tau_low else 60
    parts.append(render("capacity", words=words).text)
    return "\n".join(parts), names


def _sources(state: LearnerState, svc: Services, module: str) -> list[tuple[Item, str | None]]:
    """(source item, student's wrong answer or None): wrong answers in remediate/simplify rounds, else seeds."""
    m = state.modules[module]
    if state.mode != "initial" and state.wrong_answers is not None:
        wrong = [r for r in read_jsonl(svc.run_dir, state.wrong_answers) if r["module"] == module]
        if wrong:
            return [(svc.items[r["item"]], r["answer"]) for r in wrong]
    return [(svc.items[i], None) for i in m.seed_ids]


def synthesize(state: LearnerState, svc: Services) -> dict:
    """The Adapter node: write, shape, verify and deduplicate the round's items."""
    from agents.teacher import TeacherRequest

    cfg, th = svc.cfg, svc.cfg.thresholds
    stage = state.stage()
    modules = stage.modules if state.mode == "initial" else (state.decisions[-1].failing or stage.modules)
    simplify = state.mode == "simplify"
    round_no = state.total_rounds
    tag = f"c{state.cycle}-s{stage.index}-r{stage.rounds}"
    context = svc.teacher_context
    sys_msg = [{"role": "system", "content": context}] if context else []
    obs = state.last_observation()
    svc.progress(f"synthesize {tag}: {state.mode} items for {', '.join(modules)}")

    # passes: a module short of min_items after a pass gets another, with fresh samples (bounded by TOP_UP_PASSES)
    _, names = adaptation_text(svc, simplify, 1.0)
    pool = {k: [svc.items[i] for i in state.modules[k].gate_ids] for k in modules}
    earlier = {k: [] for k in modules}
    for ref in state.item_files:
        for r in read_jsonl(svc.run_dir, ref):
            if r["module"] in earlier:
                earlier[r["module"]].append((r["prompt"], r["answer"]))
    kept: list[dict] = []
    dropped: list[dict] = []
    todo = list(modules)
    for attempt in range(1 + TOP_UP_PASSES):
        # 1. questions
        q_reqs, q_meta = [], []
        for k in todo:
            level = state.level.get(k, 1)
            hint = template(f"level_{level}") + (" " + template("simplify") if simplify else "")
            sources = _sources(state, svc, k)
            if attempt:  # a top-up pass also writes from the module's seeds
                sources += [(svc.items[i], None) for i in state.modules[k].seed_ids if all(s.id != i for s, _ in sources)]
            # as many candidates per module as a first round has, however few wrong answers there are to write from
            per_source = min(PASS_STRIDE, max(th.samples_per_seed, math.ceil(
                th.samples_per_seed * max(1, len(state.modules[k].seed_ids)) / max(1, len(sources)))))
            for src, wrong in sources:
                if wrong is None:
                    p = render("synthesize", module=state.modules[k].name, seed=svc.pack.format_prompt(src), level_hint=hint)
                else:
                    p = render("remediate", question=svc.pack.format_prompt(src), wrong=first_sentence(wrong),
                               reference=src.reference or "", level_hint=hint)
                for j in range(per_source):
                    q_reqs.append(TeacherRequest(messages=sys_msg + [{"role": "user", "content": p.text}],
                                                 temperature=cfg.teacher.temperature, max_tokens=cfg.teacher.question_max_tokens,
                                                 sample_index=round_no * 1000 + attempt * PASS_STRIDE + j, role="adapter",
                                                 tag={"module": k, "item": src.id, "template": p.template, "step": "question",
                                                      "stage": stage.index, "round": stage.rounds, "cycle": state.cycle}))
                    q_meta.append((k, src, wrong, p.template, level))
        q_replies = svc.teacher.ask(q_reqs)

        candidates = []
        for (k, src, wrong, tmpl, level), rep in zip(q_meta, q_replies):
            q = parse_question(rep.text)
            base = {"module": k, "source": src.id, "from_wrong_answer": wrong is not None, "level": level,
                    "mode": state.mode, "pass": attempt}
            if q is None:
                dropped.append({**base, "question": rep.text, "reason": "unparseable question" if rep.error is None else f"teacher error: {rep.error}"})
            else:
                candidates.append((k, src, wrong, tmpl, level, q))

        # 2. answers, shaped by the adaptations
        vote = lambda src: svc.pack_synthesis() != "paraphrase" or src.reference is None  # noqa: E731
        a_reqs, a_index = [], []
        for ci, (k, src, wrong, tmpl, level, q) in enumerate(candidates):
            ratio = obs.scores.get(k, 0.0) / max(state.modules[k].teacher_score or 0.0, th.eps) if obs else 0.0
            adapt, _ = adaptation_text(svc, simplify, ratio)
            solve = render("solve", context=context or "", adaptations=adapt)
            n = th.vote_samples if vote(src) and cfg.ablation != "no_adapter" else 1
            for s in range(n):
                a_reqs.append(TeacherRequest(messages=[{"role": "system", "content": solve.text}, {"role": "user", "content": q}],
                                             temperature=0.0 if n == 1 else cfg.teacher.temperature,
                                             max_tokens=min(cfg.teacher.max_tokens, cfg.student.max_length // 2),
                                             sample_index=s, role="adapter",
                                             tag={"module": k, "item": src.id, "template": "solve", "step": "answer",
                                                  "stage": stage.index, "round": stage.rounds, "cycle": state.cycle}))
                a_index.append(ci)
        a_replies = svc.teacher.ask(a_reqs)
        answers: dict[int, list[str]] = {}
        for ci, rep in zip(a_index, a_replies):
            answers.setdefault(ci, []).append(rep.text or "")

        # 3. verify and deduplicate
        for ci, (k, src, wrong, tmpl, level, q) in enumerate(candidates):
            samples = answers.get(ci, [""])
            base = {"module": k, "source": src.id, "from_wrong_answer": wrong is not None, "level": level,
                    "mode": state.mode, "question": q, "pass": attempt}
            if cfg.ablation == "no_adapter":  # baseline: the teacher's item as first written, unverified, not deduplicated
                kept.append({"id": f"{tag}-{k}-{len(kept)}", "module": k, "prompt": q, "answer": samples[0],
                             "reference": src.reference, "level": level, "mode": state.mode, "source": src.id,
                             "from_wrong_answer": wrong is not None, "question_template": tmpl, "adaptations": [],
                             "template_filled": False, "verification": {"method": "none"}, "stage": stage.index,
                             "round": stage.rounds, "cycle": state.cycle})
                continue
            if vote(src):
                finals = Counter(normalize(final_answer(a)) for a in samples if a.strip())
                top, agree = finals.most_common(1)[0] if finals else ("", 0)
                if agree < th.vote_agree or not top:
                    dropped.append({**base, "answer": samples[0], "reason": f"vote: {agree} of {len(samples)} samples agree < vote_agree {th.vote_agree}"})
                    continue
                answer = next(a for a in samples if normalize(final_answer(a)) == top)
                reference, verification = final_answer(answer), {"method": "vote", "agree": agree, "samples": len(samples)}
            else:
                answer = samples[0]
                score = svc.pack.check(src, answer)
                need = 0.5 if svc.pack.checker == "rouge" else 0.999
                if score < need:
                    dropped.append({**base, "answer": answer, "reason": f"verification failed: checker score {score:.2f} against the source's reference {src.reference!r}"})
                    continue
                reference, verification = src.reference, {"method": "checker", "score": score}
            dup_of, dup_kind = duplicate_of(q, answer, reference, pool[k], earlier[k] + [(r["prompt"], r["answer"]) for r in kept if r["module"] == k])
            if dup_of is not None:
                dropped.append({**base, "answer": answer, "reason": f"duplicate of a {dup_kind} (ROUGE-L > {DUPLICATE_ROUGE}): {dup_of!r}"})
                continue
            if cfg.adaptations.template:
                answer, filled = with_template(answer, reference)
            else:
                filled = False
            if cfg.max_items_per_module and sum(r["module"] == k for r in kept) >= cfg.max_items_per_module:
                dropped.append({**base, "answer": answer, "reason": f"over max_items_per_module {cfg.max_items_per_module}"})
                continue
            kept.append({"id": f"{tag}-{k}-{len(kept)}", "module": k, "prompt": q, "answer": answer, "reference": reference,
                         "level": level, "mode": state.mode, "source": src.id, "from_wrong_answer": wrong is not None,
                         "question_template": tmpl, "adaptations": names + (["simplify"] if simplify else []),
                         "template_filled": filled, "verification": verification, "stage": stage.index, "round": stage.rounds,
                         "cycle": state.cycle})

        counts = Counter(r["module"] for r in kept)
        todo = [k for k in modules if counts[k] < cfg.min_items]
        if not todo or attempt == TOP_UP_PASSES:
            break
        svc.progress(f"synthesize {tag}: {', '.join(todo)} short of min_items {cfg.min_items}: top-up pass {attempt + 1}")

    counts = Counter(r["module"] for r in kept)
    drop_ref = write_jsonl(svc.run_dir, f"items/{tag}-dropped.jsonl", dropped, kind="items", stage=stage.index, round=stage.rounds)
    for k in modules:
        reasons = Counter(d["reason"].split(":")[0] for d in dropped if d["module"] == k)
        svc.trace.emit("synthesis", node="synthesize", cycle=state.cycle, stage=stage.index, round=stage.rounds,
                       module=k, mode=state.mode, level=state.level.get(k, 1), kept=counts[k],
                       dropped=sum(reasons.values()), drop_reasons=dict(reasons), adaptations=names)
    for d in dropped:
        svc.trace.emit("item_dropped", node="synthesize", cycle=state.cycle, stage=stage.index, round=stage.rounds, **d)
    short = [k for k in modules if counts[k] < cfg.min_items]
    if short:
        k = short[0]
        reasons = Counter(d["reason"].split(":")[0] for d in dropped if d["module"] == k)
        raise ItemShortage(f"module {k}: the teacher's replies gave {counts[k]} usable items, fewer than min_items "
                           f"{cfg.min_items} (dropped: {dict(reasons)}); see {drop_ref.path} - check the teacher "
                           f"backend, or continue with `ioa resume {state.run_id} --set min_items=1`")
    ref = write_jsonl(svc.run_dir, f"items/{tag}.jsonl", kept, kind="items", stage=stage.index, round=stage.rounds)
    svc.progress(f"synthesize {tag}: kept {len(kept)} items ({dict(counts)}), dropped {len(dropped)}")
    return {"item_files": state.item_files + [ref], "dropped_files": state.dropped_files + [drop_ref],
            "phase": "synthesized", "usage": svc.usage()}
