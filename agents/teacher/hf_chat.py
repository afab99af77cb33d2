"""`LocalHFChatModel`: a transformers model in this process as a LangChain chat model (the `hf:` teacher).

The model is loaded lazily, once per process and source, through `training.loading.load_model` (`source` is a hub
id, a local directory, or `smollm2` for the packaged SmolLM2-135M-Instruct), and generation goes through
`training.generate.generate`, which samples each row with its own seed (a row's sample does not depend on its
batch). `batch()` runs true batched generation (see `LocalBatchedChatModel`), `batch_size` rows at a time. A request's
`json_schema` (or `regex` form) is enforced by xgrammar during generation (training/grammar.py), row by row; the
samples of one prompt (`share_prompt`) are generated over one computation of that prompt (`generate`'s `shared`).
"""
from __future__ import annotations

import threading
from typing import Any

from agents.teacher.errors import TeacherConfigError
from agents.teacher.local_chat import LocalBatchedChatModel

_LOADED: dict[tuple, tuple[Any, Any]] = {}
_LOAD_LOCK = threading.Lock()
_GEN_LOCK = threading.Lock()  # one generation at a time per process: the CPU is the bottleneck anyway


def clear_loaded_models() -> None:
    """Forget the models loaded so far (tests; freeing memory)."""
    with _LOAD_LOCK:
        _LOADED.clear()


class LocalHFChatModel(LocalBatchedChatModel):
    """Chat with a transformers causal LM loaded by training.loading."""

    source: str = "smollm2"
    device: str = "auto"
    keep_layers: list[int] | None = None

    @property
    def _llm_type(self) -> str:
        return "ioa-hf"

    def _model_name(self) -> str:
        return self.source

    def load(self) -> tuple[Any, Any]:
        """(model, tokenizer), loaded on first use and shared by every instance with the same source."""
        from training.loading import load_model

        key = (load_model, self.source, self.device, tuple(self.keep_layers or ()), self.seed)
        with _LOAD_LOCK:
            if key not in _LOADED:
                try:
                    _LOADED[key] = load_model(self.source, keep_layers=self.keep_layers, device=self.device,
                                              seed=self.seed)
                except (OSError, ValueError, ImportError) as e:
                    first = (str(e).strip().splitlines() or [type(e).__name__])[0]
                    raise TeacherConfigError(f"the hf: teacher cannot load {self.source!r}: {first}") from e
            return _LOADED[key]

    def _run_group(self, conversations: list[list[dict]], *, temperature: float, max_tokens: int,
                   seeds: list[int], stop: list[str] | None,
                   constraints: list | None = None, shared: list[bool] | None = None,
                   on_rows=None) -> list[tuple[str, int, int, bool]]:
        from training.generate import generate

        model, tokenizer = self.load()
        done = [0]

        def on_batch(rows: int, total: int, tokens: int) -> None:  # generate counts rows done so far
            on_rows(rows - done[0], tokens)
            done[0] = rows

        with _GEN_LOCK:
            gens = generate(model, tokenizer, conversations, max_new_tokens=max_tokens, temperature=temperature,
                            seeds=seeds, batch_size=self.batch_size, stop=stop,
                            **({"on_batch": on_batch} if on_rows is not None else {}),
                            **({"constraints": constraints} if constraints and any(constraints) else {}),
                            **({"shared": shared} if shared and any(shared) else {}))
        return [(g.text, int(g.tokens_in), int(g.tokens_out), bool(getattr(g, "finished", True))) for g in gens]
