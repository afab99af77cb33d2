"""Concurrency and rate limits of teacher calls, enforced in one place.

`Limiter.slot(est_tokens)` is held around every remote request attempt: it waits for a free concurrency slot, for
room under requests-per-minute and tokens-per-minute (sliding 60 s windows), and for any server-requested pause
(`hold_off`, from a 429's Retry-After) to pass. The token estimate is replaced by the real count via `settle`.

Adaptive concurrency (AIMD, as TCP and well-kept API clients do): the client reports each attempt's outcome on its
slot. An overload (a timeout, a 429, a 503) halves the requests allowed in flight, a run of `growth_after` successes
adds one, never below 1 nor above `concurrency`. Requests queued on an overloaded one-lane server time out together;
only the first overload reported by a request sent at the current limit halves it, so one burst halves once.
`on_change(old, new, reason)` is told of every change (the client traces it).
"""
from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from typing import Callable, Iterator

WINDOW_S = 60.0


class _Slot:
    def __init__(self, limiter: "Limiter", event: list[float], epoch: int) -> None:
        self._limiter, self._event, self.epoch = limiter, event, epoch

    def settle(self, tokens: int) -> None:
        """Record the tokens the request really used (replaces the estimate)."""
        with self._limiter._cond:
            self._event[1] = float(tokens)
            self._limiter._cond.notify_all()

    def succeeded(self) -> None:
        """The request was answered (adaptive concurrency may grow)."""
        self._limiter._success()

    def overloaded(self, reason: str) -> None:
        """The request timed out or the server said it is overloaded (adaptive concurrency halves)."""
        self._limiter._overload(self.epoch, reason)


def decrease(limit: int) -> int:
    """AIMD's multiplicative decrease: half, at least 1."""
    return max(1, limit // 2)


def increase(limit: int, ceiling: int) -> int:
    """AIMD's additive increase: one more, at most the ceiling."""
    return min(ceiling, limit + 1)


class Limiter:
    """Concurrency + requests/min + tokens/min + server back-off, shared by all threads of one Teacher."""

    def __init__(self, concurrency: int, requests_per_minute: float | None = None,
                 tokens_per_minute: float | None = None, clock: Callable[[], float] = time.monotonic, *,
                 adaptive: bool = False, growth_after: int = 8,
                 on_change: Callable[[int, int, str], None] | None = None) -> None:
        self.concurrency = concurrency
        self.rpm = requests_per_minute
        self.tpm = tokens_per_minute
        self._clock = clock
        self.adaptive = adaptive
        self.growth_after = growth_after
        self.on_change = on_change
        self.limit = concurrency  # requests allowed in flight now (== concurrency unless adaptive)
        self.in_flight = 0
        self._epoch = 0  # bumped by every decrease: overloads of requests sent before it are the same burst
        self._streak = 0
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

    def _change(self, new: int, reason: str) -> None:
        old, self.limit, self._streak = self.limit, new, 0
        self._cond.notify_all()
        if self.on_change is not None and new != old:
            self.on_change(old, new, reason)

    def _success(self) -> None:
        if not self.adaptive:
            return
        with self._cond:
            self._streak += 1
            if self._streak >= self.growth_after and self.limit < self.concurrency:
                self._change(increase(self.limit, self.concurrency), f"{self._streak} successes")

    def _overload(self, epoch: int, reason: str) -> None:
        if not self.adaptive:
            return
        with self._cond:
            self._streak = 0
            if epoch != self._epoch or self.limit == 1:
                return  # sent before the last decrease: that burst was already answered
            self._epoch += 1
            self._change(decrease(self.limit), reason)

    @contextmanager
    def slot(self, est_tokens: int = 0) -> Iterator[_Slot]:
        with self._cond:
            while self.in_flight >= self.limit:
                self._cond.wait()
            self.in_flight += 1
        try:
            with self._cond:
                t0 = self._clock()
                while (w := self._wait_s(est_tokens)) > 0:
                    self._cond.wait(timeout=min(w, 1.0))
                self.waited_s += self._clock() - t0
                event = [self._clock(), float(est_tokens)]
                self._events.append(event)
                epoch = self._epoch
            yield _Slot(self, event, epoch)
        finally:
            with self._cond:
                self.in_flight -= 1
                self._cond.notify_all()
