"""IOA against its baselines on the embedded default, over 3 seeds: the table in benchmarks/README.md.

Runs `ioa bench` (the bench package) with no config (the embedded default: Zorbia, SmolLM2-135M-Instruct teacher with
the knowledge sheet, the same model as student) for seeds 0 1 2 and every arm: ioa, oneshot, undistilled,
no_identifier, no_organizer, no_adapter. Finished runs are reused and unfinished ones resumed, so a killed
benchmark continues where it stopped. Long on a 2-core CPU (18 runs): see the README for the time it took.

    .venv/bin/python benchmarks/bench_ioa_vs_baselines.py --dry-run     # print the plan, run nothing
    .venv/bin/python benchmarks/bench_ioa_vs_baselines.py [--seeds 0 1 2] [--runs-dir runs/bench-default]
        [--out benchmarks/results] [--set student.epochs=2 ...]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import bench  # noqa: E402  (light: models load only when a run starts)
from cli.options import parse_set  # noqa: E402
from ioa_state import load_config  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--arms", nargs="+", choices=bench.ARMS, default=list(bench.ARMS))
    p.add_argument("--runs-dir", default="runs/bench-default", help="where the runs go (default runs/bench-default)")
    p.add_argument("--out", default="benchmarks/results", help="bench.json and bench.svg (default benchmarks/results)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a field of the embedded default")
    p.add_argument("--dry-run", action="store_true", help="print the plan (what runs, resumes or is reused) and exit")
    args = p.parse_args(argv)
    cfg = load_config(None, {**parse_set(args.set), "runs_dir": args.runs_dir})
    print(bench.format_plan(cfg, args.seeds, args.arms, args.runs_dir, args.out), flush=True)
    if args.dry_run:
        return 0
    from graph.runner import stderr_progress

    result = bench.run_bench(cfg, args.seeds, args.arms, args.runs_dir, args.out, progress=stderr_progress)
    print(result["table"])
    print(f"written: {Path(args.out) / 'bench.json'}, {Path(args.out) / 'bench.svg'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
