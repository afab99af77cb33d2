"""Grammar-constrained generation (training/grammar.py through training.generate and the teacher client).

Fast tests use the tiny random model (SmolLM2's tokenizer): unconstrained it writes noise, so every reply that
parses shows the grammar at work. Slow ones use the packaged SmolLM2-135M-Instruct on the diagnostician's schemas.
"""
from __future__ import annotations

import json

import pytest
from conftest import varied_tiny_model
from pydantic import BaseModel, Field

from agents.teacher import Teacher, TeacherRequest
from agents.teacher import structured as so
from agents.teacher.hf_chat import clear_loaded_models
from ioa_state.config import TeacherConfig
from training.generate import generate
from training.grammar import grammar_book, model_vocab_size
from training.loading import load_model


class Step(BaseModel):
    text: str = Field(max_length=20)


class WorkedItem(BaseModel):
    """A nested list and bounded strings: every reply fits in the token budget."""

    question: str = Field(max_length=32)
    steps: list[Step] = Field(min_length=1, max_length=2)
    answer: str = Field(min_length=1, max_length=10)


class Verdict(BaseModel):
    correct: bool
    level: int = Field(ge=1, le=3)


ITEM, VERDICT = WorkedItem.model_json_schema(), Verdict.model_json_schema()
CONVS = [[{"role": "user", "content": q}] for q in
         ("Write a question about capitals.", "Is 2+2=4 right?", "Say hello.", "A sum question, please.")]


@pytest.fixture(scope="module")
def tiny():
    return varied_tiny_model()


def _valid(text: str, cls: type[BaseModel]) -> BaseModel:
    return cls.model_validate(json.loads(text))


def test_rows_with_different_schemas_and_none_share_one_batch(tiny):
    model, tok = tiny
    schemas = [ITEM, VERDICT, None, ITEM]
    out = generate(model, tok, CONVS, max_new_tokens=80, constraints=schemas, batch_size=4)
    for g, cls in zip(out, (WorkedItem, Verdict, None, WorkedItem)):
        if cls is not None:
            assert g.finished, g
            _valid(g.text, cls)
    assert list(json.loads(out[0].text)) == ["question", "steps", "answer"]  # the schema's order, not sorted
    free = generate(model, tok, [CONVS[2]], max_new_tokens=80)[0]
    assert out[2] == free  # the unconstrained row is untouched by its neighbours' grammars
    with pytest.raises(json.JSONDecodeError):
        json.loads(free.text)  # this model does not write JSON by itself


def test_reply_cut_at_max_tokens_is_unfinished(tiny):
    model, tok = tiny
    (g,) = generate(model, tok, CONVS[:1], max_new_tokens=4, constraints=[ITEM])
    assert not g.finished and g.tokens_out == 4 and so.cut_reply(g.text)
    with pytest.raises(ValueError, match="constraints"):
        generate(model, tok, CONVS, max_new_tokens=4, constraints=[ITEM])


def test_sampled_rows_under_a_grammar_stay_row_seeded_whatever_the_batch(tiny):
    model, tok = tiny
    schemas, seeds = [ITEM, VERDICT, None, ITEM], [11, 12, 13, 14]
    batched = generate(model, tok, CONVS, max_new_tokens=40, temperature=1.0, seeds=seeds, constraints=schemas)
    alone = [generate(model, tok, [CONVS[r]], max_new_tokens=40, temperature=1.0, seeds=[seeds[r]],
                      constraints=[schemas[r]])[0] for r in (0, 1)]
    assert batched[:2] == alone
    _valid(batched[1].text, Verdict)
    other = generate(model, tok, CONVS[1:2], max_new_tokens=40, temperature=1.0, seeds=[99], constraints=[VERDICT])
    _valid(other[0].text, Verdict)
    assert len({batched[0].text, batched[3].text}) == 2  # two seeds of one schema: two samples


def test_grammar_under_the_prompt_prefix_cache(tiny):
    model, tok = tiny
    system = {"role": "system", "content": "You are a careful teacher who always answers in the form asked for."}
    convs = [[system, *c] for c in CONVS[:3]]
    schemas = [VERDICT, None, VERDICT]
    cached = generate(model, tok, convs, max_new_tokens=24, constraints=schemas)
    plain = generate(model, tok, convs, max_new_tokens=24, constraints=schemas, prefix_cache=False)
    assert cached == plain
    _valid(cached[0].text, Verdict), _valid(cached[2].text, Verdict)


