"""`ioa trace`: each "why did the run do that?" question answered by ONE `ioa trace` invocation on a small real run
(scripted HTTP teacher, tiny student: see trace_helpers.py), the answer checked against the checkpointed state."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from trace_helpers import ioa, json_lines, small_run

from agents.adapter import parse_question
from agents.runtime import read_jsonl
from graph import runner
from ioa_state import load_config

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def run():
    runs_dir, run_dir, _ = small_run()
    state = runner.load_state(run_dir)
    cfg = load_config(run_dir / "config.yaml")
    return runs_dir, run_dir, state, cfg


def _lines(out: str) -> list[str]:
    return [line for line in out.splitlines() if line.strip()]


def test_why_was_this_module_judged_deficient(run):
    runs_dir, run_dir, state, cfg = run
    rc, out, _ = ioa("trace", state.run_id, "--runs-dir", str(runs_dir), "--event", "module_diagnosis",
                     "--module", "geography")
    assert rc == 0
    (line,) = _lines(out)
    th = cfg.thresholds
    m = state.modules["geography"]
    diag = next(o for o in state.observations if o.source == "diagnose")
    assert "geography" in state.deficient and state.gap["geography"] > th.tau_gap
    assert (
        f"module geography ({m.name}): DEFICIENT: gap {state.gap['geography']:.2f} > tau_gap {th.tau_gap:.2f}" in line
    )
    assert f"P_T {m.teacher_score:.2f} P_S {diag.scores['geography']:.2f}" in line
    assert f"severity {state.severity['geography']:.2f}" in line and "TARGET" in line


def test_why_is_that_edge_in_the_prerequisite_graph(run):
    runs_dir, run_dir, state, cfg = run
    rc, out, _ = ioa("trace", state.run_id, "--runs-dir", str(runs_dir), "--event", "edge", "--module", "culture")
    assert rc == 0
    lines = _lines(out)
    edges = {(e.src, e.dst): e for e in state.edges}
    assert len(lines) == len(edges) == 2
    tau = cfg.thresholds.tau_dep
    kept = edges[("geography", "culture")]
    assert kept.kept and kept.strength > tau
    line = next(ln for ln in lines if "edge geography -> culture" in ln)
    assert f"KEPT: strength {kept.strength:.2f} > tau_dep {tau:.2f}" in line
    assert f"prior {kept.prior:.2f}" in line and f"n_obs {kept.n_obs}" in line and "= prior" in line
    weak = edges[("culture", "geography")]
    line = next(ln for ln in lines if "edge culture -> geography" in ln)
    assert not weak.kept and f"not kept: strength {weak.strength:.2f} <= tau_dep {tau:.2f}" in line
    # the kept edge is why culture is staged after geography
    assert [s.modules for s in state.stages] == [["geography"], ["culture"]]


def test_why_did_the_run_choose_simplify_instead_of_remediate(run):
    runs_dir, run_dir, state, cfg = run
    rc, out, _ = ioa("trace", state.run_id, "--runs-dir", str(runs_dir), "--decision", "simplify")
    assert rc == 0
    lines = _lines(out)
    simplify = [d for d in state.decisions if d.kind == "simplify"]
    assert simplify and len(lines) == len(simplify)
    th = cfg.thresholds
    for d, line in zip(simplify, lines):
        assert f"DECISION SIMPLIFY (cycle {d.cycle}, stage {d.stage}, round {d.round}): {d.reason}" in line
        # remediate needs progress >= min_progress; the line shows the progress and the threshold it missed
        assert d.numbers["progress"] < d.thresholds["min_progress"] == th.min_progress
        assert f"progress={d.numbers['progress']:g}" in line and f"min_progress={th.min_progress:g}" in line
        assert f"min_ratio={d.numbers['min_ratio']:g}" in line and f"tau_mastery={th.tau_mastery:g}" in line
        assert f"failing: {', '.join(d.failing)}" in line


def test_what_was_the_teacher_asked_and_what_did_it_answer(run):
    runs_dir, run_dir, state, cfg = run
    rc, out, _ = ioa("trace", state.run_id, "--runs-dir", str(runs_dir), "--agent", "adapter", "--module", "geography",
                     "--stage", "0", "--event", "teacher_call", "--full")
    assert rc == 0
    lines = _lines(out)
    assert lines and all(" teacher adapter/" in ln for ln in lines)
    kept = [
        r for ref in state.item_files if ref.stage == 0 for r in read_jsonl(run_dir, ref) if r["module"] == "geography"
    ]
    assert kept
    for item in kept:
        # the teacher was asked to rewrite the source question, answered with the item's question (a seed item
        # kept as a worked example was not rewritten: its question is the seed's) ...
        if item["question_template"] != "seed":
            asked_q = [ln for ln in lines if f'answered: "{item["prompt"]}"' in ln]
            assert asked_q, item["prompt"]
            assert any("/synthesize" in ln or "/remediate" in ln for ln in asked_q)
        # ... then asked that question, and answered the item's answer (before the template line was added)
        asked_a = [ln for ln in lines if 'asked [+system' in ln and f': "{item["prompt"]}"' in ln and "/solve" in ln]
        assert asked_a and any(item["answer"].split("\nAnswer:")[0].strip() in ln for ln in asked_a)
    # every line carries the role, template, tokens and latency
    assert all(" tok, " in ln and "s |" in ln for ln in lines)
    # the same filter as JSON lines holds exactly the trace's teacher calls for that role, module and stage
    rc, out, _ = ioa("trace", state.run_id, "--runs-dir", str(runs_dir), "--agent", "adapter", "--module", "geography",
                     "--stage", "0", "--event", "teacher_call", "--json")
    calls = json_lines(out)
    assert len(calls) == len(lines)
    assert all(c["role"] == "adapter" and c["module"] == "geography" and c["stage"] == 0 for c in calls)
    questions = {parse_question(c["reply"]) for c in calls if c.get("template") in ("synthesize", "remediate")}
    assert {r["prompt"] for r in kept if r["question_template"] != "seed"} <= questions


def test_which_items_were_dropped_and_why(run):
    runs_dir, run_dir, state, cfg = run
    rc, out, _ = ioa("trace", state.run_id, "--runs-dir", str(runs_dir), "--event", "item_dropped", "--full")
    assert rc == 0
    lines = _lines(out)
    dropped = [r for ref in state.dropped_files for r in read_jsonl(run_dir, ref)]
    assert dropped and len(lines) == len(dropped)
    reasons = {r["reason"].split(":")[0] for r in dropped}
    assert {"unparseable question", "verification failed"} <= reasons
    for r, line in zip(dropped, lines):
        assert f"DROPPED {r['module']} item" in line and r["source"] in line
        assert r["reason"] in line and f'question: "{" ".join(r["question"].split())}"' in line


def test_how_did_the_structured_replies_parse_and_what_did_each_round_keep(run):
    runs_dir, run_dir, state, _ = run
    rc, out, _ = ioa("trace", state.run_id, "--runs-dir", str(runs_dir), "--event", "structured_outcome")
    assert rc == 0
    events = [e for e in json_lines((run_dir / "trace.jsonl").read_text()) if e["event"] == "structured_outcome"]
    lines = _lines(out)
    assert {e["schema"] for e in events} >= {"ModuleCard", "PrerequisiteList"} and len(lines) == len(events)
    for e, line in zip(events, lines):
        assert e["parsed_first_try"] + e["parsed_after_reask"] + e["not_parsed"] == e["requests"]
        assert f"structured {e['schema']}" in line and f"{e['parsed_first_try']} parsed on the first try" in line
    rc, out, _ = ioa("trace", state.run_id, "--runs-dir", str(runs_dir), "--event", "synthesis_yield")
    rounds = [e for e in json_lines((run_dir / "trace.jsonl").read_text()) if e["event"] == "synthesis_yield"]
    assert rc == 0 and rounds and len(_lines(out)) == len(rounds)
    assert all(f"yield {e['round_tag']}: written {e['written']}, kept {e['kept']}" in line
               for e, line in zip(rounds, _lines(out)))


def test_which_gate_items_did_the_student_miss_in_each_exam(run):
    runs_dir, run_dir, state, _ = run
    rc, out, _ = ioa("trace", state.run_id, "--runs-dir", str(runs_dir), "--event", "exam", "--full")
    exams = [e for e in json_lines((run_dir / "trace.jsonl").read_text()) if e["event"] == "exam"]
    lines = _lines(out)
    after_rounds = [o for o in state.observations if o.source != "diagnose"]
    assert rc == 0 and exams and len(lines) == len(exams) == len(after_rounds)
    for e, obs, line in zip(exams, after_rounds, lines):
        assert e["scores"] == {k: round(obs.scores[k], 6) for k in e["modules"]}
        for k in e["modules"]:
            assert len(e["missed"][k]) == round(e["items"][k] * (1 - obs.scores[k]))
            assert f"{k} {obs.scores[k]:.2f}" in line and f"missed {len(e['missed'][k])} of {e['items'][k]}" in line


def test_json_lines_are_the_trace_events(run):
    runs_dir, run_dir, state, _ = run
    rc, out, _ = ioa("trace", str(run_dir), "--json")
    assert rc == 0
    written = [json.loads(line) for line in (run_dir / "trace.jsonl").read_text().splitlines()]
    assert json_lines(out) == written


def test_filters_combine(run):
    runs_dir, run_dir, state, _ = run
    rc, out, _ = ioa("trace", str(run_dir), "--json", "--node", "examine", "--event", "decision", "node_end")
    events = json_lines(out)
    assert {e["event"] for e in events} == {"decision", "node_end"} and all(e["node"] == "examine" for e in events)
    stage_decisions = [d.kind for d in state.decisions if d.kind not in ("rediagnose", "finish")]
    assert [e["decision"] for e in events if e["event"] == "decision"] == stage_decisions
    # the examiner's agent also owns the transition nodes, which add the follow-up decisions
    rc, out, _ = ioa("trace", str(run_dir), "--json", "--agent", "examiner", "--event", "decision")
    assert [e["decision"] for e in json_lines(out)] == [d.kind for d in state.decisions]
    rc, out, _ = ioa("trace", str(run_dir), "--json", "--stage", "1", "--event", "synthesis")
    assert {e["module"] for e in json_lines(out)} == {"culture"}
    rc, out, _ = ioa("trace", str(run_dir), "--json", "--agent", "trainer")
    assert {e["event"] for e in json_lines(out)} == {"node_start", "node_end", "train"}
    assert len([e for e in json_lines(out) if e["event"] == "train"]) == state.total_rounds
    rc, out, _ = ioa("trace", str(run_dir), "--json", "--decision", "give_up,finish", "--last", "1")
    assert [e["decision"] for e in json_lines(out)] == ["finish"]


def test_unknown_run_is_one_line_error(run):
    runs_dir = run[0]
    rc, out, err = ioa("trace", "no-such-run", "--runs-dir", str(runs_dir))
    assert rc == 2 and out == "" and "no run 'no-such-run'" in err and len(err.strip().splitlines()) == 1


def test_trace_loads_no_model(run):
    runs_dir, run_dir, state, _ = run
    code = ("import sys; from cli.main import main; "
            f"rc = main(['trace', {str(run_dir)!r}, '--event', 'decision']); "
            "assert rc == 0; bad = [m for m in ('torch', 'transformers', 'graph.runner') if m in sys.modules]; "
            "assert not bad, bad")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("DECISION") == len(state.decisions)


def _write_slowly(src: Path, dst: Path, delay: float, stop_before: str | None = None) -> None:
    with open(dst, "a", encoding="utf-8") as out:
        for line in src.read_text().splitlines(keepends=True):
            if stop_before and json.loads(line)["event"] == stop_before:
                return
            # half a line first: the follower must wait for the rest
            out.write(line[: len(line) // 2])
            out.flush()
            time.sleep(delay)
            out.write(line[len(line) // 2:])
            out.flush()


def test_follow_tails_a_live_run_until_its_report(run, tmp_path):
    runs_dir, run_dir, state, _ = run
    live = tmp_path / "live"
    live.mkdir()
    shutil.copy(run_dir / "config.yaml", live / "config.yaml")
    proc = subprocess.Popen([sys.executable, "-m", "cli.main", "trace", str(live), "--follow", "--timeout", "120",
                             "--event", "decision", "report"], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=dict(os.environ, PYTHONUNBUFFERED="1"))
    time.sleep(1.0)  # the trace does not exist yet: follow waits for it
    writer = threading.Thread(target=_write_slowly, args=(run_dir / "trace.jsonl", live / "trace.jsonl", 0.002))
    t0 = time.monotonic()
    writer.start()
    out, err = proc.communicate(timeout=120)
    writer.join()
    assert proc.returncode == 0, err
    assert time.monotonic() - t0 < 60, "follow should stop at the report event, not at --timeout"
    lines = _lines(out)
    assert [ln.split("DECISION ")[1].split()[0].lower() for ln in lines[:-1]] == [d.kind for d in state.decisions]
    assert "report: test retention" in lines[-1]


def test_follow_stops_after_timeout_without_a_report(run, tmp_path):
    runs_dir, run_dir, state, _ = run
    live = tmp_path / "live"
    live.mkdir()
    shutil.copy(run_dir / "config.yaml", live / "config.yaml")
    _write_slowly(run_dir / "trace.jsonl", live / "trace.jsonl", 0, stop_before="report")
    t0 = time.monotonic()
    rc, out, err = ioa("trace", str(live), "--follow", "--timeout", "1.5", "--event", "decision")
    assert rc == 0 and 1.4 < time.monotonic() - t0 < 30
    assert len(_lines(out)) == len(state.decisions) and "--timeout" in err
