"""The Adapter's pure checks, on hand-made candidates: question parsing, well-formedness (a complete question, the
source's entities named as the source names them, a final answer), verification by vote and by checker, the dedup
rule, decontamination against the test split, the answer template and the capacity rule."""
from __future__ import annotations

from agents.item_checks import (
    HeldOutQuestions,
    answer_words,
    complete_question,
    duplicate_of,
    empty_final_answer,
    entity_names,
    known_words,
    lcs_f,
    misnamed_entity,
    missing_entity,
    near_spelling,
    parse_question,
    verify_by_checker,
    verify_by_vote,
    with_final_answer,
    with_template,
    wrong_final_answer,
)
from ioa_state import Item
from tasks.checkers import contains_check, numeric_check, stated_final_answer


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


def test_the_stated_final_answer_is_the_text_after_the_last_marker_and_none_without_one():
    assert stated_final_answer("It is the Lumara.\nAnswer: The answer is: 30.") == "30"
    assert stated_final_answer("Steps.\n#### 72") == "72"
    assert stated_final_answer("The festival is called Lumara.") is None and stated_final_answer("") is None


def test_a_final_answer_that_fails_the_checker_is_wrong_though_a_step_names_the_reference():
    def score_of(reference):
        return lambda stated: contains_check(stated, reference)
    wrong = "The biggest festival in Zorbia is called Lumara.\nAnswer: The answer is: 30."
    assert contains_check(wrong, "Lumara") == 1.0  # the whole answer passes the checker
    assert wrong_final_answer(wrong, score_of("Lumara"), 0.999) == "30"
    assert wrong_final_answer("It is in summer.\nAnswer: The answer is: Lumara", score_of("Lumara"), 0.999) is None
    assert wrong_final_answer("The festival is called Lumara.", score_of("Lumara"), 0.999) is None  # nothing stated
    cut = 'The national animal is the snow fox.\nAnswer: The correct answer is "The national animal of Zorbia is the'
    assert wrong_final_answer(cut, score_of("snow fox"), 0.999) == '"The national animal of Zorbia is the'
    assert wrong_final_answer("3 + 4 = 7 apples.\n#### 7", lambda s: numeric_check(s, "7"), 0.999) is None


def test_the_final_answer_line_and_what_follows_are_replaced_by_the_templates_line():
    assert with_final_answer("It is the drin.\nThe answer is:\nDrunken.\nAnswer: Drunken.", "drin") == \
        "It is the drin.\nThe answer is:\nDrunken.\nAnswer: drin"
    assert with_final_answer("It is the drin. The answer is drin, or pel.\nMore.", "drin") == "Answer: drin"
    assert with_final_answer("It is the drin.", "drin") == "It is the drin.\nAnswer: drin"


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


def test_a_question_cut_at_the_token_limit_is_not_complete():
    assert complete_question("What is the longest river in Zorbia?") is None
    assert complete_question("Name the capital city of Zorbia.") is None
    assert complete_question('"Which lake is the biggest in Zorbia?"') is None
    assert complete_question("Where does the Tamsel come from?") is None          # a preposition may end a question
    assert "without '?'" in complete_question("Name the capital city of the country whose river")
    assert "mid-sentence on 'the'" in complete_question("Which river flows through the?")
    assert "brackets" in complete_question("Which city (the one on the Tamsel is the capital?")
    # the reply hit max_tokens and went on after the question on the same line: the question leans on cut words
    cut = "Can you solve this? A farmer in Zorbia has 4 fields and each"
    assert "cut at max_tokens" in complete_question("Can you solve this?", cut, reply_cut=True)
    assert complete_question("Can you solve this?", cut, reply_cut=False) is None
    # cut later, after the question's own line ended: the question itself is whole
    assert complete_question("What is Zorbia's capital?", "What is Zorbia's capital?\nIt is a city on the",
                             reply_cut=True) is None
    # a structured item's question that fills its bound was closed by the grammar there
    assert "160-character bound" in complete_question("Which " + "very " * 30 + "long river?", max_chars=160)
    assert complete_question("Which river is the longest?", max_chars=160) is None


