"""The bench's arms: which runs make up one seed's comparison, and running (or resuming, or reusing) each.

    ioa            the IOA run (runs/bench-<seed>-ioa)
    undistilled    the student as it is: the IOA run's `before` numbers on the same test split; no extra cost
    oneshot        Self-Instruct synthesis on the IOA run's teacher-token budget, trained once for the IOA run's
                   optimizer steps (baselines/oneshot.py; runs/bench-<seed>-oneshot)
    llm2llm        LLM2LLM (Lee et al. 2024): train on the seeds, write new items from the seed items the student
                   still gets wrong, retrain, until the IOA run's budget is spent; each round trains for the IOA
                   run's optimizer steps (baselines/llm2llm.py; runs/bench-<seed>-llm2llm)
    no_identifier, no_organizer, no_adapter
                   the IOA run with one component switched off (baselines/ablations.py; runs/bench-<seed>-<arm>);
                   each starts from the IOA run's first diagnosis when there is one (graph/fork.py: the same
                   measurement, its teacher tokens and seconds charged to the ablation too; action "fork")

In a budget sweep the IOA run of a seed starts from the first diagnosis of the same seed's finished IOA run at the
largest smaller budget in the runs directory, when there is one (`diagnosis_donor`; the same diagnosis, call for
call, since a budget only stops a run; charged to it as well; action "fork").

A run whose report.json exists is reused, an unfinished one is resumed from its last checkpoint (its teacher cache
makes the resume pay nothing twice). A run directory made with a different config (apart from operational fields
such as teacher.base_url) is an error, never silently reused.
"""
from __future__ import annotations

from pathlib import Path

from agents.checkpoints import has_checkpoint
from agents.reporter import read_report
from ioa_state import ConfigError, RunConfig, load_config

ARMS = ("ioa", "oneshot", "llm2llm", "undistilled", "no_identifier", "no_organizer", "no_adapter")
MATCHED = ("oneshot", "llm2llm")  # arms given the IOA run's teacher budget and optimizer steps
ABLATIONS = ("no_identifier", "no_organizer", "no_adapter")
# Fields that say where and how fast a run talks to its teacher, not what it computes: a reused or resumed run may
# differ in these (a vLLM server restarted on another port), and a resume takes the current values.
OPERATIONAL = ("run_id", "runs_dir", "teacher.base_url", "teacher.api_key_env", "teacher.concurrency",
               "teacher.requests_per_minute", "teacher.tokens_per_minute", "teacher.max_retries",
               "teacher.retry_budget", "teacher.timeout_s", "teacher.token_budget", "teacher.shared_cache",
               "student.device")


def run_id_for(seed: int, arm: str, budget: int | None = None) -> str:
    """bench-<seed>-<arm>, or bench-b<budget>-<seed>-<arm> for a run given a fixed teacher-token budget."""
    return f"bench-{seed}-{arm}" if budget is None else f"bench-b{budget}-{seed}-{arm}"


def flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v and k not in ("roles",):
            out.update(flat(v, key + "."))
        else:
            out[key] = v
    return out


def comparable(cfg: RunConfig) -> dict:
    return {k: v for k, v in flat(cfg.model_dump(mode="json")).items() if k not in OPERATIONAL}


def arm_config(cfg: RunConfig, seed: int, arm: str, runs_dir: str, budget: int | None = None) -> RunConfig:
    """The config of one arm's run for one seed; with `budget`, the teacher stops every graph run at it (§5)."""
    ablation = arm if arm in ABLATIONS else "none"
    update = {"seed": seed, "ablation": ablation, "run_id": run_id_for(seed, arm, budget), "runs_dir": str(runs_dir)}
    if budget is not None:
        update["teacher"] = cfg.teacher.model_copy(update={"token_budget": int(budget)})
    return cfg.model_copy(update=update)


def config_diff(a: RunConfig, b: RunConfig) -> list[str]:
    """The fields (dotted) in which two configs differ, operational fields aside."""
    x, y = comparable(a), comparable(b)
    return sorted(k for k in set(x) | set(y) if x.get(k) != y.get(k))


def check_compatible(run_dir: Path, cfg: RunConfig) -> None:
    """Raise ConfigError when run_dir's saved config differs from cfg in anything but operational fields."""
    path = run_dir / "config.yaml"
    if not path.is_file():
        return
    try:
        saved = load_config(path)
    except ConfigError as e:
        raise ConfigError(f"bench run {run_dir} has a config this version cannot read ({e}); "
                          f"use another --runs-dir or remove it") from None
    diff = config_diff(saved, cfg)
    if diff:
        raise ConfigError(f"bench run {run_dir} was made with a different config ({', '.join(diff[:5])}"
                          f"{', ...' if len(diff) > 5 else ''}): use another --runs-dir, or remove it to redo it")


