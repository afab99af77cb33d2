"""A small OpenAI-compatible chat-completions server for tests and benchmarks.

`OpenAIServer` runs a threaded stdlib HTTP server on 127.0.0.1 (a free port chosen by the OS) and answers
`POST /v1/chat/completions` (and `GET /v1/models`) from a reply callable, so the teacher client can be tested
against the real wire protocol through langchain-openai and the openai SDK:

    with OpenAIServer(scripted(["Paris"]), models=["m"]) as srv:
        ChatOpenAI(base_url=srv.base_url, model="m", api_key="EMPTY").invoke("capital of France?")

What it supports, minimally: `tools` with a forced or free `tool_choice` (the reply text becomes the first tool's
arguments; `reject_tools` answers 400 instead), `response_format` json_schema by the `json_schema` switch:

    "ignore"      the default: the replier's text, whatever the schema (a server that ignores response_format)
    "reject"      HTTP 500 "response_format type must be one of "text" or "json_object"" (llama.cpp's server;
                  `reject_json_schema=True` is the same)
    "reject_400"  HTTP 400 with that message (a server that validates the request first)
    "accept"      the reply is a JSON object valid for the request's schema (`schema_instance`), as a server that
                  enforces it (vLLM serve, recent llama.cpp) would give; `json_schema_served` counts them

and `n` choices per request by the `choices` switch:

    "accept"      the default: n replies (the replier called once per choice, `body["choice"]` its index), the
                  prompt counted once in `usage` and the choices' completion tokens added up (OpenAI, vLLM serve)
    "reject"      HTTP 400 "Only one completion choice is allowed" when n > 1 (llama.cpp's server)
    "reject_500"  the same as HTTP 500
    "ignore"      one choice whatever n (a server that ignores n)

and `usage` in every reply (whitespace token counts unless the replier says otherwise), a fixed
latency per request, a request counter and the most requests served at once (`max_in_flight`). Faults are queued
with `inject(...)` (or `faults=` at construction) and consumed one per chat request in arrival order:

    "429"        HTTP 429 with a Retry-After header (seconds, `retry_after`)
    "503"        HTTP 503 with a Retry-After header
    "500"        HTTP 500
    "hang"       the server sleeps `hang_s` before answering (past the client's timeout)
    "truncated"  HTTP 200 whose JSON body is cut in half
    "bad_schema" a valid reply whose content / tool arguments is JSON that fails the caller's schema
    "disconnect" the connection is closed without any response

Two load modes reproduce an overloaded or dead server:

    lanes=1, latency_s=0.1     serves `lanes` requests at a time, each taking `latency_s`; the rest queue (the time
                               queued counts toward the client's timeout, and a request the client gave up on is
                               still served, as llama.cpp's one-slot server does)
    fault_rate=0.3             each request without a queued fault draws one of `random_faults` with this
                               probability (seeded by `seed`: the same draws every run)
    die_after=N                after N chat requests, every request is dropped without a response (a server that
                               died mid-run); set `die_after = None` to bring it back

A request naming a model the server does not serve gets HTTP 404 (`model_not_found`), as OpenAI answers.
`model_replier` serves a real local model through `training.generate` (one request at a time, as llama.cpp does).
"""
from __future__ import annotations

import json
import random
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Iterable

FAULTS = ("429", "503", "500", "hang", "truncated", "bad_schema", "disconnect")
JSON_SCHEMA_MODES = ("ignore", "reject", "reject_400", "accept")
CHOICES_MODES = ("accept", "reject", "reject_500", "ignore")
LLAMA_CPP_REJECTION = 'response_format type must be one of "text" or "json_object"'
LLAMA_CPP_CHOICES = "Only one completion choice is allowed"
BAD_SCHEMA_JSON = '{"unexpected_field": true}'


@dataclass
class Reply:
    """What a replier returns when it knows its own token counts."""

    content: str
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


Replier = Callable[[dict], "str | Reply"]


