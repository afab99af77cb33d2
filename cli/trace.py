"""`ioa trace RUN`: the run's trace.jsonl as a readable, filterable timeline (the viewer is viewers/trace_view.py)."""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Iterable

from viewers.trace_view import (
    EVENT_KINDS,
    Context,
    format_line,
    matches,
    parse_lines,
    public,
    read_events,
    resolve_run_dir,
)


def _split(values) -> list[str]:
    return [v for x in values or [] for v in str(x).split(",") if v]


def filters_from(args, known_events: Iterable[str] = ()) -> dict:
    """The filters of the command line; a value no event can match is bad input (ConfigError: one line, exit 2).
    `known_events`: the kinds in this run's trace (a kind newer than EVENT_KINDS is still allowed)."""
    from ioa_state import ConfigError

    stages = None
    if args.stage:
        try:
            stages = [int(s) for s in _split(args.stage)]
        except ValueError:
            raise ConfigError(f"--stage takes stage numbers (0, 1, ...; 0-based as in the trace), got "
                              f"{','.join(args.stage)!r}") from None
    allowed = list(dict.fromkeys([*EVENT_KINDS, *known_events]))
    bad = [e for e in _split(args.event) if e not in allowed]
    if bad:
        raise ConfigError(f"--event {bad[0]!r} is not an event kind: use one of {', '.join(allowed)}")
    return {"nodes": set(_split(args.node)) or None, "agents": set(_split(args.agent)) or None,
            "modules": set(_split(args.module)) or None, "stages": stages,
            "events": set(_split(args.event)) | ({"decision"} if args.decision else set()) or None,
            "decisions": set(_split(args.decision)) or None}


def _emit(ev: dict, args, out) -> None:
    if args.json:
        out.write(json.dumps(public(ev), ensure_ascii=False) + "\n")
    else:
        width = 0 if args.full else args.width
        out.write(format_line(ev, width or 100000, color=args.color) + "\n")
    out.flush()


def follow(run_dir: Path, args, flt: dict, out, poll: float = 0.25) -> int:
    """Print matching events as they are written; stop at the run's report event or after --timeout seconds."""
    path = run_dir / "trace.jsonl"
    deadline = time.monotonic() + args.timeout if args.timeout else None
    ctx, buf, pos, shown = Context(), "", 0, 0
    while True:
        if path.exists():
            with open(path, encoding="utf-8") as fh:
                fh.seek(pos)
                chunk = fh.read()
                pos = fh.tell()
            buf += chunk
            *lines, buf = buf.split("\n")
            for ev in parse_lines(lines):
                ev = ctx.annotate(ev)
                if matches(ev, **flt):
                    _emit(ev, args, out)
                    shown += 1
                if ev.get("event") == "report":
                    return 0
        if deadline is not None and time.monotonic() >= deadline:
            print(
                f"ioa trace: stopped following after --timeout {args.timeout:g}s ({shown} events shown)",
                file=sys.stderr,
            )
            return 0
        time.sleep(poll)


def cmd_trace(args) -> int:
    if args.kinds:
        from ioa_state.records import describe_kinds

        print(describe_kinds())
        return 0
    if not args.run:
        from ioa_state import ConfigError

        raise ConfigError("ioa trace needs a run id or run directory (or --kinds to list the event kinds)")
    run_dir = resolve_run_dir(args.run, args.runs_dir)
    events = [] if args.follow else read_events(run_dir)
    flt = filters_from(args, {str(ev.get("event")) for ev in events})
    if args.color is None:
        args.color = sys.stdout.isatty() and not args.json
    out = sys.stdout
    try:
        if args.follow:
            return follow(run_dir, args, flt, out)
        shown = [ev for ev in events if matches(ev, **flt)]
        if args.last:
            shown = shown[-args.last:]
        for ev in shown:
            _emit(ev, args, out)
    except BrokenPipeError:  # `ioa trace RUN | head`: the reader has what it wanted
        import os
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    if not args.json:
        print(f"ioa trace: {len(shown)} of {len(events)} events in {run_dir / 'trace.jsonl'}", file=sys.stderr)
    return 0


def add_parser(sub) -> None:
    t = sub.add_parser("trace", help="the run's trace as a readable timeline: why did the run do that?",
                       description="One line per event (decisions with their numbers and thresholds, module "
                                   "diagnoses, prerequisite edges, teacher calls, dropped items, ...). Filters combine "
                                   "with AND; repeat a filter or give a comma list for OR.")
    t.add_argument("run", nargs="?", help="run id (under runs/) or run directory")
    t.add_argument("--kinds", action="store_true", help="list the event kinds, each with what it records, and exit")
    t.add_argument(
        "--node", action="append", metavar="NODE", help="diagnose | plan | synthesize | train | examine | report"
    )
    t.add_argument(
        "--agent",
        action="append",
        metavar="ROLE",
        help="diagnostician | planner | adapter | trainer | examiner (teacher calls: the role that made them)",
    )
    t.add_argument("--module", action="append", metavar="M", help="events about module M (an edge matches either end)")
    t.add_argument(
        "--stage", action="append", metavar="N", help="events of curriculum stage N (0-based, as in the trace)"
    )
    t.add_argument("--event", action="extend", nargs="+", metavar="KIND",
                   help=f"event kinds: {', '.join(EVENT_KINDS)}")
    t.add_argument("--decision", action="append", metavar="KIND",
                   help="only decisions of this kind: advance | remediate | simplify | give_up | rediagnose | finish")
    t.add_argument(
        "--json", action="store_true", help="print matching events as JSON lines (as written in trace.jsonl)"
    )
    t.add_argument(
        "--follow", "-f", action="store_true", help="tail a live run; stops at its report event or --timeout"
    )
    t.add_argument("--timeout", type=float, default=None, help="with --follow: stop after this many seconds")
    t.add_argument("--last", type=int, default=None, metavar="N", help="only the last N matching events")
    t.add_argument("--full", action="store_true", help="do not shorten prompts and replies")
    t.add_argument("--width", type=int, default=90, help="characters kept of a prompt or reply (default 90)")
    t.add_argument("--color", action="store_true", default=None, help="colour the output (default: on a terminal)")
    t.add_argument("--no-color", dest="color", action="store_false")
    t.add_argument("--runs-dir")
    t.set_defaults(fn=cmd_trace)

