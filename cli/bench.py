"""`ioa bench`: the command's arguments and what it prints (the bench itself is the bench package)."""
from __future__ import annotations

import sys
import time
from pathlib import Path

from bench import ARMS, format_plan, run_bench, run_sweep
from bench.jobs import cores, plan_jobs, run_jobs, threads_per_job
from ioa_state import ConfigError, load_config


def add_parser(sub) -> None:
    """Add `ioa bench` to the `ioa` subcommands (called from graph/cli.py build_parser)."""
    b = sub.add_parser(
        "bench",
        help="IOA against its baselines (one-shot, LLM2LLM, undistilled, ablations) over seeds: one table",
        description="For each seed: the IOA run, the undistilled student, one-shot (Self-Instruct) and LLM2LLM "
        "runs on the IOA run's teacher budget and optimizer steps, and the ablations (each from the IOA run's "
        "first diagnosis, its cost charged to it too); "
        "finished runs are reused, unfinished ones resumed. Prints one table and writes "
        "bench.json and bench.svg.",
    )
    b.add_argument("config", nargs="?", help="YAML run config (none: the embedded default)")
    b.add_argument(
        "--seeds", type=int, nargs="+", default=[0, 1, 2], metavar="SEED", help="random seeds (default 0 1 2)"
    )
    b.add_argument("--arms", nargs="+", choices=ARMS, default=list(ARMS), metavar="ARM",
                   help=f"arms to compare (default all: {' '.join(ARMS)})")
    b.add_argument("--out", help="where bench.json and bench.svg go (default <runs-dir>/bench)")
    b.add_argument("--runs-dir", help="where the bench's runs live (default the config's runs_dir)")
    b.add_argument("--teacher", help="teacher spec, as for `ioa run`")
    b.add_argument("--base-url", help="base URL of an OpenAI-compatible server")
    b.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config field")
    b.add_argument("--budget", type=int, metavar="N",
                   help="give every arm N teacher tokens (IOA and the ablations stop cleanly at N); default: the "
                   "config's teacher.token_budget (the embedded default's: 120000), else the matched arms get the IOA "
                   "run's own spend")
    b.add_argument("--budgets", type=int, nargs="+", metavar="N",
                   help="a sweep: the bench at each budget, then the retention-vs-budget curve (sweep.json, "
                   "sweep.svg)")
    b.add_argument("--jobs", type=int, default=1, metavar="N",
                   help="run the seeds (in a sweep, every budget's seeds) as N processes side by side, each with "
                   "its share of the cores, then collect them into the one table (bench/jobs.py; default 1: one "
                   "process)")
    b.add_argument("--dry-run", action="store_true", help="print what would be run, resumed or reused; run nothing")
    b.set_defaults(fn=cmd_bench)


def cmd_bench(args) -> int:
    from cli.options import overrides
    from graph.runner import stderr_progress

    cfg = load_config(args.config, overrides(args))
    seeds = list(dict.fromkeys(args.seeds))
    runs_dir = args.runs_dir or cfg.runs_dir
    out = args.out or str(Path(runs_dir) / "bench")
    budgets = args.budgets or [args.budget if args.budget is not None else cfg.teacher.token_budget]
    if args.budgets and args.budget is not None:
        raise ConfigError("give either --budget N or --budgets A B C, not both")
    if any(b is not None and b <= 0 for b in budgets):
        raise ConfigError(f"a bench budget must be a positive number of teacher tokens, got {budgets}")
    threads = threads_per_job(args.jobs, cores())  # --jobs 0 is bad input, before any work
    if args.dry_run:
        print(format_plan(cfg, seeds, args.arms, runs_dir, out, budgets))
        if args.jobs > 1:
            print(f"as {len(plan_jobs(seeds, budgets))} job(s), {args.jobs} at a time, {threads} torch thread(s) "
                  f"each (bench/jobs.py), then collected")
        return 0
    started = time.perf_counter()
    if args.jobs > 1:
        failed = run_jobs(cfg, seeds, args.arms, budgets, runs_dir, args.jobs, progress=stderr_progress)
        if failed:
            print("ioa: error: bench job(s) failed: " + "; ".join(failed)
                  + ". Their runs resume where they stopped: run the same command again.", file=sys.stderr)
            return 1
    if args.budgets:
        sweep = run_sweep(cfg, seeds, args.arms, args.budgets, runs_dir, out, progress=stderr_progress,
                          started=started, jobs=args.jobs)
        print(sweep["table"])
        print(f"written: {Path(out) / 'sweep.json'}, {Path(out) / 'sweep.svg'} (and b<budget>/bench.json)")
        return 0
    result = run_bench(cfg, seeds, args.arms, runs_dir, out, progress=stderr_progress, budget=budgets[0],
                       started=started, jobs=args.jobs)
    print(result["table"])
    print(f"written: {Path(out) / 'bench.json'}, {Path(out) / 'bench.svg'}; the bench took "
          f"{result['bench_seconds']:.0f} s ({args.jobs} job(s) at a time)")
    sys.stdout.flush()
    return 0
