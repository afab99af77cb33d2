"""The `ioa` command line: the parser, one module per command (cli/run.py, trace.py, inspect.py, bench.py), and the
one place that turns every error into one line.

Every error a user can cause ends in one line on stderr and a non-zero exit (2: bad input, 3: budget reached,
1: anything else, with the traceback in the run's error.log, else a temp file); the run directory stays consistent, so
`ioa resume RUN` continues from the last checkpoint.
"""
from __future__ import annotations

import argparse
import os
import sys
import traceback
from pathlib import Path

from cli import bench as bench_cmd
from cli import inspect as inspect_cmd
from cli import run as run_cmd
from cli import trace as trace_cmd

EXIT_BAD_INPUT, EXIT_BUDGET, EXIT_FAILED = 2, 3, 1
CRASH_LOG = "error.log"


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
    p = argparse.ArgumentParser(
        prog="ioa", description="IOA: teach a student LLM from a teacher LLM (Identifier, Organizer, Adapter)."
    )
    sub = p.add_subparsers(dest="command", required=True)
    run_cmd.add_parsers(sub)
    trace_cmd.add_parser(sub)
    inspect_cmd.add_commands(sub)
    bench_cmd.add_parser(sub)
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
