"""The bench (`ioa bench`): does the pedagogy pay? IOA against its baselines (algorithm §5), over random seeds, in one
table.

For every seed (RunConfig.seed), on the same task pack, teacher and student:

    ioa            the IOA run (runs/bench-<seed>-ioa)
    undistilled    the student as it is: the IOA run's `before` numbers on the same test split; no extra cost
    oneshot        Self-Instruct synthesis on the IOA run's teacher-token budget, trained once for the IOA run's
                   optimizer steps (baselines/oneshot.py; runs/bench-<seed>-oneshot)
    llm2llm        LLM2LLM on the same budget (baselines/llm2llm.py; runs/bench-<seed>-llm2llm)
    no_identifier, no_organizer, no_adapter
                   the IOA run with one component switched off (baselines/ablations.py; runs/bench-<seed>-<arm>),
                   starting from the IOA run's first diagnosis when there is one (graph/fork.py); each reports
                   what it spent, the shared diagnosis included

A run whose report.json exists is reused, an unfinished one is resumed from its last checkpoint (its teacher cache
makes the resume pay nothing twice), so a killed bench continues where it stopped. A run directory made with a
different config (apart from operational fields such as teacher.base_url) is an error, never silently reused.

The table: per arm, test-split score, retention (student / teacher), teachable retention (teacher-limited modules
excluded; those modules are listed under the table, never averaged in silently), teacher tokens (input + output,
every role), optimizer steps and wall time (seconds inside the run's steps, summed from its trace, so a killed and
resumed run counts what it computed), each as the mean and the spread (max - min) over the seeds. Written with the
per-run rows to <out>/bench.json, and drawn (retention per arm with min-max bars) to <out>/bench.svg.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

from bench.arms import (
    ABLATIONS,
    ARMS,
    MATCHED,
    OPERATIONAL,
    arm_config,
    check_compatible,
    comparable,
    ensure_ablation,
    ensure_ioa,
    ensure_matched,
    format_plan,
    plan,
    row,
    run_id_for,
    trace_seconds,
)
from bench.plot import render_curve, render_svg
from bench.table import METRICS, budget_checks, format_sweep, format_table, summarize, sweep_points
from ioa_state import ConfigError, RunConfig

__all__ = ["ABLATIONS", "ARMS", "METRICS", "OPERATIONAL", "arm_config", "budget_checks", "check_compatible",
           "format_plan", "format_table", "plan", "render_svg", "run_bench", "run_id_for", "run_sweep", "summarize",
           "trace_seconds"]


def run_bench(cfg: RunConfig, seeds: list[int], arms: list[str], runs_dir: str | Path | None = None,
              out_dir: str | Path | None = None, progress: Callable[[str], None] | None = None,
              budget: int | None = None, started: float | None = None, jobs: int = 1) -> dict:
    """Run (or reuse) every arm for every seed; write bench.json and bench.svg into out_dir; return the result.

    `budget` (default: the config's teacher.token_budget): every arm gets this many teacher tokens (IOA and the
    ablations stop cleanly at it, the matched arms spend it); None in both: the matched arms get the IOA run's own
    spend."""
    progress = progress or (lambda m: None)
    budget = budget if budget is not None else cfg.teacher.token_budget  # the config's budget is the bench's
    seeds = list(dict.fromkeys(int(s) for s in seeds))
    unknown = [a for a in arms if a not in ARMS]
    if unknown or not arms:
        raise ConfigError(f"unknown bench arm(s) {unknown}: choose from {', '.join(ARMS)}")
    if not seeds:
        raise ConfigError("ioa bench needs at least one seed")
    arms = [a for a in ARMS if a in arms]
    runs_dir = str(runs_dir or cfg.runs_dir)
    out = Path(out_dir) if out_dir else Path(runs_dir) / "bench"
    rows: list[dict] = []
    t0 = started if started is not None else time.perf_counter()
    for seed in seeds:
        if any(a in arms for a in ("ioa", "undistilled", *MATCHED)):
            ioa_dir, ioa_report, action = ensure_ioa(arm_config(cfg, seed, "ioa", runs_dir, budget), progress)
            if "ioa" in arms:
                rows.append(row(seed, "ioa", ioa_dir, ioa_report, action))
            if "undistilled" in arms:
                rows.append(row(seed, "undistilled", ioa_dir, ioa_report, "derived", before=True))
            for arm in (a for a in MATCHED if a in arms):
                d, rep, act = ensure_matched(arm, arm_config(cfg, seed, arm, runs_dir, budget), ioa_dir, ioa_report,
                                             progress, budget)
                rows.append(row(seed, arm, d, rep, act))
        ioa_dir = Path(runs_dir) / run_id_for(seed, "ioa", budget)
        for arm in ABLATIONS:
            if arm in arms:
                d, rep, act = ensure_ablation(arm_config(cfg, seed, arm, runs_dir, budget), ioa_dir, progress)
                rows.append(row(seed, arm, d, rep, act))
    rows.sort(key=lambda r: (arms.index(r["arm"]), seeds.index(r["seed"])))
    result = {
        "pack": cfg.task.pack, "teacher_spec": cfg.teacher.spec, "student_source": cfg.student.source,
        "seeds": seeds, "arms": arms, "runs_dir": runs_dir, "rows": rows, "budget": budget,
        "summary": summarize(rows, arms, seeds), "checks": budget_checks(rows),
        "bench_seconds": round(time.perf_counter() - t0, 3), "jobs": int(jobs),
        "config": comparable(cfg),
        "notes": {"spread": "max - min over the seeds", "wall_s": "seconds inside the run's steps (trace node_end)",
                  "bench_seconds": "wall seconds of the whole bench command (its `jobs` side-by-side processes "
                                   "included); a run reused from an earlier command is not in it",
                  "teacher_tokens": "input + output, every teacher role; undistilled: 0 (no extra cost)",
                  "teachable_retention": "teacher-limited modules excluded (listed in summary[arm].teacher_limited)",
                  "retention_deficient": "mean after / mean teacher score over the modules deficient at the IOA "
                                         "run's first diagnosis",
                  "retention_overall": "student / teacher over every test item",
                  "known_before/known_after": "mean test score of the modules known at the first diagnosis",
                  "tokens_per_point": "teacher tokens (mean) per point (0.01) of retention_deficient gained over "
                                      "the undistilled student",
                  "budget": "teacher tokens given to every arm (null: the matched arms got the IOA run's spend)"},
    }
    result["table"] = format_table(result)
    _write(out, "bench", result, render_svg(result))
    return result


def _write(out: Path, name: str, data: dict, svg: str) -> None:
    """<out>/<name>.json and <out>/<name>.svg, each written atomically; `data` learns its out_dir."""
    from agents.runtime import write_json

    out.mkdir(parents=True, exist_ok=True)
    write_json(out, f"{name}.json", data)
    tmp = out / f".{name}.svg.tmp"
    tmp.write_text(svg)
    tmp.replace(out / f"{name}.svg")
    data["out_dir"] = str(out)


def run_sweep(cfg: RunConfig, seeds: list[int], arms: list[str], budgets: list[int], runs_dir: str | Path | None = None,
              out_dir: str | Path | None = None, progress: Callable[[str], None] | None = None,
              started: float | None = None, jobs: int = 1) -> dict:
    """The bench at each budget (its bench.json under <out>/b<budget>/), then the retention-vs-budget curve:
    <out>/sweep.json (per budget and arm: retention_deficient, retention_overall, tokens spent; mean and spread) and
    <out>/sweep.svg."""
    runs_dir = str(runs_dir or cfg.runs_dir)
    out = Path(out_dir) if out_dir else Path(runs_dir) / "bench"
    t0 = started if started is not None else time.perf_counter()
    results = [run_bench(cfg, seeds, arms, runs_dir, out / f"b{b}", progress, budget=b, started=t0, jobs=jobs)
               for b in sorted(dict.fromkeys(int(b) for b in budgets))]
    sweep = {"pack": cfg.task.pack, "teacher_spec": cfg.teacher.spec, "student_source": cfg.student.source,
             "seeds": results[0]["seeds"], "arms": results[0]["arms"], "budgets": [r["budget"] for r in results],
             "points": sweep_points(results), "bench_seconds": round(time.perf_counter() - t0, 3), "jobs": int(jobs)}
    sweep["table"] = format_sweep(sweep)
    _write(out, "sweep", sweep, render_curve(sweep))
    return sweep


