"""`ioa report RUN`: one self-contained HTML page about a run (runs/<id>/report.html).

Everything is inline: the styles, a few lines of script, and every chart as SVG drawn here in Python. The page makes
no request of any kind (no CDN, no font, no image), so it opens offline and can be mailed around. It shows:

- the mastery ratio (P_S / P_T) of every module at every exam, against the tau_mastery and tau_low lines;
- the prerequisite graph: modules in their curriculum stages, every edge with its strength (kept edges solid, edges
  at or below tau_dep dashed);
- teacher tokens per stage (stacked by role) and per role (input / output);
- items kept and dropped per synthesis round, and the Adapter's yield (written, kept, dropped by reason, teacher
  tokens per kept item) per round and for the run;
- the decision timeline, with each decision's reason, numbers and thresholds;
- a sample of kept and dropped items per module, with the reason of each drop (from items/*.jsonl).

Reads the run directory only (state from the checkpoints, trace.jsonl, items/, report.json); loads no model.
`write_html(run_dir)` is what the report node calls.
"""
from __future__ import annotations

import html
import json
import math
import os
import tempfile
from collections import Counter, defaultdict
from pathlib import Path

from ioa_state.stage_history import call_place, stage_history, stage_label
from viewers import trace_view

PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2", "#7f7f7f",
           "#bcbd22"]
DECISION_COLORS = {"advance": "#2ca02c", "remediate": "#1f77b4", "simplify": "#ff7f0e", "give_up": "#d62728",
                   "rediagnose": "#9467bd", "finish": "#444444"}
STATUS_COLORS = {"passed": "#d9f2d9", "not mastered": "#f8d7d7", "teacher-limited": "#e6e6e6", "target": "#dbe8f7",
                 "-": "#ffffff"}
SAMPLE_KEPT, SAMPLE_DROPPED = 5, 8


def esc(x) -> str:
    return html.escape("" if x is None else str(x), quote=True)


def f2(x, d: int = 2) -> str:
    return "-" if x is None else f"{x:.{d}f}" if isinstance(x, float) else str(x)


# -- data ---------------------------------------------------------------------------------------------------------
def _load(run_dir: Path, state=None) -> dict:
    import yaml

    cfg = yaml.safe_load((run_dir / "config.yaml").read_text()) if (run_dir / "config.yaml").exists() else {}
    if state is not None and not isinstance(state, dict):
        state = state.model_dump(mode="json")  # a LearnerState handed in (e.g. by the report node)
    elif state is None and (run_dir / "checkpoints.sqlite").exists():
        from agents.checkpoints import load_state
        st = load_state(run_dir)
        state = st.model_dump(mode="json") if st is not None else None
    report = None
    if (run_dir / "report.json").exists():
        try:
            report = json.loads((run_dir / "report.json").read_text())
        except json.JSONDecodeError:
            report = None
    th = {"tau_mastery": 0.9, "tau_low": 0.7, "tau_dep": 0.3, "tau_gap": 0.3, **(cfg.get("thresholds") or {})}
    return {"cfg": cfg, "th": th, "state": state or {}, "report": report, "events": trace_view.read_events(run_dir)}


def _read_jsonl(run_dir: Path, rel: str) -> list[dict]:
    path = run_dir / rel
    if not path.exists():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:  # an items file is written whole (temp name, then rename): only a damaged one
            continue
    return [r for r in rows if isinstance(r, dict)]


def _status(state: dict, k: str) -> str:
    m = state.get("modules", {}).get(k, {})
    return ("passed" if k in state.get("passed", []) else "not mastered" if k in state.get("not_mastered", []) else
            "teacher-limited" if m.get("teacher_limited") else "target" if k in state.get("targets", []) else "-")


def last_score(state: dict, k: str) -> float | None:
    """P_S of module k at the latest observation that scored it."""
    for o in reversed(state.get("observations") or []):
        if k in o["scores"]:
            return o["scores"][k]
    return None


def mastery_series(state: dict, eps: float = 1e-6) -> tuple[list[str], dict[str, list[tuple[int, float]]]]:
    """x labels (one per observation) and, per module, (x, P_S / P_T) where that observation scored it."""
    obs = state.get("observations") or []
    cycles = len({o["cycle"] for o in obs}) > 1
    labels = [f"{'c%d ' % o['cycle'] if cycles else ''}{'diag' if o['source'] == 'diagnose' else 'exam'} r{o['round']}"
              for o in obs]
    series: dict[str, list[tuple[int, float]]] = {}
    for k, m in sorted((state.get("modules") or {}).items()):
        pt = m.get("teacher_score") or 0.0
        series[k] = [(i, o["scores"][k] / max(pt, eps)) for i, o in enumerate(obs) if k in o["scores"]]
    return labels, series


