"""A round's training on more than one device: `accelerate launch` of this module, and the parent's side of it.

The parent (training/student.py) writes a job directory: `job.json` (the student config, seed, max_steps, the
directory of the weights to start from) and `examples.jsonl`; `run_job` starts

    python -m accelerate.commands.accelerate_cli launch [--cpu] [--num_processes N] [--config_file F] \
        -m training.launch <job dir>

in its own process group. Every process loads the weights and trains through training/trainer.py (TRL's trainer
runs DDP, FSDP or DeepSpeed as the accelerate config says; `batch_size` stays the global batch); the main process
saves the merged weights to `<job>/out` and the stats to `<job>/stats.json`. Progress comes back as stdout lines.
A subprocess that fails or outlives `student.launch_timeout_s` is a failed round: its whole process group is
killed and `LaunchError` says why in one line; the graph's checkpoint is from before the round, so it resumes.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
from collections import deque
from dataclasses import asdict
from pathlib import Path
from typing import Callable

PROGRESS = "IOA-PROGRESS "


class LaunchError(RuntimeError):
    """The training subprocess failed or was killed; the message is one line."""


def write_job(job: Path, cfg_dump: dict, examples: list[dict], *, seed: int, model_dir: Path,
              max_steps: int | None) -> None:
    job.mkdir(parents=True, exist_ok=True)
    with open(job / "examples.jsonl", "w", encoding="utf-8") as f:
        for ex in examples:
            f.write(json.dumps(ex, ensure_ascii=False) + "\n")
    (job / "job.json").write_text(json.dumps({"student": cfg_dump, "seed": seed, "max_steps": max_steps,
                                              "model_dir": str(model_dir)}))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch_command(cfg, job: Path, device_type: str) -> list[str]:
    """The `accelerate launch` command line for a job."""
    cmd = [sys.executable, "-m", "accelerate.commands.accelerate_cli", "launch"]
    if cfg.accelerate_config:
        cmd += ["--config_file", str(cfg.accelerate_config)]
    if cfg.num_processes > 1 or not cfg.accelerate_config:
        cmd += ["--num_processes", str(cfg.num_processes)]
    if device_type == "cpu":
        cmd += ["--cpu"]
    cmd += ["--main_process_port", str(_free_port()), "-m", "training.launch", str(job)]
    return cmd


def run_job(cmd: list[str], *, timeout_s: float, progress: Callable[[int, int, float], None] | None = None,
            env: dict | None = None) -> None:
    """Run `cmd` in its own process group; progress lines go to `progress`. LaunchError on failure or timeout
    (the group killed: no orphan keeps the devices)."""
    tail: deque[str] = deque(maxlen=30)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True, env={**os.environ, **(env or {})})

    def _read():
        for line in proc.stdout:
            line = line.rstrip("\n")
            if line.startswith(PROGRESS):
                if progress is not None:
                    s, n, loss = json.loads(line[len(PROGRESS):])
                    progress(s, n, loss)
            elif line.strip():
                tail.append(line)

    reader = threading.Thread(target=_read, daemon=True)
    reader.start()
    try:
        rc = proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise LaunchError(f"training subprocess killed after {timeout_s:g} s (student.launch_timeout_s)") from None
    finally:
        if proc.poll() is None:
            _kill_group(proc)
        reader.join(timeout=5)
    if rc != 0:
        why = next((ln for ln in reversed(tail) if "Error" in ln or "error" in ln), tail[-1] if tail else "")
        raise LaunchError(f"training subprocess exited with code {rc}: {why.strip()[:300]}")


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def main(argv: list[str] | None = None) -> int:
    """Entry of each launched process: train on the job, the main process saves weights and stats."""
    import torch
    from accelerate import PartialState

    from ioa_state.config import StudentConfig
    from training.checkpoints import load_student, save_student
    from training.trainer import train_sft

    job = Path((argv if argv is not None else sys.argv[1:])[0])
    spec = json.loads((job / "job.json").read_text())
    cfg = StudentConfig.model_validate(spec["student"])
    state = PartialState()
    if state.device.type == "cpu" and state.num_processes > 1:
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // state.num_processes))
    model, tok = load_student(spec["model_dir"], device=state.device)
    examples = [json.loads(ln) for ln in (job / "examples.jsonl").read_text(encoding="utf-8").splitlines() if ln]

    def report(s, n, loss):
        if state.is_main_process:
            print(PROGRESS + json.dumps([s, n, loss]), flush=True)

    model, stats = train_sft(model, tok, examples, cfg, seed=spec["seed"], max_steps=spec["max_steps"],
                             progress=report)
    if state.is_main_process:
        save_student(model, tok, job / "out")
        (job / "stats.json").write_text(json.dumps(asdict(stats)))
    state.wait_for_everyone()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
