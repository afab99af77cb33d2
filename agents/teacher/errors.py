"""Exceptions of the teacher client.

`TeacherConfigError` is a user-caused configuration problem (unknown spec prefix, missing API key, a model the
server does not serve, a missing optional extra); it subclasses the project's `ConfigError`, so the CLI prints its
message as one line. `BudgetExhausted` means the run's teacher token budget is spent: the graph turns it into a clean
stop at a checkpoint; replies already paid for are in the cache, so a resumed run pays for none of them again.
"""
from __future__ import annotations

from typing import Any

from ioa_state.config import ConfigError


class TeacherConfigError(ConfigError):
    """A teacher that cannot work as configured; the message is one line and names the fix."""


class BudgetExhausted(RuntimeError):
    """The teacher token budget (`teacher.token_budget`) would be exceeded by the next call.

    `replies` holds the replies of the interrupted `ask` in request order (None where the call was not issued);
    `unanswered` counts those None entries.
    """

    def __init__(self, spent: int, budget: int, replies: list[Any] | None = None, unanswered: int = 0) -> None:
        self.spent = spent
        self.budget = budget
        self.replies = replies or []
        self.unanswered = unanswered
        super().__init__(
            f"teacher token budget exhausted: {spent} of {budget} tokens spent; "
            f"{unanswered} request(s) not sent (cached replies are still served)"
        )
