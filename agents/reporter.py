"""The report node (an agent like the others) and the end-of-run table (algorithm §5).

On the test split (never read by any decision): teacher, student before, student after, and retention
(student / teacher) per module and overall; teacher tokens per role; optimizer steps; the decision history;
teacher-limited modules shown as such, not averaged in silently. Written to runs/<id>/report.json.
"""
from __future__ import annotations

import time

from agents import scoring
from agents.runtime import Services, write_json
from agents.tracing import read_lines
from ioa_state import LearnerState, Thresholds
from ioa_state import pedagogy as ped
from ioa_state.records import RunReport
from ioa_state.stage_history import call_place, stage_history, stages_of


def retention(student: float, teacher: float, eps: float = 1e-6) -> float:
    return student / max(teacher, eps)


def group(rows: list[dict], eps: float) -> dict | None:
    """Teacher, before and after over a group of modules (means of the module scores) and its retention."""
    if not rows:
        return None
    t, b, a = (sum(r[key] for r in rows) / len(rows) for key in ("teacher", "before", "after"))
    return {"teacher": t, "before": b, "after": a, "retention_before": retention(b, t, eps),
            "retention_after": retention(a, t, eps), "modules": len(rows)}


def summary(rows: list[dict], t: float, b: float, a: float, eps: float) -> dict:
    """Overall and teachable retention (teacher-limited modules excluded, and listed) from per-module rows."""
    teachable = [r for r in rows if not r["teacher_limited"]]
    return {
        "overall": {
            "teacher": t,
            "before": b,
            "after": a,
            "retention_before": retention(b, t, eps),
            "retention_after": retention(a, t, eps),
        },
        "teachable_overall": {
            "retention_before": retention(
                sum(r["before"] for r in teachable), sum(r["teacher"] for r in teachable), eps
            ),
            "retention_after": retention(sum(r["after"] for r in teachable), sum(r["teacher"] for r in teachable), eps),
        }
        if teachable
        else None,
        "deficient_overall": group([r for r in rows if r.get("deficient_at_start")], eps),
        "known_overall": group([r for r in rows if r.get("known_at_start")], eps),
        "modules": rows,
        "teacher_limited": [r["module"] for r in rows if r["teacher_limited"]],
    }


def build_report(state: LearnerState, after: dict[str, float], eps: float, events: list[dict] | None = None,
                 th: Thresholds | None = None, max_rounds_total: int | None = None) -> dict:
    """report.json's data; `events` (the trace) adds stages planned but never examined to `stages`."""
    th = th or Thresholds(eps=eps)
    history = stage_history(state.model_dump(mode="json"), events)
    taught = stages_of(history)
    rows = []
    for k, m in sorted(state.modules.items()):
        t, b, a = state.test_teacher.get(k, 0.0), state.test_before.get(k, 0.0), after.get(k, 0.0)
        rows.append({"module": k, "name": m.name, "teacher_probe": m.teacher_score, "teacher": t, "before": b,
                     "after": a, "retention_before": retention(b, t, eps), "retention_after": retention(a, t, eps),
                     "teacher_limited": m.teacher_limited, "targeted": k in state.targets or k in state.trained,
                     "passed": k in state.passed, "not_mastered": k in state.not_mastered,
                     "deficient_at_start": k in state.first_deficient, "known_at_start": k in state.known,
                     "why_not_taught": ped.untaught_reason(k, state, th, max_rounds_total),
                     "decisions": [d.kind for d in state.decisions if k in d.modules],
                     "stages": [list(cs) for cs in taught.get(k, [])]})
    t, b, a = state.test_teacher.get("overall", 0.0), state.test_before.get("overall", 0.0), after.get("overall", 0.0)
    usage = {role: u.model_dump() for role, u in state.usage.items()}
    return {
        "run_id": state.run_id,
        **summary(rows, t, b, a, eps),
        "teacher_tokens": sum(u["tokens_in"] + u["tokens_out"] for u in usage.values()),
        "usage": usage,
        "optimizer_steps": state.optimizer_steps,
        "rounds": state.total_rounds,
        "cycles": state.cycle + 1,
        "stages": history,
        "decisions": [d.model_dump() for d in state.decisions],
        "caveats": state.caveats,
        "reference_note": (
            "items without a reference are scored against the teacher's greedy answer (P_T = 1 there by construction)"
        ),
        "status": "stopped" if state.stop_reason else "finished",
        "stop_reason": state.stop_reason,
    }


