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
from typing import Callable

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
        if not self.path.exists():
            return 0
        last = 0
        with open(self.path, encoding="utf-8") as fh:
            for line in fh:
                try:
                    last = json.loads(line).get("seq", last)
                except json.JSONDecodeError:  # a line cut by a kill: ignored, the next event starts a new line
                    continue
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
        total = 0.0
        with open(self.path, encoding="utf-8") as fh:
            for line in fh:
                try:
                    e = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if e.get("event") == "node_end":
                    total += e.get("seconds", 0.0)
        return total

    def close(self) -> None:
        with self._lock:
            self._fh.close()
