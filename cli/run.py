"""`ioa run`, `ioa resume` and `ioa status`: start a run, continue one from its last checkpoint, and say where it
stands."""

from __future__ import annotations

from pathlib import Path

from cli.options import overrides


def add_parsers(sub) -> None:
    r = sub.add_parser("run", help="start a run (no config: the embedded default)")
    r.add_argument("config", nargs="?", help="YAML run config (see examples/)")
    r.add_argument(
        "--teacher", help="teacher spec: hf:smollm2 | openai:<model> | openai-compatible:<model> | vllm:<model>"
    )
    r.add_argument("--base-url", help="base URL of an OpenAI-compatible server")
    r.add_argument("--seed", type=int)
    r.add_argument("--run-id")
    r.add_argument("--runs-dir")
    r.add_argument("--budget", type=int, help="teacher token budget (stops cleanly, resumable)")
    r.add_argument(
        "--set", action="append", metavar="KEY=VALUE", help="override a config field, e.g. thresholds.tau_mastery=0.8"
    )
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


def cmd_run(args) -> int:
    from graph import runner
    from ioa_state import load_config

    cfg = load_config(args.config, overrides(args))
    run_dir, state = runner.start(cfg, progress=runner.stderr_progress,
                                  on_run_dir=lambda d: setattr(args, "crash_dir", d))
    return _finish(run_dir, state)


def cmd_resume(args) -> int:
    from graph import runner

    args.crash_dir = runner.resolve_run_dir(args.run, args.runs_dir or "runs")
    run_dir, state = runner.resume(args.run, args.runs_dir or "runs", overrides(args), progress=runner.stderr_progress)
    return _finish(run_dir, state)


def _finish(run_dir: Path, state) -> int:
    from agents.reporter import format_table, read_report
    from viewers.html_report import write_html

    if state.report is not None:
        data = read_report(run_dir / state.report.path)
        print(format_table(data))
        print(f"run directory: {run_dir} (report page: {write_html(run_dir)})")
        if state.stop_reason:
            from ioa_state.state import BUDGET_STOP

            hint = (f"; raise the budget with `ioa resume {run_dir.name} --budget N`"
                    if state.stop_reason.startswith(BUDGET_STOP) else "")
            print(f"stopped early: {state.stop_reason}; the report is of the student as last trained{hint}")
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
                  "teacher-limited" if m.teacher_limited else "known (watched)" if k in state.known else "-")
        print(f"{k[:17]:<18}{(m.teacher_score or 0):>6.2f}{ps if ps is not None else float('nan'):>6.2f}"
              f"{r if r is not None else float('nan'):>6.2f}  {status}")
    if state.decisions:
        d = state.decisions[-1]
        print(f"last decision: {d.kind} - {d.reason}")
    tokens = sum(u.tokens_in + u.tokens_out for u in state.usage.values())
    print(f"teacher tokens: {tokens}")
    if state.item_files or state.dropped_files:
        from agents.synthesis_yield import run_yield, yield_line

        print(yield_line(run_yield(run_dir, state.item_files, state.dropped_files, state.usage)))
    return 0


def _status_word(run_dir: Path, status: str) -> str:
    """The state's status, unless the last attempt crashed after its last checkpoint (error.log is newer)."""
    log = run_dir / "error.log"  # cli/main.py CRASH_LOG
    ckpt = [p.stat().st_mtime for p in run_dir.glob("checkpoints.sqlite*")]
    if status == "running" and log.is_file() and ckpt and log.stat().st_mtime > max(ckpt):
        return f"stopped by an error (see {log}; continue with `ioa resume {run_dir.name}`)"
    return status
