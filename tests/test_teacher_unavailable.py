"""A teacher that dies during a run stops it in one line (resumable); a few failed calls are left out of scores.

Real HTTP: the project's test server (tests/openai_server.py) with `die_after` drops every request after the N-th,
as a crashed server does.
"""
from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from openai_server import OpenAIServer, scripted
from trace_helpers import ioa, small_config, zorbia_replier

from agents import scoring
from agents.teacher import RetryPolicy, Teacher, TeacherConfigError, TeacherRequest, TeacherUnavailable
from ioa_state import Item
from ioa_state.config import ConfigError, TaskConfig, TeacherConfig
from tasks.registry import load_pack

FAST = RetryPolicy(initial_s=0.01, max_s=0.05, jitter_s=0.01)


def _teacher(srv, tmp_path, **cfg):
    cfg = {"spec": "openai-compatible:m", "base_url": srv.base_url, "timeout_s": 2.0, "max_retries": 1,
           "concurrency": 1, **cfg}
    return Teacher(TeacherConfig(**cfg), tmp_path, retry_policy=FAST)


def _reqs(n, start=0):
    return [TeacherRequest([{"role": "user", "content": f"question {i}"}], 0.0, 16) for i in range(start, start + n)]


def test_unavailable_is_not_a_config_error():
    assert not issubclass(TeacherUnavailable, ConfigError) and not issubclass(TeacherUnavailable, TeacherConfigError)


def test_a_server_that_dies_mid_batch_raises_with_its_url_and_keeps_what_arrived(tmp_path):
    with OpenAIServer(scripted(["fine"]), models=["m"], die_after=4) as srv:
        t = _teacher(srv, tmp_path)
        with pytest.raises(TeacherUnavailable) as e:
            t.ask(_reqs(10))
        msg = str(e.value)
        assert srv.base_url in msg and "openai-compatible:m" in msg and "\n" not in msg
        assert "2 of 10 calls" in msg and "4 more not sent" in msg and "Connection error" in msg
        srv.die_after = None  # the server is back: the 4 answered calls come from the cache
        srv.reset_counts()
        again = t.ask(_reqs(10))
        assert srv.requests == 6 and [r.cached for r in again] == [True] * 4 + [False] * 6
    assert all(r.text == "fine" for r in again)


def test_structured_batch_counts_failed_calls_not_unparsed_replies(tmp_path):
    from pydantic import BaseModel

    class A(BaseModel):
        answer: str

    with OpenAIServer(scripted(["not json at all"]), models=["m"]) as srv:
        out = _teacher(srv, tmp_path, max_reasks=0).ask_structured(_reqs(4), A)
    assert all(o.value is None and "not usable" in o.error for o in out)  # answered but unusable: no raise
    with OpenAIServer(scripted(['{"answer": "x"}']), models=["m"], die_after=0) as srv:
        with pytest.raises(TeacherUnavailable, match="1 of 4 calls .* retries, 3 more not sent"):
            _teacher(srv, tmp_path / "b").ask_structured(_reqs(4), A)


def _expert(pack, items, broken: str):
    """A perfect teacher over HTTP, except on one item, where it fails with a server error every time."""
    by_prompt = {pack.format_prompt(it): it for it in items}

    def reply(body: dict) -> str:
        it = by_prompt[body["messages"][-1]["content"]]
        if it.id == broken:
            raise RuntimeError("this item crashes the server")
        return it.reference

    return reply


def test_failures_under_the_share_go_on_and_leave_the_mean(tmp_path):
    pack = load_pack(TaskConfig(pack="zorbia", limit=20))
    items: list[Item] = list(pack.items())[:20]
    broken = items[2].id  # 1 of 20 calls fails after its retry: 5% <= 10%, so the step goes on
    with OpenAIServer(_expert(pack, items, broken), models=["m"]) as srv:
        t = _teacher(srv, tmp_path)
        svc = SimpleNamespace(teacher=t, teacher_context=None, teacher_context_for=lambda question: None, pack=pack,
                              cfg=SimpleNamespace(student=SimpleNamespace(max_new_tokens=16)))
        answers = scoring.teacher_answers(svc, items, "examiner")
    assert broken not in answers and len(answers) == 19
    scores = scoring.check_all(svc, items, answers)
    assert broken not in scores and set(scores) == set(answers)
    assert scoring.mean(list(scores.values())) == 1.0  # the failed call is not a wrong answer
    assert t.usage["examiner"].failures == 1


