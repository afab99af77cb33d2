"""Run model-written Python in a box (architecture.md, "Code written by a model runs in a box").

`run_code(program, timeout_s, memory_mb, python)` runs the program with `python -I` (default sys.executable) in a
fresh temporary directory (its cwd and HOME, removed afterwards), with a scrubbed environment (PATH, LANG, HOME,
TMPDIR only: no API keys), stdin closed, resource limits (CPU seconds, address space, processes, file size, no core
files) and in its own session. At the time limit, and after a normal exit too, the whole session's process group is
killed.

A small launcher (plain Python, passed with -c; no preexec_fn, so it is safe to call from threads) sets the box up
before it execs the program:

* **As root** (the case in our containers): new mount and network namespaces; the mount tree is made private and
  every mount is remounted read-only; fresh size-limited tmpfs mounts cover the world-writable directories (/tmp,
  /var/tmp, /dev/shm, /run/lock), so a write "outside" lands in a throw-away filesystem, and the folders the
  interpreter needs that lie under them (a venv or a checkout under /tmp: its prefixes, binary, stdlib and
  site-packages as the interpreter itself reports them, resolved through symlinks) are bound back read-only; /proc
  is remounted with hidepid=2 (other processes, their command lines and environments are invisible); directories on
  the path to the interpreter that other users cannot enter (e.g. /root) are covered by a tmpfs holding only the
  interpreter (which also hides root's home); then the program runs under a fresh, otherwise unused uid/gid (no
  supplementary groups, no_new_privs). Being another uid it cannot signal the parent (or any process but its own),
  cannot read /proc/<parent>/environ, and after it exits every process of that uid is killed, which catches
  detached (double-forked, setsid) children that a process-group kill misses. The network namespace has no
  interfaces up, so no connection leaves the box, not even to 127.0.0.1.
* **Not root**: the launcher tries an unprivileged user namespace for the same mount and network isolation. The
  program then runs under the caller's own uid. LIMITATION: it can then signal the parent and other processes of the
  same user, and a detached child that calls setsid() escapes the process-group kill. Where no namespace is allowed,
  writes to world-writable directories are not contained either, and only a Python-level guard blocks sockets (it
  replaces socket.socket and friends with a function raising PermissionError; code that loads libc directly can get
  around it). `isolation()` says which layers this machine gets.

RLIMIT_NPROC counts the processes of a uid, so it is exact under the fresh uid; under a shared uid it is set to the
current count plus the limit. Status: "passed" (exit 0), "failed" (non-zero exit or killed by a signal) or
"timeout" (wall-clock or CPU limit). A box that cannot be set up or cannot start its interpreter is no answer of the
program's: `run_code` raises `SandboxUnavailable` (a ConfigError, one line from the CLI), and before its first run
with an interpreter and memory limit it checks, once per process, that the box runs `print(1)` (`ensure_available`),
so an interpreter that starts but cannot import its stdlib in the box is caught too, never scored 0.
"""
from __future__ import annotations

import json
import math
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import Literal

from ioa_state.config import ConfigError

__all__ = ["SandboxResult", "SandboxUnavailable", "ensure_available", "run_code", "isolation"]

Status = Literal["passed", "failed", "timeout", "error"]

TAIL_CHARS = 4000
NPROC_LIMIT = 32
FSIZE_MB = 16
TMPFS_MB = 64
NOFILE = 256
_UID_RANGE = (1_000_000, 1_999_999)
_WRITABLE_DIRS = ("/tmp", "/var/tmp", "/dev/shm", "/run/lock", "/dev/mqueue")
PROBE_TIMEOUT_S = 30.0  # the once-per-process `print(1)` check: generous, a first start on a loaded machine is slow


class SandboxUnavailable(ConfigError):
    """The box cannot run Python here (interpreter hidden or not starting): scoring stops with this one line,
    rather than every code answer scoring 0."""


@dataclass(frozen=True)
class SandboxResult:
    """What happened to one program: passed is True exactly when status == "passed"."""

    passed: bool
    status: Status
    stdout_tail: str = ""
    stderr_tail: str = ""
    returncode: int | None = None
    duration_s: float = 0.0
    isolation: tuple[str, ...] = field(default_factory=tuple)


