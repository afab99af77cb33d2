"""`ioa bench --jobs N`: the bench's seeds (in a sweep, every budget's seeds) as N processes side by side.

On a CPU one bench is hours of one process, and its seeds are independent: each seed's IOA run, its matched arms and
its ablations use nothing of another seed's. So a job is the bench itself for one seed at one budget,

    python -m cli.main bench <R>/bench-jobs/config.yaml --seeds S [--budget B] --arms ... --runs-dir R
                              --out <R>/bench-jobs/b<B>-s<S>

with the caller's resolved config written once (every field, so the job computes exactly what the caller would; keys are
named by their variable, never stored), its output in <R>/bench-jobs/b<B>-s<S>.log, and a share of the cores:
IOA_TORCH_THREADS = cores // N, at least 1 (torch processes that each take every core slow each other down far more than
N times: benchmarks/README.md). When no job is left to start, the jobs still running share the cores the ended ones
left: the caller rewrites <R>/bench-jobs/torch-threads (`threads_now`; the jobs' IOA_TORCH_THREADS_FILE), which each job
reads before every generate call and training round (training/device.apply_thread_setting), so the bench's last seed
does not run on one core of two. At most N jobs run at once; when every job has ended the caller runs the bench in its
own process, which reuses every run the jobs finished and writes the one table. A job that fails leaves its runs
resumable (the same command continues them, paying no teacher call twice). The jobs stop with their caller, however it
is stopped, so a rerun never shares a run directory with a job still writing to it: Ctrl-C, any exception and SIGTERM
(turned into an exit while the jobs run) terminate them, and on Linux each job is started with the parent death signal
SIGTERM (prctl PR_SET_PDEATHSIG: `stop_with_parent`), which also covers a caller killed by SIGKILL.
"""
from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ioa_state import ConfigError, RunConfig

JOBS_DIR = "bench-jobs"
THREADS_FILE = "torch-threads"  # in JOBS_DIR: the running jobs' torch threads (training/device.py reads it)
POLL_S = 2.0


@dataclass(frozen=True)
class Job:
    """One seed of the bench at one budget (None: the config's own)."""

    seed: int
    budget: int | None

    @property
    def name(self) -> str:
        return f"b{self.budget if self.budget is not None else 'cfg'}-s{self.seed}"


def plan_jobs(seeds: list[int], budgets: list[int | None]) -> list[Job]:
    """Every (budget, seed) pair once, the budgets in increasing order and the seeds in the order given."""
    seeds = list(dict.fromkeys(int(s) for s in seeds))
    ordered = sorted({b for b in budgets if b is not None}) + ([None] if None in budgets else [])
    return [Job(s, b) for b in ordered for s in seeds]


def cores() -> int:
    """The cores this process may use (its CPU affinity where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS, Windows
        return os.cpu_count() or 1


def threads_per_job(jobs: int, n_cores: int) -> int:
    """Torch threads each of `jobs` side-by-side processes gets on `n_cores` cores (at least 1)."""
    if jobs < 1:
        raise ConfigError(f"--jobs must be at least 1, got {jobs}")
    return max(1, n_cores // jobs)


def threads_now(jobs: int, waiting: int, running: int, n_cores: int) -> int:
    """Torch threads each running job gets while `waiting` jobs are still to start and `running` run: the share of
    `jobs` side by side while any waits, else of those still running (at least 1)."""
    return threads_per_job(max(1, min(jobs, waiting + running)), n_cores)


def write_threads(path: Path, n: int) -> None:
    """The jobs' thread count, written whole (a rename), so that a job never reads half a file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(f"{n}\n", encoding="utf-8")
    os.replace(tmp, path)


def job_argv(job: Job, config_path: Path, arms: list[str], runs_dir: str | Path, out_root: Path) -> list[str]:
    """The command line of one job."""
    argv = [sys.executable, "-m", "cli.main", "bench", str(config_path), "--seeds", str(job.seed),
            "--arms", *arms, "--runs-dir", str(runs_dir), "--out", str(out_root / job.name)]
    return argv + (["--budget", str(job.budget)] if job.budget is not None else [])


def write_job_config(cfg: RunConfig, out_root: Path) -> Path:
    """The caller's resolved config, every field, as the jobs' config file."""
    from agents.runtime import save_config

    out_root.mkdir(parents=True, exist_ok=True)
    save_config(cfg, out_root)
    return out_root / "config.yaml"


