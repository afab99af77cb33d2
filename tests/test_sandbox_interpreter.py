"""The box starts the interpreter wherever it lives, and a box that cannot start it is a loud failure (issue 9.1).

The box covers /tmp with a private tmpfs; a venv (or a checkout) under /tmp used to vanish with it, so every code
answer scored 0, HumanEval's own reference solution included. These tests make a venv under the test's temporary
directory (under /tmp, as a user's clone would be) and run the box with it; then they hide the interpreter from the
box on purpose and expect SandboxUnavailable, never a score.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

from ioa_state import ConfigError, TaskConfig
from tasks import sandbox
from tasks.humaneval import HumanEvalPack
from tasks.sandbox import SandboxUnavailable, run_code

ROOT = os.geteuid() == 0


@pytest.fixture(scope="module")
def venv_python(tmp_path_factory):
    """A venv made with the project's interpreter under the test's tmp dir (forced under /tmp, where the box's
    private tmpfs would hide it), with a module of its own in its site-packages."""
    base = tmp_path_factory.mktemp("venv")
    if not str(base.resolve()).startswith("/tmp/"):
        base = Path(tempfile.mkdtemp(prefix="ioa-venv-test-", dir="/tmp"))
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    site = subprocess.run([str(python), "-I", "-c", "import site; print(site.getsitepackages()[0])"], check=True,
                          capture_output=True, text=True).stdout.strip()
    Path(site, "ioa_venv_marker.py").write_text("VALUE = 'from the venv'\n")
    return str(python)


@pytest.fixture
def fresh_probe(monkeypatch):
    """Forget which boxes were checked, so the once-per-process `print(1)` check runs again."""
    monkeypatch.setattr(sandbox, "_probed", set())


@pytest.fixture(scope="module")
def pack():
    p = HumanEvalPack(TaskConfig(pack="humaneval"))
    p.code_timeout_s = 5.0
    return p


@pytest.fixture(scope="module")
def item(pack):
    return next(it for it in pack.items() if it.id == "humaneval-000")


def _venv_program() -> str:
    return textwrap.dedent("""
        import sys, ioa_venv_marker
        print(sys.prefix)
        print(ioa_venv_marker.VALUE)
    """)


def test_venv_under_tmp_runs_in_the_box(venv_python, fresh_probe):
    res = run_code(_venv_program(), timeout_s=10, python=venv_python)
    assert res.passed, res.stderr_tail
    prefix, marker = res.stdout_tail.splitlines()
    assert prefix == os.path.realpath(Path(venv_python).parent.parent) and marker == "from the venv"
    if ROOT:
        assert "private-tmp" in res.isolation and "fresh-uid" in res.isolation  # still boxed, /tmp still private


def test_venv_under_tmp_in_a_user_namespace(venv_python, fresh_probe, monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 12345)  # the unprivileged path: same uid, user namespace if allowed
    res = run_code(_venv_program(), timeout_s=10, python=venv_python)
    assert res.passed, res.stderr_tail
    assert res.stdout_tail.splitlines()[1] == "from the venv"


def test_humaneval_reference_passes_with_the_venv(venv_python, pack, item, fresh_probe):
    right = run_code(pack.code_program(item, item.reference), timeout_s=10, python=venv_python)
    assert right.passed, right.stderr_tail
    wrong = run_code(pack.code_program(item, "```python\ndef has_close_elements(numbers, threshold):\n"
                                             "    return False\n```"), timeout_s=10, python=venv_python)
    assert wrong.status == "failed" and "AssertionError" in wrong.stderr_tail


def test_the_box_still_hides_the_rest_of_tmp(venv_python, fresh_probe):
    outside = Path(venv_python).parent.parent.parent / "beside-the-venv.txt"
    outside.write_text("private")
    res = run_code(f"import os\nprint(os.path.exists({str(outside)!r}))\n"
                   f"open({str(Path(venv_python).parent / 'written')!r}, 'w')", timeout_s=10, python=venv_python)
    assert res.status == "failed" and res.stdout_tail.split() == ["False"]
    assert "Read-only file system" in res.stderr_tail or "Permission denied" in res.stderr_tail
    assert not (Path(venv_python).parent / "written").exists()


def test_interpreter_paths_resolve_the_venv(venv_python):
    paths = sandbox._interpreter_paths(venv_python)
    venv = os.path.realpath(Path(venv_python).parent.parent)
    assert venv in paths and os.path.realpath(sys.base_prefix) in paths
    assert any(p.startswith(venv + "/") and p.endswith("site-packages") for p in paths)
    assert sandbox._exec_path(venv_python) == os.path.join(os.path.realpath(Path(venv_python).parent), "python")


def test_hidden_interpreter_raises(venv_python, fresh_probe, monkeypatch):
    monkeypatch.setattr(sandbox, "_interpreter_paths", lambda python: [])  # the old box: nothing bound back
    with pytest.raises(SandboxUnavailable) as err:
        run_code("print('never')", python=venv_python)
    msg = str(err.value)
    assert "\n" not in msg and venv_python in msg and isinstance(err.value, ConfigError)


def test_hidden_interpreter_is_no_score(venv_python, pack, item, fresh_probe, monkeypatch):
    """Through the checker: HumanEval's reference solution raises instead of scoring 0."""
    monkeypatch.setattr(sandbox, "_interpreter_paths", lambda python: [])
    monkeypatch.setattr(sys, "executable", venv_python)
    with pytest.raises(SandboxUnavailable):
        pack.check(item, item.reference)
    with pytest.raises(SandboxUnavailable):
        pack.preflight()


