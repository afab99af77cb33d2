"""Answer checkers: pure functions that score a model's answer against a reference in [0, 1].

The algorithm page (§0) fixes how short answers are judged: both sides are normalised (case, punctuation, articles,
number formats) and the answer counts as right when it *contains* the reference as whole words. Math answers are
compared as numbers with math-verify on the model's final answer; free text with ROUGE-L. `final_answer` pulls the
final answer out of a step-by-step solution (used to compare teacher samples when voting), `extract_code` the program
out of a reply with Markdown code fences. Nothing here does I/O or runs code (code execution is tasks.sandbox).
"""
from __future__ import annotations

import logging
import re
import unicodedata
from fractions import Fraction
from functools import lru_cache
from typing import Callable

__all__ = ["normalize", "contains_check", "exact_check", "numeric_check", "rouge_l", "rouge_check", "final_answer",
           "final_number", "extract_code", "is_number", "CHECKERS", "score"]

_ARTICLES = frozenset({"a", "an", "the"})
_MINUS = {"\u2212": "-", "\u2013": "-", "\u2014": "-", "\ufe63": "-", "\uff0d": "-"}
# Thousands separators: 1,000 and 12,345,678 (but not the list 1,2,3).
_THOUSANDS = re.compile(r"(?<![\d,])(\d{1,3})((?:,\d{3})+)(?![\d,]*\d)")
# A decimal number not part of a version string (1.2.3) or a longer token.
_DECIMAL = re.compile(r"(?<![\d.])(\d+)\.(\d+)(?![\d]|\.\d)")
# A number as written in an answer: optional sign, thousands groups, decimals, a simple fraction.
_NUMBER = re.compile(r"(?<![\w.])-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:\s*/\s*\d+(?:\.\d+)?)?(?![\d])"
                     r"|(?<![\w.])-?\.\d+")


def _canon_decimal(m: re.Match) -> str:
    whole, frac = m.group(1), m.group(2).rstrip("0")
    return f"{whole}.{frac}" if frac else whole


def _unify(text: str) -> str:
    text = unicodedata.normalize("NFKC", str(text))
    for bad, good in _MINUS.items():
        text = text.replace(bad, good)
    return text


def normalize(text: str | None) -> str:
    """Lowercase, drop punctuation and articles, collapse whitespace, canonicalise numbers.

    "1,000" -> "1000", "12.0" -> "12", "12.50" -> "12.5"; a decimal point inside a number and a leading minus sign are
    kept, every other punctuation or symbol character becomes a space (apostrophes are removed: "don't" -> "dont").
    """
    if text is None:
        return ""
    s = _unify(text).lower()
    s = _THOUSANDS.sub(lambda m: m.group(1) + m.group(2).replace(",", ""), s)
    s = _DECIMAL.sub(_canon_decimal, s)
    out: list[str] = []
    n = len(s)
    for i, ch in enumerate(s):
        cat = unicodedata.category(ch)
        if cat[0] in "PS":
            prev_digit = i > 0 and s[i - 1].isdigit()
            next_digit = i + 1 < n and s[i + 1].isdigit()
            if ch == "." and prev_digit and next_digit:
                out.append(ch)
            elif ch == "-" and next_digit and (i == 0 or not s[i - 1].isalnum()):
                out.append(ch)
            elif ch in "'\u2019`":
                continue
            else:
                out.append(" ")
        else:
            out.append(ch)
    return " ".join(tok for tok in "".join(out).split() if tok not in _ARTICLES)


def _contains_tokens(haystack: list[str], needle: list[str]) -> bool:
    k = len(needle)
    return any(haystack[i:i + k] == needle for i in range(len(haystack) - k + 1))


def contains_check(answer: str | None, reference: str | None) -> float:
    """1.0 when the normalised reference occurs in the normalised answer as whole words, else 0.0.

    A reference that normalises to nothing (e.g. just "the") only matches an answer that also normalises to nothing.
    """
    ref = normalize(reference).split()
    ans = normalize(answer).split()
    if not ref:
        return float(not ans)
    return 1.0 if _contains_tokens(ans, ref) else 0.0


def exact_check(answer: str | None, reference: str | None) -> float:
    """1.0 when answer and reference are equal after normalisation, else 0.0."""
    return 1.0 if normalize(answer) == normalize(reference) else 0.0


