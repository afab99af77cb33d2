"""Benchmark the trace writer's overhead: time spent inside TraceWriter.emit as a share of a small run's wall time.

The run is the test suite's small real run (tests/trace_helpers.py: a scripted OpenAI-compatible teacher on
127.0.0.1, the 2-layer `tiny` student, zorbia limited to 6 facts; a few seconds on 2 CPU cores). TraceWriter times
itself (`seconds`: serialising, scrubbing secrets, writing and flushing each line, pushing it to LangGraph's custom
stream); the ratio to the run's wall time is printed, goal < 2%. Also prints the mean cost of one event and the
trace's size. `--runs N` repeats the run and reports the median ratio.

    .venv/bin/python benchmarks/bench_trace_overhead.py [--runs 1] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from agents.tracing import TraceWriter  # noqa: E402
from graph import runner  # noqa: E402

GOAL = 0.02


class TimedWriter(TraceWriter):
    """The real writer, remembered so that its `seconds` can be read after the run."""

    instances: list["TimedWriter"] = []

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        TimedWriter.instances.append(self)


def one_run(tmp: Path, i: int) -> dict:
    from trace_helpers import run_small

    TimedWriter.instances.clear()
    t0 = time.perf_counter()
    run_dir, state = run_small(tmp / "runs", f"bench-{i}")
    wall = time.perf_counter() - t0
    (writer,) = TimedWriter.instances
    events = sum(1 for _ in open(run_dir / "trace.jsonl", encoding="utf-8"))
    return {"wall_s": wall, "trace_s": writer.seconds, "ratio": writer.seconds / wall, "events": events,
            "us_per_event": 1e6 * writer.seconds / max(events, 1),
            "trace_bytes": (run_dir / "trace.jsonl").stat().st_size, "status": state.status,
            "rounds": state.total_rounds}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--json", help="write the measurements here")
    args = ap.parse_args()
    runner.TraceWriter = TimedWriter  # make_services builds the run's writer from this name
    tmp = Path(tempfile.mkdtemp(prefix="bench-trace-"))
    results = []
    for i in range(args.runs):
        r = one_run(tmp, i)
        results.append(r)
        print(f"run {i + 1}: wall {r['wall_s']:.2f}s, in trace writer {r['trace_s'] * 1000:.1f} ms "
              f"({r['events']} events, {r['us_per_event']:.0f} us/event, {r['trace_bytes'] / 1024:.0f} KiB), "
              f"ratio {100 * r['ratio']:.2f}%")
    shutil.rmtree(tmp, ignore_errors=True)
    ratio = statistics.median(r["ratio"] for r in results)
    print(f"trace overhead (time in TraceWriter / run wall time): {100 * ratio:.2f}% "
          f"(goal < {100 * GOAL:.0f}%: {'met' if ratio < GOAL else 'NOT met'})")
    if args.json:
        Path(args.json).write_text(json.dumps({"runs": results, "median_ratio": ratio, "goal": GOAL}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
