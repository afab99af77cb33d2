"""The student as the graph sees it: loaded once per process, answering, training and checkpointing.

Loads from the latest checkpoint referenced by the state (a directory under the run) or, for a fresh run, from the
configured source (`smollm2`, a hub id, a local directory, `tiny`; `keep_layers` cuts a smaller student). Answers are
greedy with no system prompt (the student never sees the teacher's context). With `num_processes > 1` or an
`accelerate_config`, a round trains in an `accelerate launch` subprocess (training/launch.py) and the weights it
saved are loaded back; the teacher never shares that memory.
"""
from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import torch

from ioa_state import ArtifactRef, StudentConfig
from training.checkpoints import hash_student, load_student, save_student
from training.device import apply_thread_setting, pick_device
from training.generate import generate
from training.loading import load_model
from training.trainer import train_sft


class Student:
    """Holds the student model in memory for one process."""

    def __init__(self, cfg: StudentConfig, run_dir: Path, seed: int = 0):
        self.cfg, self.run_dir, self.seed = cfg, Path(run_dir), seed
        self.device = pick_device(cfg.device)
        self.model = self.tokenizer = None
        self.loaded_from: str | None = None
        self._trained = False  # the weights in memory differ from `loaded_from` (trained, not saved yet)

    def load(self, ref: ArtifactRef | None) -> None:
        """Load the checkpoint `ref` points at (hash-checked), or the configured source when None. What is in memory
        is kept when it is that checkpoint, untrained since (`train` trains it in place)."""
        key = ref.path if ref else "initial"
        if self.model is not None and self.loaded_from == key and not self._trained:
            return
        if ref is None:
            self.model, self.tokenizer = load_model(self.cfg.source, keep_layers=self.cfg.keep_layers,
                                                    device=self.device, seed=self.seed)
        else:
            path = self.run_dir / ref.path
            if not path.is_dir() or hash_student(path) != ref.sha256:
                raise RuntimeError(f"student checkpoint {ref.path} is missing or does not match its recorded hash")
            self.model, self.tokenizer = load_student(path, device=self.device)
        self.loaded_from, self._trained = key, False

    def _ready(self):
        if self.model is None:
            self.load(None)

    def answer(self, prompts: list[str], on_batch=None) -> list[str]:
        """Greedy answers; `on_batch(done, total, new_tokens)` after each batch (see training.generate)."""
        self._ready()
        convs = [[{"role": "user", "content": p}] for p in prompts]
        return [g.text for g in generate(self.model, self.tokenizer, convs, max_new_tokens=self.cfg.max_new_tokens,
                                         batch_size=self.cfg.exam_batch_size, on_batch=on_batch)]

    def launched(self) -> bool:
        """Whether rounds train in an `accelerate launch` subprocess."""
        return self.cfg.num_processes > 1 or bool(self.cfg.accelerate_config)

    def train(self, examples: list[dict], seed: int, progress=None, teacher=None, max_steps: int | None = None):
        """One round of training (`cfg.epochs` passes, or exactly `max_steps` optimizer steps); `teacher`
        (training/distill.py LocalTeacher) for `loss: kd | sft+kd`."""
        self._ready()
        if self.launched():
            return self._train_launched(examples, seed, progress, max_steps)
        apply_thread_setting()  # a bench job takes the cores its ended neighbours left (training/device.py)
        self.model, stats = train_sft(self.model, self.tokenizer, examples, self.cfg, seed=seed, progress=progress,
                                      teacher=teacher, max_steps=max_steps)
        self._trained = True
        return stats

    def _train_launched(self, examples: list[dict], seed: int, progress, max_steps: int | None = None):
        import json

        from training.examples import TrainStats
        from training.launch import launch_command, run_job, write_job

        if self.cfg.loss != "sft":
            raise ValueError(f"student.loss {self.cfg.loss!r} needs the teacher in the training process: "
                             "use it with student.num_processes 1 and no accelerate_config")
        job = self.run_dir / "student" / f".launch-{uuid.uuid4().hex[:8]}"  # dot: prune() leaves it alone
        try:
            if self.loaded_from not in (None, "initial") and not self._trained:
                model_dir = self.run_dir / self.loaded_from  # the checkpoint on disk is what is in memory
            else:
                model_dir = job / "in"
                save_student(self.model, self.tokenizer, model_dir)
            if self.device.type == "cuda":  # the launched processes need the GPU memory this copy holds
                self.model, self.loaded_from = None, None
                torch.cuda.empty_cache()
            write_job(job / "job", self.cfg.model_dump(), examples, seed=seed, model_dir=model_dir, max_steps=max_steps)
            run_job(launch_command(self.cfg, job / "job", self.device.type), timeout_s=self.cfg.launch_timeout_s,
                    progress=progress)
            self.model, self.tokenizer = load_student(job / "job" / "out", device=self.device)
            self._trained = True
            return TrainStats(**json.loads((job / "job" / "stats.json").read_text()))
        finally:
            shutil.rmtree(job, ignore_errors=True)

    def save(self, rel: str, round_no: int) -> ArtifactRef:
        self._ready()
        digest = save_student(self.model, self.tokenizer, self.run_dir / rel)
        self.loaded_from, self._trained = rel, False
        return ArtifactRef(path=rel, sha256=digest, kind="student", round=round_no)

    def prune(self, keep: list[ArtifactRef]) -> None:
        """Delete checkpoint directories under student/ that no kept reference names (disk stays bounded)."""
        root = self.run_dir / "student"
        names = {Path(r.path).name for r in keep}
        for d in root.iterdir() if root.is_dir() else []:
            if d.is_dir() and d.name not in names and not d.name.startswith("."):
                shutil.rmtree(d, ignore_errors=True)

    def weights(self) -> dict[str, torch.Tensor]:
        self._ready()
        return {k: v.detach().clone() for k, v in self.model.state_dict().items()}
