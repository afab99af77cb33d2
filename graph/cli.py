"""The `ioa` command line: run, resume, status (and the inspection commands that build on them).

Every error a user can cause ends in one line on stderr and a non-zero exit (2: bad input, 3: budget reached,
1: anything else, with the traceback in the run's error.log, else a temp file); the run directory stays consistent, so
`ioa resume RUN` continues from the last checkpoint.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from pathlib import Path

EXIT_BAD_INPUT, EXIT_BUDGET, EXIT_FAILED = 2, 3, 1
CRASH_LOG = "error.log"


def _parse_set(pairs: list[str]) -> dict:
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


def _overrides(args) -> dict:
    o = _parse_set(getattr(args, "set", None))
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


def cmd_run(args) -> int:
    from graph import runner
    from ioa_state import load_config

    cfg = load_config(args.config, _overrides(args))
    run_dir, state = runner.start(cfg, progress=runner.stderr_progress,
                                  on_run_dir=lambda d: setattr(args, "crash_dir", d))
    return _finish(run_dir, state)


def cmd_resume(args) -> int:
    from graph import runner

    args.crash_dir = runner.resolve_run_dir(args.run, args.runs_dir or "runs")
    run_dir, state = runner.resume(args.run, args.runs_dir or "runs", _overrides(args), progress=runner.stderr_progress)
    return _finish(run_dir, state)


def _finish(run_dir: Path, state) -> int:
    from agents.reporter import format_table
    from graph.html_report import write_html

    if state.report is not None:
        data = json.loads((run_dir / state.report.path).read_text())
        print(format_table(data))
        print(f"run directory: {run_dir} (report page: {write_html(run_dir)})")
    return 0


def cmd_status(args) -> int:
    from graph import runner
    from ioa_state import pedagogy as ped

    run_dir = runner.resolve_run_dir(args.run, args.runs_dir or "runs")
    state = runner.load_state(run_dir)
    if state is None:
        print(f"run {run_dir.name}: no checkpoint yet")
        return 0
    stage = state.stage()
    print(f"run {state.run_id}: {_status_word(run_dir, state.status)}, phase {state.phase}, cycle {state.cycle}, "
          f"stage {state.current_stage + 1 if stage else '-'} of {len(state.stages)}, round {state.round_in_stage}, "
          f"{state.total_rounds} rounds in all, {state.optimizer_steps} optimizer steps")
    eps = 1e-6
    print(f"{'module':<18}{'P_T':>6}{'P_S':>6}{'r':>6}  status (P_S: the latest exam that scored the module)")
    for k, m in sorted(state.modules.items()):
        ps = next((o.scores[k] for o in reversed(state.observations) if k in o.scores), None)
        r = ped.mastery_ratio(ps, m.teacher_score or 0.0, eps) if ps is not None else None
        status = ("passed" if k in state.passed else "not mastered" if k in state.not_mastered else
                  "in stage" if stage and k in stage.modules else "target" if k in state.targets else
                  "teacher-limited" if m.teacher_limited else "-")
        print(f"{k[:17]:<18}{(m.teacher_score or 0):>6.2f}{ps if ps is not None else float('nan'):>6.2f}"
              f"{r if r is not None else float('nan'):>6.2f}  {status}")
    if state.decisions:
        d = state.decisions[-1]
        print(f"last decision: {d.kind} - {d.reason}")
    tokens = sum(u.tokens_in + u.tokens_out for u in state.usage.values())
    print(f"teacher tokens: {tokens}")
    return 0


def _status_word(run_dir: Path, status: str) -> str:
    """The state's status, unless the last attempt crashed after its last checkpoint (error.log is newer)."""
    log = run_dir / CRASH_LOG
    ckpt = [p.stat().st_mtime for p in run_dir.glob("checkpoints.sqlite*")]
    if status == "running" and log.is_file() and ckpt and log.stat().st_mtime > max(ckpt):
        return f"stopped by an error (see {log}; continue with `ioa resume {run_dir.name}`)"
    return status


