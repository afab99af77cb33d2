"""Benchmark the student's training step and generation on the packaged SmolLM2-135M-Instruct.

Times one AdamW step through `train_sft` at 4 x 256 tokens for full vs LoRA fine-tuning, each in fp32 and with bf16
autocast (a warm-up step first, then the mean of `--steps` steps), and greedy generation tokens/s at batch 1 vs 8
(every row forced to the full `--new-tokens`). Ratios are printed against the baseline measured in the same run
(full fp32 for training, batch 1 for generation), so a shared, noisy CPU still gives comparable numbers.

    [IOA_TORCH_THREADS=1] .venv/bin/python benchmarks/bench_training.py [--steps 2] [--new-tokens 32] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ioa_state.config import StudentConfig  # noqa: E402
from training.device import apply_thread_setting, bf16_supported  # noqa: E402
from training.loading import load_model  # noqa: E402
from training.trainer import train_sft  # noqa: E402

WORDS = ("river mountain capital answer number kingdom silver market winter language garden teacher student "
         "bridge lantern harbor meadow castle violet copper").split()


def _examples(n: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    text = lambda k: " ".join(rng.choice(WORDS) for _ in range(k))  # noqa: E731
    return [{"prompt": text(160), "answer": text(200), "system": None} for _ in range(n)]


def bench_step(source: str, *, lora: bool, bf16: bool, steps: int, batch: int, length: int) -> dict:
    model, tok = load_model(source, device="cpu")
    cfg = StudentConfig(source=source, lora=lora, bf16=bf16, batch_size=batch, max_length=length,
                        learning_rate=1e-5)
    stamps: list[float] = []
    t0 = time.perf_counter()
    _, stats = train_sft(model, tok, _examples(batch * (steps + 1)), cfg, seed=0, max_steps=steps + 1,
                         progress=lambda s, t, l: stamps.append(time.perf_counter()))
    per_step = (stamps[-1] - stamps[0]) / steps  # step 1 is the warm-up
    return {"lora": lora, "bf16": bf16 and bf16_supported("cpu"), "step_s": per_step,
            "first_step_s": stamps[0] - t0, "tokens_per_step": stats.tokens // stats.steps}


def bench_generate(model, tok, *, batch: int, new_tokens: int, reps: int) -> dict:
    prompts = ["What is the capital of France?", "Name a colour.", "What is 3 + 4?", "Say hello.",
               "What is the opposite of hot?", "Give a plural of mouse.", "Who wrote Hamlet?", "Count to three."]
    convs = [[{"role": "user", "content": prompts[i % len(prompts)]}] for i in range(batch)]
    enc = tok.apply_chat_template(convs, add_generation_prompt=True, return_tensors="pt", return_dict=True,
                                  padding=True)
    kw = dict(max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False,
              pad_token_id=tok.pad_token_id)
    with torch.inference_mode():
        model.generate(**enc, **dict(kw, max_new_tokens=4, min_new_tokens=4))  # warm-up
        t0 = time.perf_counter()
        for _ in range(reps):
            model.generate(**enc, **kw)
        dt = (time.perf_counter() - t0) / reps
    return {"batch": batch, "seconds": dt, "tokens_per_s": batch * new_tokens / dt}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", default="smollm2")
    ap.add_argument("--steps", type=int, default=2, help="timed steps after the warm-up step")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--length", type=int, default=256)
    ap.add_argument("--new-tokens", type=int, default=32)
    ap.add_argument("--reps", type=int, default=1)
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = ap.parse_args(argv)
    apply_thread_setting()  # $IOA_TORCH_THREADS, e.g. 1 on a CPU other processes are using

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, cpu bf16: {bf16_supported('cpu')}, "
          f"source {args.source}, {args.batch}x{args.length} tokens a step")
    train = []
    for lora in (False, True):
        for bf16 in (False, True):
            r = bench_step(args.source, lora=lora, bf16=bf16, steps=args.steps, batch=args.batch,
                           length=args.length)
            train.append(r)
    base = train[0]["step_s"]
    print(f"\n{'mode':<12}{'autocast':<10}{'step s':>8}{'x full fp32':>13}{'tokens':>8}")
    for r in train:
        print(f"{'LoRA' if r['lora'] else 'full':<12}{'bf16' if r['bf16'] else 'fp32':<10}{r['step_s']:>8.2f}"
              f"{r['step_s'] / base:>13.2f}{r['tokens_per_step']:>8}")

    model, tok = load_model(args.source, device="cpu")
    gen = [bench_generate(model, tok, batch=b, new_tokens=args.new_tokens, reps=args.reps) for b in (1, 8)]
    print(f"\n{'batch':<8}{'seconds':>9}{'tokens/s':>10}{'x batch 1':>11}")
    for g in gen:
        print(f"{g['batch']:<8}{g['seconds']:>9.2f}{g['tokens_per_s']:>10.1f}"
              f"{g['tokens_per_s'] / gen[0]['tokens_per_s']:>11.2f}")
    if args.json:
        args.json.write_text(json.dumps({"train": train, "generate": gen}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