def echo(body: dict) -> str:
    """Default replier: echoes the last user message."""
    users = [m for m in body.get("messages", []) if m.get("role") == "user"]
    return f"echo: {_text(users[-1].get('content')) if users else ''}"


def scripted(replies: Iterable[str], *, cycle: bool = True) -> Replier:
    """A replier that returns the given replies in order (cycling by default); thread-safe."""
    items = list(replies)
    lock = threading.Lock()
    state = {"i": 0}

    def reply(body: dict) -> str:
        with lock:
            i = state["i"]
            state["i"] += 1
        if i >= len(items) and not cycle:
            raise IndexError("scripted replier ran out of replies")
        return items[i % len(items)]

    return reply


def model_replier(model: Any, tokenizer: Any, *, max_new_tokens_cap: int = 64) -> Replier:
    """Serve a real local model through training.generate, one request at a time (like llama.cpp's server); a
    `response_format` json_schema is enforced by the grammar (as vLLM serve and recent llama.cpp servers do)."""
    from training.generate import generate

    lock = threading.Lock()

    def reply(body: dict) -> Reply:
        conv = [{"role": m["role"], "content": _text(m.get("content"))} for m in body.get("messages", [])]
        n = body.get("max_tokens") or body.get("max_completion_tokens") or 16
        temp = float(body.get("temperature") or 0.0)
        seed = body.get("seed")
        if body.get("choice"):  # the j-th of n choices: its own sample
            seed = int(seed or 0) + int(body["choice"])
        rf = body.get("response_format") or {}
        schema = (rf.get("json_schema") or {}).get("schema") if rf.get("type") == "json_schema" else None
        with lock:
            (gen,) = generate(model, tokenizer, [conv], max_new_tokens=min(int(n), max_new_tokens_cap),
                              temperature=temp, seeds=[int(seed)] if seed is not None else None, batch_size=1,
                              constraints=[schema] if schema else None)
        return Reply(gen.text, gen.tokens_in, gen.tokens_out)

    return reply


def schema_instance(schema: dict, defs: dict | None = None) -> Any:
    """A small value valid for a JSON schema (objects, arrays, strings with maxLength, bounded numbers, enums, refs,
    anyOf): what a server enforcing the schema could answer."""
    defs = {**(defs or {}), **(schema.get("$defs") or {})}
    if "$ref" in schema:
        return schema_instance(defs[schema["$ref"].rsplit("/", 1)[-1]], defs)
    if "enum" in schema:
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    for key in ("anyOf", "oneOf", "allOf"):
        if schema.get(key):
            return schema_instance(schema[key][0], defs)
    kind = schema.get("type", "object")
    kind = kind[0] if isinstance(kind, list) else kind
    if kind == "object":
        props = schema.get("properties") or {}
        return {k: schema_instance(v, defs) for k, v in props.items()}
    if kind == "array":
        return [schema_instance(schema.get("items") or {}, defs) for _ in range(int(schema.get("minItems", 1)))]
    if kind == "string":
        return "ok"[: schema.get("maxLength", 2)].ljust(int(schema.get("minLength", 0)), "k")
    if kind in ("integer", "number"):
        low = schema.get("minimum", schema.get("exclusiveMinimum", 0))
        value = max(low, min(schema.get("maximum", low), 1))
        return int(value) if kind == "integer" else float(value)
    if kind == "boolean":
        return True
    return None


def _text(content: Any) -> str:
    if isinstance(content, list):  # content parts
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return "" if content is None else str(content)


