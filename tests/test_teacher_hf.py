"""The in-process `hf:` teacher: true batched generation, per-request seeds, usage, and the real SmolLM2.

Fast tests put stand-ins for training.loading / training.generate into sys.modules (they record each batched call);
the slow ones load the packaged SmolLM2-135M-Instruct through the real training package.
"""
from __future__ import annotations

import sys
import types
from dataclasses import dataclass

import pytest
from openai_server import OpenAIServer, model_replier
from pydantic import BaseModel

from agents.teacher import LocalHFChatModel, Teacher, TeacherConfigError, TeacherRequest
from agents.teacher import structured as so
from agents.teacher.hf_chat import clear_loaded_models
from ioa_state.config import TeacherConfig


@dataclass
class _Gen:
    text: str
    tokens_in: int
    tokens_out: int


@pytest.fixture
def stub_training(monkeypatch):
    """Fake load_model/generate: the reply names the prompt, temperature and seed; every call is recorded."""
    calls: list[dict] = []
    replies: dict[str, str] = {}

    def load_model(source, *, keep_layers=None, device="auto", seed=0):
        if source == "missing":
            raise OSError(f"{source} is not a local folder and not a hub id")
        return f"model:{source}", "tokenizer"

    def generate(model, tokenizer, conversations, *, max_new_tokens, temperature=0.0, seeds=None, batch_size=16,
                 stop=None, shared=None):
        calls.append({"n": len(conversations), "temperature": temperature, "max_new_tokens": max_new_tokens,
                      "seeds": list(seeds), "batch_size": batch_size, "shared": shared})
        out = []
        for conv, seed in zip(conversations, seeds):
            last = conv[-1]["content"]
            text = next((r for k, r in replies.items() if k in last), f"{last}|t={temperature}|seed={seed}")
            out.append(_Gen(text, tokens_in=len(last.split()), tokens_out=3))
        return out

    monkeypatch.setitem(sys.modules, "training.loading", types.SimpleNamespace(load_model=load_model))
    monkeypatch.setitem(sys.modules, "training.generate", types.SimpleNamespace(generate=generate))
    clear_loaded_models()
    yield calls, replies
    clear_loaded_models()


def _user(text):
    return [{"role": "user", "content": text}]


def test_batch_groups_by_temperature_and_max_tokens_and_keeps_order(stub_training):
    calls, _ = stub_training
    m = LocalHFChatModel(source="stub", batch_size=4)
    cfgs = [{"configurable": {"temperature": t, "max_tokens": 8, "seed": s}} for t, s in
            [(0.7, 1), (0.0, 2), (0.7, 3), (0.0, 4)]]
    out = m.batch([_user(f"p{i}") for i in range(4)], cfgs)
    assert [o.content for o in out] == ["p0|t=0.7|seed=1", "p1|t=0.0|seed=2", "p2|t=0.7|seed=3", "p3|t=0.0|seed=4"]
    assert sorted((c["n"], c["temperature"], tuple(c["seeds"])) for c in calls) == [(2, 0.0, (2, 4)), (2, 0.7, (1, 3))]
    assert all(c["batch_size"] == 4 for c in calls)
    assert out[0].usage_metadata == {"input_tokens": 1, "output_tokens": 3, "total_tokens": 4}


def test_invoke_and_default_seed_do_not_depend_on_the_batch(stub_training):
    m = LocalHFChatModel(source="stub")
    alone = m.invoke(_user("same"), temperature=0.5).content
    in_batch = m.batch([_user("other"), _user("same")], temperature=0.5)[1].content
    assert alone == in_batch and "seed=" in alone


def test_teacher_hf_runs_one_batched_call_per_group_and_samples_differ(stub_training, tmp_path):
    calls, _ = stub_training
    t = Teacher(TeacherConfig(spec="hf:stub", concurrency=8), tmp_path)
    reqs = [TeacherRequest(_user("write a question"), 0.8, 16, sample_index=k) for k in range(4)]
    reqs.append(TeacherRequest(_user("grade it"), 0.0, 8, role="judge"))
    out = t.ask(reqs)
    assert len(calls) == 2 and sorted(c["n"] for c in calls) == [1, 4]
    samples = [r.text for r in out[:4]]
    assert len(set(samples)) == 4  # four sample indices, four seeds, four samples
    assert all(r.error is None and r.tokens_out == 3 and not r.cached for r in out)
    assert t.usage["adapter"].calls == 4 and t.usage["judge"].calls == 1 and t.usage["adapter"].cost_usd == 0
    again = t.ask(reqs)
    assert len(calls) == 2 and all(r.cached for r in again)
    fresh = Teacher(TeacherConfig(spec="hf:stub"), tmp_path / "other")  # seeds come from the key: reproducible
    assert [r.text for r in fresh.ask(reqs[:4])] == samples


