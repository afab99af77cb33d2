"""The Adapter's pure checks on a candidate item: parse the question, check that it is well formed (complete, naming
its source's entities, with a final answer), verify the answer, find duplicates (of kept, gate and test items),
template.

Every function here is pure (text and numbers in, a verdict out), so each is unit-tested on hand-made candidates
(tests/test_item_checks.py). The Adapter node (agents/adapter.py) calls the teacher and the pack's checker
and hands the results to these functions.
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable

from ioa_state import Item
from tasks.checkers import final_answer, normalize, rouge_l, stated_final_answer


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


def wrong_final_answer(answer: str, score_of: Callable[[str], float], min_score: float) -> str | None:
    """The final answer a verified answer states, when it fails the checker although the whole answer passed it;
    else None (it passes, or nothing is stated as final).

    The checker passes an answer that names the reference anywhere, a step included, so a reply whose steps name
    the reference can end on another final line ("... is called Lumara.\nAnswer: The answer is: 30."; under the
    answer form every reply states one). `score_of`: the pack's checker against the source's reference."""
    stated = stated_final_answer(answer)
    if stated is None or score_of(stated) >= min_score:
        return None
    return stated


def with_final_answer(answer: str, reference: str) -> str:
    """The answer with its last final-answer line ("Answer: ...", "... the answer is ...", "#### ...") and what
    follows replaced by the fixed template's "Answer: <reference>" line (appended when no line states one)."""
    lines = answer.rstrip().splitlines()
    for i in range(len(lines) - 1, -1, -1):
        if stated_final_answer(lines[i]) is not None:
            return "\n".join(lines[:i] + [f"Answer: {reference}"])
    return f"{answer.rstrip()}\nAnswer: {reference}"


def duplicate_of(question: str, answer: str, reference: str | None, gate: list[Item], kept: list[tuple[str, str]],
                 threshold: float) -> tuple[str | None, str]:
    """Dedup rule: the whole item (question + answer) within ROUGE-L `threshold` of a kept item, or the question
    within it of a gate item asking for the same reference (so that passing the gate is never memorisation).
    Returns (the duplicated text, "gate item" | "kept item") or (None, "")."""
    hit = gate_duplicate(question, reference, gate, threshold)
    if hit is not None:
        return hit, "gate item"
    text = f"{question}\n{answer}"
    for q, a in kept:
        if rouge_l(text, f"{q}\n{a}") > threshold:
            return q, "kept item"
    return None, ""


def gate_duplicate(question: str, reference: str | None, gate: list[Item], threshold: float) -> str | None:
    """The gate question that `question` duplicates (ROUGE-L > threshold, asking for the same reference), else None.
    It reads no answer, so where the reference is the source's (checker verification) it runs before the answer is
    paid for."""
    for g in gate:
        same_answer = reference is None or g.reference is None or normalize(g.reference) == normalize(reference)
        if same_answer and rouge_l(question, g.prompt) > threshold:
            return g.prompt
    return None


def with_template(answer: str, reference: str | None) -> tuple[str, bool]:
    """Make sure a verified answer ends with the fixed 'Answer: ...' line; True when the line had to be added."""
    if re.search(r"(?im)^\s*answer\s*:", answer):
        return answer.strip(), False
    final = reference if reference is not None else final_answer(answer)
    return f"{answer.strip()}\nAnswer: {final}", True


def answer_words(ratio: float, tau_low: float, short_words: int, words: int) -> int:
    """The capacity rule: a student whose mastery ratio is below tau_low is asked shorter answers."""
    return short_words if ratio < tau_low else words


# -- well-formedness: a kept item's question is complete, names its source's entities, and has a final answer -----
# words an English question cannot end on: a question whose last word is one of these was cut mid-sentence
DANGLING_WORDS = frozenset({"a", "an", "the", "and", "or", "but", "nor", "whose", "its", "their", "our", "my", "your",
                            "than", "because", "whether", "very", "every"})


