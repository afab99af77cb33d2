"""Batched chat generation for exams and in-process teachers.

Conversations are rendered with the tokenizer's chat template (with the generation prompt), sorted by length,
left-padded into batches, generated under `torch.inference_mode()` in the model's own dtype, and returned in input
order. Greedy when `temperature == 0`. When `temperature > 0` every row samples with its own `torch.Generator`
seeded by `seeds[i]` (Gumbel-max on the tempered logits, inside a logits processor that leaves the chosen token the
only finite logit, so `generate` itself runs greedy): a row's sample depends on its own seed and prompt only, not on
which rows share its batch, so a resumed run reproduces the same samples.

**Prompt-prefix cache.** Conversations that open with the same system message (a teacher's knowledge sheet, a chat
template's default system prompt) share the tokens up to their first user message's content: they are grouped, the
key/value cache of that prefix is computed once per group and copied to every row of a batch, and only the rest of
each prompt is run through the model (the rows' remaining tokens left-padded after the shared prefix; positions
follow the attention mask). On a CPU, where prefill of a long context dominates, this makes the teacher's generation
with the Zorbia sheet 1.7-1.8x faster (benchmarks/bench_generation.py). Rows of different prefixes (a sheet read by
passages gives each question its own) share a batch: each row's prefix cache is left-padded to the batch's longest
(`_merged_cache`), so a call whose rows have ten prefixes is one batch, not ten (on this project's 2-core CPU a
decode step of 11 rows costs about twice one of a single row, not eleven times). The split depends on a row's own
conversation only, so a row's reply still does not depend on its batch; `prefix_cache=False` turns it off.

**Samples of one prompt.** A row marked `shared[i]` (one of several samples of its prompt: the Adapter's question
calls write `samples_per_seed` rewrites of each seed) takes its whole prompt but the last token as its prefix, so the
samples of one prompt in a call share one prefill and each runs a single token of its own before decoding (the
split depends on the row's own conversation and mark, so its reply still does not depend on its batch). That prefix
is computed on top of the row's shared system prefix (the sheet of the paragraph above), so prompts that share a
sheet still compute it once.

**Finished rows leave the batch.** `generate` decodes SEGMENT new tokens per call (`_decode`); after each call the
rows whose reply ended (end of turn, a stop string) are dropped from the batch and its cache, and the others go on
from where they were (same cache, sampler generator and grammar matcher), so a batch no longer decodes its finished
rows to its longest reply (a question call's rows end at 15-25 tokens and one runs to 40; a decode step's cost grows
with its rows on a CPU). A row's reply is the one it gets decoded with the full batch to the end.

**Grammar.** `constraints[i]` (a JSON schema dict, a `training.grammar.Regex` form, or None) constrains row i's
reply to JSON valid for that schema, or to text matching that form (training/grammar.py, xgrammar): each constraint
is compiled once per tokenizer, every batch gets a new `GrammarMask`
over its own rows' grammars, applied before the row-seeded sampler, so a constrained sample is still drawn from its
row's own generator. Rows with and without a constraint share batches and the prefix cache. `Generation.finished`
says whether a reply ended by itself (end of turn or a stop string) rather than at `max_new_tokens`: a constrained
reply that did not finish is JSON (or a form) cut short.
"""
from __future__ import annotations

import copy
import inspect
from dataclasses import dataclass
from typing import Callable

import torch
from transformers import GenerationConfig, LogitsProcessor, LogitsProcessorList, StoppingCriteria, StoppingCriteriaList

from training.device import apply_thread_setting
from training.grammar import GrammarMask, grammar_book, model_vocab_size

SEGMENT = 16  # new tokens per `generate` call before the rows whose reply ended leave the batch (`_decode`)


@dataclass(frozen=True)
class Generation:
    """One reply: its text (stop string and special tokens removed, stripped), prompt and reply token counts, and
    whether it ended by itself (False: cut at max_new_tokens)."""

    text: str
    tokens_in: int
    tokens_out: int
    finished: bool = True


