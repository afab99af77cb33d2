"""How much of a run's teacher budget paid for a prompt it had already sent? Reads runs' trace.jsonl files.

    python benchmarks/prompt_repeats.py runs/bench15/bench-b120000-0-ioa runs/bench15/bench-b120000-0-oneshot

A teacher call is a repeat when its messages equal an earlier paid call's of the same run: another sample of the same
prompt (`sample_index` differs). Each such call pays its input tokens again. An API that takes `n` choices per
request (OpenAI's chat completions, vLLM's server) bills a prompt once for all its samples, and an in-process teacher
could compute its prefill once, so the repeats' input tokens are what sending samples together would save. Printed per
run and per (role, step): paid calls, repeats, the repeats' input tokens, and their share of every paid token.
Cached calls (`cached: true`) cost nothing and are left out. Since commit a739ff1 the samples of one prompt in a
batch share it (`TeacherRequest.share_prompt`: one prefill on an in-process teacher, the prompt charged to the first
sample, the others' `tokens_in` 0), so what this still finds is a prompt whose samples were split across batches.
The trace is read through agents.tracing.read_lines, the project's one reader of trace.jsonl (a line cut by a kill
is skipped), so a live or killed run can be read too.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from agents.tracing import read_lines  # noqa: E402


@dataclass
class Repeats:
    """One run's paid teacher calls and the input tokens its repeated prompts paid again."""

    paid_tokens: int = 0
    calls: Counter = field(default_factory=Counter)
    repeats: Counter = field(default_factory=Counter)
    repeat_input_tokens: Counter = field(default_factory=Counter)

    @property
    def share(self) -> float:
        return sum(self.repeat_input_tokens.values()) / self.paid_tokens if self.paid_tokens else 0.0


def repeats(events: list[dict]) -> Repeats:
    """The repeats among the paid `teacher_call` events, in order, counted per "role/step"."""
    out, seen = Repeats(), set()
    for e in events:
        if e.get("event") != "teacher_call" or e.get("cached") or e.get("error"):
            continue
        where = f"{e.get('role')}/{e.get('step') or '-'}"
        out.paid_tokens += int(e.get("tokens_in") or 0) + int(e.get("tokens_out") or 0)
        out.calls[where] += 1
        prompt = json.dumps(e.get("messages"), sort_keys=True)
        if prompt in seen:
            out.repeats[where] += 1
            out.repeat_input_tokens[where] += int(e.get("tokens_in") or 0)
        seen.add(prompt)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", type=Path, help="run directories (each with a trace.jsonl)")
    args = ap.parse_args(argv)
    missing = [str(r) for r in args.runs if not (r / "trace.jsonl").is_file()]
    if missing:
        print(f"prompt_repeats: no trace.jsonl in {', '.join(missing)}", file=sys.stderr)
        return 2
    for run in args.runs:
        r = repeats(list(read_lines(run / "trace.jsonl")))
        print(f"{run}: {r.paid_tokens} paid teacher tokens; repeated prompts paid "
              f"{sum(r.repeat_input_tokens.values())} input tokens again ({r.share:.1%})")
        for where in sorted(r.calls):
            print(f"  {where:<22} {r.calls[where]:>5} calls  {r.repeats[where]:>5} repeats  "
                  f"{r.repeat_input_tokens[where]:>7} input tokens again")
    return 0


if __name__ == "__main__":
    sys.exit(main())
