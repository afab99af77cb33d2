"""Options shared by the commands: `--set KEY=VALUE` pairs and the flags that override config fields."""
from __future__ import annotations


def parse_set(pairs: list[str]) -> dict:
    """--set KEY=VALUE pairs as {dotted key: YAML value}; a malformed pair is bad input (ConfigError, exit 2)."""
    import yaml

    from ioa_state import ConfigError
    from ioa_state.config import yaml_where

    out = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"--set takes KEY=VALUE with a field name as KEY (e.g. thresholds.tau_gap=0.4), "
                              f"got {pair!r}")
        try:
            out[key] = yaml.safe_load(value)
        except yaml.YAMLError as e:
            raise ConfigError(f"--set {key}: {value!r} is not a YAML value{yaml_where(e)} "
                              f"(quote a string, close a list: [0.3])") from None
    return out


def overrides(args) -> dict:
    o = parse_set(getattr(args, "set", None))
    if getattr(args, "teacher", None):
        o["teacher.spec"] = args.teacher
    if getattr(args, "base_url", None):
        o["teacher.base_url"] = args.base_url
    if getattr(args, "seed", None) is not None:
        o["seed"] = args.seed
    if getattr(args, "run_id", None):
        o["run_id"] = args.run_id
    if getattr(args, "runs_dir", None):
        o["runs_dir"] = args.runs_dir
    if getattr(args, "budget", None) is not None:
        o["teacher.token_budget"] = args.budget
    return o
