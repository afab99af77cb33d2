"""No API key reaches the cache file, the trace or an error string, even when a server echoes it back."""
from __future__ import annotations

import json

import pytest
from openai_server import OpenAIServer, scripted
from pydantic import BaseModel

from agents.teacher import RetryPolicy, Teacher, TeacherConfigError, TeacherRequest, TeacherUnavailable
from agents.teacher.cache import CACHE_FILE
from agents.teacher.redact import Redactor
from ioa_state.config import TeacherConfig

SECRET = "sk-test-SECRET"


class Fact(BaseModel):
    fact: str


def _files_text(run_dir):
    return b"".join(p.read_bytes() for p in run_dir.iterdir() if p.is_file())


def test_no_secret_in_cache_trace_or_errors(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    events: list[dict] = []

    def leaky(body: dict) -> str:
        if "leak" in body["messages"][-1]["content"]:
            raise RuntimeError(f"upstream rejected Authorization: Bearer {SECRET} (api_key={SECRET})")
        return '{"fact": "water boils at 100 C"}'

    with OpenAIServer(leaky, models=["gpt-4o-mini"]) as srv:
        cfg = TeacherConfig(spec="openai:gpt-4o-mini", base_url=srv.base_url, max_retries=1, timeout_s=2,
                            max_failure_share=1.0)  # the one failed call is returned, not raised
        t = Teacher(cfg, tmp_path, trace=events.append, retry_policy=RetryPolicy(0.01, 0.02, 0.01))
        ok = t.ask_structured([TeacherRequest([{"role": "user", "content": "a fact"}], 0.5, 32)], Fact)
        bad = t.ask([TeacherRequest([{"role": "user", "content": "leak please"}], 0.5, 32)])
        down = Teacher(cfg.model_copy(update={"max_failure_share": 0.1}), tmp_path / "down",
                       retry_policy=RetryPolicy(0.01, 0.02, 0.01))
        with pytest.raises(TeacherUnavailable) as e:  # raised, it names the error without the key
            down.ask([TeacherRequest([{"role": "user", "content": "leak please"}], 0.5, 32)])
        down.close()
        assert SECRET not in str(e.value) and "[REDACTED]" in str(e.value) and srv.base_url in str(e.value)
        sent = {k.lower(): v for k, v in srv.headers[0].items()}
        assert sent["authorization"] == f"Bearer {SECRET}"  # the key was really used
    assert ok[0].value == Fact(fact="water boils at 100 C")
    assert bad[0].error and "500" in bad[0].error and SECRET not in bad[0].error
    assert "[REDACTED]" in bad[0].error
    t.close()
    assert SECRET.encode() not in _files_text(tmp_path)
    assert (tmp_path / CACHE_FILE).exists()
    dumped = json.dumps(events)
    assert SECRET not in dumped and "Bearer" not in dumped and sum(e["event"] == "teacher_call" for e in events) == 2
    assert SECRET not in repr(t.usage) + repr(t.usage_by_backend)


def test_fatal_auth_error_does_not_echo_the_key(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    with OpenAIServer(scripted(["x"]), models=["gpt-4o"]) as srv:
        t = Teacher(TeacherConfig(spec="openai:gpt-4o-mini", base_url=srv.base_url), tmp_path)
        with pytest.raises(TeacherConfigError) as e:
            t.ask([TeacherRequest([{"role": "user", "content": f"my key is {SECRET}"}], 0.5, 8)])
    assert SECRET not in str(e.value) and "gpt-4o-mini" in str(e.value)


def test_redactor_masks_values_and_key_shapes(monkeypatch):
    monkeypatch.setenv("SOME_KEY", "plain-value-123")
    r = Redactor(["SOME_KEY"])
    s = r.text("k=plain-value-123 x-api-key: abc123 Authorization: Bearer tok.en sk-proj-AbC_123 http://u:p@h/v1")
    for leaked in ("plain-value-123", "abc123", "tok.en", "sk-proj-AbC_123", "u:p@"):
        assert leaked not in s
    assert r.obj({"a": ["sk-live-xyz987"]}) == {"a": ["[REDACTED]"]}