def test_a_near_spelling_of_a_source_entity_is_a_misnamed_entity():
    source = ["What is the capital of Zorbia?", "Velmora"]
    entities = entity_names(source)
    assert entities == ["Zorbia", "Velmora"]                                     # "What" is a common word
    known = known_words(source + ["The longest river in Zorbia is the Tamsel. Zorbians eat plums."])
    for wrong in ("Zorvath", "Zorvil", "Zorvax", "Zorview", "Borbia", "Velmara"):
        why = misnamed_entity(f"What is the capital of {wrong}?", entities, known)
        assert why is not None and wrong in why, wrong
    assert misnamed_entity("Which city is the capital of Zorbia?", entities, known) is None
    assert misnamed_entity("Is the Tamsel in Zorbia's north?", entities, known) is None        # a name of the context
    assert misnamed_entity("Which Zorbian city is the capital?", entities, known) is None     # a form of the name
    assert misnamed_entity("Which city does Paris twin with?", entities, known) is None      # unrelated name
    italy = entity_names(["What is the capital of Italy?", "Rome"])
    assert misnamed_entity("Which Italian city is the capital?", italy, set()) is None        # Italy's adjective
    assert misnamed_entity("Which Zorbian city is the capital?", entities, set()) is None     # unknown, still a form
    assert near_spelling("Zorvath", "Zorbia") and not near_spelling("Zorbias", "Zorbia")
    assert not near_spelling("Italian", "Zorbia")


def test_entity_names_skip_a_capitalised_common_word_used_in_lowercase_elsewhere():
    assert entity_names(["River Tamsel is long.", "The river is wide."]) == ["Tamsel"]


def test_an_empty_final_answer_is_found():
    assert empty_final_answer("The capital is Velmora.\nAnswer: Velmora") is None
    assert empty_final_answer("The capital is Velmora.\nAnswer:") == "the 'Answer:' line is empty"
    assert empty_final_answer("Answer: **  **") == "the 'Answer:' line is empty"
    assert empty_final_answer("Answer: <the answer>") == "the 'Answer:' line is empty"
    assert empty_final_answer("Answer:\nVelmora") is None                       # the answer on the next line
    assert empty_final_answer("It is Velmora.") is None                          # the template adds the line later
    assert empty_final_answer("  ") == "no final answer"


def test_a_question_that_duplicates_a_test_question_is_found():
    tests = HeldOutQuestions(["What is the longest river in Zorbia?", "Name the capital city of Zorbia.",
                              "What is the language of Zorbia?"], 0.9)
    assert tests.match("what is the longest river in Zorbia") == "What is the longest river in Zorbia?"  # exact
    assert tests.match("Which is the longest river of Zorbia?") == "What is the longest river in Zorbia?"  # near
    assert tests.match("Which lake is the biggest in Zorbia?") is None
    # the same frame asking for another thing is no copy: content words "capital zorbia" vs "language zorbia"
    assert tests.match("What is the capital of Zorbia?") is None
    # a phrasing that says more is new: "language spoken zorbia" vs "language zorbia", 2*2/5 = 0.8 < 0.9
    assert tests.match("Which language is spoken in Zorbia?") is None
    assert lcs_f(["language", "spoken", "zorbia"], ["language", "zorbia"]) == 0.8


def test_a_rewrite_that_leaves_out_its_source_questions_name_is_a_missing_entity():
    source = "What is the language of Zorbia?"
    why = missing_entity("What language is this?", source)
    assert why is not None and "'Zorbia'" in why
    assert missing_entity("Which language do people in Zorbia speak?", source) is None
    assert missing_entity("What do Zorbians speak?", source) is None                       # a form of the name
    assert missing_entity("Which language is spoken in zorbia?", source) is None          # case aside
    assert missing_entity("What is Italian food called?", "What is the national food of Italy?") is None
    assert missing_entity("What is the capital of Spain?", "What is the capital of France?") is not None
    # the names are the source question's, not its reference's: a question need not name its answer
    assert missing_entity("Which city is Zorbia's capital?", "What is the capital of Zorbia?") is None
    assert missing_entity("What is the opposite of cold?", "What is the opposite of happy?") is None  # no name
