"""Token budget, usage per role and backend, and costs."""
from __future__ import annotations

import pytest
from openai_server import OpenAIServer, Reply

from agents.teacher import BudgetExhausted, PriceTable, Teacher, TeacherRequest
from ioa_state.config import TeacherConfig
from ioa_state.state import Usage


def _fixed(body: dict) -> Reply:
    return Reply("ok", prompt_tokens=10, completion_tokens=5)


def _req(i, role="adapter", max_tokens=16):
    return TeacherRequest([{"role": "user", "content": f"q{i}"}], 0.7, max_tokens, sample_index=i, role=role)


def test_budget_exhaustion_raises_and_cached_replies_are_still_served(tmp_path):
    with OpenAIServer(_fixed, models=["m"]) as srv:
        cfg = TeacherConfig(spec="openai-compatible:m", base_url=srv.base_url, token_budget=40, concurrency=1)
        t = Teacher(cfg, tmp_path)
        first = t.ask([_req(0), _req(1)])  # 15 tokens each, estimates fit
        assert t.spent_tokens == 30 and srv.requests == 2
        with pytest.raises(BudgetExhausted) as e:
            t.ask([_req(0), _req(2), _req(1)])
        assert srv.requests == 2  # nothing sent: 30 spent + estimate of q2 > 40
        assert e.value.unanswered == 1 and e.value.budget == 40 and e.value.spent == 30
        got = e.value.replies
        assert got[0].cached and got[0].text == "ok" and got[1] is None and got[2].cached
        again = t.ask([_req(1), _req(0)])  # all cached: served, nothing raised
        assert [r.text for r in again] == ["ok", "ok"] and all(r.cached for r in again)
    assert "budget" in str(e.value) and "40" in str(e.value)
    assert [r.text for r in first] == ["ok", "ok"]


def test_resumed_run_keeps_its_budget_spent(tmp_path):
    with OpenAIServer(_fixed, models=["m"]) as srv:
        cfg = TeacherConfig(spec="openai-compatible:m", base_url=srv.base_url, token_budget=40)
        t = Teacher(cfg, tmp_path)
        t.restore_usage({"adapter": Usage(calls=2, tokens_in=20, tokens_out=10, retries=3)})
        assert t.spent_tokens == 30 and t.retry_budget.used == 3
        with pytest.raises(BudgetExhausted):
            t.ask([_req(7)])
        assert srv.requests == 0


def test_usage_per_role_and_backend_with_costs(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-abcdef")
    with OpenAIServer(_fixed, models=["m", "gpt-4o-mini"]) as srv:
        cfg = TeacherConfig(spec="openai-compatible:m", base_url=srv.base_url, roles={"examiner": "openai:gpt-4o-mini"})
        t = Teacher(cfg, tmp_path, prices={"m": {"input": 1.0, "output": 2.0}})
        t.ask([_req(0), _req(1, role="planner"), _req(2, role="examiner"), _req(3, role="examiner")])
    u = t.usage
    assert u["adapter"].calls == 1 and u["planner"].calls == 1 and u["examiner"].calls == 2
    assert u["examiner"].tokens_in == 20 and u["examiner"].tokens_out == 10
    assert u["examiner"].cost_usd == pytest.approx((20 * 0.15 + 10 * 0.60) / 1e6)
    assert u["adapter"].cost_usd == pytest.approx((10 * 1.0 + 5 * 2.0) / 1e6)
    b = t.usage_by_backend
    assert set(b) == {"openai-compatible:m", "openai:gpt-4o-mini"} and b["openai:gpt-4o-mini"].calls == 2


def test_price_table_defaults_files_and_local_models(tmp_path):
    f = tmp_path / "prices.yaml"
    f.write_text("my-model: {input: 3, output: 4}\ngpt-4o-mini: [1, 1]\n")
    p = PriceTable(f)
    assert p.cost("openai-compatible", "my-model", 1_000_000, 0) == 3.0
    assert p.cost("openai", "gpt-4o-mini", 0, 1_000_000) == 1.0
    assert p.cost("openai", "gpt-4o-2024-08-06", 1_000_000, 0) == 2.5  # dated snapshot -> its family
    assert p.cost("hf", "gpt-4o", 10**6, 10**6) == 0.0 and p.cost("vllm", "x", 10**6, 10**6) == 0.0
    assert p.cost("openai", "unknown-model", 10**6, 10**6) == 0.0
    j = tmp_path / "p.json"
    j.write_text('{"z": {"input": 0.5, "output": 0.5}}')
    assert PriceTable(j).lookup("z") == (0.5, 0.5)


def test_settling_answers_what_the_budget_cannot_pay_instead_of_raising(tmp_path):
    from agents.teacher import BUDGET_NOT_SENT

    with OpenAIServer(_fixed, models=["m"]) as srv:
        cfg = TeacherConfig(spec="openai-compatible:m", base_url=srv.base_url, token_budget=40, concurrency=1,
                            max_failure_share=0.0)
        t = Teacher(cfg, tmp_path)
        t.ask([_req(0), _req(1)])  # 30 of 40 spent
        with t.settling():
            got = t.ask([_req(0), _req(2), _req(3), _req(1)])  # no share of failures allowed: unsent ones are not
        assert [r.text for r in got] == ["ok", None, None, "ok"] and got[0].cached and got[3].cached
        assert [r.error for r in got[1:3]] == [BUDGET_NOT_SENT] * 2 and t.not_sent == 2
        assert srv.requests == 2 and t.spent_tokens == 30
        with pytest.raises(BudgetExhausted):  # settling ends with its block
            t.ask([_req(2)])
        assert t.not_sent == 3