def token_table(events: list[dict]) -> tuple[list[str], list[str], dict[tuple[str, str], int], dict[str, int]]:
    """Teacher tokens paid (cache hits excluded) per (stage label, role), from the trace's teacher calls; a stage is
    keyed by (cycle, stage), so stage 0 of cycle 1 is not added to stage 0 of cycle 0."""
    calls = [ev for ev in events if ev.get("event") == "teacher_call"]
    places = [call_place(ev) for ev in calls]
    cycles = len({c for _, c, _ in places}) > 1 or any(c for _, c, _ in places)

    def label(kind: str, cycle: int, stage: int | None) -> str:
        if kind == "stage":
            return stage_label(cycle, stage, cycles)
        return f"diagnosis c{cycle}" if kind == "diagnosis" else kind

    data: dict[tuple[str, str], int] = defaultdict(int)
    cached: dict[str, int] = defaultdict(int)
    stages: list[str] = []
    roles: list[str] = []
    for ev, place in zip(calls, places):
        lab, role = label(*place), str(ev.get("role") or "?")
        if lab not in stages:
            stages.append(lab)
        if role not in roles:
            roles.append(role)
        tokens = int(ev.get("tokens_in") or 0) + int(ev.get("tokens_out") or 0)
        if ev.get("cached"):
            cached[lab] += tokens
        else:
            data[(lab, role)] += tokens
    return stages, roles, dict(data), dict(cached)


# -- SVG primitives -----------------------------------------------------------------------------------------------
def _svg(name: str, w: int, h: int, body: list[str], label: str) -> str:
    return (f'<svg class="chart" data-chart="{esc(name)}" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" '
            f'aria-label="{esc(label)}" preserveAspectRatio="xMinYMin meet">{"".join(body)}</svg>')


def _text(x, y, s, anchor="start", cls="", size=11, extra="") -> str:
    return (f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" font-size="{size}"'
            f'{f" class={chr(34)}{cls}{chr(34)}" if cls else ""} {extra}>{esc(s)}</text>')


def _empty(name: str, msg: str, w: int = 640, h: int = 60) -> str:
    return _svg(name, w, h, [_text(w / 2, h / 2, msg, "middle", "muted")], msg)


def _legend(items: list[tuple[str, str]], x: float, y: float, dash: dict | None = None) -> list[str]:
    out, cx = [], x
    for name, color in items:
        d = (dash or {}).get(name)
        out.append(f'<line x1="{cx:.1f}" y1="{y - 4:.1f}" x2="{cx + 16:.1f}" y2="{y - 4:.1f}" stroke="{color}" '
                   f'stroke-width="3"{f" stroke-dasharray={chr(34)}{d}{chr(34)}" if d else ""}/>')
        out.append(_text(cx + 20, y, name))
        cx += 28 + 7 * len(name)
    return out


def mastery_chart(state: dict, th: dict) -> str:
    labels, series = mastery_series(state)
    if not labels or not any(series.values()):
        return _empty("mastery", "no exam yet")
    w, h, ml, mr, mt, mb = 800, 300, 48, 104, 30, 58
    pw, ph = w - ml - mr, h - mt - mb
    ymax = max([1.0] + [r for pts in series.values() for _, r in pts])
    ymax = math.ceil(ymax * 10) / 10
    n = len(labels)
    X = lambda i: ml + (pw * (i + 0.5) / n)  # noqa: E731
    Y = lambda r: mt + ph * (1 - r / ymax)  # noqa: E731
    body = [f'<rect x="{ml}" y="{mt}" width="{pw}" height="{ph}" fill="#fafafa" stroke="#ccc"/>']
    for t in [i / 10 for i in range(0, int(ymax * 10) + 1, 2)]:
        body.append(f'<line x1="{ml}" y1="{Y(t):.1f}" x2="{ml + pw}" y2="{Y(t):.1f}" stroke="#eee"/>')
        body.append(_text(ml - 6, Y(t) + 4, f"{t:.1f}", "end"))
    step = max(1, math.ceil(n / 16))
    for i, lab in enumerate(labels):
        if i % step == 0:
            body.append(_text(X(i), h - mb + 16, lab, "end", size=10,
                              extra=f'transform="rotate(-35 {X(i):.1f} {h - mb + 16:.1f})"'))
    for name, val, color, dash in (("tau_mastery", th.get("tau_mastery"), "#2ca02c", "6 4"),
                                   ("tau_low", th.get("tau_low"), "#ff7f0e", "2 3")):
        if val is None:
            continue
        body.append(f'<line class="threshold" x1="{ml}" y1="{Y(val):.1f}" x2="{ml + pw}" y2="{Y(val):.1f}" '
                    f'stroke="{color}" stroke-width="1.5" stroke-dasharray="{dash}"/>')
        body.append(
            _text(ml + pw + 6, Y(val) + 4, f"{name} {val:.2f}", "start", size=10, extra=f'style="fill:{color}"')
        )
    items = []
    for j, (k, pts) in enumerate(series.items()):
        color = PALETTE[j % len(PALETTE)]
        items.append((k, color))
        if not pts:
            continue
        jitter = (j - (len(series) - 1) / 2) * 1.5  # overlapping lines stay visible
        path = " ".join(f"{X(i):.1f},{Y(r) + jitter:.1f}" for i, r in pts)
        body.append(f'<polyline class="mark series" points="{path}" fill="none" stroke="{color}" stroke-width="2"/>')
        for i, r in pts:
            body.append(f'<circle class="mark" cx="{X(i):.1f}" cy="{Y(r) + jitter:.1f}" r="3.5" fill="{color}">'
                        f'<title>{esc(k)} at {esc(labels[i])}: ratio {r:.3f}</title></circle>')
    body.append(_text(14, mt + ph / 2, "P_S / P_T", "middle", extra=f'transform="rotate(-90 14 {mt + ph / 2:.1f})"'))
    body += _legend(items, ml, 16)
    return _svg("mastery", w, h, body, "mastery ratio per module over rounds")


