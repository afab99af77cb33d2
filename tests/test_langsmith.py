"""LangSmith: with LANGSMITH_TRACING=true and LANGSMITH_ENDPOINT at a recorder on 127.0.0.1, a small run's node spans
reach the recorder (LangGraph / langchain-core send them through the `langsmith` client); with tracing unset, nothing
does. Each run is a subprocess, so that langsmith reads its environment fresh."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from graph.builder import NODES

ROOT = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent

INFO = {"version": "0.10.0", "license_expiration_time": None, "instance_flags": {},
        "batch_ingest_config": {"use_multipart_endpoint": True, "scale_up_qsize_trigger": 1000,
                                "scale_up_nthreads_limit": 16, "scale_down_nempty_trigger": 4, "size_limit": 100,
                                "size_limit_bytes": 20971520}}


class Recorder:
    """A stand-in LangSmith API: answers /info, accepts everything else, records every request."""

    def __init__(self):
        self.requests: list[tuple[str, str, bytes]] = []
        self.lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _body(self) -> bytes:
                n = int(self.headers.get("Content-Length") or 0)
                data = self.rfile.read(n) if n else b""
                if self.headers.get("Content-Encoding") == "zstd":
                    import zstandard
                    data = zstandard.ZstdDecompressor().decompressobj().decompress(data)
                return data

            def _reply(self, code: int, obj) -> None:
                data = json.dumps(obj).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _handle(self):
                body = self._body()
                with owner.lock:
                    owner.requests.append((self.command, self.path, body))
                self._reply(200, INFO if self.path.rstrip("/").endswith("/info") else {})

            do_GET = do_POST = do_PATCH = do_PUT = _handle

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()

    def run_names(self) -> set[str]:
        names = set()
        for _method, path, body in self.requests:
            if "/runs" in path:
                names.update(n.decode() for n in re.findall(rb'"name"\s*:\s*"([^"]+)"', body))
        return names


RUN = """
import sys
sys.path.insert(0, {tests!r})
from pathlib import Path
from trace_helpers import run_small
run_dir, state = run_small(Path({runs!r}), "ls", **{{"thresholds.max_remedial_rounds": 0}})
from langchain_core.tracers.langchain import wait_for_all_tracers
wait_for_all_tracers()   # every span sent before the process ends
print("STATUS", state.status, state.total_rounds)
"""


def _small_run(tmp: Path, env: dict) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("LANGSMITH_", "LANGCHAIN_"))}
    proc = subprocess.run([sys.executable, "-c", RUN.format(tests=str(TESTS), runs=str(tmp / "runs"))], cwd=ROOT,
                          env={**clean, **env}, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "STATUS finished" in proc.stdout
    return proc


def test_node_spans_reach_langsmith_when_tracing_is_on(tmp_path):
    with Recorder() as rec:
        _small_run(tmp_path, {"LANGSMITH_TRACING": "true", "LANGSMITH_ENDPOINT": rec.url,
                              "LANGSMITH_API_KEY": "lsv2-dummy-key-for-tests", "LANGSMITH_PROJECT": "ioa-tests"})
        names = rec.run_names()
    assert any("/runs" in path for _, path, _ in rec.requests), [p for _, p, _ in rec.requests]
    trace = [json.loads(x) for f in (tmp_path / "runs").rglob("trace.jsonl") for x in f.read_text().splitlines()]
    ran = {e["node"] for e in trace if e.get("event") == "node_start"}  # the transitions this run took, and the rest
    assert {"diagnose", "plan", "synthesize", "train", "examine", "report"} <= ran <= set(NODES)
    missing = ran - names
    assert not missing, f"node spans not recorded: {missing} (got {sorted(names)[:20]})"
    # the key is sent as a header, never inside a span
    assert not any(b"lsv2-dummy-key-for-tests" in body for _, _, body in rec.requests)


def test_nothing_reaches_langsmith_when_tracing_is_unset(tmp_path):
    with Recorder() as rec:
        _small_run(tmp_path, {"LANGSMITH_ENDPOINT": rec.url, "LANGSMITH_API_KEY": "lsv2-dummy-key-for-tests"})
        assert rec.requests == []
