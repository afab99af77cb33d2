"""Grammar-constrained decoding for in-process generation, with xgrammar.

A constraint is a JSON schema (a dict, or its text) or a `Regex` (a free-text form: the whole reply matches the
pattern). Each is compiled into an xgrammar grammar once per (tokenizer, vocabulary, stop tokens) and kept
(`grammar_book(...).compile(constraint)`). Schemas compile with `any_whitespace=False`: the grammar allows no whitespace
between tokens, so a run of spaces or newlines cannot eat the reply's token budget.

`GrammarMask` is a transformers `LogitsProcessor` for one batch of one `generate` call: row r follows `grammars[r]`
(None: that row runs unconstrained in the same batch). It keeps one `GrammarMatcher` per row, feeds it the row's last
token at every step and sets every token the grammar forbids to -inf, so a sampler placed after it (the project's
`RowSeededSampler`) only ever draws an allowed token. Once a row's grammar is complete only its stop tokens stay
allowed. A matcher refuses a token it never allowed only when generation itself put it there (a row that already
ended, padded); that row is left alone from then on. Make a new `GrammarMask` for every batch.
"""
from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from typing import Any

import torch
from transformers import LogitsProcessor

XGRAMMAR_MISSING = "grammar-constrained generation needs xgrammar: pip install 'xgrammar>=0.2.9'"


def _xgr():
    try:
        import xgrammar
    except ImportError as e:
        raise ImportError(XGRAMMAR_MISSING) from e
    return xgrammar


def available() -> bool:
    """Is xgrammar importable here?"""
    try:
        _xgr()
    except ImportError:
        return False
    return True


@dataclass(frozen=True)
class Regex:
    """A free-text form: the whole reply must match `pattern` (xgrammar's regex dialect: classes, {m,n}, groups)."""

    pattern: str


def schema_key(schema: dict | str | Regex) -> str:
    """The text of a constraint: what is compiled, and its cache key (properties keep their order: the reply's)."""
    if isinstance(schema, Regex):
        return "regex:" + schema.pattern
    return schema if isinstance(schema, str) else json.dumps(schema, ensure_ascii=False)  # property order is kept


class GrammarBook:
    """The compiled grammars of one tokenizer: each schema compiled once, on first use."""

    def __init__(self, tokenizer: Any, vocab_size: int, stop_ids: list[int]):
        xgr = _xgr()
        self.vocab_size = int(vocab_size)
        self.info = xgr.TokenizerInfo.from_huggingface(tokenizer, vocab_size=self.vocab_size,
                                                       stop_token_ids=list(stop_ids))
        self._compiler = xgr.GrammarCompiler(self.info, max_threads=1)
        self._compiled: dict[str, Any] = {}
        self._lock = threading.Lock()

    def compile(self, schema: dict | str | Regex) -> Any:
        """The compiled grammar of a JSON schema or a Regex; ValueError naming it when xgrammar cannot compile it."""
        key = schema_key(schema)
        with self._lock:
            if key not in self._compiled:
                try:
                    if isinstance(schema, Regex):
                        self._compiled[key] = self._compiler.compile_regex(schema.pattern)
                    else:
                        self._compiled[key] = self._compiler.compile_json_schema(key, any_whitespace=False,
                                                                                 strict_mode=True)
                except Exception as e:  # xgrammar raises RuntimeError on unsupported schemas
                    if isinstance(schema, Regex):
                        raise ValueError(f"cannot compile the form {schema.pattern!r} into a grammar: {e}") from e
                    title = schema.get("title", "") if isinstance(schema, dict) else ""
                    raise ValueError(f"cannot compile the JSON schema {title!r} into a grammar: {e}") from e
            return self._compiled[key]


_BOOKS: dict[tuple, tuple[Any, GrammarBook]] = {}
_BOOKS_LOCK = threading.Lock()


def grammar_book(tokenizer: Any, vocab_size: int, stop_ids: list[int]) -> GrammarBook:
    """The shared GrammarBook of this tokenizer object (kept alive alongside it)."""
    key = (id(tokenizer), int(vocab_size), tuple(sorted(int(s) for s in stop_ids)))
    with _BOOKS_LOCK:
        hit = _BOOKS.get(key)
        if hit is None or hit[0] is not tokenizer:
            hit = (tokenizer, GrammarBook(tokenizer, vocab_size, stop_ids))
            _BOOKS[key] = hit
        return hit[1]


def model_vocab_size(model: Any) -> int:
    """The width of the model's logits (the lm head's rows: can exceed the tokenizer's vocabulary)."""
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if head is not None and getattr(head, "weight", None) is not None:
        return int(head.weight.shape[0])
    return int(model.config.get_text_config().vocab_size)


class GrammarMask(LogitsProcessor):
    """Masks each constrained row's logits to the tokens its grammar allows next (see the module docstring)."""

    def __init__(self, grammars: list[Any | None]):
        xgr = _xgr()
        self._xgr = xgr
        self.rows = [r for r, g in enumerate(grammars) if g is not None]
        self.matchers = {r: xgr.GrammarMatcher(grammars[r]) for r in self.rows}
        vocab = {grammars[r].tokenizer_info.vocab_size for r in self.rows}
        if len(vocab) > 1:
            raise ValueError("grammars of one batch must share a tokenizer")
        self.vocab_size = vocab.pop() if vocab else 0
        self.bitmask = xgr.allocate_token_bitmask(len(grammars), self.vocab_size) if self.rows else None
        self.steps = 0
        self.left_alone: set[int] = set()

    def keep_rows(self, keep: list[int]) -> None:
        """Only these rows (by batch position) go on decoding (training/generate.py `_decode`): their matchers, in
        that order, each still waiting to accept its row's last token."""
        where = {old: new for new, old in enumerate(keep)}
        self.rows = [where[r] for r in self.rows if r in where]
        self.matchers = {where[r]: m for r, m in self.matchers.items() if r in where}
        self.left_alone = {where[r] for r in self.left_alone if r in where}
        if self.bitmask is not None:
            self.bitmask = self.bitmask[: len(keep)].contiguous()

    def __call__(self, input_ids: torch.LongTensor, scores: torch.Tensor) -> torch.Tensor:
        if not self.rows:
            return scores
        active = []
        for r in self.rows:
            m = self.matchers[r]
            if r in self.left_alone or m.is_terminated():
                continue
            if self.steps and not m.accept_token(int(input_ids[r, -1])):
                self.left_alone.add(r)  # the row ended outside the grammar (a stop string): it is padding now
                continue
            if m.is_terminated():
                continue
            m.fill_next_token_bitmask(self.bitmask, r)
            active.append(r)
        self.steps += 1
        if not active:
            return scores
        device = scores.device
        out = scores if device.type in ("cpu", "cuda") else scores.to("cpu")
        self._xgr.apply_token_bitmask_inplace(out, self.bitmask.to(out.device), vocab_size=self.vocab_size,
                                              indices=active)
        return out if out.device == device else out.to(device)