def stage_columns(state: dict, events: list[dict] | None = None) -> list[tuple[str, list[str]]]:
    """One (title, modules) column per (cycle, stage) the run planned, earlier cycles included, in order; the
    modules never in a stage last."""
    history = stage_history(state, events)
    cycles = len({r["cycle"] for r in history}) > 1 or any(r["cycle"] for r in history)
    columns = [(f"{stage_label(r['cycle'], r['stage'], cycles)} ({r['status']})", list(r["modules"])) for r in history]
    placed = {k for _, ms in columns for k in ms}
    rest = [k for k in sorted(state.get("modules") or {}) if k not in placed]
    return columns + ([("not in a stage", rest)] if rest else [])


# box width/height, gaps between columns/rows, top of the first box
_GRAPH_BW, _GRAPH_BH, _GRAPH_GX, _GRAPH_GY, _GRAPH_TOP = 176, 50, 150, 62, 44
_GRAPH_DEFS = (
    '<defs><marker id="arrow-kept" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="11" markerHeight="11" '
    'markerUnits="userSpaceOnUse" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#333"/></marker>'
    '<marker id="arrow-weak" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="10" markerHeight="10" '
    'markerUnits="userSpaceOnUse" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#aaa"/></marker>'
    '</defs>'
)


def _graph_columns(columns: list[tuple[str, list[str]]], col_bottom: float, body: list[str]
                   ) -> tuple[dict[str, tuple[float, float]], list[tuple[str, float, float]]]:
    """Draws the stage columns into `body`; (module -> its latest box's corner, every box placed)."""
    bw, bh, gx, gy, top = _GRAPH_BW, _GRAPH_BH, _GRAPH_GX, _GRAPH_GY, _GRAPH_TOP
    pos: dict[str, tuple[float, float]] = {}
    boxes: list[tuple[str, float, float]] = []
    for c, (title, ms) in enumerate(columns):
        x = 30 + c * (bw + gx)
        body.append(f'<rect x="{x - 8}" y="{top - 30}" width="{bw + 16}" height="{col_bottom - top + 30}" rx="8" '
                    f'fill="{"#f6f7fb" if title != "not in a stage" else "#fbfbf6"}" stroke="#dde"/>')
        body.append(_text(x + bw / 2, top - 12, title, "middle", "colhead", size=12))
        for r, k in enumerate(ms):
            boxes.append((k, x, top + r * (bh + gy)))
            pos[k] = boxes[-1][1:]  # edges join a module's latest stage
    return pos, boxes


def _border(p: tuple[float, float], sign: int, ux: float, uy: float) -> tuple[float, float]:
    """Where a line from a box's centre `p` along (ux, uy) (times `sign`) leaves the box, plus 3px."""
    tx = (_GRAPH_BW / 2) / abs(ux) if ux else float("inf")
    ty = (_GRAPH_BH / 2) / abs(uy) if uy else float("inf")
    t = min(tx, ty) + 3
    return p[0] + sign * ux * t, p[1] + sign * uy * t


def _edge_tip(e: dict, th: dict) -> str:
    kept = e.get("kept")
    return (f"{e['src']} -> {e['dst']}: strength {e['strength']:.2f} {'>' if kept else '<='} tau_dep "
            f"{th.get('tau_dep', 0):.2f} ({'kept' if kept else 'not kept'}"
            f"{', broken cycle' if e.get('broken_cycle') else ''}); "
            f"prior {e['prior']:.2f}, measured {f2(e.get('measured'))}, n_obs {e.get('n_obs')}")


def _edge_marks(e: dict, pos: dict[str, tuple[float, float]], th: dict) -> list[str]:
    """An edge's curve (bent left, from border to border) and its strength label."""
    bw, bh = _GRAPH_BW, _GRAPH_BH
    (x1, y1), (x2, y2) = pos[e["src"]], pos[e["dst"]]
    a = (x1 + bw / 2, y1 + bh / 2)
    b = (x2 + bw / 2, y2 + bh / 2)
    # leave / enter the boxes at their borders
    dx, dy = b[0] - a[0], b[1] - a[1]
    d = math.hypot(dx, dy) or 1.0
    ux, uy = dx / d, dy / d
    s, t = _border(a, 1, ux, uy), _border(b, -1, ux, uy)
    bend = 40 if abs(dx) < 1 else 26  # bend left, so that an edge and its reverse do not overlap
    mx, my = (s[0] + t[0]) / 2 - uy * bend, (s[1] + t[1]) / 2 + ux * bend
    kept = e.get("kept")
    width = 1 + 4 * float(e.get("strength") or 0)
    style = (f'stroke="#333" stroke-width="{width:.1f}" marker-end="url(#arrow-kept)"' if kept else
             f'stroke="#aaa" stroke-width="{width:.1f}" stroke-dasharray="5 4" marker-end="url(#arrow-weak)"')
    lx, ly = (s[0] + 2 * mx + t[0]) / 4, (s[1] + 2 * my + t[1]) / 4
    return [
        f'<path class="mark edge" d="M{s[0]:.1f},{s[1]:.1f} Q{mx:.1f},{my:.1f} {t[0]:.1f},{t[1]:.1f}" '
        f'fill="none" {style}><title>{esc(_edge_tip(e, th))}</title></path>',
        f'<rect x="{lx - 15:.1f}" y="{ly - 9:.1f}" width="30" height="14" rx="3" fill="#fff" opacity="0.9"/>',
        _text(lx, ly + 2, f"{e['strength']:.2f}", "middle", size=10,
              extra=f'style="fill:{"#333" if kept else "#999"}"'),
    ]


