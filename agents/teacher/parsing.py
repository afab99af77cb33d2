"""Tolerant JSON parsing for structured teacher replies that came back as free text.

Small models wrap JSON in code fences, add prose around it, leave trailing commas or use Python's single quotes and
True/False/None. `extract_json_object` finds the first JSON object in the text and repairs those slips;
`parse_structured` validates it against a pydantic schema and returns a short error fit to show the model in a
re-ask. Nothing here invents a value: what does not parse is reported, never replaced.
"""
from __future__ import annotations

import ast
import json
import re
from typing import Any

from pydantic import BaseModel, ValidationError

_FENCE = re.compile(r"```(?:json|JSON|javascript|js|python)?\s*\n?(.*?)```", re.S)
_TRAILING_COMMA = re.compile(r",(\s*[}\]])")


def _balanced_object(text: str) -> str | None:
    """The first balanced {...} in text, respecting single- and double-quoted strings; None if there is none."""
    start = text.find("{")
    while start != -1:
        depth, quote, escaped = 0, None, False
        for i in range(start, len(text)):
            ch = text[i]
            if quote:
                if escaped:
                    escaped = False
                elif ch == "\\":
                    escaped = True
                elif ch == quote:
                    quote = None
            elif ch in "\"'":
                quote = ch
            elif ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
                if depth == 0:
                    return text[start : i + 1]
        start = text.find("{", start + 1)
    return None


def _single_to_double_quotes(s: str) -> str:
    """Rewrite single-quoted strings as JSON strings, leaving double-quoted ones alone."""
    out, i = [], 0
    while i < len(s):
        ch = s[i]
        if ch in "\"'":
            j, buf, escaped = i + 1, [], False
            while j < len(s):
                c = s[j]
                if escaped:
                    buf.append(c)
                    escaped = False
                elif c == "\\":
                    buf.append(c)
                    escaped = True
                elif c == ch:
                    break
                else:
                    buf.append('\\"' if (c == '"' and ch == "'") else c)
                j += 1
            body = "".join(buf)
            if ch == "'":
                body = body.replace("\\'", "'")
            out.append('"' + body + '"')
            i = j + 1
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def _python_literals_to_json(s: str) -> str:
    """True/False/None outside strings -> true/false/null."""
    parts = re.split(r'("(?:[^"\\]|\\.)*")', s)
    for k in range(0, len(parts), 2):
        parts[k] = re.sub(r"\bTrue\b", "true", parts[k])
        parts[k] = re.sub(r"\bFalse\b", "false", parts[k])
        parts[k] = re.sub(r"\bNone\b", "null", parts[k])
    return "".join(parts)


def extract_json_object(text: str) -> dict[str, Any]:
    """The first JSON object in `text`, repaired where the slip is unambiguous; ValueError when there is none."""
    if text is None:
        raise ValueError("empty reply")
    candidates: list[str] = [m.group(1) for m in _FENCE.finditer(text)] + [text]
    last_error = "no JSON object found in the reply"
    for chunk in candidates:
        obj = _balanced_object(chunk)
        if obj is None:
            if "{" in chunk:
                last_error = "the JSON object in the reply is not closed (reply cut off?)"
            continue
        attempts = [obj, _TRAILING_COMMA.sub(r"\1", obj)]
        fixed = _python_literals_to_json(_single_to_double_quotes(_TRAILING_COMMA.sub(r"\1", obj)))
        attempts.append(fixed)
        for a in attempts:
            try:
                value = json.loads(a)
            except json.JSONDecodeError as e:
                last_error = f"invalid JSON: {e.msg} at char {e.pos}"
                continue
            if isinstance(value, dict):
                return value
        try:
            value = ast.literal_eval(obj)
            if isinstance(value, dict):
                return value
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            pass
    raise ValueError(last_error)


def validation_summary(err: ValidationError, limit: int = 5) -> str:
    """A compact, model-readable list of what failed validation."""
    parts = []
    for e in err.errors()[:limit]:
        loc = ".".join(str(x) for x in e["loc"]) or "(object)"
        parts.append(f"{loc}: {e['msg']}")
    more = len(err.errors()) - limit
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


def parse_structured(text: str | None, schema: type[BaseModel]) -> tuple[BaseModel | None, str | None]:
    """(value, None) when text holds an object valid for schema, else (None, why)."""
    if not text or not text.strip():
        return None, "empty reply"
    try:
        return schema.model_validate_json(text.strip()), None
    except ValidationError:
        pass
    try:
        data = extract_json_object(text)
    except ValueError as e:
        return None, str(e)
    try:
        return schema.model_validate(data), None
    except ValidationError as e:
        return None, f"does not match the schema: {validation_summary(e)}"
