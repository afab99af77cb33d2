"""Issue 9, items 2a and 4: inputs are checked before a run folder exists (teacher preflight against a real server on
127.0.0.1 and a closed port, student source), a run that dies before its first checkpoint leaves nothing that blocks
a rerun, and status / trace / inspect / report never write into a run."""
from __future__ import annotations

import hashlib
import shutil
import time
from pathlib import Path

import pytest
import yaml
from openai_server import OpenAIServer
from test_cli_inputs import _one_line, closed_port
from trace_helpers import ioa, small_run

from agents.teacher.preflight import TeacherUnreachable, check_teacher
from graph import runner
from ioa_state import ConfigError, TeacherConfig, load_config
from training.loading import ModelNotFound, check_source


# -- the teacher preflight ---------------------------------------------------------------------------------------
def test_preflight_against_a_real_server_and_a_closed_port():
    with OpenAIServer(models=["m"]) as srv:
        check_teacher(TeacherConfig(spec="openai-compatible:m", base_url=srv.base_url))
        dead = f"http://127.0.0.1:{closed_port()}/v1"
        # a role served elsewhere is checked too
        cfg = TeacherConfig(spec="openai-compatible:m", base_url=srv.base_url, roles={"examiner": "hf:/nope/x"})
        with pytest.raises(ModelNotFound, match="/nope/x"):
            check_teacher(cfg)
    t0 = time.monotonic()
    with pytest.raises(TeacherUnreachable, match=f"{dead}/models"):
        check_teacher(TeacherConfig(spec="openai-compatible:m", base_url=dead))
    assert time.monotonic() - t0 < 5


def test_preflight_skips_what_cannot_be_checked_cheaply(monkeypatch):
    check_teacher(TeacherConfig(spec="hf:tiny"))
    import agents.teacher.preflight as pf
    seen = []
    monkeypatch.setattr(pf, "make_chat_model", lambda spec, cfg: seen.append(spec))
    check_teacher(TeacherConfig(spec="vllm:some/model"))  # no cheap check: made (extra present), not contacted
    assert seen == ["vllm:some/model"]


def test_check_source(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    check_source("tiny")
    check_source("smollm2")
    (tmp_path / "m").mkdir()
    with pytest.raises(ModelNotFound):
        check_source(str(tmp_path / "m"))  # no config.json
    (tmp_path / "m" / "config.json").write_text("{}")
    check_source(str(tmp_path / "m"))
    for bad in ("", "a/b/c", "./nope", "nobody-ioa-test/no-such-model"):
        with pytest.raises(ModelNotFound):
            check_source(bad)


# -- a run that dies before its first checkpoint -----------------------------------------------------------------
def _cfg(tmp_path: Path, **over):
    data = {"run_id": "x", "runs_dir": str(tmp_path / "runs"), "student": {"source": "tiny"},
            "teacher": {"spec": "hf:tiny"}, **over}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(data))
    return load_config(path)


def test_failure_before_first_checkpoint_leaves_nothing(tmp_path, monkeypatch):
    def boom(*a, **k):
        raise RuntimeError("student failed to load")

    monkeypatch.setattr(runner, "make_services", boom)
    with pytest.raises(RuntimeError):
        runner.start(_cfg(tmp_path))
    assert not (tmp_path / "runs" / "x").exists()
    with pytest.raises(RuntimeError):  # the same run_id again: not "already exists"
        runner.start(_cfg(tmp_path))


def test_a_folder_without_checkpoint_is_free_to_reuse(tmp_path):
    run = tmp_path / "runs" / "x"
    run.mkdir(parents=True)
    (run / "config.yaml").write_text("run_id: x\n")
    (run / "trace.jsonl").write_text('{"event": "node_start"}\n')
    runner.checkpointer(run).setup()  # the empty database a dead attempt leaves
    assert (run / "checkpoints.sqlite").is_file() and not runner.has_checkpoint(run)
    run_id, run_dir = runner.new_run_dir(_cfg(tmp_path))
    assert run_dir == run and not (run / "trace.jsonl").exists() and not (run / "checkpoints.sqlite").exists()


def test_status_of_a_half_made_run_writes_nothing(tmp_path):
    run = tmp_path / "runs" / "x"
    run.mkdir(parents=True)
    (run / "config.yaml").write_text("run_id: x\n")
    rc, out, err = ioa("status", "x", "--runs-dir", str(tmp_path / "runs"))
    assert rc == 0 and "no checkpoint yet" in out, err
    rc, out, err = ioa("inspect", "x", "--runs-dir", str(tmp_path / "runs"))
    assert rc == 0
    assert sorted(p.name for p in run.iterdir()) == ["config.yaml"]


# -- a finished run ----------------------------------------------------------------------------------------------
@pytest.fixture()
def run_copy(tmp_path):
    _, run_dir, _ = small_run()
    dst = tmp_path / "runs" / run_dir.name
    shutil.copytree(run_dir, dst)
    return dst


def _snapshot(run: Path) -> dict:
    # every file but SQLite's -shm: a reader of a WAL database marks what it reads in that shared-memory index
    # (rebuilt from the WAL, no data of the run); read-only readers still do
    return {str(p.relative_to(run)): hashlib.sha256(p.read_bytes()).hexdigest() for p in run.rglob("*")
            if p.is_file() and not p.name.endswith("-shm")}


def test_reading_commands_never_write_into_a_run(run_copy, tmp_path):
    before = _snapshot(run_copy)
    runs = str(run_copy.parent)
    for cmd in (["status"], ["trace", "--last", "3"], ["inspect"], ["inspect", "--at", "-1"],
                ["report", "--out", str(tmp_path / "r.html")]):
        rc, _, err = ioa(cmd[0], run_copy.name, *cmd[1:], "--runs-dir", runs)
        assert rc == 0, (cmd, err)
    assert _snapshot(run_copy) == before


def test_status_tells_a_crashed_run_from_a_running_one(run_copy):
    from ioa_state import LearnerState
    state = runner.load_state(run_copy)
    assert isinstance(state, LearnerState)
    from cli.run import _status_word
    assert _status_word(run_copy, "running") == "running"
    (run_copy / "error.log").write_text("Traceback ...")
    assert "stopped by an error" in _status_word(run_copy, "running")


def test_resume_checks_the_teacher_first(run_copy):
    cfg_before = (run_copy / "config.yaml").read_text()
    url = yaml.safe_load(cfg_before)["teacher"]["base_url"]  # the small run's server, stopped since
    rc, _, err = ioa("resume", run_copy.name, "--runs-dir", str(run_copy.parent), "--budget", "999999")
    _one_line(rc, err, 2, url)
    assert (run_copy / "config.yaml").read_text() == cfg_before


def test_config_error_is_a_config_error():
    with pytest.raises(ConfigError, match="teacher.roles"):
        load_config(None, {"teacher.roles": {"judge": "hf:tiny"}})