class RowSeededSampler(LogitsProcessor):
    """Samples each row with that row's own generator; every logit but the sampled one becomes -inf."""

    def __init__(self, temperature: float, generators: list[torch.Generator]):
        if temperature <= 0:
            raise ValueError("RowSeededSampler needs temperature > 0")
        self.temperature = float(temperature)
        self.generators = generators

    def keep_rows(self, keep: list[int]) -> None:
        """Only these rows (by batch position) go on decoding (`_decode`): their generators, in that order."""
        self.generators = [self.generators[j] for j in keep]

    def __call__(self, input_ids: torch.LongTensor, scores: torch.Tensor) -> torch.Tensor:
        logits = scores.float() / self.temperature
        out = torch.full_like(scores, float("-inf"))
        tiny = torch.finfo(torch.float32).tiny
        for i, gen in enumerate(self.generators):
            u = torch.rand(logits.shape[-1], generator=gen, device=logits.device, dtype=torch.float32)
            gumbel = -torch.log(-torch.log(u.clamp(min=tiny, max=1.0 - 1e-7)))
            out[i, int(torch.argmax(logits[i] + gumbel))] = 0.0
        return out


class StopOnStrings(StoppingCriteria):
    """Marks a row done once its generated text contains one of `stops`."""

    def __init__(self, tokenizer, stops: list[str], prompt_len: int):
        self.tokenizer, self.stops, self.prompt_len = tokenizer, [s for s in stops if s], prompt_len

    def __call__(self, input_ids: torch.LongTensor, scores, **kwargs) -> torch.BoolTensor:
        done = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
        for i, row in enumerate(input_ids[:, self.prompt_len:].tolist()):
            text = self.tokenizer.decode(row, skip_special_tokens=True)
            done[i] = any(s in text for s in self.stops)
        return done


def render_prompt(tokenizer, conversation: list[dict]) -> str:
    """The chat-template text of `conversation` followed by the assistant's generation prompt."""
    return tokenizer.apply_chat_template(conversation, tokenize=False, add_generation_prompt=True)


def _eos_ids(model, tokenizer) -> list[int]:
    ids: set[int] = set()
    eos = getattr(model.generation_config, "eos_token_id", None)
    if isinstance(eos, int):
        ids.add(eos)
    elif eos:
        ids.update(int(e) for e in eos)
    if tokenizer.eos_token_id is not None:
        ids.add(int(tokenizer.eos_token_id))
    return sorted(ids)


def _cut_at_stop(tokenizer, tokens: list[int], stops: list[str]) -> tuple[str, int]:
    """Decode `tokens`; when a stop string appears, cut the text before it and count the tokens it took."""
    text = tokenizer.decode(tokens, skip_special_tokens=True)
    hits = [text.find(s) for s in stops if s and s in text]
    if not hits:
        return text, len(tokens)
    cut = min(hits)
    n = len(tokens)
    for k in range(1, len(tokens) + 1):  # the first prefix whose text reaches a stop string
        if any(s in tokenizer.decode(tokens[:k], skip_special_tokens=True) for s in stops if s):
            n = k
            break
    return text[:cut], n


MIN_PREFIX_TOKENS = 8  # a shorter shared prefix is not worth a separate forward pass


def prompt_prefix_len(tokenizer, conversation: list[dict], text: str, ids: list[int]) -> int:
    """Tokens of `ids` (`text`, the rendered `conversation`, tokenized) before the first non-system message's
    content: the system turn (the conversation's own or the one its chat template adds) and the opening of the user
    turn, the same for every conversation that shares that system message. 0 when those tokens are not a prefix of
    `ids` (a template that rewrites the text, a token merged across the boundary) or are too few to be worth a
    forward pass."""
    first = next((m for m in conversation if m.get("role") != "system"), None)
    if first is None or not first.get("content"):
        return 0
    start = 0
    system = conversation[0].get("content") if conversation[0].get("role") == "system" else None
    if system:
        at = text.find(system)
        if at < 0:
            return 0
        start = at + len(system)
    pos = text.find(first["content"], start)
    if pos <= 0:
        return 0
    head_ids = tokenizer(text[:pos], add_special_tokens=False)["input_ids"]
    n = len(head_ids)
    if n < MIN_PREFIX_TOKENS or n >= len(ids) or ids[:n] != head_ids:
        return 0
    return n


def _prefix_len(tokenizer, conversation: list[dict], text: str, ids: list[int], whole: bool) -> int:
    """A row's prefix: its whole prompt but the last token when it is one of several samples of that prompt
    (`whole`), else the part it shares with every conversation that has its system message (`prompt_prefix_len`)."""
    if whole and len(ids) > MIN_PREFIX_TOKENS:
        return len(ids) - 1
    return prompt_prefix_len(tokenizer, conversation, text, ids)


