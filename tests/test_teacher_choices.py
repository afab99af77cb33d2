"""The samples of one prompt on a remote teacher: one request with `n` choices where the server takes it, one
request per sample where it refuses or ignores `n`; the prompt charged once, the choices' tokens split.

The test server's `choices` switch plays each kind of server (tests/openai_server.py); the slow test serves the
packaged SmolLM2 over HTTP, whose n choices are n samples of the real model.
"""
from __future__ import annotations

import pytest
from openai_server import OpenAIServer, model_replier

from agents.teacher import RetryPolicy, Teacher, TeacherRequest
from agents.teacher.client import split_tokens
from ioa_state.config import TeacherConfig

FAST = RetryPolicy(initial_s=0.02, max_s=0.1, jitter_s=0.02)
PROMPT = "write one new question about Zorbia"  # 6 prompt tokens for the test server (whitespace count)


def _replier(body: dict) -> str:
    """The j-th choice's reply: j + 1 words, so the choices' completion tokens differ."""
    return " ".join(["word"] * (int(body.get("choice") or 0) + 1))


def _teacher(srv, tmp_path, events, **cfg):
    cfg = {"spec": "openai-compatible:m", "base_url": srv.base_url, "timeout_s": 5.0, "concurrency": 2, **cfg}
    return Teacher(TeacherConfig(**cfg), tmp_path, trace=events.append, retry_policy=FAST)


def _samples(k, prompt=PROMPT, start=0, share=True):
    return [TeacherRequest([{"role": "user", "content": prompt}], 0.7, 16, sample_index=start + j, share_prompt=share)
            for j in range(k)]


def test_split_tokens_adds_up_and_follows_length():
    assert split_tokens(10, ["a", "bbbb"]) == [3, 7]  # 1 each, the other 8 by length (1:4)
    assert split_tokens(7, ["ab", "ab", "ab"]) == [3, 2, 2]
    assert sum(split_tokens(13, ["x" * 5, "", "yy"])) == 13
    assert split_tokens(1, ["a", "b"]) == [1, 0]
    assert split_tokens(5, []) == []


def test_a_server_that_takes_n_gets_one_request_per_prompt_and_charges_the_prompt_once(tmp_path):
    events: list[dict] = []
    with OpenAIServer(_replier, models=["m"]) as srv:
        t = _teacher(srv, tmp_path, events)
        out = t.ask(_samples(3) + _samples(1, "another prompt here", share=False))
        assert srv.requests == 2 and sorted(b.get("n") or 1 for b in srv.bodies) == [1, 3]
        assert [r.text for r in out[:3]] == ["word", "word word", "word word word"]
        assert [r.tokens_in for r in out] == [6, 0, 0, 3]
        assert [r.tokens_out for r in out[:3]] == [1, 2, 3]  # 6 completion tokens split by length
        assert t.spent_tokens == 6 + 6 + 3 + 1
        calls = [e for e in events if e["event"] == "teacher_call"]
        assert sum(bool(e.get("shared_prompt")) for e in calls) == 2
        probe = [e for e in events if e["event"] == "teacher_choices"]
        assert [(e["spec"], e["accepted"]) for e in probe] == [("openai-compatible:m", True)]
        again = t.ask(_samples(3))  # every sample cached: no request, no charge
        assert srv.requests == 2 and all(r.cached for r in again) and t.spent_tokens == 16
        more = t.ask(_samples(2, start=10))
        assert srv.requests == 3 and srv.bodies[-1]["n"] == 2 and [r.tokens_in for r in more] == [6, 0]


@pytest.mark.parametrize("mode", ["reject", "reject_500", "ignore"])
def test_a_server_that_refuses_or_ignores_n_gets_one_request_per_sample_from_then_on(tmp_path, mode):
    events: list[dict] = []
    with OpenAIServer(_replier, models=["m"], choices=mode) as srv:
        t = _teacher(srv, tmp_path, events, concurrency=1)
        out = t.ask(_samples(3))
        assert all(r.error is None and r.text == "word" for r in out)
        refused = [e for e in events if e["event"] == "teacher_choices"]
        assert len(refused) == 1 and refused[0]["accepted"] is False and refused[0]["reason"]
        ns = [b.get("n") or 1 for b in srv.bodies]
        assert ns == ([3] + [1] * 3 if mode != "ignore" else [3, 1, 1])  # "ignore" answered the first sample
        assert t.usage["adapter"].failures == 0
        paid_in = sum(r.tokens_in for r in out)
        assert paid_in == 6 * 3  # each sample's own request paid its prompt
        srv.reset_counts()
        t.ask(_samples(2, start=10))
        assert [b.get("n") or 1 for b in srv.bodies] == [1, 1]  # remembered: no second probe


def test_samples_without_the_mark_or_in_structured_calls_are_sent_one_by_one(tmp_path):
    events: list[dict] = []
    with OpenAIServer(_replier, models=["m"]) as srv:
        t = _teacher(srv, tmp_path, events)
        t.ask(_samples(3, share=False))
        assert srv.requests == 3 and all((b.get("n") or 1) == 1 for b in srv.bodies)


@pytest.mark.slow
def test_real_model_server_answers_n_samples_in_one_request(tmp_path):
    from training.loading import load_model

    model, tok = load_model("smollm2", device="cpu", seed=0)
    events: list[dict] = []
    with OpenAIServer(model_replier(model, tok, max_new_tokens_cap=12), models=["m"]) as srv:
        t = _teacher(srv, tmp_path, events, timeout_s=120.0)  # three generations on a CPU in one request
        out = t.ask(_samples(3, "Write one question about the capital of France."))
        assert srv.requests == 1 and srv.bodies[0]["n"] == 3
        assert all(r.error is None and r.text for r in out)
        assert len({r.text for r in out}) > 1  # three samples, not one reply three times
        assert out[0].tokens_in > 0 and out[1].tokens_in == out[2].tokens_in == 0


def test_a_kill_among_the_choices_of_one_request_loses_none_of_them(tmp_path, monkeypatch):
    """The n choices of one request are cached in one transaction before any is counted: a run killed while counting
    them finds every choice in its cache on resume, and pays no request again."""
    from agents.teacher.client import Teacher as Client

    class Killed(Exception):
        pass

    real, seen = Client._paid, [0]

    def paid(self, *a, **kw):
        seen[0] += 1
        if seen[0] == 2:
            raise Killed()
        return real(self, *a, **kw)

    with OpenAIServer(_replier, models=["m"]) as srv:
        with monkeypatch.context() as m:
            m.setattr(Client, "_paid", paid)
            with pytest.raises(Killed):
                _teacher(srv, tmp_path, []).ask(_samples(3))
        resumed = _teacher(srv, tmp_path, []).ask(_samples(3))
        assert srv.requests == 1 and all(r.cached for r in resumed)
        assert [r.text for r in resumed] == ["word", "word word", "word word word"]
