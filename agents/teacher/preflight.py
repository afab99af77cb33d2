"""Teacher preflight: every teacher a run names answers before any work starts (no folder, no model loaded).

For each spec in `teacher.spec` and `teacher.roles`: the spec parses and its chat model can be made (prefix, API key,
optional extra: `make_chat_model`, which loads nothing); an `openai:` / `openai-compatible:` server answers
`GET {base_url}/models` within a short timeout and accepts the key; an `hf:` source resolves
(`training.loading.check_source`). `vllm:` has no cheap check (loading the model is the check) and is skipped.
A failure is a `TeacherUnreachable` (a `TeacherConfigError`): one line naming the spec and the URL.
"""
from __future__ import annotations

import os
import urllib.error
import urllib.request

from agents.teacher.backends import make_chat_model, parse_spec
from agents.teacher.errors import TeacherConfigError
from ioa_state.config import TeacherConfig

OPENAI_URL = "https://api.openai.com/v1"
PREFLIGHT_TIMEOUT_S = 5.0  # a server that cannot list its models in 5 s will not serve a run


class TeacherUnreachable(TeacherConfigError):
    """The teacher's server does not answer, or refuses the key."""


def teacher_specs(cfg: TeacherConfig) -> list[str]:
    """The distinct specs a run calls: teacher.spec, then teacher.roles' overrides."""
    return list(dict.fromkeys([cfg.spec, *cfg.roles.values()]))


def check_teacher(cfg: TeacherConfig, timeout_s: float | None = None) -> None:
    """Raise TeacherConfigError (one line) unless every teacher of the run can be reached."""
    timeout = min(cfg.timeout_s, timeout_s or PREFLIGHT_TIMEOUT_S)
    for spec in teacher_specs(cfg):
        backend, model = parse_spec(spec)
        make_chat_model(spec, cfg)  # unknown prefix, missing key or base_url, missing extra
        if backend in ("openai", "openai-compatible"):
            check_server(spec, cfg.base_url or OPENAI_URL, os.environ.get(cfg.api_key_env), cfg.api_key_env, timeout)
        elif backend == "hf":
            from training.loading import check_source

            check_source(model)


def check_server(spec: str, base_url: str, key: str | None, key_env: str, timeout: float) -> None:
    """GET {base_url}/models: any answer but 401/403/5xx means the server is there; no answer names the URL."""
    url = base_url.rstrip("/") + "/models"
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {key or 'EMPTY'}"})
    try:
        with urllib.request.urlopen(req, timeout=timeout):
            return
    except urllib.error.HTTPError as e:
        if e.code in (401, 403):
            raise TeacherUnreachable(
                f"teacher {spec}: {url} refused the API key in {key_env} (HTTP {e.code})"
            ) from None
        if e.code >= 500:
            raise TeacherUnreachable(f"teacher {spec}: {url} answered HTTP {e.code}: check the server") from None
    except (urllib.error.URLError, OSError, ValueError) as e:
        why = getattr(e, "reason", None) or e
        raise TeacherUnreachable(f"teacher {spec}: no answer from {url} within {timeout:g}s ({why}): start the "
                                 f"server or fix teacher.base_url") from None