def trace_seconds(run_dir: Path) -> float:
    """Seconds spent inside the run's steps: the sum of its trace's node_end `seconds` (over every session)."""
    from agents.tracing import node_seconds

    return node_seconds(Path(run_dir) / "trace.jsonl")


def _state_of(run_dir: Path) -> str:
    if (run_dir / "report.json").is_file():
        return "reuse"
    if (run_dir / "checkpoints.sqlite").is_file():
        return "resume"
    return "run"


def _resume(run_dir: Path, cfg: RunConfig, progress) -> None:
    """Continue an unfinished graph run from its last checkpoint (runner.resume), with cfg's operational fields."""
    from graph import runner

    saved = load_config(run_dir / "config.yaml")
    now, before = flat(cfg.model_dump(mode="json")), flat(saved.model_dump(mode="json"))
    overrides = {k: now.get(k) for k in OPERATIONAL if k not in ("run_id", "runs_dir") and now.get(k) != before.get(k)}
    runner.resume(str(run_dir), overrides=overrides or None, progress=progress)


def ensure_graph_run(cfg: RunConfig, progress) -> tuple[Path, dict, str]:
    """Run (or resume, or reuse) the graph run cfg names; returns (run dir, report, what was done)."""
    from graph import runner

    run_dir = Path(cfg.runs_dir) / cfg.run_id
    check_compatible(run_dir, cfg)
    action = _state_of(run_dir)
    if action == "run":
        progress(f"bench: {cfg.run_id}: new run")
        runner.start(cfg, progress=progress)
    elif action == "resume":
        progress(f"bench: {cfg.run_id}: resuming the unfinished run")
        _resume(run_dir, cfg, progress)
    else:
        progress(f"bench: {cfg.run_id}: reusing the finished run")
    path = run_dir / "report.json"
    if not path.is_file():
        raise RuntimeError(f"run {cfg.run_id} ended without a report.json")
    return run_dir, read_report(path), action


def diagnosis_donor(cfg: RunConfig) -> Path | None:
    """For the IOA run cfg names (a bench run at a fixed budget, not started yet): the same seed's finished IOA run at
    the largest smaller budget in cfg's runs directory, made with the same config but the budget, whose first
    diagnosis it can start from; None when there is none. Only finished runs are donors (a running one's checkpoints
    are another process's), and only at a budget no larger than cfg's (a smaller budget may have cut a diagnosis that
    a larger one finishes; a run whose diagnosis was cut has no checkpoint to give)."""
    budget = cfg.teacher.token_budget
    if cfg.ablation != "none" or budget is None or has_checkpoint(Path(cfg.runs_dir) / cfg.run_id):
        return None
    donors = []
    for d in Path(cfg.runs_dir).glob(f"bench-b*-{cfg.seed}-ioa"):
        if not ((d / "config.yaml").is_file() and (d / "report.json").is_file() and has_checkpoint(d)):
            continue
        try:
            saved = load_config(d / "config.yaml")
        except ConfigError:  # a run this version cannot read gives nothing
            continue
        other = saved.teacher.token_budget
        if other is not None and other < budget and d.name == run_id_for(cfg.seed, "ioa", other) \
                and saved.ablation == "none" and config_diff(saved, cfg) == []:
            donors.append((other, d))
    return max(donors)[1] if donors else None


def ensure_ioa(cfg: RunConfig, progress) -> tuple[Path, dict, str]:
    """The IOA run cfg names: run (or resumed, or reused); a new one at a fixed budget starts from a smaller budget's
    first diagnosis when there is one (`diagnosis_donor`)."""
    check_compatible(Path(cfg.runs_dir) / cfg.run_id, cfg)
    return _fork_then_run(cfg, diagnosis_donor(cfg), progress)


def _fork_then_run(cfg: RunConfig, source: Path | None, progress) -> tuple[Path, dict, str]:
    """The graph run cfg names, to its end: first forked from `source`'s first diagnosis when a source is given and
    has one (action "fork"), else run, resumed or reused as it stands."""
    from graph.fork import fork_after_diagnosis

    if source is not None and fork_after_diagnosis(cfg, source, progress):
        d, report, _ = ensure_graph_run(cfg, progress)
        return d, report, "fork"
    return ensure_graph_run(cfg, progress)


def ensure_ablation(cfg: RunConfig, ioa_dir: Path, progress) -> tuple[Path, dict, str]:
    """An ablation's run: forked from the IOA run's first diagnosis when it has none of its own yet and the IOA run
    has one (made with the same config but the ablation), then run to its end like any graph run."""
    run_dir = Path(cfg.runs_dir) / cfg.run_id
    check_compatible(run_dir, cfg)
    shared = not has_checkpoint(run_dir) and shares_diagnosis(cfg, ioa_dir)
    return _fork_then_run(cfg, ioa_dir if shared else None, progress)


