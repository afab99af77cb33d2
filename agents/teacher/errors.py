"""Exceptions of the teacher client.

`TeacherConfigError` is a user-caused configuration problem (unknown spec prefix, missing API key, a model the
server does not serve, a missing optional extra); it subclasses the project's `ConfigError`, so the CLI prints its
message as one line. `BudgetExhausted` means the run's teacher token budget is spent: the graph turns it into a clean
stop at a checkpoint; replies already paid for are in the cache, so a resumed run pays for none of them again.
`TeacherUnavailable` means the teacher stopped answering: more calls of one batch failed (after their retries) than
`teacher.max_failure_share` allows. It is not a configuration error (the same config works once the server is back):
the node that asked raises, its last checkpoint is before it, and a resume redoes it from the cache.
"""
from __future__ import annotations

from typing import Any

from ioa_state.config import ConfigError

BUDGET_NOT_SENT = "not sent: the teacher-token budget is spent"  # a reply's error within Teacher.settling()


class TeacherConfigError(ConfigError):
    """A teacher that cannot work as configured; the message is one line and names the fix."""


class BudgetExhausted(RuntimeError):
    """The teacher token budget (`teacher.token_budget`) would be exceeded by the next call.

    `replies` holds the replies of the interrupted `ask` in request order (None where the call was not issued);
    `unanswered` counts those None entries. `state_update` is what the node the budget interrupted had recorded
    (the Adapter's dropped file of a round cut before any item was kept), merged into the state at the stop.
    """

    def __init__(self, spent: int, budget: int, replies: list[Any] | None = None, unanswered: int = 0) -> None:
        self.spent = spent
        self.budget = budget
        self.replies = replies or []
        self.unanswered = unanswered
        self.state_update: dict[str, Any] = {}  # what the interrupted node recorded, for the state of the stop
        super().__init__(
            f"teacher token budget exhausted: {spent} of {budget} tokens spent; "
            f"{unanswered} request(s) not sent (cached replies are still served)"
        )


class TeacherUnavailable(RuntimeError):
    """Too many calls of one batch failed after their retries: the teacher (a server, a model) is down.

    The message is one line naming the backend spec, the base URL when there is one, and the last error;
    `run_dir` is the run whose teacher it is (for the resume hint).
    """

    def __init__(self, spec: str, base_url: str | None, failed: int, total: int, share: float, error: str,
                 run_dir: Any = None, not_sent: int = 0) -> None:
        self.spec, self.base_url, self.failed, self.total, self.error = spec, base_url, failed, total, error
        self.run_dir, self.not_sent = run_dir, not_sent
        where = f" at {base_url}" if base_url else ""
        held = f", {not_sent} more not sent" if not_sent else ""
        super().__init__(
            f"teacher {spec}{where} is not answering: {failed} of {total} calls of one step failed after their "
            f"retries{held} (teacher.max_failure_share is {share:g}); last error: {error}"
        )
