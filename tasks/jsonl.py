"""A task pack from any JSONL file of records (one JSON object a line; a single JSON array of objects also works).

`TaskConfig.prompt_field`, `answer_field` and `category_field` name the columns. A record without a reference (the
field missing, null or empty) gets `reference=None`: downstream, the teacher's greedy answer is its reference. A field
the config names explicitly must exist in the records; the defaults ("answer", "category") may be absent. List values
are joined with newlines (e.g. MBPP's test_list as the reference of a "code" item). Records with "test" and
"entry_point" fields keep them in meta, so HumanEval-style files work with checker "code".

Checker "auto" picks: numeric when every reference is one number (GSM8K "... #### 72" included), contains when every
reference is short (at most 5 words), rouge otherwise, and rouge when there are no references at all.
"""
from __future__ import annotations

import json
from pathlib import Path

from ioa_state import ConfigError, Item, TaskConfig
from tasks import checkers
from tasks.base import TaskPack

__all__ = ["JsonlPack", "auto_checker"]

SHORT_WORDS = 5


def auto_checker(references: list[str | None]) -> str:
    """The checker "auto" resolves to for these references."""
    refs = [r for r in references if r is not None]
    if not refs:
        return "rouge"
    if all(checkers.is_number(r) for r in refs):
        return "numeric"
    if all(len(r.split()) <= SHORT_WORDS for r in refs):
        return "contains"
    return "rouge"


def _text(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, list) and all(isinstance(v, (str, int, float)) for v in value):
        return "\n".join(str(v) for v in value) or None
    return json.dumps(value, ensure_ascii=False)


class JsonlPack(TaskPack):
    """Items from a user's JSONL file; columns mapped by the task config."""

    name = "jsonl"
    checker = "rouge"

    def __init__(self, task: TaskConfig):
        super().__init__(task)
        if not task.path:
            raise ConfigError("the jsonl pack needs task.path: set it to the JSONL file of your records")
        self.path = Path(task.path).expanduser()
        if not self.path.is_file():
            raise ConfigError(f"task.path {self.path} not found: give the path of an existing JSONL file")
        self._records = self._read()
        self._all_items = self._build()
        self.checker = task.checker if task.checker != "auto" else auto_checker(
            [it.reference for it in self._all_items])

    def _apply_checker_override(self) -> None:  # any checker fits a user's file; "auto" is resolved in __init__
        return

    def _read(self) -> list[tuple[int, dict]]:
        text = self.path.read_text(encoding="utf-8-sig")
        if text.lstrip().startswith("["):
            try:
                data = json.loads(text)
            except json.JSONDecodeError as e:
                raise ConfigError(f"{self.path} is not valid JSON ({e.msg} at line {e.lineno}): fix the file") from None
            rows = list(enumerate(data, start=1))
        else:
            rows = []
            for n, line in enumerate(text.splitlines(), start=1):
                if not line.strip():
                    continue
                try:
                    rows.append((n, json.loads(line)))
                except json.JSONDecodeError as e:
                    raise ConfigError(f"{self.path} line {n} is not valid JSON ({e.msg}): fix or remove that line") \
                        from None
        for n, rec in rows:
            if not isinstance(rec, dict):
                raise ConfigError(f"{self.path} record {n} is a {type(rec).__name__}, not an object: "
                                  f"write one JSON object per line")
        if not rows:
            raise ConfigError(f"{self.path} has no records: add one JSON object per line")
        return rows

    def _field(self, attr: str) -> str | None:
        """The column named by task.<attr>, or None when it is unset, or a default absent from every record."""
        field = getattr(self.task, attr)
        if field is None:
            return None
        if any(field in rec for _, rec in self._records):
            return field
        if attr in self.task.model_fields_set:
            fields = sorted({k for _, rec in self._records for k in rec})
            raise ConfigError(f"no record in {self.path} has the field {field!r} (task.{attr}); the records have "
                              f"{', '.join(fields)}: set task.{attr} to one of them"
                              + (" or to null" if attr != "prompt_field" else ""))
        return None

    def _build(self) -> list[Item]:
        pfield = self.task.prompt_field
        afield, cfield = self._field("answer_field"), self._field("category_field")
        ids = [rec.get("id") for _, rec in self._records]
        use_ids = (all(isinstance(i, (str, int)) and str(i).strip() for i in ids)
                   and len({str(i) for i in ids}) == len(ids))
        stem = self.path.stem
        items = []
        for (n, rec), rid in zip(self._records, ids):
            if pfield not in rec:
                raise ConfigError(f"{self.path} record {n} has no field {pfield!r} (task.prompt_field); it has "
                                  f"{', '.join(sorted(rec))}: set task.prompt_field to the prompt column")
            prompt = _text(rec[pfield])
            if prompt is None:
                raise ConfigError(f"{self.path} record {n} has an empty {pfield!r}: give every record a prompt")
            meta: dict = {"source": self.path.name, "line": n}
            for key in ("test", "entry_point"):
                if isinstance(rec.get(key), str) and key not in (pfield, afield, cfield):
                    meta[key] = rec[key]
            items.append(Item(
                id=str(rid).strip() if use_ids else f"{stem}-{n:05d}",
                prompt=prompt,
                reference=_text(rec.get(afield)) if afield else None,
                category=_text(rec.get(cfield)) if cfield else None,
                meta=meta,
            ))
        return items

    def _load(self) -> list[Item]:
        return list(self._all_items)
