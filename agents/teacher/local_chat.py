"""Base class of in-process chat models that generate many conversations in one batched call.

`LocalBatchedChatModel` is a LangChain `BaseChatModel`: `invoke` runs one conversation through `_generate`, and
`batch` is overridden to run true batched generation: requests are grouped by (temperature, max_tokens, stop) and
each group goes to `_run_group` at once. Per-request parameters come from each request's config
(`{"configurable": {"seed": 7, "temperature": 0.7, "max_tokens": 64}}`) or from keyword arguments (shared by all).
A request without a seed gets one derived from the conversation and the model's `seed`, so its sample never depends
on what else is in the batch. `{"configurable": {"json_schema": {...}}}` constrains that request's reply to the
schema, `{"configurable": {"regex": "..."}}` to text matching that form (the backend's grammar); requests with
different constraints, or none, still share a group. `{"configurable": {"share_prompt": True}}` marks a request as
one of several samples of its prompt: the backend may compute that prompt once for all of them (`shared`). Replies are
`AIMessage`s with `usage_metadata` (input/output/total tokens) and `response_metadata["finish_reason"]`: "stop", or
"length" when the reply was cut at max_tokens.
"""
from __future__ import annotations

import hashlib
import json
from abc import abstractmethod
from typing import Any, Callable, Sequence

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import RunnableConfig
from langchain_core.runnables.config import get_config_list

_ROLES = {"system": "system", "human": "user", "ai": "assistant", "tool": "tool", "chat": "user", "function": "tool"}
_PARAMS = ("seed", "temperature", "max_tokens", "stop")


def constraint(params: dict) -> Any:
    """A request's constraint from its parameters: its `json_schema` (a dict), its `regex` form as a
    training.grammar.Regex, or None."""
    if params.get("json_schema") is not None:
        return params["json_schema"]
    if params.get("regex"):
        from training.grammar import Regex

        return Regex(str(params["regex"]))
    return None


def to_dicts(messages: Sequence[BaseMessage]) -> list[dict]:
    """LangChain messages -> [{"role", "content"}] with string content."""
    out = []
    for m in messages:
        content = m.content if isinstance(m.content, str) else "".join(
            p.get("text", "") if isinstance(p, dict) else str(p) for p in m.content)
        role = getattr(m, "role", None) if m.type == "chat" else _ROLES.get(m.type, "user")
        out.append({"role": role or "user", "content": content})
    return out


def stable_seed(conversation: list[dict], base_seed: int) -> int:
    blob = json.dumps([base_seed, conversation], sort_keys=True, ensure_ascii=False)
    return int(hashlib.sha256(blob.encode()).hexdigest()[:8], 16)


class LocalBatchedChatModel(BaseChatModel):
    """A chat model whose subclasses implement `_run_group` (a list of conversations, one parameter set)."""

    temperature: float = 0.7
    max_tokens: int = 96
    batch_size: int = 8
    seed: int = 0

    @abstractmethod
    def _run_group(self, conversations: list[list[dict]], *, temperature: float, max_tokens: int,
                   seeds: list[int], stop: list[str] | None,
                   constraints: list | None = None, shared: list[bool] | None = None) -> list[tuple]:
        """Generate one reply per conversation: (text, tokens_in, tokens_out[, finished]); `constraints[i]`, when
        given, constrains reply i to that JSON schema (a dict) or form (a training.grammar.Regex); `shared[i]`, when
        given, says that conversation i is one of several samples of its prompt."""

    def _params(self, overrides: dict[str, Any]) -> dict[str, Any]:
        p = {"temperature": self.temperature, "max_tokens": self.max_tokens, "seed": None, "stop": None}
        p.update({k: v for k, v in overrides.items() if k in _PARAMS and v is not None})
        if "max_new_tokens" in overrides and overrides["max_new_tokens"] is not None:
            p["max_tokens"] = overrides["max_new_tokens"]
        return p

    def _message(self, text: str, tokens_in: int, tokens_out: int, finished: bool = True) -> AIMessage:
        return AIMessage(
            content=text,
            usage_metadata={"input_tokens": tokens_in, "output_tokens": tokens_out,
                            "total_tokens": tokens_in + tokens_out},
            response_metadata={"model_name": self._model_name(), "finish_reason": "stop" if finished else "length"},
        )

    def _model_name(self) -> str:
        return self._llm_type

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        p = self._params({**kwargs, "stop": stop or kwargs.get("stop")})
        conv = to_dicts(messages)
        seed = p["seed"] if p["seed"] is not None else stable_seed(conv, self.seed)
        (text, tin, tout, *fin), = self._run_group([conv], temperature=float(p["temperature"]),
                                                   max_tokens=int(p["max_tokens"]), seeds=[int(seed)], stop=p["stop"],
                                                   constraints=[constraint(kwargs)])
        msg = self._message(text, tin, tout, bool(fin[0]) if fin else True)
        return ChatResult(generations=[ChatGeneration(message=msg)],
                          llm_output={"token_usage": {"prompt_tokens": tin, "completion_tokens": tout}})

    def batch(self, inputs: list[LanguageModelInput], config: RunnableConfig | list[RunnableConfig] | None = None,
              *, return_exceptions: bool = False, on_rows: Callable[[int, int], None] | None = None,
              **kwargs: Any) -> list[Any]:
        """Batched generation: one `_run_group` call per (temperature, max_tokens, stop) group, results in order.
        `on_rows(rows, new_tokens)` is called as rows finish (a caller's progress bar; backends that cannot tell
        call nothing)."""
        if not inputs:
            return []
        configs = get_config_list(config, len(inputs))
        results: list[Any] = [None] * len(inputs)
        groups: dict[tuple, list[tuple[int, list[dict], int]]] = {}
        constraints: dict[int, Any] = {}
        shared: dict[int, bool] = {}
        for i, (inp, cfg) in enumerate(zip(inputs, configs)):
            try:
                conv = to_dicts(self._convert_input(inp).to_messages())
                p = self._params({**kwargs, **(cfg.get("configurable") or {})})
                seed = p["seed"] if p["seed"] is not None else stable_seed(conv, self.seed)
                gkey = (float(p["temperature"]), int(p["max_tokens"]), tuple(p["stop"] or ()))
                constraints[i] = constraint(cfg.get("configurable") or {})
                shared[i] = bool((cfg.get("configurable") or {}).get("share_prompt"))
            except Exception as e:
                if not return_exceptions:
                    raise
                results[i] = e
                continue
            groups.setdefault(gkey, []).append((i, conv, int(seed)))
        for (temperature, max_tokens, stop), members in groups.items():
            try:
                outs = self._run_group([c for _, c, _ in members], temperature=temperature, max_tokens=max_tokens,
                                       seeds=[s for _, _, s in members], stop=list(stop) or None,
                                       constraints=[constraints.get(i) for i, _, _ in members],
                                       **({"shared": [shared.get(i, False) for i, _, _ in members]}
                                          if any(shared.get(i) for i, _, _ in members) else {}),
                                       **({"on_rows": on_rows} if on_rows is not None else {}))
                if len(outs) != len(members):
                    raise RuntimeError(f"generation returned {len(outs)} replies for {len(members)} requests")
            except Exception as e:
                if not return_exceptions:
                    raise
                for i, _, _ in members:
                    results[i] = e
                continue
            for (i, _, _), (text, tin, tout, *fin) in zip(members, outs):
                results[i] = self._message(text, int(tin), int(tout), bool(fin[0]) if fin else True)
        return results
