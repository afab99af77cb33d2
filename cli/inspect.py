"""`ioa inspect RUN` (the learner state at any checkpoint, or what changed between two) and `ioa report RUN` (the
self-contained HTML page). The viewers are viewers/state_view.py and viewers/html_report.py; nothing loads a model.

    ioa inspect RUN             the numbered steps: node that wrote it, phase, cycle, stage, round
    ioa inspect RUN --at 7      one checkpoint summarised: modules (P_T, P_S, ratio), edges, stages, decisions, tokens
    ioa inspect RUN --diff 3 4  what changed: old -> new for scalars, added / removed entries for lists and dicts
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from viewers.state_view import _f, _pick, diff, format_change, format_summary, history, summary, with_plan_cycle
from viewers.trace_view import resolve_run_dir


def add_commands(sub) -> None:
    """Add `inspect` and `report` to the `ioa` subcommands."""
    i = sub.add_parser("inspect", help="the learner state at any checkpoint, or the difference between two",
                       description="Lists the run's checkpoints as numbered steps (oldest first); --at N shows one, "
                                   "--diff A B what changed from A to B (negative numbers count from the end).")
    i.add_argument("run", help="run id (under runs/) or run directory")
    i.add_argument("--at", type=int, metavar="STEP", help="summarise the state at this step")
    i.add_argument("--diff", type=int, nargs=2, metavar=("A", "B"), help="fields that changed from step A to step B")
    i.add_argument("--json", action="store_true", help="machine-readable output (the steps, the state, or the changes)")
    i.add_argument("--runs-dir")
    i.set_defaults(fn=cmd_inspect)
    r = sub.add_parser("report", help="write a self-contained HTML report of a run (charts, decisions, items)",
                       description="Mastery ratio per module over rounds, the prerequisite graph with stages and edge "
                                   "strengths, teacher tokens per stage and role, the decision timeline, and samples "
                                   "of kept and dropped items. One file, no external request.")
    r.add_argument("run", help="run id (under runs/) or run directory")
    r.add_argument("--out", help="output file (default runs/<id>/report.html)")
    r.add_argument("--runs-dir")
    r.set_defaults(fn=cmd_report)


def cmd_inspect(args) -> int:
    run_dir = resolve_run_dir(args.run, args.runs_dir)
    steps = history(run_dir)
    if args.diff:
        a, b = _pick(steps, args.diff[0]), _pick(steps, args.diff[1])
        changes = diff(with_plan_cycle(a.values), with_plan_cycle(b.values))
        if args.json:
            print(json.dumps({"from": a.row(), "to": b.row(), "changes": changes}, ensure_ascii=False, default=str))
            return 0
        print(f"step {a.index} ({a.wrote}) -> step {b.index} ({b.wrote}): {len(changes)} change(s)")
        for c in changes:
            print(format_change(c))
        return 0
    if args.at is not None:
        st = _pick(steps, args.at)
        if args.json:
            print(json.dumps({"step": st.row(), "summary": summary(st.values), "state": st.values},
                             ensure_ascii=False, default=str))
        else:
            print(format_summary(st))
        return 0
    rows = [s.row() for s in steps]
    if args.json:
        for r in rows:
            print(json.dumps(r, ensure_ascii=False, default=str))
        return 0
    if not rows:
        print(f"run {run_dir.name}: no checkpoint yet")
        return 0
    print(f"{'step':>4}  {'wrote':<11}{'phase':<13}{'cycle':>5}{'stage':>6}{'round':>6}  next")
    for r in rows:
        print(f"{r['step']:>4}  {r['wrote']:<11}{str(r['phase'] or '-'):<13}{_f(r['cycle']):>5}{_f(r['stage']):>6}"
              f"{_f(r['round']):>6}  {', '.join(r['next']) or 'END'}")
    print(f"(`ioa inspect {args.run} --at N` shows a step; `--diff A B` what changed)", file=sys.stderr)
    return 0


def cmd_report(args) -> int:
    from viewers import html_report

    run_dir = resolve_run_dir(args.run, args.runs_dir)
    path = html_report.write_html(run_dir, Path(args.out) if args.out else None)
    print(path)
    return 0
