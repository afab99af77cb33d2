"""The Adapter's pure checks, on hand-made candidates: question parsing, verification by vote and by checker, the
dedup rule, the answer template and the capacity rule."""
from __future__ import annotations

from agents.item_checks import (
    answer_words,
    duplicate_of,
    parse_question,
    verify_by_checker,
    verify_by_vote,
    with_template,
)
from ioa_state import Item


def test_parse_question_takes_a_quoted_question_or_the_first_line_ending_in_a_question_mark():
    assert parse_question('Sure! "Which river is the longest?" is my question.') == "Which river is the longest?"
    assert (
        parse_question("New question: What is the river of Zorbia?\nAnswer: Tamsel") == "What is the river of Zorbia?"
    )
    assert parse_question("The Tamsel.") is None and parse_question(None) is None


def test_verify_by_vote_needs_vote_agree_samples_on_one_final_answer():
    ok = verify_by_vote(["So 4.\nAnswer: 4", "Answer: 4", "Answer: 5", "Answer: 4"], vote_agree=3)
    assert ok.kept and ok.reference == "4" and ok.verification == {"method": "vote", "agree": 3, "samples": 4}
    no = verify_by_vote(["Answer: 4", "Answer: 5", "Answer: 6"], vote_agree=2)
    assert not no.kept and no.reason.startswith("vote: 1 of 3")


def test_verify_by_checker_keeps_the_source_reference():
    assert verify_by_checker("Tamsel.", 1.0, 0.999, "Tamsel").reference == "Tamsel"
    drop = verify_by_checker("No idea.", 0.0, 0.999, "Tamsel")
    assert not drop.kept and drop.reason.startswith("verification failed: checker score 0.00")


def test_duplicates_of_a_gate_item_with_the_same_answer_and_of_a_kept_item():
    gate = [Item(id="g", prompt="What is the river of Zorbia?", reference="Tamsel")]
    assert duplicate_of("What is the river of Zorbia ?", "Tamsel", "Tamsel", gate, [], 0.7)[1] == "gate item"
    assert duplicate_of("What is the river of Zorbia?", "Velmora", "Velmora", gate, [], 0.7) == (None, "")
    kept = [("Name the river of Zorbia.", "Tamsel")]
    assert duplicate_of("Name the river of Zorbia.", "Tamsel", "Tamsel", [], kept, 0.7)[1] == "kept item"


def test_template_and_capacity():
    assert with_template("It is Tamsel.", "Tamsel") == ("It is Tamsel.\nAnswer: Tamsel", True)
    assert with_template("It is Tamsel.\nAnswer: Tamsel", "Tamsel") == ("It is Tamsel.\nAnswer: Tamsel", False)
    assert answer_words(0.5, 0.7, 30, 60) == 30 and answer_words(0.7, 0.7, 30, 60) == 60
