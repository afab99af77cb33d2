"""Progress bars for the long steps of a run: teacher batches, exams and training rounds (tqdm, on stderr).

Each helper returns a plain callback for the library code to call (`Teacher(progress=...)`,
`generate(on_batch=...)`, `train_sft(progress=...)`), so nothing under training/ or the teacher client imports
tqdm. A bar shows done of total, the rate, tokens per second and the time left; it is drawn only when its stream
is a terminal (`disable=not stream.isatty()`), so logs, pipes, CI and tests get no bar text at all.
"""
from __future__ import annotations

import sys
import threading
import time
from typing import Callable, TextIO

from tqdm import tqdm


def _tty(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # a closed or odd stream
        return False


class Bar:
    """One tqdm bar that also shows tokens per second (thread-safe)."""

    def __init__(self, desc: str, total: int, unit: str, stream: TextIO | None = None) -> None:
        stream = stream if stream is not None else sys.stderr
        self.bar = tqdm(total=total, desc=desc, unit=unit, file=stream, disable=not _tty(stream), leave=False,
                        dynamic_ncols=True, mininterval=0.5)
        self.done, self.total, self.tokens = 0, total, 0
        self._t0 = time.monotonic()
        self._lock = threading.Lock()

    def to(self, done: int, tokens: int = 0, **postfix) -> None:
        """Move to `done` of total, adding `tokens` generated since the last call."""
        with self._lock:
            self.tokens += tokens
            step, self.done = max(0, done - self.done), max(self.done, done)
            elapsed = time.monotonic() - self._t0
            if self.tokens and elapsed > 0:
                postfix["tok/s"] = f"{self.tokens / elapsed:.0f}"
            if postfix:
                self.bar.set_postfix(postfix, refresh=False)
            self.bar.update(step)

    def close(self) -> None:
        with self._lock:
            self.bar.refresh()  # the final count, drawn once even within mininterval, then the bar is cleared
            self.bar.close()


def teacher_progress(stream: TextIO | None = None) -> Callable[[int, int, int], None]:
    """The teacher client's hook `(done, total, tokens_out)`: a bar per batch, opened at done 0, closed at total."""
    lock = threading.Lock()
    current: list[Bar | None] = [None]

    def hook(done: int, total: int, tokens: int) -> None:
        with lock:
            if done == 0 or current[0] is None:
                if current[0] is not None:
                    current[0].close()
                current[0] = Bar("teacher", total, "call", stream)
            bar = current[0]
            bar.to(done, tokens)
            if done >= total:
                bar.close()
                current[0] = None

    return hook


def exam_bar(desc: str, total: int, stream: TextIO | None = None) -> tuple[Bar, Callable[[int, int, int], None]]:
    """A bar for generating `total` answers, and the `on_batch(done_rows, total_rows, new_tokens)` that moves it."""
    bar = Bar(desc, total, "answer", stream)
    return bar, lambda done, _total, tokens: bar.to(done, tokens)


def train_progress(desc: str, also: Callable[[int, int, float], None] | None = None,
                   stream: TextIO | None = None) -> Callable[[int, int, float], None]:
    """train_sft's `progress(step, total, loss)`: a bar over the round's optimizer steps (opened at the first step,
    closed at the last), then `also` (e.g. the run's progress lines)."""
    current: list[Bar | None] = [None]

    def hook(step: int, total: int, loss: float) -> None:
        if current[0] is None:
            current[0] = Bar(desc, total, "step", stream)
        current[0].to(step, loss=f"{loss:.3f}")
        if step >= total:
            current[0].close()
            current[0] = None
        if also is not None:
            also(step, total, loss)

    return hook
