"""benchmarks/gpu_check.sh dry-runs on the CPU (`--tiny`) and refuses cleanly without CUDA."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_gpu_check_dry_runs_on_the_cpu(tmp_path):
    out = tmp_path / "gpu.json"
    r = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), "--tiny", "--steps", "1", "--batch", "2",
                        "--length", "64", "--json", str(out)], capture_output=True, text=True,
                       env={"PYTHON": sys.executable, "PATH": "/usr/bin:/bin"}, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    res = json.loads(out.read_text())
    assert res["train"]["steps"] == 2 and res["train"]["tokens_per_s"] > 0
    assert res["teacher"]["vllm"].startswith("skipped")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_gpu_check_without_cuda_says_so_and_exits_2():
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_check.py")], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 2 and r.stderr.strip().splitlines()[-1].startswith("gpu_check: no CUDA device here")
