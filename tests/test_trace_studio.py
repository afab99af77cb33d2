"""langgraph.json and graph/studio.py: `langgraph dev` opens the same graph as `ioa run`, importing it loads nothing,
and its nodes run (building the services on first use) from the config named by IOA_CONFIG."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from openai_server import OpenAIServer
from trace_helpers import small_config, zorbia_replier

from graph.builder import NODES

ROOT = Path(__file__).resolve().parents[1]


def test_langgraph_json_points_at_the_studio_graph():
    spec = json.loads((ROOT / "langgraph.json").read_text())
    assert spec["dependencies"] == ["."]
    target = spec["graphs"]["ioa"]
    path, attr = target.split(":")
    assert (ROOT / path).resolve() == ROOT / "graph" / "studio.py" and attr == "graph"


def test_importing_the_studio_graph_loads_no_model():
    code = ("import sys; import graph.studio as s; "
            "heavy = [m for m in ('torch', 'transformers', 'agents.teacher.client') if m in sys.modules]; "
            "assert not heavy, heavy; assert not s._SERVICES; "
            "print(sorted(n for n in s.graph.get_graph().nodes if not n.startswith('__')))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={"PATH": "/usr/bin:/bin", "IOA_CONFIG": "/nonexistent.yaml"})
    assert proc.returncode == 0, proc.stderr
    assert eval(proc.stdout) == sorted(NODES)  # noqa: S307 - our own printed list


def test_studio_graph_runs_from_ioa_config(tmp_path, monkeypatch):
    from graph import studio

    with OpenAIServer(zorbia_replier(), models=["scripted"]) as srv:
        cfg = small_config(tmp_path / "runs", "studio-test", srv.base_url)
        path = tmp_path / "studio.yaml"
        path.write_text(yaml.safe_dump(cfg))
        monkeypatch.setenv("IOA_CONFIG", str(path))
        monkeypatch.setattr(studio, "_SERVICES", {})
        graph = studio.compile_graph()
        assert not studio._SERVICES
        first = next(iter(graph.stream({"run_id": "studio-test"}, stream_mode="updates")))
    assert list(first) == ["diagnose"] and "svc" in studio._SERVICES
    svc = studio._SERVICES["svc"]
    run_dir = tmp_path / "runs" / "studio-test"
    assert (run_dir / "config.yaml").is_file()
    events = [json.loads(line) for line in (run_dir / "trace.jsonl").read_text().splitlines()]
    assert events[0]["event"] == "node_start" and events[0]["node"] == "diagnose"
    assert any(e["event"] == "module_diagnosis" for e in events)
    svc.trace.close()


def test_the_transitions_are_labelled_edges_of_the_compiled_graph():
    """LangGraph Studio draws the design card's state machine: every branch out of examine and plan is named."""
    from graph.builder import build

    edges = build().compile().get_graph().edges
    def out(node):
        return {(e.data, e.target) for e in edges if e.source == node}

    # a branch named like its target node is drawn unlabelled: the node's name is the label
    assert {t for _, t in out("examine")} == {"advance", "give_up", "remediate", "simplify"}
    for node in ("advance", "give_up"):
        assert out(node) == {("next_stage", "synthesize"), ("rediagnose", "diagnose"), ("finish", "report")}
    for node in ("remediate", "simplify"):
        assert out(node) == {("again", "synthesize"), ("finish", "report")}
    assert out("plan") == {("teach", "synthesize"), ("nothing_to_teach", "report")}


@pytest.mark.slow
def test_langgraph_dev_serves_the_labelled_state_machine():
    """The graph endpoint of a real `langgraph dev` server (127.0.0.1) draws every branch of the design card."""
    pytest.importorskip("langgraph_api", reason="langgraph-cli[inmem] (the dev extra) is not installed")
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import check_studio

    assert check_studio.missing(check_studio.studio_edges()) == set()
