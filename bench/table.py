"""The bench's table: per arm, the mean and spread (max - min over the seeds) of every metric, and the budget checks.

Metrics: test-split score, retention (student / teacher), teachable retention (teacher-limited modules excluded;
those modules are listed under the table, never averaged in silently), teacher tokens (input + output, every role),
optimizer steps and wall time (seconds inside the run's steps, summed from its trace).
"""
from __future__ import annotations

import json
from pathlib import Path

METRICS = ("score", "retention", "teachable_retention", "retention_overall", "retention_deficient", "known_before",
           "known_after", "teacher_tokens", "optimizer_steps", "wall_s")
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
        summary[arm] = {m: _stats([r.get(m) for r in mine]) for m in METRICS}
        summary[arm]["seeds"] = [r["seed"] for r in mine]
        limited: dict[str, list[int]] = {}
        for r in mine:
            for k in r["teacher_limited"]:
                limited.setdefault(k, []).append(r["seed"])
        summary[arm]["teacher_limited"] = limited
        summary[arm]["budget"] = next((r.get("budget") for r in mine if r.get("budget") is not None), None)
        summary[arm]["teacher_tokens_by_seed"] = {str(r["seed"]): r["teacher_tokens"] for r in mine}
        summary[arm]["tokens_per_point"] = tokens_per_point(mine)
    summary["_teacher"] = _stats([r["teacher"] for r in rows if r["arm"] in ("ioa", "undistilled")]
                                 or [r["teacher"] for r in rows])
    return summary


def tokens_per_point(rows: list[dict]) -> float | None:
    """Teacher tokens (mean over seeds) per point (0.01) of retention on the first diagnosis's deficient modules
    gained over the student before (mean over seeds); None when nothing was gained or nothing spent."""
    pairs = [(r["teacher_tokens"], r["retention_deficient"], r.get("retention_deficient_before")) for r in rows
             if r.get("retention_deficient") is not None and r.get("retention_deficient_before") is not None]
    if not pairs:
        return None
    tokens = sum(p[0] for p in pairs) / len(pairs)
    gain = 100 * sum(p[1] - p[2] for p in pairs) / len(pairs)
    return tokens / gain if gain > 0 and tokens > 0 else None


def sweep_points(results: list[dict]) -> list[dict]:
    """One point per (budget, arm) of a sweep: retention on the deficient modules and overall, tokens spent."""
    points = []
    for res in results:
        for arm in res["arms"]:
            s = res["summary"][arm]
            points.append({"budget": res["budget"], "arm": arm,
                           **{m: s[m] for m in ("retention_deficient", "retention_overall", "known_after",
                                                "teacher_tokens")},
                           "tokens_per_point": s["tokens_per_point"]})
    return points


def format_sweep(sweep: dict) -> str:
    """Retention on the deficient modules (mean [spread]) per budget and arm, and teacher tokens per point."""
    arms, budgets = sweep["arms"], sweep["budgets"]
    at = {(p["budget"], p["arm"]): p for p in sweep["points"]}
    lines = [f"retention vs teacher-token budget: pack {sweep['pack']}, seeds {' '.join(map(str, sweep['seeds']))}",
             "cell: retention on the modules deficient at the first diagnosis, mean [spread]; "
             "overall retention; teacher tokens per point gained",
             f"{'budget':<10}" + "".join(f"{a:<34}" for a in arms)]
    for b in budgets:
        cells = []
        for a in arms:
            p = at.get((b, a))
            rd, ro = (p or {}).get("retention_deficient") or {}, (p or {}).get("retention_overall") or {}
            if rd.get("mean") is None:
                cells.append(f"{'-':<34}")
                continue
            tpp = p.get("tokens_per_point")
            cells.append(f"{rd['mean']:.3f} [{rd['spread']:.3f}]; {ro['mean']:.3f}; "
                         f"{f'{tpp:.0f}' if tpp else '-'}".ljust(34))
        lines.append(f"{b:<10}" + "".join(cells))
    return "\n".join(line.rstrip() for line in lines)


STOPPED = {"max_rounds": "its training-round cap (baselines/llm2llm.py MAX_ROUNDS)",
           "nothing_wrong": "no seed item wrong any more", "budget": "the budget could not pay another pair",
           "no_new_items": "a round kept no new item"}  # why an LLM2LLM run ended (its report's baseline.stopped)


