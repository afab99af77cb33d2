"""Structured items (adapter.item_format json): the schema of one item the teacher writes in one call, and the
answer text made from it.

The paper's item is a question, its step-by-step solution and a final answer. Every string and the list of steps are
bounded, so that under a grammar (constrained decoding) the JSON closes within ITEM_MAX_TOKENS: about 560 characters
of content and keys at 3 or more characters a token. The bounds also keep the item inside the student's context.
"""
from __future__ import annotations

import re
from typing import Annotated

from pydantic import BaseModel, Field

ITEM_MAX_TOKENS = 192  # the reply budget of one structured item call (question + steps + answer, JSON included)
QUESTION_MAX_CHARS = 160  # a question that fills this bound was closed by the grammar, not by the teacher: cut


class ItemDraft(BaseModel):
    """One practice item: a new question, its solution in a few short steps, and the final answer alone."""

    question: str = Field(min_length=8, max_length=QUESTION_MAX_CHARS, description="the new question, one sentence "
                                                                         "ending with a question mark")
    steps: list[Annotated[str, Field(max_length=100)]] = Field(min_length=1, max_length=3,
                                                                description="the solution in short steps")
    answer: str = Field(max_length=60, description="the final answer only: a name, a number or a few words")


_ANSWER_MARK = re.compile(r"(?i)^\s*(final\s+)?answer\s*:\s*")


def question_text(draft: ItemDraft) -> str:
    """The question as the student sees it (a "Question:" label the teacher wrote in front of it removed)."""
    return re.sub(r"(?i)^\s*(new question|question|q)\s*[:\-]\s*", "", draft.question).strip()


def answer_text(draft: ItemDraft) -> str:
    """The answer the student learns: the steps, one a line, then the template's "Answer: ..." line (an "Answer:"
    label inside the answer field, or a last step that is an "Answer:" line, is not repeated; an empty answer stays
    empty, for the judge to drop)."""
    final = _ANSWER_MARK.sub("", draft.answer.strip())
    steps = [s.strip() for s in draft.steps if s.strip()]
    if steps and _ANSWER_MARK.match(steps[-1]):
        steps.pop()
    return "\n".join(steps + [f"Answer: {final}".rstrip()])