def _cache_kwarg(model) -> str:
    """The name under which this transformers version takes a KV cache (`cache` from 5.2x, `past_key_values` before)."""
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


def _prefix_cache(model, tokens: tuple[int, ...], device, base=None):
    """The key/value cache (batch 1) of `tokens`, or, given `base` (the cache of the tokens before them), of both: a
    copy of `base` extended by `tokens`."""
    extra = {_cache_kwarg(model): copy.deepcopy(base)} if base is not None else {}
    out = model(input_ids=torch.tensor([list(tokens)], dtype=torch.long, device=device), use_cache=True, **extra)
    return getattr(out, "cache", None) or out.past_key_values


def _batches(encoded: list[list[int]], prefixes: list[tuple[int, ...]], batch_size: int,
             mixed: bool = False) -> list[list[int]]:
    """Row indices per batch. Rows are grouped by their prompt prefix, longest first in each group (memory trouble
    shows at once); a batch holds one group's rows, or, with `mixed` (the prefixes' caches can be merged:
    `_merged_cache`), the groups follow each other and a batch is filled across them."""
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, prefix in enumerate(prefixes):
        groups.setdefault(prefix, []).append(i)
    runs = [sorted(rows, key=lambda i: -len(encoded[i])) for rows in groups.values()]
    if mixed:
        runs = [[i for rows in runs for i in rows]]
    return [rows[s:s + batch_size] for rows in runs for s in range(0, len(rows), batch_size)]


def _mergeable(cache) -> bool:
    """Whether caches like this one can be merged into one batch (`_merged_cache`): every layer a plain DynamicLayer
    (no sliding window, no quantisation), whose keys and values are [batch, heads, positions, dim] tensors."""
    from transformers.cache_utils import DynamicLayer

    layers = getattr(cache, "layers", None)
    return bool(layers) and all(type(layer) is DynamicLayer and layer.keys is not None for layer in layers)


def _merged_cache(row_caches: list, width: int):
    """One batch's key/value cache from each row's prefix cache (batch 1, None for a row without a shared prefix),
    each left-padded with zeros to `width` positions: the padded positions are masked out (the attention mask), and
    a row's positions follow its mask, so each row sees its own prefix at the positions it was computed at."""
    base = copy.deepcopy(next(c for c in row_caches if c is not None))
    for li, layer in enumerate(base.layers):
        for name in ("keys", "values"):
            ref = getattr(layer, name)
            own = [ref[:, :, :0] if c is None else getattr(c.layers[li], name) for c in row_caches]
            padded = [torch.nn.functional.pad(t, (0, 0, width - t.shape[-2], 0)) for t in own]
            setattr(layer, name, torch.cat(padded, dim=0))
    return base


