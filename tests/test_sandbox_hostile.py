"""Hostile model-written code through the HumanEval checker path (HumanEvalPack.check -> tasks.sandbox.run_code).

Each program must fail or time out, nothing may escape the box (no file outside it, no connection, no key, no
surviving process), and the test process must survive. The layers that make the strongest of these hold (fresh uid,
namespaces) need root; tests that would be unsafe without them are skipped when not root (see tasks/sandbox.py).
"""
from __future__ import annotations

import os
import socket
import subprocess
import textwrap
import time
import uuid
from pathlib import Path

import pytest

from ioa_state import TaskConfig
from tasks import sandbox
from tasks.humaneval import HumanEvalPack

TIMEOUT = 2.0
ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(not ROOT, reason="without root the child shares our uid (documented limitation)")

# a correct solution of humaneval-000 (has_close_elements), appended where a hostile program "earns" a pass
CORRECT = textwrap.dedent("""
    def has_close_elements(numbers, threshold):
        return any(abs(a - b) < threshold for i, a in enumerate(numbers) for b in numbers[i + 1:])
""")


@pytest.fixture(scope="module")
def pack():
    p = HumanEvalPack(TaskConfig(pack="humaneval"))
    p.code_timeout_s = TIMEOUT
    return p


@pytest.fixture(scope="module")
def item(pack):
    return next(it for it in pack.items() if it.id == "humaneval-000")


@pytest.fixture
def hostile(pack, item, monkeypatch):
    """Score a hostile answer through pack.check, returning (score, the SandboxResult of that run)."""
    seen = []
    real = sandbox.run_code

    def recording(*args, **kwargs):
        seen.append(real(*args, **kwargs))
        return seen[-1]

    monkeypatch.setattr(sandbox, "run_code", recording)

    def run(code: str, then_correct: bool = False):
        seen.clear()
        program = textwrap.dedent(code) + (CORRECT if then_correct else "")
        score = pack.check(item, "```python\n" + program + "\n```")
        assert len(seen) == 1
        return score, seen[0]

    return run


def _alive(pid: int, uid: int | None = None) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    if fields.get("State", "").split()[:1] == ["Z"]:
        return False
    return uid is None or int(fields["Uid"].split()[0]) == uid


def _uid_processes(uid: int) -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit() and _alive(int(p), uid)]


def _escape_paths() -> list[Path]:
    tag = uuid.uuid4().hex[:10]
    return [Path(f"/tmp/ioa_escape_{tag}"), Path(__file__).resolve().parent / f"ioa_escape_{tag}",
            Path(f"/var/tmp/ioa_escape_{tag}"), Path.home() / f"ioa_escape_{tag}"]


def test_control_correct_answer_passes(hostile):
    score, res = hostile("x = 1\n", then_correct=True)  # the hostile tests below fail because of what they do
    assert score == 1.0 and res.passed


def test_endless_loop(hostile):
    t0 = time.monotonic()
    score, res = hostile("while True:\n    pass\n", then_correct=True)
    assert score == 0.0 and res.status == "timeout"
    assert time.monotonic() - t0 < TIMEOUT + 2


@needs_root
def test_fork_bomb(hostile):
    score, res = hostile("""
        import os
        print("UID", os.getuid(), flush=True)
        while True:
            try:
                os.fork()
            except OSError:
                pass
    """)
    assert score == 0.0 and res.status in ("timeout", "failed")
    uid = int(res.stdout_tail.split()[1])
    assert uid != os.getuid()
    assert _uid_processes(uid) == []


def test_writes_outside_the_box(hostile):
    paths = _escape_paths()
    score, res = hostile(f"""
        import os
        for p in {[str(p) for p in paths] + ["../" + paths[0].name]!r}:
            try:
                with open(p, "w") as f:
                    f.write("escaped")
                print("wrote", p)
            except OSError as e:
                print("denied", p, type(e).__name__)
        raise SystemExit(1)
    """)
    assert score == 0.0 and res.status == "failed"
    assert res.stdout_tail.count("wrote") + res.stdout_tail.count("denied") == len(paths) + 1
    for p in paths:
        assert not p.exists(), f"{p} was written from the sandbox"


def test_disk_bomb(hostile):
    score, res = hostile("""
        with open("big.bin", "wb") as f:
            for _ in range(64):
                f.write(b"x" * (1 << 20))
    """, then_correct=True)
    # RLIMIT_FSIZE: Python ignores SIGXFSZ, so the write past 16 MiB raises EFBIG
    assert score == 0.0 and res.status == "failed" and "File too large" in res.stderr_tail


def test_cannot_see_parent_files_by_relative_path(monkeypatch):
    monkeypatch.chdir(Path(__file__).resolve().parents[1])
    assert Path("pyproject.toml").exists() and Path("tasks/sandbox.py").exists()
    res = sandbox.run_code("import os\nprint(os.path.exists('pyproject.toml'), os.path.exists('tests'), "
                           "os.path.exists('tasks/sandbox.py'))")
    assert res.passed and res.stdout_tail.split() == ["False", "False", "False"]


def test_network_connection_refused(hostile):
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(5)
    port = listener.getsockname()[1]
    try:
        score, res = hostile(f"""
            import socket
            s = socket.create_connection(("127.0.0.1", {port}), timeout=1)
            s.sendall(b"exfiltrated")
        """, then_correct=True)
        assert score == 0.0 and res.status == "failed"
        assert "OSError" in res.stderr_tail or "PermissionError" in res.stderr_tail
        listener.settimeout(0.3)
        with pytest.raises(socket.timeout):
            listener.accept()
    finally:
        listener.close()


