"""`ioa bench`: does the pedagogy pay? IOA against its baselines (algorithm §5), over random seeds, in one table.

For every seed (RunConfig.seed), on the same task pack, teacher and student:

    ioa            the IOA run (runs/bench-<seed>-ioa)
    undistilled    the student as it is: the IOA run's `before` numbers on the same test split; no extra cost
    oneshot        Self-Instruct synthesis on the IOA run's teacher-token budget, trained once for the IOA run's
                   optimizer steps (graph/oneshot.py; runs/bench-<seed>-oneshot)
    no_identifier, no_organizer, no_adapter
                   the IOA run with one component switched off (RunConfig.ablation; runs/bench-<seed>-<arm>);
                   each reports what it spent

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

import json
import sys
import time
from pathlib import Path
from typing import Callable

from ioa_state import ConfigError, RunConfig, load_config

ARMS = ("ioa", "oneshot", "undistilled", "no_identifier", "no_organizer", "no_adapter")
ABLATIONS = ("no_identifier", "no_organizer", "no_adapter")
METRICS = ("score", "retention", "teachable_retention", "teacher_tokens", "optimizer_steps", "wall_s")
# Fields that say where and how fast a run talks to its teacher, not what it computes: a reused or resumed run may
# differ in these (a vLLM server restarted on another port), and a resume takes the current values.
OPERATIONAL = ("run_id", "runs_dir", "teacher.base_url", "teacher.api_key_env", "teacher.concurrency",
               "teacher.requests_per_minute", "teacher.tokens_per_minute", "teacher.max_retries",
               "teacher.retry_budget", "teacher.timeout_s", "teacher.token_budget", "teacher.shared_cache",
               "student.device")


def run_id_for(seed: int, arm: str) -> str:
    return f"bench-{seed}-{arm}"


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v and k not in ("roles",):
            out.update(_flat(v, key + "."))
        else:
            out[key] = v
    return out


def _comparable(cfg: RunConfig) -> dict:
    flat = _flat(cfg.model_dump(mode="json"))
    return {k: v for k, v in flat.items() if k not in OPERATIONAL}


def arm_config(cfg: RunConfig, seed: int, arm: str, runs_dir: str) -> RunConfig:
    """The config of one arm's run for one seed."""
    ablation = arm if arm in ABLATIONS else "none"
    return cfg.model_copy(update={"seed": seed, "ablation": ablation, "run_id": run_id_for(seed, arm),
                                  "runs_dir": str(runs_dir)})


def check_compatible(run_dir: Path, cfg: RunConfig) -> None:
    """Raise ConfigError when run_dir's saved config differs from cfg in anything but operational fields."""
    path = run_dir / "config.yaml"
    if not path.is_file():
        return
    try:
        saved = load_config(path)
    except ConfigError as e:
        raise ConfigError(f"bench run {run_dir} has a config this version cannot read ({e}); "
                          f"use another --runs-dir or remove it") from None
    a, b = _comparable(saved), _comparable(cfg)
    diff = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
    if diff:
        raise ConfigError(f"bench run {run_dir} was made with a different config ({', '.join(diff[:5])}"
                          f"{', ...' if len(diff) > 5 else ''}): use another --runs-dir, or remove it to redo it")


def trace_seconds(run_dir: Path) -> float:
    """Seconds spent inside the run's steps: the sum of its trace's node_end `seconds` (over every session)."""
    from agents.tracing import node_seconds

    return node_seconds(Path(run_dir) / "trace.jsonl")


def _state_of(run_dir: Path) -> str:
    if (run_dir / "report.json").is_file():
        return "reuse"
    if (run_dir / "checkpoints.sqlite").is_file():
        return "resume"
    return "run"


def _resume(run_dir: Path, cfg: RunConfig, progress) -> None:
    """Continue an unfinished graph run from its last checkpoint (runner.resume), with cfg's operational fields."""
    from graph import runner

    saved = load_config(run_dir / "config.yaml")
    now, before = _flat(cfg.model_dump(mode="json")), _flat(saved.model_dump(mode="json"))
    overrides = {k: now.get(k) for k in OPERATIONAL if k not in ("run_id", "runs_dir") and now.get(k) != before.get(k)}
    runner.resume(str(run_dir), overrides=overrides or None, progress=progress)


