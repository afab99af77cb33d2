"""GPU check: one training round in bf16 on a ~0.5B model built from a config, tokens/s and MFU; the vllm: teacher.

The model is a Qwen2-shaped decoder (24 layers, hidden 896, 14 heads / 2 KV heads, MLP 4864: ~0.5B parameters
with SmolLM2's 49k vocabulary) built from a config, so nothing is downloaded. It trains through training/trainer.py
(TRL's SFTTrainer, the `paper` profile: cosine schedule, warm-up, weight decay; bf16 and gradient checkpointing on
CUDA) for `--steps` optimizer steps on synthetic prompt/answer items; tokens/s counts non-padding tokens after the
first (warm-up) step, MFU = 6 * parameters * tokens/s / peak (attention FLOPs left out, so MFU is a lower bound).
Then, when vLLM imports, the saved model answers a few chat prompts as the `vllm:` teacher would.

`--tiny` runs the same path on the CPU with a 2-layer model (a dry run that needs no GPU). The tokenizer comes from
`--tokenizer DIR`, else from the packaged SmolLM2 (training/loading.py), whose files can travel where it is absent.

    python benchmarks/gpu_check.py [--tiny] [--steps 8] [--batch 16] [--length 512] [--tokenizer DIR]
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ioa_state.config import StudentConfig  # noqa: E402
from training.trainer import train_sft  # noqa: E402

HALF_B = dict(hidden_size=896, num_hidden_layers=24, num_attention_heads=14, num_key_value_heads=2,
              intermediate_size=4864)
TINY = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, intermediate_size=128)
WORDS = "river mountain capital answer number kingdom silver market winter language garden teacher bridge".split()


def _tokenizer(path: str | None):
    from transformers import AutoTokenizer

    if path is None:
        from training.loading import smollm2_dir

        path = str(smollm2_dir())
    tok = AutoTokenizer.from_pretrained(path)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def build_model(tok, shape: dict, device: torch.device):
    from transformers import Qwen2Config, Qwen2ForCausalLM

    cfg = Qwen2Config(vocab_size=len(tok), max_position_embeddings=4096, tie_word_embeddings=True,
                      bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
                      **shape)
    torch.manual_seed(0)
    return Qwen2ForCausalLM(cfg).to(device)


def examples(n: int, words: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    text = lambda k: " ".join(rng.choice(WORDS) for _ in range(k))  # noqa: E731
    return [{"prompt": text(words // 2), "answer": text(words)} for _ in range(n)]


def train_round(model, tok, args, device: torch.device) -> dict:
    cfg = StudentConfig(source="config", profile="paper", batch_size=args.batch, max_length=args.length,
                        bf16=True, device=device.type)
    stamps: list[float] = []
    exs = examples(args.batch * (args.steps + 1), words=args.length // 2)
    model, stats = train_sft(model, tok, exs, cfg, seed=0, max_steps=args.steps + 1,
                             progress=lambda s, n, loss: stamps.append(time.perf_counter()))
    tokens_after_warmup = stats.tokens * args.steps / (args.steps + 1)  # same-size batches: a fair share
    tps = tokens_after_warmup / (stamps[-1] - stamps[0])
    params = sum(p.numel() for p in model.parameters())
    mfu = 6 * params * tps / (args.peak_tflops * 1e12) if device.type == "cuda" else None
    peak = torch.cuda.max_memory_allocated() / 2 ** 30 if device.type == "cuda" else None
    return {"params_M": round(params / 1e6, 1), "steps": stats.steps, "loss_first": stats.losses[0],
            "loss_last": stats.losses[-1], "tokens_per_s": round(tps, 1), "mfu": mfu and round(mfu, 4),
            "peak_gib": peak and round(peak, 2), "bf16": bool(cfg.bf16), "seconds": round(stats.seconds, 1)}, model


def vllm_teacher(model_dir: Path) -> dict:
    try:
        import vllm  # noqa: F401
    except ImportError as e:
        return {"vllm": f"not importable ({str(e).splitlines()[0][:80]}): skipped"}
    convs = [[{"role": "user", "content": f"Say the word number {i}."}] for i in range(8)]
    t0 = time.perf_counter()
    try:
        from agents.teacher.vllm_chat import LocalVLLMChatModel  # the project's vllm: backend

        chat = LocalVLLMChatModel(model=str(model_dir), temperature=0.7, max_tokens=32, batch_size=8,
                                  engine_kwargs={"gpu_memory_utilization": 0.3, "enforce_eager": True})
        rows = chat._run_group(convs, temperature=0.7, max_tokens=32, seeds=list(range(8)), stop=None)
        via = "agents.teacher.vllm_chat"
    except ImportError:  # langchain absent here: vLLM's own API, as that backend calls it
        from vllm import LLM, SamplingParams

        llm = LLM(model=str(model_dir), gpu_memory_utilization=0.3, enforce_eager=True, seed=0)
        outs = llm.chat(convs, sampling_params=[SamplingParams(temperature=0.7, max_tokens=32, seed=i)
                                                for i in range(8)], use_tqdm=False)
        rows = [(o.outputs[0].text, len(o.prompt_token_ids or []), len(o.outputs[0].token_ids)) for o in outs]
        via = "vllm.LLM"
    dt = time.perf_counter() - t0
    return {"vllm": via, "replies": len(rows), "tokens_out": sum(r[2] for r in rows), "seconds": round(dt, 1)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tiny", action="store_true", help="a 2-layer model on the CPU: a dry run without a GPU")
    ap.add_argument("--steps", type=int, default=8, help="timed optimizer steps after one warm-up step")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--length", type=int, default=512)
    ap.add_argument("--tokenizer", default=None, help="tokenizer directory (default: the packaged SmolLM2's)")
    ap.add_argument("--peak-tflops", type=float, default=989.0, help="the device's dense bf16 peak (H100/H200: 989)")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    if args.tiny:
        device = torch.device("cpu")
    elif not torch.cuda.is_available():
        print("gpu_check: no CUDA device here (use --tiny for a CPU dry run)", file=sys.stderr)
        return 2
    else:
        device = torch.device("cuda")
        print(f"device: {torch.cuda.get_device_name()}, torch {torch.__version__}")
    tok = _tokenizer(args.tokenizer)
    model = build_model(tok, TINY if args.tiny else HALF_B, device)
    result, model = train_round(model, tok, args, device)
    print("train:", json.dumps(result))
    if device.type == "cuda":
        with tempfile.TemporaryDirectory() as d:
            model.save_pretrained(d)
            tok.save_pretrained(d)
            del model
            torch.cuda.empty_cache()
            teacher = vllm_teacher(Path(d))
    else:
        teacher = {"vllm": "skipped on the CPU dry run"}
    print("teacher:", json.dumps(teacher))
    if args.json:
        args.json.write_text(json.dumps({"train": result, "teacher": teacher}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
