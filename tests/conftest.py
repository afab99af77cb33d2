"""Shared fixtures for the agent unit tests: a hand-made pack, a scripted teacher, a scripted student, a trace that
records, and the run services built from them (agents/runtime.Services), so each agent node runs on a hand-made
state without any model.

The scripted teacher stands for a remote teacher service; the real backends have their own tests against a real
local model and a real HTTP server (tests/test_teacher_*.py, tests/test_integration_loop.py).
"""
from __future__ import annotations

import contextlib
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the test helpers (openai_server, trace_helpers)


@dataclass
class MiniPack:
    """A task pack made by hand: short answers checked by containment, an optional teacher context."""

    items_: list
    context: str | None = "the sheet"
    checker: str = "contains"
    synthesis: str = "paraphrase"
    name: str = "mini"

    def items(self):
        return list(self.items_)

    def format_prompt(self, item):
        return item.prompt

    def check(self, item, answer):
        from tasks.checkers import contains_check

        return contains_check(answer, item.reference or "")


class ScriptedTeacher:
    """Answers every request with `reply(request) -> text | None` (None: a failed call); structured requests are
    parsed with the client's own parser."""

    def __init__(self, reply: Callable):
        self.reply = reply
        self.requests: list = []
        self.usage: dict = {}
        self.not_sent = 0  # it has no budget: every call is answered

    @contextlib.contextmanager
    def settling(self):
        yield

    def ask(self, requests):
        from agents.teacher import TeacherReply

        out = []
        for r in requests:
            self.requests.append(r)
            text = self.reply(r)
            out.append(TeacherReply(text, 10, 5, False, 0, 0.0, None if text is not None else "scripted failure"))
        return out

    def ask_structured(self, requests, schema):
        from agents.teacher import StructuredReply
        from agents.teacher.parsing import parse_structured

        out = []
        for rep in self.ask(requests):
            value, why = parse_structured(rep.text, schema)
            out.append(StructuredReply(value, rep.text, why, 0))
        return out


class ScriptedStudent:
    """Answers a prompt with `answer(prompt) -> text`; loads, trains and saves nothing."""

    def __init__(self, answer: Callable[[str], str]):
        self.answer_fn = answer

    def load(self, ref):
        return None

    def answer(self, prompts, on_batch=None):
        out = [self.answer_fn(p) for p in prompts]
        if on_batch is not None:
            on_batch(len(prompts), len(prompts), 0)
        return out


@dataclass
class RecordingTrace:
    events: list = field(default_factory=list)

    def emit(self, event, **fields):
        self.events.append({"event": event, **fields})
        return self.events[-1]

    def of(self, kind: str) -> list[dict]:
        return [e for e in self.events if e["event"] == kind]


def make_items(spec: dict[str, list[tuple[str, str]]], n_seed: int = 1, n_probe: int = 8, n_test: int = 2):
    """Items per category from (question, answer) facts: each fact yields n_seed seed, n_probe probe and n_test test
    phrasings ("Q<i> <question>")."""
    from ioa_state import Item

    items = []
    for cat, facts in spec.items():
        for f, (q, a) in enumerate(facts):
            for i in range(n_seed + n_probe + n_test):
                split = "seed" if i < n_seed else "probe" if i < n_seed + n_probe else "test"
                items.append(Item(id=f"{cat}-{f}-{i}", prompt=f"Q{i} {q}", reference=a, category=cat, split=split))
    return items


@pytest.fixture
def services(tmp_path):
    """services(items, teacher_reply, student_answer, **config overrides) -> Services over a tmp run directory."""
    def make(items, teacher_reply, student_answer, **over):
        from agents.runtime import Services
        from ioa_state import load_config

        cfg = load_config(None, over)
        return Services(cfg=cfg, run_dir=tmp_path, pack=MiniPack(items), items={it.id: it for it in items},
                        teacher=ScriptedTeacher(teacher_reply), student=ScriptedStudent(student_answer),
                        trace=RecordingTrace())
    return make


def varied_tiny_model():
    """The `tiny` model (float32) with large random weights, so its replies are varied and prompt-dependent."""
    import torch

    from training.loading import load_model

    model, tok = load_model("tiny", device="cpu", seed=0)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() >= 2:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.3)
    return model, tok


def peak_in_flight(limiter, n_threads: int = 8, hold_s: float = 0.02) -> int:
    """The most requests inside `limiter.slot()` at once when n_threads ask together."""
    import threading
    import time

    inside, peak, lock = [0], [0], threading.Lock()

    def work():
        with limiter.slot():
            with lock:
                inside[0] += 1
                peak[0] = max(peak[0], inside[0])
            time.sleep(hold_s)
            with lock:
                inside[0] -= 1

    threads = [threading.Thread(target=work) for _ in range(n_threads)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return peak[0]
