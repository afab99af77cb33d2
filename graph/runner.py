"""Runs: create a run directory, build the services, run or resume the compiled graph with a SQLite checkpointer.

runs/<run_id>/ holds config.yaml (resolved, no secrets), checkpoints.sqlite (LangGraph SqliteSaver, thread_id =
run_id), teacher_cache.sqlite, items/, student/, trace.jsonl and report.json. A killed run resumes from its last
checkpoint; the teacher-call cache makes a resume spend no teacher token twice.
"""
from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path
from typing import Callable

from agents.checkpoints import CHECKPOINTS, DEAD_ATTEMPT_FILES, checkpointer, has_checkpoint, load_state, thread  # noqa: F401
from agents.runtime import Services, load_task, save_config  # noqa: F401 (save_config: graph.runner's API)
from agents.tracing import TraceWriter
from graph.builder import build
from ioa_state import ConfigError, LearnerState, RunConfig, load_config
from ioa_state.state import BUDGET_STOP


def resolve_run_dir(run: str, runs_dir: str = "runs") -> Path:
    """A run given by id (under runs_dir) or by path."""
    for cand in (Path(run), Path(runs_dir) / run):
        if (cand / "config.yaml").is_file():
            return cand
    raise ConfigError(f"no run {run!r}: expected {Path(runs_dir) / run}/config.yaml (or a path to a run directory)")


def new_run_dir(cfg: RunConfig) -> tuple[str, Path]:
    run_id = cfg.run_id or f"{cfg.task.pack}-{time.strftime('%Y%m%d-%H%M%S')}-s{cfg.seed}"
    run_dir = Path(cfg.runs_dir) / run_id
    if has_checkpoint(run_dir):
        raise ConfigError(
            f"run {run_id} already exists in {cfg.runs_dir}: "
            f"continue it with `ioa resume {run_id}` or pick another run_id"
        )
    for name in DEAD_ATTEMPT_FILES:  # an attempt that died before its first checkpoint: nothing to keep
        (run_dir / name).unlink(missing_ok=True)
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_id, run_dir


def _only_ours(run_dir: Path) -> bool:
    """Whether a run folder holds only what a run writes before its first checkpoint (never a user's own files)."""
    ours = {*DEAD_ATTEMPT_FILES, "config.yaml", ".config.yaml.tmp", "teacher_cache.sqlite", "teacher_cache.sqlite-wal",
            "teacher_cache.sqlite-shm", "items", "student"}
    return all(p.name in ours and (p.is_file() or not any(p.iterdir())) for p in run_dir.iterdir())


def preflight(cfg: RunConfig) -> None:
    """Every input that can be checked without loading a model: the teacher(s) answer, the student source exists."""
    from agents.teacher.preflight import check_teacher
    from training.loading import check_source

    check_teacher(cfg.teacher)
    check_source(cfg.student.source)


def make_services(cfg: RunConfig, run_dir: Path, progress: Callable[[str], None] | None = None,
                  echo: Callable[[dict], None] | None = None, task=None) -> Services:
    """Task pack, items, teacher, student and trace for a run (no model is loaded yet)."""
    from agents.progress import teacher_progress
    from agents.teacher import Teacher
    from training.student import Student

    pack, items = task or load_task(cfg)
    trace = TraceWriter(run_dir / "trace.jsonl", echo=echo)

    def teacher_event(event: dict) -> None:
        event = dict(event)
        trace.emit(event.pop("event", "teacher_call"), **event)

    teacher = Teacher(cfg.teacher, run_dir, trace=teacher_event, progress=teacher_progress())
    student = Student(cfg.student, run_dir, seed=cfg.seed)
    return Services(cfg=cfg, run_dir=run_dir, pack=pack, items=items, teacher=teacher, student=student, trace=trace,
                    progress=progress or (lambda msg: None))


def compiled(run_dir: Path, ablation: str = "none", read_only: bool = False):
    """The graph (of IOA, or of an ablation) over the run's checkpoints; its services come as the run context."""
    return build(ablation).compile(checkpointer=checkpointer(run_dir, read_only))


def execute(svc: Services, run_id: str, fresh: bool) -> LearnerState:
    """Run the graph to its end (fresh) or from the last checkpoint (resume); returns the final state."""
    graph = compiled(svc.run_dir, svc.cfg.ablation)
    cfg = thread(run_id)
    if not fresh:
        snap = graph.get_state(cfg)
        # also before the first checkpoint: the calls a killed first node paid are this run's spend
        svc.teacher.restore_usage(LearnerState.model_validate(snap.values).usage if snap.values else {})
        if not snap.next and snap.values:
            before = budget_stop_origin(graph, cfg, svc)
            if before is None:
                return LearnerState.model_validate(snap.values)
            cfg = before  # a raised budget: continue from the checkpoint the budget stopped (a fork of it)
    inp = LearnerState(run_id=run_id) if fresh or not graph.get_state(cfg).values else None
    from agents.teacher import BudgetExhausted

    try:
        for _ in graph.stream(inp, cfg, context=svc, stream_mode="updates"):
            continue
    except BudgetExhausted as e:
        if not stop_at_budget(graph, thread(run_id), svc, e):
            raise
        for _ in graph.stream(None, thread(run_id), context=svc, stream_mode="updates"):
            continue
    return LearnerState.model_validate(graph.get_state(thread(run_id)).values)


