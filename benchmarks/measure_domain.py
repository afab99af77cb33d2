"""Measure a Zorbia-format domain: per module, the teacher's score with the sheet and the student's without.

The embedded default's choice of modules rests on these numbers (tasks/zorbia.py docstring): unknown and procedural
modules need teacher >= 0.7 (procedural >= 0.6) and student <= 0.2, known ones student/teacher >= 0.9. Both roles are
SmolLM2-135M-Instruct answering greedily through the project's generation (training/generate.py) with the exam's
answer length, scored by the pack's checker (contains). `--items diagnosis` scores only what a diagnosis answers
(half the probes as the gate, and the test items) and times that pass; `all` (default) every phrasing.

    .venv/bin/python benchmarks/measure_domain.py                       # the shipped pack
    .venv/bin/python benchmarks/measure_domain.py --pack benchmarks/domain/candidates.json --wrong
Timings are wall clock on whatever else the machine is running.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ioa_state import StudentConfig  # noqa: E402
from tasks.checkers import contains_check  # noqa: E402
from tasks.zorbia import load_data, sheet, split_fact  # noqa: E402

KIND_ORDER = {"procedural": 0, "known": 1, "unknown": 2}


def rows(data: dict, which: str, n_seed: int, n_probe: int) -> list[dict]:
    """One row per phrasing to score: module, kind, fact, split, question, reference."""
    out, probes_seen = [], defaultdict(int)
    for f in data["facts"]:
        for split, q in split_fact(f, 0, n_seed, n_probe):
            if which == "test" and split != "test":
                continue
            if which == "diagnosis":
                if split == "seed":
                    continue
                if split == "probe":  # every other probe of a module stands in for its gate half
                    probes_seen[f["category"]] += 1
                    if probes_seen[f["category"]] % 2 == 0:
                        continue
            out.append({"module": f["category"], "kind": f["kind"], "fact": f["id"], "split": split, "q": q,
                        "ref": f["answer"]})
    return out


def answer(model, tok, items: list[dict], system: str | None, batch: int, max_new: int,
           done=None, passages: int = 0) -> tuple[list[str], float]:
    """Replies in chunks of one batch, calling `done(replies so far)` after each (a long run shows progress); with
    `passages` k > 0 each question's system prompt is the sheet's opening and its k passages
    (agents/context_passages)."""
    from agents.runtime import context_for
    from training.generate import generate

    convs = [([{"role": "system", "content": context_for(system, passages, r["q"])}] if system else []) +
             [{"role": "user", "content": r["q"]}] for r in items]
    t0, texts = time.perf_counter(), []
    for s in range(0, len(convs), batch):
        texts += [g.text for g in generate(model, tok, convs[s:s + batch], max_new_tokens=max_new, batch_size=batch)]
        if done:
            done(texts)
    return texts, time.perf_counter() - t0


def table(items: list[dict], t_ok: list[float], s_ok: list[float]) -> list[dict]:
    by: dict[str, dict] = {}
    for r, t, s in zip(items, t_ok, s_ok):
        m = by.setdefault(r["module"], {"module": r["module"], "kind": r["kind"], "t": [], "s": [],
                                        "splits": defaultdict(int)})
        m["t"].append(t)
        m["s"].append(s)
        m["splits"][r["split"]] += 1
    out = []
    for m in by.values():
        t, s = sum(m["t"]) / len(m["t"]), sum(m["s"]) / len(m["s"])
        out.append({"module": m["module"], "kind": m["kind"], "teacher": round(t, 3), "student": round(s, 3),
                    "ratio": round(s / max(t, 1e-6), 3), "n": len(m["t"]), "splits": dict(m["splits"])})
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pack", help="a Zorbia-format JSON (default: tasks/packs/zorbia_mixed.json)")
    ap.add_argument("--items", choices=["all", "diagnosis", "test"], default="all")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--max-new-tokens", type=int, default=StudentConfig().max_new_tokens)
    ap.add_argument("--n-seed", type=int, default=1)
    ap.add_argument("--n-probe", type=int, default=2)
    ap.add_argument("--passages", type=int, default=0, help="the teacher gets the sheet's opening and this many"
                    " passages per question (teacher.context_passages; 0: the whole sheet)")
    ap.add_argument("--wrong", action="store_true", help="print every wrong answer (per role)")
    ap.add_argument("--json", help="write the table and answers here")
    a = ap.parse_args(argv)
    data = json.loads(Path(a.pack).read_text()) if a.pack else load_data("zorbia_mixed.json")
    # the modules the choice hinges on first, so a run cut short still says the most
    items = sorted(rows(data, a.items, a.n_seed, a.n_probe), key=lambda r: KIND_ORDER.get(r["kind"], 9))
    from training.loading import load_model

    model, tok = load_model("smollm2", device="cpu")
    def progress(role):
        return lambda texts: print(f"{role}: {len(texts)}/{len(items)} answered", flush=True)

    t_ans, t_s = answer(model, tok, items, sheet(data), a.batch_size, a.max_new_tokens, progress("teacher"),
                        passages=a.passages)
    if a.json:
        Path(a.json).write_text(json.dumps({"teacher_s": t_s, "answers": [
            {**r, "teacher": ta} for r, ta in zip(items, t_ans)]}, indent=1))
    s_ans, s_s = answer(model, tok, items, None, a.batch_size, a.max_new_tokens, progress("student"))
    t_ok = [contains_check(x, r["ref"]) for x, r in zip(t_ans, items)]
    s_ok = [contains_check(x, r["ref"]) for x, r in zip(s_ans, items)]
    tab = table(items, t_ok, s_ok)
    print(f"{len(items)} items ({a.items}); passages {a.passages or 'all'}; teacher {t_s:.1f} s, "
          f"student {s_s:.1f} s, batch {a.batch_size}")
    print(f"{'module':<12} {'kind':<11} {'teacher':>7} {'student':>7} {'ratio':>6} {'n':>4}  splits")
    for m in tab:
        print(f"{m['module']:<12} {m['kind']:<11} {m['teacher']:>7.2f} {m['student']:>7.2f} {m['ratio']:>6.2f} "
              f"{m['n']:>4}  {m['splits']}")
    if a.wrong:
        for r, ta, sa, t, s in zip(items, t_ans, s_ans, t_ok, s_ok):
            ok_s = s if r["kind"] == "known" else 1 - s
            if t < 1 or ok_s < 1:
                print(f"[{r['fact']}] {r['q']!r} ref={r['ref']!r}\n"
                      f"   T{int(t)}: {ta[:90]!r}\n   S{int(s)}: {sa[:90]!r}")
    if a.json:
        Path(a.json).write_text(json.dumps({"table": tab, "teacher_s": t_s, "student_s": s_s, "answers": [
            {**r, "teacher": ta, "student": sa} for r, ta, sa in zip(items, t_ans, s_ans)]}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
