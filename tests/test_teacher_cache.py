"""The teacher-call cache: nothing is paid for twice, across calls, Teacher instances, runs and processes."""
from __future__ import annotations

import multiprocessing as mp
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

from openai_server import OpenAIServer, scripted
from pydantic import BaseModel

from agents.teacher import Teacher, TeacherCache, TeacherRequest, cache_key
from agents.teacher.cache import CACHE_FILE
from ioa_state.config import TeacherConfig

ROOT = Path(__file__).resolve().parents[1]


def _cfg(srv, **kw):
    return TeacherConfig(spec="openai-compatible:m", base_url=srv.base_url, timeout_s=2, **kw)


def _reqs(n, temperature=0.7, max_tokens=16, role="adapter"):
    return [TeacherRequest([{"role": "user", "content": f"q{i}"}], temperature, max_tokens, sample_index=i, role=role)
            for i in range(n)]


def test_same_requests_twice_make_zero_http_calls_the_second_time(tmp_path):
    events: list[dict] = []
    with OpenAIServer(scripted(["a", "b", "c"]), models=["m"]) as srv:
        t = Teacher(_cfg(srv), tmp_path, trace=events.append)
        first = t.ask(_reqs(3))
        assert srv.requests == 3
        second = t.ask(_reqs(3))
        assert srv.requests == 3
    assert [r.text for r in second] == [r.text for r in first]
    assert all(r.cached for r in second) and not any(r.cached for r in first)
    u = t.usage["adapter"]
    assert (u.calls, u.cached) == (3, 3)
    assert [e["cached"] for e in events] == [False] * 3 + [True] * 3


def test_cache_survives_a_new_teacher_and_serves_structured_replies(tmp_path):
    class Item(BaseModel):
        prompt: str

    with OpenAIServer(scripted(['{"prompt": "What is 2+2?"}']), models=["m"]) as srv:
        a = Teacher(_cfg(srv), tmp_path)
        first = a.ask_structured(_reqs(2), Item)
        a.close()
        n = srv.requests
        b = Teacher(_cfg(srv), tmp_path)
        again = b.ask_structured(_reqs(2), Item)
        assert srv.requests == n
    assert [x.value for x in again] == [x.value for x in first] == [Item(prompt="What is 2+2?")] * 2
    assert b.spent_tokens == 0 and b.usage["adapter"].cached == 2


def test_key_separates_sample_index_temperature_and_max_tokens(tmp_path):
    base = dict(backend="openai", model="m", messages=[{"role": "user", "content": "x"}])
    k = cache_key(params={"temperature": 0.7, "max_tokens": 8}, sample_index=0, **base)
    assert k == cache_key(params={"max_tokens": 8, "temperature": 0.7}, sample_index=0, **base)
    assert k != cache_key(params={"temperature": 0.7, "max_tokens": 8}, sample_index=1, **base)
    assert k != cache_key(params={"temperature": 0.8, "max_tokens": 8}, sample_index=0, **base)
    assert k != cache_key(params={"temperature": 0.7, "max_tokens": 9}, sample_index=0, **base)
    with OpenAIServer(scripted(["s1", "s2", "s3"]), models=["m"]) as srv:
        t = Teacher(_cfg(srv), tmp_path)
        same_prompt = [TeacherRequest([{"role": "user", "content": "same"}], 0.9, 16, sample_index=i) for i in range(3)]
        assert sorted(r.text for r in t.ask(same_prompt)) == ["s1", "s2", "s3"]  # three distinct calls
        assert srv.requests == 3


def test_shared_cache_is_used_across_runs(tmp_path):
    shared = tmp_path / "shared" / "teacher.sqlite"
    with OpenAIServer(scripted(["x"]), models=["m"]) as srv:
        Teacher(_cfg(srv, shared_cache=str(shared)), tmp_path / "run1").ask(_reqs(2))
        Teacher(_cfg(srv, shared_cache=str(shared)), tmp_path / "run2").ask(_reqs(2))
        assert srv.requests == 2
    assert shared.exists() and not (tmp_path / "run1" / CACHE_FILE).exists()


def test_cache_file_is_wal_sqlite_in_the_run_dir(tmp_path):
    with OpenAIServer(scripted(["x"]), models=["m"]) as srv:
        Teacher(_cfg(srv), tmp_path).ask(_reqs(1))
    con = sqlite3.connect(tmp_path / CACHE_FILE)
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert con.execute("SELECT COUNT(*) FROM teacher_calls").fetchone()[0] == 1


def _writer(path: str, start: int) -> None:
    c = TeacherCache(path)
    for i in range(start, start + 50):
        c.put(f"k{i}", f"v{i}", i, 1, backend="hf", model="m")
        c.get(f"k{i - 1}")


def test_cache_is_safe_across_processes_and_threads(tmp_path):
    path = str(tmp_path / "c.sqlite")
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(path, s)) for s in (0, 25, 100)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    c = TeacherCache(path)
    assert len(c) == 125 and c.get("k60").text == "v60"


def test_a_run_killed_right_after_a_call_does_not_pay_for_it_again(tmp_path):
    with OpenAIServer(scripted(["paid once"]), models=["m"]) as srv:
        script = textwrap.dedent(f"""
            import os, sys
            sys.path.insert(0, {str(ROOT)!r})
            from agents.teacher import Teacher, TeacherRequest
            from ioa_state.config import TeacherConfig
            t = Teacher(TeacherConfig(spec="openai-compatible:m", base_url={srv.base_url!r}), {str(tmp_path)!r})
            r = t.ask([TeacherRequest([{{"role": "user", "content": "q"}}], 0.7, 16)])
            assert r[0].text == "paid once"
            os._exit(0)  # killed: no close(), no cleanup
        """)
        subprocess.run([sys.executable, "-c", script], check=True, timeout=120)
        assert srv.requests == 1
        r = Teacher(_cfg(srv), tmp_path).ask([TeacherRequest([{"role": "user", "content": "q"}], 0.7, 16)])
        assert srv.requests == 1
    assert r[0].text == "paid once" and r[0].cached
