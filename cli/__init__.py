"""The `ioa` command line: cli/main.py dispatches to one module per command (run.py: run, resume, status;
trace.py; inspect.py: inspect, report; bench.py)."""
