"""The graph for LangGraph Studio: `langgraph dev` (see langgraph.json at the repository root) opens `graph` here.

`graph` is the same StateGraph as `ioa run` (graph.builder.build), compiled without a checkpointer: the LangGraph
server brings its own persistence. The graph compiles without services (they come as the run context), so importing
this module loads no model and touches no file. Studio passes no ioa services, so the nodes fall back to
`studio_services()`: built once, on the first node that runs, from the config named by the IOA_CONFIG environment
variable (the embedded default when unset), in runs/<run_id>/ (run_id from the config, else
`studio-<pack>-s<seed>`), so `ioa trace`, `ioa inspect` and `ioa report` work on what Studio ran.

Start a run in Studio with the input {"run_id": "<any name>"}.
"""
from __future__ import annotations

import os
import threading
from pathlib import Path

from graph.builder import build

_LOCK = threading.Lock()
_SERVICES: dict = {}


def studio_services():
    """The run's services for Studio, built on first use (once per process)."""
    with _LOCK:
        if "svc" not in _SERVICES:
            from graph import runner
            from ioa_state import load_config

            cfg = load_config(os.environ.get("IOA_CONFIG"))
            run_id = cfg.run_id or f"studio-{cfg.task.pack}-s{cfg.seed}"
            cfg = cfg.model_copy(update={"run_id": run_id})
            run_dir = Path(cfg.runs_dir) / run_id
            run_dir.mkdir(parents=True, exist_ok=True)
            runner.save_config(cfg, run_dir)
            _SERVICES["svc"] = runner.make_services(cfg, run_dir, progress=runner.stderr_progress)
        return _SERVICES["svc"]


def compile_graph():
    """The compiled IOA graph for Studio; nothing is built until a node runs."""
    compiled = build(fallback=studio_services).compile()
    compiled.name = "ioa"
    return compiled


graph = compile_graph()
