"""The embedded default over several random seeds: test-split retention before and after, and its spread.

    python benchmarks/demo_seeds.py --seeds 0 1 2 [--runs-dir runs/demo-seeds] [--set key=value ...]

Runs `ioa run --seed S` for each seed (a finished run with the same id is reused, an unfinished one resumed), then
prints, per seed, retention (student / teacher on the test split) before and after, teacher tokens, optimizer
steps and wall time, and the mean and spread (max - min) over the seeds. The gain counts as real when the mean
gain exceeds the spread of the after-retention. This is what produced the README's "Results" numbers.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path


def run_seed(seed: int, runs_dir: Path, sets: list[str]) -> tuple[dict, float]:
    run_id = f"demo-s{seed}"
    report = runs_dir / run_id / "report.json"
    t0 = time.perf_counter()
    if report.exists():  # reused: the wall time the run recorded (time inside its nodes)
        data = json.loads(report.read_text())
        return data, data.get("wall_s", 0.0)
    else:
        base = [sys.executable, "-m", "cli.main"]
        if (runs_dir / run_id / "config.yaml").exists():
            cmd = base + ["resume", run_id, "--runs-dir", str(runs_dir)]
        else:
            cmd = base + ["run", "--seed", str(seed), "--run-id", run_id, "--runs-dir", str(runs_dir)]
            for s in sets:
                cmd += ["--set", s]
        subprocess.run(cmd, check=True)
    return json.loads(report.read_text()), time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--runs-dir", default="runs/demo-seeds")
    ap.add_argument("--set", action="append", default=[])
    args = ap.parse_args()
    runs_dir = Path(args.runs_dir)
    rows = []
    for seed in args.seeds:
        data, wall = run_seed(seed, runs_dir, args.set)
        o = data["overall"]
        rows.append({"seed": seed, "before": o["retention_before"], "after": o["retention_after"],
                     "teacher": o["teacher"], "tokens": data["teacher_tokens"], "steps": data["optimizer_steps"],
                     "rounds": data["rounds"], "wall_s": wall})
    print(
        f"{'seed':>4} {'teacher':>8} {'ret.before':>10} {'ret.after':>10} "
        f"{'tokens':>8} {'steps':>6} {'rounds':>6} {'wall s':>7}"
    )
    for r in rows:
        print(f"{r['seed']:>4} {r['teacher']:>8.3f} {r['before']:>10.3f} {r['after']:>10.3f} {r['tokens']:>8} "
              f"{r['steps']:>6} {r['rounds']:>6} {r['wall_s']:>7.0f}")
    mean = lambda k: sum(r[k] for r in rows) / len(rows)  # noqa: E731
    spread = lambda k: max(r[k] for r in rows) - min(r[k] for r in rows)  # noqa: E731
    gain = mean("after") - mean("before")
    print(f"mean retention before {mean('before'):.3f} (spread {spread('before'):.3f}), after {mean('after'):.3f} "
          f"(spread {spread('after'):.3f}); gain {gain:+.3f} {'>' if gain > spread('after') else '<='} spread "
          f"{spread('after'):.3f}; mean wall {mean('wall_s'):.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