def ensure_graph_run(cfg: RunConfig, progress) -> tuple[Path, dict, str]:
    """Run (or resume, or reuse) the graph run cfg names; returns (run dir, report, what was done)."""
    from graph import runner

    run_dir = Path(cfg.runs_dir) / cfg.run_id
    check_compatible(run_dir, cfg)
    action = _state_of(run_dir)
    if action == "run":
        progress(f"bench: {cfg.run_id}: new run")
        runner.start(cfg, progress=progress)
    elif action == "resume":
        progress(f"bench: {cfg.run_id}: resuming the unfinished run")
        _resume(run_dir, cfg, progress)
    else:
        progress(f"bench: {cfg.run_id}: reusing the finished run")
    path = run_dir / "report.json"
    if not path.is_file():
        raise RuntimeError(f"run {cfg.run_id} ended without a report.json")
    return run_dir, json.loads(path.read_text()), action


def ensure_oneshot(cfg: RunConfig, ioa_dir: Path, ioa_report: dict, progress) -> tuple[Path, dict, str]:
    """The one-shot run for cfg's seed, reused when its report matches the IOA run's budget and steps."""
    from baselines.oneshot import run_oneshot

    run_dir = Path(cfg.runs_dir) / cfg.run_id
    check_compatible(run_dir, cfg)
    path = run_dir / "report.json"
    if path.is_file():
        data = json.loads(path.read_text())
        base = data.get("baseline") or {}
        if base.get("budget") == ioa_report["teacher_tokens"] and base.get("target_steps") == ioa_report["optimizer_steps"]:
            progress(f"bench: {cfg.run_id}: reusing the finished run")
            return run_dir, data, "reuse"
        progress(f"bench: {cfg.run_id}: its budget or steps differ from {ioa_report.get('run_id')}'s: redoing it "
                 f"(cached teacher calls are free)")
    action = "resume" if (run_dir / "teacher_cache.sqlite").is_file() else "run"
    run_dir, data = run_oneshot(cfg, ioa_dir, cfg.run_id, progress)
    return run_dir, data, action


def _row(seed: int, arm: str, run_dir: Path, report: dict, action: str, *, before: bool = False) -> dict:
    """One arm's numbers for one seed, from a report (the student-before numbers for the undistilled arm)."""
    o = report["overall"]
    t = report.get("teachable_overall") or {}
    side = "before" if before else "after"
    return {
        "seed": seed, "arm": arm, "run_id": report.get("run_id"), "run_dir": str(run_dir), "action": action,
        "status": report.get("status", "finished"), "stop_reason": report.get("stop_reason"),
        "teacher": o["teacher"], "score": o[side], "retention": o[f"retention_{side}"],
        "teachable_retention": t.get(f"retention_{side}"),
        "teacher_limited": list(report.get("teacher_limited") or []),
        "teacher_tokens": 0 if before else int(report.get("teacher_tokens") or 0),
        "optimizer_steps": 0 if before else int(report.get("optimizer_steps") or 0),
        "wall_s": 0.0 if before else float(report["wall_s"]) if report.get("wall_s") is not None
        else trace_seconds(run_dir),
        "modules": {r["module"]: {"teacher": r["teacher"], "score": r[side], "retention": r[f"retention_{side}"],
                                  "teacher_limited": r["teacher_limited"]} for r in report.get("modules", [])},
    }


