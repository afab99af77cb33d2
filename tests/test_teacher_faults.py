"""The teacher client survives every fault the test server can inject, and counts what it survived."""
from __future__ import annotations

import json
import time

import pytest
from openai_server import OpenAIServer, scripted
from pydantic import BaseModel, Field

from agents.teacher import RetryPolicy, Teacher, TeacherConfigError, TeacherRequest
from ioa_state.config import TeacherConfig

FAST = RetryPolicy(initial_s=0.02, max_s=0.1, jitter_s=0.02)
GOOD = '{"answer": "Paris", "confidence": 0.9}'


class Answer(BaseModel):
    answer: str
    confidence: float = Field(ge=0, le=1)


def _teacher(srv, tmp_path, events=None, **cfg):
    cfg = {"spec": "openai-compatible:m", "base_url": srv.base_url, "timeout_s": 1.0, **cfg}
    def trace(e):  # teacher_call events only (a structured_outcome follows each ask_structured)
        if e["event"] == "teacher_call":
            events.append(e)
    return Teacher(TeacherConfig(**cfg), tmp_path, trace=trace if events is not None else None, retry_policy=FAST)


def _reqs(n, **kw):
    return [TeacherRequest([{"role": "user", "content": f"question {i}"}], 0.7, 32, sample_index=i, **kw)
            for i in range(n)]


@pytest.mark.parametrize("fault", ["429", "503", "500", "hang", "truncated", "disconnect"])
def test_transient_fault_is_retried_and_counted(tmp_path, fault):
    events: list[dict] = []
    with OpenAIServer(scripted([GOOD]), models=["m"], faults=[fault], hang_s=3, retry_after=0.3) as srv:
        t = _teacher(srv, tmp_path, events)
        t0 = time.monotonic()
        out = t.ask_structured(_reqs(1), Answer)
        elapsed = time.monotonic() - t0
        assert srv.fault_log == [fault] and srv.requests == 2
    assert out[0].value == Answer(answer="Paris", confidence=0.9) and out[0].error is None
    assert t.usage["adapter"].retries == 1 and t.usage["adapter"].failures == 0
    assert events[-1]["retries"] == 1
    if fault in ("429", "503"):
        assert elapsed >= 0.3  # Retry-After honoured
    if fault == "hang":
        assert 1.0 <= elapsed < 2.9  # gave up at the client timeout, not the server's 3 s


def test_bad_schema_reply_is_reasked_with_the_error(tmp_path):
    with OpenAIServer(scripted([GOOD]), models=["m"], faults=["bad_schema"]) as srv:
        out = _teacher(srv, tmp_path).ask_structured(_reqs(1), Answer)
        reask = srv.bodies[1]["messages"]
    assert out[0].value == Answer(answer="Paris", confidence=0.9) and out[0].reasks == 1
    assert reask[-2] == {"role": "assistant", "content": json.dumps({"unexpected_field": True})}
    assert "answer" in reask[-1]["content"] and "could not be used" in reask[-1]["content"]


def test_every_fault_at_once_under_concurrency(tmp_path):
    faults = ["429", "500", "hang", "truncated", "bad_schema", "disconnect", "503"]
    with OpenAIServer(scripted([GOOD]), models=["m"], faults=faults, hang_s=3, retry_after=0.2) as srv:
        t = _teacher(srv, tmp_path, concurrency=4)
        out = t.ask_structured(_reqs(10), Answer)
        assert sorted(srv.fault_log) == sorted(faults)
    assert all(o.error is None and isinstance(o.value, Answer) for o in out)
    assert all(Answer.model_validate(o.value.model_dump()) == o.value for o in out)
    u = t.usage["adapter"]
    assert u.retries == 6 and u.failures == 0 and sum(o.reasks for o in out) == 1


def test_a_call_out_of_retries_fails_alone_and_never_raises(tmp_path):
    with OpenAIServer(scripted(["fine"]), models=["m"], faults=["500"] * 3) as srv:
        t = _teacher(srv, tmp_path, max_retries=2, concurrency=1, max_failure_share=1.0)  # 1 of 2 may fail
        out = t.ask(_reqs(2))
    assert out[0].text is None and "500" in out[0].error and out[0].retries == 2
    assert out[1].text == "fine" and out[1].error is None
    assert t.usage["adapter"].failures == 1 and t.usage["adapter"].calls == 2


def test_retry_budget_once_spent_stops_retrying(tmp_path):
    with OpenAIServer(scripted(["fine"]), models=["m"], faults=["500"] * 3) as srv:
        t = _teacher(srv, tmp_path, max_retries=5, retry_budget=1, concurrency=1, max_failure_share=1.0)
        out = t.ask(_reqs(3))
        assert srv.requests == 4  # 2 tries, then 1 try (no retries left), then 1 good
    assert [o.retries for o in out] == [1, 0, 0]
    assert out[0].error and out[1].error and out[2].text == "fine"
    assert t.retry_budget.left == 0 and t.usage["adapter"].failures == 2


def test_wrong_model_name_is_a_clear_error(tmp_path):
    with OpenAIServer(scripted(["x"]), models=["real-model"]) as srv:
        t = _teacher(srv, tmp_path, spec="openai-compatible:no-such-model", concurrency=4)
        with pytest.raises(TeacherConfigError) as e:
            t.ask(_reqs(6))
        assert srv.requests < 6  # stopped sending once the model proved unknown
    msg = str(e.value)
    assert "no-such-model" in msg and "404" in msg and srv.base_url in msg and "\n" not in msg


def test_server_rejecting_tools_falls_back_to_the_tolerant_parser(tmp_path):
    sloppy = "Sure! ```json\n{'answer': 'Paris', 'confidence': 0.9,}\n```"
    with OpenAIServer(scripted([sloppy]), models=["m"], reject_tools=True, json_schema="reject") as srv:
        t = _teacher(srv, tmp_path, concurrency=1)
        out = t.ask_structured(_reqs(2), Answer)
        assert srv.requests == 4  # one rejected json_schema, one rejected tool call, then text mode for both
        assert "JSON schema" in srv.bodies[-1]["messages"][-1]["content"]
    assert [o.value for o in out] == [Answer(answer="Paris", confidence=0.9)] * 2


def test_openai_json_schema_rejected_like_llama_cpp_falls_back_to_function_calling(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-key-123456")
    with OpenAIServer(scripted([GOOD]), models=["gpt-4o-mini"], reject_json_schema=True) as srv:
        t = _teacher(srv, tmp_path, spec="openai:gpt-4o-mini")
        out = t.ask_structured(_reqs(1), Answer)
        assert srv.bodies[0]["response_format"]["type"] == "json_schema"
        assert srv.bodies[1]["tools"][0]["function"]["name"] == "Answer"
    assert out[0].value == Answer(answer="Paris", confidence=0.9)
    assert t.usage["adapter"].failures == 0


def test_reply_that_never_validates_is_none_with_the_reason(tmp_path):
    with OpenAIServer(scripted(['{"answer": "Paris", "confidence": 7}']), models=["m"]) as srv:
        out = _teacher(srv, tmp_path, max_reasks=2).ask_structured(_reqs(1), Answer)
        assert srv.requests == 3
    assert out[0].value is None and out[0].reasks == 2
    assert "confidence" in out[0].error and out[0].raw == '{"answer": "Paris", "confidence": 7}'


def test_concurrency_is_bounded(tmp_path):
    with OpenAIServer(scripted(["ok"]), models=["m"], latency_s=0.05) as srv:
        _teacher(srv, tmp_path, concurrency=3).ask(_reqs(12))
        assert srv.max_in_flight == 3
