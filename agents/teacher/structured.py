"""Structured output: which way each backend is asked for JSON, and how replies are re-asked.

Modes, tried in order per backend until one is accepted by the server (probed once per run and remembered):
    openai             json_schema (with_structured_output) -> function_calling -> text
    openai-compatible  json_schema (vLLM serve, recent llama.cpp; older llama.cpp answers HTTP 500)
                       -> function_calling -> text
    hf, vllm           grammar (constrained decoding: xgrammar for hf:, vLLM's structured outputs for vllm:) -> text
In `text` mode the schema is shown in the prompt and the reply goes through the tolerant parser; in `grammar` mode the
schema travels with the request (`configurable.json_schema`) and the reply cannot leave it, so the prompt does not
repeat it. `hf` starts in `text` where xgrammar is not installed. In every mode the reply is kept as text (the tool
call's arguments, or the content), cached as text, and validated against the schema by the client, so a cached reply
parses exactly as a fresh one did. A reply that fails is re-asked with the error, except a grammar reply that is not
complete JSON: the grammar only lets a reply end once its JSON is closed, so it was cut at max_tokens, and asking
again with the same budget would only cut it again (`cut_reply`).
"""
from __future__ import annotations

import json
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage
from langchain_core.runnables import Runnable
from pydantic import BaseModel

from agents.teacher.retry import status_of

MODES_BY_BACKEND: dict[str, tuple[str, ...]] = {
    "openai": ("json_schema", "function_calling", "text"),
    "openai-compatible": ("json_schema", "function_calling", "text"),
    "hf": ("grammar", "text"),
    "vllm": ("grammar", "text"),
}
API_MODES = frozenset({"json_schema", "function_calling"})
GRAMMAR = "grammar"
SCHEMA_MODES = API_MODES | {GRAMMAR}  # the request carries the schema: it is part of the cache key
_REJECTION_WORDS = ("response_format", "json_schema", "tool", "function", "grammar", "structured")


def next_mode(backend: str, mode: str) -> str | None:
    modes = MODES_BY_BACKEND[backend]
    i = modes.index(mode) if mode in modes else len(modes)
    return modes[i + 1] if i + 1 < len(modes) else None


def first_mode(backend: str) -> str:
    """The mode a backend is tried in first: `hf` skips `grammar` when xgrammar is not installed."""
    modes = MODES_BY_BACKEND[backend]
    if backend == "hf" and modes[0] == GRAMMAR:
        from training.grammar import available

        if not available():
            return next_mode(backend, GRAMMAR) or "text"
    return modes[0]


def enforces_forms(backend: str) -> bool:
    """Does this backend generate a plain call's reply under its `form` (a regex)? The in-process ones do (`hf` with
    xgrammar installed, `vllm`): those whose first structured mode is the grammar; a remote server gets the prompt
    alone and its reply is parsed as it comes."""
    return first_mode(backend) == GRAMMAR


def cut_reply(text: str | None) -> bool:
    """Is a reply made under a grammar unfinished JSON (cut at max_tokens)? Only a cut reply is not JSON."""
    try:
        json.loads(text or "")
    except ValueError:
        return True
    return False


def ignored_format(mode: str, text: str | None) -> bool:
    """Did the server ignore a json_schema response_format? A server that enforces one always opens an object;
    prose with no "{" came from one that took the request and dropped the format (then the next mode is tried)."""
    return mode == "json_schema" and "{" not in (text or "")


def schema_json(schema: type[BaseModel]) -> dict:
    return schema.model_json_schema()


def schema_instruction(schema: type[BaseModel]) -> str:
    return ("Reply with only one JSON object (no prose, no code fence) that matches this JSON schema:\n"
            + json.dumps(schema_json(schema), ensure_ascii=False))


def with_instruction(messages: list[dict], schema: type[BaseModel]) -> list[dict]:
    """Append the schema instruction to the last user message (text mode)."""
    out = [dict(m) for m in messages]
    for m in reversed(out):
        if m.get("role") == "user":
            m["content"] = f"{m.get('content') or ''}\n\n{schema_instruction(schema)}"
            return out
    out.append({"role": "user", "content": schema_instruction(schema)})
    return out


def reask_messages(raw: str | None, error: str, mode: str) -> list[dict]:
    """The turn that shows the model its last reply and why it was not usable."""
    hint = " matching the JSON schema given above" if mode == "text" else " with every required field"
    return [
        {"role": "assistant", "content": raw or ""},
        {"role": "user", "content": f"That reply could not be used: {error}. "
                                    f"Reply again with only the corrected JSON object{hint}."},
    ]


def structured_runnable(chat: BaseChatModel, schema: type[BaseModel], mode: str) -> Runnable:
    """The backend's own structured-output runnable (returns {'raw', 'parsed', 'parsing_error'}). json_schema gets
    the schema as a dict: given the class, the openai SDK validates the reply itself and raises on a bad one, which
    would turn a re-askable reply into a failed call."""
    return chat.with_structured_output(schema_json(schema) if mode == "json_schema" else schema, method=mode,
                                       include_raw=True)


def message_text(result: Any) -> tuple[str, AIMessage | None]:
    """The reply text of an AIMessage or an include_raw dict: tool-call arguments as JSON, else the content."""
    msg = result.get("raw") if isinstance(result, dict) else result
    if not isinstance(msg, AIMessage):
        return ("" if msg is None else str(msg)), None
    if msg.tool_calls:
        return json.dumps(msg.tool_calls[0].get("args") or {}, ensure_ascii=False), msg
    if msg.invalid_tool_calls:
        args = msg.invalid_tool_calls[0].get("args")
        return (args if isinstance(args, str) else json.dumps(args)) or "", msg
    content = msg.content
    if isinstance(content, list):
        content = "".join(p.get("text", "") if isinstance(p, dict) else str(p) for p in content)
    return content or "", msg


_CHOICE_WORDS = ("choice", "'n'", '"n"', " n ", "n must", "n>1", "n > 1")


def _refused(exc: BaseException, words: tuple[str, ...]) -> bool:
    """Did the server refuse the request itself (not a transient fault): a client-error status (400, 415, 422, 501)
    that is not about the context length, or a 500 whose message names what it refused (`words`)?"""
    code = status_of(exc)
    text = str(exc).lower()
    if code in (400, 415, 422, 501):
        return "context" not in text
    return code == 500 and any(w in text for w in words)


def is_choices_rejection(exc: BaseException) -> bool:
    """Did the server refuse a request for several choices (`n` > 1) itself (llama.cpp's server: HTTP 400 or 500
    "Only one completion choice is allowed")?"""
    return _refused(exc, _CHOICE_WORDS)


def is_mode_rejection(exc: BaseException) -> bool:
    """Did the server refuse the structured-output request itself (not a transient fault)?"""
    return _refused(exc, _REJECTION_WORDS)