def budget_checks(rows: list[dict]) -> list[dict]:
    """Per seed and matched arm (one-shot, LLM2LLM): its spend against its budget (the bench's, or the IOA run's
    spend), and optimizer steps against the IOA run's."""
    out = []
    by = {(r["seed"], r["arm"]): r for r in rows}
    for (seed, arm), r in sorted(by.items()):
        if arm not in ("oneshot", "llm2llm"):
            continue
        rep = json.loads((Path(r["run_dir"]) / "report.json").read_text())
        base = rep.get("baseline", {})
        budget, spent = base.get("budget", 0), rep.get("teacher_tokens", 0)
        out.append({"seed": seed, "arm": arm, "budget": budget, "spent": spent,
                    "fraction": spent / budget if budget else None,
                    "within_5pct": bool(budget) and abs(spent - budget) <= 0.05 * budget,
                    "ioa_steps": base.get("target_steps"), "oneshot_steps": rep.get("optimizer_steps"),
                    "steps_equal": base.get("target_steps") == rep.get("optimizer_steps"),
                    "stopped": base.get("stopped")})
    return out


def _cell(s: dict, fmt: str, width: int, n_seeds: int) -> str:
    if s["mean"] is None:
        return f"{'-':<{width}}"
    star = "*" if s["n"] < n_seeds else ""
    return f"{format(s['mean'], fmt)} [{format(s['spread'], fmt)}]{star}".ljust(width)


def format_table(result: dict) -> str:
    arms, summary, seeds = result["arms"], result["summary"], result["seeds"]
    cols = [("retention_deficient", ".3f", 15), ("retention", ".3f", 15), ("known_before", ".2f", 13),
            ("known_after", ".2f", 13), ("teacher_tokens", ".0f", 17), ("optimizer_steps", ".0f", 11),
            ("wall_s", ".0f", 11)]
    heads = ["ret. deficient", "ret. overall", "known before", "known after", "teacher tokens", "opt. steps",
             "wall s"]
    lines = [f"IOA against its baselines: pack {result['pack']}, teacher {result['teacher_spec']}, "
             f"student {result['student_source']}, "
             f"seeds {' '.join(map(str, seeds))}",
             "test split; retention = student / teacher; each cell: mean [spread = max - min over the seeds]"
             + (f"; every arm's budget: {result['budget']} teacher tokens" if result.get("budget") else ""),
             "ret. deficient: the modules deficient at the first diagnosis; known: mean test score of the modules "
             "known at the first diagnosis",
             (f"{'arm':<15}" + "".join(f"{h:<{w}}" for h, (_, _, w) in zip(heads, cols))).rstrip()]
    for arm in arms:
        s = summary[arm]
        cells = "".join(_cell(s[m], fmt, w, len(seeds)) for m, fmt, w in cols)
        lines.append(f"{arm:<15}{cells}".rstrip())
    if any(summary[arm][m]["n"] < len(seeds) for arm in arms for m, _, _ in cols):
        lines.append("*: over fewer seeds (a seed whose modules are all teacher-limited has no teachable retention)")
    gains = [f"{arm} {summary[arm]['tokens_per_point']:.0f}" for arm in arms if summary[arm].get("tokens_per_point")]
    if gains:
        lines.append("teacher tokens per point of deficient-module retention gained: " + ", ".join(gains))
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
        lines.append(
            f"{c.get('arm', 'oneshot')} seed {c['seed']}: "
            f"spent {c['spent']} of its {c['budget']} teacher tokens "
            f"({frac}{'' if c['within_5pct'] else ', NOT within 5%'}"
            f"{'; stopped: ' + STOPPED.get(c['stopped'], c['stopped']) if c.get('stopped') else ''}); "
            f"optimizer steps {c['oneshot_steps']}"
            f" {'=' if c['steps_equal'] else '!='} IOA's {c['ioa_steps']}"
        )
    stopped = [r for r in result["rows"] if r["status"] != "finished"]
    for r in stopped:
        lines.append(f"note: {r['run_id']} ({r['arm']}, seed {r['seed']}) {r['status']}: {r['stop_reason']}")
    if len(seeds) < 3:
        lines.append("note: fewer than 3 seeds; the algorithm's spread is over at least 3")
    return "\n".join(lines)


