"""Training in an `accelerate launch` subprocess: 2-process gloo DDP matches one process; failures are one line."""
from __future__ import annotations

import sys
import time

import pytest

from ioa_state.config import StudentConfig
from training.checkpoints import max_abs_diff
from training.launch import LaunchError, launch_command, run_job
from training.student import Student

EXAMPLES = [{"prompt": f"What is fact {i} of Zorbia?", "answer": f"Fact {i} is" + " long" * i} for i in range(8)]


def _cfg(**kw) -> StudentConfig:
    return StudentConfig(**dict(dict(source="tiny", learning_rate=1e-3, batch_size=4, epochs=2, bf16=False), **kw))


@pytest.mark.slow
def test_two_process_ddp_round_matches_one_process(tmp_path):
    one = Student(_cfg(), tmp_path / "one", seed=0)
    two = Student(_cfg(num_processes=2), tmp_path / "two", seed=0)
    calls = []
    s1 = one.train(EXAMPLES, seed=5)
    s2 = two.train(EXAMPLES, seed=5, progress=lambda *a: calls.append(a))
    assert s1.steps == s2.steps == 4 and len(s2.losses) == 4
    assert max(abs(a - b) for a, b in zip(s1.losses, s2.losses)) < 1e-3  # same global batch of 4: 2 x 2
    assert s1.answer_tokens == s2.answer_tokens
    assert max_abs_diff(one.model, two.model) < 1e-4
    assert [c[0] for c in calls] == [1, 2, 3, 4]
    assert not list((tmp_path / "two" / "student").iterdir())  # the job directory is gone


def test_launch_command_names_the_processes_device_and_config(tmp_path):
    cmd = launch_command(_cfg(num_processes=2), tmp_path, "cpu")
    assert cmd[:4] == [sys.executable, "-m", "accelerate.commands.accelerate_cli", "launch"]
    assert cmd[cmd.index("--num_processes") + 1] == "2" and "--cpu" in cmd
    assert cmd[-3:] == ["-m", "training.launch", str(tmp_path)]
    gpu = launch_command(_cfg(accelerate_config="fsdp.yaml"), tmp_path, "cuda")
    assert gpu[gpu.index("--config_file") + 1] == "fsdp.yaml" and "--cpu" not in gpu and "--num_processes" not in gpu


def test_a_failing_subprocess_is_a_one_line_error():
    code = "import sys; print('loading'); print('ValueError: no such model'); print('bye'); sys.exit(3)"
    with pytest.raises(LaunchError, match=r"^training subprocess exited with code 3: ValueError: no such model$"):
        run_job([sys.executable, "-c", code], timeout_s=60)


def test_a_hung_subprocess_is_killed_with_its_group():
    code = ("import subprocess, sys, time; "
            "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)']);"
            " print('IOA-PROGRESS [%d, 0, 0.0]' % p.pid, flush=True); time.sleep(120)")
    pids = []
    t0 = time.monotonic()
    with pytest.raises(LaunchError, match=r"killed after 3 s"):
        run_job([sys.executable, "-c", code], timeout_s=3, progress=lambda pid, n, loss: pids.append(pid))
    assert time.monotonic() - t0 < 30 and len(pids) == 1
    assert _gone(pids[0])  # the grandchild went with the group


def _gone(pid: int, wait_s: float = 5.0) -> bool:
    """The process has exited (absent, or a zombie its new parent has not reaped yet)."""
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return True
        except FileNotFoundError:
            return True
        time.sleep(0.1)
    return False


def test_a_killed_launched_round_leaves_no_job_behind(tmp_path):
    student = Student(_cfg(num_processes=2, launch_timeout_s=1), tmp_path, seed=0)
    before = student.weights()
    with pytest.raises(LaunchError, match="killed after 1 s"):
        student.train(EXAMPLES, seed=5)
    assert not list((tmp_path / "student").iterdir())
    assert all((before[k] == v).all() for k, v in student.weights().items())  # the round did not happen
