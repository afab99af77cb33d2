"""`ioa trace RUN`: the run's trace.jsonl as a readable, filterable timeline ("why did the run do that?").

One line per event with the numbers behind it: a decision's reason, numbers and thresholds; a module diagnosis's gap
against tau_gap; an edge's prior / measured / strength against tau_dep; a teacher call's role, template, tokens,
latency, cache hit and a shortened prompt and reply; a dropped item's reason. Filters combine with AND (values of one
filter with OR): --node, --agent, --module, --stage, --event, --decision. `--json` prints the matching events as JSON
lines; `--follow` tails a live run until its report event (or --timeout).

Reads only the run directory's files: no model, no graph, no checkpoint is loaded, so it is fast on any run.
"""
from __future__ import annotations

from pathlib import Path

from agents.tracing import parse_lines, read_lines  # noqa: F401 (parse_lines: `ioa trace --follow` reads with it)
from ioa_state.records import EVENT_KINDS as RECORD_KINDS

# graph node -> the agent (role) that runs it; teacher calls carry the role that made them
NODE_AGENTS = {"diagnose": "diagnostician", "plan": "planner", "synthesize": "adapter", "train": "trainer",
               "examine": "examiner", "report": "reporter",
               **{t: "examiner" for t in ("advance", "give_up", "remediate", "simplify")}}  # the transition nodes
AGENT_ALIASES = {"identifier": "diagnostician", "organizer": "planner", "rewriter": "adapter", "report": "reporter"}
EVENT_KINDS = tuple(RECORD_KINDS)  # every kind describes itself: ioa_state/records.py, `ioa trace --kinds`


# -- reading ------------------------------------------------------------------------------------------------------
def resolve_run_dir(run: str, runs_dir: str | None = None) -> Path:
    """A run given by id (under runs_dir, default runs/) or by path; same rule as `ioa status` (no graph import)."""
    from ioa_state import ConfigError

    runs_dir = runs_dir or "runs"
    for cand in (Path(run), Path(runs_dir) / run):
        if (cand / "config.yaml").is_file() or (cand / "trace.jsonl").is_file():
            return cand
    raise ConfigError(f"no run {run!r}: expected {Path(runs_dir) / run}/config.yaml (or a path to a run directory)")


def read_events(run_dir: Path) -> list[dict]:
    """All events of a run, in order, with their context (see Context.annotate)."""
    ctx = Context()
    return [ctx.annotate(ev) for ev in read_lines(Path(run_dir) / "trace.jsonl")]


class Context:
    """Tracks the enclosing node (node_start/node_end) so that every event knows where it happened.

    Adds `_node` (the node that emitted it: its own `node` field, else the node running at the time), `_stage` and
    `_cycle` (its own, else the enclosing node's) and `_t` (seconds since the first event)."""

    def __init__(self) -> None:
        self.node: str | None = None
        self.stage: int | None = None
        self.cycle: int | None = None
        self.t0: float | None = None

    def annotate(self, ev: dict) -> dict:
        kind = ev.get("event")
        if kind == "node_start":
            self.node, self.stage, self.cycle = ev.get("node"), ev.get("stage"), ev.get("cycle")
        node = str(ev.get("node") or self.node or "").split(":")[0] or None
        ev["_node"] = node
        ev["_stage"] = ev.get("stage") if ev.get("stage") is not None else self.stage
        ev["_cycle"] = ev.get("cycle") if ev.get("cycle") is not None else self.cycle
        ts = ev.get("ts")
        if isinstance(ts, (int, float)):
            self.t0 = ts if self.t0 is None else self.t0
            ev["_t"] = round(ts - self.t0, 3)
        if kind == "node_end":
            self.node = None
        return ev


def public(ev: dict) -> dict:
    """The event as written in trace.jsonl (without the derived _fields)."""
    return {k: v for k, v in ev.items() if not k.startswith("_")}


# -- filtering ----------------------------------------------------------------------------------------------------
def event_modules(ev: dict) -> set[str]:
    """Every module an event is about (its module, an edge's ends, a stage's or decision's modules, ...)."""
    out: set[str] = set()
    for key in ("module", "src", "dst"):
        if isinstance(ev.get(key), str):
            out.add(ev[key])
    for key in ("modules", "failing", "targets"):
        if isinstance(ev.get(key), list):
            out.update(str(m) for m in ev[key])
    if isinstance(ev.get("levels"), dict):
        out.update(ev["levels"])
    if ev.get("event") == "decision" and isinstance(ev.get("numbers"), dict):
        out.update(k[2:-1] for k in ev["numbers"] if k.startswith("r[") and k.endswith("]"))
    return out