# The launcher: runs as the caller (root or not) in the new session, sets up the box, drops privileges and execs the
# program. Its argv[1] is a JSON config; it writes one JSON line to the report fd (close-on-exec, so the parent sees
# EOF once the exec succeeded, or a second {"error": ...} line when it failed).
_LAUNCHER = r'''
import ctypes, json, os, resource, sys
cfg = json.loads(sys.argv[1])
rfd = cfg["report_fd"]
os.set_inheritable(rfd, False)
rep = {"isolation": [], "warnings": []}
def say(obj):
    os.write(rfd, (json.dumps(obj) + "\n").encode())
def fail(msg):
    say({"error": msg})
    os._exit(125)
libc = ctypes.CDLL(None, use_errno=True)
libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
libc.unshare.argtypes = [ctypes.c_int]
NEWNS, NEWUSER, NEWNET = 0x00020000, 0x10000000, 0x40000000
RDONLY, NOSUID, NODEV, NOEXEC, REMOUNT, NOATIME, NODIRATIME, BIND, REC, PRIVATE, RELATIME, STRICTATIME = (
    1, 2, 4, 8, 32, 1024, 2048, 4096, 16384, 1 << 18, 1 << 21, 1 << 24)
OPTFLAGS = {"nosuid": NOSUID, "nodev": NODEV, "noexec": NOEXEC, "noatime": NOATIME, "nodiratime": NODIRATIME,
            "relatime": RELATIME, "strictatime": STRICTATIME}
def enc(s):
    return None if s is None else os.fsencode(s)
def mount(src, tgt, fstype, flags, data=None):
    if libc.mount(enc(src), enc(tgt), enc(fstype), flags, enc(data)) != 0:
        e = ctypes.get_errno()
        raise OSError(e, "mount %s: %s" % (tgt, os.strerror(e)))
def unshare(flags):
    return libc.unshare(flags) == 0
def unescape(p):
    return p.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")
def mounts():
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            parts = line.split()
            out.append((unescape(parts[4]), parts[5].split(",")))
    return out
def top_closed_ancestor(path):
    cur = "/"
    for part in [p for p in path.split("/") if p]:
        cur = os.path.join(cur, part)
        try:
            if not os.stat(cur).st_mode & 0o001:
                return cur
        except OSError:
            return None
    return None
def open_under(paths, d):
    """O_PATH fds of the outermost paths strictly under d (nested ones come along with a recursive bind)."""
    held = []
    for n in sorted({p for p in paths if p.startswith(d.rstrip("/") + "/")}, key=len):
        if not any(n.startswith(m + "/") for _, m in held):
            held.append((os.open(n, os.O_PATH | os.O_DIRECTORY), n))
    return held
def bind_back(held):
    """Bind each held directory back at its path, read-only, over the fresh tmpfs (cwd is kept)."""
    here = os.open(".", os.O_PATH | os.O_DIRECTORY)
    try:
        for fd, n in held:
            os.makedirs(n, exist_ok=True)
            os.fchdir(fd)
            mount(".", n, None, BIND | REC)
            for mp, opts in mounts():
                if mp == n or mp.startswith(n + "/"):
                    flags = BIND | REMOUNT | RDONLY
                    for o in opts:
                        flags |= OPTFLAGS.get(o, 0)
                    mount(None, mp, None, flags)
    finally:
        os.fchdir(here)
        os.close(here)
def cover_writable(needed):
    """A fresh tmpfs over each world-writable dir; what the interpreter needs under one (a venv or checkout under
    /tmp) is held by fd first and bound back read-only."""
    covered = []
    for d in cfg["writable_dirs"]:
        if os.path.isdir(d) and not os.path.islink(d):
            held = open_under(needed, d)
            try:
                mount("tmpfs", d, "tmpfs", NOSUID | NODEV, "size=%dm,mode=1777" % cfg["tmpfs_mb"])
                covered.append(d)
                bind_back(held)
            except OSError as e:
                rep["warnings"].append(str(e))
            finally:
                for fd, _ in held:
                    os.close(fd)
    return covered
def setup_fs(box, needed, drop):
    os.umask(0o022)
    mount(None, "/", None, REC | PRIVATE)
    mount(box, box, None, BIND)
    os.chdir(box)
    ro_ok = True
    for mp, opts in mounts():
        if mp == box:
            continue
        flags = BIND | REMOUNT | RDONLY
        for o in opts:
            flags |= OPTFLAGS.get(o, 0)
        try:
            mount(None, mp, None, flags)
        except OSError as e:
            if mp == "/":
                ro_ok = False
                rep["warnings"].append(str(e))
    if ro_ok:
        rep["isolation"].append("read-only-fs")
    covered = cover_writable(needed)
    if "/tmp" in covered:
        rep["isolation"].append("private-tmp")
    if drop:
        try:  # a procfs of our own that shows other users' processes to nobody (per-mount hidepid: Linux >= 5.8)
            if tuple(int(x) for x in os.uname().release.split(".")[:2] if x.isdigit()) >= (5, 8):
                mount("proc", "/proc", "proc", NOSUID | NODEV | NOEXEC, "hidepid=2")
                rep["isolation"].append("hidden-processes")
        except (OSError, ValueError) as e:
            rep["warnings"].append("private /proc: %s" % e)
    if drop:
        closed = sorted({a for a in (top_closed_ancestor(n) for n in needed) if a})
        if closed:
            stage = "/tmp/.ioa_stage"
            os.makedirs(stage, exist_ok=True)
            todo = sorted({n for n in needed if any(n == a or n.startswith(a + "/") for a in closed)}, key=len)
            staged = []
            for i, n in enumerate(todo):
                s = "%s/%d" % (stage, i)
                os.mkdir(s)
                mount(n, s, None, BIND | REC)
                staged.append((s, n))
            for a in closed:
                mount("tmpfs", a, "tmpfs", NOSUID | NODEV, "size=1m,mode=755")
            for s, n in staged:
                os.makedirs(n, exist_ok=True)
                mount(s, n, None, BIND | REC)
                libc.umount2(enc(s), 2)
                os.rmdir(s)
            os.rmdir(stage)
            rep["isolation"].append("hidden-home")
    try:
        same = os.path.samestat(os.stat(box), os.stat("."))
    except OSError:
        same = False
    if not same:
        os.makedirs(box, mode=0o700, exist_ok=True)
        mount(".", box, None, BIND)
        os.chdir(box)
try:
    box, uid = cfg["box"], cfg["uid"]
    os.chdir(box)
    netns = mntns = False
    if not cfg["namespaces"]:
        pass
    elif uid is not None:
        if unshare(NEWNS | NEWNET):
            netns = mntns = True
        else:
            netns, mntns = unshare(NEWNET), unshare(NEWNS)
    else:
        ruid, rgid = os.getuid(), os.getgid()
        if unshare(NEWUSER | NEWNS | NEWNET):
            try:
                with open("/proc/self/setgroups", "w") as f:
                    f.write("deny")
                with open("/proc/self/uid_map", "w") as f:
                    f.write("%d %d 1" % (ruid, ruid))
                with open("/proc/self/gid_map", "w") as f:
                    f.write("%d %d 1" % (rgid, rgid))
                netns = mntns = True
                rep["isolation"].append("user-namespace")
            except OSError as e:
                rep["warnings"].append("user namespace maps: %s" % e)
    if netns:
        rep["isolation"].append("no-network")
    if mntns:
        try:
            setup_fs(box, cfg["needed"], uid is not None)
        except OSError as e:
            rep["warnings"].append("private filesystem: %s" % e)
    for lim, val in cfg["rlimits"].items():
        resource.setrlimit(getattr(resource, lim), tuple(val))
    if uid is not None:
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)
        if os.getuid() != uid or os.geteuid() != uid:
            fail("could not drop privileges to uid %d" % uid)
        rep["isolation"].append("fresh-uid")
    if libc.prctl(38, 1, 0, 0, 0) == 0:
        rep["isolation"].append("no-new-privs")
    argv = [cfg["python"], "-I", "-B"]
    if not netns:
        argv += ["-c", cfg["prelude"], "main.py"]
        rep["isolation"].append("socket-guard")
    else:
        argv += ["main.py"]
    say(rep)
except Exception as e:
    fail("sandbox setup failed: %s: %s" % (type(e).__name__, e))
try:
    os.execve(cfg["python"], argv, cfg["env"])
except OSError as e:
    fail("cannot start %s: %s" % (cfg["python"], e))
'''

