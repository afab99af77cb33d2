"""Bad input ends in one clear line and a non-zero exit, with the run directory (if any) left consistent."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml


def ioa(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cli.main", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300)


def _write(tmp: Path, data) -> Path:
    p = tmp / "cfg.yaml"
    p.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return p


def _one_error_line(res: subprocess.CompletedProcess, *needles: str) -> str:
    assert res.returncode != 0
    lines = [ln for ln in res.stderr.splitlines() if ln.strip() and not ln.startswith("[")]
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("ioa: error:"), lines[0]
    assert "Traceback" not in res.stderr
    for n in needles:
        assert n in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize("data,needles", [
    ("task: [unclosed", ("not valid YAML",)),
    ("- just\n- a list\n", ("must be a mapping",)),
    ({"task": {"pack": "nope"}}, ("nope",)),
    ({"thresholds": {"tau_mastery": 1.5}}, ("thresholds.tau_mastery",)),
    ({"thresholds": {"tau_low": 0.95}}, ("tau_low",)),
    ({"unknown_field": 1}, ("unknown_field",)),
    ({"task": {"pack": "jsonl", "path": "missing.jsonl"}}, ("missing.jsonl",)),
])
def test_bad_config_one_line(tmp_path, data, needles):
    res = ioa("run", str(_write(tmp_path, data)), "--runs-dir", str(tmp_path / "runs"), cwd=tmp_path)
    _one_error_line(res, *needles)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_empty_dataset(tmp_path):
    (tmp_path / "empty.jsonl").write_text("")
    res = ioa("run", str(_write(tmp_path, {"task": {"pack": "jsonl", "path": str(tmp_path / "empty.jsonl")}})),
              "--runs-dir", str(tmp_path / "runs"), cwd=tmp_path)
    _one_error_line(res)


def test_missing_config_file_and_unknown_run(tmp_path):
    _one_error_line(ioa("run", str(tmp_path / "nowhere.yaml"), cwd=tmp_path), "not found")
    _one_error_line(ioa("status", "no-such-run", "--runs-dir", str(tmp_path), cwd=tmp_path), "no run")
    _one_error_line(ioa("resume", "no-such-run", "--runs-dir", str(tmp_path), cwd=tmp_path), "no run")


def test_missing_student_model_leaves_nothing(tmp_path):
    cfg = {"run_id": "r", "student": {"source": str(tmp_path / "no-model-here")}, "task": {"pack": "zorbia"}}
    res = ioa("run", str(_write(tmp_path, cfg)), "--runs-dir", str(tmp_path / "runs"), cwd=tmp_path)
    assert res.returncode == 2
    _one_error_line(res, "no-model-here")
    assert not (tmp_path / "runs" / "r").exists()  # checked before the folder is made: a rerun is not blocked
    _one_error_line(ioa("status", "r", "--runs-dir", str(tmp_path / "runs"), cwd=tmp_path), "no run")