def complete_question(question: str, reply: str | None = None, reply_cut: bool = False,
                      max_chars: int | None = None) -> str | None:
    """Why a question is not complete (it was cut at the token limit), or None when it is.

    Incomplete: it fills `max_chars` (a structured item's bound on its question: the grammar closed it there); it
    does not end with '?', '.' or '!' (closing quotes and brackets aside); its last word is one no sentence ends on
    (DANGLING_WORDS: "... the capital of the?"); its brackets do not close; or the teacher's reply was cut at
    max_tokens (`reply_cut`, its finish reason "length") and the reply goes on after the question on the question's
    own line, so the question may lean on words that were cut ("Can you solve this? A farmer has 4").
    """
    q = (question or "").strip()
    if max_chars is not None and len(q) >= max_chars:
        return f"the question fills its {max_chars}-character bound: {q[-40:]!r}"
    body = q.rstrip("\"'”’)] ")
    if not body or body[-1] not in "?.!":
        return f"the question ends without '?' or a full stop: {q[-40:]!r}"
    words = re.findall(r"[A-Za-z']+", body)
    if words and words[-1].lower() in DANGLING_WORDS:
        return f"the question ends mid-sentence on {words[-1]!r}"
    if q.count("(") != q.count(")") or q.count("[") != q.count("]"):
        return "the question's brackets do not close"
    if reply_cut and reply:
        at = reply.find(q)
        rest = reply[at + len(q):] if at >= 0 else ""
        if rest.split("\n", 1)[0].strip(" \t\"'”“’"):
            return "the reply was cut at max_tokens on the question's own line"
    return None


# capitalised words that start sentences or questions: never taken for an entity's name
COMMON_WORDS = frozenset("""
what which who whom whose where when why how is are was were do does did can could would should will shall may might
must has have had the a an in on at of for to from by with and or but if this that these those it its there here then
name give tell explain describe list state write find say answer question step steps first second third next last so
yes no not please also each every all some any many much more most one two three four five six seven eight nine ten
i we you he she they his her their our my your me us them him let suppose imagine consider note true false example
""".split())


def _words(text: str) -> list[str]:
    return [w.removesuffix("'s").removesuffix("’s") for w in re.findall(r"[A-Za-z][A-Za-z'’-]*", text or "")]


def known_words(texts: list[str]) -> set[str]:
    """Every word (lowercased) of these texts: the source, the teacher's context, the pack's training items."""
    return {w.lower() for t in texts for w in _words(t)}


def entity_names(texts: list[str]) -> list[str]:
    """The proper names of these texts: capitalised words of 4+ letters that are not common words (COMMON_WORDS) and
    never appear in lowercase in them (so "River" at a sentence start is not a name when "river" is used)."""
    words = [w for t in texts for w in _words(t)]
    lower = {w for w in words if w[0].islower()}
    out: list[str] = []
    for w in words:
        if w[0].isupper() and len(w) >= 4 and w.lower() not in COMMON_WORDS and w.lower() not in lower \
                and w not in out:
            out.append(w)
    return out


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance (insertions, deletions, substitutions)."""
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def near_spelling(word: str, entity: str) -> bool:
    """Is `word` a near-spelling of `entity` (not the name itself, nor a form of it such as Zorbian or Zorbias)?

    Near: the same first three letters and a length within 2 (Zorvath, Zorvil for Zorbia), or within edit distance 1
    (5+ letters; 2 from 8 letters: Borbia for Zorbia)."""
    w, e = word.lower(), entity.lower()
    if w == e or w.startswith(e):
        return False
    if w[:3] == e[:3] and abs(len(w) - len(e)) <= 2:
        return True
    return len(e) >= 5 and edit_distance(w, e) <= (1 if len(e) < 8 else 2)


def misnamed_entity(text: str, entities: list[str], known: set[str]) -> str | None:
    """Why a candidate's text misnames one of its source's entities, or None.

    The rule (general, not tied to one domain): a capitalised word of the candidate that is no word of the source,
    the teacher's context or the pack's training items (`known`, lowercased) and is a near-spelling of an entity its
    source names (`entities`, from `entity_names`) is the teacher misspelling that entity: the item would teach the
    fact under a wrong name ("Zorvath" for "Zorbia"). A known word (another name of the context) is never flagged,
    nor is a form of the entity's name (`names_entity`: "Italian" for "Italy", "Zorbian" for "Zorbia")."""
    for w in _words(text):
        if not w[0].isupper() or len(w) < 4 or w.lower() in known or w.lower() in COMMON_WORDS:
            continue
        for e in entities:
            if near_spelling(w, e) and not names_entity([w], e):
                return f"{w!r} is a near-spelling of the source's {e!r}"
    return None