def plan(cfg: RunConfig, seeds: list[int], arms: list[str], runs_dir: str) -> list[dict]:
    """What a bench would do, from the run directories alone (loads no model): one entry per (seed, run)."""
    steps = []
    need_ioa = any(a in arms for a in ("ioa", "oneshot", "undistilled"))
    for seed in seeds:
        if need_ioa:
            d = Path(runs_dir) / run_id_for(seed, "ioa")
            steps.append({"seed": seed, "arm": "ioa", "run_dir": str(d), "action": _state_of(d),
                          "shown": "ioa" in arms})
        if "undistilled" in arms:
            steps.append({"seed": seed, "arm": "undistilled", "run_dir": str(Path(runs_dir) / run_id_for(seed, "ioa")),
                          "action": "derived", "shown": True, "note": " (the IOA run's student-before numbers)"})
        if "oneshot" in arms:
            d = Path(runs_dir) / run_id_for(seed, "oneshot")
            act = "reuse" if (d / "report.json").is_file() else "resume" if (d / "teacher_cache.sqlite").is_file() else "run"
            steps.append({"seed": seed, "arm": "oneshot", "run_dir": str(d), "action": act, "shown": True})
        for arm in ABLATIONS:
            if arm in arms:
                d = Path(runs_dir) / run_id_for(seed, arm)
                steps.append({"seed": seed, "arm": arm, "run_dir": str(d), "action": _state_of(d), "shown": True})
    return steps


def format_plan(cfg: RunConfig, seeds: list[int], arms: list[str], runs_dir: str, out_dir: str) -> str:
    lines = [f"ioa bench plan: pack {cfg.task.pack} (limit {cfg.task.limit}), teacher {cfg.teacher.spec}, "
             f"student {cfg.student.source}, seeds {' '.join(map(str, seeds))}, arms {' '.join(arms)}",
             f"runs under {runs_dir}; bench.json, bench.svg into {out_dir}"]
    for s in plan(cfg, seeds, arms, runs_dir):
        note = s.get("note", "") if s["shown"] else " (needed for the one-shot budget / undistilled numbers)"
        lines.append(f"  seed {s['seed']:<3} {s['arm']:<14} {s['action']:<8} {s['run_dir']}{note}")
    if len(seeds) < 3:
        lines.append("note: the spread (max - min) is meant over at least 3 seeds (algorithm §5)")
    return "\n".join(lines)


# -- aggregation -------------------------------------------------------------------------------------------------
def _stats(values: list[float | None]) -> dict:
    vals = [float(v) for v in values if v is not None]
    if not vals:
        return {"mean": None, "spread": None, "min": None, "max": None, "n": 0}
    return {"mean": sum(vals) / len(vals), "spread": max(vals) - min(vals), "min": min(vals), "max": max(vals),
            "n": len(vals)}


def summarize(rows: list[dict], arms: list[str], seeds: list[int]) -> dict:
    summary = {}
    for arm in arms:
        mine = [r for r in rows if r["arm"] == arm]
        summary[arm] = {m: _stats([r[m] for r in mine]) for m in METRICS}
        summary[arm]["seeds"] = [r["seed"] for r in mine]
        limited: dict[str, list[int]] = {}
        for r in mine:
            for k in r["teacher_limited"]:
                limited.setdefault(k, []).append(r["seed"])
        summary[arm]["teacher_limited"] = limited
    summary["_teacher"] = _stats([r["teacher"] for r in rows if r["arm"] in ("ioa", "undistilled")]
                                 or [r["teacher"] for r in rows])
    return summary


def budget_checks(rows: list[dict]) -> list[dict]:
    """Per seed: the one-shot's spend against the IOA run's budget, and their optimizer steps."""
    out = []
    by = {(r["seed"], r["arm"]): r for r in rows}
    for (seed, arm), r in sorted(by.items()):
        if arm != "oneshot":
            continue
        rep = json.loads((Path(r["run_dir"]) / "report.json").read_text())
        base = rep.get("baseline", {})
        budget, spent = base.get("budget", 0), rep.get("teacher_tokens", 0)
        out.append({"seed": seed, "budget": budget, "spent": spent,
                    "fraction": spent / budget if budget else None,
                    "within_5pct": bool(budget) and abs(spent - budget) <= 0.05 * budget,
                    "ioa_steps": base.get("target_steps"), "oneshot_steps": rep.get("optimizer_steps"),
                    "steps_equal": base.get("target_steps") == rep.get("optimizer_steps")})
    return out


