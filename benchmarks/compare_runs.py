"""Do two runs compute the same thing? Compares two run directories: report numbers, decisions, kept and dropped
items, wrong answers and the teacher calls paid (timings and paths aside).

    python benchmarks/compare_runs.py runs/before runs/after      # exit 0 when equal, 1 with the differences

Used to show that a refactoring changed no behaviour (the same seed's run before and after). Values of `None` and
absent keys count as equal (typed records leave unset fields out).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

TIMING = {"wall_s", "report_seconds", "seconds", "latency_s", "ts", "run_id", "run_dir", "checkpoint", "sha256"}


def _clean(x):
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in sorted(x.items()) if v is not None and k not in TIMING}
    if isinstance(x, list):
        return [_clean(v) for v in x]
    if isinstance(x, float):
        return round(x, 9)
    return x


def _jsonl(path: Path) -> list:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def snapshot(run_dir: Path) -> dict:
    """What a run computed, without timings: report, every items/ file, decisions and paid teacher tokens."""
    run_dir = Path(run_dir)
    out = {"report": _clean(json.loads((run_dir / "report.json").read_text()))}
    out["report"].pop("usage_by_backend", None)
    for f in sorted((run_dir / "items").glob("*.jsonl")):
        out[f"items/{f.name}"] = _clean(_jsonl(f))
    events = _jsonl(run_dir / "trace.jsonl")
    out["decisions"] = _clean([{k: e.get(k) for k in ("decision", "cycle", "stage", "round", "numbers", "failing")}
                               for e in events if e.get("event") == "decision"])
    paid = [e for e in events if e.get("event") == "teacher_call" and not e.get("cached")]
    out["teacher_paid"] = {
        "calls": len(paid),
        "tokens": sum(e.get("tokens_in", 0) + e.get("tokens_out", 0) for e in paid),
    }
    return out


def differences(a: dict, b: dict, path: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b)):
            out += differences(a.get(k), b.get(k), f"{path}.{k}" if path else k)
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in differences(x, y, f"{path}[{i}]")]
    return [] if a == b else [f"{path}: {str(a)[:120]!r} != {str(b)[:120]!r}"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("before")
    p.add_argument("after")
    args = p.parse_args(argv)
    diff = differences(snapshot(Path(args.before)), snapshot(Path(args.after)))
    for line in diff[:40]:
        print(line)
    print(f"{len(diff)} difference(s) between {args.before} and {args.after}")
    return 1 if diff else 0


if __name__ == "__main__":
    sys.exit(main())
