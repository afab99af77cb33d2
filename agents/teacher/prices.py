"""Teacher price table: US dollars per 1M input / output tokens, by model name.

The defaults are list prices of common OpenAI models (check them against your provider's page; they change).
Extend or override them with a dict, or a YAML/JSON file mapping model -> {input: $, output: $} (or [in, out]),
passed as `Teacher(..., prices=...)` or named by the IOA_TEACHER_PRICES environment variable. In-process models
(`hf:`, `vllm:`) cost nothing; a remote model missing from the table is counted at $0 with a warning, once.
"""
from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path
from typing import Mapping

log = logging.getLogger(__name__)

DEFAULT_PRICES: dict[str, tuple[float, float]] = {
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4o": (2.50, 10.00),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1-nano": (0.10, 0.40),
    "o3": (2.00, 8.00),
    "o3-mini": (1.10, 4.40),
    "o4-mini": (1.10, 4.40),
    "gpt-5": (1.25, 10.00),
    "gpt-5-mini": (0.25, 2.00),
    "gpt-5-nano": (0.05, 0.40),
}
LOCAL_BACKENDS = frozenset({"hf", "vllm"})
PRICES_ENV = "IOA_TEACHER_PRICES"


def _entry(model: str, v: object) -> tuple[float, float]:
    if isinstance(v, Mapping):
        pin, pout = v.get("input", v.get("in")), v.get("output", v.get("out"))
    elif isinstance(v, (list, tuple)) and len(v) == 2:
        pin, pout = v
    else:
        raise ValueError(f"price of {model!r} must be {{input: $, output: $}} or [in, out], got {v!r}")
    if pin is None or pout is None or float(pin) < 0 or float(pout) < 0:
        raise ValueError(f"price of {model!r} needs non-negative input and output prices, got {v!r}")
    return float(pin), float(pout)


def load_price_file(path: str | Path) -> dict[str, tuple[float, float]]:
    """Read a YAML or JSON price file (model -> {input, output} in $ per 1M tokens)."""
    p = Path(path).expanduser()
    text = p.read_text()
    if p.suffix.lower() == ".json":
        data = json.loads(text)
    else:
        import yaml

        data = yaml.safe_load(text) or {}
    if not isinstance(data, Mapping):
        raise ValueError(f"price file {p} must map model names to prices")
    return {str(k): _entry(str(k), v) for k, v in data.items()}


class PriceTable:
    """Looks prices up by exact model name, then by the longest known prefix (dated snapshots)."""

    def __init__(self, extra: Mapping | str | Path | None = None) -> None:
        self.prices: dict[str, tuple[float, float]] = dict(DEFAULT_PRICES)
        env = os.environ.get(PRICES_ENV)
        if env:
            self.prices.update(load_price_file(env))
        if isinstance(extra, (str, Path)):
            self.prices.update(load_price_file(extra))
        elif extra:
            self.prices.update({str(k): _entry(str(k), v) for k, v in extra.items()})
        self._warned: set[str] = set()
        self._lock = threading.Lock()

    def lookup(self, model: str) -> tuple[float, float] | None:
        if model in self.prices:
            return self.prices[model]
        best = max((k for k in self.prices if model.startswith(k + "-")), key=len, default=None)
        return self.prices[best] if best else None

    def cost(self, backend: str, model: str, tokens_in: int, tokens_out: int) -> float:
        if backend in LOCAL_BACKENDS:
            return 0.0
        price = self.lookup(model)
        if price is None:
            with self._lock:
                if model not in self._warned:
                    self._warned.add(model)
                    if backend == "openai":
                        log.warning("no price known for teacher model %r: its cost is counted as $0 "
                                    "(add it with a price file, see agents/teacher/prices.py)", model)
            return 0.0
        return (tokens_in * price[0] + tokens_out * price[1]) / 1_000_000
