"""Shared by the diagnostician and the examiner: answers of teacher and student on items, scored by the pack's checker.

The teacher answers with its context (system prompt) and greedy decoding; the student with the same user prompt and
no context (algorithm §1.2). Not an agent: agents import it, it imports no agent.
"""
from __future__ import annotations

from agents.runtime import Services
from ioa_state import Item


def teacher_answers(svc: Services, items: list[Item], role: str, module_of: dict[str, str] | None = None,
                    **tag) -> dict[str, str]:
    """The teacher's greedy answers (with its context), by item id; an item whose call failed has no answer (a failed
    call is not a wrong answer: scores skip it; too many failures raise TeacherUnavailable in the client)."""
    from agents.teacher import TeacherRequest

    reqs = []
    for it in items:
        prompt = svc.pack.format_prompt(it)
        context = svc.teacher_context_for(prompt)
        messages = ([{"role": "system", "content": context}] if context else []) + [
            {"role": "user", "content": prompt}]
        reqs.append(TeacherRequest(messages=messages, temperature=0.0, max_tokens=svc.cfg.student.max_new_tokens,
                                   role=role, tag={"item": it.id, "module": (module_of or {}).get(it.id), **tag}))
    replies = svc.teacher.ask(reqs)
    return {it.id: (r.text or "") for it, r in zip(items, replies) if r.error is None}


def student_answers(svc: Services, items: list[Item]) -> dict[str, str]:
    """The student's greedy answers, no context (with a progress bar on a terminal)."""
    from agents.progress import exam_bar

    bar, on_batch = exam_bar("student answers", len(items))
    try:
        texts = svc.student.answer([svc.pack.format_prompt(it) for it in items], on_batch=on_batch)
    finally:
        bar.close()
    return {it.id: t for it, t in zip(items, texts)}


def check_all(svc: Services, items: list[Item], answers: dict[str, str]) -> dict[str, float]:
    """Score per item id; items without an answer (a failed teacher call) get no score."""
    return {it.id: float(svc.pack.check(it, answers[it.id])) for it in items if it.id in answers}


def mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def module_scores(
    ids_by_module: dict[str, list[str]], item_scores: dict[str, float]
) -> tuple[dict[str, float], dict[str, int]]:
    """Mean score and count per module over the given item ids (ids without a score are skipped)."""
    scores, counts = {}, {}
    for k, ids in ids_by_module.items():
        vals = [item_scores[i] for i in ids if i in item_scores]
        if vals:
            scores[k], counts[k] = mean(vals), len(vals)
    return scores, counts


def level_scores(ids: list[str], levels: dict[str, int], item_scores: dict[str, float]) -> dict[int, float]:
    """Mean score per item difficulty level."""
    by: dict[int, list[float]] = {}
    for i in ids:
        if i in item_scores:
            by.setdefault(levels.get(i, 1), []).append(item_scores[i])
    return {lvl: mean(v) for lvl, v in sorted(by.items())}
