"""Teacher backends: a LangChain chat model from a spec string, so swapping teachers is one setting.

    openai:<model>              ChatOpenAI; the key comes from the env var named by teacher.api_key_env
    openai-compatible:<model>   ChatOpenAI against teacher.base_url (vLLM serve, llama.cpp, Ollama, SGLang)
    hf:<id|path|smollm2>        LocalHFChatModel (transformers in this process)
    vllm:<model>                LocalVLLMChatModel (in-process vLLM; optional extra `ioa[vllm]`)

The openai SDK's own retries are switched off (max_retries=0): retries, rate limits and concurrency live in the
Teacher client only. (LangChain's generic `init_chat_model` lives in the `langchain` package, which this project
does not install; ChatOpenAI is the factory it would call for both OpenAI specs anyway.)
"""
from __future__ import annotations

import importlib
import os

from langchain_core.language_models import BaseChatModel
from pydantic import SecretStr

from agents.teacher.errors import TeacherConfigError
from ioa_state.config import TeacherConfig

BACKENDS = ("openai", "openai-compatible", "hf", "vllm")
LOCAL_BACKENDS = frozenset({"hf", "vllm"})
VLLM_MISSING = "the vllm: teacher needs the optional extra: pip install 'ioa[vllm]'"


def parse_spec(spec: str) -> tuple[str, str]:
    """'openai-compatible:qwen' -> ('openai-compatible', 'qwen'); a clear error for anything else."""
    prefix, sep, model = (spec or "").partition(":")
    prefix, model = prefix.strip().lower(), model.strip()
    valid = ", ".join(f"{b}:<model>" for b in BACKENDS)
    if not sep or prefix not in BACKENDS:
        raise TeacherConfigError(f"unknown teacher spec {spec!r}: use one of {valid}")
    if not model:
        raise TeacherConfigError(f"teacher spec {spec!r} names no model: use {prefix}:<model>")
    return prefix, model


def _chat_openai(model: str, cfg: TeacherConfig, *, compatible: bool) -> BaseChatModel:
    from langchain_openai import ChatOpenAI

    key = os.environ.get(cfg.api_key_env)
    kwargs: dict = dict(model=model, temperature=cfg.temperature, max_tokens=cfg.max_tokens,
                        timeout=cfg.timeout_s, max_retries=0)
    if compatible:
        if not cfg.base_url:
            raise TeacherConfigError("the openai-compatible: teacher needs teacher.base_url "
                                     "(for example http://127.0.0.1:8000/v1)")
        kwargs.update(base_url=cfg.base_url, api_key=SecretStr(key or "EMPTY"), use_responses_api=False,
                      extra_body={"max_tokens": cfg.max_tokens})
    else:
        if not key:
            raise TeacherConfigError(f"the openai: teacher needs an API key in the environment variable "
                                     f"{cfg.api_key_env}, which is unset or empty")
        kwargs["api_key"] = SecretStr(key)
        if cfg.base_url:
            kwargs["base_url"] = cfg.base_url
    return ChatOpenAI(**kwargs)


def make_chat_model(spec: str, cfg: TeacherConfig) -> BaseChatModel:
    """The chat model a spec names, configured from cfg (temperature, max_tokens, timeout, batch size)."""
    backend, model = parse_spec(spec)
    if backend in ("openai", "openai-compatible"):
        return _chat_openai(model, cfg, compatible=backend == "openai-compatible")
    if backend == "hf":
        from agents.teacher.hf_chat import LocalHFChatModel

        return LocalHFChatModel(source=model, temperature=cfg.temperature, max_tokens=cfg.max_tokens,
                                batch_size=cfg.concurrency)
    try:
        importlib.import_module("vllm")
    except ImportError:
        raise TeacherConfigError(VLLM_MISSING) from None
    from agents.teacher.vllm_chat import LocalVLLMChatModel

    return LocalVLLMChatModel(model=model, temperature=cfg.temperature, max_tokens=cfg.max_tokens,
                              batch_size=cfg.concurrency)


def with_call_params(chat: BaseChatModel, backend: str, temperature: float, max_tokens: int) -> BaseChatModel:
    """A copy of a remote chat model that samples at this temperature and length (llama.cpp reads max_tokens
    from extra_body; OpenAI reads max_completion_tokens)."""
    update: dict = {"temperature": temperature, "max_tokens": max_tokens}
    if backend == "openai-compatible":
        update["extra_body"] = {**(getattr(chat, "extra_body", None) or {}), "max_tokens": max_tokens}
    return chat.model_copy(update=update)
