"""Request and reply records of the teacher client (plain dataclasses: they cross threads and the trace)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel


@dataclass(frozen=True)
class TeacherRequest:
    """One teacher call: a chat (`[{"role", "content"}, ...]`) and how to sample it.

    `sample_index` tells samples of the same prompt apart (the n-th of n samples); `role` is the agent that asks
    (it selects a per-role spec override and the usage bucket); `tag` is copied into the trace event. `form`, a
    regular expression the whole reply should match, is enforced by in-process teachers (their grammar: the reply
    cannot leave it, and it is part of the cache key there) and ignored by remote ones (the caller parses anyway).
    `share_prompt` marks one of several samples of one prompt: an in-process teacher computes that prompt's key/value
    cache once for every sample of it in a batch (training/generate.py), and the prompt's tokens are charged once per
    batch, as an API bills the prompt of an `n`-choice request once (agents/teacher/client.py).
    """

    messages: list[dict]
    temperature: float
    max_tokens: int
    sample_index: int = 0
    role: str = "adapter"
    tag: dict[str, Any] = field(default_factory=dict)
    form: str | None = None
    share_prompt: bool = False


@dataclass(frozen=True)
class TeacherReply:
    """What a teacher call gave: `text` is None exactly when `error` is set (a failed call never raises).

    Token counts of a cached reply are what the call cost when it was made (it costs nothing now). `latency_s` of an
    in-process (`hf:`, `vllm:`) reply is the wall time of the batched call that produced it.
    """

    text: str | None
    tokens_in: int
    tokens_out: int
    cached: bool
    retries: int
    latency_s: float
    error: str | None


@dataclass(frozen=True)
class StructuredReply:
    """A structured call: `value` validates against the schema, or is None with `error` saying why.

    `raw` is the last reply text the value was parsed from (or failed to parse from); `reasks` counts re-asks.
    """

    value: BaseModel | None
    raw: str | None
    error: str | None
    reasks: int
