"""The free-text forms of the Adapter's two teacher calls (adapter.text_form) and of the diagnosis's item-level
call, as regular expressions that an in-process teacher generates under (TeacherRequest.form; xgrammar for hf:,
vLLM's structured outputs for vllm:).

A small teacher asked to "reply with the new question only" often answers the question instead, or writes a
paragraph around it: a third of the candidates used not to parse. Under `question_form` the reply is one line of
three words or more that starts like a sentence and ends at its first question mark, so every reply holds a
question (whether it is a good one is still the screen's and the judge's business). Under `answer_form` the reply is
at most ANSWER_STEPS short step lines (or, under `adapter.answer_steps_by_level`, as many as the module's current
difficulty level), then the fixed template's "Answer: <answer>" line with something after the
colon, so the checker and the vote always find the final answer where the template puts it. Both bounds are in
characters, from the call's token budget at CHARS_PER_TOKEN, so that the form closes before max_tokens cuts it.
Under `LEVEL_FORM` the item-level reply is the one digit its prompt asks for (the packaged teacher used to answer
with words: 60 of 72 replies named no level, and those items took their module's level).
"""
from __future__ import annotations

CHARS_PER_TOKEN = 3  # a safe floor for English text with SmolLM2's and similar BPE vocabularies (about 4 on average)
ANSWER_STEPS = 3
ANSWER_MAX_CHARS = 60  # the final answer itself: a name, a number or a few words
LEVEL_FORM = "[123]"  # prompts/item_level.txt: "Reply with one digit: 1, 2 or 3."


def question_form(max_tokens: int) -> str:
    """One line of at least three words and eight characters (what `parse_question` takes for a question): a capital
    letter or digit first, no question mark or newline inside, '?' last; within max_tokens for first words of usual
    length (two 30-character words would overrun it: such a reply is cut and dropped as `cut_question`)."""
    longest = max(40, CHARS_PER_TOKEN * max_tokens)
    return rf"[A-Z0-9][^\n? ]{{0,30}} [^\n? ]{{1,30}} [^\n?]{{4,{longest - 12}}}\?"


def question_call_form(cfg) -> str | None:
    """The form of a run's question calls (adapter.text_form): the Adapter's, and every bench arm's alike, so that no
    arm's yield gains from decoding alone."""
    return question_form(cfg.teacher.question_max_tokens) if cfg.adapter.text_form else None


def answer_form(max_tokens: int, steps: int = ANSWER_STEPS) -> str:
    """Up to `steps` step lines (ANSWER_STEPS by default), then 'Answer: ' and a non-empty final answer; within
    max_tokens (a step line may be as long as ANSWER_STEPS lines would share the room)."""
    room = max(ANSWER_STEPS * 24, CHARS_PER_TOKEN * max_tokens - ANSWER_MAX_CHARS - 10)
    step = max(20, room // ANSWER_STEPS - 1)
    return rf"(?:[^\n]{{1,{step}}}\n){{0,{steps}}}Answer: [^\n ][^\n]{{0,{ANSWER_MAX_CHARS - 1}}}"


def answer_steps(level: int, by_level: bool) -> int:
    """How many step lines the answer form allows: the module's current difficulty level (1-3) under
    adapter.answer_steps_by_level, else ANSWER_STEPS."""
    return min(ANSWER_STEPS, max(1, level)) if by_level else ANSWER_STEPS
