"""Benchmark the system-prompt prefix cache of training/generate.py (the teacher's context computed once per batch),
or (`--compare segment`) its finished rows leaving the batch (SEGMENT tokens per generate call).

The in-process teacher of the embedded default is SmolLM2-135M-Instruct with the Zorbia knowledge sheet (~190
tokens) as its system prompt, in front of every question it answers or writes; on a CPU the prefill of that sheet,
repeated for every row, costs more than the reply. This runs the same conversations (the pack's questions, some
asking for a longer reply) through `generate` with `prefix_cache=False` (the baseline) and `True`, greedy and
sampled, alternating the two `--reps` times, and prints seconds, the ratio, and whether every reply is identical.
With `--compare segment` both sides use the prefix cache, and the baseline decodes each batch in one generate call
(SEGMENT = --new-tokens: finished rows are decoded along to the longest reply) against the default SEGMENT.

    .venv/bin/python benchmarks/bench_generation.py [--n 32] [--new-tokens 40] [--batch 16] [--reps 2] [--json out.json]
    .venv/bin/python benchmarks/bench_generation.py --compare segment --n 64 --new-tokens 96 --batch 32
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import training.generate as gen  # noqa: E402
from ioa_state import TaskConfig  # noqa: E402
from tasks.zorbia import ZorbiaPack  # noqa: E402
from training.device import apply_thread_setting  # noqa: E402
from training.generate import generate  # noqa: E402
from training.loading import load_model  # noqa: E402

LONGER = " Answer with a short sentence, then say step by step how you know it."


def conversations(n: int) -> list[list[dict]]:
    pack = ZorbiaPack(TaskConfig(pack="zorbia"))
    sheet, questions = pack.context, [q for f in pack.facts for q in f["questions"]]
    qs = [questions[i % len(questions)] + (LONGER if i % 3 == 0 else "") for i in range(n)]
    return [[{"role": "system", "content": sheet}, {"role": "user", "content": q}] for q in qs]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=32, help="conversations")
    ap.add_argument("--new-tokens", type=int, default=40)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--compare", choices=["prefix", "segment"], default="prefix",
                    help="prefix: no prefix cache vs the cache; segment: one generate call per batch vs SEGMENT")
    args = ap.parse_args(argv)
    segment = gen.SEGMENT
    apply_thread_setting()
    model, tok = load_model("smollm2", device="cpu")
    convs = conversations(args.n)
    rows = []
    for temperature in (0.0, 0.7):
        times: dict[bool, list[float]] = {False: [], True: []}
        replies: dict[bool, list] = {}
        for _ in range(args.reps):
            for cached in (False, True):  # the baseline, then the change measured
                gen.SEGMENT = segment if cached or args.compare == "prefix" else args.new_tokens
                t0 = time.perf_counter()
                replies[cached] = generate(model, tok, convs, max_new_tokens=args.new_tokens,
                                           temperature=temperature, seeds=list(range(args.n)),
                                           batch_size=args.batch, prefix_cache=cached or args.compare == "segment")
                times[cached].append(time.perf_counter() - t0)
        gen.SEGMENT = segment
        base, fast = statistics.median(times[False]), statistics.median(times[True])
        same = sum(a == b for a, b in zip(replies[False], replies[True]))
        rows.append({"temperature": temperature, "baseline_s": base, "prefix_cache_s": fast,
                     "speedup": base / fast, "identical": same, "n": args.n})
    print(f"{args.n} conversations with the Zorbia sheet as system prompt, up to {args.new_tokens} new tokens, "
          f"batch {args.batch}, median of {args.reps}")
    heads = ("no cache s", "prefix cache s") if args.compare == "prefix" else ("one call s", f"SEGMENT {segment} s")
    print(f"{'decoding':<10}{heads[0]:>11}{heads[1]:>16}{'speed-up':>10}{'identical':>11}")
    for r in rows:
        kind = "greedy" if r["temperature"] == 0 else f"t={r['temperature']}"
        print(f"{kind:<10}{r['baseline_s']:>11.2f}{r['prefix_cache_s']:>16.2f}{r['speedup']:>9.2f}x"
              f"{r['identical']:>6}/{r['n']}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
