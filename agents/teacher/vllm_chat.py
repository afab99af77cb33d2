"""`LocalVLLMChatModel`: an in-process vLLM engine as a LangChain chat model (the `vllm:` teacher, optional extra).

vLLM is imported only when this model is built (`make_chat_model` checks first and names the extra to install).
The engine is created lazily, once per process and model; a batch goes to `LLM.chat` with one `SamplingParams` per
request (its own seed), and vLLM schedules the rows itself. A request's `json_schema` (or `regex` form) goes to
vLLM's own structured outputs (`StructuredOutputsParams(json=...)` / `(regex=...)` in recent vLLM,
`GuidedDecodingParams` in older ones).
"""
from __future__ import annotations

import threading
from typing import Any

from pydantic import Field

from agents.teacher.local_chat import LocalBatchedChatModel

_ENGINES: dict[tuple, Any] = {}
_LOCK = threading.Lock()


class LocalVLLMChatModel(LocalBatchedChatModel):
    """Chat with a vLLM `LLM` engine in this process."""

    model: str
    engine_kwargs: dict[str, Any] = Field(default_factory=dict, description="extra vllm.LLM(...) arguments")

    @property
    def _llm_type(self) -> str:
        return "ioa-vllm"

    def _model_name(self) -> str:
        return self.model

    def engine(self) -> Any:
        from vllm import LLM

        key = (self.model, self.seed, tuple(sorted(self.engine_kwargs.items())))
        with _LOCK:
            if key not in _ENGINES:
                _ENGINES[key] = LLM(model=self.model, seed=self.seed, **self.engine_kwargs)
            return _ENGINES[key]

    def _run_group(self, conversations: list[list[dict]], *, temperature: float, max_tokens: int,
                   seeds: list[int], stop: list[str] | None,
                   constraints: list | None = None, shared: list[bool] | None = None,
                   on_rows=None) -> list[tuple[str, int, int, bool]]:  # vLLM schedules rows itself: no progress
        # `shared` needs nothing here: vLLM's prefix caching computes a prompt's blocks once for its samples
        from vllm import SamplingParams

        llm = self.engine()
        schemas = constraints or [None] * len(seeds)
        params = [SamplingParams(temperature=temperature, max_tokens=max_tokens, seed=s, stop=stop,
                                 **structured_kwargs(js)) for s, js in zip(seeds, schemas)]
        outs = llm.chat(conversations, sampling_params=params, use_tqdm=False)
        return [(o.outputs[0].text, len(o.prompt_token_ids or []), len(o.outputs[0].token_ids),
                 o.outputs[0].finish_reason != "length") for o in outs]


def structured_kwargs(constraint: Any) -> dict[str, Any]:
    """The SamplingParams arguments that constrain a reply to a JSON schema (a dict) or a form (a
    training.grammar.Regex), in the installed vLLM's own terms."""
    if constraint is None:
        return {}
    from training.grammar import Regex

    what = {"regex": constraint.pattern} if isinstance(constraint, Regex) else {"json": constraint}
    try:
        from vllm.sampling_params import StructuredOutputsParams  # recent vLLM
    except ImportError:
        from vllm.sampling_params import GuidedDecodingParams  # older vLLM

        return {"guided_decoding": GuidedDecodingParams(**what)}
    return {"structured_outputs": StructuredOutputsParams(**what)}
