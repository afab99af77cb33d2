"""The trace writer: one JSON line per agent step, teacher call and decision, in runs/<id>/trace.jsonl.

Events are also pushed live to LangGraph's `custom` stream when emitted inside a graph run, so a caller streaming
with stream_mode="custom" can watch. Secrets (API keys, bearer tokens, values of *KEY*/*TOKEN*/*SECRET* variables)
are scrubbed before anything is written. The writer times itself (`seconds`) so its overhead can be measured.
"""
from __future__ import annotations

import json
import os
import re
import threading
import time
from pathlib import Path
from typing import Callable, Iterable, Iterator

_SECRET_PATTERNS = [re.compile(r"sk-[A-Za-z0-9_\-]{8,}"), re.compile(r"(?i)bearer\s+[A-Za-z0-9_\-\.=]{8,}")]


def _secret_values() -> list[str]:
    names = re.compile(r"(?i)(KEY|TOKEN|SECRET|PASSWORD)")
    return sorted({v for k, v in os.environ.items() if names.search(k) and len(v) >= 8}, key=len, reverse=True)


def scrub(text: str, secrets: list[str] | None = None) -> str:
    """Replace anything that looks like a secret with ***."""
    for value in secrets if secrets is not None else _secret_values():
        text = text.replace(value, "***")
    for pat in _SECRET_PATTERNS:
        text = pat.sub("***", text)
    return text


def parse_lines(lines: Iterable[str]) -> Iterator[dict]:
    """The events in trace.jsonl lines (a line cut by a kill, or being written, is skipped)."""
    for line in lines:
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(data, dict) and "event" in data:
            yield data


def read_lines(path: Path | str) -> Iterator[dict]:
    """Every complete event of a trace.jsonl as written.

    The one reader of trace.jsonl: the writer, the report, the viewers and the bench all read through it."""
    path = Path(path)
    if not path.is_file():
        return
    with open(path, encoding="utf-8") as fh:
        yield from parse_lines(fh)


class TraceWriter:
    """Append-only JSONL trace with a sequence number, wall-clock time and live streaming."""

    def __init__(self, path: Path | str, echo: Callable[[dict], None] | None = None):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.echo = echo
        self.seconds = 0.0
        self._lock = threading.Lock()
        self._secrets = _secret_values()
        self._seq = self._last_seq()
        self._fh = open(self.path, "a", encoding="utf-8")

    def _last_seq(self) -> int:
        last = 0
        for e in read_lines(self.path):  # a line cut by a kill is skipped: the next event starts a new line
            last = e.get("seq", last)
        return last

    def emit(self, event: str, **fields) -> dict:
        t0 = time.perf_counter()
        with self._lock:
            self._seq += 1
            record = {"seq": self._seq, "ts": round(time.time(), 3), "event": event, **fields}
            line = scrub(json.dumps(record, ensure_ascii=False, default=str), self._secrets)
            self._fh.write(line + "\n")
            self._fh.flush()
        out = json.loads(line)
        try:
            from langgraph.config import get_stream_writer
            get_stream_writer()(out)
        except (RuntimeError, KeyError, ImportError):
            pass  # not inside a graph run
        self.seconds += time.perf_counter() - t0
        if self.echo is not None:
            self.echo(out)
        return out

    def node_seconds(self) -> float:
        """Wall seconds spent inside graph nodes over the whole run, all processes (from the node_end events)."""
        return node_seconds(self.path)

    def close(self) -> None:
        with self._lock:
            self._fh.close()


def node_seconds(path: Path | str) -> float:
    """Wall seconds spent inside a run's steps: the sum of its trace's node_end `seconds` (over every session)."""
    return round(sum(float(e.get("seconds") or 0.0) for e in read_lines(path) if e["event"] == "node_end"), 3)
