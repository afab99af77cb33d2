"""Which teacher failures are worth retrying, and the tenacity policy that retries them.

Transient: timeouts, dropped connections, HTTP 408/409/429 and 5xx, a truncated or unparsable response body.
Overload (a timeout, HTTP 429 or 503; `overload_reason`) also halves the client's concurrency (limits.py).
Fatal for the whole backend (never retried, raised as `TeacherConfigError` by the client): 401, 403, 404 (wrong key,
no access, a model the server does not serve). Anything else (a 400, a bug) fails that one call.

The wait honours a server's `Retry-After` / `retry-after-ms` (capped), else bounded exponential backoff with jitter.
Each call may retry `max_retries` times, and every retry also spends one unit of the run's `RetryBudget`; once the
budget is spent, failures are no longer retried.
"""
from __future__ import annotations

import email.utils
import json
import random
import threading
import time
from dataclasses import dataclass
from typing import Callable

import httpx
import openai
from tenacity import RetryCallState, Retrying, retry_if_exception

FATAL_STATUS = frozenset({401, 403, 404})
TRANSIENT_STATUS = frozenset({408, 409, 425, 429})
OVERLOAD_STATUS = frozenset({429, 503})


@dataclass(frozen=True)
class RetryPolicy:
    """Backoff shape: exponential from initial_s doubling up to max_s, plus up to jitter_s random seconds."""

    initial_s: float = 0.5
    max_s: float = 20.0
    jitter_s: float = 0.5
    max_retry_after_s: float = 60.0


def status_of(exc: BaseException) -> int | None:
    code = getattr(exc, "status_code", None)
    return code if isinstance(code, int) else None


def retry_after_s(exc: BaseException) -> float | None:
    """Seconds a server asked us to wait (Retry-After in seconds or as an HTTP date, or retry-after-ms)."""
    resp = getattr(exc, "response", None)
    headers = getattr(resp, "headers", None)
    if headers is None:
        return None
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass
    ra = headers.get("retry-after")
    if not ra:
        return None
    try:
        return max(0.0, float(ra))
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(ra)
        except (TypeError, ValueError):
            return None
        return max(0.0, when.timestamp() - time.time())


def is_fatal(exc: BaseException) -> bool:
    return isinstance(exc, openai.APIStatusError) and status_of(exc) in FATAL_STATUS


def overload_reason(exc: BaseException) -> str | None:
    """Why a failure says the server is overloaded (a timeout, HTTP 429 or 503), or None when it does not."""
    if isinstance(exc, (openai.APITimeoutError, httpx.TimeoutException, TimeoutError)):
        return "timeout"
    if isinstance(exc, openai.APIStatusError) and status_of(exc) in OVERLOAD_STATUS:
        return f"HTTP {status_of(exc)}"
    return None


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, (openai.APITimeoutError, openai.APIConnectionError, httpx.TransportError, TimeoutError,
                        ConnectionError, json.JSONDecodeError, openai.APIResponseValidationError)):
        return True
    if isinstance(exc, openai.APIStatusError):
        code = status_of(exc) or 0
        return code in TRANSIENT_STATUS or code >= 500
    return False


class RetryBudget:
    """Run-level count of retries left; thread-safe."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.used = 0
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            if self.used >= self.total:
                return False
            self.used += 1
            return True

    @property
    def left(self) -> int:
        return max(0, self.total - self.used)


class _Stop:
    """Stop after max_retries retries of this call, or when the run's retry budget is spent."""

    def __init__(self, max_retries: int, budget: RetryBudget) -> None:
        self.max_retries, self.budget = max_retries, budget

    def __call__(self, state: RetryCallState) -> bool:
        if state.attempt_number > self.max_retries:
            return True
        return not self.budget.take()


class _Wait:
    """Retry-After when the server sent one (and tell the limiter to pause everyone), else exponential + jitter."""

    def __init__(self, policy: RetryPolicy, on_retry_after: Callable[[float], None] | None) -> None:
        self.policy = policy
        self.on_retry_after = on_retry_after

    def __call__(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        ra = retry_after_s(exc) if exc is not None else None
        if ra is not None:
            ra = min(ra, self.policy.max_retry_after_s)
            if self.on_retry_after is not None:
                self.on_retry_after(ra)
            return ra
        p = self.policy
        return min(p.max_s, p.initial_s * 2 ** (state.attempt_number - 1)) + random.uniform(0, p.jitter_s)


def make_retrying(policy: RetryPolicy, max_retries: int, budget: RetryBudget,
                  on_retry_after: Callable[[float], None] | None = None,
                  before_sleep: Callable[[RetryCallState], None] | None = None,
                  transient: Callable[[BaseException], bool] = is_transient) -> Retrying:
    """A tenacity Retrying for one call (re-raises the last error when it gives up)."""
    return Retrying(
        retry=retry_if_exception(transient),
        stop=_Stop(max_retries, budget),
        wait=_Wait(policy, on_retry_after),
        before_sleep=before_sleep,
        reraise=True,
    )
