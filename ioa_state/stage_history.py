"""Every curriculum stage a run went through, keyed by (cycle, stage), for the report, the HTML page and inspect.

The state's `stages` list holds the current cycle's plan only (each plan replaces it), so earlier cycles' stages
come from the decisions (cycle, stage and the stage's modules when each was taken) and, for a stage planned but
never examined, from the trace's `stage_planned` events. Reads plain dicts (a state's JSON dump, trace events).
"""
from __future__ import annotations

OUTCOMES = {"advance": "passed", "give_up": "gave_up"}


def plan_cycle(state: dict) -> int:
    """The cycle the state's `stages` were planned in: after a rediagnose decision the cycle counter moves on at
    once, but the old plan stays in the state until the plan node replaces it."""
    cur = int(state.get("cycle") or 0)
    decisions = state.get("decisions") or []
    if (
        decisions
        and decisions[-1].get("kind") == "rediagnose"
        and state.get("phase") in ("examined", "advance", "give_up", "diagnosed")
        and decisions[-1].get("cycle") is not None
    ):
        return int(decisions[-1]["cycle"])
    return cur


def stage_history(state: dict, events: list[dict] | None = None) -> list[dict]:
    """[{cycle, stage, modules, status, rounds}] in (cycle, stage) order; the state's own plan as it has it."""
    cur = plan_cycle(state)
    out: dict[tuple[int, int], dict] = {}
    for ev in events or []:
        if ev.get("event") == "stage_planned" and ev.get("cycle") is not None and ev.get("stage") is not None:
            key = (int(ev["cycle"]), int(ev["stage"]))
            out[key] = {"cycle": key[0], "stage": key[1], "modules": list(ev.get("modules") or []),
                        "status": "pending", "rounds": 0}
    for d in state.get("decisions") or []:
        if d.get("stage") is None or d.get("cycle") is None:
            continue
        key = (int(d["cycle"]), int(d["stage"]))
        row = out.setdefault(key, {"cycle": key[0], "stage": key[1], "modules": [], "status": "pending", "rounds": 0})
        if d.get("modules"):  # what was taught, should a plan have been revised since
            row["modules"] = list(d["modules"])
        if d.get("kind") in OUTCOMES:
            row["status"] = OUTCOMES[d["kind"]]
        row["rounds"] = max(row["rounds"], int(d.get("round") or 0))
    for s in state.get("stages") or []:  # the current plan is the authority on the current cycle
        key = (cur, int(s["index"]))
        out[key] = {"cycle": cur, "stage": key[1], "modules": list(s["modules"]), "status": s["status"],
                    "rounds": int(s.get("rounds") or 0)}
    return [out[k] for k in sorted(out) if out[k]["modules"]]


def stage_label(cycle: int | None, stage: int | None, cycles: bool = True) -> str:
    """'c1 stage 0' (or 'stage 0' when the run has one cycle)."""
    return f"c{cycle} stage {stage}" if cycles and cycle is not None else f"stage {stage}"


def stages_of(history: list[dict]) -> dict[str, list[tuple[int, int]]]:
    """module -> the (cycle, stage) pairs it was taught in."""
    out: dict[str, list[tuple[int, int]]] = {}
    for row in history:
        for k in row["modules"]:
            out.setdefault(k, []).append((row["cycle"], row["stage"]))
    return out


def call_place(ev: dict) -> tuple[str, int, int | None]:
    """Where a teacher call was made: ("stage", cycle, stage), ("diagnosis", cycle, None) or (node, cycle, None).

    Reads an event annotated by trace_cli.read_events (`_node`, `_stage`, `_cycle` from the enclosing node)."""
    node = ev.get("_node")
    cycle = ev.get("cycle") if ev.get("cycle") is not None else ev.get("_cycle")
    cycle = int(cycle or 0)
    if ev.get("stage") is not None:
        return "stage", cycle, int(ev["stage"])
    if node == "diagnose" or ev.get("_stage") is None:
        return ("diagnosis" if node in (None, "diagnose") else str(node)), cycle, None
    return "stage", cycle, int(ev["_stage"])