PR_SET_PDEATHSIG = 1  # linux/prctl.h


def stop_with_parent() -> Callable[[], None] | None:
    """A `preexec_fn` that has the child receive SIGTERM when its parent dies (Linux prctl PR_SET_PDEATHSIG), so a
    job never outlives a caller killed by SIGKILL; None where there is no prctl. The libc call is resolved here, in
    the parent, so the child only makes the one system call between fork and exec."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    return preexec


def _exit_on_sigterm(signum, frame) -> None:
    raise SystemExit(128 + signum)  # the caller's `finally` then terminates its jobs


def run_jobs(cfg: RunConfig, seeds: list[int], arms: list[str], budgets: list[int | None], runs_dir: str | Path,
             jobs: int, progress: Callable[[str], None] | None = None) -> list[str]:
    """Run every job, `jobs` at a time; returns the failed jobs' lines (name, exit status, log), [] when all ended
    well."""
    progress = progress or (lambda m: None)
    todo = plan_jobs(seeds, budgets)
    threads = threads_per_job(jobs, cores())
    out_root = Path(runs_dir) / JOBS_DIR
    config_path = write_job_config(cfg, out_root)
    from training.device import THREADS_FILE_ENV  # here: `ioa trace` imports this module and must not load torch

    share = out_root / THREADS_FILE
    write_threads(share, threads)
    env = {**os.environ, "IOA_TORCH_THREADS": str(threads), THREADS_FILE_ENV: str(share.resolve())}
    root = str(Path(__file__).resolve().parents[1])  # the job imports this checkout's packages, as the caller does
    # (relative paths such as runs_dir stay the caller's: the job runs in the caller's directory)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    progress(f"bench: {len(todo)} job(s), {min(jobs, len(todo))} at a time, {threads} torch thread(s) each; "
             f"logs in {out_root}")
    running: dict[str, tuple[subprocess.Popen, float, Path, object]] = {}
    failed: list[str] = []
    preexec = stop_with_parent()
    main = threading.current_thread() is threading.main_thread()  # only the main thread may set a handler
    previous = signal.signal(signal.SIGTERM, _exit_on_sigterm) if main else None
    try:
        while todo or running:
            while todo and len(running) < jobs:
                job = todo.pop(0)
                log = out_root / f"{job.name}.log"
                fh = open(log, "a", encoding="utf-8")  # noqa: SIM115 - closed when the job ends
                proc = subprocess.Popen(job_argv(job, config_path, arms, runs_dir, out_root), stdout=fh,
                                        stderr=subprocess.STDOUT, env=env, preexec_fn=preexec)
                running[job.name] = (proc, time.monotonic(), log, fh)
                progress(f"bench job {job.name}: started (seed {job.seed}, budget {job.budget}), log {log}")
            time.sleep(POLL_S if running else 0)
            for name, (proc, t0, log, fh) in list(running.items()):
                rc = proc.poll()
                if rc is None:
                    continue
                fh.close()
                del running[name]
                took = time.monotonic() - t0
                if rc == 0:
                    progress(f"bench job {name}: done in {took:.0f} s")
                else:
                    failed.append(f"{name} (exit {rc}; log {log}: {last_line(log)})")
                    progress(f"bench job {name}: FAILED with exit {rc} after {took:.0f} s; log {log}")
                now = threads_now(jobs, len(todo), len(running), cores())
                if running and now != threads:  # while a job waits, the share stays --jobs'
                    threads = now
                    write_threads(share, threads)
                    progress(f"bench: {len(running)} job(s) still running, {threads} torch thread(s) each")
    finally:
        if main:
            signal.signal(signal.SIGTERM, previous)
        for proc, _, _, fh in running.values():  # the caller was stopped: its jobs stop too (they resume later)
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
            fh.close()
    return failed


def last_line(log: Path) -> str:
    """The last non-empty line of a job's log (its error, when it failed)."""
    try:
        lines = [ln.strip() for ln in log.read_text(encoding="utf-8", errors="replace").splitlines() if ln.strip()]
    except OSError:
        return "no log"
    return lines[-1][-300:] if lines else "empty log"