class OpenAIServer:
    """Threaded OpenAI-compatible test server; a context manager that starts and stops it."""

    def __init__(
        self,
        reply: Replier | None = None,
        *,
        models: Iterable[str] = ("test-model",),
        latency_s: float = 0.0,
        faults: Iterable[str] = (),
        retry_after: float = 1,
        hang_s: float = 5.0,
        reject_json_schema: bool = False,
        reject_tools: bool = False,
        lanes: int | None = None,
        fault_rate: float = 0.0,
        random_faults: Iterable[str] = ("500",),
        seed: int = 0,
        die_after: int | None = None,
        json_schema: str = "ignore",
        choices: str = "accept",
    ) -> None:
        if json_schema not in JSON_SCHEMA_MODES:
            raise ValueError(f"unknown json_schema mode {json_schema!r}; known: {', '.join(JSON_SCHEMA_MODES)}")
        if choices not in CHOICES_MODES:
            raise ValueError(f"unknown choices mode {choices!r}; known: {', '.join(CHOICES_MODES)}")
        self.choices = choices
        self.reply = reply or echo
        self.models = set(models)
        self.latency_s = latency_s
        self.retry_after = retry_after
        self.hang_s = hang_s
        self.json_schema = "reject" if reject_json_schema else json_schema
        self.json_schema_served = 0  # replies made for a json_schema response_format ("accept")
        self.reject_tools = reject_tools
        self.lanes = threading.Semaphore(lanes) if lanes else None
        self.fault_rate = fault_rate
        self.random_faults = tuple(random_faults)
        self._rng = random.Random(seed)
        self.die_after = die_after
        self.in_flight = 0
        self.max_in_flight = 0  # most chat requests being served at once
        self._faults: deque[str] = deque()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.requests = 0  # chat-completion requests received (faulty ones included)
        self.bodies: list[dict] = []
        self.headers: list[dict] = []
        self.fault_log: list[str] = []
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.inject(*faults)

    # -- control -------------------------------------------------------------------------------------------------
    def inject(self, *faults: str) -> None:
        """Queue faults; each is served instead of (or around) the next chat request, in arrival order."""
        for f in faults:
            if f not in FAULTS:
                raise ValueError(f"unknown fault {f!r}; known: {', '.join(FAULTS)}")
        with self._lock:
            self._faults.extend(faults)

    def reset_counts(self) -> None:
        with self._lock:
            self.requests = 0
            self.bodies.clear()
            self.headers.clear()
            self.fault_log.clear()
            self.max_in_flight = 0

    @property
    def port(self) -> int:
        assert self._httpd is not None, "server not started"
        return self._httpd.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> "OpenAIServer":
        handler = type("Handler", (_Handler,), {"owner": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> "OpenAIServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- request handling (called from handler threads) ----------------------------------------------------------
    def _enter(self, delta: int) -> None:
        with self._lock:
            self.in_flight += delta
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def _next_fault(self, body: dict, headers: dict) -> str | None:
        with self._lock:
            self.requests += 1
            self.bodies.append(body)
            self.headers.append(headers)
            fault = self._faults.popleft() if self._faults else None
            if fault is None and self.fault_rate and self._rng.random() < self.fault_rate:
                fault = self._rng.choice(self.random_faults)
            if self.die_after is not None and self.requests > self.die_after:
                fault = "disconnect"
            if fault:
                self.fault_log.append(fault)
            return fault

    def _completion(self, body: dict, fault: str | None) -> dict:
        n = 1 if self.choices == "ignore" else max(1, int(body.get("n") or 1))
        outs = [self._choice(body if n == 1 else {**body, "choice": j}, fault, j) for j in range(n)]
        prompt_tokens = outs[0][1]
        completion_tokens = sum(o[2] for o in outs)
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex[:16]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model"),
            "choices": [o[0] for o in outs],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens},
        }

    def _choice(self, body: dict, fault: str | None, index: int) -> tuple[dict, int, int]:
        """One choice of a completion: (the choice, prompt tokens, completion tokens)."""
        rf = body.get("response_format") or {}
        if rf.get("type") == "json_schema" and self.json_schema == "accept":
            out: str | Reply = json.dumps(schema_instance((rf.get("json_schema") or {}).get("schema") or {}))
            with self._lock:
                self.json_schema_served += 1
        else:
            out = self.reply(body)
        if isinstance(out, str):
            out = Reply(out)
        content = BAD_SCHEMA_JSON if fault == "bad_schema" else out.content
        prompt_tokens = out.prompt_tokens if out.prompt_tokens is not None else sum(
            len(_text(m.get("content")).split()) for m in body.get("messages", []))
        completion_tokens = out.completion_tokens if out.completion_tokens is not None else max(1, len(content.split()))
        message: dict = {"role": "assistant", "content": content}
        finish = "stop"
        tools = body.get("tools") or []
        choice = body.get("tool_choice")
        if tools and choice != "none":
            name = tools[0]["function"]["name"]
            if isinstance(choice, dict):
                name = choice.get("function", {}).get("name", name)
            message = {"role": "assistant", "content": None, "tool_calls": [{
                "id": f"call_{uuid.uuid4().hex[:12]}", "type": "function",
                "function": {"name": name, "arguments": content}}]}
            finish = "tool_calls"
        return ({"index": index, "message": message, "finish_reason": finish, "logprobs": None}, prompt_tokens,
                completion_tokens)