def test_failures_over_the_share_raise(tmp_path):
    with OpenAIServer(scripted(["fine"]), models=["m"], faults=["500"] * 4) as srv:
        t = _teacher(srv, tmp_path)  # 2 of 10 calls fail after 1 retry each: 20% > 10%
        with pytest.raises(TeacherUnavailable, match="2 of 10 calls .* retries, 8 more not sent"):
            t.ask(_reqs(10))
    with OpenAIServer(scripted(["fine"]), models=["m"], faults=["500"] * 4) as srv:
        out = _teacher(srv, tmp_path / "b", max_failure_share=0.2).ask(_reqs(10))
    assert sum(o.error is not None for o in out) == 2


def _paid(run_dir: Path) -> list[str]:
    events = [json.loads(line) for line in (run_dir / "trace.jsonl").read_text().splitlines() if line.strip()]
    return [json.dumps([e["messages"], e.get("sample_index")], sort_keys=True)
            for e in events if e["event"] == "teacher_call" and not e["cached"] and not e["error"]]


@pytest.mark.slow
def test_cli_stops_in_one_line_and_resumes_once_the_server_is_back(tmp_path):
    runs = tmp_path / "runs"
    # the small run's diagnosis makes 43 calls: the server dies inside the first synthesis, after its checkpoint
    with OpenAIServer(zorbia_replier(), models=["scripted"], die_after=50) as srv:
        cfg = small_config(runs, "dies", srv.base_url, **{"thresholds.max_remedial_rounds": 1})
        path = tmp_path / "dies.yaml"
        path.write_text(yaml.safe_dump(cfg))
        rc, out, err = ioa("run", str(path))
        lines = [ln for ln in err.splitlines() if ln.startswith("ioa:")]
        assert rc == 1 and len(lines) == 1, err
        assert srv.base_url in lines[0] and "openai-compatible:scripted" in lines[0]
        assert f"ioa resume {runs / 'dies'}" in lines[0] and "Traceback" not in err
        assert not (runs / "dies" / "report.json").exists()  # no result made of failed calls
        srv.die_after = None
        rc, out, err = ioa("resume", "dies", "--runs-dir", str(runs))
        assert rc == 0, err
    paid = _paid(runs / "dies")
    assert len(paid) == len(set(paid)), "a teacher call answered before the stop was paid again"
    events = [json.loads(line) for line in (runs / "dies" / "trace.jsonl").read_text().splitlines() if line.strip()]
    assert any(e["event"] == "teacher_call" and e["cached"] for e in events), "the resume did not use the cache"
    diagnoses = [e for e in events if e["event"] == "module_diagnosis"]
    assert diagnoses and all(e["teacher_score"] == 1.0 for e in diagnoses)  # scored on answers, not on failures
    assert (runs / "dies" / "report.json").is_file()


def test_a_dead_server_is_not_asked_again_and_again_once_the_share_is_exceeded(tmp_path):
    with OpenAIServer(scripted(["fine"]), models=["m"], die_after=0) as srv:
        t = _teacher(srv, tmp_path, max_retries=2)
        with pytest.raises(TeacherUnavailable, match="4 of 30 calls .* retries, 26 more not sent") as e:
            t.ask(_reqs(30))
        assert srv.requests == 3 * 4  # 4 calls (over 10% of 30) with their 2 retries each, then no more
    assert str(e.value).endswith("last error: OpenAIConnectionError: Connection error.")
    assert t.usage["adapter"].failures == 30