def budget_stop_origin(graph, cfg: dict, svc: Services) -> dict | None:
    """For a run that stopped at its budget and is resumed with a larger one: the config of the last checkpoint
    before the stop, to continue from (the node the budget interrupted runs again; its paid replies are cached)."""
    state = LearnerState.model_validate(graph.get_state(cfg).values)
    budget = svc.cfg.teacher.token_budget
    if not (state.stop_reason or "").startswith(BUDGET_STOP):
        return None
    spent = sum(u.tokens_in + u.tokens_out for u in state.usage.values())
    if budget is not None and budget <= spent:
        return None
    for snap in graph.get_state_history(cfg):  # newest first
        if snap.values and snap.values.get("status") == "running" and not snap.values.get("stop_reason"):
            svc.progress(f"the budget is now {budget or 'unlimited'}: continuing from before the budget stop")
            return snap.config
    return None


def stop_at_budget(graph, cfg: dict, svc: Services, e: Exception) -> bool:
    """The teacher-token budget ran out (§5: a run stops cleanly at it): from the last checkpoint, record a finish
    decision and route to the report (the student as last trained, the spend as paid, and what the interrupted
    node recorded: `e.state_update`, the Adapter's dropped file of a round cut before any item was kept). False
    when the budget ran out before the first diagnosis was checkpointed: then there is nothing to report and the
    error stands."""
    from agents.examiner import trace_decisions
    from ioa_state import Decision

    state = LearnerState.model_validate(graph.get_state(cfg).values or {"run_id": "?"})
    if not state.test_teacher:
        return False
    stage = state.stage()
    reason = f"{BUDGET_STOP} ({e.spent} of {e.budget} tokens)"
    d = Decision(kind="finish", cycle=state.cycle, stage=stage.index if stage else None,
                 round=stage.rounds if stage else 0, reason=reason,
                 numbers={"spent": e.spent, "budget": e.budget}, thresholds={},
                 modules=list(stage.modules) if stage else [])
    trace_decisions(svc, [d], d.modules, node="budget")
    # as if `remediate` had run: its route sends a stopped run to the report
    recorded = {k: getattr(state, k) + v for k, v in getattr(e, "state_update", {}).items()}
    graph.update_state(cfg, {"status": "stopped", "stop_reason": reason, "decisions": state.decisions + [d],
                             "usage": svc.usage(), **recorded}, as_node="remediate")
    return True


def start(cfg: RunConfig, progress=None, echo=None, on_run_dir=None) -> tuple[Path, LearnerState]:
    """A fresh run: every input checked first; a failure before the first checkpoint removes the folder it made.
    `on_run_dir(path)` learns the run directory as soon as it exists (for the CLI's crash log)."""
    task = load_task(cfg)
    preflight(cfg)
    run_id, run_dir = new_run_dir(cfg)
    if on_run_dir:
        on_run_dir(run_dir)
    try:
        cfg = cfg.model_copy(update={"run_id": run_id})
        save_config(cfg, run_dir)
        if progress:
            progress(f"run {run_id} in {run_dir} (resume with `ioa resume {run_id}`)")
        svc = make_services(cfg, run_dir, progress, echo, task)
        try:
            return run_dir, execute(svc, run_id, fresh=True)
        finally:
            svc.trace.close()
    except BaseException:
        if not has_checkpoint(run_dir) and _only_ours(run_dir):  # nothing to resume: leave nothing behind
            shutil.rmtree(run_dir, ignore_errors=True)
        raise


def resume(
    run: str, runs_dir: str = "runs", overrides: dict | None = None, progress=None, echo=None
) -> tuple[Path, LearnerState]:
    run_dir = resolve_run_dir(run, runs_dir)
    cfg = load_config(run_dir / "config.yaml", overrides)
    preflight(cfg)
    if overrides:
        save_config(cfg, run_dir)
    if progress:
        progress(f"resuming run {cfg.run_id} in {run_dir} from its last checkpoint")
    svc = make_services(cfg, run_dir, progress, echo)
    try:
        return run_dir, execute(svc, cfg.run_id, fresh=False)
    finally:
        svc.trace.close()


def stderr_progress(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)