def test_samples_of_one_prompt_are_generated_and_charged_as_one_prompt(stub_training, tmp_path):
    """share_prompt: the samples of one prompt in a batch reach generate marked `shared`; the prompt's tokens are
    charged to the first sample only (the stub counts a prompt's words as its tokens), the others' tokens_in is 0 and
    their trace events say so; a request without the mark pays its prompt; a later batch pays the prompt again (its
    samples are computed again), and a cache hit costs what it cost when paid."""
    calls, _ = stub_training
    events: list[dict] = []
    t = Teacher(TeacherConfig(spec="hf:stub"), tmp_path, trace=events.append)
    ask = "write one new question now"  # 5 tokens for the stub
    reqs = [TeacherRequest(_user(ask), 0.7, 16, sample_index=k, share_prompt=True) for k in range(4)]
    reqs += [TeacherRequest(_user("another prompt"), 0.7, 16, sample_index=0, share_prompt=True),
             TeacherRequest(_user(ask), 0.7, 16, sample_index=9)]
    out = t.ask(reqs)
    assert calls[-1]["shared"] == [True, True, True, True, True, False]
    assert [r.tokens_in for r in out] == [5, 0, 0, 0, 2, 5]
    assert t.usage["adapter"].tokens_in == 12 and t.usage["adapter"].tokens_out == 18
    assert t.spent_tokens == 30
    assert [e.get("shared_prompt", False) for e in events] == [False, True, True, True, False, False]
    later = t.ask([TeacherRequest(_user(ask), 0.7, 16, sample_index=k, share_prompt=True) for k in (4, 5)])
    assert [r.tokens_in for r in later] == [5, 0]
    again = t.ask(reqs[:2])
    assert all(r.cached for r in again) and [r.tokens_in for r in again] == [5, 0] and t.spent_tokens == 41


def test_teacher_hf_structured_text_mode_with_reask(stub_training, tmp_path, monkeypatch):
    _, replies = stub_training
    monkeypatch.setitem(so.MODES_BY_BACKEND, "hf", ("text",))  # the stub cannot follow a grammar

    class Level(BaseModel):
        level: int

    replies["could not be used: no JSON object found"] = "```json\n{'level': 2,}\n```"  # the re-ask
    replies["rate this"] = "I think it is level two"
    t = Teacher(TeacherConfig(spec="hf:stub", max_reasks=1), tmp_path)
    (rep,) = t.ask_structured([TeacherRequest(_user("rate this"), 0.0, 16)], Level)
    assert rep.value == Level(level=2) and rep.reasks == 1 and rep.error is None


def test_hf_model_that_does_not_load_is_a_config_error(stub_training, tmp_path):
    t = Teacher(TeacherConfig(spec="hf:missing"), tmp_path)
    with pytest.raises(TeacherConfigError, match="cannot load 'missing'"):
        t.ask([TeacherRequest(_user("hi"), 0.0, 8)])


@pytest.mark.slow
def test_hf_smollm2_gives_a_nonempty_answer(tmp_path):
    clear_loaded_models()
    t = Teacher(TeacherConfig(spec="hf:smollm2", concurrency=2), tmp_path)
    out = t.ask([TeacherRequest(_user("What is the capital of France? Answer in one word."), 0.0, 12),
                 TeacherRequest(_user("Name a color."), 0.7, 12, sample_index=1)])
    assert all(r.error is None and r.text and r.text.strip() for r in out), out
    assert all(r.tokens_in > 0 and 0 < r.tokens_out <= 12 for r in out)
    assert "paris" in out[0].text.lower()


@pytest.mark.slow
def test_real_smollm2_behind_the_openai_compatible_server(tmp_path):
    from training.loading import load_model

    model, tok = load_model("smollm2", device="cpu")
    events: list[dict] = []
    with OpenAIServer(model_replier(model, tok), models=["smollm2"]) as srv:
        cfg = TeacherConfig(spec="openai-compatible:smollm2", base_url=srv.base_url, timeout_s=120, concurrency=2)
        t = Teacher(cfg, tmp_path, trace=events.append)
        reqs = [TeacherRequest(_user(q), 0.0, 16, sample_index=i) for i, q in
                enumerate(["What is the capital of France?", "What is 2 + 3?"])]
        out = t.ask(reqs)
        assert srv.bodies[0]["max_tokens"] == 16  # llama.cpp-style servers read max_tokens, not max_completion_tokens
        assert all(r.text and r.text.strip() and r.error is None for r in out), out
        assert all(0 < r.tokens_out <= 16 and r.tokens_in > 5 for r in out)
        n = srv.requests
        assert [r.text for r in t.ask(reqs)] == [r.text for r in out] and srv.requests == n
    assert [e["cached"] for e in events] == [False, False, True, True]