def test_each_schema_compiles_once_per_tokenizer(tiny):
    model, tok = tiny
    book = grammar_book(tok, model_vocab_size(model), [tok.eos_token_id])
    assert book is grammar_book(tok, model_vocab_size(model), [tok.eos_token_id])
    assert book.compile(ITEM) is book.compile(dict(ITEM))
    with pytest.raises(ValueError, match="cannot compile"):
        book.compile({"type": "object", "properties": {"a": {"$ref": "#/$defs/Missing"}}})


def _user(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


def test_teacher_hf_asks_under_the_grammar_and_records_a_cut_reply(tmp_path):
    clear_loaded_models()
    events: list[dict] = []
    outcomes: list[dict] = []
    t = Teacher(TeacherConfig(spec="hf:tiny", max_reasks=2, concurrency=4), tmp_path,
                trace=lambda e: (events if e["event"] == "teacher_call" else outcomes).append(e))
    reqs = [TeacherRequest(_user(f"item {i}"), 0.7, 80, sample_index=i) for i in range(3)]
    out = t.ask_structured(reqs, WorkedItem)
    assert [(o["requests"], o["parsed_first_try"], o["not_parsed"]) for o in outcomes] == [(3, 3, 0)]
    assert all(isinstance(o.value, WorkedItem) and o.reasks == 0 for o in out), out
    assert [e["structured"] for e in events] == ["grammar"] * 3
    assert "JSON schema" not in events[0]["messages"][-1]["content"]  # the grammar carries it, not the prompt
    (cut,) = t.ask_structured([TeacherRequest(_user("item 9"), 0.0, 5)], WorkedItem)
    assert cut.value is None and cut.reasks == 0 and "cut at max_tokens (5)" in cut.error
    assert len(events) == 4  # recorded once, not re-asked
    assert (outcomes[-1]["parsed_first_try"], outcomes[-1]["parsed_after_reask"], outcomes[-1]["not_parsed"]) == (
        0, 0, 1)
    again = t.ask_structured(reqs, WorkedItem)
    assert [a.value for a in again] == [o.value for o in out] and all(e["cached"] for e in events[4:])
    text_key = t._make_call(reqs[0], WorkedItem, mode="text").key
    assert text_key != t._make_call(reqs[0], WorkedItem).key  # the mode and the schema are in the cache key
    clear_loaded_models()


# -- the packaged SmolLM2 ------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def smollm2():
    return load_model("smollm2", device="cpu")


@pytest.mark.slow
def test_smollm2_nested_bounded_schema_every_reply_parses(smollm2):
    model, tok = smollm2
    convs = [_user("Write a short arithmetic question with its worked steps and answer as JSON."),
             _user("Is Paris the capital of France? Judge it and give a difficulty level."),
             _user("Write a geography question with steps and its answer as JSON."),
             _user("Say hello.")]
    schemas = [ITEM, VERDICT, ITEM, None]
    out = generate(model, tok, convs, max_new_tokens=96, constraints=schemas, temperature=0.7, seeds=[1, 2, 3, 4])
    for g, cls in zip(out[:3], (WorkedItem, Verdict, WorkedItem)):
        assert g.finished, g
        _valid(g.text, cls)
    assert out[3].text and not out[3].text.startswith("{")  # the free row answered in prose
    alone = generate(model, tok, convs[:1], max_new_tokens=96, constraints=[ITEM], temperature=0.7, seeds=[1])
    assert alone[0] == out[0]


@pytest.mark.slow
def test_smollm2_module_card_parses_first_try(tmp_path):
    from agents.diagnostician import ModuleCard
    from prompts import render

    clear_loaded_models()
    events: list[dict] = []
    t = Teacher(TeacherConfig(spec="hf:smollm2", concurrency=4), tmp_path,
                trace=lambda e: events.append(e) if e["event"] == "teacher_call" else None)
    topics = [["What is the capital of France?", "What is the capital of Japan?"],
              ["What is 3 + 4?", "What is 9 - 5?"]]
    reqs = [TeacherRequest(_user(render("module_describe", examples="\n".join(f"- {q}" for q in qs)).text), 0.0, 96,
                           role="diagnostician") for qs in topics]
    out = t.ask_structured(reqs, ModuleCard)
    assert all(isinstance(o.value, ModuleCard) and o.reasks == 0 for o in out), out
    assert [e["structured"] for e in events] == ["grammar", "grammar"]
    clear_loaded_models()
