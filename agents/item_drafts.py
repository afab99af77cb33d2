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


def answer_text(draft: ItemDraft) -> str:
    """The answer the student learns: the steps, one a line, then the template's "Answer: ..." line (an "Answer:"
    the teacher put inside the answer field is not repeated; an empty answer stays empty, for the judge to drop)."""
    final = re.sub(r"(?i)^\s*(final\s+)?answer\s*:\s*", "", draft.answer.strip())
    steps = [s.strip() for s in draft.steps if s.strip()]
    return "\n".join(steps + [f"Answer: {final}".rstrip()])
