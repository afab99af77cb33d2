"""Token and cost accounting of teacher calls: per role (the state's `Usage`), per backend spec, and the budget.

Only paid calls (not cache hits) spend tokens. Before a call is sent, its estimated size (prompt estimate plus
max_tokens) is reserved against `teacher.token_budget`; a call whose reservation does not fit is not sent, so the
budget is never overrun by more than the estimate's error. Thread-safe.

A run's spend is what its calls cost when first paid, however many times it was resumed. A resumed run restores the
usage of its last checkpoint, which misses the calls its killed attempt paid after that checkpoint; those are cache
hits now. `unrecorded` finds them among the cache rows this run paid for (agents/teacher/cache.py): the nodes run
one after another and each checkpoint's usage is taken when its node ends, so the checkpoint counts a prefix of the
run's paid rows (oldest first) and the rows it misses are the newest ones, per role, whose tokens make up the
difference. `restore` counts them as the calls they were (tokens, calls, cost: the budget stays honest) and marks
their keys owed: their cache hits on resume are not counted again, neither as tokens nor as cache hits. Every
resume recomputes this from its checkpoint and the cache, so repeated kills never count a call twice. A hit on a
row another run paid (a shared cache) costs nothing.
"""
from __future__ import annotations

import logging
import threading
from typing import Iterable

from agents.teacher.cache import PaidRow
from agents.teacher.prices import PriceTable
from ioa_state.state import Usage

log = logging.getLogger(__name__)


def unrecorded(usage: dict[str, Usage], paid: Iterable[PaidRow]) -> tuple[list[PaidRow], list[str]]:
    """The paid rows (oldest first) that `usage` does not count, and the roles whose usage matches no prefix of the
    rows (left as they are: usage from before payers were recorded, or a key another run stored first)."""
    by_role: dict[str, list[PaidRow]] = {}
    for r in paid:
        by_role.setdefault(r.role, []).append(r)
    missing: list[PaidRow] = []
    unmatched: list[str] = []
    for role, rows in by_role.items():
        u = usage.get(role, Usage())
        need_in = sum(r.tokens_in for r in rows) - u.tokens_in
        need_out = sum(r.tokens_out for r in rows) - u.tokens_out
        got_in = got_out = 0
        n = 0
        while (got_in, got_out) != (need_in, need_out) and n < len(rows) and got_in <= need_in and got_out <= need_out:
            n += 1
            got_in, got_out = got_in + rows[-n].tokens_in, got_out + rows[-n].tokens_out
        if (got_in, got_out) != (need_in, need_out):
            unmatched.append(role)
        elif n:
            missing.extend(rows[-n:])
    return missing, unmatched


class Accounting:
    """Usage per role and per backend, and the run's token budget."""

    def __init__(self, prices: PriceTable, token_budget: int | None) -> None:
        self.prices = prices
        self.token_budget = token_budget
        self.by_role: dict[str, Usage] = {}
        self.by_backend: dict[str, Usage] = {}
        self.spent_tokens = 0
        self._reserved = 0
        self._owed: set[str] = set()  # keys counted by restore() whose first hit on resume costs nothing more
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

    def restore(self, usage: dict[str, Usage], paid: Iterable[PaidRow] = ()) -> int:
        """Continue from usage saved in a checkpoint (a resumed run keeps its budget spent), plus the calls this run
        paid after that checkpoint (`paid`: every row the cache says this run paid for); returns their count."""
        missing, unmatched = unrecorded(usage, paid)
        if unmatched:
            log.warning("teacher usage of %s matches no prefix of the calls this run paid for; left as checkpointed",
                        ", ".join(sorted(unmatched)))
        with self._lock:
            self.by_role = {k: v.model_copy() for k, v in usage.items()}
            self._owed = set()
            for r in missing:
                u = self.by_role.setdefault(r.role, Usage())
                u.calls += 1
                u.tokens_in += r.tokens_in
                u.tokens_out += r.tokens_out
                u.cost_usd += self.prices.cost(r.backend, r.model, r.tokens_in, r.tokens_out)
                self._owed.add(r.key)
            self.spent_tokens = sum(u.tokens_in + u.tokens_out for u in self.by_role.values())
        return len(missing)

    def take_owed(self, key: str) -> bool:
        """True (once) for a cache hit on a call the restore already counted as paid."""
        with self._lock:
            if key in self._owed:
                self._owed.discard(key)
                return True
            return False

    def snapshot(self) -> tuple[dict[str, Usage], dict[str, Usage]]:
        with self._lock:
            return ({k: v.model_copy() for k, v in self.by_role.items()},
                    {k: v.model_copy() for k, v in self.by_backend.items()})