def event_agent(ev: dict) -> str | None:
    """The agent behind an event: a teacher call's role, else the agent of the node that emitted it."""
    if ev.get("event") == "teacher_call" and ev.get("role"):
        return str(ev["role"])
    return NODE_AGENTS.get(ev.get("_node") or "")


def matches(ev: dict, *, nodes=None, agents=None, modules=None, stages=None, events=None, decisions=None) -> bool:
    if events and ev.get("event") not in events:
        return False
    if decisions and (ev.get("event") != "decision" or ev.get("decision") not in decisions):
        return False
    if nodes and ev.get("_node") not in nodes:
        return False
    if agents and (event_agent(ev) or "").lower() not in {AGENT_ALIASES.get(a.lower(), a.lower()) for a in agents}:
        return False
    if modules and not (event_modules(ev) & set(modules)):
        return False
    if stages is not None and len(stages) and ev.get("_stage") not in stages:
        return False
    return True


# -- formatting ---------------------------------------------------------------------------------------------------
def short(text, limit: int = 90) -> str:
    """One line, at most `limit` characters (an ellipsis marks a cut)."""
    if text is None:
        return "-"
    text = " ".join(str(text).split())
    return text if len(text) <= limit or limit <= 0 else text[: limit - 1] + "…"


def num(x, digits: int = 2) -> str:
    """A number as the timeline shows it: floats with `digits` decimals, ints as they are, None as '-'."""
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:.{digits}f}"
    return str(x)


def compact(x) -> str:
    """A number without trailing zeros (0.9, 2, 0.0213), for numbers/thresholds dicts."""
    if isinstance(x, float):
        return f"{x:.4f}".rstrip("0").rstrip(".") if x == x else "nan"
    return "-" if x is None else str(x)


def kv(d: dict | None) -> str:
    return ", ".join(f"{k}={compact(v)}" for k, v in (d or {}).items()) or "-"


def prompt_of(messages) -> tuple[str, str]:
    """(system prompt, last user message) of a teacher call's messages."""
    system = user = ""
    for m in messages or []:
        if not isinstance(m, dict):
            continue
        content = m.get("content")
        if isinstance(content, list):
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
        if m.get("role") == "system":
            system = str(content or "")
        elif m.get("role") in ("user", "human"):
            user = str(content or "")
    return system, user


def _where(ev: dict) -> str:
    parts = []
    if ev.get("module"):
        parts.append(str(ev["module"]))
    if ev.get("_stage") is not None:
        parts.append(f"s{ev['_stage']}")
    if ev.get("round") is not None:
        parts.append(f"r{ev['round']}")
    return " ".join(parts)


def _list(xs) -> str:
    return ", ".join(xs or []) or "-"


def _node_start(ev: dict, width: int) -> str:
    return (f"start {ev.get('node')} (cycle {num(ev.get('cycle'))}, stage {num(ev.get('stage'))}, "
            f"round {num(ev.get('round'))})")


def _node_end(ev: dict, width: int) -> str:
    return f"end {ev.get('node')} in {num(ev.get('seconds'))}s; updated {_list(ev.get('updated'))}"


def _teacher_call(ev: dict, width: int) -> str:
    system, user = prompt_of(ev.get("messages"))
    tmpl = ev.get("template") or ev.get("step") or "-"
    flags = []
    if ev.get("cached"):
        flags.append("cached")
    if ev.get("retries"):
        flags.append(f"retries {ev['retries']}")
    if ev.get("error"):
        flags.append(f"ERROR {short(ev['error'], width)}")
    where = " ".join(x for x in (_where(ev), f"item {ev['item']}" if ev.get("item") else "") if x)
    sys_note = f" [+system {len(system)} chars]" if system else ""
    return (f"teacher {ev.get('role')}/{tmpl}{' ' + where if where else ''}: "
            f"{num(ev.get('tokens_in'))}+{num(ev.get('tokens_out'))} tok, {num(ev.get('latency_s'), 3)}s"
            f"{' (' + ', '.join(flags) + ')' if flags else ''} | asked{sys_note}: \"{short(user, width)}\" "
            f"| answered: \"{short(ev.get('reply'), width)}\"")