def tokens_by_stage(events: list[dict]) -> dict[str, int]:
    """Teacher tokens paid (cache hits excluded) per (cycle, stage), and per cycle for the diagnosis, from the
    annotated trace (trace_cli.read_events)."""
    out: dict[str, int] = {}
    for e in events:
        if e.get("event") != "teacher_call" or e.get("cached"):
            continue
        kind, cycle, stage = call_place(e)
        key = f"cycle {cycle} stage {stage}" if kind == "stage" else f"cycle {cycle} {kind}"
        out[key] = out.get(key, 0) + int(e.get("tokens_in") or 0) + int(e.get("tokens_out") or 0)
    return out


def report(state: LearnerState, svc: Services) -> dict:
    """The report node: test split after training, retention, report.json."""
    svc.progress("report: scoring the test split")
    t0 = time.perf_counter()
    test_items = [svc.items[i] for m in state.modules.values() for i in m.test_ids]
    s = scoring.check_all(svc, test_items, scoring.student_answers(svc, test_items))
    after, _ = scoring.module_scores({k: m.test_ids for k, m in state.modules.items()}, s)
    after["overall"] = scoring.mean(list(s.values()))
    events = list(read_lines(svc.trace.path))
    data = build_report(state.model_copy(update={"usage": svc.usage()}), after, svc.cfg.thresholds.eps, events,
                        svc.cfg.thresholds, svc.cfg.max_rounds_total)
    data["usage_by_backend"] = {spec: u.model_dump() for spec, u in svc.teacher.usage_by_backend.items()}
    data["tokens_by_stage"] = tokens_by_stage(events)
    data["context_passages"] = svc.context_passages
    from agents.synthesis_yield import run_yield  # the Adapter's yield: written, kept, dropped by reason, tokens/kept
    data["synthesis"] = run_yield(svc.run_dir, state.item_files, state.dropped_files, svc.usage(), events)
    data["report_seconds"] = round(time.perf_counter() - t0, 3)
    data["wall_s"] = round(svc.trace.node_seconds() + data["report_seconds"], 1)
    ref = write_json(svc.run_dir, "report.json", RunReport.model_validate(data).model_dump(), kind="report")
    svc.progress(f"report: {ref.path}")
    svc.trace.emit("report", node="report", overall=data["overall"], teacher_tokens=data["teacher_tokens"])
    return {"test_after": after, "report": ref, "status": "finished", "phase": "reported", "usage": svc.usage()}


def format_table(data: dict) -> str:
    """The per-module table printed at the end of a run."""
    lines = [f"{'module':<18}{'teacher':>8}{'before':>8}{'after':>8}{'ret.before':>11}{'ret.after':>10}  decisions"]
    for r in data["modules"]:
        why = r.get("why_not_taught")
        flag = f" ({why})" if why else " (teacher-limited)" if r["teacher_limited"] else ""
        dec = ",".join(r["decisions"]) or "-"
        lines.append(f"{r['module'][:17]:<18}{r['teacher']:>8.2f}{r['before']:>8.2f}{r['after']:>8.2f}"
                     f"{r['retention_before']:>11.2f}{r['retention_after']:>10.2f}  {dec}{flag}")
    o = data["overall"]
    lines.append(f"{'overall (test)':<18}{o['teacher']:>8.2f}{o['before']:>8.2f}{o['after']:>8.2f}"
                 f"{o['retention_before']:>11.2f}{o['retention_after']:>10.2f}")
    for label, key in (("deficient at start", "deficient_overall"), ("known at start", "known_overall")):
        g = data.get(key)
        if g:
            lines.append(f"{label:<18}{g['teacher']:>8.2f}{g['before']:>8.2f}{g['after']:>8.2f}"
                         f"{g['retention_before']:>11.2f}{g['retention_after']:>10.2f}  ({g.get('modules', '?')} "
                         f"modules, mean of module scores)")
    lines.append(
        f"test-split retention (student/teacher): before {o['retention_before']:.3f} "
        f"-> after {o['retention_after']:.3f}; "
        f"teacher tokens {data['teacher_tokens']}; optimizer steps {data['optimizer_steps']}; rounds {data['rounds']}"
    )
    for c in data.get("caveats") or []:
        lines.append(f"caveat: {c}")
    return "\n".join(lines)


def read_report(path) -> dict:
    """A run's report.json, validated as a RunReport (one reader for the CLI, the bench and the HTML page)."""
    from pathlib import Path

    return RunReport.model_validate_json(Path(path).read_text()).model_dump()
