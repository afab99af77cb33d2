"""Teacher throughput against a slow server: 64 requests at concurrency 1, then at concurrency 8.

The test server (tests/openai_server.py) answers every request after a fixed 200 ms, like a remote model would;
the client's thread pool should overlap those waits, so concurrency 8 should be close to 8x faster (goal: >= 6x).
Each run uses a fresh cache, so every request is a real HTTP call.

    .venv/bin/python benchmarks/bench_teacher_throughput.py [--requests 64] [--latency 0.2] [--concurrency 8]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from openai_server import OpenAIServer, scripted  # noqa: E402

from agents.teacher import Teacher, TeacherRequest  # noqa: E402
from ioa_state.config import TeacherConfig  # noqa: E402


def run_once(base_url: str, n: int, concurrency: int) -> float:
    with tempfile.TemporaryDirectory() as run_dir:
        cfg = TeacherConfig(spec="openai-compatible:bench", base_url=base_url, concurrency=concurrency, timeout_s=30)
        teacher = Teacher(cfg, Path(run_dir))
        reqs = [TeacherRequest([{"role": "user", "content": f"question {i}"}], 0.7, 32, sample_index=i)
                for i in range(n)]
        t0 = time.perf_counter()
        replies = teacher.ask(reqs)
        elapsed = time.perf_counter() - t0
        teacher.close()
    failed = sum(r.error is not None for r in replies)
    if failed:
        raise SystemExit(f"{failed} of {n} requests failed")
    return elapsed


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=64)
    ap.add_argument("--latency", type=float, default=0.2, help="server latency per request, seconds")
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--goal", type=float, default=6.0)
    a = ap.parse_args(argv)
    with OpenAIServer(scripted(["a fixed reply of a few words"]), models=["bench"], latency_s=a.latency) as srv:
        t1 = run_once(srv.base_url, a.requests, 1)
        tn = run_once(srv.base_url, a.requests, a.concurrency)
        served = srv.requests
    ratio = t1 / tn
    print(f"{a.requests} requests, server latency {a.latency * 1000:.0f} ms, {served} HTTP calls in all")
    print(f"concurrency 1: {t1:6.2f} s  ({a.requests / t1:5.1f} req/s)")
    print(f"concurrency {a.concurrency}: {tn:6.2f} s  ({a.requests / tn:5.1f} req/s)")
    print(f"speed-up: {ratio:.2f}x (goal >= {a.goal:g}x): {'ok' if ratio >= a.goal else 'BELOW GOAL'}")
    return 0 if ratio >= a.goal else 1


if __name__ == "__main__":
    raise SystemExit(main())