def _cell(s: dict, fmt: str, width: int, n_seeds: int) -> str:
    if s["mean"] is None:
        return f"{'-':<{width}}"
    star = "*" if s["n"] < n_seeds else ""
    return f"{format(s['mean'], fmt)} [{format(s['spread'], fmt)}]{star}".ljust(width)


def format_table(result: dict) -> str:
    arms, summary, seeds = result["arms"], result["summary"], result["seeds"]
    cols = [("score", ".3f", 16), ("retention", ".3f", 16), ("teachable_retention", ".3f", 17),
            ("teacher_tokens", ".0f", 18), ("optimizer_steps", ".0f", 12), ("wall_s", ".1f", 14)]
    heads = ["score", "retention", "teachable ret.", "teacher tokens", "opt. steps", "wall s"]
    lines = [f"IOA against its baselines: pack {result['pack']}, teacher {result['teacher_spec']}, "
             f"student {result['student_source']}, "
             f"seeds {' '.join(map(str, seeds))}",
             "test split; retention = student / teacher; each cell: mean [spread = max - min over the seeds]",
             (f"{'arm':<15}" + "".join(f"{h:<{w}}" for h, (_, _, w) in zip(heads, cols))).rstrip()]
    for arm in arms:
        s = summary[arm]
        cells = "".join(_cell(s[m], fmt, w, len(seeds)) for m, fmt, w in cols)
        lines.append(f"{arm:<15}{cells}".rstrip())
    if any(summary[arm][m]["n"] < len(seeds) for arm in arms for m, _, _ in cols):
        lines.append("*: over fewer seeds (a seed whose modules are all teacher-limited has no teachable retention)")
    t = summary["_teacher"]
    if t["mean"] is not None:
        lines.append(f"teacher's test score: {t['mean']:.3f} [{t['spread']:.3f}] (the reference of every retention)")
    limited: dict[str, dict[str, list[int]]] = {}
    for arm in arms:
        for k, ss in summary[arm]["teacher_limited"].items():
            limited.setdefault(k, {})[arm] = ss
    if limited:
        lines.append("teacher-limited modules (the teacher scores below teacher_floor on them: counted in score and "
                     "retention, excluded from teachable retention):")
        for k, by_arm in sorted(limited.items()):
            groups: dict[tuple, list[str]] = {}
            for arm, ss in by_arm.items():
                groups.setdefault(tuple(sorted(set(ss))), []).append(arm)
            desc = "; ".join(f"seeds {' '.join(map(str, g))} in {', '.join(a)}" for g, a in groups.items())
            lines.append(f"  {k}: {desc}")
    else:
        lines.append("teacher-limited modules: none")
    for c in result.get("checks", []):
        frac = f"{100 * c['fraction']:.1f}%" if c["fraction"] is not None else "-"
        lines.append(f"one-shot seed {c['seed']}: spent {c['spent']} of the IOA run's {c['budget']} teacher tokens "
                     f"({frac}{'' if c['within_5pct'] else ', NOT within 5%'}); optimizer steps {c['oneshot_steps']}"
                     f" {'=' if c['steps_equal'] else '!='} IOA's {c['ioa_steps']}")
    stopped = [r for r in result["rows"] if r["status"] != "finished"]
    for r in stopped:
        lines.append(f"note: {r['run_id']} ({r['arm']}, seed {r['seed']}) {r['status']}: {r['stop_reason']}")
    if len(seeds) < 3:
        lines.append("note: fewer than 3 seeds; the algorithm's spread is over at least 3")
    return "\n".join(lines)


