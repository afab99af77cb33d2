"""A run's teacher spend is what its calls cost when first paid, however many times it was killed and resumed.

The calls a killed attempt paid after its last checkpoint are cache hits on resume; they still count (once), in the
usage, the budget and report.json's `teacher_tokens`, while a hit on a row another run paid (a shared cache) costs
nothing. Unit tests on hand-made usage and cache rows, the cache migration, the client with a scripted server, and
a whole scripted-teacher run killed twice inside synthesis (in process) against the same run uninterrupted.
"""
from __future__ import annotations

import json
import sqlite3

import pytest
import yaml
from openai_server import OpenAIServer, scripted
from trace_helpers import small_config, zorbia_replier

from agents.teacher import Teacher, TeacherCache, TeacherRequest
from agents.teacher.accounting import unrecorded
from agents.teacher.cache import PaidRow
from ioa_state import Usage
from ioa_state.config import TeacherConfig


def _row(key, role, tin, tout):
    return PaidRow(key, role, tin, tout, "openai-compatible", "m")


def test_unrecorded_is_the_suffix_the_checkpoint_misses_per_role():
    rows = [_row("a", "adapter", 10, 2), _row("d", "diagnostician", 5, 1), _row("b", "adapter", 7, 3),
            _row("c", "adapter", 4, 4), _row("e", "diagnostician", 6, 6)]
    usage = {
        "adapter": Usage(calls=2, tokens_in=17, tokens_out=5),
        "diagnostician": Usage(calls=1, tokens_in=5, tokens_out=1),
    }
    missing, unmatched = unrecorded(usage, rows)
    assert [r.key for r in missing] == ["c", "e"] and unmatched == []
    assert unrecorded(
        {"adapter": Usage(tokens_in=21, tokens_out=9), "diagnostician": Usage(tokens_in=11, tokens_out=7)}, rows
    ) == ([], [])  # all counted
    assert [r.key for r in unrecorded({}, rows)[0]] == ["a", "b", "c", "d", "e"]  # killed before any checkpoint
    # usage that no suffix explains (counted from rows without a payer, or someone else's row): left alone
    assert unrecorded({"adapter": Usage(tokens_in=100, tokens_out=0)}, rows[:1]) == ([], ["adapter"])
    assert unrecorded({"adapter": Usage(tokens_in=9, tokens_out=2)}, rows[:1]) == ([], ["adapter"])


def test_an_old_cache_file_gets_the_payer_columns(tmp_path):
    path = tmp_path / "old.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE teacher_calls (key TEXT PRIMARY KEY, text TEXT NOT NULL, tokens_in INTEGER NOT NULL, "
                 "tokens_out INTEGER NOT NULL, backend TEXT NOT NULL, model TEXT NOT NULL, created REAL NOT NULL)")
    conn.execute("INSERT INTO teacher_calls VALUES ('k0', 'old reply', 3, 4, 'openai', 'm', 0)")
    conn.commit()
    conn.close()
    c = TeacherCache(path)
    assert c.get("k0").text == "old reply" and c.paid_by("run") == []
    c.put("k1", "new", 1, 2, backend="openai", model="m", payer="run", role="adapter")
    assert c.paid_by("run") == [PaidRow("k1", "adapter", 1, 2, "openai", "m")]
    c.close()
    TeacherCache(path).close()  # a second open finds the columns there


def _reqs(names):
    return [TeacherRequest([{"role": "user", "content": n}], 0.7, 16, role="adapter") for n in names]


def _cfg(srv, **kw):
    return TeacherConfig(spec="openai-compatible:m", base_url=srv.base_url, timeout_s=5, max_retries=0, **kw)


def test_a_resumed_teacher_counts_what_its_killed_attempt_paid_once(tmp_path):
    with OpenAIServer(scripted(["one two three"]), models=["m"]) as srv:
        whole = Teacher(_cfg(srv), tmp_path / "whole")
        whole.ask(_reqs(["a", "b", "c"]))
        whole.ask(_reqs(["a"]))  # a repeat inside the run: a cache hit in any run
        whole.ask(_reqs(["d", "e"]))
        want = whole.usage

        run = tmp_path / "killed"
        t1 = Teacher(_cfg(srv), run)
        t1.ask(_reqs(["a", "b", "c"]))
        t1.ask(_reqs(["a"]))
        checkpoint = t1.usage  # the node ends: its usage is checkpointed
        t1.ask(_reqs(["d"]))  # then the run is killed: this call's usage is lost with the process
        t1.close()
        for _ in range(2):  # killed again at once after resuming, then resumed from the same checkpoint
            t = Teacher(_cfg(srv), run)
            t.restore_usage(checkpoint)
            assert t.spent_tokens == sum(u.tokens_in + u.tokens_out for u in checkpoint.values()) + 4
            t.close()
        n = srv.requests
        t = Teacher(_cfg(srv), run)
        t.restore_usage(checkpoint)
        t.ask(_reqs(["d", "e"]))
        assert srv.requests == n + 1  # d from the cache, e paid
    assert t.usage == want and t.spent_tokens == whole.spent_tokens


