"""Bad input to `ioa` (issue 9, items 3-7 and 12): one line naming the option and what is allowed, exit 2, nothing
left on disk; a crash log in the run's folder (else a temp file), never a crash in the handler."""
from __future__ import annotations

import json
import os
import socket
import tempfile
from pathlib import Path

import pytest
from trace_helpers import ioa

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _one_line(rc: int, err: str, code: int, *needles: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip() and not ln.startswith("[")]
    assert rc == code, err
    assert len(lines) == 1, err
    assert lines[0].startswith("ioa: error:"), lines[0]
    for n in needles:
        assert n in lines[0], lines[0]
    return lines[0]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _nothing_under(runs: Path) -> None:
    assert not runs.exists() or not any(runs.iterdir()), list(runs.rglob("*"))


# -- 2a, 4: inputs checked before the run folder is made ---------------------------------------------------------
def test_unreachable_teacher_is_one_line_naming_the_url(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    url = f"http://127.0.0.1:{closed_port()}/v1"
    rc, _, err = ioa("run", "--teacher", "openai-compatible:m", "--base-url", url, "--run-id", "x",
                     "--runs-dir", str(tmp_path / "runs"), "--set", "student.source=tiny")
    _one_line(rc, err, 2, url + "/models", "openai-compatible:m")
    _nothing_under(tmp_path / "runs")


@pytest.mark.parametrize(
    "args,needles",
    [
        (["--teacher", "foo:bar"], ("unknown teacher spec 'foo:bar'",)),
        (
            ["--teacher", "openai:gpt-4o-mini", "--set", "teacher.api_key_env=IOA_TEST_NO_SUCH_KEY"],
            ("IOA_TEST_NO_SUCH_KEY",),
        ),
        (["--set", "student.source=/nope/model"], ("/nope/model",)),
        (["--set", "teacher.spec=hf:/nope/teacher"], ("/nope/teacher",)),
    ],
)
def test_bad_teacher_or_student_leaves_no_folder(tmp_path, monkeypatch, args, needles):
    monkeypatch.chdir(tmp_path)
    rc, _, err = ioa("run", "--run-id", "x", "--runs-dir", str(tmp_path / "runs"), *args)
    line = _one_line(rc, err, 2, *needles)
    assert "resume" not in line
    assert "resume" not in err  # no "resume with `ioa resume x`" for a run that never started
    _nothing_under(tmp_path / "runs")


def test_missing_context_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rc, _, err = ioa("run", "--runs-dir", str(tmp_path / "runs"), "--set", "teacher.context_file=/nope.txt")
    _one_line(rc, err, 2, "teacher.context_file", "/nope.txt", "not found")
    _nothing_under(tmp_path / "runs")
    (tmp_path / "sheet.txt").write_text("facts")
    from ioa_state import load_config
    assert load_config(None, {"teacher.context_file": "sheet.txt"}).teacher.context_file == "sheet.txt"


def test_unknown_teacher_role_lists_the_real_ones(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rc, _, err = ioa("run", "--runs-dir", str(tmp_path / "runs"), "--set", "teacher.roles={judge: 'hf:tiny'}")
    _one_line(rc, err, 2, "teacher.roles", "'judge'", "diagnostician, examiner, adapter")
    from ioa_state import load_config
    assert load_config(None, {"teacher.roles": {"examiner": "hf:tiny"}}).teacher.roles == {"examiner": "hf:tiny"}


def test_teacher_roles_are_the_roles_the_agents_use():
    import re

    from ioa_state.config import TEACHER_ROLES, TeacherConfig
    root = Path(__file__).resolve().parents[1]
    used = set()
    for f in [*(root / "agents").glob("*.py"), *(root / "baselines").glob("*.py")]:
        text = f.read_text()
        used |= set(re.findall(r'role="(\w+)"', text)) | set(re.findall(r'^ROLE = "(\w+)"', text, re.M))
        used |= set(re.findall(r'teacher_answers\(svc, \w+, "(\w+)"', text))
        used |= set(re.findall(r'spec_for\("(\w+)"\)', text))  # the trainer's logit-distillation teacher
    assert used == set(TEACHER_ROLES)
    assert "judge" not in TeacherConfig.model_fields["roles"].description


# -- 5: --set and `ioa trace` inputs -----------------------------------------------------------------------------
@pytest.mark.parametrize("pair,config,needles", [
    ("thresholds.tau_gap=[0.3", None, ("--set thresholds.tau_gap", "not a YAML value", "line 1")),
    ("seed.x=1", EXAMPLES / "default.yaml", ("--set seed.x", "seed is a value")),
    ("thresholds.tau_gap", None, ("--set takes KEY=VALUE",)),
    ("=1", None, ("--set takes KEY=VALUE",)),
    ("thresholds..tau_gap=1", None, ("dotted field name",)),
])
def test_bad_set_is_bad_input(tmp_path, monkeypatch, pair, config, needles):
    monkeypatch.chdir(tmp_path)
    rc, _, err = ioa("run", *([str(config)] if config else []), "--runs-dir", str(tmp_path / "runs"), "--set", pair)
    _one_line(rc, err, 2, *needles)
    _nothing_under(tmp_path / "runs")


def _fake_run(tmp_path: Path) -> Path:
    run = tmp_path / "runs" / "r"
    run.mkdir(parents=True)
    (run / "config.yaml").write_text("run_id: r\n")
    events = [{"seq": 1, "ts": 1.0, "event": "node_start", "node": "diagnose"},
              {"seq": 2, "ts": 2.0, "event": "teacher_batch", "n": 3},
              {"seq": 3, "ts": 3.0, "event": "node_end", "node": "diagnose"}]
    (run / "trace.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    return run


def test_trace_stage_and_event_are_checked(tmp_path, monkeypatch):
    run = _fake_run(tmp_path)
    monkeypatch.chdir(tmp_path)
    rc, _, err = ioa("trace", str(run), "--stage", "abc")
    _one_line(rc, err, 2, "--stage", "'abc'")
    rc, _, err = ioa("trace", str(run), "--event", "nosuchevent")
    _one_line(rc, err, 2, "--event 'nosuchevent'", "node_start", "decision")
    rc, out, _ = ioa("trace", str(run), "--event", "teacher_batch")  # a kind this run's trace has is allowed
    assert rc == 0 and "teacher_batch" in out
    assert not (tmp_path / "ioa-error.log").exists() and not (run / "error.log").exists()


# -- 6: the crash log --------------------------------------------------------------------------------------------
def test_crash_log_goes_into_the_run(tmp_path, monkeypatch):
    from cli import trace as trace_cmd
    from graph import runner

    run = _fake_run(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(runner, "resume", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("boom")))
    rc, _, err = ioa("resume", str(run))
    line = _one_line(rc, err, 1, "RuntimeError: boom", f"traceback in {run / 'error.log'}")
    assert "Traceback" in (run / "error.log").read_text() and "Traceback" not in line
    assert not (tmp_path / "ioa-error.log").exists()
    (run / "error.log").unlink()
    # a reading command never writes into the run: its crash log is a temp file
    monkeypatch.setattr(trace_cmd, "read_events", lambda d: (_ for _ in ()).throw(RuntimeError("boom")))
    rc, _, err = ioa("trace", str(run))
    line = _one_line(rc, err, 1, "RuntimeError: boom", "traceback in " + tempfile.gettempdir())
    Path(line.split("traceback in ")[1].rstrip(")")).unlink()
    assert sorted(p.name for p in run.iterdir()) == ["config.yaml", "trace.jsonl"]
    assert not (tmp_path / "ioa-error.log").exists()


def test_crash_log_without_a_run_or_a_writable_folder(tmp_path, monkeypatch):
    from cli import run as run_cmd

    def crash(args):
        raise RuntimeError("boom")

    monkeypatch.setattr(run_cmd, "cmd_status", crash)
    monkeypatch.chdir("/proc")  # not writable
    rc, _, err = ioa("status", "whatever")
    line = _one_line(rc, err, 1, "RuntimeError: boom", "traceback in " + tempfile.gettempdir())
    log = Path(line.split("traceback in ")[1].rstrip(")"))
    assert "boom" in log.read_text()
    log.unlink()
    monkeypatch.setattr(tempfile, "tempdir", "/proc")  # no temp file either: still one line, no second traceback
    rc, _, err = ioa("status", "whatever")
    _one_line(rc, err, 1, "RuntimeError: boom", "no traceback saved")


# -- 12: messages ------------------------------------------------------------------------------------------------
def test_not_yaml_names_line_and_column(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "c.yaml").write_text("task:\n  pack: zorbia\n  limit: [3\n")
    rc, _, err = ioa("run", str(tmp_path / "c.yaml"), "--runs-dir", str(tmp_path / "runs"))
    _one_line(rc, err, 2, "not valid YAML at line 4, column 1")


def test_too_few_items_says_how_many_are_needed(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps({"prompt": f"q{i}", "answer": "a"}) + "\n" for i in range(3)))
    rc, _, err = ioa("run", "--runs-dir", str(tmp_path / "runs"), "--set", "task.pack=jsonl",
                     "--set", f"task.path={data}")
    _one_line(rc, err, 2, "has 3 items", "need at least 4", "probe 2")
    rc, _, err = ioa("run", "--runs-dir", str(tmp_path / "runs"), "--set", "task.pack=jsonl",
                     "--set", f"task.path={data}", "--set", "task.n_probe=1")
    _one_line(rc, err, 2, "task.n_probe=1 (at least 2)")
    _nothing_under(tmp_path / "runs")


@pytest.fixture(autouse=True)
def _no_key(monkeypatch):
    monkeypatch.delenv("IOA_TEST_NO_SUCH_KEY", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    yield
    assert "IOA_TEST_NO_SUCH_KEY" not in os.environ
