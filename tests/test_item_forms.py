"""Free-text forms (agents/item_forms.py): under the grammar every reply of a teacher, even noise, is a question the
Adapter parses, or steps and a non-empty "Answer:" line, or the one digit of an item level, within the call's token
budget; the form travels with the request to in-process teachers only, and is part of their cache key."""
from __future__ import annotations

import re

import pytest
from conftest import varied_tiny_model

from agents.diagnostician import parse_level
from agents.item_checks import parse_question
from agents.item_forms import LEVEL_FORM, answer_form, answer_steps, question_form
from agents.teacher import Teacher, TeacherRequest
from agents.teacher.hf_chat import clear_loaded_models
from ioa_state.config import TeacherConfig
from tasks.checkers import final_answer
from training.generate import generate
from training.grammar import Regex


@pytest.fixture(scope="module")
def tiny():
    return varied_tiny_model()


def test_forms_take_what_the_adapter_parses_and_refuse_what_it_drops():
    q = question_form(40)
    for good in ("What is the capital of Zorbia?", "Which river flows through Vell, the capital?", "A b cdef?"):
        assert re.fullmatch(q, good) and parse_question(good) == good
    for bad in ("What's that?", "The capital is Vell.", "What is it?\nAnd why?", "what is the capital of Zorbia?"):
        assert not re.fullmatch(q, bad), bad
    a = answer_form(96)
    assert re.fullmatch(a, "Zorbia is a country.\nIts capital is Vell.\nAnswer: Vell")
    assert re.fullmatch(a, "Answer: 42")
    for bad in ("Answer: ", "Its capital is Vell.", "one\ntwo\nthree\nfour\nAnswer: x"):
        assert not re.fullmatch(a, bad), bad
    one = answer_form(96, answer_steps(1, by_level=True))  # adapter.answer_steps_by_level, a level-1 module
    assert re.fullmatch(one, "Its capital is Vell.\nAnswer: Vell") and re.fullmatch(one, "Answer: Vell")
    assert not re.fullmatch(one, "Zorbia is a country.\nIts capital is Vell.\nAnswer: Vell")
    assert [answer_steps(level, True) for level in (0, 1, 2, 3, 4)] == [1, 1, 2, 3, 3]
    assert {answer_steps(level, False) for level in (1, 2, 3)} == {3} and answer_form(96, 3) == a


def test_noise_under_the_forms_parses_and_closes_within_the_budget(tiny):
    """The tiny random model writes noise: each reply still matches its form and ends before max_tokens."""
    model, tok = tiny
    convs = [[{"role": "user", "content": f"Rewrite question {i}."}] for i in range(4)]
    qs = generate(model, tok, convs, max_new_tokens=40, temperature=1.0, seeds=[1, 2, 3, 4],
                  constraints=[Regex(question_form(40))] * 3 + [None])
    for g in qs[:3]:
        assert g.finished and re.fullmatch(question_form(40), g.text), g
        assert parse_question(g.text) == g.text.strip()
    answers = generate(model, tok, convs, max_new_tokens=96, temperature=1.0, seeds=[5, 6, 7, 8],
                       constraints=[Regex(answer_form(96))] * 4)
    for g in answers:
        assert g.finished and re.fullmatch(answer_form(96), g.text), g
        assert final_answer(g.text)  # the checker finds a final answer on the template's line
    levels = generate(model, tok, convs, max_new_tokens=6, temperature=1.0, seeds=[9, 10, 11, 12],
                      constraints=[Regex(LEVEL_FORM)] * 4)
    assert all(g.finished and parse_level(g.text) == int(g.text) for g in levels), levels  # the diagnosis's levels


def test_the_form_goes_to_in_process_teachers_only_and_keys_their_cache(tmp_path):
    clear_loaded_models()
    events: list[dict] = []
    t = Teacher(TeacherConfig(spec="hf:tiny", concurrency=4), tmp_path, trace=events.append)
    form = question_form(40)
    req = TeacherRequest([{"role": "user", "content": "Rewrite: what is 2 + 2?"}], 0.7, 40, form=form)
    (rep,) = t.ask([req])
    assert rep.error is None and re.fullmatch(form, rep.text), rep
    plain = TeacherRequest(req.messages, 0.7, 40)
    assert t._make_call(req).key != t._make_call(plain).key  # the form is part of an in-process call's key
    t.close()
    remote = Teacher(TeacherConfig(spec="openai-compatible:m", base_url="http://127.0.0.1:9/v1"), tmp_path / "r")
    assert remote._make_call(req).form is None  # a remote server gets the prompt alone
    assert remote._make_call(req).key == remote._make_call(plain).key  # and its cache is shared with plain calls
    remote.close()
    clear_loaded_models()
