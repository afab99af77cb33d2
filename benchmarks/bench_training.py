"""Benchmark the student's training step and generation on the packaged SmolLM2-135M-Instruct.

Training: one AdamW step through `train_sft` at 4 x 256 tokens, TRL's SFTTrainer (`student.engine: trl`) against
the hand-written loop (`loop`), for full and LoRA fine-tuning, in fp32 and with bf16 autocast (`--modes`). Each arm
runs in its own subprocess (a warm-up step first, then the mean of `--steps` steps), so its peak resident memory
(ru_maxrss, model load included) is its own. Printed: optimizer steps/s and peak MiB, and TRL's steps/s and memory
against the loop's in the same mode. `--optims`: TRL's step with AdamW's fused kernel (`student.optim`'s default)
against torch's per-tensor AdamW, in the first mode, and the ratios (wall, and CPU seconds of the arm's process,
which other busy processes change less). Generation: greedy tokens/s at batch 1 vs 8 (every row forced to the full
`--new-tokens`). Ratios are against baselines measured in the same run, so a shared, noisy CPU still compares.

    [IOA_TORCH_THREADS=1] .venv/bin/python benchmarks/bench_training.py [--steps 2] [--modes full-bf16,lora-bf16]
        [--no-generate] [--json out.json]
    [IOA_TORCH_THREADS=1] .venv/bin/python benchmarks/bench_training.py --optims --modes full-fp32 --batch 6 \
        --length 96 --steps 3 --no-generate   # the fused optimizer at the demo's item sizes
"""
from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
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


def _examples(n: int, seed: int = 0, length: int = 256) -> list[dict]:
    """Examples that fill `length` tokens (from 256 up: a 160-word prompt; shorter: a third of it, so some answer
    tokens are left)."""
    rng = random.Random(seed)
    text = lambda k: " ".join(rng.choice(WORDS) for _ in range(k))  # noqa: E731
    prompt = 160 if length >= 256 else length // 3
    return [{"prompt": text(prompt), "answer": text(200), "system": None} for _ in range(n)]


def bench_step(source: str, *, engine: str, lora: bool, bf16: bool, steps: int, batch: int, length: int,
               optim: str = "adamw_torch_fused") -> dict:
    model, tok = load_model(source, device="cpu")
    cfg = StudentConfig(source=source, engine=engine, lora=lora, bf16=bf16, batch_size=batch, max_length=length,
                        learning_rate=1e-5, optim=optim)
    stamps: list[float] = []
    cpu: list[float] = []
    t0 = time.perf_counter()

    def stamp(s, t, loss):
        stamps.append(time.perf_counter())
        cpu.append(time.process_time())

    _, stats = train_sft(model, tok, _examples(batch * (steps + 1), length=length), cfg, seed=0, max_steps=steps + 1,
                         progress=stamp)
    per_step = (stamps[-1] - stamps[0]) / steps  # step 1 is the warm-up
    return {"engine": engine, "optim": optim, "lora": lora, "bf16": bf16 and bf16_supported("cpu"), "step_s": per_step,
            "cpu_step_s": (cpu[-1] - cpu[0]) / steps,  # CPU seconds of this process: what a busy machine leaves alone
            "steps_per_s": 1 / per_step, "first_step_s": stamps[0] - t0,
            "tokens_per_step": stats.tokens // stats.steps,
            "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def _arm_in_subprocess(args, engine: str, mode: str, optim: str = "adamw_torch_fused") -> dict:
    """One arm in a fresh interpreter: its peak memory is its own."""
    cmd = [sys.executable, __file__, "--arm", f"{engine}:{mode}:{optim}", "--source", args.source,
           "--steps", str(args.steps), "--batch", str(args.batch), "--length", str(args.length)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
    if out.returncode != 0 or not lines:
        raise SystemExit(f"arm {engine}:{mode} failed: {(out.stderr.strip().splitlines() or ['?'])[-1]}")
    return json.loads(lines[-1])


def _run_arm(spec: str, args) -> int:
    engine, mode, optim = spec.split(":")
    r = bench_step(args.source, engine=engine, lora=mode.startswith("lora"), bf16=mode.endswith("bf16"),
                   steps=args.steps, batch=args.batch, length=args.length, optim=optim)
    print(json.dumps(r))
    return 0


def train_table(args) -> list[dict]:
    rows = []
    for mode in args.modes.split(","):
        loop = _arm_in_subprocess(args, "loop", mode)
        trl = _arm_in_subprocess(args, "trl", mode)
        rows += [dict(loop, mode=mode), dict(trl, mode=mode, x_steps=trl["steps_per_s"] / loop["steps_per_s"],
                                             x_mem=trl["peak_mib"] / loop["peak_mib"])]
    print(f"\n{'mode':<11}{'engine':<7}{'steps/s':>9}{'peak MiB':>10}{'tokens':>8}{'x loop steps/s':>16}"
          f"{'x loop MiB':>12}")
    for r in rows:
        extra = f"{r['x_steps']:>16.2f}{r['x_mem']:>12.2f}" if "x_steps" in r else ""
        print(f"{r['mode']:<11}{r['engine']:<7}{r['steps_per_s']:>9.3f}{r['peak_mib']:>10.0f}"
              f"{r['tokens_per_step']:>8}{extra}")
    return rows


def optim_table(args) -> list[dict]:
    """TRL's step with torch's per-tensor AdamW, then with the fused kernel, in the first mode; the ratio."""
    mode = args.modes.split(",")[0]
    plain = _arm_in_subprocess(args, "trl", mode, "adamw_torch")
    fused = _arm_in_subprocess(args, "trl", mode, "adamw_torch_fused")
    print(f"\n{'mode':<11}{'optim':<19}{'step s':>8}{'CPU s':>7}{'first step s':>14}{'x adamw_torch steps/s':>23}"
          f"{'x CPU s':>9}")
    for r in (plain, fused):
        print(f"{mode:<11}{r['optim']:<19}{r['step_s']:>8.2f}{r['cpu_step_s']:>7.2f}{r['first_step_s']:>14.2f}"
              f"{r['steps_per_s'] / plain['steps_per_s']:>23.2f}{r['cpu_step_s'] / plain['cpu_step_s']:>9.2f}")
    return [dict(plain, mode=mode), dict(fused, mode=mode, x_steps=fused["steps_per_s"] / plain["steps_per_s"])]


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
    ap.add_argument("--modes", default="full-fp32,full-bf16,lora-fp32,lora-bf16",
                    help="comma-separated training modes: full|lora - fp32|bf16")
    ap.add_argument("--no-generate", action="store_true", help="skip the generation table")
    ap.add_argument("--optims", action="store_true", help="only the optimizer table (fused AdamW vs per-tensor)")
    ap.add_argument("--arm", help=argparse.SUPPRESS)  # engine:mode, run by the parent in a subprocess
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = ap.parse_args(argv)
    apply_thread_setting()  # $IOA_TORCH_THREADS, e.g. 1 on a CPU other processes are using
    if args.arm:
        return _run_arm(args.arm, args)

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, cpu bf16: {bf16_supported('cpu')}, "
          f"source {args.source}, {args.batch}x{args.length} tokens a step")
    train = optim_table(args) if args.optims else train_table(args)
    if args.no_generate:
        if args.json:
            args.json.write_text(json.dumps({"train": train}, indent=2))
        return 0
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