def _module_diagnosis(ev: dict, width: int) -> str:
    gap, tau = ev.get("gap"), ev.get("tau_gap")
    if ev.get("teacher_limited"):
        verdict = (f"TEACHER-LIMITED: P_T {num(ev.get('teacher_score'))} < teacher_floor "
                   f"{num(ev.get('teacher_floor'))} (not targeted)")
    elif ev.get("deficient"):
        verdict = f"DEFICIENT: gap {num(gap)} > tau_gap {num(tau)}"
    else:
        verdict = f"not deficient: gap {num(gap)} <= tau_gap {num(tau)}"
    fb = f"; fallbacks: {'; '.join(ev['fallbacks'])}" if ev.get("fallbacks") else ""
    return (f"module {ev.get('module')} ({ev.get('name')}): {verdict}; P_T {num(ev.get('teacher_score'))} "
            f"P_S {num(ev.get('student_score'))}, severity {num(ev.get('severity'))}"
            f"{', TARGET' if ev.get('target') else ''}{fb}")


def _edge(ev: dict, width: int) -> str:
    s, tau = ev.get("strength"), ev.get("tau_dep")
    if ev.get("kept"):
        verdict = f"KEPT: strength {num(s)} > tau_dep {num(tau)}"
    elif ev.get("broken_cycle"):
        verdict = f"dropped to break a cycle (weakest edge; strength {num(s)})"
    else:
        verdict = f"not kept: strength {num(s)} <= tau_dep {num(tau)}"
    how = ("= prior" if ev.get("source") == "prior" else
           "= (n_obs*measured + 2*prior)/(n_obs+2)")
    return (f"edge {ev.get('src')} -> {ev.get('dst')}: {verdict}; "
            f"strength {how} with prior {num(ev.get('prior'))}, "
            f"measured {num(ev.get('measured'))}, n_obs {num(ev.get('n_obs'))}")


def _targets(ev: dict, width: int) -> str:
    caveats = f"; caveats: {'; '.join(ev['caveats'])}" if ev.get("caveats") else ""
    return (f"targets: {_list(ev.get('targets'))} (deficient: {_list(ev.get('deficient'))}; "
            f"teacher-limited: {_list(ev.get('teacher_limited'))}; target_fraction "
            f"{num(ev.get('target_fraction'))})" + caveats)


def _stage_planned(ev: dict, width: int) -> str:
    levels = ", ".join(f"{m}=L{lv}" for m, lv in (ev.get("levels") or {}).items())
    return (f"stage {ev.get('stage')} planned: {', '.join(ev.get('modules') or [])} (difficulty "
            f"{num(ev.get('difficulty'))}, tau_zpd {num(ev.get('tau_zpd'))}; item levels {levels or '-'})")


def _synthesis(ev: dict, width: int) -> str:
    reasons = ", ".join(f"{r}: {n}" for r, n in (ev.get("drop_reasons") or {}).items())
    return (f"synthesis {ev.get('module')} ({ev.get('mode')}, level {ev.get('level')}, stage {ev.get('stage')}, "
            f"round {ev.get('round')}): kept {ev.get('kept')}, dropped {ev.get('dropped')}"
            + (f" ({reasons})" if reasons else ""))


def _item_dropped(ev: dict, width: int) -> str:
    origin = "wrong answer on " if ev.get("from_wrong_answer") else "seed "
    src = f" from {origin}{ev.get('source')}" if ev.get("source") else ""
    ans = f" | answer: \"{short(ev.get('answer'), width // 2)}\"" if ev.get("answer") else ""
    return (f"DROPPED {ev.get('module')} item{src} ({ev.get('mode')}, level {ev.get('level')}): "
            f"{short(ev.get('reason'), width + 40)} | question: \"{short(ev.get('question'), width)}\"{ans}")


def _train(ev: dict, width: int) -> str:
    return (f"train round {ev.get('round')}: {ev.get('items')} items + {ev.get('replay')} replay, "
            f"{ev.get('steps')} steps, loss {num(ev.get('loss_first'), 3)} -> {num(ev.get('loss_last'), 3)}, "
            f"{num(ev.get('seconds'))}s -> {ev.get('checkpoint')}")


def _exam(ev: dict, width: int) -> str:
    scores, ratios, items = ev.get("scores") or {}, ev.get("ratios") or {}, ev.get("items") or {}
    parts = []
    for k in ev.get("modules") or list(scores):
        missed = (ev.get("missed") or {}).get(k) or []
        shown = "; ".join(f"{short(m.get('prompt'), 40)} -> \"{short(m.get('answer'), 40)}\" (ref {m.get('reference')})"
                          for m in missed)
        parts.append(f"{k} {num(scores.get(k))} (r {num(ratios.get(k))}, missed {len(missed)} of {items.get(k, '?')}"
                     + (f": {shown}" if shown else "") + ")")
    return "exam: " + " | ".join(parts)