# -- the plot ----------------------------------------------------------------------------------------------------
def _esc(text: str) -> str:
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def render_svg(result: dict) -> str:
    """Retention per arm: a bar at the mean, a min-max bar, a dot per seed; teachable retention as a diamond."""
    arms, summary, rows = result["arms"], result["summary"], result["rows"]
    left, right, top, row_h = 130, 30, 66, 34
    width = 680
    plot_w = width - left - right
    height = top + row_h * len(arms) + 50
    vals = [v for arm in arms for m in ("retention", "teachable_retention") for v in (summary[arm][m]["max"],)
            if v is not None]
    xmax = max([1.0] + vals) * 1.05
    x = lambda v: left + plot_w * v / xmax  # noqa: E731
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           '<text x="10" y="20" font-size="14" font-weight="bold">Test-split retention (student / teacher) '
           'per arm</text>',
           f'<text x="10" y="38" fill="#555">bar: mean over seeds {_esc(" ".join(map(str, result["seeds"])))}; '
           f'line: min-max; dots: seeds; diamond: teachable retention</text>']
    axis_y = top + row_h * len(arms)
    tick = 0.0
    while tick <= xmax + 1e-9:
        out.append(f'<line x1="{x(tick):.1f}" y1="{top - 4}" x2="{x(tick):.1f}" y2="{axis_y}" stroke="#ddd"/>')
        out.append(f'<text x="{x(tick):.1f}" y="{axis_y + 16}" text-anchor="middle">{tick:.2f}</text>')
        tick = round(tick + 0.25, 10)
    out.append(f'<line x1="{x(1.0):.1f}" y1="{top - 8}" x2="{x(1.0):.1f}" y2="{axis_y}" stroke="#c33" '
               f'stroke-dasharray="4 3"/>')
    out.append(f'<text x="{x(1.0) + 3:.1f}" y="{top - 10}" fill="#c33">teacher</text>')
    out.append(f'<text x="{left + plot_w / 2:.1f}" y="{axis_y + 36}" text-anchor="middle">retention</text>')
    for i, arm in enumerate(arms):
        s = summary[arm]
        cy = top + row_h * i + row_h / 2
        out.append(f'<text x="{left - 8}" y="{cy + 4:.1f}" text-anchor="end">{_esc(arm)}</text>')
        r = s["retention"]
        if r["mean"] is None:
            continue
        out.append(f'<rect x="{left}" y="{cy - 9:.1f}" width="{max(0.0, x(r["mean"]) - left):.1f}" height="18" '
                   f'fill="#7fa7d9"><title>{_esc(arm)}: mean {r["mean"]:.3f}, min {r["min"]:.3f}, '
                   f'max {r["max"]:.3f}</title></rect>')
        out.append(f'<line x1="{x(r["min"]):.1f}" y1="{cy:.1f}" x2="{x(r["max"]):.1f}" y2="{cy:.1f}" '
                   f'stroke="#123" stroke-width="2"/>')
        for end in (r["min"], r["max"]):
            out.append(f'<line x1="{x(end):.1f}" y1="{cy - 6:.1f}" x2="{x(end):.1f}" y2="{cy + 6:.1f}" '
                       f'stroke="#123" stroke-width="2"/>')
        for row in rows:
            if row["arm"] == arm and row["retention"] is not None:
                out.append(f'<circle cx="{x(row["retention"]):.1f}" cy="{cy:.1f}" r="3" fill="#123">'
                           f'<title>seed {row["seed"]}: {row["retention"]:.3f}</title></circle>')
        t = s["teachable_retention"]
        if t["mean"] is not None:
            px = x(t["mean"])
            out.append(f'<path d="M{px:.1f},{cy - 13:.1f} l5,5 l-5,5 l-5,-5 z" fill="#e08a2c">'
                       f'<title>{_esc(arm)} teachable retention: mean {t["mean"]:.3f}, min {t["min"]:.3f}, '
                       f'max {t["max"]:.3f}</title></path>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


# -- the bench ---------------------------------------------------------------------------------------------------
def run_bench(cfg: RunConfig, seeds: list[int], arms: list[str], runs_dir: str | Path | None = None,
              out_dir: str | Path | None = None, progress: Callable[[str], None] | None = None) -> dict:
    """Run (or reuse) every arm for every seed; write bench.json and bench.svg into out_dir; return the result."""
    progress = progress or (lambda m: None)
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
    t0 = time.perf_counter()
    for seed in seeds:
        if any(a in arms for a in ("ioa", "oneshot", "undistilled")):
            ioa_dir, ioa_report, action = ensure_graph_run(arm_config(cfg, seed, "ioa", runs_dir), progress)
            if "ioa" in arms:
                rows.append(_row(seed, "ioa", ioa_dir, ioa_report, action))
            if "undistilled" in arms:
                rows.append(_row(seed, "undistilled", ioa_dir, ioa_report, "derived", before=True))
            if "oneshot" in arms:
                d, rep, act = ensure_oneshot(arm_config(cfg, seed, "oneshot", runs_dir), ioa_dir, ioa_report, progress)
                rows.append(_row(seed, "oneshot", d, rep, act))
        for arm in ABLATIONS:
            if arm in arms:
                d, rep, act = ensure_graph_run(arm_config(cfg, seed, arm, runs_dir), progress)
                rows.append(_row(seed, arm, d, rep, act))
    rows.sort(key=lambda r: (arms.index(r["arm"]), seeds.index(r["seed"])))
    result = {
        "pack": cfg.task.pack, "teacher_spec": cfg.teacher.spec, "student_source": cfg.student.source,
        "seeds": seeds, "arms": arms, "runs_dir": runs_dir, "rows": rows,
        "summary": summarize(rows, arms, seeds), "checks": budget_checks(rows),
        "bench_seconds": round(time.perf_counter() - t0, 3),
        "config": _comparable(cfg),
        "notes": {"spread": "max - min over the seeds", "wall_s": "seconds inside the run's steps (trace node_end)",
                  "teacher_tokens": "input + output, every teacher role; undistilled: 0 (no extra cost)",
                  "teachable_retention": "teacher-limited modules excluded (listed in summary[arm].teacher_limited)"},
    }
    result["table"] = format_table(result)
    out.mkdir(parents=True, exist_ok=True)
    from agents.runtime import write_json

    write_json(out, "bench.json", result)
    tmp = out / ".bench.svg.tmp"
    tmp.write_text(render_svg(result))
    tmp.replace(out / "bench.svg")
    result["out_dir"] = str(out)
    return result


# -- the command -------------------------------------------------------------------------------------------------
def add_parser(sub) -> None:
    """Add `ioa bench` to the `ioa` subcommands (called from graph/cli.py build_parser)."""
    b = sub.add_parser("bench", help="IOA against its baselines (one-shot, undistilled, ablations) over seeds: one table",
                       description="For each seed: the IOA run, the undistilled student, a one-shot (Self-Instruct) "
                                   "run on the IOA run's teacher budget and optimizer steps, and the ablations; "
                                   "finished runs are reused, unfinished ones resumed. Prints one table and writes "
                                   "bench.json and bench.svg.")
    b.add_argument("config", nargs="?", help="YAML run config (none: the embedded default)")
    b.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], metavar="SEED", help="random seeds (default 0 1 2)")
    b.add_argument("--arms", nargs="+", choices=ARMS, default=list(ARMS), metavar="ARM",
                   help=f"arms to compare (default all: {' '.join(ARMS)})")
    b.add_argument("--out", help="where bench.json and bench.svg go (default <runs-dir>/bench)")
    b.add_argument("--runs-dir", help="where the bench's runs live (default the config's runs_dir)")
    b.add_argument("--teacher", help="teacher spec, as for `ioa run`")
    b.add_argument("--base-url", help="base URL of an OpenAI-compatible server")
    b.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config field")
    b.add_argument("--dry-run", action="store_true", help="print what would be run, resumed or reused; run nothing")
    b.set_defaults(fn=cmd_bench)


def cmd_bench(args) -> int:
    from graph.cli import _overrides
    from graph.runner import stderr_progress

    cfg = load_config(args.config, _overrides(args))
    seeds = list(dict.fromkeys(args.seeds))
    runs_dir = args.runs_dir or cfg.runs_dir
    out = args.out or str(Path(runs_dir) / "bench")
    if args.dry_run:
        print(format_plan(cfg, seeds, args.arms, runs_dir, out))
        return 0
    result = run_bench(cfg, seeds, args.arms, runs_dir, out, progress=stderr_progress)
    print(result["table"])
    print(f"written: {Path(out) / 'bench.json'}, {Path(out) / 'bench.svg'}")
    sys.stdout.flush()
    return 0
