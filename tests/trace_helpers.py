"""A small, fast, deterministic real run for the trace / inspect / report tests (built once per test session).

The teacher is a scripted OpenAI-compatible server (tests/openai_server.py) on 127.0.0.1 that plays a perfect
Zorbia expert: with the knowledge sheet in its system prompt it answers a question from the fact whose keyword it
names; it names modules after their data category, levels every item 1, and judges geography a prerequisite of
culture (0.8; culture -> geography 0.2, below tau_dep). For the rewrite prompts (prompts/synthesize.txt,
remediate.txt) it cycles through three replies per prompt:

    0  "<frame> <question>?"              kept (verified against the source's reference), unless a duplicate
    1  "Quick quiz: <question>?"           its answer is "I am not sure." -> dropped, verification failed
    2  "I would rather not rewrite it."    no question -> dropped, unparseable question

(the frame, and the shape of the answer, change each time a source is rewritten again, so a later round's items
are not duplicates of an earlier round's).

The student is `tiny` with a learning rate too small to learn anything, so every stage goes
remediate (round 1) -> simplify (round 2, no progress) -> give_up (round 3): two stages (geography, then
culture), six rounds, then finish. `concurrency: 1` keeps the teacher calls in order, so the run is the same
every time. The whole run takes a few seconds on 2 CPU cores.
"""
from __future__ import annotations

import atexit
import contextlib
import io
import json
import os
import re
import shutil
import tempfile
import threading
from collections import Counter
from importlib import resources
from pathlib import Path

import yaml

_FACTS = json.loads((resources.files("tasks.packs") / "zorbia.json").read_text())["facts"]
SHEET_MARK = "facts about Zorbia"
PREREQS = [("geography", "culture", 0.8), ("culture", "geography", 0.2)]
UNSURE = "I am not sure."
QUIZ = "Quick quiz:"
# (question prefix, answer shape): a source's n-th rewrite round uses frame n, so rounds never repeat an item
FRAMES = [("Can you answer this:", "{fact}"),
          ("Zorbia trivia for beginners, part two:", "{answer}, as every Zorbian knows."),
          ("Last practice question on this topic:", "Easy: {answer}.")]


def fact_for(question: str) -> dict | None:
    """The Zorbia fact a question asks about: its id as a word, else the most shared words with the fact."""
    q = question.lower()
    for f in _FACTS:
        if re.search(rf"\b{re.escape(f['id'])}\b", q):
            return f
    words = set(re.findall(r"[a-z]+", q)) - {"the", "of", "in", "is", "what", "zorbia", "which", "a"}
    best = max(_FACTS, key=lambda f: len(words & set(re.findall(r"[a-z]+", f["fact"].lower()))))
    return best if words & set(re.findall(r"[a-z]+", best["fact"].lower())) else None


def _text(content) -> str:
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return content or ""


def zorbia_replier():
    """The scripted teacher's reply function (thread-safe; a per-prompt counter picks the rewrite variant)."""
    lock = threading.Lock()
    seen: Counter = Counter()

    def reply(body: dict) -> str:
        msgs = body.get("messages", [])
        system = "\n".join(_text(m.get("content")) for m in msgs if m.get("role") == "system")
        user = _text(next((m.get("content") for m in reversed(msgs) if m.get("role") == "user"), ""))
        if user.startswith("These questions belong to one topic"):
            cats = Counter(f["category"] for line in user.splitlines() if line.startswith("- ")
                           for f in [fact_for(line)] if f)
            name = cats.most_common(1)[0][0] if cats else "misc"
            return json.dumps({"name": name, "description": f"facts about Zorbia's {name}", "level": 1})
        if user.startswith("How hard is this question"):
            return "1"
        if user.startswith("A course has these topics"):
            return json.dumps({"edges": [{"prerequisite": a, "topic": b, "strength": s} for a, b, s in PREREQS]})
        m = re.search(r'question(?: about [^:\n]*:)? "([^"]+)"', user)
        if m and ("Write one new question" in user):
            q = m.group(1).strip().rstrip(".?")
            with lock:
                n = seen[q]
                seen[q] += 1
            variant, frame = n % 3, (n // 3) % len(FRAMES)
            if variant == 0:
                return f"{FRAMES[frame][0]} {q}?"
            if variant == 1:
                return f"{QUIZ} {q}?"
            return "I would rather not rewrite it."
        if SHEET_MARK in system:
            if user.startswith(QUIZ):
                return UNSURE
            f = fact_for(user)
            if f is None:
                return "I do not know."
            frame = next((fr for fr in FRAMES if user.startswith(fr[0])), FRAMES[0])
            return frame[1].format(fact=f["fact"], answer=f["answer"])
        return "I do not know."

    return reply


def small_config(runs_dir: Path, run_id: str, base_url: str, **over) -> dict:
    cfg = {
        "run_id": run_id,
        "runs_dir": str(runs_dir),
        "seed": 0,
        "task": {"pack": "zorbia", "limit": 36},  # 6 facts: geography and culture
        "teacher": {"spec": "openai-compatible:scripted", "base_url": base_url, "max_tokens": 40, "max_reasks": 0,
                    "concurrency": 1, "max_retries": 0, "timeout_s": 30},
        "student": {"source": "tiny", "epochs": 1, "batch_size": 8, "learning_rate": 1e-9, "max_new_tokens": 6,
                    "max_length": 96, "device": "cpu"},
        "thresholds": {"samples_per_seed": 3, "max_remedial_rounds": 2, "max_cycles": 1, "target_fraction": 1.0},
        "min_items": 1,
        "watch_items": 2,
    }
    for dotted, value in over.items():
        node = cfg
        *parents, leaf = dotted.split(".")
        for k in parents:
            node = node.setdefault(k, {})
        node[leaf] = value
    return cfg


def run_small(runs_dir: Path, run_id: str = "small", **over):
    """Start the scripted teacher, run the small config to its end, stop the teacher: (run_dir, final state)."""
    from openai_server import OpenAIServer

    from graph import runner
    from ioa_state import load_config

    runs_dir.mkdir(parents=True, exist_ok=True)
    with OpenAIServer(zorbia_replier(), models=["scripted"]) as srv:
        path = runs_dir / f"{run_id}.yaml"
        path.write_text(yaml.safe_dump(small_config(runs_dir, run_id, srv.base_url, **over)))
        return runner.start(load_config(path))


_CACHE: dict = {}


def small_run():
    """The session's small run, built on first use and shared by every test module: (runs_dir, run_dir, state)."""
    if "run" not in _CACHE:
        root = Path(tempfile.mkdtemp(prefix="ioa-trace-"))
        if not os.environ.get("IOA_KEEP_TRACE_RUN"):  # set it to look at the run (and report.png) afterwards
            atexit.register(shutil.rmtree, root, True)
        runs_dir = root / "runs"
        run_dir, state = run_small(runs_dir)
        _CACHE["run"] = (runs_dir, run_dir, state)
    return _CACHE["run"]


def ioa(*args: str) -> tuple[int, str, str]:
    """One `ioa` command line in this process: (exit code, stdout, stderr)."""
    from cli.main import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(list(args))
    return rc, out.getvalue(), err.getvalue()


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]
