"""The graph for LangGraph Studio: `langgraph dev` (see langgraph.json at the repository root) opens `graph` here.

`graph` is the same StateGraph as `ioa run` (graph.builder.build), compiled without a checkpointer: the LangGraph
server brings its own persistence. Importing this module is cheap: it loads no model and touches no file. The run's
services (task pack, teacher, student, trace) are built on the first node that runs, from the config named by the
IOA_CONFIG environment variable (the embedded default when unset), in runs/<run_id>/ (run_id from the config, else
`studio-<pack>-s<seed>`), so `ioa trace`, `ioa inspect` and `ioa report` work on what Studio ran. The student and the
teacher load their models when a node first needs them, as in `ioa run`.

Start a run in Studio with the input {"run_id": "<any name>"}.
"""
from __future__ import annotations

import os
import threading
from pathlib import Path

from graph.builder import build


class LazyServices:
    """Stands in for agents.runtime.Services until a node first touches it, then builds the real one (once)."""

    def __init__(self, config_path: str | None = None):
        self._config_path = config_path
        self._svc = None
        self._lock = threading.Lock()
        self._compiling = False

    def _build(self):
        from graph import runner
        from ioa_state import load_config

        cfg = load_config(self._config_path if self._config_path is not None else os.environ.get("IOA_CONFIG"))
        run_id = cfg.run_id or f"studio-{cfg.task.pack}-s{cfg.seed}"
        cfg = cfg.model_copy(update={"run_id": run_id})
        run_dir = Path(cfg.runs_dir) / run_id
        run_dir.mkdir(parents=True, exist_ok=True)
        runner.save_config(cfg, run_dir)
        return runner.make_services(cfg, run_dir, progress=runner.stderr_progress)

    @property
    def services(self):
        if self._svc is None:
            with self._lock:
                if self._svc is None:
                    self._svc = self._build()
        return self._svc

    @property
    def built(self) -> bool:
        return self._svc is not None

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        if self._compiling and self._svc is None:
            # LangGraph's compile() reads the attributes a node function closes over (`svc.student.load`, ...)
            # looking for subgraphs; answering None there keeps the import free of any service or model.
            return None
        return getattr(self.services, name)


def compile_graph(svc: LazyServices | None = None):
    """The compiled graph over (lazy) services; nothing is built until a node runs."""
    svc = svc if svc is not None else LazyServices()
    svc._compiling = True
    try:
        compiled = build(svc).compile()
    finally:
        svc._compiling = False
    compiled.name = "ioa"
    return compiled


services = LazyServices()
graph = compile_graph(services)