# ---------------------------------------------------------------------------------------------------------------------
# Final answers and numbers


def _boxed_contents(text: str) -> list[tuple[int, str]]:
    found = []
    for m in re.finditer(r"\\(?:boxed|fbox)\s*\{", text):
        depth, i = 1, m.end()
        while i < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        if depth == 0:
            found.append((m.start(), text[m.end():i - 1]))
    return found


_MARKERS = [
    re.compile(r"####\s*([^\n]*)"),
    re.compile(r"\banswer\s*:\s*([^\n]*)", re.IGNORECASE),
    re.compile(r"\banswer\s+is\s*:?\s*([^\n]*)", re.IGNORECASE),
]


def _final_segment(text: str) -> str | None:
    """The text after the last final-answer marker (####, Answer:, answer is, \\boxed{}), or None without one."""
    best: tuple[int, str] | None = None
    for pos, content in _boxed_contents(text):
        if best is None or pos >= best[0]:
            best = (pos, content)
    for pat in _MARKERS:
        for m in pat.finditer(text):
            if m.group(1).strip() and (best is None or m.start() >= best[0]):
                best = (m.start(), m.group(1))
    return None if best is None else best[1]


def _clean(ans: str) -> str:
    prev = None
    while ans != prev:
        prev = ans
        ans = re.sub(r"^[*_`\s]+|[*_`\s]+$", "", ans).rstrip(".").strip()
        if len(ans) >= 2 and ans[0] == ans[-1] == "$":
            ans = ans[1:-1].strip()
    return ans


def final_answer(text: str | None) -> str:
    """The final answer of a step-by-step solution.

    The text after the last "Answer: X", "#### X", "the answer is X" or \\boxed{X} (rest of that line), else the last
    non-empty line; surrounding Markdown emphasis, $...$ and a trailing period are removed.
    """
    if not text:
        return ""
    text = _unify(text)
    seg = _final_segment(text)
    if seg is None:
        lines = [ln for ln in text.strip().splitlines() if ln.strip()]
        seg = lines[-1] if lines else ""
    return _clean(seg)


def stated_final_answer(text: str | None) -> str | None:
    """The final answer a text states after its last marker ("Answer: X", "#### X", "the answer is X", \\boxed{X}),
    cleaned as `final_answer` cleans it; None when the text has no marker (nothing is stated as final)."""
    if not text:
        return None
    seg = _final_segment(_unify(text))
    return None if seg is None else _clean(seg)


def final_number(text: str | None) -> str | None:
    """The model's final number as a plain string ("1,234.50" -> "1234.50"), or None when the text has none.

    The first number after the last "####", "answer is", "Answer:" or \\boxed{}; else the last number in the text.
    """
    if not text:
        return None
    text = _unify(text)
    seg = _final_segment(text)
    if seg is not None:
        m = _NUMBER.search(seg)
        if m:
            return re.sub(r"[,\s]", "", m.group(0))
    nums = _NUMBER.findall(text)
    return re.sub(r"[,\s]", "", nums[-1]) if nums else None


def is_number(text: str | None) -> bool:
    """True when the text is one number, possibly with $, %, thousands commas, or a GSM8K "... #### 72" tail."""
    if text is None:
        return False
    s = _unify(text).strip()
    if "####" in s:
        s = s.rsplit("####", 1)[1].strip()
    s = s.strip().lstrip("$").rstrip("%").strip()
    return bool(s) and _NUMBER.fullmatch(s) is not None


