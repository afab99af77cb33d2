"""Adaptive concurrency (AIMD): overload halves the requests in flight, successes grow them back, so a one-lane
server with faults is not stormed with retries. Unit tests on the Limiter, then the real client over HTTP."""
from __future__ import annotations

import time

import pytest
from conftest import peak_in_flight
from openai_server import OpenAIServer, scripted

from agents.teacher import RetryPolicy, Teacher, TeacherRequest
from agents.teacher.limits import Limiter, decrease, increase
from ioa_state.config import TeacherConfig


def test_aimd_steps():
    assert [decrease(n) for n in (8, 5, 2, 1)] == [4, 2, 1, 1]
    assert increase(3, 8) == 4 and increase(8, 8) == 8


def test_limiter_halves_once_per_burst_and_grows_after_a_run_of_successes():
    changes: list[tuple[int, int, str]] = []
    lim = Limiter(8, adaptive=True, growth_after=3, on_change=lambda *c: changes.append(c))
    with lim.slot() as a, lim.slot() as b, lim.slot() as c:
        a.overloaded("timeout")  # sent at the same limit: one burst, one halving
        b.overloaded("timeout")
        c.overloaded("HTTP 429")
    assert lim.limit == 4 and changes == [(8, 4, "timeout")]
    with lim.slot() as d:
        d.overloaded("HTTP 503")  # sent after the decrease: a new signal
    assert lim.limit == 2
    for _ in range(3):
        with lim.slot() as s:
            s.succeeded()
    assert lim.limit == 3 and changes[-1] == (2, 3, "3 successes")
    for _ in range(4):
        with lim.slot() as s:
            s.overloaded("timeout")
    assert lim.limit == 1  # never below 1
    for _ in range(3 * 20):
        with lim.slot() as s:
            s.succeeded()
    assert lim.limit == 8  # never above the configured concurrency


def test_limiter_holds_requests_beyond_the_current_limit():
    lim = Limiter(4, adaptive=True)
    lim.limit = 2
    assert peak_in_flight(lim) == 2


def test_fixed_concurrency_never_changes():
    lim = Limiter(8)
    with lim.slot() as s:
        s.overloaded("timeout")
    assert lim.limit == 8


def _run(adaptive: bool, tmp_path, events: list[dict]) -> tuple[Teacher, list, OpenAIServer]:
    # one lane, 0.12 s a request: 8 queued requests wait ~1 s, past the 0.45 s timeout; 30% of requests are 500s
    with OpenAIServer(scripted(["ok"]), models=["m"], lanes=1, latency_s=0.12, fault_rate=0.3, seed=1) as srv:
        cfg = TeacherConfig(spec="openai-compatible:m", base_url=srv.base_url, timeout_s=0.45, concurrency=8,
                            max_retries=6, retry_budget=10_000, adaptive_concurrency=adaptive,
                            concurrency_growth_after=4, max_failure_share=1.0)
        t = Teacher(cfg, tmp_path, trace=events.append, retry_policy=RetryPolicy(initial_s=0.05, max_s=0.4,
                                                                                  jitter_s=0.05))
        reqs = [TeacherRequest([{"role": "user", "content": f"q {i}"}], 0.7, 8, sample_index=i) for i in range(24)]
        out = t.ask(reqs)
    return t, out, srv


@pytest.mark.slow
def test_one_lane_server_with_faults_adaptive_spends_fewer_retries_than_fixed(tmp_path):
    t0 = time.monotonic()
    fixed_events: list[dict] = []
    fixed, fixed_out, _ = _run(False, tmp_path / "fixed", fixed_events)
    events: list[dict] = []
    aimd, out, srv = _run(True, tmp_path / "aimd", events)
    assert all(o.error is None and o.text == "ok" for o in out), [o.error for o in out if o.error]
    assert aimd.usage["adapter"].retries < fixed.usage["adapter"].retries
    changes = [e for e in events if e["event"] == "teacher_concurrency"]
    assert changes and changes[0]["old"] == 8 and changes[0]["new"] == 4 and changes[0]["reason"] == "timeout"
    assert all(1 <= e["new"] <= 8 and e["ceiling"] == 8 for e in changes)
    assert not any(e["event"] == "teacher_concurrency" for e in fixed_events)
    assert time.monotonic() - t0 < 60
