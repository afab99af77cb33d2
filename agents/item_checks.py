"""The Adapter's pure checks on a candidate item: parse the question, verify the answer, find duplicates, template.

Every function here is pure (text and numbers in, a verdict out), so each is unit-tested on hand-made candidates
(tests/agents/test_item_checks.py). The Adapter node (agents/adapter.py) calls the teacher and the pack's checker
and hands the results to these functions.
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

from ioa_state import Item
from tasks.checkers import final_answer, normalize, rouge_l


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


@dataclass(frozen=True)
class Verdict:
    """The outcome of verifying one candidate: the answer kept with its reference, or the reason it is dropped."""

    kept: bool
    answer: str
    reference: str | None = None
    verification: dict = field(default_factory=dict)
    reason: str | None = None


def verify_by_vote(samples: list[str], vote_agree: int) -> Verdict:
    """Kept when at least `vote_agree` of the teacher's samples agree on the (normalised) final answer; the first
    sample with that answer is kept, and its final answer becomes the item's reference."""
    finals = Counter(normalize(final_answer(a)) for a in samples if a.strip())
    top, agree = finals.most_common(1)[0] if finals else ("", 0)
    first = samples[0] if samples else ""
    if agree < vote_agree or not top:
        return Verdict(False, first, reason=f"vote: {agree} of {len(samples)} samples agree < vote_agree {vote_agree}")
    answer = next(a for a in samples if normalize(final_answer(a)) == top)
    return Verdict(True, answer, final_answer(answer), {"method": "vote", "agree": agree, "samples": len(samples)})


def verify_by_checker(answer: str, score: float, min_score: float, reference: str | None) -> Verdict:
    """Kept when the pack's checker scores the answer at least `min_score` against the source's reference."""
    if score < min_score:
        return Verdict(False, answer, reason=f"verification failed: checker score {score:.2f} against the source's "
                                             f"reference {reference!r}")
    return Verdict(True, answer, reference, {"method": "checker", "score": score})


def duplicate_of(question: str, answer: str, reference: str | None, gate: list[Item], kept: list[tuple[str, str]],
                 threshold: float) -> tuple[str | None, str]:
    """Dedup rule: the whole item (question + answer) within ROUGE-L `threshold` of a kept item, or the question
    within it of a gate item asking for the same reference (so that passing the gate is never memorisation).
    Returns (the duplicated text, "gate item" | "kept item") or (None, "")."""
    for g in gate:
        same_answer = reference is None or g.reference is None or normalize(g.reference) == normalize(reference)
        if same_answer and rouge_l(question, g.prompt) > threshold:
            return g.prompt, "gate item"
    text = f"{question}\n{answer}"
    for q, a in kept:
        if rouge_l(text, f"{q}\n{a}") > threshold:
            return q, "kept item"
    return None, ""


def with_template(answer: str, reference: str | None) -> tuple[str, bool]:
    """Make sure a verified answer ends with the fixed 'Answer: ...' line; True when the line had to be added."""
    if re.search(r"(?im)^\s*answer\s*:", answer):
        return answer.strip(), False
    final = reference if reference is not None else final_answer(answer)
    return f"{answer.strip()}\nAnswer: {final}", True


def answer_words(ratio: float, tau_low: float, short_words: int, words: int) -> int:
    """The capacity rule: a student whose mastery ratio is below tau_low is asked shorter answers."""
    return short_words if ratio < tau_low else words