def _node_marks(state: dict, k: str, x: float, y: float) -> list[str]:
    """A module's box: its status colour, P_T, P_S and mastery ratio."""
    bw, bh = _GRAPH_BW, _GRAPH_BH
    m = state["modules"].get(k, {})
    st = _status(state, k)
    ps = last_score(state, k)
    ratio = None if ps is None else ps / max(m.get("teacher_score") or 0.0, 1e-6)
    return [
        f'<rect class="mark node" x="{x}" y="{y}" width="{bw}" height="{bh}" rx="6" '
        f'fill="{STATUS_COLORS.get(st, "#fff")}" stroke="#557"><title>{esc(k)}: {esc(st)}; '
        f'gap {f2((state.get("gap") or {}).get(k))}</title></rect>',
        _text(x + bw / 2, y + 18, k[:22], "middle", size=12, extra='font-weight="600"'),
        _text(x + bw / 2, y + 33, f"P_T {f2(m.get('teacher_score'))} · P_S {f2(ps)} · ratio {f2(ratio)}",
              "middle", size=10),
        _text(x + bw / 2, y + 45, st, "middle", "muted", size=9.5),
    ]


def graph_chart(state: dict, th: dict, events: list[dict] | None = None) -> str:
    modules = sorted((state.get("modules") or {}))
    if not modules:
        return _empty("graph", "no modules yet")
    columns = stage_columns(state, events)
    bw, bh, gx, gy, top = _GRAPH_BW, _GRAPH_BH, _GRAPH_GX, _GRAPH_GY, _GRAPH_TOP
    rows = max(len(ms) for _, ms in columns)
    w = max(420, 30 + len(columns) * (bw + gx) - gx + 30)
    col_bottom = top + rows * (bh + gy) - gy + 14
    h = col_bottom + 30
    body = [_GRAPH_DEFS]
    pos, boxes = _graph_columns(columns, col_bottom, body)
    for e in state.get("edges") or []:
        if e["src"] in pos and e["dst"] in pos:
            body += _edge_marks(e, pos, th)
    for k, x, y in boxes:
        body += _node_marks(state, k, x, y)
    body += _legend([("kept edge (strength > tau_dep)", "#333"), ("not kept", "#aaa")], 30, h - 8,
                    {"not kept": "5 4"})
    return _svg("graph", w, h, body, "prerequisite graph with stages and edge strengths")


def stacked_bars(name: str, cats: list[str], series: list[str], value, colors: dict[str, str], unit: str,
                 note: str = "") -> str:
    totals = [sum(value(c, s) for s in series) for c in cats]
    if not cats or not any(totals):
        return _empty(name, f"no {unit} recorded")
    w, mt, mb, ml = 760, 34, 46, 64
    h = 280
    ph, pw = h - mt - mb, w - ml - 20
    top = max(totals)
    bwid = min(60, pw / len(cats) * 0.6)
    body = [f'<line x1="{ml}" y1="{mt + ph}" x2="{ml + pw}" y2="{mt + ph}" stroke="#999"/>']
    for t in range(0, 5):
        v = top * t / 4
        y = mt + ph * (1 - t / 4)
        body.append(f'<line x1="{ml}" y1="{y:.1f}" x2="{ml + pw}" y2="{y:.1f}" stroke="#eee"/>')
        body.append(_text(ml - 6, y + 4, f"{v:,.0f}", "end", size=10))
    for i, c in enumerate(cats):
        cx = ml + pw * (i + 0.5) / len(cats)
        y = mt + ph
        for s in series:
            v = value(c, s)
            if not v:
                continue
            hh = ph * v / top
            y -= hh
            body.append(f'<rect class="mark" x="{cx - bwid / 2:.1f}" y="{y:.1f}" width="{bwid:.1f}" height="{hh:.1f}" '
                        f'fill="{colors[s]}"><title>{esc(c)} / {esc(s)}: {v:,} {esc(unit)}</title></rect>')
        body.append(_text(cx, y - 4, f"{totals[i]:,}", "middle", size=10))
        body.append(_text(cx, mt + ph + 16, c, "middle", size=10))
    body += _legend([(s, colors[s]) for s in series], ml, 16)
    if note:
        body.append(_text(w - 10, h - 8, note, "end", "muted", size=10))
    return _svg(name, w, h, body, f"{unit} per {name}")


def tokens_per_stage_chart(events: list[dict]) -> str:
    stages, roles, data, cached = token_table(events)
    colors = {r: PALETTE[i % len(PALETTE)] for i, r in enumerate(roles)}
    note = (
        ("cache hits not counted: " + ", ".join(f"{s} {v:,}" for s, v in cached.items() if v))
        if any(cached.values())
        else ""
    )
    return stacked_bars("tokens-stage", stages, roles, lambda c, s: data.get((c, s), 0), colors, "teacher tokens", note)


