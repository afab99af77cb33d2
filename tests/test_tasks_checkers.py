"""Worked examples for tasks.checkers: normalisation, contains/exact/numeric/ROUGE-L checks, final answers, code."""
from __future__ import annotations

import threading

import pytest

from tasks import checkers
from tasks.checkers import (
    contains_check,
    exact_check,
    extract_code,
    final_answer,
    final_number,
    is_number,
    normalize,
    numeric_check,
    rouge_check,
    rouge_l,
)


@pytest.mark.parametrize("text, expected", [
    ("The Answer is 1,000 dollars.", "answer is 1000 dollars"),
    ("It costs $12.0!", "it costs 12"),
    ("12.50 and 3.0", "12.5 and 3"),
    ("An apple, the PEAR & a fig", "apple pear fig"),
    ("  lots \n of\tspace  ", "lots of space"),
    ("-5 degrees, well-known", "-5 degrees well known"),
    ("don't", "dont"),
    ("the list 1,2,3", "list 1 2 3"),
    ("12,345,678.00", "12345678"),
    ("\u22127", "-7"),
    (None, ""),
])
def test_normalize(text, expected):
    assert normalize(text) == expected


def test_contains_check_whole_words():
    assert contains_check("The capital of France is Paris.", "paris") == 1.0
    assert contains_check("Parisian cuisine", "Paris") == 0.0  # not a whole word
    assert contains_check("I think it is the Eiffel Tower!", "eiffel tower") == 1.0
    assert contains_check("Tower Eiffel", "Eiffel Tower") == 0.0  # order matters
    assert contains_check("She makes $1,000.00 a week", "1000") == 1.0
    assert contains_check("about 10000", "1000") == 0.0
    assert contains_check("-18", "18") == 0.0
    assert contains_check("anything", "the") == 0.0  # empty after normalisation
    assert contains_check("", "") == 1.0
    assert contains_check(None, "x") == 0.0


def test_exact_check():
    assert exact_check("The Paris.", "paris") == 1.0
    assert exact_check("Paris, France", "paris") == 0.0
    assert exact_check("12.0", "12") == 1.0


@pytest.mark.parametrize("answer, reference, expected", [
    ("She sells 9 eggs, 9 * 2 = 18.\nAnswer: 18", "16 - 3 - 4 = 9 ... #### 18", 1.0),
    ("Answer: $18.00", "#### 18", 1.0),
    ("16-3-4=9 and 9*2=18 dollars", "#### 18", 1.0),  # no marker: last number
    ("The answer is 17. Check: 18 is wrong", "#### 18", 0.0),  # marker wins over the last number
    ("#### 1,450,000", "#### 1,450,000", 1.0),
    ("Answer: 1450001", "#### 1,450,000", 0.0),  # exact, no relative tolerance
    ("Answer: 0.5", "1/2", 1.0),
    ("Answer: \\frac{1}{2}", "#### 0.5", 1.0),
    ("so we get \\boxed{\\frac{1}{2}}", "\\dfrac{1}{2}", 1.0),
    ("Answer: -3", "3", 0.0),
    ("no number here", "#### 5", 0.0),
    ("", "5", 0.0),
])
def test_numeric_check(answer, reference, expected):
    assert numeric_check(answer, reference) == expected


def test_numeric_check_in_threads():
    # math-verify's own timeout uses signal.alarm (main thread only); ours must work in worker threads
    out = []
    t = threading.Thread(target=lambda: out.append(numeric_check("Answer: \\frac{3}{4}", "0.75")))
    t.start()
    t.join()
    assert out == [1.0]


@pytest.mark.parametrize("text, expected", [
    ("Step 1: ...\nStep 2: ...\nAnswer: **42**.", "42"),
    ("work\n#### 7", "7"),
    ("So the answer is Paris.", "Paris"),
    ("We get \\boxed{\\frac{1}{2}} in the end", "\\frac{1}{2}"),
    ("first line\nlast line.", "last line"),
    ("The answer is 5.\nFinal Answer: 6", "6"),
    ("Answer: $5$", "5"),
    ("", ""),
])
def test_final_answer(text, expected):
    assert final_answer(text) == expected


def test_final_number():
    assert final_number("I have 3 apples and 1,234.50 dollars") == "1234.50"
    assert final_number("Answer: 12 apples and 3 pears") == "12"
    assert final_number("no digits") is None
    assert final_number("The answer is 3/4") == "3/4"


def test_is_number():
    assert is_number("#### 72") and is_number("$1,000") and is_number("50%") and is_number("-0.5")
    assert not is_number("Paris") and not is_number("3 apples") and not is_number(None)


def test_rouge():
    assert rouge_l("the cat sat on the mat", "the cat sat on the mat") == pytest.approx(1.0)
    assert rouge_l("the cat sat on the mat", "the cat sat on a mat") == pytest.approx(5 / 6)
    assert rouge_l("the cat sat", "") == 0.0
    assert rouge_check("hello world", "goodbye moon") == 0.0
    assert 0.0 < rouge_check("cats are sitting", "the cat sat") < 1.0  # stemming: cats -> cat
    assert rouge_check("x", None) == 0.0


def test_extract_code():
    reply = "Here you go:\n```python\ndef f(x):\n    return x + 1\n```\nand a test:\n```\nassert f(1) == 2\n```"
    assert extract_code(reply, "f") == "def f(x):\n    return x + 1\n"
    assert extract_code("```py\nprint(1)\n```") == "print(1)\n"
    assert extract_code("```python\ndef g():\n    return 1") == "def g():\n    return 1"  # truncated reply
    assert extract_code("return x") == "return x"  # no fences


def test_score_dispatch():
    assert checkers.score("contains", "It is Paris", "paris") == 1.0
    assert checkers.score("numeric", "Answer: 4", "#### 4") == 1.0
    with pytest.raises(ValueError):
        checkers.score("code", "x", "y")