# Used where no network namespace could be made: a Python-level guard, then the program as __main__.
_SOCKET_PRELUDE = r'''
import sys, runpy, socket, _socket
def _no_network(*args, **kwargs):
    raise PermissionError("network access is disabled in the sandbox")
for _mod in (socket, _socket):
    for _name in ("socket", "socketpair", "create_connection", "create_server", "fromfd", "getaddrinfo"):
        if hasattr(_mod, _name):
            setattr(_mod, _name, _no_network)
del _mod, _name
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
'''

# Tests switch this off to exercise the fallback (Python-level socket guard) on a machine that has namespaces.
_USE_NAMESPACES = True

_uid_lock = threading.Lock()
_uids_in_use: set[int] = set()


def _proc_uids() -> dict[int, tuple[int, str]]:
    """pid -> (real uid, state) of every process visible in /proc."""
    out: dict[int, tuple[int, str]] = {}
    try:
        names = os.listdir("/proc")
    except OSError:
        return out
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/status") as f:
                uid, state = -1, "?"
                for line in f:
                    if line.startswith("State:"):
                        state = line.split()[1]
                    elif line.startswith("Uid:"):
                        uid = int(line.split()[1])
                        break
        except (OSError, ValueError, IndexError):
            continue
        out[int(name)] = (uid, state)
    return out


