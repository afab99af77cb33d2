"""Benchmark the Adapter's yield: synthesis rounds of the embedded default with items written as free text (a
question call, then an answer call; with and without its form's grammar) and as structured objects (one call:
question, steps, final answer), with constrained decoding on and off where it applies.

The rounds are the Adapter's own (agents/adapter.synthesize: write, screen, answer, judge) on the Zorbia pack, as
the first round of a stage: every module of the pack (or the first --modules) in one stage, the student's ratio 0.
Every arm goes through the real teacher client (`hf:smollm2`, the embedded default's teacher settings: `max_reasks`
0, 32 rows a batch), each on an empty cache, in one process, sharing the loaded model:

    text          adapter.item_format text, adapter.text_form off (free text, nothing constrains it)
    text-form     adapter.item_format text under its forms (agents/item_forms.py: a question line ending in '?',
                  steps then "Answer: ..."), xgrammar during generation
    text-form-nosheet  text-form with adapter.question_sheet off: the question call without the knowledge sheet
    text-form-nosheet-levelsteps  text-form-nosheet with adapter.answer_steps_by_level: the answer form allows as
                  many step lines as the module's level (1 in this round) instead of 3
    text-whole, text-form-nosheet-whole  text and text-form-nosheet with the whole sheet in every call
                  (teacher.context_passages 0; the other arms read it by the pack's passages, zorbia-mixed: 4)
    json-grammar  adapter.item_format json, the schema's grammar during generation (xgrammar)
    json-text     adapter.item_format json, the schema in the prompt and the tolerant parser

and prints, per arm: candidates written, kept, the parse-failure share (unparseable question / parse drops over
candidates written), the drops by reason, teacher tokens per kept item, wall time per generated token and per kept
item; then the ratios of every other arm to text (and json-grammar to json-text per generated token). Dedup and
verification are the run's (nothing is loosened). One pass per round (`--top-up 0`) so that every arm writes the
same number of candidates.

    .venv/bin/python benchmarks/bench_yield.py [--modules 4] [--limit 3] [--samples 10] [--rounds 1] \\
        [--arms text json-grammar json-text] [--teacher hf:smollm2] [--json out.json]
    IOA_TORCH_THREADS=1 .venv/bin/python benchmarks/bench_yield.py --modules 1 --limit 1 --samples 2   # a minute
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agents import adapter  # noqa: E402
from agents.runtime import Services, load_task  # noqa: E402
from agents.teacher import Teacher  # noqa: E402
from ioa_state import LearnerState, Module, Stage, load_config  # noqa: E402
from training.device import apply_thread_setting  # noqa: E402

# arm: (item_format, structured mode, text_form, question_sheet, context_passages: None the pack's choice, 0 whole)
ARMS = {"text": ("text", None, False, True, None), "text-form": ("text", None, True, True, None),
        "text-form-nosheet": ("text", None, True, False, None), "json-grammar": ("json", "grammar", False, True, None),
        "json-text": ("json", "text", False, True, None), "text-whole": ("text", None, False, True, 0),
        "text-form-nosheet-whole": ("text", None, True, False, 0),
        "text-form-nosheet-levelsteps": ("text", None, True, False, None)}
# arms that differ from another in one more field of the config
EXTRA = {"text-form-nosheet-levelsteps": {"adapter.answer_steps_by_level": True}}
PARSE_KINDS = ("unparseable question", "parse")


class ListTrace:
    """The trace events of one arm, in memory."""

    def __init__(self) -> None:
        self.events: list[dict] = []

    def emit(self, event: str, **fields) -> dict:
        self.events.append({"event": event, **fields})
        return self.events[-1]


def learner_state(items: dict, modules: int, limit: int) -> LearnerState:
    """A stage of the pack's first `modules` categories, `limit` seed items each, before any exam."""
    by_cat: dict[str, list] = {}
    for it in items.values():
        by_cat.setdefault(it.category, []).append(it)
    mods = {}
    for cat in sorted(by_cat)[:modules]:
        group = by_cat[cat]
        probes = [it.id for it in group if it.split == "probe"]
        mods[cat] = Module(id=cat, name=cat, seed_ids=[it.id for it in group if it.split == "seed"][:limit],
                           gate_ids=probes[: len(probes) // 2], remedial_ids=probes[len(probes) // 2:],
                           test_ids=[it.id for it in group if it.split == "test"], teacher_score=1.0)
    stage = Stage(index=0, modules=list(mods), difficulty=0.5, status="active")
    return LearnerState(run_id="bench-yield", modules=mods, stages=[stage], mode="initial")


def run_arm(name: str, args) -> dict:
    """One arm on a fresh cache: `args.rounds` rounds of synthesis; counts from the client's and the Adapter's trace."""
    fmt, mode, form, sheet, passages = ARMS[name]
    cfg = load_config(None, {"adapter.item_format": fmt, "adapter.text_form": form, "adapter.question_sheet": sheet,
                             "teacher.context_passages": passages,
                             "teacher.token_budget": None,
                             "adapter.top_up_passes": args.top_up, "min_items": 1,
                             "thresholds.samples_per_seed": args.samples, "teacher.spec": args.teacher,
                             **EXTRA.get(name, {})})
    pack, items = load_task(cfg)
    state = learner_state(items, args.modules, args.limit)
    calls: list[dict] = []
    trace = ListTrace()
    with tempfile.TemporaryDirectory(prefix=f"bench-yield-{name}-") as d, \
            Teacher(cfg.teacher, Path(d), trace=calls.append) as t:
        if mode is not None:
            t._modes[cfg.teacher.spec] = mode  # the arm's mode, not the probed one
        svc = Services(cfg=cfg, run_dir=Path(d), pack=pack, items=items, teacher=t, student=None, trace=trace)
        t0 = time.perf_counter()
        for r in range(args.rounds):
            stage = state.stages[0].model_copy(update={"rounds": r})
            try:
                out = adapter.synthesize(state.model_copy(update={"stages": [stage], "total_rounds": r}), svc)
            except adapter.ItemShortage:  # a module kept nothing: the round's yield is traced all the same
                continue
            state = state.model_copy(update={"item_files": out["item_files"], "dropped_files": out["dropped_files"]})
        wall = time.perf_counter() - t0
        examples = drop_examples(Path(d))
    rounds = [e for e in trace.events if e["event"] == "synthesis_yield"]
    reasons: Counter = Counter()
    for e in rounds:
        reasons.update(e["dropped_by_reason"])
    written, kept = sum(e["written"] for e in rounds), sum(e["kept"] for e in rounds)
    tokens_in, tokens_out = sum(c["tokens_in"] for c in calls), sum(c["tokens_out"] for c in calls)
    return {"arm": name, "item_format": fmt, "text_form": form, "structured_mode": mode,
            "context_passages": svc.context_passages,
            "calls": len(calls), "written": written,
            "kept": kept, "parse_failures": sum(reasons[k] for k in PARSE_KINDS),
            "parse_share": sum(reasons[k] for k in PARSE_KINDS) / max(written, 1),
            "dropped_by_reason": dict(reasons.most_common()), "tokens_in": tokens_in, "tokens_out": tokens_out,
            "tokens_per_kept": (tokens_in + tokens_out) / kept if kept else None, "wall_s": round(wall, 2),
            "s_per_token": wall / max(tokens_out, 1), "s_per_kept": wall / kept if kept else None,
            "drop_examples": examples}


def drop_examples(run_dir: Path) -> dict[str, str]:
    """One dropped candidate per reason kind (its reason and question), to read what each kind of drop looks like."""
    out: dict[str, str] = {}
    for path in sorted((run_dir / "items").glob("*-dropped.jsonl")):
        for line in path.read_text().splitlines():
            row = json.loads(line)
            out.setdefault(row["reason"].split(":")[0], f"{row['reason'][:120]} | {str(row.get('question'))[:120]}")
    return out


def _print_arm(r: dict) -> None:
    tpk = "-" if r["tokens_per_kept"] is None else f"{r['tokens_per_kept']:.0f}"
    spk = "-" if r["s_per_kept"] is None else f"{r['s_per_kept']:.2f} s"
    print(f"{r['arm']:13s} written {r['written']}, kept {r['kept']}, parse failures {r['parse_failures']} "
          f"({r['parse_share']:.1%}); {r['calls']} calls, tokens in {r['tokens_in']} out {r['tokens_out']}; "
          f"teacher tokens per kept item {tpk}; {r['wall_s']:.1f} s, {1000 * r['s_per_token']:.1f} ms per generated "
          f"token, {spk} per kept item")
    print(f"{'':13s} dropped: " + (", ".join(f"{k} {n}" for k, n in r["dropped_by_reason"].items()) or "none"))
    for example in r["drop_examples"].values():
        print(f"{'':13s}   e.g. {example!r}")
    sys.stdout.flush()


def _ratio(a: float | None, b: float | None) -> str:
    return "-" if a is None or not b else f"{a / b:.2f}x"


def _print_ratios(rows: dict[str, dict]) -> None:
    pairs = [(n, "text") for n in ("text-form", "text-form-nosheet", "json-grammar", "json-text")]
    pairs += [(n, "text-whole") for n in ("text", "text-form-nosheet", "text-form-nosheet-whole",
                                          "text-form-nosheet-levelsteps")]
    pairs += [("text-form-nosheet", "text-form-nosheet-whole"), ("text-form-nosheet-levelsteps", "text-form-nosheet")]
    for name, base in pairs:
        j, t = rows.get(name), rows.get(base)
        if t is None or j is None:
            continue
        print(f"{name}/{base}: parse-failure share {j['parse_share']:.1%} vs {t['parse_share']:.1%}; kept {j['kept']} "
              f"vs {t['kept']}; teacher tokens per kept item {_ratio(j['tokens_per_kept'], t['tokens_per_kept'])}; "
              f"wall per generated token {_ratio(j['s_per_token'], t['s_per_token'])}; wall per kept item "
              f"{_ratio(j['s_per_kept'], t['s_per_kept'])}")
    g, x = rows.get("json-grammar"), rows.get("json-text")
    if g is not None and x is not None:
        print(f"json-grammar/json-text: wall per generated token {_ratio(g['s_per_token'], x['s_per_token'])} "
              f"(the grammar's cost per token); teacher tokens per kept item "
              f"{_ratio(g['tokens_per_kept'], x['tokens_per_kept'])}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--modules", type=int, default=4, help="modules of the pack in the stage (Zorbia has 4)")
    ap.add_argument("--limit", type=int, default=3, help="seed items per module (Zorbia has 3)")
    ap.add_argument("--samples", type=int, default=10, help="candidates per seed item (samples_per_seed, paper 10)")
    ap.add_argument("--rounds", type=int, default=1, help="synthesis rounds per arm (fresh samples each)")
    ap.add_argument("--top-up", type=int, default=0, help="top-up passes for a module short of min_items (1)")
    ap.add_argument("--arms", nargs="+", choices=list(ARMS), default=list(ARMS))
    ap.add_argument("--teacher", default="hf:smollm2", help="an in-process teacher spec (hf:...; the grammar arm "
                                                            "needs xgrammar)")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    if min(args.modules, args.limit, args.samples, args.rounds) < 1 or args.top_up < 0:
        print("bench_yield: --modules, --limit, --samples and --rounds must be >= 1, --top-up >= 0", file=sys.stderr)
        return 2
    if not args.teacher.startswith("hf:"):
        print("bench_yield: --teacher must be an in-process hf: spec (the arms set its structured mode)",
              file=sys.stderr)
        return 2
    apply_thread_setting()
    from agents.teacher.hf_chat import LocalHFChatModel

    LocalHFChatModel(source=args.teacher.removeprefix("hf:")).load()  # loading is not part of any arm
    rows: dict[str, dict] = {}
    for name in args.arms:
        rows[name] = run_arm(name, args)
        _print_arm(rows[name])  # each arm as it ends: a long run killed late keeps what it measured
    _print_ratios(rows)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
