"""What LangGraph Studio draws: start `langgraph dev` on langgraph.json, read the graph endpoint, check the branches.

    python benchmarks/check_studio.py            # prints the edges; exit 0 when the design card's branches are there

Needs `pip install 'langgraph-cli[inmem]'` (in the dev extra). The server runs on 127.0.0.1 only, on a free port,
and is stopped at the end; it loads no model (the graph compiles without services).
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXPECTED = {("examine", "advance"), ("examine", "give_up"), ("examine", "remediate"), ("examine", "simplify"),
            ("advance", "synthesize", "next_stage"), ("advance", "diagnose", "rediagnose"),
            ("advance", "report", "finish"), ("give_up", "synthesize", "next_stage"),
            ("give_up", "diagnose", "rediagnose"), ("give_up", "report", "finish"),
            ("remediate", "synthesize", "again"), ("simplify", "synthesize", "again"),
            ("plan", "synthesize", "teach"), ("plan", "report", "nothing_to_teach")}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _json(url: str, body: dict | None = None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def studio_edges(timeout_s: float = 180.0) -> list[dict]:
    """The edges `langgraph dev` serves for the `ioa` graph."""
    exe = shutil.which("langgraph", path=str(Path(sys.executable).parent)) or shutil.which("langgraph")
    if exe is None:
        raise RuntimeError("langgraph-cli is not installed: pip install 'langgraph-cli[inmem]'")
    port = _free_port()
    proc = subprocess.Popen([exe, "dev", "--host", "127.0.0.1", "--port", str(port), "--no-browser", "--no-reload"],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                            env={**os.environ, "LANGSMITH_TRACING": "false"})
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                found = _json(f"{base}/assistants/search", {"graph_id": "ioa"})
                if found:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError(f"langgraph dev did not serve the ioa graph within {timeout_s:.0f} s")
            time.sleep(1.0)
        return _json(f"{base}/assistants/{found[0]['assistant_id']}/graph")["edges"]
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def missing(edges: list[dict]) -> set[tuple]:
    have = {(e["source"], e["target"]) for e in edges} | {(e["source"], e["target"], e.get("data")) for e in edges}
    return EXPECTED - have


def main() -> int:
    edges = studio_edges()
    for e in edges:
        print(f"{e['source']:>11} -> {e['target']:<11} {e.get('data') or ''}")
    lost = missing(edges)
    print("all of the design card's branches are drawn" if not lost else f"missing branches: {sorted(lost)}")
    return 1 if lost else 0


if __name__ == "__main__":
    sys.exit(main())