def _alloc_uid() -> int:
    """A uid no process uses and no account names: the box's processes can then be found (and killed) by uid."""
    busy = {uid for uid, _ in _proc_uids().values()}
    try:
        import pwd

        named = {p.pw_uid for p in pwd.getpwall()}
    except Exception:
        named = set()
    with _uid_lock:
        for _ in range(1000):
            uid = random.randint(*_UID_RANGE)
            if uid not in busy and uid not in named and uid not in _uids_in_use:
                _uids_in_use.add(uid)
                return uid
    raise RuntimeError("no free uid for the sandbox")


def _kill_uid(uid: int, rounds: int = 200) -> bool:
    """SIGKILL every live process of `uid` until none is left (a fork bomb is bounded by RLIMIT_NPROC)."""
    for _ in range(rounds):
        pids = [pid for pid, (u, state) in _proc_uids().items() if u == uid and state not in ("Z", "X")]
        if not pids:
            return True
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        time.sleep(0.005)
    return False


def _killpg(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _tail(f, limit: int = TAIL_CHARS) -> str:
    f.flush()
    size = f.seek(0, os.SEEK_END)
    f.seek(max(0, size - 4 * limit))
    return f.read().decode("utf-8", "replace")[-limit:]


_PATHS_QUERY = r"""
import json, site, sys, sysconfig
paths = [sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix] + site.getsitepackages()
paths += [sysconfig.get_paths().get(k) for k in ("stdlib", "platstdlib", "purelib", "platlib")]
paths.append(sysconfig.get_config_var("LIBDIR"))
print(json.dumps([p for p in paths if p]))
"""
_paths_cache: dict[str, list[str]] = {}


def _exec_path(python: str) -> str:
    """The interpreter's path with its folders resolved but its own name kept (a venv's python finds pyvenv.cfg
    from where it was started, so the box must start it there, not at the binary a symlink points to)."""
    python = os.path.abspath(python)
    return os.path.join(os.path.realpath(os.path.dirname(python)), os.path.basename(python))


def _interpreter_paths(python: str) -> list[str]:
    """Every folder the interpreter needs, resolved through symlinks: its prefixes, the folder of its binary, its
    stdlib, library and site-packages folders (as the interpreter itself reports them under -I; asked once)."""
    if python not in _paths_cache:
        try:
            out = subprocess.run([python, "-I", "-c", _PATHS_QUERY], capture_output=True, text=True, timeout=60,
                                 stdin=subprocess.DEVNULL, cwd="/", env={"PATH": "/usr/local/bin:/usr/bin:/bin",
                                                                        "LANG": "C.UTF-8"})
            if out.returncode != 0:
                raise OSError((out.stderr.strip().splitlines() or [f"exit status {out.returncode}"])[-1])
            reported = json.loads(out.stdout)
        except (OSError, ValueError, subprocess.TimeoutExpired) as e:
            raise SandboxUnavailable(f"the code sandbox cannot use the interpreter {python}: {e}") from None
        dirs = {os.path.realpath(p) for p in reported} | {os.path.dirname(os.path.realpath(python)),
                                                           os.path.dirname(_exec_path(python))}
        _paths_cache[python] = sorted(d for d in dirs if os.path.isdir(d))
    return _paths_cache[python]


def _rlimits(timeout_s: float, memory_mb: int, uid: int | None) -> dict[str, list[int]]:
    cpu = int(math.ceil(timeout_s)) + 1
    nproc = NPROC_LIMIT
    if uid is None:  # RLIMIT_NPROC counts all processes of the uid: leave room for what the user already runs
        me = os.getuid()
        nproc += sum(1 for u, _ in _proc_uids().values() if u == me)
    mem = int(memory_mb) * 1024 * 1024
    return {"RLIMIT_CPU": [cpu, cpu + 1], "RLIMIT_AS": [mem, mem], "RLIMIT_NPROC": [nproc, nproc],
            "RLIMIT_FSIZE": [FSIZE_MB << 20, FSIZE_MB << 20], "RLIMIT_CORE": [0, 0], "RLIMIT_NOFILE": [NOFILE, NOFILE]}


_probed: set[tuple] = set()
_probe_lock = threading.Lock()


def ensure_available(python: str | None = None, memory_mb: int = 512) -> None:
    """Raise SandboxUnavailable unless the box runs `print(1)` with this interpreter and memory limit; checked once
    per process (a box that cannot start its interpreter would otherwise score every code answer 0)."""
    python = python or sys.executable
    key = (python, memory_mb, os.geteuid() == 0, _USE_NAMESPACES)
    if key in _probed:
        return
    with _probe_lock:
        if key in _probed:
            return
        res = _run("print(1)", PROBE_TIMEOUT_S, memory_mb, python)
        if not (res.passed and res.stdout_tail.strip() == "1"):
            raise SandboxUnavailable(f"the code sandbox cannot start Python ({python}, memory limit {memory_mb} MB): "
                                     f"{_why(res)}; no code answer can be scored")
        _probed.add(key)


def _why(res: SandboxResult) -> str:
    lines = [ln.strip() for ln in res.stderr_tail.splitlines() if ln.strip()]
    return lines[-1] if lines else f"{res.status} (exit status {res.returncode}, output {res.stdout_tail[:80]!r})"


def run_code(program: str, timeout_s: float = 5, memory_mb: int = 512, python: str | None = None) -> SandboxResult:
    """Run a Python program in the box (with `python`, default sys.executable) and report how it ended. Never raises
    for anything the program does; raises SandboxUnavailable when the box itself cannot run (never a wrong 0)."""
    python = python or sys.executable
    ensure_available(python, memory_mb)
    res = _run(program, timeout_s, memory_mb, python)
    if res.status == "error":
        raise SandboxUnavailable(f"the code sandbox failed ({python}): {_why(res)}; no code answer can be scored")
    return res


def _run(program: str, timeout_s: float, memory_mb: int, python: str) -> SandboxResult:
    """One run in the box; status "error" when the box could not be set up or the interpreter not started."""
    t0 = time.monotonic()
    needed = _interpreter_paths(python)
    as_root = os.geteuid() == 0
    box = os.path.realpath(tempfile.mkdtemp(prefix="ioa_box_"))
    uid = _alloc_uid() if as_root else None
    rfd = wfd = -1
    proc = None
    try:
        _fill_box(box, program, uid)
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": box, "TMPDIR": box}
        rfd, wfd = os.pipe()
        cfg = {"box": box, "uid": uid, "report_fd": wfd, "python": _exec_path(python), "env": env,
               "needed": needed, "writable_dirs": list(_WRITABLE_DIRS), "tmpfs_mb": TMPFS_MB,
               "rlimits": _rlimits(timeout_s, memory_mb, uid), "prelude": _SOCKET_PRELUDE,
               "namespaces": _USE_NAMESPACES}
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            try:
                proc = subprocess.Popen([sys.executable, "-I", "-S", "-c", _LAUNCHER, json.dumps(cfg)], cwd=box,
                                        env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err, pass_fds=(wfd,),
                                        start_new_session=True, close_fds=True)
            except OSError as e:
                return SandboxResult(False, "error", "", f"sandbox could not start: {e}", None,
                                     time.monotonic() - t0)
            finally:
                os.close(wfd)
                wfd = -1
            timed_out = False
            try:
                proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                timed_out = True
            _killpg(proc.pid)
            if uid is not None:
                _kill_uid(uid)
            rc = proc.wait()
            reports, rfd = _read_reports(rfd), -1
            return _result(reports, rc, timed_out, _tail(out), _tail(err), time.monotonic() - t0, timeout_s)
    finally:
        if proc is not None and proc.poll() is None:
            _killpg(proc.pid)
            proc.kill()
            proc.wait()
        if uid is not None:
            _kill_uid(uid)
            with _uid_lock:
                _uids_in_use.discard(uid)
        for fd in (rfd, wfd):
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
        _rmtree(box)


def _fill_box(box: str, program: str, uid: int | None) -> None:
    with open(os.path.join(box, "main.py"), "w", encoding="utf-8") as f:
        f.write(program)
    os.chmod(os.path.join(box, "main.py"), 0o644)
    if uid is not None:
        os.chown(box, uid, uid)
    os.chmod(box, 0o700)


def _read_reports(rfd: int) -> list[dict]:
    """The launcher's JSON lines (closes rfd)."""
    with os.fdopen(rfd, "rb") as r:
        os.set_blocking(r.fileno(), False)
        try:
            raw = r.read() or b""
        except BlockingIOError:
            raw = b""
    return [json.loads(line) for line in raw.decode("utf-8", "replace").splitlines() if line.strip()]


def _result(reports: list[dict], rc: int, timed_out: bool, stdout: str, stderr: str, duration: float,
            timeout_s: float) -> SandboxResult:
    isolation = tuple(reports[0].get("isolation", ())) if reports and "error" not in reports[0] else ()
    errors = [r["error"] for r in reports if "error" in r]
    if errors or not reports:
        why = errors[0] if errors else "the sandbox launcher died before starting the program"
        return SandboxResult(False, "error", stdout, (stderr + "\n" + why).strip(), rc, duration, isolation)
    if timed_out or rc in (-signal.SIGXCPU,) or (rc == -signal.SIGKILL and duration >= timeout_s):
        return SandboxResult(False, "timeout", stdout, stderr, rc, duration, isolation)
    status: Status = "passed" if rc == 0 else "failed"
    return SandboxResult(rc == 0, status, stdout, stderr, rc, duration, isolation)


def _rmtree(path: str) -> None:
    import shutil

    def _retry(func, p, _exc):
        try:
            os.chmod(os.path.dirname(p), 0o700)
            os.chmod(p, 0o700)
            func(p)
        except OSError:
            pass

    shutil.rmtree(path, onerror=_retry)


_isolation_cache: tuple[str, ...] | None = None


def isolation() -> tuple[str, ...]:
    """The isolation layers the box gets on this machine (probed once), e.g. ("no-network", "fresh-uid", ...)."""
    global _isolation_cache
    if _isolation_cache is None:
        res = run_code("pass", timeout_s=10)
        _isolation_cache = res.isolation
    return _isolation_cache