def shares_diagnosis(cfg: RunConfig, ioa_dir: Path) -> bool:
    """Whether cfg's ablation run may start from the IOA run's first diagnosis: the IOA run's config is cfg's but
    for the run's identity and the ablation (operational fields aside)."""
    from graph.fork import SHARES_DIAGNOSIS

    path = Path(ioa_dir) / "config.yaml"
    if cfg.ablation not in SHARES_DIAGNOSIS or not path.is_file():
        return False
    ioa = load_config(path)
    return ioa.ablation == "none" and config_diff(cfg, ioa) == ["ablation"]


def ensure_matched(arm: str, cfg: RunConfig, ioa_dir: Path, ioa_report: dict, progress,
                   budget: int | None = None) -> tuple[Path, dict, str]:
    """The one-shot or LLM2LLM run for cfg's seed, reused when its report matches its budget (`budget`, else the
    IOA run's spend) and the IOA run's optimizer steps."""
    from baselines.llm2llm import run_llm2llm
    from baselines.oneshot import run_oneshot

    run_dir = Path(cfg.runs_dir) / cfg.run_id
    check_compatible(run_dir, cfg)
    path = run_dir / "report.json"
    want = int(ioa_report["teacher_tokens"] if budget is None else budget)
    if path.is_file():
        data = read_report(path)
        base = data.get("baseline") or {}
        if base.get("budget") == want and base.get("target_steps") == ioa_report["optimizer_steps"]:
            progress(f"bench: {cfg.run_id}: reusing the finished run")
            return run_dir, data, "reuse"
        progress(f"bench: {cfg.run_id}: its budget or steps differ from {ioa_report.get('run_id')}'s: redoing it "
                 f"(cached teacher calls are free)")
    action = "resume" if (run_dir / "teacher_cache.sqlite").is_file() else "run"
    shared = evaluation_tokens(ioa_dir)
    run_dir, data = (run_oneshot if arm == "oneshot" else run_llm2llm)(cfg, ioa_dir, cfg.run_id, progress,
                                                                     budget=max(0, want - shared))
    return run_dir, charge_shared(run_dir, want, shared), action


def evaluation_tokens(ioa_dir: Path) -> int:
    """Teacher tokens the IOA run paid for the test split's teacher answers (node diagnose:test): the report's
    reference, which the matched arms use too, so it is charged to each of them (§5: shared, charged to each arm
    that uses it)."""
    from agents.tracing import read_lines

    return sum(int(e.get("tokens_in") or 0) + int(e.get("tokens_out") or 0)
               for e in read_lines(Path(ioa_dir) / "trace.jsonl")
               if e.get("event") == "teacher_call" and e.get("node") == "diagnose:test" and not e.get("cached"))


def charge_shared(run_dir: Path, budget: int, shared: int) -> dict:
    """A matched arm's report with the shared evaluation tokens charged: its spend includes them, its budget is the
    bench's (the synthesis got budget - shared)."""
    from agents.runtime import write_json
    from ioa_state.records import RunReport

    data = read_report(run_dir / "report.json")
    base = data.setdefault("baseline", {})
    if base.get("shared_tokens") is None:
        data["teacher_tokens"] = int(data["teacher_tokens"]) + shared
        base.update({"budget": budget, "synthesis_budget": budget - shared, "shared_tokens": shared,
                     "shared_note": "the IOA run's test-split teacher answers (the retention reference), charged"})
        write_json(run_dir, "report.json", RunReport.model_validate(data).model_dump(), kind="report")
    return data


def row(seed: int, arm: str, run_dir: Path, report: dict, action: str, *, before: bool = False) -> dict:
    """One arm's numbers for one seed, from a report (the student-before numbers for the undistilled arm)."""
    o = report["overall"]
    t = report.get("teachable_overall") or {}
    side = "before" if before else "after"
    deficient, known = report.get("deficient_overall") or {}, report.get("known_overall") or {}
    base = report.get("baseline") or {}
    return {
        "seed": seed, "arm": arm, "run_id": report.get("run_id"), "run_dir": str(run_dir), "action": action,
        "status": "finished" if before else report.get("status", "finished"),
        "stop_reason": None if before else report.get("stop_reason"),
        "teacher": o["teacher"], "score": o[side], "retention": o[f"retention_{side}"],
        "teachable_retention": t.get(f"retention_{side}"),
        "retention_overall": o[f"retention_{side}"],
        "retention_deficient": deficient.get(f"retention_{side}"),
        "retention_deficient_before": deficient.get("retention_before"),
        "known_before": known.get("before"), "known_after": known.get(side),
        "budget": None if before else base.get("budget") or budget_of(run_dir),
        "teacher_limited": list(report.get("teacher_limited") or []),
        "teacher_tokens": 0 if before else int(report.get("teacher_tokens") or 0),
        "optimizer_steps": 0 if before else int(report.get("optimizer_steps") or 0),
        "wall_s": 0.0 if before else float(report["wall_s"]) if report.get("wall_s") is not None
        else trace_seconds(run_dir),
        "modules": {r["module"]: {"teacher": r["teacher"], "score": r[side], "retention": r[f"retention_{side}"],
                                  "teacher_limited": r["teacher_limited"]} for r in report.get("modules", [])},
    }


