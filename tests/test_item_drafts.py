"""Structured items (agents/item_drafts.py): the schema closes under a grammar within its token budget, and the
answer the student learns is the steps and the template's "Answer:" line."""
from __future__ import annotations

import json

from conftest import varied_tiny_model

from agents.item_drafts import ITEM_MAX_TOKENS, ItemDraft, answer_text, question_text
from training.generate import generate


def test_an_item_under_the_grammar_closes_within_its_token_budget():
    """The tiny random model writes noise that fills every bounded string: even so each reply's JSON closes."""
    model, tok = varied_tiny_model()
    convs = [[{"role": "user", "content": f"Write practice item {i} about rivers."}] for i in range(4)]
    out = generate(model, tok, convs, max_new_tokens=ITEM_MAX_TOKENS, temperature=1.0, seeds=[1, 2, 3, 4],
                   constraints=[ItemDraft.model_json_schema()] * 4)
    for g in out:
        assert g.finished and g.tokens_out < ITEM_MAX_TOKENS, g
        ItemDraft.model_validate(json.loads(g.text))


def test_answer_text_is_the_steps_then_one_answer_line():
    d = ItemDraft(question="Which river is the longest in Zorbia?", steps=["Recall the rivers.", " It is the Tamsel. "],
                  answer="Answer: Tamsel")
    assert answer_text(d) == "Recall the rivers.\nIt is the Tamsel.\nAnswer: Tamsel"
    assert answer_text(d.model_copy(update={"answer": " "})).endswith("\nAnswer:")   # left empty for the judge
    twice = d.model_copy(update={"steps": ["It is the Tamsel.", "Answer: Tamsel"], "answer": "Tamsel"})
    assert answer_text(twice) == "It is the Tamsel.\nAnswer: Tamsel"                  # one answer line
    assert question_text(d.model_copy(update={"question": "Question: Which river?"})) == "Which river?"
