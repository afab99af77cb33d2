"""The report, the HTML page and `ioa inspect` key stages by (cycle, stage): a hand-made run of two cycles, where
culture was taught and passed in cycle 0 and only geography is re-taught in cycle 1 (the state's `stages` then holds
cycle 1's plan only)."""
from __future__ import annotations

import json
import re

import yaml

from agents.reporter import build_report, tokens_by_stage
from ioa_state import LearnerState
from ioa_state.stage_history import plan_cycle, stage_history
from viewers import html_report
from viewers import state_view as inspect_cli
from viewers.trace_view import read_events


def _decision(kind, cycle, stage, rnd, modules):
    return {"kind": kind, "cycle": cycle, "stage": stage, "round": rnd, "reason": f"{kind} c{cycle} s{stage}",
            "modules": modules}


STATE = {
    "run_id": "two-cycles", "cycle": 1, "phase": "examined",
    "modules": {k: {"id": k, "name": k, "teacher_score": 1.0} for k in ("culture", "geography")},
    "stages": [{"index": 0, "modules": ["geography"], "difficulty": 0.5, "status": "active", "rounds": 1,
                "min_ratio_history": [0.4]}],
    "current_stage": 0,
    "decisions": [_decision("remediate", 0, 0, 1, ["geography"]), _decision("advance", 0, 0, 2, ["geography"]),
                  _decision("advance", 0, 1, 1, ["culture"]), _decision("rediagnose", 0, 1, 0, []),
                  _decision("remediate", 1, 0, 1, ["geography"])],
    "passed": ["geography", "culture"],
}

TRACE = [
    {"event": "stage_planned", "node": "plan", "cycle": 0, "stage": 0, "modules": ["geography"]},
    {"event": "stage_planned", "node": "plan", "cycle": 0, "stage": 1, "modules": ["culture"]},
    {"event": "node_start", "node": "synthesize", "cycle": 0, "stage": 0, "round": 0},
    {"event": "teacher_call", "role": "adapter", "tokens_in": 60, "tokens_out": 40, "cached": False},
    {"event": "node_end", "node": "synthesize", "cycle": 0},
    {"event": "node_start", "node": "synthesize", "cycle": 0, "stage": 1, "round": 0},
    {"event": "teacher_call", "role": "adapter", "tokens_in": 7, "tokens_out": 3, "cached": False},
    {"event": "node_end", "node": "synthesize", "cycle": 0},
    {"event": "node_start", "node": "diagnose", "cycle": 1, "stage": None, "round": None},
    {"event": "teacher_call", "role": "diagnostician", "tokens_in": 20, "tokens_out": 5, "cached": False},
    {"event": "node_end", "node": "diagnose", "cycle": 1},
    {"event": "stage_planned", "node": "plan", "cycle": 1, "stage": 0, "modules": ["geography"]},
    {"event": "node_start", "node": "synthesize", "cycle": 1, "stage": 0, "round": 0},
    {"event": "teacher_call", "role": "adapter", "tokens_in": 30, "tokens_out": 20, "cached": False},
    {"event": "teacher_call", "role": "adapter", "tokens_in": 30, "tokens_out": 20, "cached": True},
    {"event": "node_end", "node": "synthesize", "cycle": 1},
]


def _run_dir(tmp_path):
    run_dir = tmp_path / "two-cycles"
    run_dir.mkdir()
    (run_dir / "config.yaml").write_text(yaml.safe_dump({"run_id": "two-cycles"}))
    (run_dir / "trace.jsonl").write_text("".join(json.dumps({"seq": i + 1, **e}) + "\n" for i, e in enumerate(TRACE)))
    return run_dir


def _chart(page: str, name: str) -> str:
    return re.search(rf'<svg class="chart" data-chart="{name}".*?</svg>', page, re.S).group(0)


def test_stage_history_keeps_earlier_cycles():
    rows = [(r["cycle"], r["stage"], r["modules"], r["status"]) for r in stage_history(STATE)]
    assert rows == [(0, 0, ["geography"], "passed"), (0, 1, ["culture"], "passed"), (1, 0, ["geography"], "active")]


def test_the_old_plan_belongs_to_its_cycle_until_the_new_plan():
    # examine just decided rediagnose: the cycle counter moved on, the state still holds cycle 0's plan
    v = {**STATE, "decisions": STATE["decisions"][:4],
         "stages": [{"index": 1, "modules": ["culture"], "difficulty": 0.5, "status": "passed", "rounds": 1,
                     "min_ratio_history": [0.95]}]}
    assert plan_cycle(v) == 0 and plan_cycle({**v, "phase": "planned"}) == 1
    assert [(r["cycle"], r["stage"]) for r in stage_history(v)] == [(0, 0), (0, 1)]


def test_html_graph_and_tokens_per_stage_per_cycle(tmp_path):
    page = html_report.render_html(_run_dir(tmp_path), state=STATE)
    graph = _chart(page, "graph")
    assert "not in a stage" not in graph  # culture was taught (and passed) in cycle 0
    for title in ("c0 stage 0 (passed)", "c0 stage 1 (passed)", "c1 stage 0 (active)"):
        assert title in graph
    assert graph.count('class="mark node"') == 3  # geography in both cycles' columns, culture once
    tokens = _chart(page, "tokens-stage")
    assert "c0 stage 0 / adapter: 100 teacher tokens" in tokens
    assert "c1 stage 0 / adapter: 50 teacher tokens" in tokens  # not added to cycle 0's stage 0
    assert "c0 stage 1 / adapter: 10 teacher tokens" in tokens
    assert "diagnosis c1 / diagnostician: 25 teacher tokens" in tokens
    timeline = _chart(page, "decisions")
    assert "stage 0 · cycle 1" in timeline


def test_report_json_stages_and_tokens(tmp_path):
    run_dir = _run_dir(tmp_path)
    events = read_events(run_dir)
    data = build_report(LearnerState.model_validate(STATE), {}, 1e-6, events)
    assert [(s["cycle"], s["stage"], s["modules"]) for s in data["stages"]] == \
        [(0, 0, ["geography"]), (0, 1, ["culture"]), (1, 0, ["geography"])]
    rows = {r["module"]: r for r in data["modules"]}
    assert rows["culture"]["stages"] == [[0, 1]] and rows["geography"]["stages"] == [[0, 0], [1, 0]]
    assert tokens_by_stage(events) == {"cycle 0 stage 0": 100, "cycle 0 stage 1": 10, "cycle 1 diagnosis": 25,
                                       "cycle 1 stage 0": 50}


def test_inspect_shows_every_cycles_stages():
    step = inspect_cli.Step(index=9, wrote="examine", checkpoint_id="x", created_at="t", source="loop",
                            langgraph_step=9, next=("synthesize",), values=STATE)
    out = inspect_cli.format_summary(step)
    assert "cycle 0 stage 1: culture - passed, 1 rounds" in out
    assert "cycle 1 stage 0: geography - active, 1 rounds, min ratio per round: 0.40" in out
    assert "decision advance (cycle 0, stage 1, round 1): advance c0 s1" in out
    a = {**STATE, "cycle": 0, "phase": "planned", "decisions": [],
         "stages": [{"index": 0, "modules": ["geography"], "difficulty": 0.5, "status": "active", "rounds": 0,
                     "min_ratio_history": []}]}
    paths = {c["path"] for c in inspect_cli.diff(inspect_cli.with_plan_cycle(a), inspect_cli.with_plan_cycle(STATE))}
    assert "stages[c0 stage 0]" in paths and "stages[c1 stage 0]" in paths  # a new cycle's stage 0 is a new stage