def generate(model, tokenizer, conversations: list[list[dict]], *, max_new_tokens: int, temperature: float = 0.0,
             seeds: list[int] | None = None, batch_size: int = 16, stop: list[str] | None = None,
             prefix_cache: bool = True, on_batch: Callable[[int, int, int], None] | None = None,
             constraints: list | None = None, shared: list[bool] | None = None) -> list[Generation]:
    """Reply to each conversation (lists of `{"role", "content"}` messages); results come in input order.

    `seeds[i]` seeds row i's sampler when `temperature > 0` (default: its index). `stop` strings end a reply early
    and are cut from its text. `prefix_cache` computes a shared prompt prefix once (see the module docstring).
    `on_batch(done_rows, total_rows, new_tokens)` is called after every batch (a caller's progress bar).
    `constraints[i]` constrains row i to that JSON schema or Regex form (None: unconstrained; see the module
    docstring). `shared[i]` marks row i as one of several samples of its prompt (its whole prompt is its prefix)."""
    n = len(conversations)
    seeds = _check_args(n, max_new_tokens, temperature, batch_size, seeds, constraints)
    if shared is not None and len(shared) != n:
        raise ValueError(f"got {len(shared)} shared marks for {n} conversations")
    if n == 0:
        return []
    apply_thread_setting()  # a bench job takes the cores its ended neighbours left (training/device.py)
    stops = [s for s in (stop or []) if s]
    device = next(model.parameters()).device
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    eos_ids = _eos_ids(model, tokenizer)
    end_ids = set(eos_ids) | {pad_id}
    grammars = _grammars(model, tokenizer, constraints, eos_ids)
    texts = [render_prompt(tokenizer, c) for c in conversations]
    encoded = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
    prefixes = [tuple(ids[:_prefix_len(tokenizer, c, t, ids, bool(shared and shared[i])) if prefix_cache else 0])
                for i, (c, t, ids) in enumerate(zip(conversations, texts, encoded))]
    gen_cfg = GenerationConfig(max_new_tokens=max_new_tokens, do_sample=False, num_beams=1, use_cache=True,
                               pad_token_id=pad_id, eos_token_id=eos_ids)
    results: list[Generation | None] = [None] * n
    caches: dict[tuple[int, ...], object] = {}  # the key/value cache of each shared prefix, computed once
    was_training, _ = model.training, model.eval()
    try:
        with torch.inference_mode():
            for i, prefix in enumerate(prefixes):  # the key/value cache of each shared prefix, computed once
                if prefix and prefix not in caches:
                    # a sample's whole prompt extends its system prefix's cache (once per distinct prompt)
                    head = (tuple(encoded[i][:prompt_prefix_len(tokenizer, conversations[i], texts[i], encoded[i])])
                            if shared and shared[i] else ())
                    if head and len(head) < len(prefix):
                        if head not in caches:
                            caches[head] = _prefix_cache(model, head, device)
                        caches[prefix] = _prefix_cache(model, prefix[len(head):], device, base=caches[head])
                    else:
                        caches[prefix] = _prefix_cache(model, prefix, device)
            mixed = bool(caches) and all(_mergeable(c) for c in caches.values())
            for idx in _batches(encoded, prefixes, batch_size, mixed):
                heads = [prefixes[i] for i in idx]
                ids, mask = _batch_tensors(heads, [encoded[i][len(prefixes[i]):] for i in idx], pad_id)
                extra = {}
                if len(set(heads)) == 1 and heads[0]:  # one prefix: its cache, once per row
                    cache = copy.deepcopy(caches[heads[0]])
                    cache.batch_repeat_interleave(len(idx))
                    extra[_cache_kwarg(model)] = cache
                elif any(heads):  # several (mixed): each row's own, padded to the longest
                    width = max(len(p) for p in heads)
                    extra[_cache_kwarg(model)] = _merged_cache([caches.get(p) for p in heads], width)
                processors = LogitsProcessorList()
                if grammars and any(grammars[i] is not None for i in idx):  # masks before the sampler draws
                    processors.append(GrammarMask([grammars[i] for i in idx]))
                if temperature > 0:
                    gens = [torch.Generator(device=device).manual_seed(int(seeds[i])) for i in idx]
                    processors.append(RowSeededSampler(temperature, gens))
                prompt_len = ids.shape[1]
                criteria = StoppingCriteriaList([StopOnStrings(tokenizer, stops, prompt_len)] if stops else [])
                new = _decode(model, ids.to(device), mask.to(device), gen_cfg, processors, criteria, extra,
                              max_new_tokens, lambda toks: _ended(tokenizer, toks, end_ids, stops))
                for r, i in enumerate(idx):
                    results[i] = _reply(tokenizer, new[r], end_ids, stops, len(encoded[i]))
                if on_batch is not None:
                    on_batch(sum(g is not None for g in results), n, sum(results[i].tokens_out for i in idx))
    finally:
        if was_training:
            model.train()
    return results  # type: ignore[return-value]


def _ended(tokenizer, tokens: list[int], end_ids: set[int], stops: list[str]) -> bool:
    """Whether a row's reply so far has ended: an end-of-turn (or pad) token, or one of the stop strings."""
    if any(t in end_ids for t in tokens):
        return True
    return bool(stops) and any(s in tokenizer.decode(tokens, skip_special_tokens=True) for s in stops)


