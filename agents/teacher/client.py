"""The teacher client: every teacher call of a run goes through one `Teacher`.

    teacher = Teacher(cfg.teacher, run_dir, trace=writer)
    replies = teacher.ask([TeacherRequest(messages, temperature=0.7, max_tokens=64, sample_index=k)])
    parsed = teacher.ask_structured(requests, ModuleList)

What it guarantees:
- Cache first (agents/teacher/cache.py): a request answered before, in this run or (with `shared_cache`) another,
  costs nothing, is served even when the budget is spent, and is written to disk before its reply is returned.
- Misses run concurrently: remote backends on a thread pool of `concurrency` workers; in-process backends (`hf:`,
  `vllm:`) as one batched call per backend, grouped by temperature and max_tokens inside the model.
  `sample_index` makes n samples n different samples: it is part of the cache key, and in-process backends seed each
  row from that key (remote backends rely on temperature > 0).
- Retries (tenacity) with bounded exponential backoff and jitter, honouring Retry-After; `max_retries` per call and
  a run-wide `retry_budget`. Rate limits and concurrency in one place (agents/teacher/limits.py); with
  `adaptive_concurrency` a timeout, 429 or 503 halves the requests in flight and successes grow them back (AIMD), each
  change traced as a `teacher_concurrency` event.
- A few failed calls never raise: such a reply has `error` set and is counted in `Usage.failures`. Three things do
  raise: `TeacherConfigError` when the backend cannot work at all (unknown spec, missing key, HTTP 401/403/404 such
  as a wrong model name, a local model that does not load), `BudgetExhausted` when sending a call would spend more
  than `token_budget` tokens (the calls that fit are made and cached first), and `TeacherUnavailable` when more than
  `max_failure_share` of one `ask` / `ask_structured` batch failed after their retries (the teacher is down; the
  replies that arrived are cached, so a resume pays for none of them again). Within `settling()` (the Adapter's
  budget-cut round) a call the budget cannot pay is not raised but answered with `error` BUDGET_NOT_SENT, and
  counted in `not_sent`; it never counts towards `max_failure_share`.
- Structured output (`ask_structured`): the backend's JSON-schema support where it has one (constrained decoding
  for in-process teachers), else the schema in the prompt and a tolerant parser; up to `max_reasks` re-asks that
  show the parse error (none for a grammar reply cut at max_tokens); a value that still fails is None with `error`
  set, never silently replaced.
- Shared prompts (`TeacherRequest.share_prompt`, the samples of one prompt): on an in-process teacher the samples
  of one prompt in a batch are generated over one computation of the prompt (training/generate.py); on a remote
  one (plain replies) they go as one request with `n` choices, which the API bills the prompt of once. The prompt's
  tokens are charged to the first sample, the others' `tokens_in` 0 (their trace events say `shared_prompt`; a
  remote request's completion tokens are split over its choices by their length). The first `n` request to a
  remote spec is the probe: a server that refuses it (llama.cpp's "Only one completion choice is allowed") or
  answers fewer choices than asked (one that ignores `n`) gets one request per sample from then on, and a server
  that answered it has its samples' budget reservations hold their max_tokens only (in-process: always); each
  outcome is a `teacher_choices` trace event.
- Free-text forms (`TeacherRequest.form`, a regex): an in-process teacher generates the plain reply under it (its
  grammar; the form is part of the cache key there); a remote one gets the prompt alone and the same cache key.
- Accounting per role (`usage`, the state's `Usage`) and per backend spec (`usage_by_backend`), with dollar costs
  from a price table (agents/teacher/prices.py).
- `progress(done, total, tokens_out)` (optional) is called when a batch starts (done 0) and as each of its calls
  finishes, for a caller's progress bar (agents/progress.py); in-process backends finish their calls together.
- `trace(event)` gets one dict per teacher call (cache hits included). No API key or Authorization header ever
  reaches a trace event, a cache row or an error string.
- `context=` (optional) is a system prompt the client adds to every request: merged into the request's first system
  message, or put before its messages. The config's `context` / `context_file` are NOT applied here: the agents put
  the teacher's context into their messages themselves (agents/runtime.py), and applying it twice would double it.
"""
from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

from langchain_core.language_models import BaseChatModel
from langchain_core.runnables import Runnable
from pydantic import BaseModel

from agents.teacher import structured as so
from agents.teacher.accounting import Accounting
from agents.teacher.backends import LOCAL_BACKENDS, make_chat_model, parse_spec, with_call_params
from agents.teacher.cache import CACHE_FILE, TeacherCache, cache_key
from agents.teacher.errors import BUDGET_NOT_SENT, BudgetExhausted, TeacherConfigError, TeacherUnavailable
from agents.teacher.limits import Limiter
from agents.teacher.parsing import parse_structured
from agents.teacher.prices import PriceTable
from agents.teacher.records import StructuredReply, TeacherReply, TeacherRequest
from agents.teacher.redact import Redactor
from agents.teacher.retry import (
    RetryBudget,
    RetryPolicy,
    is_fatal,
    is_transient,
    make_retrying,
    overload_reason,
    status_of,
)
from ioa_state.config import TeacherConfig
from ioa_state.state import Usage