def test_interpreter_that_dies_at_startup_raises(venv_python, pack, item, fresh_probe):
    """The binary is exec'd but cannot load (an address-space limit too small for its libraries): it exits 127
    like a failing program, which the box used to score 0; the print(1) check makes it loud."""
    res = sandbox._run("print(1)", 10, 4, venv_python)
    assert res.status == "failed" and res.returncode == 127, res
    with pytest.raises(SandboxUnavailable, match="cannot start Python .*memory limit 4 MB"):
        run_code("print(1)", memory_mb=4, python=venv_python)
    before, pack.code_memory_mb = pack.code_memory_mb, 4
    try:
        with pytest.raises(SandboxUnavailable):
            pack.check(item, item.reference)
    finally:
        pack.code_memory_mb = before


def test_missing_interpreter_raises(tmp_path, fresh_probe):
    with pytest.raises(SandboxUnavailable, match="cannot use the interpreter"):
        run_code("print(1)", python=str(tmp_path / "no-python"))


def test_box_is_checked_once_per_interpreter(venv_python, fresh_probe, monkeypatch):
    programs = []
    real = sandbox._run

    def counting(program, *args):
        programs.append(program)
        return real(program, *args)

    monkeypatch.setattr(sandbox, "_run", counting)
    for i in range(3):
        assert run_code(f"print({i} + 10)", python=venv_python).stdout_tail == f"{i + 10}\n"
    assert programs.count("print(1)") == 1 and len(programs) == 4


def test_load_task_fails_before_any_work_when_the_box_is_broken(venv_python, fresh_probe, monkeypatch):
    from graph import runner
    from ioa_state import RunConfig

    monkeypatch.setattr(sandbox, "_interpreter_paths", lambda python: [])
    monkeypatch.setattr(sys, "executable", venv_python)
    with pytest.raises(SandboxUnavailable, match="code sandbox"):
        runner.load_task(RunConfig(task={"pack": "humaneval"}))


def test_cli_prints_one_line_and_makes_no_run(venv_python, fresh_probe, monkeypatch, tmp_path, capsys):
    from cli import main as cli

    monkeypatch.setattr(sandbox, "_interpreter_paths", lambda python: [])
    monkeypatch.setattr(sys, "executable", venv_python)
    rc = cli.main(["run", "--set", "task.pack=humaneval", "--runs-dir", str(tmp_path / "runs"), "--run-id", "x"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "\n" not in err and err.startswith("ioa: error: the code sandbox cannot start Python")
    assert not (tmp_path / "runs").exists()