def tokens_per_role_chart(state: dict) -> str:
    usage = state.get("usage") or {}
    roles = [r for r in usage if usage[r]["tokens_in"] + usage[r]["tokens_out"] > 0]
    if not roles:
        return _empty("tokens-role", "no teacher tokens recorded")
    w, rowh, ml, mt = 760, 30, 110, 30
    h = mt + rowh * len(roles) + 30
    top = max(usage[r]["tokens_in"] + usage[r]["tokens_out"] for r in roles)
    pw = w - ml - 170
    body = _legend([("input tokens", "#4c78a8"), ("output tokens", "#f58518")], ml, 16)
    for i, r in enumerate(roles):
        u = usage[r]
        y = mt + i * rowh
        x = ml
        body.append(_text(ml - 8, y + 15, r, "end", size=11))
        for key, color in (("tokens_in", "#4c78a8"), ("tokens_out", "#f58518")):
            ww = pw * u[key] / top
            if ww <= 0:
                continue
            body.append(
                f'<rect class="mark" x="{x:.1f}" y="{y + 4}" width="{ww:.1f}" height="{rowh - 10}" fill="{color}">'
                f"<title>{esc(r)} {key}: {u[key]:,}</title></rect>"
            )
            x += ww
        body.append(
            _text(
                x + 6,
                y + 15,
                f"{u['tokens_in'] + u['tokens_out']:,} tok · {u['calls']} calls · "
                f"{u['cached']} cached" + (f" · {u['failures']} failed" if u.get("failures") else ""),
                size=10,
            )
        )
    return _svg("tokens-role", w, h, body, "teacher tokens per role")


def items_chart(events: list[dict]) -> str:
    rounds: list[str] = []
    kept: dict[str, int] = defaultdict(int)
    dropped: dict[str, int] = defaultdict(int)
    synth = [ev for ev in events if ev.get("event") == "synthesis"]
    cycles = any(ev.get("cycle") for ev in synth)
    for ev in synth:
        label = f"{'c%s ' % ev.get('cycle') if cycles else ''}s{ev.get('stage')} r{ev.get('round')} {ev.get('module')}"
        if label not in rounds:
            rounds.append(label)
        kept[label] += int(ev.get("kept") or 0)
        dropped[label] += int(ev.get("dropped") or 0)
    vals = {"kept": kept, "dropped": dropped}
    return stacked_bars("items", rounds, ["kept", "dropped"], lambda c, s: vals[s].get(c, 0),
                        {"kept": "#2ca02c", "dropped": "#d62728"}, "items")


def yield_table(run_dir: Path, state: dict, events: list[dict]) -> str:
    """The Adapter's yield per synthesis round and for the run (agents/synthesis_yield.py)."""
    from agents import synthesis_yield as sy

    kept = [(r["path"], _read_jsonl(run_dir, r["path"])) for r in state.get("item_files") or []]
    dropped = [(r["path"], _read_jsonl(run_dir, r["path"])) for r in state.get("dropped_files") or []]
    if not kept and not dropped:
        return "<p class='muted'>No items synthesized yet.</p>"
    y = sy.from_rows(kept, dropped, sy.usage_tokens(state.get("usage") or {}), events)

    def row(label: str, r: dict) -> str:
        share = f"{r['kept'] / r['written']:.0%}" if r["written"] else "-"
        reasons = ", ".join(f"{esc(k)}: {n}" for k, n in r["dropped_by_reason"].items()) or "-"
        tokens = "-" if r.get("teacher_tokens") is None else f"{r['teacher_tokens']:,}"
        return (f"<tr><td class='rnd'>{esc(label)}</td><td class='num'>{r['written']}</td>"
                f"<td class='num'>{r['kept']}</td><td class='num'>{share}</td><td>{reasons}</td>"
                f"<td class='num'>{tokens}</td><td class='num'>{f2(r['teacher_tokens_per_kept_item'], 1)}</td></tr>")

    rows = [row(r["round_tag"].replace("-", " "), r) for r in y["per_round"]] + [row("run (all roles)", y)]
    return ("<table class='yield'><thead><tr><th>round</th><th>written</th><th>kept</th><th>kept share</th>"
            "<th>dropped by reason</th><th>teacher tokens</th><th>tokens per kept item</th></tr></thead><tbody>"
            + "".join(rows) + "</tbody></table><p class='caption'>A round's tokens are those its synthesis paid "
            "(cache hits cost nothing); the run's are every teacher token of the run, all roles.</p>")