def write_crash_log(run_dir: Path | None) -> Path | None:
    """The traceback (secrets scrubbed) in the run's error.log for `run` / `resume` (`args.crash_dir`; reading
    commands never write into a run), else a temp file; None when neither can be written: the handler never crashes."""
    import tempfile

    text = traceback.format_exc()
    try:
        from agents.tracing import scrub
        text = scrub(text)
    except Exception:  # noqa: BLE001 - an unscrubbable traceback is still written
        pass
    if run_dir is not None and Path(run_dir).is_dir():
        try:
            (Path(run_dir) / CRASH_LOG).write_text(text)
            return Path(run_dir) / CRASH_LOG
        except OSError:
            pass
    try:
        fd, name = tempfile.mkstemp(prefix="ioa-error-", suffix=".log")
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        return Path(name)
    except OSError:
        return None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ioa", description="IOA: teach a student LLM from a teacher LLM (Identifier, Organizer, Adapter).")
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="start a run (no config: the embedded default)")
    r.add_argument("config", nargs="?", help="YAML run config (see examples/)")
    r.add_argument("--teacher", help="teacher spec: hf:smollm2 | openai:<model> | openai-compatible:<model> | vllm:<model>")
    r.add_argument("--base-url", help="base URL of an OpenAI-compatible server")
    r.add_argument("--seed", type=int)
    r.add_argument("--run-id")
    r.add_argument("--runs-dir")
    r.add_argument("--budget", type=int, help="teacher token budget (stops cleanly, resumable)")
    r.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config field, e.g. thresholds.tau_mastery=0.8")
    r.set_defaults(fn=cmd_run)
    s = sub.add_parser("resume", help="continue a run from its last checkpoint")
    s.add_argument("run", help="run id (under runs/) or run directory")
    s.add_argument("--runs-dir")
    s.add_argument("--budget", type=int, help="raise the teacher token budget")
    s.add_argument("--set", action="append", metavar="KEY=VALUE")
    s.set_defaults(fn=cmd_resume)
    st = sub.add_parser("status", help="where a run stands: stage, round, mastery per module, last decision")
    st.add_argument("run")
    st.add_argument("--runs-dir")
    st.set_defaults(fn=cmd_status)
    from graph import inspect_cli
    inspect_cli.add_commands(sub)
    from bench import command as bench_command
    bench_command.add_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    args = build_parser().parse_args(argv)
    from agents.adapter import ItemShortage
    from ioa_state import ConfigError

    try:
        from agents.teacher import BudgetExhausted, TeacherUnavailable
    except ImportError:  # pragma: no cover - the teacher package always has it
        BudgetExhausted = TeacherUnavailable = RuntimeError  # noqa: N806
    try:
        return args.fn(args)
    except ConfigError as e:
        print(f"ioa: error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except ItemShortage as e:
        print(f"ioa: error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except BudgetExhausted as e:
        run = getattr(args, "run", None) or getattr(args, "run_id", None) or "RUN"
        print(f"ioa: stopped: {e}; raise it with `ioa resume {run} --budget N`", file=sys.stderr)
        return EXIT_BUDGET
    except TeacherUnavailable as e:  # the teacher died mid-run: not a result; the last checkpoint is before the node
        run = getattr(args, "run", None) or (e.run_dir and str(e.run_dir)) or "RUN"
        print(f"ioa: stopped: {e}; once the server is back, continue with `ioa resume {run}`", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("ioa: interrupted; continue with `ioa resume RUN`", file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001 - the one place that turns a crash into one line
        log = write_crash_log(getattr(args, "crash_dir", None))
        first = str(e).splitlines()[0] if str(e) else ""
        print(f"ioa: error: {type(e).__name__}: {first} ({f'traceback in {log}' if log else 'no traceback saved'})",
              file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
