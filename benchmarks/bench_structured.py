"""Benchmark constrained decoding: the packaged teacher's structured replies with and without the grammar.

The requests are the diagnostician's own (agents/diagnostician.py): a `ModuleCard` per module (prompts/
module_describe.txt over up to 6 of its questions; the Zorbia pack's questions, several windows per category) and
one `PrerequisiteList` over the modules (prompts/prerequisites.txt). Both arms go through the real teacher client
(`hf:smollm2`, the embedded default's teacher settings: `max_reasks` 0, 32 rows a batch), each on an empty cache, in
one process, sharing the loaded model:

    text     the schema in the prompt, the tolerant parser (what hf: did before)
    grammar  the schema's grammar during generation (xgrammar), nothing added to the prompt

and prints, per arm, the share of requests whose value parsed (first try and in the end), teacher tokens in and out,
wall time, wall time per generated token and parsed replies per second, then grammar/text ratios.

    .venv/bin/python benchmarks/bench_structured.py [--windows 3] [--reps 1] [--max-reasks 0] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agents.diagnostician import ModuleCard, PrerequisiteList  # noqa: E402
from agents.teacher import Teacher, TeacherRequest  # noqa: E402
from ioa_state import TaskConfig  # noqa: E402
from ioa_state.config import TeacherConfig  # noqa: E402
from prompts import render  # noqa: E402
from tasks.zorbia import ZorbiaPack  # noqa: E402
from training.device import apply_thread_setting  # noqa: E402

SPEC = "hf:smollm2"
ARMS = ("grammar", "text")


def card_requests(windows: int) -> list[TeacherRequest]:
    """The module-card requests: per category of the pack, `windows` windows of 6 of its questions."""
    pack = ZorbiaPack(TaskConfig(pack="zorbia"))
    by_cat: dict[str, list[str]] = {}
    for f in pack.facts:
        by_cat.setdefault(f["category"], []).extend(f["questions"])
    reqs = []
    for cat, qs in sorted(by_cat.items()):
        for w in range(windows):
            shown = [qs[(w * 6 + k) % len(qs)] for k in range(6)]
            p = render("module_describe", examples="\n".join(f"- {q}" for q in shown))
            reqs.append(TeacherRequest([{"role": "user", "content": p.text}], 0.0, 96, role="diagnostician",
                                       tag={"module": cat, "window": w}))
    return reqs


def prior_request(cards: list[ModuleCard | None], cats: list[str]) -> TeacherRequest:
    """The prerequisite request over one card per category (the card's name, else the category)."""
    listing = "\n".join(f"- {c.name}: {c.description}" if c else f"- {cat}: facts about {cat}"
                        for c, cat in zip(cards, cats))
    p = render("prerequisites", modules=listing)
    return TeacherRequest([{"role": "user", "content": p.text}], 0.0, 160, role="diagnostician")


def run_arm(mode: str, cards: list[TeacherRequest], max_reasks: int) -> dict:
    """One arm on a fresh cache: every card, then the prior; counts from the client's own trace."""
    events: list[dict] = []
    with tempfile.TemporaryDirectory(prefix=f"bench-structured-{mode}-") as d:
        cfg = TeacherConfig(spec=SPEC, max_reasks=max_reasks, concurrency=32)
        with Teacher(cfg, Path(d), trace=events.append) as t:
            t._modes[SPEC] = mode  # the arm's mode, not the probed one
            t0 = time.perf_counter()
            got = t.ask_structured(cards, ModuleCard)
            cats = list(dict.fromkeys(r.tag["module"] for r in cards))
            first = [next(g.value for g, r in zip(got, cards) if r.tag["module"] == c) for c in cats]
            prior = t.ask_structured([prior_request(first, cats)], PrerequisiteList)
            wall = time.perf_counter() - t0
    replies = got + prior
    tokens_out = sum(e["tokens_out"] for e in events)
    parsed = sum(r.value is not None for r in replies)
    return {
        "mode": mode, "requests": len(replies), "calls": len(events),
        "parsed": parsed, "parsed_first_try": sum(r.value is not None and r.reasks == 0 for r in replies),
        "cards_parsed": sum(g.value is not None for g in got), "prior_parsed": prior[0].value is not None,
        "cut": sum("cut at max_tokens" in (r.error or "") for r in replies),
        "tokens_in": sum(e["tokens_in"] for e in events), "tokens_out": tokens_out, "wall_s": round(wall, 2),
        "s_per_token": wall / max(tokens_out, 1), "parsed_per_s": parsed / wall,
        "errors": sorted({(r.error or "")[:80] for r in replies if r.value is None})[:4],
    }


def _print_arm(r: dict) -> None:
    print(f"{r['mode']:8s} parsed {r['parsed']}/{r['requests']} (first try {r['parsed_first_try']}, cards "
          f"{r['cards_parsed']}/{r['requests'] - 1}, prior {'yes' if r['prior_parsed'] else 'no'}, cut {r['cut']}); "
          f"{r['calls']} calls, tokens in {r['tokens_in']} out {r['tokens_out']}; {r['wall_s']:.1f} s, "
          f"{1000 * r['s_per_token']:.1f} ms/token, {r['parsed_per_s']:.3f} parsed replies/s")
    for e in r["errors"]:
        print(f"         failed: {e}")
    sys.stdout.flush()


def _print_ratios(rows: dict[str, dict]) -> None:
    g, t = rows["grammar"], rows["text"]
    per_parsed = {m: (r["tokens_in"] + r["tokens_out"]) / max(r["parsed"], 1) for m, r in rows.items()}
    print(f"grammar/text: parsed {g['parsed']} vs {t['parsed']} of {g['requests']}; wall per generated token "
          f"{g['s_per_token'] / t['s_per_token']:.2f}x; parsed replies per second "
          + (f"{g['parsed_per_s'] / t['parsed_per_s']:.2f}x" if t["parsed"] else "inf (text parsed none)")
          + f"; teacher tokens per parsed reply {per_parsed['grammar']:.0f} vs "
          + (f"{per_parsed['text']:.0f}" if t["parsed"] else "- (none parsed)"))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--windows", type=int, default=3, help="module-card requests per category (4 categories)")
    ap.add_argument("--reps", type=int, default=1, help="runs of both arms (alternating); the last is printed")
    ap.add_argument("--max-reasks", type=int, default=0, help="the embedded default's 0")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    if args.windows < 1 or args.reps < 1 or args.max_reasks < 0:
        print("bench_structured: --windows and --reps must be >= 1, --max-reasks >= 0", file=sys.stderr)
        return 2
    apply_thread_setting()
    from agents.teacher.hf_chat import LocalHFChatModel

    LocalHFChatModel(source="smollm2").load()  # loading is not part of either arm
    cards = card_requests(args.windows)
    rows: dict[str, dict] = {}
    for _ in range(args.reps):
        for mode in ARMS:
            rows[mode] = run_arm(mode, cards, args.max_reasks)
            _print_arm(rows[mode])  # each arm as it ends: a long run killed late keeps what it measured
    _print_ratios(rows)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