def decision_chart(state: dict) -> str:
    decisions = state.get("decisions") or []
    if not decisions:
        return _empty("decisions", "no decision yet")
    n = len(decisions)
    w = max(640, 60 + n * 96)
    h, y = 130, 62
    body = [f'<line x1="30" y1="{y}" x2="{w - 30}" y2="{y}" stroke="#999" stroke-width="2"/>']
    step = (w - 100) / max(1, n - 1) if n > 1 else 0
    prev_stage = None
    for i, d in enumerate(decisions):
        x = 50 + i * step if n > 1 else w / 2
        color = DECISION_COLORS.get(d["kind"], "#555")
        if (d.get("cycle"), d.get("stage")) != prev_stage:  # stage 0 of a new cycle is a new stage
            body.append(_text(x, 18, f"stage {d.get('stage')}" + (f" · cycle {d['cycle']}" if d.get("cycle") else ""),
                              "middle", "muted", size=10))
            prev_stage = (d.get("cycle"), d.get("stage"))
        body.append(
            f'<circle class="mark decision" cx="{x:.1f}" cy="{y}" r="9" fill="{color}" stroke="#fff" '
            f'stroke-width="2"><title>{esc(d["kind"])} (cycle {esc(d.get("cycle"))}, stage {esc(d.get("stage"))}, '
            f'round {esc(d.get("round"))}): '
            f"{esc(d['reason'])}</title></circle>"
        )
        body.append(_text(x, y + 5, str(i + 1), "middle", size=9, extra='style="fill:#fff" font-weight="700"'))
        body.append(_text(x, y - 16, d["kind"], "middle", size=11, extra=f'style="fill:{color}" font-weight="600"'))
        mr = d.get("numbers", {}).get("min_ratio")
        body.append(
            _text(
                x,
                y + 28,
                f"r{d.get('round')}" + (f" · min {mr:.2f}" if isinstance(mr, (int, float)) else ""),
                "middle",
                size=10,
            )
        )
    return _svg("decisions", w, h, body, "decision timeline")


# -- tables -------------------------------------------------------------------------------------------------------
def _kv(d: dict) -> str:
    return ", ".join(f"{esc(k)}={esc(trace_view.compact(v))}" for k, v in (d or {}).items()) or "-"


def decisions_table(state: dict) -> str:
    rows = []
    for i, d in enumerate(state.get("decisions") or []):
        color = DECISION_COLORS.get(d["kind"], "#555")
        rows.append(
            f"<tr><td>{i + 1}</td><td><span class='pill' style='background:{color}'>{esc(d['kind'])}</span></td>"
            f"<td>{esc(d['cycle'])}</td><td>{esc(d['stage'])}</td><td>{esc(d['round'])}</td>"
            f"<td class='why'>{esc(d['reason'])}</td><td class='kv'>{_kv(d.get('numbers'))}</td>"
            f"<td class='kv'>{_kv(d.get('thresholds'))}</td>"
            f"<td>{esc(', '.join(d.get('failing') or []) or '-')}</td></tr>"
        )
    if not rows:
        return "<p class='muted'>No decision yet.</p>"
    return (
        "<table><thead><tr><th>#</th><th>decision</th><th>cycle</th><th>stage</th><th>round</th><th>reason</th>"
        "<th>numbers</th><th>thresholds</th><th>failing</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>"
    )


def modules_table(state: dict, report: dict | None) -> str:
    rep = {r["module"]: r for r in (report or {}).get("modules", [])}
    rows = []
    for k, m in sorted((state.get("modules") or {}).items()):
        ps = last_score(state, k)
        ratio = None if ps is None else ps / max(m.get("teacher_score") or 0.0, 1e-6)
        r = rep.get(k, {})
        st = _status(state, k)
        rows.append(
            f"<tr><td><b>{esc(k)}</b><br><span class='muted'>{esc(m.get('name'))}</span></td>"
            f"<td class='num'>{f2(m.get('teacher_score'))}</td><td class='num'>{f2(ps)}</td>"
            f"<td class='num'>{f2(ratio)}</td><td class='num'>{f2((state.get('gap') or {}).get(k))}</td>"
            f"<td class='num'>{f2(r.get('before'))} → {f2(r.get('after'))}</td>"
            f"<td><span class='pill' style='background:{STATUS_COLORS.get(st, '#fff')};color:#222'>"
            f"{esc(st)}</span>{'<br>' + esc(r['why_not_taught']) if r.get('why_not_taught') else ''}</td>"
            f"<td>{esc('; '.join(m.get('fallbacks') or []) or '')}</td></tr>"
        )
    if not rows:
        return "<p class='muted'>No modules yet.</p>"
    return ("<table><thead><tr><th>module</th><th>P_T</th><th>P_S (latest)</th><th>ratio</th><th>gap</th>"
            "<th>test before → after</th><th>status</th><th>fallbacks</th></tr></thead><tbody>" + "".join(rows)
            + "</tbody></table>")


def _round_robin(groups: dict[str, list[dict]], n: int) -> list[dict]:
    """Up to n entries taken in turn from each group, so that every group appears."""
    queues = {k: list(v) for k, v in groups.items()}
    out: list[dict] = []
    while len(out) < n and any(queues.values()):
        for k in queues:
            if queues[k] and len(out) < n:
                out.append(queues[k].pop(0))
    return out


def _round_of(rel: str) -> str:
    """items/c0-s1-r2-dropped.jsonl -> c0 s1 r2"""
    return Path(rel).stem.replace("-dropped", "").replace("-", " ")