def test_socket_guard_fallback(monkeypatch):
    """Where no namespace can be made, the Python-level guard still refuses sockets."""
    monkeypatch.setattr(sandbox, "_USE_NAMESPACES", False)
    monkeypatch.setattr(os, "geteuid", lambda: 12345)  # take the unprivileged path (same uid, no fresh uid)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    try:
        res = sandbox.run_code(f"import socket\nsocket.create_connection(('127.0.0.1', {listener.getsockname()[1]}))")
        assert res.status == "failed" and "PermissionError" in res.stderr_tail
        assert "socket-guard" in res.isolation
        listener.settimeout(0.3)
        with pytest.raises(socket.timeout):
            listener.accept()
    finally:
        listener.close()


def test_memory_bomb(hostile):
    t0 = time.monotonic()
    score, res = hostile("""
        chunks = []
        while True:
            chunks.append(bytearray(64 * 1024 * 1024))
    """, then_correct=True)
    assert score == 0.0 and res.status == "failed" and "MemoryError" in res.stderr_tail
    assert time.monotonic() - t0 < TIMEOUT + 1


def test_api_keys_invisible(hostile, monkeypatch):
    key = "sk-ioa-fake-" + uuid.uuid4().hex
    monkeypatch.setenv("OPENAI_API_KEY", key)
    score, res = hostile(f"""
        import os
        seen = [os.environ.get("OPENAI_API_KEY") or "", repr(dict(os.environ))]
        for p in ("/proc/%d/environ" % os.getppid(), "/proc/%d/environ" % {os.getpid()}, "/proc/1/environ"):
            try:
                seen.append(open(p, "rb").read().decode("utf-8", "replace"))
            except OSError as e:
                print("denied", p, type(e).__name__)
        leaked = any("sk-ioa-fake" in s for s in seen)
        print("LEAKED" if leaked else "NOLEAK")
        if not leaked:
            raise SystemExit(1)
    """, then_correct=True)
    assert score == 0.0 and "NOLEAK" in res.stdout_tail
    assert key not in res.stdout_tail and key not in res.stderr_tail


@needs_root
def test_other_processes_are_invisible():
    res = sandbox.run_code("import os\n"
                           "print(os.getpid(), [p for p in os.listdir('/proc') if p.isdigit()])\n"
                           "print(open('/proc/%d/cmdline' % os.getppid()).read())")
    assert res.status == "failed" and "FileNotFoundError" in res.stderr_tail  # the parent is not in its /proc
    pid, visible = res.stdout_tail.split(" ", 1)
    assert eval(visible) == [pid]


@needs_root
def test_kill_the_parent():
    canary = subprocess.Popen(["sleep", "30"], start_new_session=True)
    try:
        me = os.getpid()
        program = textwrap.dedent(f"""
            import os, signal
            attempts = [
                ("kill parent", lambda: os.kill(os.getppid(), signal.SIGKILL)),
                ("kill test", lambda: os.kill({me}, signal.SIGKILL)),
                ("killpg parent", lambda: os.killpg(os.getpgid(os.getppid()), signal.SIGKILL)),
                ("kill canary", lambda: os.kill({canary.pid}, signal.SIGKILL)),
                ("kill all", lambda: os.kill(-1, signal.SIGKILL)),
            ]
            for name, fn in attempts:
                try:
                    fn()
                    print(name, "sent")
                except OSError as e:
                    print(name, type(e).__name__)
            raise SystemExit(1)
        """)
        pack = HumanEvalPack(TaskConfig(pack="humaneval"))
        pack.code_timeout_s = TIMEOUT
        item = next(it for it in pack.items() if it.id == "humaneval-000")
        assert pack.check(item, "```python\n" + program + CORRECT + "\n```") == 0.0
        res = sandbox.run_code(program, timeout_s=TIMEOUT)
        assert res.status == "failed"
        assert "kill parent PermissionError" in res.stdout_tail and "kill test PermissionError" in res.stdout_tail
        time.sleep(0.1)
        assert canary.poll() is None, "the sandbox killed an unrelated process"
        os.kill(os.getpid(), 0)  # still here
    finally:
        canary.kill()
        canary.wait()


@needs_root
def test_detached_child_is_killed(hostile):
    paths = _escape_paths()
    t0 = time.monotonic()
    score, res = hostile(f"""
        import os, sys, time
        first = os.fork()
        if first == 0:
            os.setsid()
            if os.fork() == 0:
                print("GRANDCHILD", os.getpid(), os.getuid(), flush=True)
                time.sleep({TIMEOUT} + 0.5)
                for p in {[str(p) for p in paths] + ["late_write.txt"]!r}:
                    try:
                        open(p, "w").write("escaped")
                    except OSError:
                        pass
                os._exit(0)
            os._exit(0)
        os.waitpid(first, 0)
        time.sleep(0.3)
        raise SystemExit(1)
    """)
    assert score == 0.0 and res.status == "failed"
    line = next(ln for ln in res.stdout_tail.splitlines() if ln.startswith("GRANDCHILD"))
    pid, uid = (int(x) for x in line.split()[1:])
    assert not _alive(pid, uid), "the detached grandchild survived the run"
    time.sleep(max(0.0, t0 + TIMEOUT + 1.5 - time.monotonic()))  # past the moment it would have written
    assert not _alive(pid, uid)
    assert _uid_processes(uid) == []
    for p in paths:
        assert not p.exists(), f"{p} was written by a detached child"
