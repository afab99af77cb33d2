"""`ioa inspect`: the learner state at any checkpoint of the small run, and the difference between two."""
from __future__ import annotations

import json

import pytest
from trace_helpers import ioa, json_lines, small_run

from graph import runner
from viewers.state_view import diff


@pytest.fixture(scope="session")
def run():
    runs_dir, run_dir, _ = small_run()
    return runs_dir, run_dir, runner.load_state(run_dir)


def _steps(run_dir) -> list[dict]:
    rc, out, _ = ioa("inspect", str(run_dir), "--json")
    assert rc == 0
    return json_lines(out)


def test_steps_follow_the_nodes_that_ran(run):
    runs_dir, run_dir, state = run
    steps = _steps(run_dir)
    history = list(runner.compiled(run_dir).get_state_history(runner.thread(state.run_id)))
    assert len(steps) == len(history)
    assert [s["step"] for s in steps] == list(range(len(steps)))
    nodes = [json.loads(line)["node"] for line in (run_dir / "trace.jsonl").read_text().splitlines()
             if json.loads(line)["event"] == "node_start"]
    assert [s["wrote"] for s in steps] == ["-", "input"] + nodes
    assert steps[-1]["phase"] == "reported" and steps[-1]["next"] == []
    # the table a person reads: one row per step, the same nodes
    rc, out, _ = ioa("inspect", state.run_id, "--runs-dir", str(runs_dir))
    rows = out.splitlines()[1:]
    assert len(rows) == len(steps) and rows[2].split()[:2] == ["2", "diagnose"] and rows[-1].split()[1] == "report"


def test_at_shows_the_state_of_a_checkpoint(run):
    runs_dir, run_dir, state = run
    rc, out, _ = ioa("inspect", str(run_dir), "--at", "-1")
    assert rc == 0
    for k, m in state.modules.items():
        seen = next(o for o in reversed(state.observations) if k in o.scores)
        row = next(line for line in out.splitlines() if line.strip().startswith(k + " "))
        ratio = seen.scores[k] / max(m.teacher_score, 1e-6)
        assert row.split()[1:4] == [f"{m.teacher_score:.2f}", f"{seen.scores[k]:.2f}", f"{ratio:.2f}"], row
        assert row.endswith(f"{seen.source} c{seen.cycle} r{seen.round}")
    for d in state.decisions:
        assert f"decision {d.kind} (cycle {d.cycle}, stage {d.stage}, round {d.round}): {d.reason}" in out
    kept = [f"{e.src}->{e.dst} ({e.strength:.2f})" for e in state.edges if e.kept]
    assert f"edges kept: {', '.join(kept)}" in out
    assert f"total {sum(u.tokens_in + u.tokens_out for u in state.usage.values())}" in out
    assert f"{len(state.item_files)} kept, {len(state.dropped_files)} dropped" in out
    # --json: the whole state at that step, identical to load_state for the last one
    rc, out, _ = ioa("inspect", str(run_dir), "--at", "-1", "--json")
    data = json.loads(out)
    assert data["state"] == state.model_dump(mode="json")
    assert data["summary"]["modules"]["geography"]["P_T"] == state.modules["geography"].teacher_score
    # an early step: after plan, nothing trained yet
    steps = _steps(run_dir)
    plan = next(s["step"] for s in steps if s["wrote"] == "plan")
    rc, out, _ = ioa("inspect", str(run_dir), "--at", str(plan), "--json")
    early = json.loads(out)["state"]
    assert early["phase"] == "planned" and early["decisions"] == [] and early["total_rounds"] == 0
    assert [s["modules"] for s in early["stages"]] == [s.modules for s in state.stages]


def test_diff_between_two_checkpoints(run):
    runs_dir, run_dir, state = run
    steps = _steps(run_dir)
    exam = next(s["step"] for s in steps if s["wrote"] == "examine")
    rc, out, _ = ioa("inspect", str(run_dir), "--diff", str(exam - 1), str(exam), "--json")
    assert rc == 0
    changes = {c["path"]: c for c in json.loads(out)["changes"]}
    assert changes["phase"]["old"] == "trained" and changes["phase"]["new"] == "examined"
    first = state.decisions[0]
    assert changes["decisions"]["change"] == "added" and changes["decisions"]["new"]["kind"] == first.kind
    assert changes["stages[c0 stage 0].rounds"]["old"] == 0 and changes["stages[c0 stage 0].rounds"]["new"] == 1
    assert "mode" not in changes  # the examiner stores the decision; its transition node applies it:
    rc, out, _ = ioa("inspect", str(run_dir), "--diff", str(exam), str(exam + 1), "--json")
    applied = {c["path"]: c for c in json.loads(out)["changes"]}
    assert steps[exam + 1]["wrote"] == first.kind and applied["mode"]["new"] == first.kind  # remediate
    # the readable form
    rc, out, _ = ioa("inspect", str(run_dir), "--diff", str(exam - 1), str(exam))
    assert "phase: 'trained' -> 'examined'" in out
    assert (
        f"+ decisions: {first.kind} (cycle {first.cycle}, stage {first.stage}, round {first.round}): {first.reason}"
        in out
    )
    assert "stages[c0 stage 0].rounds: 0 -> 1" in out


def test_diff_rules():
    a = {"x": 1, "l": [1, 2], "d": {"k": 1, "gone": 2}, "edges": [{"src": "a", "dst": "b", "strength": 0.5}]}
    b = {"x": 2, "l": [2, 3], "d": {"k": 1, "new": 3}, "edges": [{"src": "a", "dst": "b", "strength": 0.7}]}
    got = {(c["path"], c["change"], json.dumps(c.get("old")), json.dumps(c.get("new"))) for c in diff(a, b)}
    assert got == {("x", "changed", "1", "2"), ("l", "removed", "1", "null"), ("l", "added", "null", "3"),
                   ("d.gone", "removed", "2", "null"), ("d.new", "added", "null", "3"),
                   ("edges[a->b].strength", "changed", "0.5", "0.7")}
    assert diff(a, a) == []


def test_bad_step_is_one_line_error(run):
    runs_dir, run_dir, state = run
    rc, out, err = ioa("inspect", str(run_dir), "--at", "999")
    assert rc == 2 and "no step 999" in err and len(err.strip().splitlines()) == 1
