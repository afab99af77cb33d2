"""A run's checkpoints (runs/<id>/checkpoints.sqlite, LangGraph's SqliteSaver, thread_id = run_id), read and opened
without the graph: the runner writes them through the compiled graph; the viewers, the baselines and `ioa status`
read the latest learner state here, read-only, so that nothing is ever written into a run they look at.
"""
from __future__ import annotations

import sqlite3
from pathlib import Path

import yaml

from ioa_state import LearnerState
from ioa_state import state as state_mod

STATE_TYPES = [getattr(state_mod, n) for n in ("LearnerState", "Module", "Observation", "Edge", "Stage", "Decision",
                                               "ArtifactRef", "Usage", "Item")]


def _serde():
    from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
    return JsonPlusSerializer(allowed_msgpack_modules=STATE_TYPES)


CHECKPOINTS = "checkpoints.sqlite"
# what an attempt that died before its first checkpoint leaves (cleared when its run_id is reused)
DEAD_ATTEMPT_FILES = (CHECKPOINTS, CHECKPOINTS + "-wal", CHECKPOINTS + "-shm", "trace.jsonl", "error.log")


def checkpointer(run_dir: Path, read_only: bool = False):
    """LangGraph's SqliteSaver on runs/<id>/checkpoints.sqlite, restricted to our state types. `read_only` (for
    status, trace, inspect, report) opens the file so that nothing is ever written into the run."""
    from langgraph.checkpoint.sqlite import SqliteSaver
    path = run_dir / CHECKPOINTS
    if read_only:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False)
    else:
        conn = sqlite3.connect(str(path), check_same_thread=False)
    saver = SqliteSaver(conn, serde=_serde())
    if read_only:
        saver.is_setup = True  # its setup creates tables: the run made them, or there is nothing to read
    return saver


def has_checkpoint(run_dir: Path) -> bool:
    """Whether the run has written a checkpoint (read-only: a folder without one is free to reuse)."""
    path = run_dir / CHECKPOINTS
    if not path.is_file():
        return False
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            return conn.execute("SELECT 1 FROM checkpoints LIMIT 1").fetchone() is not None
        finally:
            conn.close()
    except sqlite3.Error:  # no table yet: the attempt died before its first checkpoint
        return False


def thread(run_id: str) -> dict:
    return {"configurable": {"thread_id": run_id}, "recursion_limit": 10_000}


def load_state(run_dir: Path) -> LearnerState | None:
    """The latest checkpointed learner state of a run (None before its first checkpoint); writes nothing."""
    run_dir = Path(run_dir)
    if not has_checkpoint(run_dir):
        return None
    cfg = yaml.safe_load((run_dir / "config.yaml").read_text())
    saver = checkpointer(run_dir, read_only=True)
    try:
        tup = saver.get_tuple(thread(cfg["run_id"]))
    finally:
        saver.conn.close()
    values = tup.checkpoint.get("channel_values") if tup else None
    fields = {k: v for k, v in (values or {}).items() if k in LearnerState.model_fields}  # not the branch channels
    return LearnerState.model_validate(fields) if fields else None
