"""openai-compatible teachers: `response_format` json_schema where the server takes it, the fallback where not.

The test server's `json_schema` switch plays both kinds of server (tests/openai_server.py); the slow test serves the
packaged SmolLM2 over HTTP with the grammar enforcing the schema, as vLLM serve or a recent llama.cpp server would.
"""
from __future__ import annotations

import pytest
from openai_server import LLAMA_CPP_REJECTION, OpenAIServer, model_replier, scripted
from pydantic import BaseModel, Field

from agents.teacher import RetryPolicy, Teacher, TeacherRequest
from ioa_state.config import TeacherConfig

FAST = RetryPolicy(initial_s=0.02, max_s=0.1, jitter_s=0.02)
SLOPPY = "Sure: {'answer': 'Rome', 'confidence': 0.5,}"


class Answer(BaseModel):
    answer: str = Field(max_length=16)
    confidence: float = Field(ge=0, le=1)


def _teacher(srv, tmp_path, events, outcomes=None, **cfg):
    """A teacher whose teacher_call events go to `events`, its structured_outcome events to `outcomes`."""
    cfg = {"spec": "openai-compatible:m", "base_url": srv.base_url, "timeout_s": 5.0, "concurrency": 1, **cfg}

    def trace(e):
        (events if e["event"] == "teacher_call" else outcomes if outcomes is not None else []).append(e)
    return Teacher(TeacherConfig(**cfg), tmp_path, trace=trace, retry_policy=FAST)


def _reqs(n):
    return [TeacherRequest([{"role": "user", "content": f"question {i}"}], 0.0, 32, sample_index=i) for i in range(n)]


def test_server_that_takes_json_schema_is_used_for_every_call(tmp_path):
    events: list[dict] = []
    with OpenAIServer(scripted([SLOPPY]), models=["m"], json_schema="accept") as srv:
        out = _teacher(srv, tmp_path, events).ask_structured(_reqs(3), Answer)
        assert srv.requests == 3 and srv.json_schema_served == 3
        sent = srv.bodies[0]["response_format"]
    assert sent["type"] == "json_schema" and sent["json_schema"]["schema"]["properties"]["answer"]["maxLength"] == 16
    assert all(isinstance(o.value, Answer) and o.reasks == 0 for o in out)
    assert [e["structured"] for e in events] == ["json_schema"] * 3
    assert all("JSON schema" not in e["messages"][-1]["content"] for e in events)


@pytest.mark.parametrize("mode", ["reject", "reject_400"])
def test_server_that_rejects_json_schema_falls_back_once_and_remembers(tmp_path, mode):
    events: list[dict] = []
    with OpenAIServer(scripted(['{"answer": "Rome", "confidence": 0.5}']), models=["m"], json_schema=mode) as srv:
        t = _teacher(srv, tmp_path, events)
        out = t.ask_structured(_reqs(3), Answer)
        assert srv.requests == 4  # one rejected probe, then function calling for all three
        assert srv.bodies[0]["response_format"]["type"] == "json_schema"
        assert all(b.get("tools") and not b.get("response_format") for b in srv.bodies[1:])
        assert srv.json_schema_served == 0
        later = t.ask_structured([TeacherRequest([{"role": "user", "content": "again"}], 0.0, 32)], Answer)
        assert srv.requests == 5  # remembered for the run: no second probe
    assert all(o.value == Answer(answer="Rome", confidence=0.5) for o in out + later)
    assert [e["structured"] for e in events] == ["function_calling"] * 4
    assert t.usage["adapter"].failures == 0 and t.usage["adapter"].retries == 0


def test_server_rejecting_json_schema_and_tools_ends_in_text_mode(tmp_path):
    events: list[dict] = []
    with OpenAIServer(scripted([SLOPPY]), models=["m"], json_schema="reject", reject_tools=True) as srv:
        out = _teacher(srv, tmp_path, events).ask_structured(_reqs(2), Answer)
        assert srv.requests == 4 and "JSON schema" in srv.bodies[-1]["messages"][-1]["content"]
    assert [o.value for o in out] == [Answer(answer="Rome", confidence=0.5)] * 2
    assert [e["structured"] for e in events] == ["text", "text"]
    assert '"text" or "json_object"' in LLAMA_CPP_REJECTION


def test_server_that_ignores_json_schema_is_downgraded_after_a_prose_reply(tmp_path):
    events: list[dict] = []
    good = '{"answer": "Rome", "confidence": 0.5}'
    with OpenAIServer(scripted(["The answer is Rome.", good], cycle=True), models=["m"]) as srv:  # "ignore"
        outcomes: list[dict] = []
        t = _teacher(srv, tmp_path, events, outcomes, max_reasks=1)
        (first,) = t.ask_structured(_reqs(1), Answer)
        assert srv.bodies[0].get("response_format") and srv.bodies[1].get("tools")
    assert first.value == Answer(answer="Rome", confidence=0.5) and first.reasks == 1
    assert [e["structured"] for e in events] == ["json_schema", "function_calling"]
    (o,) = outcomes  # one event per ask_structured: parsed after the re-ask, not on the first try
    assert (o["schema"], o["requests"], o["parsed_first_try"], o["parsed_after_reask"], o["not_parsed"]) == (
        "Answer", 1, 0, 1, 0)


def test_transient_500_in_json_schema_mode_is_retried_not_a_downgrade(tmp_path):
    events: list[dict] = []
    with OpenAIServer(scripted(["unused"]), models=["m"], json_schema="accept", faults=["500"]) as srv:
        out = _teacher(srv, tmp_path, events).ask_structured(_reqs(1), Answer)
        assert srv.requests == 2 and srv.json_schema_served == 1
    assert isinstance(out[0].value, Answer) and events[-1]["structured"] == "json_schema" and events[-1]["retries"] == 1


@pytest.mark.slow
def test_real_model_server_enforcing_the_schema(tmp_path):
    from training.loading import load_model

    model, tok = load_model("smollm2", device="cpu")
    events: list[dict] = []
    with OpenAIServer(model_replier(model, tok, max_new_tokens_cap=48), models=["m"]) as srv:
        reqs = [TeacherRequest([{"role": "user", "content": "What is the capital of Italy? How sure are you?"}],
                               0.0, 48)]
        out = _teacher(srv, tmp_path, events, timeout_s=120.0).ask_structured(reqs, Answer)
    assert isinstance(out[0].value, Answer) and out[0].reasks == 0, out
    assert events[-1]["structured"] == "json_schema"