def test_a_hit_on_another_runs_row_costs_nothing(tmp_path):
    shared = str(tmp_path / "shared.sqlite")
    with OpenAIServer(scripted(["x y"]), models=["m"]) as srv:
        Teacher(_cfg(srv, shared_cache=shared), tmp_path / "first").ask(_reqs(["a", "b"]))
        second = Teacher(_cfg(srv, shared_cache=shared), tmp_path / "second")
        second.restore_usage({})  # resumed before its first checkpoint
        second.ask(_reqs(["a", "b"]))
        assert srv.requests == 2
    assert second.spent_tokens == 0 and second.usage["adapter"].cached == 2 and second.usage["adapter"].calls == 0


class Killed(BaseException):
    """kill -9 stand-in: not an Exception, so nothing on the way catches it."""


def _kill_after(monkeypatch, stage: int, n_paid: int):
    """Kill the process (raise Killed) right after the request that paid the n-th question call of a stage's
    synthesis (a call of its own, or one of the n choices of a request for a prompt's samples), once its replies are
    cached (and traced) but before the node's checkpoint."""
    real_one, real_together = Teacher._finish_success, Teacher._finish_together
    paid = [0]

    def count(calls) -> None:
        before = paid[0]
        paid[0] += sum(c.request.tag.get("step") == "question" and c.request.tag.get("stage") == stage for c in calls)
        if before < n_paid <= paid[0]:
            raise Killed()

    def finish(self, c, *a, **kw):
        reply = real_one(self, c, *a, **kw)
        count([c])
        return reply

    def together(self, done, *a, **kw):
        replies = real_together(self, done, *a, **kw)
        count([d[0] for d in done])
        return replies

    monkeypatch.setattr(Teacher, "_finish_success", finish)
    monkeypatch.setattr(Teacher, "_finish_together", together)


def test_a_run_killed_twice_in_synthesis_reports_the_same_spend(tmp_path, monkeypatch):
    from graph import runner
    from ioa_state import load_config

    runs = tmp_path / "runs"
    runs.mkdir()

    def config(run_id, base_url):
        path = tmp_path / f"{run_id}.yaml"
        path.write_text(yaml.safe_dump(small_config(runs, run_id, base_url, **{"thresholds.max_remedial_rounds": 1})))
        return load_config(path)

    with OpenAIServer(zorbia_replier(), models=["scripted"]) as srv:
        runner.start(config("whole", srv.base_url))
    with OpenAIServer(zorbia_replier(), models=["scripted"]) as srv:  # a fresh script: same replies, same order
        with monkeypatch.context() as m:
            _kill_after(m, 0, 2)  # in the first synthesis (stage 0)
            with pytest.raises(Killed):
                runner.start(config("killed", srv.base_url))
        first = runner.load_state(runs / "killed")
        with monkeypatch.context() as m:
            _kill_after(m, 1, 3)  # then, resumed, in stage 1's
            with pytest.raises(Killed):
                runner.resume("killed", str(runs))
        second = runner.load_state(runs / "killed")
        assert (first.phase, second.phase, second.current_stage) == ("planned", "give_up", 1)
        runner.resume("killed", str(runs))
    whole = json.loads((runs / "whole" / "report.json").read_text())
    killed = json.loads((runs / "killed" / "report.json").read_text())

    def paid_in_trace(run_id):
        events = [json.loads(x) for x in (runs / run_id / "trace.jsonl").read_text().splitlines() if x.strip()]
        return sum(e["tokens_in"] + e["tokens_out"] for e in events if e["event"] == "teacher_call" and not e["cached"])

    print(f"teacher_tokens: uninterrupted {whole['teacher_tokens']}, killed twice {killed['teacher_tokens']}; "
          f"paid in trace.jsonl: {paid_in_trace('whole')} / {paid_in_trace('killed')}")
    assert paid_in_trace("killed") == paid_in_trace("whole")  # the same calls were paid, once each
    assert [d["kind"] for d in killed["decisions"]] == [d["kind"] for d in whole["decisions"]]
    assert killed["teacher_tokens"] == whole["teacher_tokens"] == paid_in_trace("whole")
    for role, u in whole["usage"].items():
        got = killed["usage"][role]
        assert (got["tokens_in"], got["tokens_out"], got["calls"], got["cached"]) == \
            (u["tokens_in"], u["tokens_out"], u["calls"], u["cached"]), role
