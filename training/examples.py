"""Training examples as token ids: chat-rendered, the loss on answer tokens only; and what a training call reports.

Each example `{"prompt", "answer", "system"?}` is rendered with the chat template as an optional system message, the
user prompt and the assistant answer. The prompt part is tokenized exactly as generation tokenizes it (template
with the generation prompt), the rest of the rendered text (answer and end-of-turn) follows; labels are -100 on the
prompt and on padding, so the loss counts answer tokens only.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

IGNORE = -100


@dataclass
class TrainStats:
    """What a training call did: optimizer steps, epochs (fractional), per-step losses, wall seconds, tokens seen
    (non-padding), answer tokens (those the loss counts) and examples skipped (no answer token within max_length)."""

    steps: int = 0
    epochs: float = 0.0
    losses: list[float] = field(default_factory=list)
    seconds: float = 0.0
    tokens: int = 0
    answer_tokens: int = 0
    skipped: int = 0


def example_messages(example: dict) -> list[dict]:
    """The chat messages of an example, without its answer."""
    msgs = []
    if example.get("system"):
        msgs.append({"role": "system", "content": example["system"]})
    msgs.append({"role": "user", "content": example["prompt"]})
    return msgs


def encode_example(tokenizer, example: dict, max_length: int) -> dict | None:
    """`{"input_ids", "labels"}` for one example, truncated to `max_length` tokens; labels are -100 on the prompt.
    None when no answer token survives the truncation."""
    msgs = example_messages(example)
    prompt_text = tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
    full_text = tokenizer.apply_chat_template(msgs + [{"role": "assistant", "content": example["answer"]}],
                                              tokenize=False)
    if not full_text.startswith(prompt_text):
        raise ValueError("the chat template does not render the prompt as a prefix of prompt + answer; "
                         "cannot mask the prompt exactly")
    answer_text = full_text[len(prompt_text):]
    p_ids = tokenizer(prompt_text, add_special_tokens=False)["input_ids"]
    a_ids = tokenizer(answer_text, add_special_tokens=False)["input_ids"]
    input_ids = (p_ids + a_ids)[:max_length]
    labels = ([IGNORE] * len(p_ids) + a_ids)[:max_length]
    if all(t == IGNORE for t in labels):
        return None
    return {"input_ids": input_ids, "labels": labels}


def collate(encoded: list[dict], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-pad a batch: padding gets `pad_id`, attention 0 and label -100."""
    width = max(len(e["input_ids"]) for e in encoded)
    ids = torch.full((len(encoded), width), pad_id, dtype=torch.long)
    labels = torch.full((len(encoded), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(encoded), width), dtype=torch.long)
    for r, e in enumerate(encoded):
        k = len(e["input_ids"])
        ids[r, :k] = torch.tensor(e["input_ids"], dtype=torch.long)
        labels[r, :k] = torch.tensor(e["labels"], dtype=torch.long)
        mask[r, :k] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}