class _Handler(BaseHTTPRequestHandler):
    owner: OpenAIServer
    protocol_version = "HTTP/1.0"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _send_json(self, status: int, obj: Any, headers: dict | None = None, *, truncate: bool = False) -> None:
        data = json.dumps(obj).encode()
        if truncate:
            data = data[: len(data) // 2]
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _error(self, status: int, message: str, code: str, headers: dict | None = None) -> None:
        self._send_json(status, {"error": {"message": message, "type": "invalid_request_error" if status < 500
                                           else "server_error", "param": None, "code": code}}, headers)

    def do_GET(self) -> None:
        if self.path.rstrip("/") == "/v1/models":
            self._send_json(200, {"object": "list", "data": [
                {"id": m, "object": "model", "created": 0, "owned_by": "test"} for m in sorted(self.owner.models)]})
        else:
            self._error(404, f"no route {self.path}", "not_found")

    def do_POST(self) -> None:
        srv = self.owner
        length = int(self.headers.get("Content-Length") or 0)
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
        except json.JSONDecodeError:
            self._error(400, "request body is not JSON", "invalid_json")
            return
        if self.path.rstrip("/") != "/v1/chat/completions":
            self._error(404, f"no route {self.path}", "not_found")
            return
        if srv.lanes is not None:
            srv.lanes.acquire()
        srv._enter(+1)
        try:
            self._chat(srv, body)
        finally:
            srv._enter(-1)
            if srv.lanes is not None:
                srv.lanes.release()

    def _chat(self, srv: OpenAIServer, body: dict) -> None:
        fault = srv._next_fault(body, dict(self.headers.items()))
        if srv.latency_s:
            time.sleep(srv.latency_s)
        if body.get("model") not in srv.models:
            self._error(404, f"The model `{body.get('model')}` does not exist or you do not have access to it.",
                        "model_not_found")
            return
        if fault in ("429", "503"):
            msg = "Rate limit reached, slow down" if fault == "429" else "Service temporarily unavailable"
            self._error(int(fault), msg, "rate_limit_exceeded" if fault == "429" else "unavailable",
                        {"Retry-After": f"{srv.retry_after:g}"})
            return
        if fault == "500":
            self._error(500, "injected internal server error", "internal_error")
            return
        if fault == "disconnect":
            self.close_connection = True
            return
        if fault == "hang":
            srv._stop.wait(srv.hang_s)
        if srv.reject_tools and body.get("tools"):
            self._error(400, "tools are not supported by this server", "unsupported")
            return
        if int(body.get("n") or 1) > 1 and srv.choices in ("reject", "reject_500"):
            self._error(400 if srv.choices == "reject" else 500, LLAMA_CPP_CHOICES, "unsupported")
            return
        rf = body.get("response_format") or {}
        if rf.get("type") == "json_schema" and srv.json_schema in ("reject", "reject_400"):
            self._error(500 if srv.json_schema == "reject" else 400, LLAMA_CPP_REJECTION, "unsupported")
            return
        try:
            completion = srv._completion(body, fault)
        except Exception as e:  # a broken replier is a server error, reported to the client
            self._error(500, f"replier failed: {type(e).__name__}: {e}", "replier_error")
            return
        self._send_json(200, completion, truncate=(fault == "truncated"))
