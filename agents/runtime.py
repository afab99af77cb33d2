"""What every agent node is handed besides the state: the run's services (not checkpointed, rebuilt on resume).

Also the run directory's file discipline: write to a temporary name, then rename, and record path + sha256.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Callable

import yaml

from ioa_state import ArtifactRef, ConfigError, Item, RunConfig


@dataclass
class Services:
    """The run's live objects: config, run directory, task pack and its items, teacher, student, trace."""

    cfg: RunConfig
    run_dir: Path
    pack: Any
    items: dict[str, Item]
    teacher: Any
    student: Any
    trace: Any
    progress: Callable[[str], None] = field(default=lambda msg: None)

    def pack_synthesis(self) -> str:
        """'paraphrase' when a synthesized item keeps its source's reference (short answers, code), else 'new'."""
        default = "paraphrase" if self.pack.checker in ("contains", "exact", "code") else "new"
        return getattr(self.pack, "synthesis", default)

    def usage(self) -> dict:
        """A copy of the teacher's token accounting per role, for the state."""
        return {role: u.model_copy() for role, u in self.teacher.usage.items()}

    @cached_property
    def teacher_context(self) -> str | None:
        """The teacher's context: the config's text or file, else the pack's own (algorithm §0); read once per run
        (every teacher call asks for it, through `teacher_context_for`)."""
        t = self.cfg.teacher
        if t.context:
            return t.context
        if t.context_file:
            return Path(t.context_file).read_text()
        return getattr(self.pack, "context", None)

    @property
    def context_passages(self) -> int:
        """Passages per question (teacher.context_passages; unset: the pack's choice when the context is its own)."""
        t = self.cfg.teacher
        if t.context_passages is not None:
            return t.context_passages
        return 0 if t.context or t.context_file else int(getattr(self.pack, "context_passages", 0))

    def teacher_context_for(self, question: str) -> str | None:
        """The teacher's context for one question: the whole context, or its opening and the passages the question
        needs (agents/context_passages.py)."""
        return context_for(self.teacher_context, self.context_passages, question)


def context_for(context: str | None, k: int, question: str) -> str | None:
    """`context` whole (k = 0), or its opening and the k passages most similar to `question`."""
    from agents.context_passages import index

    return index(context, k).for_question(question) if context and k else context


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_jsonl(run_dir: Path, rel: str, records: list[dict], **ref_fields) -> ArtifactRef:
    """Atomically write records as JSONL under run_dir/rel and return its reference."""
    path = run_dir / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".jsonl")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        for r in records:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return ArtifactRef(path=rel, sha256=sha256_file(path), count=len(records), **ref_fields)


def write_json(run_dir: Path, rel: str, data: Any, kind: str = "other") -> ArtifactRef:
    path = run_dir / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=2, ensure_ascii=False, default=str)
    os.replace(tmp, path)
    return ArtifactRef(path=rel, sha256=sha256_file(path), kind=kind)


def read_jsonl(run_dir: Path, ref: ArtifactRef, verify: bool = True) -> list[dict]:
    """Read a referenced JSONL file, checking its hash first."""
    path = run_dir / ref.path
    if verify and sha256_file(path) != ref.sha256:
        raise RuntimeError(f"{ref.path} does not match its recorded hash: the run directory was modified")
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def save_config(cfg: RunConfig, run_dir: Path) -> None:
    from agents.tracing import scrub

    text = scrub(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False))
    tmp = run_dir / ".config.yaml.tmp"
    tmp.write_text(text)
    tmp.replace(run_dir / "config.yaml")


def load_task(cfg: RunConfig):
    """The task pack and its items; a bad pack, file or split fails here, before any run directory exists."""
    from tasks.registry import load_pack

    pack = load_pack(cfg.task)
    pack_check = getattr(pack, "preflight", None)  # a code pack whose sandbox cannot start Python stops here,
    if pack_check is not None:                     # before any model loads
        pack_check()
    items = {it.id: it for it in pack.items()}
    if not items:
        raise ConfigError(f"task pack {cfg.task.pack} gave no items: check its data file and limit")
    return pack, items