def names_entity(words: list[str], entity: str) -> bool:
    """Does one of `words` name `entity`: the name itself or a form of it (Zorbia's, Zorbian; Italian for Italy: the
    name without its last letter, then more letters), case aside?"""
    e = entity.lower()
    return any(w.lower().startswith(e) or (len(e) >= 5 and len(w) > len(e) and w.lower().startswith(e[:-1]))
               for w in words)


def missing_entity(question: str, source_question: str) -> str | None:
    """Why a rewritten question leaves out a proper name its source question names, or None.

    A paraphrase must still ask about the same thing: "What language is this?" written from "What is the language
    of Zorbia?" asks nothing the source's reference answers, and kept it would teach "Zorbish" as the answer to a
    question about no country. The names are the source question's own (`entity_names`), not its reference's (a
    question does not name its answer)."""
    words = _words(question)
    missing = [e for e in entity_names([source_question]) if not names_entity(words, e)]
    return None if not missing else f"does not name its source's {', '.join(repr(e) for e in missing)}"


def empty_final_answer(answer: str) -> str | None:
    """Why an answer has no final answer, or None: the last "Answer:" marker is followed by nothing (or a
    placeholder such as "<the answer>"), or without a marker the answer is blank."""
    marks = list(re.finditer(r"(?i)\banswer\s*:", answer or ""))
    if not marks:
        return None if final_answer(answer).strip() else "no final answer"
    rest = re.sub(r"^[*_`\s]+|[*_`\s.]+$", "", answer[marks[-1].end():])
    if not rest or re.fullmatch(r"<[^>]*>|[-.…]+", rest):
        return "the 'Answer:' line is empty"
    return None


STOP_WORDS = frozenset("""a an the of in on at to for from by with about as into over under and or but if then so
is are was were be been being am do does did has have had can could will would shall should may might must what
which who whom whose when where why how this that these those it its it's there their they them he she his her
i me my you your we our us name tell please say give""".split())


def content_tokens(text: str, tokenize) -> list[str]:
    """A text's stemmed tokens (rouge-score's tokenizer) without the function words of STOP_WORDS."""
    return [t for t in tokenize(text) if t not in STOP_WORDS]


def lcs_f(a: list[str], b: list[str]) -> float:
    """ROUGE-L's F-measure (2·LCS / (m + n)) of two token lists."""
    if not a or not b:
        return float(a == b)
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b):
            cur.append(prev[j] + 1 if x == y else max(prev[j + 1], cur[j]))
        prev = cur
    return 2 * prev[-1] / (len(a) + len(b))


class HeldOutQuestions:
    """The test split's questions, to drop a synthesized question that is an exact or near duplicate of one
    (decontamination: the test score must not measure recall of a test question the teacher rewrote verbatim).

    Near: ROUGE-L over the content words (stemmed, function words of STOP_WORDS left out) at or above `threshold`
    (adapter.test_overlap_rouge). Over every word, short questions that ask for different things collide ("What is
    the language of Zorbia?" and "What is the capital of Zorbia?" share 5 of 6 tokens); over content words they
    do not ("language zorbia" against "capital zorbia": 0.5), while a copy with other function words still does
    ("biggest festival zorbia" both ways: 1.0). A paraphrase that says more ("Which language is spoken in
    Zorbia?": 0.8) is a new phrasing, not a copy, and is kept."""

    def __init__(self, prompts: list[str], threshold: float):
        from rouge_score.tokenizers import DefaultTokenizer

        self._tok = DefaultTokenizer(use_stemmer=True).tokenize
        self.threshold = threshold
        self.exact = {normalize(p): p for p in prompts}
        self.content = [(p, content_tokens(p, self._tok)) for p in prompts]

    def match(self, question: str) -> str | None:
        """The test question this one duplicates, or None."""
        hit = self.exact.get(normalize(question))
        if hit is not None:
            return hit
        mine = content_tokens(question, self._tok)
        n = len(mine)
        for p, theirs in self.content:
            m = len(theirs)
            if n + m == 0 or 2 * min(n, m) / (n + m) < self.threshold:  # the LCS is at most the shorter list
                continue
            if lcs_f(mine, theirs) >= self.threshold - 1e-12:
                return p
        return None
