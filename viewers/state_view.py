"""The learner state at any checkpoint of a run, and what changed between two (what `ioa inspect RUN` shows).

The checkpoints are LangGraph's state history of the run's thread (runs/<id>/checkpoints.sqlite), numbered 0, 1, ...
from the oldest: step 0 is the run's input, every later step the state a node wrote. Nothing here loads a model.

    ioa inspect RUN             the numbered steps: node that wrote it, phase, cycle, stage, round
    ioa inspect RUN --at 7      one checkpoint summarised: modules (P_T, P_S, ratio), edges, stages, decisions, tokens
    ioa inspect RUN --diff 3 4  what changed: old -> new for scalars, added / removed entries for lists and dicts
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ioa_state.stage_history import plan_cycle, stage_history


# -- the state history --------------------------------------------------------------------------------------------
@dataclass
class Step:
    index: int
    wrote: str  # the node whose update this checkpoint holds ("input" for the run's input)
    checkpoint_id: str
    created_at: str
    source: str
    langgraph_step: int
    next: tuple
    values: dict  # the learner state as JSON-able data ({} for the empty start)

    def row(self) -> dict:
        v = self.values
        stages = v.get("stages") or []
        cur = v.get("current_stage", 0)
        stage = stages[cur] if 0 <= cur < len(stages) else None
        return {"step": self.index, "wrote": self.wrote, "phase": v.get("phase"), "cycle": v.get("cycle"),
                "stage": stage["index"] if stage else None,
                "round": stage["rounds"] if stage else v.get("round_in_stage"),  # rounds examined in that stage
                "total_rounds": v.get("total_rounds"), "next": list(self.next), "checkpoint_id": self.checkpoint_id,
                "created_at": self.created_at}


def history(run_dir: Path) -> list[Step]:
    """The run's checkpoints, oldest first, each with the node that wrote it."""
    import yaml

    from agents.checkpoints import checkpointer, has_checkpoint, thread
    from graph.builder import build
    from ioa_state import LearnerState

    if not has_checkpoint(run_dir):  # not started yet: nothing to read (and nothing is ever written)
        return []
    cfg = yaml.safe_load((run_dir / "config.yaml").read_text())
    # the graph (which compiles without services) knows which node each checkpoint was written before
    graph = build().compile(checkpointer=checkpointer(run_dir, read_only=True))
    snaps = list(graph.get_state_history(thread(cfg["run_id"])))[::-1]
    steps: list[Step] = []
    for i, s in enumerate(snaps):
        prev = snaps[i - 1] if i else None
        if prev is None or s.metadata.get("source") == "input":
            wrote = "-"  # the empty checkpoint taken before the input is applied
        else:
            wrote = ",".join(prev.next) or "?"
            wrote = "input" if wrote == "__start__" else wrote
        values = LearnerState.model_validate(s.values).model_dump(mode="json") if s.values else {}
        steps.append(Step(i, wrote, s.config["configurable"].get("checkpoint_id", ""), s.created_at or "",
                          s.metadata.get("source", ""), s.metadata.get("step", -1), tuple(s.next), values))
    return steps


def _pick(steps: list[Step], n: int) -> Step:
    if not steps:
        from ioa_state import ConfigError
        raise ConfigError("the run has no checkpoint yet")
    if -len(steps) <= n < len(steps):
        return steps[n]
    from ioa_state import ConfigError
    raise ConfigError(f"no step {n}: the run has steps 0..{len(steps) - 1} (negative numbers count from the end)")


# -- summaries ----------------------------------------------------------------------------------------------------
def _f(x, d: int = 2) -> str:
    return "-" if x is None else f"{x:.{d}f}" if isinstance(x, float) else str(x)