def budget_of(run_dir: Path) -> int | None:
    """The teacher-token budget a graph run was given (its saved config's teacher.token_budget)."""
    path = Path(run_dir) / "config.yaml"
    return load_config(path).teacher.token_budget if path.is_file() else None


def plan(cfg: RunConfig, seeds: list[int], arms: list[str], runs_dir: str, budget: int | None = None) -> list[dict]:
    """What a bench would do, from the run directories alone (loads no model): one entry per (seed, run)."""
    steps = []
    need_ioa = any(a in arms for a in ("ioa", "undistilled", *MATCHED))
    for seed in seeds:
        if need_ioa:
            d = Path(runs_dir) / run_id_for(seed, "ioa", budget)
            donor = diagnosis_donor(arm_config(cfg, seed, "ioa", runs_dir, budget))
            steps.append({"seed": seed, "arm": "ioa", "run_dir": str(d),
                          "action": "fork" if donor is not None else _state_of(d), "shown": "ioa" in arms,
                          "note": f" (from {donor.name}'s first diagnosis)" if donor is not None else ""})
        if "undistilled" in arms:
            ioa_dir = str(Path(runs_dir) / run_id_for(seed, "ioa", budget))
            steps.append({"seed": seed, "arm": "undistilled", "run_dir": ioa_dir,
                          "action": "derived", "shown": True, "note": " (the IOA run's student-before numbers)"})
        for arm in (a for a in MATCHED if a in arms):
            d = Path(runs_dir) / run_id_for(seed, arm, budget)
            act = (
                "reuse"
                if (d / "report.json").is_file()
                else "resume"
                if (d / "teacher_cache.sqlite").is_file()
                else "run"
            )
            steps.append({"seed": seed, "arm": arm, "run_dir": str(d), "action": act, "shown": True})
        for arm in ABLATIONS:
            if arm in arms:
                d = Path(runs_dir) / run_id_for(seed, arm, budget)
                act = _state_of(d)
                ioa_dir = Path(runs_dir) / run_id_for(seed, "ioa", budget)
                if not has_checkpoint(d) and (need_ioa or has_checkpoint(ioa_dir)):
                    act = "fork"
                steps.append({"seed": seed, "arm": arm, "run_dir": str(d), "action": act, "shown": True,
                              "note": " (from the IOA run's first diagnosis)" if act == "fork" else ""})
    return steps


def format_plan(cfg: RunConfig, seeds: list[int], arms: list[str], runs_dir: str, out_dir: str,
                budgets: list[int | None] = (None,)) -> str:
    lines = [f"ioa bench plan: pack {cfg.task.pack} (limit {cfg.task.limit}), teacher {cfg.teacher.spec}, "
             f"student {cfg.student.source}, seeds {' '.join(map(str, seeds))}, arms {' '.join(arms)}",
             f"runs under {runs_dir}; bench.json, bench.svg into {out_dir}"]
    for budget in budgets:
        lines.append(f"budget: {budget} teacher tokens for every arm" if budget is not None else
                     "budget: the IOA run's own spend, given to the matched arms (one-shot, LLM2LLM)")
        lines += _plan_lines(cfg, seeds, arms, runs_dir, budget)
    if len(seeds) < 3:
        lines.append("note: the spread (max - min) is meant over at least 3 seeds (algorithm §5)")
    return "\n".join(lines)


def _plan_lines(cfg: RunConfig, seeds: list[int], arms: list[str], runs_dir: str, budget: int | None) -> list[str]:
    lines = []
    for s in plan(cfg, seeds, arms, runs_dir, budget):
        note = s.get("note", "") if s["shown"] else " (needed for the one-shot budget / undistilled numbers)"
        lines.append(f"  seed {s['seed']:<3} {s['arm']:<14} {s['action']:<8} {s['run_dir']}{note}")
    return lines