def _decode(model, ids: torch.Tensor, mask: torch.Tensor, gen_cfg: GenerationConfig, processors: LogitsProcessorList,
            criteria: StoppingCriteriaList, extra: dict, max_new_tokens: int,
            ended: Callable[[list[int]], bool]) -> list[list[int]]:
    """Each row's generated tokens, decoded SEGMENT tokens per `generate` call; after each call the rows whose reply
    ended leave the batch (their cache rows dropped), so the rest decode in a smaller batch instead of dragging the
    finished rows along to the longest reply (on a CPU a decode step's cost grows with its rows). A row's tokens are
    those of one uninterrupted call: its cache, its sampler's generator and its grammar matcher carry over."""
    rows = list(range(ids.shape[0]))
    new: list[list[int]] = [[] for _ in rows]
    cache_kw = _cache_kwarg(model)
    while rows:
        step = min(SEGMENT, max_new_tokens - len(new[rows[0]]))
        cfg = copy.copy(gen_cfg)
        cfg.max_new_tokens, cfg.return_dict_in_generate = step, True
        out = model.generate(input_ids=ids, attention_mask=mask, generation_config=cfg, logits_processor=processors,
                             stopping_criteria=criteria, **extra)
        gen = out.sequences[:, ids.shape[1]:]
        for j, r in enumerate(rows):
            new[r] += gen[j].tolist()
        keep = [j for j, r in enumerate(rows) if not ended(new[r]) and len(new[r]) < max_new_tokens]
        if not keep:
            break
        index = torch.tensor(keep, device=ids.device)
        cache = getattr(out, "cache", None) or out.past_key_values
        cache.batch_select_indices(index)
        extra = {cache_kw: cache}
        ids = out.sequences[index]
        mask = torch.cat([mask, torch.ones_like(gen)], dim=1)[index]
        rows = [rows[j] for j in keep]
        for p in processors:
            if hasattr(p, "keep_rows"):
                p.keep_rows(keep)
    return new


def _check_args(n: int, max_new_tokens: int, temperature: float, batch_size: int, seeds: list[int] | None,
                constraints: list | None) -> list[int]:
    """generate's arguments checked; the seeds (default: each row's index)."""
    if max_new_tokens < 1:
        raise ValueError("max_new_tokens must be at least 1")
    if temperature < 0:
        raise ValueError("temperature must be >= 0")
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    seeds = list(range(n)) if seeds is None else seeds
    if len(seeds) != n:
        raise ValueError(f"got {len(seeds)} seeds for {n} conversations")
    if constraints is not None and len(constraints) != n:
        raise ValueError(f"got {len(constraints)} constraints for {n} conversations")
    return seeds


def _batch_tensors(prefixes: list[tuple[int, ...]], rows: list[list[int]],
                   pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """input_ids and attention mask of one batch: each row's prefix left-padded to the longest prefix, then its
    own tokens left-padded after it (padding inside a row is masked out, and positions follow the mask)."""
    plen, width = max(len(p) for p in prefixes), max(len(r) for r in rows)
    ids = torch.full((len(rows), plen + width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), plen + width), dtype=torch.long)
    for r, (prefix, row) in enumerate(zip(prefixes, rows)):
        if prefix:
            ids[r, plen - len(prefix):plen] = torch.tensor(prefix, dtype=torch.long)
            mask[r, plen - len(prefix):plen] = 1
        ids[r, plen + width - len(row):] = torch.tensor(row, dtype=torch.long)
        mask[r, plen + width - len(row):] = 1
    return ids, mask


def _grammars(model, tokenizer, constraints: list | None, eos_ids: list[int]) -> list | None:
    """Each row's compiled grammar (None: unconstrained), compiled before any generation starts; None when no row
    has a schema."""
    if not constraints or all(s is None for s in constraints):
        return None
    book = grammar_book(tokenizer, model_vocab_size(model), eos_ids)
    return [None if s is None else book.compile(s) for s in constraints]


def _reply(tokenizer, new: list[int], end_ids: set[int], stops: list[str], tokens_in: int) -> Generation:
    """One row's Generation from its generated tokens: cut at the end of turn or a stop string, counted as paid."""
    k = next((j for j, t in enumerate(new) if t in end_ids), None)
    tokens = new if k is None else new[:k]
    counted = len(new) if k is None else k + 1  # the end-of-turn token was generated too
    text, used = _cut_at_stop(tokenizer, tokens, stops) if stops else (
        tokenizer.decode(tokens, skip_special_tokens=True), len(tokens))
    if used < len(tokens):
        counted = used
    finished = k is not None or used < len(tokens)
    return Generation(text=text.strip(), tokens_in=tokens_in, tokens_out=counted, finished=finished)
