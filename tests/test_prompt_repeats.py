"""benchmarks/prompt_repeats.py on a hand-made trace: which paid calls re-send a prompt, and what that cost."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import prompt_repeats  # noqa: E402


def call(content: str, tin: int, tout: int, step: str | None = "question", **extra) -> dict:
    return {"event": "teacher_call", "role": "adapter", "step": step,
            "messages": [{"role": "user", "content": content}],
            "tokens_in": tin, "tokens_out": tout, "cached": False, "error": None, **extra}


EVENTS = [
    {"event": "node_start", "node": "synthesize"},
    call("Rewrite: What is the currency of Zorbia?", 100, 20, sample_index=0),
    call("Rewrite: What is the currency of Zorbia?", 100, 25, sample_index=1),  # a repeat: 100 paid again
    call("Rewrite: What is the currency of Zorbia?", 100, 15, sample_index=2, cached=True),  # cached: free
    call("Rewrite: What is the capital of Zorbia?", 90, 20, sample_index=0),
    call("Rewrite: What is the capital of Zorbia?", 90, 0, sample_index=1, error="timeout"),  # failed: not paid
    call("Answer: What is the capital of Zorbia?", 60, 40, step="answer"),
    call("Rewrite: What is the capital of Zorbia?", 90, 10, sample_index=3),  # a repeat: 90 paid again
]


def test_repeats_are_the_paid_calls_whose_prompt_an_earlier_paid_call_sent():
    r = prompt_repeats.repeats(EVENTS)
    # paid: 120 + 125 + 110 + 100 + 100 = 555 tokens; repeats paid 100 + 90 input tokens again
    assert r.paid_tokens == 555
    assert r.calls == {"adapter/question": 4, "adapter/answer": 1}
    assert r.repeats == {"adapter/question": 2}
    assert r.repeat_input_tokens == {"adapter/question": 190}
    assert abs(r.share - 190 / 555) < 1e-12


def test_the_script_prints_each_run_and_refuses_a_folder_without_a_trace(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    # the last line was cut by a kill mid-write: skipped, as every reader of trace.jsonl skips it
    (run / "trace.jsonl").write_text("".join(json.dumps(e) + "\n" for e in EVENTS) + json.dumps(EVENTS[1])[:40])
    script = ROOT / "benchmarks" / "prompt_repeats.py"
    ok = subprocess.run([sys.executable, str(script), str(run)], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert "555 paid teacher tokens; repeated prompts paid 190 input tokens again (34.2%)" in ok.stdout
    bad = subprocess.run([sys.executable, str(script), str(tmp_path / "nowhere")], capture_output=True, text=True)
    assert bad.returncode == 2 and "no trace.jsonl" in bad.stderr and bad.stdout == ""
