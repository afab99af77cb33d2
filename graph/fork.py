"""A run that starts from another run's first diagnosis: the bench's ablations share the IOA run's (algorithm §5), and
in a budget sweep an IOA run shares that of the same seed's IOA run at a smaller budget.

The first diagnosis (modules, the teacher's gate and test answers, the initial student's scores, the prerequisite
prior) is the same measurement for IOA and for each of its ablations: no_organizer and no_adapter replace later
nodes, no_identifier only the targeting step at the end of the node (`baselines.ablations.uniform_targets`). So a
bench ablation does not measure it again: `fork_after_diagnosis` writes the ablation run's first checkpoint from the
IOA run's state right after its first `diagnose` node, and the run goes on from `plan` as if it had diagnosed
itself. What the diagnosis cost is charged to the ablation too: the state's teacher `usage` carries its tokens (the
teacher's accounts are restored from it), and its trace starts with the IOA run's diagnosis events (teacher calls,
module diagnoses, the node's wall seconds), then one `diagnosis_shared` event naming the source run. For
no_identifier the targets (and severity) are recomputed with its own targeting step on the shared measurements.

The budget only stops a run (a call whose reservation does not fit is not sent): a diagnosis that a run at budget B'
finished is the diagnosis a run at any budget B >= B' makes, call for call. So an IOA run at B may start from the
first diagnosis of the same seed's finished IOA run at B' <= B (`ioa bench --budgets`; bench/arms.py
`diagnosis_donor`), charged the same way.

A fork killed before its checkpoint leaves nothing to resume: the next attempt clears what it wrote and forks again.
"""
from __future__ import annotations

from pathlib import Path

from agents.checkpoints import DEAD_ATTEMPT_FILES, has_checkpoint, thread
from agents.runtime import save_config
from agents.tracing import TraceWriter, read_lines
from ioa_state import LearnerState, RunConfig, load_config

# the ablations whose first diagnosis is IOA's (no_identifier: its measurements, with its own targeting)
SHARES_DIAGNOSIS = ("no_identifier", "no_organizer", "no_adapter")
# what may start from another run's first diagnosis: those ablations, and IOA itself (from an IOA run at a smaller
# budget)
FORKS = ("none", *SHARES_DIAGNOSIS)


def diagnosed_state(src_dir: Path) -> LearnerState | None:
    """The source run's learner state right after its first `diagnose` node (None when it has none yet)."""
    from graph.runner import compiled

    src_dir = Path(src_dir)
    if not has_checkpoint(src_dir):
        return None
    src_cfg = load_config(src_dir / "config.yaml")
    graph = compiled(src_dir, src_cfg.ablation, read_only=True)
    try:
        first = None
        for snap in graph.get_state_history(thread(src_cfg.run_id)):  # newest first: the last match is the first
            if snap.values and snap.next == ("plan",) and snap.values.get("cycle", 0) == 0:
                first = snap
        return LearnerState.model_validate(first.values) if first else None
    finally:
        graph.checkpointer.conn.close()


def retarget(state: LearnerState, cfg: RunConfig) -> tuple[LearnerState, dict]:
    """The shared first diagnosis with this ablation's targeting step (no_identifier's; the others keep IOA's
    targets); the trace fields of the targeting it did."""
    from baselines.ablations import uniform_targets

    th = cfg.thresholds
    limited = sorted(k for k, m in state.modules.items() if m.teacher_limited)
    if cfg.ablation != "no_identifier":
        return state, {"targets": state.targets}
    targets, sev, caveats = uniform_targets(state, state.modules, state.deficient, limited, state.severity,
                                            state.edges, th)
    update = {"targets": targets, "severity": sev, "caveats": sorted(set(state.caveats) | set(caveats))}
    return state.model_copy(update=update), {"targets": targets, "severity": sev}


def copy_diagnosis_trace(src_dir: Path, dst: TraceWriter) -> tuple[int, float]:
    """Append the source run's trace up to its first diagnose node_end to `dst` (events as written, seq renumbered
    by the writer); returns (teacher tokens paid in it, the node's wall seconds)."""
    tokens, seconds = 0, 0.0
    for e in read_lines(Path(src_dir) / "trace.jsonl"):
        fields = {k: v for k, v in e.items() if k not in ("seq", "ts", "event")}
        dst.emit(e["event"], **fields)
        if e["event"] == "teacher_call" and not e.get("cached"):
            tokens += int(e.get("tokens_in") or 0) + int(e.get("tokens_out") or 0)
        if e["event"] == "node_end" and e.get("node") == "diagnose":
            seconds = float(e.get("seconds") or 0.0)
            break
    return tokens, seconds


def fork_after_diagnosis(cfg: RunConfig, src_dir: Path, progress=None) -> bool:
    """Write cfg's run directory with its first checkpoint taken from src_dir's first diagnosis (see the module
    docstring); False (nothing written) when src_dir has no first diagnosis to share. The caller then resumes it.
    The caller checks that the two runs' configs agree but for the run's identity and the ablation."""
    if cfg.ablation not in FORKS:
        raise ValueError(f"ablation {cfg.ablation!r} does not share IOA's first diagnosis")
    from graph.runner import compiled

    state = diagnosed_state(src_dir)
    if state is None:
        return False
    run_dir = Path(cfg.runs_dir) / cfg.run_id
    if has_checkpoint(run_dir):
        raise RuntimeError(f"run {cfg.run_id} already has a checkpoint: resume it, do not fork it")
    for name in DEAD_ATTEMPT_FILES:  # an earlier fork that died before its checkpoint
        (run_dir / name).unlink(missing_ok=True)
    run_dir.mkdir(parents=True, exist_ok=True)
    save_config(cfg, run_dir)
    state, targeting = retarget(state.model_copy(update={"run_id": cfg.run_id}), cfg)
    trace = TraceWriter(run_dir / "trace.jsonl")
    try:
        tokens, seconds = copy_diagnosis_trace(src_dir, trace)
        trace.emit("diagnosis_shared", node="diagnose", cycle=0, source=Path(src_dir).name, tokens=tokens,
                   seconds=seconds, ablation=cfg.ablation, **targeting)
        if cfg.ablation == "no_identifier":  # its own targeting step: the targets event a diagnosis ends with
            trace.emit("targets", node="diagnose", cycle=0, targets=state.targets, deficient=state.deficient,
                       teacher_limited=sorted(k for k, m in state.modules.items() if m.teacher_limited),
                       target_fraction=cfg.thresholds.target_fraction, caveats=state.caveats)
    finally:
        trace.close()
    graph = compiled(run_dir, cfg.ablation)
    try:  # the fields as the diagnose node returns them (typed records, as every checkpoint holds them)
        graph.update_state(thread(cfg.run_id), {k: getattr(state, k) for k in LearnerState.model_fields},
                           as_node="diagnose")
    finally:
        graph.checkpointer.conn.close()
    if progress:
        progress(f"{cfg.run_id}: starts from {Path(src_dir).name}'s first diagnosis ({tokens} teacher tokens, "
                 f"charged to this run too)")
    return True
