"""Keep secrets out of everything the teacher writes: trace events, cache rows and error strings.

`Redactor` knows the secret values of this process (the API key env vars named by the config) and also masks
anything shaped like a key or an Authorization header, so a server that echoes a key in an error message cannot
leak it either.
"""
from __future__ import annotations

import os
import re
from typing import Any, Iterable

_MASK = "[REDACTED]"
_SHAPES = [
    re.compile(r"\bsk-[A-Za-z0-9_\-*]{4,}"),
    re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/=\-]+"),
    re.compile(r"(?i)((?:authorization|x-api-key|api[_-]?key)\s*[\"']?\s*[:=]\s*[\"']?)[^\s\"',}]+"),
    re.compile(r"(?<=://)[^/\s:@]+:[^/\s@]+(?=@)"),  # user:password@ in URLs
]


class Redactor:
    """Masks known secret values and key-shaped strings in text and in nested dicts/lists."""

    def __init__(self, env_names: Iterable[str] = ()) -> None:
        self.env_names = list(env_names)

    def secrets(self) -> list[str]:
        vals = (os.environ.get(n) for n in self.env_names)
        return sorted({v for v in vals if v and v != "EMPTY" and len(v) >= 6}, key=len, reverse=True)

    def text(self, s: str | None) -> str | None:
        if s is None:
            return None
        for secret in self.secrets():
            s = s.replace(secret, _MASK)
        for pat in _SHAPES:
            s = pat.sub((r"\1" + _MASK) if pat.groups else _MASK, s)
        return s

    def obj(self, o: Any) -> Any:
        if isinstance(o, str):
            return self.text(o)
        if isinstance(o, dict):
            return {k: self.obj(v) for k, v in o.items()}
        if isinstance(o, (list, tuple)):
            return type(o)(self.obj(v) for v in o)
        return o
