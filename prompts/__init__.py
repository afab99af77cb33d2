"""Prompt templates, one text file per agent action, loaded by name.

Templates use `$name` placeholders (string.Template), so JSON examples inside a prompt need no escaping. A rendered
prompt keeps its template name and variables, which is how the trace refers to it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from string import Template


@dataclass(frozen=True)
class Rendered:
    """A prompt after substitution, with what made it."""

    template: str
    text: str
    variables: dict = field(default_factory=dict)


@lru_cache(maxsize=None)
def template(name: str) -> str:
    """The raw text of prompts/<name>.txt."""
    path = resources.files(__package__) / f"{name}.txt"
    if not path.is_file():
        raise KeyError(f"no prompt template named {name!r} in prompts/")
    return path.read_text().strip()


def render(name: str, **variables) -> Rendered:
    """Substitute variables into a template; a missing variable is an error, never a silent blank."""
    text = Template(template(name)).substitute(**{k: str(v) for k, v in variables.items()})
    return Rendered(template=name, text=text, variables=variables)