def item_samples(run_dir: Path, state: dict) -> str:
    kept: dict[str, list[dict]] = defaultdict(list)
    dropped: dict[str, list[dict]] = defaultdict(list)
    for ref in state.get("item_files") or []:
        for r in _read_jsonl(run_dir, ref["path"]):
            kept[r.get("module", "?")].append({**r, "_file": ref["path"]})
    for ref in state.get("dropped_files") or []:
        for r in _read_jsonl(run_dir, ref["path"]):
            dropped[r.get("module", "?")].append({**r, "_file": ref["path"]})
    modules = sorted(set(kept) | set(dropped))
    if not modules:
        return "<p class='muted'>No items synthesized yet.</p>"
    out = []
    for k in modules:
        ks, ds = kept[k], dropped[k]
        reasons = Counter(str(d.get("reason", "")).split(":")[0] for d in ds)
        # a sample that shows every kind of drop: round-robin over the reasons
        by_reason: dict[str, list[dict]] = defaultdict(list)
        for d in ds:
            by_reason[str(d.get("reason", "")).split(":")[0]].append(d)
        sample = _round_robin(by_reason, SAMPLE_DROPPED)
        by_round: dict[str, list[dict]] = defaultdict(list)
        for r in ks:
            by_round[r["_file"]].append(r)
        ksample = _round_robin(by_round, SAMPLE_KEPT)  # every round (initial, remediate, simplify) shown
        krows = "".join(
            f"<tr><td class='rnd'>{esc(_round_of(r['_file']))}</td><td>{esc(r.get('mode'))}</td>"
            f"<td>{esc(r.get('prompt'))}</td>"
            f"<td>{esc(r.get('answer'))}</td><td>{esc(r.get('source'))}</td>"
            f"<td>{esc(_kv(r.get('verification') or {}))}</td></tr>"
            for r in ksample
        )
        drows = "".join(
            f"<tr class='drop' data-reason='{esc(str(d.get('reason', '')).split(':')[0])}'>"
            f"<td class='rnd'>{esc(_round_of(d['_file']))}</td>"
            f"<td>{esc(d.get('mode'))}</td><td>{esc(d.get('question'))}</td><td>{esc(d.get('answer') or '')}</td>"
            f"<td>{esc(d.get('source'))}</td><td class='reason'>{esc(d.get('reason'))}</td></tr>"
            for d in sample
        )
        out.append(
            f"<details open class='items'><summary><b>{esc(k)}</b>: {len(ks)} kept, {len(ds)} dropped"
            + (" (" + ", ".join(f"{esc(r)}: {n}" for r, n in reasons.most_common()) + ")" if reasons else "")
            + "</summary>"
            f"<h4>kept ({len(ksample)} of {len(ks)}, every round shown)</h4>"
            + (
                f"<table><thead><tr><th>round</th><th>mode</th><th>question</th><th>answer</th><th>source</th>"
                f"<th>verification</th></tr></thead><tbody>{krows}</tbody></table>"
                if ks
                else "<p class='muted'>none</p>"
            )
            + f"<h4>dropped ({len(sample)} of {len(ds)}, every reason shown)</h4>"
            + (
                f"<table><thead><tr><th>round</th><th>mode</th><th>question</th><th>answer</th><th>source</th>"
                f"<th>reason</th></tr></thead><tbody>{drows}</tbody></table>"
                if ds
                else "<p class='muted'>none</p>"
            )
            + "</details>"
        )
    return "".join(out)


CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;margin:0;color:#222;
background:#f3f4f7}
header{background:#263041;color:#fff;padding:18px 28px}header h1{margin:0 0 4px;font-size:22px}
header .sub{opacity:.85}main{padding:18px 28px;max-width:1240px}
section{background:#fff;border-radius:8px;box-shadow:0 1px 3px rgba(0,0,0,.08);padding:14px 18px;margin:0 0 18px}
h2{font-size:17px;margin:0 0 8px}h4{margin:10px 0 4px;font-size:13px}
.grid{display:grid;grid-template-columns:1fr 1fr;gap:18px;margin:0 0 18px}.grid section{margin:0}
@media(max-width:1100px){.grid{grid-template-columns:1fr}}
svg.chart{max-width:100%;height:auto;display:block}svg text{fill:#333;font-family:inherit}svg text.muted{fill:#888}
svg text.colhead{fill:#445;font-weight:600}
table{border-collapse:collapse;width:100%;font-size:12.5px}th,td{border-bottom:1px solid #e4e4e4;padding:4px 6px;
text-align:left;vertical-align:top}th{background:#f6f7f9}td.num{font-variant-numeric:tabular-nums;white-space:nowrap}
.pill{display:inline-block;border-radius:10px;padding:0 8px;color:#fff;font-size:12px}.muted{color:#888}
.kpis{display:flex;gap:22px;flex-wrap:wrap;margin-top:8px}
.kpis div{background:rgba(255,255,255,.1);padding:6px 12px;border-radius:6px}
.kpis b{display:block;font-size:18px}details.items{margin:6px 0 12px}details summary{cursor:pointer}
td.reason{color:#a11}td.why{min-width:260px}td.rnd{white-space:nowrap}td.kv{font-variant-numeric:tabular-nums;max-width:260px}
p.caption{color:#666;font-size:12px;margin:4px 0 0}
"""

SCRIPT = """
(function(){
  var charts = document.querySelectorAll('svg.chart');
  var drawn = 0;
  charts.forEach(function(svg){ if (svg.querySelector('.mark')) { drawn++; svg.setAttribute('data-drawn','1'); } });
  document.documentElement.setAttribute('data-charts-drawn', String(drawn));
  var box = document.getElementById('only-drops');
  if (box) box.addEventListener('change', function(){
    document.querySelectorAll('details.items tr:not(.drop)').forEach(function(tr){
      if (tr.parentNode.tagName === 'TBODY') tr.style.display = box.checked ? 'none' : '';
    });
  });
})();
"""


def render_html(run_dir: Path, state=None) -> str:
    """The report page for a run directory, as one string (state: a LearnerState or its dump; default: the
    latest checkpoint)."""
    run_dir = Path(run_dir)
    d = _load(run_dir, state)
    state, th, events, report = d["state"], d["th"], d["events"], d["report"]
    run_id = state.get("run_id") or d["cfg"].get("run_id") or run_dir.name
    usage = state.get("usage") or {}
    tokens = sum(u["tokens_in"] + u["tokens_out"] for u in usage.values())
    ov = (report or {}).get("overall") or {}
    teacher = (d["cfg"].get("teacher") or {}).get("spec", "?")
    student = (d["cfg"].get("student") or {}).get("source", "?")
    kpis = [("status", state.get("status", "no checkpoint")), ("rounds", state.get("total_rounds", 0)),
            ("optimizer steps", state.get("optimizer_steps", 0)), ("teacher tokens", f"{tokens:,}"),
            ("decisions", len(state.get("decisions") or [])),
            ("test retention", f"{f2(ov.get('retention_before'))} → {f2(ov.get('retention_after'))}" if ov else "-")]
    for label, key in (("deficient at start", "deficient_overall"), ("known at start (score)", "known_overall")):
        g = (report or {}).get(key)
        if g:
            kpis.append((label, f"{f2(g['retention_before'])} → {f2(g['retention_after'])}" if key[0] == "d"
                         else f"{f2(g['before'])} → {f2(g['after'])}"))
    thr = ", ".join(f"{k} {th[k]}" for k in ("tau_gap", "tau_dep", "tau_low", "tau_mastery") if k in th)
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; style-src 'unsafe-inline'; "
        "script-src 'unsafe-inline'; img-src data:\">",
        f"<meta name='viewport' content='width=device-width,initial-scale=1'><title>ioa run {esc(run_id)}</title>",
        f"<style>{CSS}</style></head><body>",
        f"<header><h1>ioa run {esc(run_id)}</h1><div class='sub'>teacher {esc(teacher)} → student {esc(student)}; "
        f"thresholds: {esc(thr)}</div><div class='kpis'>"
        + "".join(f"<div><b>{esc(v)}</b>{esc(k)}</div>" for k, v in kpis)
        + "</div></header><main>",
        f"<section><h2>Modules</h2>{modules_table(state, report)}</section>",
        f"<section><h2>Mastery ratio per module over rounds</h2>{mastery_chart(state, th)}"
        f"<p class='caption'>P_S / P_T on each module's gate items at every diagnosis and exam; a stage passes when "
        f"all its modules reach tau_mastery; below tau_low items are shaped for a weaker student.</p></section>",
        f"<section><h2>Prerequisite graph and stages</h2>{graph_chart(state, th, events)}"
        f"<p class='caption'>Columns are curriculum stages in order; edge width and label give the strength "
        f"((n_obs·measured + 2·prior)/(n_obs + 2)); kept when above tau_dep {esc(th.get('tau_dep'))}. "
        "Hover for the numbers.</p></section>",
        "<div class='grid'>",
        f"<section><h2>Teacher tokens per stage</h2>{tokens_per_stage_chart(events)}</section>",
        f"<section><h2>Teacher tokens per role</h2>{tokens_per_role_chart(state)}</section>",
        "</div>",
        f"<section><h2>Items kept and dropped per synthesis round</h2>{items_chart(events)}</section>",
        f"<section><h2>Synthesis yield</h2>{yield_table(run_dir, state, events)}</section>",
        f"<section><h2>Decision timeline</h2>{decision_chart(state)}{decisions_table(state)}</section>",
        "<section><h2>Items per module</h2><label><input type='checkbox' id='only-drops'> only dropped items</label>"
        f"{item_samples(run_dir, state)}</section>",
        f"<p class='muted'>Written by <code>ioa report</code> from {esc(run_dir)}; "
        f"details: <code>ioa trace {esc(run_id)}</code>, "
        f"<code>ioa inspect {esc(run_id)}</code>.</p>",
        f"</main><script>{SCRIPT}</script></body></html>",
    ]
    return "\n".join(parts)


def write_html(run_dir: Path, out: Path | None = None, state=None) -> Path:
    """Write the report page (default runs/<id>/report.html, atomically) and return its path.

    Inside the report node pass the node's final state (`state=`): the checkpoint of the report node itself is
    written only after the node returns, so the latest checkpoint is then one step behind."""
    run_dir = Path(run_dir)
    out = Path(out) if out is not None else run_dir / "report.html"
    out.parent.mkdir(parents=True, exist_ok=True)
    text = render_html(run_dir, state)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=".tmp-", suffix=".html")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.chmod(tmp, 0o644)  # a page to share, not a secret (mkstemp makes it 0600)
    os.replace(tmp, out)
    return out
