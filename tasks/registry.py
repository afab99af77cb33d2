"""Pick a task pack by name: `load_pack(TaskConfig) -> TaskPack`, validated up front.

Packs: "zorbia-mixed" (the embedded default) and "zorbia" (tasks.zorbia, imported lazily), "gsm8k", "humaneval" and
"jsonl". The pack's items are built and split here, so a user's mistake (unknown pack, missing file, empty data, a
field name the records lack, fewer items than the splits need) surfaces as one ioa_state.ConfigError line before a
run starts.
"""
from __future__ import annotations

import importlib

from ioa_state import ConfigError, TaskConfig
from tasks.base import CHECKER_NAMES, TaskPack

__all__ = ["PACKS", "available_packs", "load_pack"]

PACKS: dict[str, tuple[str, str]] = {
    "zorbia": ("tasks.zorbia", "ZorbiaPack"),
    "zorbia-mixed": ("tasks.zorbia", "ZorbiaMixedPack"),
    "gsm8k": ("tasks.gsm8k", "Gsm8kPack"),
    "humaneval": ("tasks.humaneval", "HumanEvalPack"),
    "jsonl": ("tasks.jsonl", "JsonlPack"),
}


def available_packs() -> list[str]:
    """Names `load_pack` accepts."""
    return list(PACKS)


def load_pack(task: TaskConfig) -> TaskPack:
    """The task pack the config names, with its items loaded and split (raises ConfigError on a user's mistake)."""
    name = (task.pack or "").strip().lower()
    if name not in PACKS:
        raise ConfigError(f"unknown task pack {task.pack!r}: set task.pack to one of {', '.join(PACKS)} "
                          f"(jsonl with task.path for your own data)")
    module_name, class_name = PACKS[name]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name == module_name:
            raise ConfigError(f"task pack {name!r} is not installed ({module_name} is missing): "
                              f"reinstall ioa or choose another task.pack") from None
        raise
    pack = getattr(module, class_name)(task)
    if pack.checker not in CHECKER_NAMES:
        raise ConfigError(f"task pack {name!r} declares unknown checker {pack.checker!r}; expected one of "
                          f"{', '.join(CHECKER_NAMES)}")
    pack.items()
    return pack