def summary(v: dict, eps: float = 1e-6) -> dict:
    """The parts of a state a person asks about, as data."""
    observations = v.get("observations") or []
    obs = observations[-1] if observations else None
    mods = {}
    for k, m in sorted((v.get("modules") or {}).items()):
        pt = m.get("teacher_score")
        # P_S at the latest observation that scored the module (an exam scores the stage's modules and a few others)
        seen = next((o for o in reversed(observations) if k in o["scores"]), None)
        ps = seen["scores"][k] if seen else None
        status = ("passed" if k in v.get("passed", []) else "not mastered" if k in v.get("not_mastered", []) else
                  "teacher-limited" if m.get("teacher_limited") else "target" if k in v.get("targets", []) else
                  "deficient" if k in v.get("deficient", []) else "-")
        mods[k] = {"name": m.get("name"), "P_T": pt, "P_S": ps,
                   "P_S_at": f"{seen['source']} c{seen['cycle']} r{seen['round']}" if seen else None,
                   "ratio": None if ps is None else ps / max(pt or 0.0, eps), "gap": (v.get("gap") or {}).get(k),
                   "level": (v.get("level") or {}).get(k), "status": status}
    usage = v.get("usage") or {}
    return {
        "run_id": v.get("run_id"),
        "status": v.get("status"),
        "phase": v.get("phase"),
        "cycle": v.get("cycle"),
        "mode": v.get("mode"),
        "current_stage": v.get("current_stage"),
        "round_in_stage": v.get("round_in_stage"),
        "total_rounds": v.get("total_rounds"),
        "optimizer_steps": v.get("optimizer_steps"),
        "last_observation": {k: obs[k] for k in ("source", "cycle", "round", "checkpoint")} if obs else None,
        "modules": mods,
        "edges_kept": [f"{e['src']}->{e['dst']} ({e['strength']:.2f})" for e in v.get("edges") or [] if e.get("kept")],
        "edges_not_kept": [
            f"{e['src']}->{e['dst']} ({e['strength']:.2f})" for e in v.get("edges") or [] if not e.get("kept")
        ],
        "stages": [
            {
                "cycle": plan_cycle(v),
                "index": s["index"],
                "modules": s["modules"],
                "status": s["status"],
                "rounds": s["rounds"],
                "min_ratio_history": s["min_ratio_history"],
            }
            for s in v.get("stages") or []
        ],
        "stage_history": stage_history(v),  # earlier cycles' stages too (the state keeps only the latest plan)
        "decisions": [
            {"kind": d["kind"], "cycle": d["cycle"], "stage": d["stage"], "round": d["round"], "reason": d["reason"]}
            for d in v.get("decisions") or []
        ],
        "tokens": {r: u["tokens_in"] + u["tokens_out"] for r, u in usage.items()},
        "teacher_calls": {r: u["calls"] for r, u in usage.items()},
        "item_files": [r["path"] for r in v.get("item_files") or []],
        "dropped_files": [r["path"] for r in v.get("dropped_files") or []],
        "student": (v.get("student") or {}).get("path"),
        "stop_reason": v.get("stop_reason"),
    }


def _stage_rounds(v: dict):
    stages, cur = v.get("stages") or [], v.get("current_stage", 0)
    return stages[cur]["rounds"] if 0 <= cur < len(stages) else "-"


def format_summary(step: Step) -> str:
    s = summary(step.values)
    if not step.values:
        return f"step {step.index} ({step.wrote}): empty state (next: {', '.join(step.next) or '-'})"
    lines = [f"step {step.index}: written by {step.wrote} at {step.created_at}; next: {', '.join(step.next) or 'END'}",
             f"run {s['run_id']}: {s['status']}, phase {s['phase']}, cycle {s['cycle']}, mode {s['mode']}, "
             f"current stage {s['current_stage']} ({_stage_rounds(step.values)} rounds examined), "
             f"{s['total_rounds']} rounds in all, "
             f"{s['optimizer_steps']} optimizer steps, student {s['student'] or 'initial'}"]
    if s["last_observation"]:
        o = s["last_observation"]
        lines.append(
            f"last observation: {o['source']} (cycle {o['cycle']}, round {o['round']}, student {o['checkpoint']})"
        )
    if s["modules"]:
        lines.append(
            f"  {'module':<18}{'P_T':>6}{'P_S':>6}{'ratio':>7}{'gap':>6}{'lvl':>5}  {'status':<16}P_S measured at"
        )
        for k, m in s["modules"].items():
            lines.append(f"  {k[:17]:<18}{_f(m['P_T']):>6}{_f(m['P_S']):>6}{_f(m['ratio']):>7}{_f(m['gap']):>6}"
                         f"{_f(m['level']):>5}  {m['status']:<16}{m['P_S_at'] or '-'}")
    lines.append(f"edges kept: {', '.join(s['edges_kept']) or '-'}; not kept: {', '.join(s['edges_not_kept']) or '-'}")
    current = {(st["cycle"], st["index"]): st for st in s["stages"]}
    for h in s["stage_history"]:
        st = current.get((h["cycle"], h["stage"]))
        hist = (
            (", min ratio per round: " + (", ".join(f"{x:.2f}" for x in st["min_ratio_history"]) or "-")) if st else ""
        )
        lines.append(f"cycle {h['cycle']} stage {h['stage']}: {', '.join(h['modules'])} - {h['status']}, "
                     f"{h['rounds']} rounds{hist}")
    for d in s["decisions"]:
        lines.append(
            f"decision {d['kind']} (cycle {d['cycle']}, stage {d['stage']}, round {d['round']}): {d['reason']}"
        )
    lines.append(
        "teacher tokens: "
        + (", ".join(f"{r} {t} ({s['teacher_calls'][r]} calls)" for r, t in s["tokens"].items()) or "-")
        + f"; total {sum(s['tokens'].values())}"
    )
    lines.append(f"item files: {len(s['item_files'])} kept, {len(s['dropped_files'])} dropped"
                 + (f" (latest {s['item_files'][-1]})" if s["item_files"] else ""))
    if s["stop_reason"]:
        lines.append(f"stop reason: {s['stop_reason']}")
    return "\n".join(lines)


