"""The TaskPack base: a domain's items, its checker, its prompt format and its seed/probe/test split.

A pack subclass loads its items in source order (`_load`); the base applies `TaskConfig.limit`, decides the split
sizes (explicit n_seed/n_probe/n_test, else the pack's defaults, else shares of what there is) and assigns every kept
item a split, deterministically from `TaskConfig.split_seed`. The assignment is stratified by category where items
have one, so each split holds every category in proportion. `check` scores an answer with the pack's checker
(tasks.checkers; "code" runs the program in tasks.sandbox). Problems the user can fix raise ioa_state.ConfigError
with one line that says what to do.
"""
from __future__ import annotations

import random
import re
from abc import ABC, abstractmethod
from collections import Counter, defaultdict

from ioa_state import ConfigError, Item, TaskConfig
from tasks import checkers

__all__ = ["TaskPack", "SPLITS", "CHECKER_NAMES"]

SPLITS = ("seed", "probe", "test")
CHECKER_NAMES = ("contains", "numeric", "exact", "rouge", "code")
_MIN_SIZES = (1, 2, 1)  # the probe split is halved into gate and remedial-source parts downstream


class TaskPack(ABC):
    """A task pack (algorithm §0). Subclasses set `name`, `checker`, optionally `context`, and implement `_load`."""

    name: str = "pack"
    checker: str = "contains"
    context: str | None = None
    default_sizes: tuple[int, int, int] | None = None  # seed, probe, test when the config leaves them unset
    default_fractions: tuple[float, float, float] = (0.2, 0.5, 0.3)  # used when default_sizes do not fit
    code_timeout_s: float = 5.0
    code_memory_mb: int = 512

    def __init__(self, task: TaskConfig | None = None):
        self.task = task if task is not None else TaskConfig(pack=self.name)
        self._items: list[Item] | None = None
        self._apply_checker_override()

    # -- to implement ---------------------------------------------------------------------------------------------
    @abstractmethod
    def _load(self) -> list[Item]:
        """Every item of the pack in source order, `split` unset; ids unique and stable across runs."""

    # -- public interface -----------------------------------------------------------------------------------------
    def items(self) -> list[Item]:
        """The kept items, each with `split` set to "seed", "probe" or "test" (same result for the same config)."""
        if self._items is None:
            self._items = self._split(self._loaded())
        return list(self._items)

    def split(self, name: str) -> list[Item]:
        """The items of one split, in source order."""
        if name not in SPLITS:
            raise ValueError(f"unknown split {name!r}; choose one of {SPLITS}")
        return [it for it in self.items() if it.split == name]

    def format_prompt(self, item: Item) -> str:
        """The user message the model sees for this item."""
        return item.prompt

    def check(self, item: Item, answer: str | None) -> float:
        """The answer's score in [0, 1] against the item's reference (or its tests, for code)."""
        if self.checker == "code":
            return self._check_code(item, answer)
        if item.reference is None:
            raise ValueError(f"item {item.id} has no reference: score it against the teacher's answer "
                             f"(set item.reference) before checking")
        return checkers.score(self.checker, answer, item.reference)

    def describe(self) -> dict:
        """A short summary for logs and reports."""
        items = self.items()
        return {"pack": self.name, "checker": self.checker, "items": len(items),
                "splits": {s: sum(it.split == s for it in items) for s in SPLITS},
                "categories": len({it.category for it in items if it.category}),
                "with_reference": sum(it.reference is not None for it in items),
                "context": self.context is not None}

    # -- code checking --------------------------------------------------------------------------------------------
    def code_program(self, item: Item, answer: str | None) -> str:
        """The program that tests an answer: its code, then the item's tests (meta "test", else the reference),
        then `check(<entry_point>)` when the tests define a check function and the item names an entry point."""
        entry = item.meta.get("entry_point")
        tests = item.meta.get("test") or item.reference
        if not tests:
            raise ValueError(f"item {item.id} has no tests (meta 'test' or a reference) to run the code against")
        program = checkers.extract_code(answer, entry) + "\n\n" + tests + "\n"
        if entry and re.search(r"^def\s+check\s*\(", tests, re.MULTILINE):
            program += f"\ncheck({entry})\n"
        return program

    def preflight(self) -> None:
        """Fail now, in one line, where this pack's checker cannot work here: a code pack checks that its sandbox
        starts Python (tasks.sandbox.SandboxUnavailable), so a broken box never scores every answer 0."""
        if self.checker == "code":
            from tasks.sandbox import ensure_available

            ensure_available(memory_mb=self.code_memory_mb)

    def _check_code(self, item: Item, answer: str | None) -> float:
        from tasks.sandbox import run_code

        if not answer or not answer.strip():
            return 0.0
        res = run_code(self.code_program(item, answer), timeout_s=self.code_timeout_s, memory_mb=self.code_memory_mb)
        return 1.0 if res.passed else 0.0

    # -- internals ------------------------------------------------------------------------------------------------
    def _apply_checker_override(self) -> None:
        want = self.task.checker
        if want == "auto" or want == self.checker:
            return
        if self.checker == "code" or want == "code":
            raise ConfigError(f"task pack {self.name!r} is scored with the {self.checker!r} checker and cannot use "
                              f"{want!r}: set task.checker to auto or {self.checker}")
        self.checker = want

    def _loaded(self) -> list[Item]:
        items = self._load()
        if self.task.limit is not None:
            items = items[: self.task.limit]
        if not items:
            raise ConfigError(f"task pack {self.name!r} has no items: check the data file (task.path) and task.limit")
        dup = [i for i, n in Counter(it.id for it in items).items() if n > 1]
        if dup:
            raise ConfigError(f"task pack {self.name!r} has duplicate item ids (e.g. {dup[0]!r}): make ids unique")
        return items

    def split_sizes(self, n: int) -> tuple[int, int, int]:
        """(seed, probe, test) sizes for n available items; raises ConfigError when they cannot be met."""
        want: list[int | None] = [self.task.n_seed, self.task.n_probe, self.task.n_test]
        free = [i for i in range(3) if want[i] is None]
        fixed = sum(w for w in want if w is not None)
        if free:
            if self.default_sizes and fixed + sum(self.default_sizes[i] for i in free) <= n:
                for i in free:
                    want[i] = self.default_sizes[i]
            else:
                rest = max(0, n - fixed)
                weights = [self.default_fractions[i] for i in free]
                raw = [rest * w / sum(weights) for w in weights]
                shares = [int(x) for x in raw]
                for j in sorted(range(len(free)), key=lambda j: raw[j] - shares[j], reverse=True)[: rest - sum(shares)]:
                    shares[j] += 1
                # lift any share below its minimum by taking from the largest share, where there is room
                for j, i in enumerate(free):
                    while shares[j] < _MIN_SIZES[i]:
                        k = max(range(len(free)), key=lambda k: shares[k] - _MIN_SIZES[free[k]])
                        if k == j or shares[k] <= _MIN_SIZES[free[k]]:
                            break
                        shares[k] -= 1
                        shares[j] += 1
                for j, i in enumerate(free):
                    want[i] = shares[j]
        sizes = tuple(int(w) for w in want)  # type: ignore[arg-type]
        if sum(sizes) > n or any(s < m for s, m in zip(sizes, _MIN_SIZES)):
            raise ConfigError(self._too_few(n))
        return sizes  # type: ignore[return-value]

    def _too_few(self, n: int) -> str:
        """The one line for splits that cannot be met: how many items they need at least, and how many there are."""
        given = [self.task.n_seed, self.task.n_probe, self.task.n_test]
        low = [
            f"task.n_{s}={g} (at least {m})" for s, g, m in zip(SPLITS, given, _MIN_SIZES) if g is not None and g < m
        ]
        if low:
            return f"task pack {self.name!r}: {', '.join(low)} is too small a split: raise it or leave it unset"
        need = [g if g is not None else m for g, m in zip(given, _MIN_SIZES)]
        parts = " + ".join(f"{s} {k}" for s, k in zip(SPLITS, need))
        limit = f" (task.limit={self.task.limit})" if self.task.limit else ""
        return (f"task pack {self.name!r} has {n} items{limit} but the splits need at least {sum(need)} ({parts}"
                f"{', as task.n_seed/n_probe/n_test set them' if any(g is not None for g in given) else ''}): "
                f"give the pack more items or lower task.n_seed/n_probe/n_test")

    def _split(self, items: list[Item]) -> list[Item]:
        n_seed, n_probe, n_test = self.split_sizes(len(items))
        rng = random.Random(f"ioa-split:{self.name}:{self.task.split_seed}")
        order = list(range(len(items)))
        rng.shuffle(order)
        # Stratify: the r-th (shuffled) item of a category of size m gets key (r + 0.5) / m, so every prefix of the
        # sorted order holds each category in proportion; ties break at random (fixed by the seed).
        by_cat: dict[str | None, list[int]] = defaultdict(list)
        for idx in order:
            by_cat[items[idx].category].append(idx)
        key: dict[int, tuple[float, float]] = {}
        for members in by_cat.values():
            for r, idx in enumerate(members):
                key[idx] = ((r + 0.5) / len(members), rng.random())
        ranked = sorted(order, key=lambda idx: key[idx])
        assign: dict[int, str] = {}
        bounds = [("seed", n_seed), ("probe", n_probe), ("test", n_test)]
        pos = 0
        for split, size in bounds:
            for idx in ranked[pos:pos + size]:
                assign[idx] = split
            pos += size
        return [items[i].model_copy(update={"split": assign[i]}) for i in range(len(items)) if i in assign]
