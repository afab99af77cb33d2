"""Token and cost accounting of teacher calls: per role (the state's `Usage`), per backend spec, and the budget.

Only paid calls (not cache hits) spend tokens. Before a call is sent, its estimated size (prompt estimate plus
max_tokens) is reserved against `teacher.token_budget`; a call whose reservation does not fit is not sent, so the
budget is never overrun by more than the estimate's error. Thread-safe.
"""
from __future__ import annotations

import threading

from agents.teacher.prices import PriceTable
from ioa_state.state import Usage


class Accounting:
    """Usage per role and per backend, and the run's token budget."""

    def __init__(self, prices: PriceTable, token_budget: int | None) -> None:
        self.prices = prices
        self.token_budget = token_budget
        self.by_role: dict[str, Usage] = {}
        self.by_backend: dict[str, Usage] = {}
        self.spent_tokens = 0
        self._reserved = 0
        self._lock = threading.Lock()

    def reserve(self, est_tokens: int) -> bool:
        """Hold est_tokens of the budget for a call about to be sent; False when that would exceed the budget."""
        with self._lock:
            if self.token_budget is not None and self.spent_tokens + self._reserved + est_tokens > self.token_budget:
                return False
            self._reserved += est_tokens
            return True

    def release(self, est_tokens: int) -> None:
        with self._lock:
            self._reserved = max(0, self._reserved - est_tokens)

    def _both(self, role: str, spec: str) -> tuple[Usage, Usage]:
        return self.by_role.setdefault(role, Usage()), self.by_backend.setdefault(spec, Usage())

    def record_cached(self, role: str, spec: str) -> None:
        with self._lock:
            for u in self._both(role, spec):
                u.cached += 1

    def record_call(self, role: str, spec: str, backend: str, model: str, tokens_in: int, tokens_out: int,
                    retries: int, failed: bool, sent: bool = True) -> float:
        """Count one call (after its retries; `sent` False: dropped before sending); returns its cost in $."""
        cost = self.prices.cost(backend, model, tokens_in, tokens_out)
        with self._lock:
            self.spent_tokens += tokens_in + tokens_out
            for u in self._both(role, spec):
                u.calls += int(sent)
                u.tokens_in += tokens_in
                u.tokens_out += tokens_out
                u.retries += retries
                u.failures += int(failed)
                u.cost_usd += cost
        return cost

    def restore(self, usage: dict[str, Usage]) -> None:
        """Continue from usage saved in a checkpoint (a resumed run keeps its budget spent)."""
        with self._lock:
            self.by_role = {k: v.model_copy() for k, v in usage.items()}
            self.spent_tokens = sum(u.tokens_in + u.tokens_out for u in usage.values())

    def snapshot(self) -> tuple[dict[str, Usage], dict[str, Usage]]:
        with self._lock:
            return ({k: v.model_copy() for k, v in self.by_role.items()},
                    {k: v.model_copy() for k, v in self.by_backend.items()})