# -- diff ---------------------------------------------------------------------------------------------------------
LIST_KEYS = {
    "stages": lambda e: f"c{e.get('cycle')} stage {e.get('index')}" if "cycle" in e else f"stage {e.get('index')}",
    "edges": lambda e: f"{e.get('src')}->{e.get('dst')}",
}
LABELS = {
    "decisions": lambda e: f"{e['kind']} (cycle {e['cycle']}, stage {e['stage']}, round {e['round']}): {e['reason']}",
    "observations": lambda e: f"{e['source']} observation (cycle {e['cycle']}, round {e['round']}): "
                              + ", ".join(f"{k}={v:.2f}" for k, v in e["scores"].items()),
    "item_files": lambda e: f"{e['path']} ({e.get('count')} items)",
    "dropped_files": lambda e: f"{e['path']} ({e.get('count')} dropped)",
    "student_history": lambda e: e["path"],
}


def _short(x) -> str:
    if isinstance(x, dict) and "path" in x and "sha256" in x:  # an ArtifactRef
        return f"{x['path']} (sha256 {str(x['sha256'])[:12]}…)"
    text = json.dumps(x, ensure_ascii=False, sort_keys=True) if not isinstance(x, str) else repr(x)
    return text if len(text) <= 160 else text[:159] + "…"


def diff(a, b, path: str = "") -> list[dict]:
    """Changes from a to b: {path, change: changed|added|removed, old, new} (recursing into dicts and keyed lists)."""
    out: list[dict] = []
    if isinstance(a, dict) and isinstance(b, dict):
        for k in list(a) + [k for k in b if k not in a]:
            p = f"{path}.{k}" if path else str(k)
            if k not in b:
                out.append({"path": p, "change": "removed", "old": a[k]})
            elif k not in a:
                out.append({"path": p, "change": "added", "new": b[k]})
            elif a[k] != b[k]:
                out.extend(diff(a[k], b[k], p))
        return out
    if isinstance(a, list) and isinstance(b, list):
        field = path.split(".")[-1]
        if field in LIST_KEYS and all(isinstance(e, dict) for e in a + b):
            key = LIST_KEYS[field]
            ka, kb = {key(e): e for e in a}, {key(e): e for e in b}
            for k in list(ka) + [k for k in kb if k not in ka]:
                if k not in kb:
                    out.append({"path": f"{path}[{k}]", "change": "removed", "old": ka[k]})
                elif k not in ka:
                    out.append({"path": f"{path}[{k}]", "change": "added", "new": kb[k]})
                elif ka[k] != kb[k]:
                    out.extend(diff(ka[k], kb[k], f"{path}[{k}]"))
            return out
        canon = lambda e: json.dumps(e, sort_keys=True)  # noqa: E731
        ca, cb = [canon(e) for e in a], [canon(e) for e in b]
        removed = [e for e, c in zip(a, ca) if c not in cb]
        added = [e for e, c in zip(b, cb) if c not in ca]
        for e in removed:
            out.append({"path": path, "change": "removed", "old": e})
        for e in added:
            out.append({"path": path, "change": "added", "new": e})
        if not removed and not added and ca != cb:
            out.append({"path": path, "change": "changed", "old": a, "new": b, "note": "reordered"})
        return out
    if a != b:
        out.append({"path": path, "change": "changed", "old": a, "new": b})
    return out


def with_plan_cycle(v: dict) -> dict:
    """The state with each stage tagged by its plan's cycle, so that a diff keys stages by (cycle, stage)."""
    if not v.get("stages"):
        return v
    c = plan_cycle(v)
    return {**v, "stages": [{"cycle": c, **s} for s in v["stages"]]}


def format_change(c: dict) -> str:
    field = c["path"].split(".")[0].split("[")[0]
    label = LABELS.get(field) if c["path"] == field else None
    if c["change"] == "changed":
        note = f" ({c['note']})" if c.get("note") else ""
        return f"  {c['path']}: {_short(c['old'])} -> {_short(c['new'])}{note}"
    sign, val = ("+", c["new"]) if c["change"] == "added" else ("-", c["old"])
    try:
        text = label(val) if label else _short(val)
    except (KeyError, TypeError):
        text = _short(val)
    return f"{sign} {c['path']}: {text}"
