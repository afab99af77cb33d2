"""The LLM2LLM baseline against the scripted teacher (tests/openai_server.py on 127.0.0.1) and a tiny student: it
writes new items only from the seed items the student got wrong, spends its budget to within one pair's cost (1%),
and every round trains for exactly the steps it declares."""
from __future__ import annotations

import json

from openai_server import OpenAIServer
from trace_helpers import small_config, small_run, zorbia_replier


def test_llm2llm_writes_from_wrong_answers_only_within_the_budget(tmp_path):
    from baselines.llm2llm import run_llm2llm
    from ioa_state import RunConfig

    _, ioa_dir, _ = small_run()
    budget, steps = 3500, 3  # the scripted teacher's fresh rewrites run out near 5700 tokens
    with OpenAIServer(zorbia_replier(), models=["scripted"]) as srv:
        cfg = RunConfig.model_validate(small_config(tmp_path / "runs", "l2l", srv.base_url))
        run_dir, rep = run_llm2llm(cfg, ioa_dir, "l2l", budget=budget, steps=steps)
    base = rep["baseline"]
    assert rep["arm"] == "llm2llm" and rep["optimizer_steps"] == steps
    assert base["optimizer_steps_total"] == steps * base["training_rounds"]
    assert budget * 0.99 <= rep["teacher_tokens"] <= budget
    events = [json.loads(x) for x in (run_dir / "trace.jsonl").read_text().splitlines()]
    rewrites = [e for e in events if e["event"] == "teacher_call" and e.get("step") == "question"]
    assert rewrites and all(e["template"] == "llm2llm" for e in rewrites)
    # every rewrite shows a seed item the student answered wrongly (the tiny student never learns: all are wrong)
    seeds = {it for it in json.loads((ioa_dir / "report.json").read_text())["modules"]}
    assert seeds and all("wrong. The student answered" in e["messages"][-1]["content"] for e in rewrites)
    assert sum(e["steps"] for e in events if e["event"] == "train") == base["optimizer_steps_total"]
