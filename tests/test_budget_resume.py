"""A teacher token budget stops a run cleanly (§5): the report of the student as last trained, status stopped;
the round the budget cuts is trained on (what it paid for is not thrown away);
`ioa resume RUN --budget N` raises the cap and the run continues from before the stop to its end without paying a
cached call twice. Scripted teacher over real HTTP."""
from __future__ import annotations

import json
from pathlib import Path

import yaml
from openai_server import OpenAIServer
from trace_helpers import ioa, small_config, zorbia_replier


def _paid_calls(run_dir: Path) -> list[str]:
    events = [json.loads(line) for line in (run_dir / "trace.jsonl").read_text().splitlines() if line.strip()]
    return [json.dumps([e["messages"], e.get("sample_index")], sort_keys=True)
            for e in events if e["event"] == "teacher_call" and not e["cached"]]


def test_budget_stops_cleanly_and_resume_with_a_raised_budget_finishes(tmp_path):
    runs = tmp_path / "runs"
    with OpenAIServer(zorbia_replier(), models=["scripted"]) as srv:
        cfg = small_config(runs, "budget", srv.base_url, **{"teacher.token_budget": 6000,
                                                            "thresholds.max_remedial_rounds": 1})
        path = tmp_path / "budget.yaml"
        path.write_text(yaml.safe_dump(cfg))
        rc, out, err = ioa("run", str(path))
        assert rc == 0, err  # §5: a run stops cleanly at its budget and reports the student as last trained
        assert "test-split retention" in out and "stopped early: teacher token budget spent" in out
        assert "--budget" in out
        stopped = json.loads((runs / "budget" / "report.json").read_text())
        assert stopped["status"] == "stopped" and stopped["stop_reason"].startswith("teacher token budget spent")
        assert stopped["decisions"][-1]["kind"] == "finish" and stopped["teacher_tokens"] <= 6000
        rc, out, err = ioa("status", "budget", "--runs-dir", str(runs))
        assert rc == 0 and "teacher tokens" in out

        rc, out, err = ioa("resume", "budget", "--runs-dir", str(runs), "--budget", "10000000")
        assert rc == 0, err
        assert "test-split retention" in out and "stopped early" not in out
    run_dir = runs / "budget"
    final = json.loads((run_dir / "report.json").read_text())
    assert final["status"] == "finished" and final["teacher_tokens"] > stopped["teacher_tokens"]
    cfg_saved = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert cfg_saved["teacher"]["token_budget"] == 10000000
    paid = _paid_calls(run_dir)
    assert len(paid) == len(set(paid)), "a teacher call was paid twice across the stop and the resume"
    events = [json.loads(line) for line in (run_dir / "trace.jsonl").read_text().splitlines() if line.strip()]
    steps = [e for e in events if e["event"] in ("synthesis_yield", "train", "decision")]
    cut = next(i for i, e in enumerate(steps) if e.get("budget_cut"))
    assert steps[cut + 1]["event"] == "train", "the round the budget cut was not trained on"
    assert (run_dir / "report.json").is_file()


def test_the_same_run_twice_with_a_shared_cache_makes_zero_calls_the_second_time(tmp_path):
    runs = tmp_path / "runs"
    shared = tmp_path / "shared-teacher-cache.sqlite"
    with OpenAIServer(zorbia_replier(), models=["scripted"]) as srv:
        reports = []
        for run_id in ("first", "second"):
            cfg = small_config(runs, run_id, srv.base_url, **{"teacher.shared_cache": str(shared),
                                                             "thresholds.max_remedial_rounds": 1})
            path = tmp_path / f"{run_id}.yaml"
            path.write_text(yaml.safe_dump(cfg))
            srv.reset_counts()
            rc, out, err = ioa("run", str(path))
            assert rc == 0, err
            reports.append((srv.requests, json.loads((runs / run_id / "report.json").read_text())))
    (first_calls, first), (second_calls, second) = reports
    assert first_calls > 0 and second_calls == 0
    assert [d["kind"] for d in first["decisions"]] == [d["kind"] for d in second["decisions"]]