def _forgetting(ev: dict, width: int) -> str:
    return (f"FORGETTING {ev.get('module')}: ratio {num(ev.get('ratio'))} < tau_mastery "
            f"{num(ev.get('tau_mastery'))} -> {ev.get('action')}")


def _replan(ev: dict, width: int) -> str:
    edges = ", ".join(f"{e[0]}->{e[1]} ({num(e[2])})" for e in ev.get("kept_edges") or [] if len(e) >= 3)
    stages = " | ".join(", ".join(s) for s in ev.get("stages") or [])
    return f"replan: kept edges changed to {edges or '-'}; stages now {stages or '-'}"


def _decision(ev: dict, width: int) -> str:
    failing = ", ".join(ev.get("failing") or []) or "-"
    return (f"DECISION {str(ev.get('decision')).upper()} (cycle {num(ev.get('cycle'))}, "
            f"stage {num(ev.get('stage'))}, round {num(ev.get('round'))}): {ev.get('reason')} | "
            f"numbers: {kv(ev.get('numbers'))} | thresholds: {kv(ev.get('thresholds'))} | failing: {failing}")


def _synthesis_yield(ev: dict, width: int) -> str:
    reasons = ", ".join(f"{r}: {n}" for r, n in (ev.get("dropped_by_reason") or {}).items())
    tpk = ev.get("teacher_tokens_per_kept_item")
    return (f"yield {ev.get('round_tag')}: written {ev.get('written')}, kept {ev.get('kept')}"
            + (f", dropped {reasons}" if reasons else "")
            + (f"; {tpk:,.0f} teacher tokens per kept item" if isinstance(tpk, (int, float)) else "")
            + (f"; BUDGET CUT the round ({ev.get('not_sent')} calls not sent): trained on what it kept"
               if ev.get("budget_cut") else ""))


def _structured_outcome(ev: dict, width: int) -> str:
    what = ", ".join(ev.get("templates") or []) or ev.get("schema")
    return (f"structured {ev.get('schema')} ({what}): {ev.get('requests')} asked, {ev.get('parsed_first_try')} parsed "
            f"on the first try, {ev.get('parsed_after_reask')} after a re-ask, {ev.get('not_parsed')} not parsed")


def _fallback(ev: dict, width: int) -> str:
    return f"FALLBACK {ev.get('field')}: {short(ev.get('why'), width)} -> used {ev.get('used')}"


def _report(ev: dict, width: int) -> str:
    o = ev.get("overall") or {}
    return (f"report: test retention {num(o.get('retention_before'))} -> {num(o.get('retention_after'))} "
            f"(teacher {num(o.get('teacher'))}, student before {num(o.get('before'))}, "
            f"after {num(o.get('after'))}); teacher tokens {num(ev.get('teacher_tokens'))}")


# event kind -> its one-line describer; a kind not listed is shown as its public fields
_DESCRIBERS = {
    "node_start": _node_start, "node_end": _node_end, "teacher_call": _teacher_call,
    "module_diagnosis": _module_diagnosis, "edge": _edge, "targets": _targets, "stage_planned": _stage_planned,
    "synthesis": _synthesis, "item_dropped": _item_dropped, "train": _train, "exam": _exam, "forgetting": _forgetting,
    "replan": _replan, "decision": _decision, "fallback": _fallback, "report": _report,
    "synthesis_yield": _synthesis_yield, "structured_outcome": _structured_outcome,
}


def describe(ev: dict, width: int = 90) -> str:
    """The one-line explanation of an event (without the seq/time/node prefix)."""
    k = ev.get("event")
    describer = _DESCRIBERS.get(k) if isinstance(k, str) else None
    if describer is not None:
        return describer(ev, width)
    rest = {kk: v for kk, v in public(ev).items() if kk not in ("seq", "ts", "event", "node")}
    return f"{k}: " + short(", ".join(f"{kk}={v}" for kk, v in rest.items()), width * 2)


_COLORS = {"decision": "1;35", "module_diagnosis": "36", "edge": "36", "item_dropped": "33", "teacher_call": "2",
           "node_start": "1;34", "node_end": "34", "forgetting": "31", "fallback": "31", "report": "1;32"}


def format_line(ev: dict, width: int = 90, color: bool = False) -> str:
    t = ev.get("_t")
    prefix = f"{ev.get('seq', '?'):>5} {('+%.2fs' % t) if t is not None else '':>9} {str(ev.get('_node') or '-'):<10} "
    line = prefix + describe(ev, width)
    if color and ev.get("event") in _COLORS:
        line = f"\033[{_COLORS[ev['event']]}m{line}\033[0m"
    return line
