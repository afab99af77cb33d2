"""Batched chat generation for exams and in-process teachers.

Conversations are rendered with the tokenizer's chat template (with the generation prompt), sorted by length,
left-padded into batches, generated under `torch.inference_mode()` in the model's own dtype, and returned in input
order. Greedy when `temperature == 0`. When `temperature > 0` every row samples with its own `torch.Generator`
seeded by `seeds[i]` (Gumbel-max on the tempered logits, inside a logits processor that leaves the chosen token the
only finite logit, so `generate` itself runs greedy): a row's sample depends on its own seed and prompt only, not on
which rows share its batch, so a resumed run reproduces the same samples.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from transformers import GenerationConfig, LogitsProcessor, LogitsProcessorList, StoppingCriteria, StoppingCriteriaList


@dataclass(frozen=True)
class Generation:
    """One reply: its text (stop string and special tokens removed, stripped), prompt and reply token counts."""

    text: str
    tokens_in: int
    tokens_out: int


class RowSeededSampler(LogitsProcessor):
    """Samples each row with that row's own generator; every logit but the sampled one becomes -inf."""

    def __init__(self, temperature: float, generators: list[torch.Generator]):
        if temperature <= 0:
            raise ValueError("RowSeededSampler needs temperature > 0")
        self.temperature = float(temperature)
        self.generators = generators

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


def generate(model, tokenizer, conversations: list[list[dict]], *, max_new_tokens: int, temperature: float = 0.0,
             seeds: list[int] | None = None, batch_size: int = 16, stop: list[str] | None = None) -> list[Generation]:
    """Reply to each conversation (lists of `{"role", "content"}` messages); results come in input order.

    `seeds[i]` seeds row i's sampler when `temperature > 0` (default: its index). `stop` strings end a reply early
    and are cut from its text."""
    if max_new_tokens < 1:
        raise ValueError("max_new_tokens must be at least 1")
    if temperature < 0:
        raise ValueError("temperature must be >= 0")
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    n = len(conversations)
    if seeds is None:
        seeds = list(range(n))
    if len(seeds) != n:
        raise ValueError(f"got {len(seeds)} seeds for {n} conversations")
    if n == 0:
        return []
    stops = [s for s in (stop or []) if s]
    device = next(model.parameters()).device
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    eos_ids = _eos_ids(model, tokenizer)
    end_ids = set(eos_ids) | {pad_id}
    encoded = [tokenizer(render_prompt(tokenizer, c), add_special_tokens=False)["input_ids"] for c in conversations]
    order = sorted(range(n), key=lambda i: -len(encoded[i]))  # longest first: memory trouble shows at once
    gen_cfg = GenerationConfig(max_new_tokens=max_new_tokens, do_sample=False, num_beams=1, use_cache=True,
                               pad_token_id=pad_id, eos_token_id=eos_ids)
    results: list[Generation | None] = [None] * n
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            for start in range(0, n, batch_size):
                idx = order[start:start + batch_size]
                width = max(len(encoded[i]) for i in idx)
                ids = torch.full((len(idx), width), pad_id, dtype=torch.long)
                mask = torch.zeros((len(idx), width), dtype=torch.long)
                for r, i in enumerate(idx):
                    row = encoded[i]
                    ids[r, width - len(row):] = torch.tensor(row, dtype=torch.long)
                    mask[r, width - len(row):] = 1
                processors = LogitsProcessorList()
                if temperature > 0:
                    gens = [torch.Generator(device=device).manual_seed(int(seeds[i])) for i in idx]
                    processors.append(RowSeededSampler(temperature, gens))
                criteria = StoppingCriteriaList([StopOnStrings(tokenizer, stops, width)] if stops else [])
                out = model.generate(input_ids=ids.to(device), attention_mask=mask.to(device),
                                     generation_config=gen_cfg, logits_processor=processors,
                                     stopping_criteria=criteria)
                for r, i in enumerate(idx):
                    new = out[r, width:].tolist()
                    k = next((j for j, t in enumerate(new) if t in end_ids), None)
                    tokens = new if k is None else new[:k]
                    counted = len(new) if k is None else k + 1  # the end-of-turn token was generated too
                    text, used = _cut_at_stop(tokenizer, tokens, stops) if stops else (
                        tokenizer.decode(tokens, skip_special_tokens=True), len(tokens))
                    if used < len(tokens):
                        counted = used
                    results[i] = Generation(text=text.strip(), tokens_in=len(encoded[i]), tokens_out=counted)
    finally:
        if was_training:
            model.train()
    return results  # type: ignore[return-value]