log = logging.getLogger(__name__)

_MESSAGE_ROLES = frozenset({"system", "user", "assistant"})
_ERROR_CHARS = 400
_DOWN = "not sent: too many calls of this batch failed (teacher down)"


@dataclass
class _Call:
    """One call as sent: the request, where it goes, its rendered messages and its cache key."""

    request: TeacherRequest
    spec: str
    backend: str
    model: str
    mode: str  # "plain" for ask(); json_schema | function_calling | text for ask_structured()
    schema: type[BaseModel] | None
    history: list[dict]
    messages: list[dict]
    key: str
    est_tokens: int
    form: str | None = None  # the regex this backend generates the reply under (in-process teachers), else None
    prompt_key: str | None = None  # the prompt's key without its sample (share_prompt on an in-process teacher)


@dataclass
class _Batch:
    """State shared by the calls of one _run: stop sending once the backend proved unusable or down."""

    max_failures: float = math.inf  # more failed calls than this: the teacher is down, send no more
    abort: threading.Event = field(default_factory=threading.Event)
    fatal: TeacherConfigError | None = None
    failures: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def fail(self, err: TeacherConfigError) -> None:
        with self.lock:
            if self.fatal is None:
                self.fatal = err
        self.abort.set()

    def failed_call(self) -> None:
        with self.lock:
            self.failures += 1
            if self.failures > self.max_failures:
                self.abort.set()

    def why_not_sent(self) -> str:
        return f"not sent: {self.fatal}" if self.fatal else _DOWN