class _DropTimeoutWarning(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "Timeout is disabled" not in record.getMessage()


for _name in ("math_verify.parser", "math_verify.grader"):
    logging.getLogger(_name).addFilter(_DropTimeoutWarning())


@lru_cache(maxsize=4096)
def _mv_parse(s: str):
    from math_verify import parse

    # parsing_timeout=None: math-verify's timeout uses signal.alarm, which fails outside the main thread. The strings
    # parsed here are short (a number or a bounded LaTeX answer), so they cannot hang the parser.
    return parse(s, parsing_timeout=None)


def _to_fraction(s: str) -> Fraction | None:
    try:
        return Fraction(s.replace(" ", ""))
    except (ValueError, ZeroDivisionError):
        return None


def _same_number(gold: str, pred: str) -> bool:
    """Equal as exact rationals when both are plain numbers ("1/2" == "0.50"), else by math-verify."""
    g, p = _to_fraction(gold), _to_fraction(pred)
    if g is not None and p is not None:
        return g == p
    try:
        from math_verify import verify

        gp, pp = _mv_parse(gold), _mv_parse(pred)
        return bool(gp and pp and verify(gp, pp, timeout_seconds=None))
    except Exception:  # math-verify raises on odd input: count it as not equal
        return False


def numeric_check(answer: str | None, reference: str | None) -> float:
    """1.0 when the model's final number equals the reference's, else 0.0 (exactly; math-verify for LaTeX).

    The reference's number is what follows "####" (GSM8K: "... #### 72"), else the reference itself; the model's is
    `final_number(answer)`. A reference that is not a plain number (e.g. "\\frac{1}{2}") is compared with math-verify
    against the model's `final_answer`.
    """
    if not answer or reference is None:
        return 0.0
    ref = _unify(reference)
    gold_text = ref.rsplit("####", 1)[1] if "####" in ref else ref
    gold_text = gold_text.strip()
    if is_number(gold_text):
        gold = re.sub(r"[,\s$%]", "", _NUMBER.search(gold_text.lstrip("$")).group(0))
        pred = final_number(answer)
        if pred is not None and _same_number(gold, pred):
            return 1.0
        latex = final_answer(answer)[:200]
        return 1.0 if "\\" in latex and _same_number(f"${gold}$", f"${latex.strip('$')}$") else 0.0
    pred_text = final_answer(answer)[:200]
    gold_text = gold_text[:200]
    if not pred_text or not gold_text:
        return 0.0
    wrap = lambda s: s if "$" in s else f"${s}$"  # noqa: E731  math-verify's LaTeX extraction wants delimiters
    return 1.0 if _same_number(wrap(gold_text), wrap(pred_text)) else 0.0


# ---------------------------------------------------------------------------------------------------------------------
# ROUGE-L


@lru_cache(maxsize=1)
def _rouge_scorer():
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)


def rouge_l(a: str | None, b: str | None) -> float:
    """ROUGE-L F-measure between two texts (rouge-score, Porter stemming); symmetric, in [0, 1]."""
    a, b = (a or "").strip(), (b or "").strip()
    if not a and not b:
        return 1.0
    if not a or not b:
        return 0.0
    return float(_rouge_scorer().score(b, a)["rougeL"].fmeasure)


def rouge_check(answer: str | None, reference: str | None) -> float:
    """The answer's ROUGE-L F-measure against the reference (a graded score, not 0/1)."""
    if reference is None:
        return 0.0
    return rouge_l(answer, reference)


# ---------------------------------------------------------------------------------------------------------------------
# Code


_FENCE = re.compile(r"```[ \t]*([\w+-]*)[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL)


def extract_code(text: str | None, entry_point: str | None = None) -> str:
    """The program in a reply: the fenced code block that defines `entry_point` (else the first Python block, else the
    longest block); an unterminated fence (a truncated reply) runs to the end; without fences, the text itself."""
    if not text:
        return ""
    blocks = [(lang.lower(), body) for lang, body in _FENCE.findall(text)]
    if not blocks:
        return text
    if entry_point:
        pat = re.compile(rf"^\s*(?:async\s+)?def\s+{re.escape(entry_point)}\s*\(", re.MULTILINE)
        for _, body in blocks:
            if pat.search(body):
                return body
    for lang, body in blocks:
        if lang in ("python", "py", "python3"):
            return body
    return max(blocks, key=lambda b: len(b[1]))[1]


CHECKERS: dict[str, Callable[[str | None, str | None], float]] = {
    "contains": contains_check,
    "exact": exact_check,
    "numeric": numeric_check,
    "rouge": rouge_check,
}


def score(checker: str, answer: str | None, reference: str | None) -> float:
    """Score with a named text checker ("contains", "exact", "numeric", "rouge"); code is scored by task packs."""
    try:
        fn = CHECKERS[checker]
    except KeyError:
        raise ValueError(f"unknown text checker {checker!r}; choose one of {sorted(CHECKERS)}") from None
    return float(min(1.0, max(0.0, fn(answer, reference))))
