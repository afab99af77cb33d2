"""Concurrency and rate limits of teacher calls, enforced in one place.

`Limiter.slot(est_tokens)` is held around every remote request attempt: it waits for a free concurrency slot, for
room under requests-per-minute and tokens-per-minute (sliding 60 s windows), and for any server-requested pause
(`hold_off`, from a 429's Retry-After) to pass. The token estimate is replaced by the real count via `settle`.
"""
from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from typing import Callable, Iterator

WINDOW_S = 60.0


class _Slot:
    def __init__(self, limiter: "Limiter", event: list[float]) -> None:
        self._limiter, self._event = limiter, event

    def settle(self, tokens: int) -> None:
        """Record the tokens the request really used (replaces the estimate)."""
        with self._limiter._cond:
            self._event[1] = float(tokens)
            self._limiter._cond.notify_all()


class Limiter:
    """Concurrency + requests/min + tokens/min + server back-off, shared by all threads of one Teacher."""

    def __init__(self, concurrency: int, requests_per_minute: float | None = None,
                 tokens_per_minute: float | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.concurrency = concurrency
        self.rpm = requests_per_minute
        self.tpm = tokens_per_minute
        self._clock = clock
        self._sem = threading.BoundedSemaphore(concurrency)
        self._cond = threading.Condition()
        self._events: list[list[float]] = []  # [start time, tokens]
        self._pause_until = 0.0
        self.waited_s = 0.0  # total time requests spent waiting for rate limits (for reports)

    def hold_off(self, seconds: float) -> None:
        """Pause every new request for `seconds` (a server asked us to back off)."""
        with self._cond:
            self._pause_until = max(self._pause_until, self._clock() + seconds)

    def _wait_s(self, est_tokens: float) -> float:
        now = self._clock()
        self._events = [e for e in self._events if now - e[0] < WINDOW_S]
        waits = [self._pause_until - now]
        if self._events:
            oldest_free = self._events[0][0] + WINDOW_S - now
            if self.rpm is not None and len(self._events) >= self.rpm:
                # the request that frees a slot is the (len - rpm + 1)-th oldest
                k = int(len(self._events) - self.rpm)
                waits.append(self._events[max(k, 0)][0] + WINDOW_S - now)
            if self.tpm is not None and sum(e[1] for e in self._events) + est_tokens > self.tpm:
                waits.append(oldest_free)
        return max(waits)

    @contextmanager
    def slot(self, est_tokens: int = 0) -> Iterator[_Slot]:
        self._sem.acquire()
        try:
            with self._cond:
                t0 = self._clock()
                while (w := self._wait_s(est_tokens)) > 0:
                    self._cond.wait(timeout=min(w, 1.0))
                self.waited_s += self._clock() - t0
                event = [self._clock(), float(est_tokens)]
                self._events.append(event)
            yield _Slot(self, event)
        finally:
            self._sem.release()