def split_tokens(total: int, texts: list[str]) -> list[int]:
    """`total` completion tokens of one n-choice request split over its choices in proportion to their length (each
    at least 1 where the total allows); the shares add up to `total`."""
    if not texts:
        return []
    base = 1 if total >= len(texts) else 0
    rest = total - base * len(texts)
    weights = [max(1, len(t)) for t in texts]
    whole = sum(weights)
    shares = [base + rest * w // whole for w in weights]
    by_remainder = sorted(range(len(texts)), key=lambda j: -(rest * weights[j] % whole))  # largest remainders
    for j in by_remainder[:total - sum(shares)]:
        shares[j] += 1
    return shares


class _NotSent(Exception):
    """A call dropped because another call of the batch hit a fatal error."""


class Teacher:
    """The run's teacher: cached, retried, rate-limited, budgeted and traced chat calls."""

    def __init__(
        self,
        cfg: TeacherConfig,
        run_dir: Path,
        trace: Callable[[dict], None] | None = None,
        *,
        context: str | None = None,
        prices: Mapping | str | Path | None = None,
        retry_policy: RetryPolicy | None = None,
        progress: Callable[[int, int, int], None] | None = None,
    ) -> None:
        self.cfg = cfg
        self.progress = progress  # (done, total, tokens_out) per finished call of a batch, from 0 (see _ticker)
        self.run_dir = Path(run_dir)
        self.trace = trace
        self._models: dict[str, BaseChatModel] = {}
        self._lock = threading.RLock()
        for spec in dict.fromkeys([cfg.spec, *cfg.roles.values()]):
            self.chat_model(spec)  # unknown prefix, missing key, missing extra: fail now, in one line, touching nothing
        self.redactor = Redactor([cfg.api_key_env])
        self.context = context
        cache_path = Path(cfg.shared_cache).expanduser() if cfg.shared_cache else self.run_dir / CACHE_FILE
        self.cache = TeacherCache(cache_path)
        self.payer = str(self.run_dir.resolve())  # who paid for a cache row: this run, or another on a shared cache
        self.limiter = Limiter(cfg.concurrency, cfg.requests_per_minute, cfg.tokens_per_minute,
                               adaptive=cfg.adaptive_concurrency, growth_after=cfg.concurrency_growth_after,
                               on_change=self._concurrency_changed)
        self.retry_budget = RetryBudget(cfg.retry_budget)
        self.retry_policy = retry_policy or RetryPolicy()
        self.accounts = Accounting(PriceTable(prices), cfg.token_budget)
        self._runnables: dict[tuple, Runnable] = {}
        self._modes: dict[str, str] = {}
        self._trace_lock = threading.Lock()
        self._trace_warned = False
        self._settling = False
        self._choices: dict[str, bool] = {}  # remote spec -> whether it takes n choices per request (probed)
        self.not_sent = 0  # calls the budget could not pay, over the client's life (raised or, settling, answered)

    @contextlib.contextmanager
    def settling(self) -> Iterator[None]:
        """Within it, a call the token budget cannot pay comes back as a reply with the error BUDGET_NOT_SENT instead
        of raising BudgetExhausted: cached replies and the calls that still fit are served as always. The Adapter
        settles a round the budget cut, to keep and train on what that round had paid for."""
        self._settling = True
        try:
            yield
        finally:
            self._settling = False

    # -- configuration -----------------------------------------------------------------------------------------
    def spec_for(self, role: str) -> str:
        """The backend spec that serves a role (`teacher.roles` overrides `teacher.spec`)."""
        return self.cfg.roles.get(role, self.cfg.spec)

    def chat_model(self, spec: str) -> BaseChatModel:
        """The LangChain chat model of a spec, made once."""
        with self._lock:
            if spec not in self._models:
                self._models[spec] = make_chat_model(spec, self.cfg)
            return self._models[spec]

    def _mode(self, spec: str) -> str:
        backend, _ = parse_spec(spec)
        with self._lock:
            return self._modes.setdefault(spec, so.first_mode(backend))

    def _downgrade(self, spec: str, rejected: str) -> str:
        backend, _ = parse_spec(spec)
        with self._lock:
            if self._modes.get(spec, rejected) == rejected:
                nxt = so.next_mode(backend, rejected) or "text"
                log.warning("teacher %s rejected structured output via %s; using %s from now on", spec, rejected, nxt)
                self._modes[spec] = nxt
            return self._modes[spec]

    # -- accounting views --------------------------------------------------------------------------------------
    @property
    def usage(self) -> dict[str, Usage]:
        """Usage per role (copies; store them in the learner state)."""
        return self.accounts.snapshot()[0]

    @property
    def usage_by_backend(self) -> dict[str, Usage]:
        """Usage per backend spec (copies)."""
        return self.accounts.snapshot()[1]

    @property
    def spent_tokens(self) -> int:
        return self.accounts.spent_tokens

    def restore_usage(self, usage: dict[str, Usage]) -> None:
        """Continue a resumed run's accounting: its budget and retry budget stay spent, and the calls its killed
        attempt paid after the checkpoint count (see agents/teacher/accounting.py)."""
        self.accounts.restore(usage, self.cache.paid_by(self.payer))
        self.retry_budget.used = min(self.retry_budget.total, sum(u.retries for u in usage.values()))

    def close(self) -> None:
        self.cache.close()

    def __enter__(self) -> "Teacher":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- building calls ----------------------------------------------------------------------------------------
    def _render(self, req: TeacherRequest, history: list[dict], schema: type[BaseModel] | None,
                mode: str) -> list[dict]:
        msgs = []
        for m in req.messages:
            role, content = m.get("role"), m.get("content")
            if role not in _MESSAGE_ROLES or not isinstance(content, str):
                raise ValueError(f"teacher messages need a role in {sorted(_MESSAGE_ROLES)} and string content, "
                                 f"got {m!r}")
            msgs.append({"role": role, "content": content})
        if self.context:
            if msgs and msgs[0]["role"] == "system":
                msgs[0] = {"role": "system", "content": f"{self.context}\n\n{msgs[0]['content']}"}
            else:
                msgs.insert(0, {"role": "system", "content": self.context})
        if schema is not None and mode == "text":
            msgs = so.with_instruction(msgs, schema)
        return msgs + [dict(h) for h in history]

    def _make_call(self, req: TeacherRequest, schema: type[BaseModel] | None = None,
                   history: list[dict] | None = None, mode: str | None = None) -> _Call:
        spec = self.spec_for(req.role)
        backend, model = parse_spec(spec)
        mode = "plain" if schema is None else (mode or self._mode(spec))
        history = list(history or [])
        messages = self._render(req, history, schema, mode)
        params: dict[str, Any] = {"temperature": float(req.temperature), "max_tokens": int(req.max_tokens),
                                  "mode": mode}
        if schema is not None and mode in so.SCHEMA_MODES:
            params["schema"] = so.schema_json(schema)
        form = req.form if schema is None and req.form and so.enforces_forms(backend) else None
        if form is not None:
            params["form"] = form
        key = cache_key(backend, model, params, messages, req.sample_index)
        chars = sum(len(m["content"]) for m in messages) + len(str(params.get("schema", "")))
        est = math.ceil(chars / 3) + int(req.max_tokens)
        prompt_key = (cache_key(backend, model, params, messages, -1)
                      if req.share_prompt and (backend in LOCAL_BACKENDS or mode == "plain") else None)
        return _Call(req, spec, backend, model, mode, schema, history, messages, key, est, form, prompt_key)

    def _kept(self, key: tuple, build: Callable[[], Any]) -> Any:
        """The runnable kept under `key` (one per call shape), built once by `build`."""
        with self._lock:
            if key not in self._runnables:
                self._runnables[key] = build()
            return self._runnables[key]

    def _call_chat(self, c: _Call) -> BaseChatModel:
        """c's chat model with c's temperature and max_tokens."""
        return with_call_params(self.chat_model(c.spec), c.backend, c.request.temperature, c.request.max_tokens)

    def _runnable(self, c: _Call) -> Runnable:
        def build() -> Runnable:
            chat = self._call_chat(c)
            return so.structured_runnable(chat, c.schema, c.mode) if c.mode in so.API_MODES else chat
        return self._kept((c.spec, c.request.temperature, c.request.max_tokens, c.mode, c.schema), build)

    # -- the public calls --------------------------------------------------------------------------------------
    def ask(self, requests: list[TeacherRequest]) -> list[TeacherReply]:
        """One reply per request, in order; raises TeacherConfigError, BudgetExhausted, TeacherUnavailable."""
        calls = [self._make_call(r) for r in requests]
        replies = self._run(calls, self.cfg.max_failure_share * len(calls))
        self._check_failures([(c.spec, r.error) for c, r in zip(calls, replies)])
        return replies

    def ask_structured(self, requests: list[TeacherRequest], schema: type[BaseModel]) -> list[StructuredReply]:
        """One schema-valid value (or None with the reason) per request, in order, after up to max_reasks re-asks."""
        n = len(requests)
        value: list[BaseModel | None] = [None] * n
        raw: list[str | None] = [None] * n
        error: list[str | None] = [None] * n
        reasks = [0] * n
        history: list[list[dict]] = [[] for _ in range(n)]
        failed: list[tuple[str, str | None]] = [(self.spec_for(r.role), None) for r in requests]
        active = list(range(n))
        for attempt in range(self.cfg.max_reasks + 1):
            if not active:
                break
            calls = [self._make_call(requests[i], schema, history[i]) for i in active]
            so_far = sum(err is not None for _, err in failed)
            replies = self._run(calls, self.cfg.max_failure_share * n - so_far)
            still = []
            for i, c, rep in zip(active, calls, replies):
                failed[i] = (c.spec, rep.error)  # the call failed (not: the reply did not parse)
                if rep.error is not None:
                    error[i] = rep.error
                    continue
                raw[i] = rep.text
                if c.mode == so.GRAMMAR and so.cut_reply(rep.text):  # the same budget would cut it again: no re-ask
                    error[i] = (f"reply to {schema.__name__} cut at max_tokens ({c.request.max_tokens}) "
                                "before its JSON closed")
                    continue
                v, why = parse_structured(rep.text, schema)
                if v is not None:
                    value[i], error[i] = v, None
                    continue
                error[i] = f"reply to {schema.__name__} not usable: {why}"
                if c.backend == "openai-compatible" and so.ignored_format(c.mode, rep.text):
                    self._downgrade(c.spec, c.mode)  # the re-ask and every later call use the next mode
                if attempt < self.cfg.max_reasks:
                    history[i] = history[i] + so.reask_messages(rep.text, why or "invalid", c.mode)
                    reasks[i] += 1
                    still.append(i)
            active = still
        self._check_failures(failed)
        self._trace_outcome(requests, schema, value, reasks)
        return [StructuredReply(value[i], raw[i], self.redactor.text(error[i]), reasks[i]) for i in range(n)]

    def _trace_outcome(self, requests: list[TeacherRequest], schema: type[BaseModel], value: list, reasks: list[int]):
        """One `structured_outcome` event per ask_structured: how many replies parsed on the first try, after a
        re-ask, or not at all (the figure issue 11 asks of module cards and the prerequisite prior)."""
        ok = [v is not None for v in value]
        templates = sorted({str(r.tag.get("template")) for r in requests if r.tag.get("template")})
        self._trace_event({
            "event": "structured_outcome", "schema": schema.__name__, "templates": templates,
            "roles": sorted({r.role for r in requests}), "requests": len(requests),
            "parsed_first_try": sum(o and k == 0 for o, k in zip(ok, reasks)),
            "parsed_after_reask": sum(o and k > 0 for o, k in zip(ok, reasks)),
            "not_parsed": ok.count(False),
        })

    # -- failures and concurrency changes ----------------------------------------------------------------------
    def _check_failures(self, outcomes: list[tuple[str, str | None]]) -> None:
        """Raise TeacherUnavailable when more than max_failure_share of a batch's calls failed after retries."""
        errors = [(spec, err) for spec, err in outcomes if err is not None and err != BUDGET_NOT_SENT]
        if not errors or len(errors) <= self.cfg.max_failure_share * len(outcomes):
            return
        sent = [(spec, err) for spec, err in errors if err != _DOWN] or errors  # name a real error
        specs = [spec for spec, _ in sent]
        spec = max(dict.fromkeys(specs), key=specs.count)  # the backend that failed most
        backend, _ = parse_spec(spec)
        url = self.redactor.text(self.cfg.base_url) if backend in ("openai", "openai-compatible") else None
        last = next(err for s, err in reversed(sent) if s == spec) or ""
        raise TeacherUnavailable(spec, url, len(sent), len(outcomes), self.cfg.max_failure_share, last,
                                 self.run_dir, not_sent=len(errors) - len(sent))

    def _concurrency_changed(self, old: int, new: int, reason: str) -> None:
        log.info("teacher concurrency %d -> %d (%s)", old, new, reason)
        self._trace_event({"event": "teacher_concurrency", "old": old, "new": new, "reason": reason,
                           "ceiling": self.cfg.concurrency})

    # -- running calls -----------------------------------------------------------------------------------------
    def _ticker(self, total: int) -> Callable[[TeacherReply | None], None]:
        """Calls `progress(done, total, tokens_out)`: once now (done 0), then per finished call (None: not sent)."""
        if self.progress is None or not total:
            return lambda reply: None
        lock, done = threading.Lock(), [0]
        self.progress(0, total, 0)

        def tick(reply: TeacherReply | None) -> None:
            with lock:
                done[0] += 1
                self.progress(done[0], total, 0 if reply is None or reply.cached else reply.tokens_out)
        return tick

    def _run(self, calls: list[_Call], max_failures: float = math.inf) -> list[TeacherReply]:
        replies: list[TeacherReply | None] = [None] * len(calls)
        tick = self._ticker(len(calls))
        issued: list[int] = []
        same_as: dict[int, int] = {}  # identical requests in one batch are paid once, the copies served from it
        first: dict[str, int] = {}
        prompts: set[str] = set()  # shared prompts a call of this batch already reserved for
        skipped = 0
        for i, c in enumerate(calls):
            hit = self._from_cache(c)
            if hit is not None:
                replies[i] = hit
                tick(hit)
                continue
            if c.prompt_key in prompts and self._shares_prompts(c):
                c.est_tokens = int(c.request.max_tokens)  # its prompt is charged to another sample of the batch
            if c.key in first:
                same_as[i] = first[c.key]
            elif self.accounts.reserve(c.est_tokens):
                first[c.key] = i
                issued.append(i)
                if c.prompt_key:
                    prompts.add(c.prompt_key)
            else:
                skipped += 1
                if self._settling:
                    replies[i] = TeacherReply(None, 0, 0, False, 0, 0.0, BUDGET_NOT_SENT)
                tick(None)
        batch = _Batch(max_failures)
        local: dict[str, list[int]] = {}
        remote: list[int] = []
        for i in issued:
            (local.setdefault(calls[i].spec, []) if calls[i].backend in LOCAL_BACKENDS else remote).append(i)
        for spec, idxs in local.items():
            shown = [0]  # rows the in-process backend already reported done (one generate batch at a time)

            def rows(k: int, tokens: int, shown=shown) -> None:
                for j in range(k):
                    shown[0] += 1
                    tick(TeacherReply("", 0, tokens if j == 0 else 0, False, 0, 0.0, None))

            for n_done, (i, rep) in enumerate(zip(idxs, self._run_local(spec, [calls[i] for i in idxs], batch,
                                                                        rows))):
                replies[i] = rep
                if n_done >= shown[0]:
                    tick(rep)
        if remote:
            units = self._remote_units(calls, remote)
            workers = min(self.cfg.concurrency, len(units))

            def send(unit: list[int]) -> list[TeacherReply]:
                reps = ([self._run_remote(calls[unit[0]], batch)] if len(unit) == 1
                        else self._run_remote_samples([calls[i] for i in unit], batch))
                for rep in reps:
                    tick(rep)
                return reps
            if workers == 1:
                outs = [send(u) for u in units]
            else:
                with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="teacher") as pool:
                    outs = list(pool.map(send, units))
            for unit, reps in zip(units, outs):
                for i, rep in zip(unit, reps):
                    replies[i] = rep
        for i, j in same_as.items():
            if replies[j] is not None and replies[j].error is None:
                replies[i] = dataclasses.replace(replies[j], cached=True, retries=0, latency_s=0.0)
                self.accounts.record_cached(calls[i].request.role, calls[i].spec)
                self._emit(calls[i], replies[i])
            else:
                replies[i] = replies[j]
            tick(replies[i])
        if batch.fatal is not None:
            raise batch.fatal
        self.not_sent += skipped
        if skipped and not self._settling:
            raise BudgetExhausted(self.accounts.spent_tokens, self.cfg.token_budget or 0, replies, skipped)
        return replies  # type: ignore[return-value]

    def _from_cache(self, c: _Call) -> TeacherReply | None:
        hit = self.cache.get(c.key)
        if hit is None:
            return None
        if not self.accounts.take_owed(c.key):  # an owed call was counted as paid when the run resumed
            self.accounts.record_cached(c.request.role, c.spec)
        reply = TeacherReply(hit.text, hit.tokens_in, hit.tokens_out, True, 0, 0.0, None)
        self._emit(c, reply)
        return reply

    def _run_local(self, spec: str, calls: list[_Call], batch: _Batch,
                   on_rows: Callable[[int, int], None] | None = None) -> list[TeacherReply]:
        chat = self.chat_model(spec)
        configs = [{"configurable": {"seed": int(c.key[:8], 16), "temperature": float(c.request.temperature),
                                     "max_tokens": int(c.request.max_tokens),
                                     **({"share_prompt": True} if c.prompt_key else {}),
                                     **({"json_schema": so.schema_json(c.schema)} if c.mode == so.GRAMMAR else {}),
                                     **({"regex": c.form} if c.form else {})}}
                   for c in calls]
        t0 = time.monotonic()
        try:
            progress = {"on_rows": on_rows} if on_rows is not None and self.progress is not None else {}
            outs: list[Any] = chat.batch([c.messages for c in calls], configs, return_exceptions=True, **progress)
        except Exception as e:  # a model that breaks the whole batch fails each call, counted
            outs = [e] * len(calls)
        latency = time.monotonic() - t0
        replies: list[TeacherReply | None] = [None] * len(calls)
        done: list[tuple[int, _Call, str, int, int, bool]] = []
        charged: set[str] = set()  # shared prompts whose tokens a reply of this batch already paid
        for j, (c, out) in enumerate(zip(calls, outs)):
            if isinstance(out, TeacherConfigError):
                batch.fail(out)
            if isinstance(out, BaseException):
                replies[j] = self._finish_failure(c, self._describe(out, c), latency, 0)
                continue
            text, msg = so.message_text(out)
            tin, tout = self._token_counts(c, text, msg)
            shared = c.prompt_key is not None and c.prompt_key in charged
            if c.prompt_key is not None:
                charged.add(c.prompt_key)
            done.append((j, c, text, 0 if shared else tin, tout, shared))
        for (j, *_), rep in zip(done, self._finish_together([d[1:] for d in done], latency)):
            replies[j] = rep
        return replies  # type: ignore[return-value]

    def _shares_prompts(self, c: _Call) -> bool:
        """Whether the samples of c's prompt are sent together: in-process always, remote once a probe succeeded."""
        return c.prompt_key is not None and (c.backend in LOCAL_BACKENDS or self._choices.get(c.spec) is True)

    def _remote_units(self, calls: list[_Call], remote: list[int]) -> list[list[int]]:
        """The remote calls as requests: the samples of one prompt together (unless their spec refused `n`
        choices), every other call alone."""
        units: list[list[int]] = []
        by_prompt: dict[str, list[int]] = {}
        for i in remote:
            c = calls[i]
            if c.prompt_key is None or self._choices.get(c.spec) is False:
                units.append([i])
            elif c.prompt_key in by_prompt:
                by_prompt[c.prompt_key].append(i)
            else:
                by_prompt[c.prompt_key] = [i]
                units.append(by_prompt[c.prompt_key])
        return units

    def _set_choices(self, spec: str, accepted: bool, reason: str | None = None) -> None:
        with self._lock:
            if self._choices.get(spec) is not None and (accepted or self._choices[spec] is False):
                return  # already known (a refusal overrides an acceptance: a server that stopped honouring n)
            self._choices[spec] = accepted
        if not accepted:
            log.warning("teacher %s does not take n choices per request (%s); one request per sample from now on",
                        spec, reason)
        self._trace_event({"event": "teacher_choices", "spec": spec, "accepted": accepted,
                           "reason": self.redactor.text(reason)})

    def _run_remote_samples(self, calls: list[_Call], batch: _Batch) -> list[TeacherReply]:
        """The samples of one prompt as one request with n choices (module docstring: shared prompts); a refusal or
        fewer choices than asked send the samples not answered one request each."""
        t0 = time.monotonic()
        retries = [0]
        head = dataclasses.replace(calls[0], est_tokens=sum(c.est_tokens for c in calls))
        try:
            texts, tin, tout = self._send(head, batch, retries, n=len(calls))
        except _NotSent:
            return [self._finish_failure(c, batch.why_not_sent(), time.monotonic() - t0, 0, sent=False)
                    for c in calls]
        except Exception as e:
            if so.is_choices_rejection(e):
                self._set_choices(head.spec, False, self._describe(e, head))
                return [self._run_remote(c, batch) for c in calls]
            msg = self._describe(e, head)
            if is_fatal(e):
                batch.fail(TeacherConfigError(msg))
            out = []
            for j, c in enumerate(calls):
                batch.failed_call()
                out.append(self._finish_failure(c, msg, time.monotonic() - t0, retries[0] if j == 0 else 0))
            return out
        latency = time.monotonic() - t0
        answered = texts[:len(calls)]
        shares = split_tokens(tout, answered)
        out = self._finish_together([(c, text, tin if j == 0 else 0, shares[j], j > 0)
                                     for j, (c, text) in enumerate(zip(calls, answered))], latency, retries[0])
        if len(answered) < len(calls):  # a server that ignores n
            self._set_choices(head.spec, False, f"asked for {len(calls)} choices, got {len(answered)}")
            return out + [self._run_remote(c, batch) for c in calls[len(answered):]]
        self._set_choices(head.spec, True)
        return out

    def _run_remote(self, c: _Call, batch: _Batch) -> TeacherReply:
        t0 = time.monotonic()
        retries = [0]
        reserved = c.est_tokens
        try:
            while True:
                if c.mode in so.API_MODES and self._mode(c.spec) != c.mode:  # another call found it rejected
                    c = self._make_call(c.request, c.schema, c.history, mode=self._mode(c.spec))
                    hit = self._from_cache(c)
                    if hit is not None:
                        self.accounts.release(reserved)
                        return hit
                try:
                    text, tin, tout = self._send(c, batch, retries)
                    break
                except Exception as e:
                    if not (c.mode in so.API_MODES and so.is_mode_rejection(e)):
                        raise
                    self._downgrade(c.spec, c.mode)
            c.est_tokens = reserved
            return self._finish_success(c, text, tin, tout, retries[0], time.monotonic() - t0)
        except _NotSent:
            c.est_tokens = reserved
            return self._finish_failure(c, batch.why_not_sent(), time.monotonic() - t0, retries[0], sent=False)
        except Exception as e:
            c.est_tokens = reserved
            msg = self._describe(e, c)
            if is_fatal(e):
                batch.fail(TeacherConfigError(msg))
            batch.failed_call()
            return self._finish_failure(c, msg, time.monotonic() - t0, retries[0])

    def _send(self, c: _Call, batch: _Batch, retries: list[int], n: int | None = None) -> tuple[Any, int, int]:
        """(text, tokens in, tokens out) of one request, retried; with `n`, (the n choices' texts, tokens in, tokens
        out of all of them) of one request with n choices."""
        runnable = self._runnable(c) if n is None else self._choices_model(c, n)
        api_mode = c.mode in so.API_MODES

        def transient(e: BaseException) -> bool:
            return is_transient(e) and not (api_mode and so.is_mode_rejection(e)) and not (
                n is not None and so.is_choices_rejection(e))

        def before_sleep(_state: Any) -> None:
            retries[0] += 1

        for attempt in make_retrying(self.retry_policy, self.cfg.max_retries, self.retry_budget,
                                     self.limiter.hold_off, before_sleep, transient):
            with attempt:
                if batch.abort.is_set():
                    raise _NotSent()
                with self.limiter.slot(c.est_tokens) as slot:
                    try:
                        result = runnable.invoke(c.messages) if n is None else runnable.generate(
                            [runnable._convert_input(c.messages).to_messages()])
                    except Exception as e:
                        if (why := overload_reason(e)) is not None:
                            slot.overloaded(why)
                        raise
                    slot.succeeded()
                    if n is None:
                        text, msg = so.message_text(result)
                        tin, tout = self._token_counts(c, text, msg)
                    else:
                        text, tin, tout = self._choices_counts(c, result)
                    slot.settle(tin + tout)
        return text, tin, tout

    def _choices_model(self, c: _Call, n: int) -> BaseChatModel:
        """c's chat model asking for n choices per request (one per call shape and n, kept as `_runnable`'s are)."""
        return self._kept((c.spec, c.request.temperature, c.request.max_tokens, "choices", n),
                          lambda: self._call_chat(c).model_copy(update={"n": n}))

    @staticmethod
    def _choices_counts(c: _Call, result: Any) -> tuple[list[str], int, int]:
        """The choices' texts of an n-choice result and its usage (the request's, for all choices together)."""
        texts = [so.message_text(g.message)[0] for g in result.generations[0]]
        usage = (result.llm_output or {}).get("token_usage") or {}
        tin, tout = usage.get("prompt_tokens"), usage.get("completion_tokens")
        if tin is None or tout is None:  # a server that reports no usage: count estimates, never zero
            tin = tin if tin is not None else c.est_tokens - c.request.max_tokens * len(texts)
            tout = tout if tout is not None else sum(math.ceil(len(t) / 4) for t in texts)
        return texts, int(tin), int(tout)

    @staticmethod
    def _token_counts(c: _Call, text: str, msg: Any) -> tuple[int, int]:
        usage = getattr(msg, "usage_metadata", None) or {}
        tin = usage.get("input_tokens")
        tout = usage.get("output_tokens")
        if tin is None or tout is None:  # a server that reports no usage: count estimates, never zero
            tin = tin if tin is not None else c.est_tokens - c.request.max_tokens
            tout = tout if tout is not None else math.ceil(len(text) / 4)
        return int(tin), int(tout)

    def _describe(self, e: BaseException, c: _Call) -> str:
        code = status_of(e)
        body = getattr(e, "body", None)
        detail = body.get("message") if isinstance(body, dict) and body.get("message") else str(e)
        where = f" at {self.cfg.base_url}" if c.backend == "openai-compatible" and self.cfg.base_url else ""
        if code == 404:
            msg = (f"teacher {c.spec}: the server{where} does not serve model {c.model!r} "
                   f"(HTTP 404: {detail}); check the model name and teacher.base_url")
        elif code == 401:
            msg = f"teacher {c.spec}: the API key in ${self.cfg.api_key_env} was rejected (HTTP 401: {detail})"
        elif code == 403:
            msg = f"teacher {c.spec}: no access to model {c.model!r} (HTTP 403: {detail})"
        elif isinstance(e, TeacherConfigError):
            msg = str(e)
        else:
            msg = f"{type(e).__name__}{f' (HTTP {code})' if code else ''}: {detail}"
        msg = " ".join(msg.split())
        return self.redactor.text(msg[:_ERROR_CHARS]) or ""

    # -- finishing calls ---------------------------------------------------------------------------------------
    def _finish_success(self, c: _Call, text: str, tin: int, tout: int, retries: int, latency: float,
                        shared_prompt: bool = False) -> TeacherReply:
        self.cache.put(c.key, text, tin, tout, backend=c.backend, model=c.model, payer=self.payer,
                       role=c.request.role)  # committed before we return
        return self._paid(c, text, tin, tout, retries, latency, shared_prompt)

    def _finish_together(self, done: list[tuple[_Call, str, int, int, bool]], latency: float,
                         retries: int = 0) -> list[TeacherReply]:
        """Replies that came from one piece of work (an in-process batch, the n choices of one request), each
        (call, text, tokens in, tokens out, shared prompt): cached in one transaction before any is counted, so a
        run killed among them finds them all paid on resume (a choice left uncached would be paid again, its prompt
        with it); `retries` go to the first."""
        by_model: dict[tuple[str, str], list[tuple[str, str, int, int, str]]] = {}
        for c, text, tin, tout, _ in done:
            by_model.setdefault((c.backend, c.model), []).append((c.key, text, tin, tout, c.request.role))
        for (backend, model), rows in by_model.items():
            self.cache.put_many(rows, backend=backend, model=model, payer=self.payer)
        return [self._paid(c, text, tin, tout, retries if j == 0 else 0, latency, shared)
                for j, (c, text, tin, tout, shared) in enumerate(done)]

    def _paid(self, c: _Call, text: str, tin: int, tout: int, retries: int, latency: float,
              shared_prompt: bool) -> TeacherReply:
        """Count a cached reply as paid and trace it."""
        self.accounts.release(c.est_tokens)
        self.accounts.record_call(c.request.role, c.spec, c.backend, c.model, tin, tout, retries, failed=False)
        reply = TeacherReply(text, tin, tout, False, retries, latency, None)
        self._emit(c, reply, shared_prompt)
        return reply

    def _finish_failure(self, c: _Call, error: str, latency: float, retries: int, sent: bool = True) -> TeacherReply:
        error = self.redactor.text(error) or "unknown error"
        self.accounts.release(c.est_tokens)
        self.accounts.record_call(c.request.role, c.spec, c.backend, c.model, 0, 0, retries, failed=True, sent=sent)
        reply = TeacherReply(None, 0, 0, False, retries, latency, error)
        self._emit(c, reply)
        return reply

    def _emit(self, c: _Call, reply: TeacherReply, shared_prompt: bool = False) -> None:
        if self.trace is None:
            return
        event: dict[str, Any] = {
            "event": "teacher_call", "role": c.request.role, "backend": c.backend, "model": c.model,
            "messages": c.messages, "reply": reply.text, "tokens_in": reply.tokens_in,
            "tokens_out": reply.tokens_out, "latency_s": round(reply.latency_s, 4), "cached": reply.cached,
            "retries": reply.retries, "error": reply.error, "sample_index": c.request.sample_index,
            "structured": None if c.mode == "plain" else c.mode,
        }
        if shared_prompt:
            event["shared_prompt"] = True  # its prompt was charged to another sample of its batch
        for k, v in c.request.tag.items():
            event[f"tag_{k}" if k in event else k] = v
        self._trace_event(event)

    def _trace_event(self, event: dict[str, Any]) -> None:
        if self.trace is None:
            return
        event = self.redactor.obj(event)
        with self._trace_lock:
            try:
                self.trace(event)
            except Exception:
                if not self._trace_warned:
                    self._trace_warned = True
                    log.exception("the teacher trace callback failed; teacher calls go on")
