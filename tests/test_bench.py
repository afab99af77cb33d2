"""`ioa bench` in small: IOA, the one-shot baseline, the undistilled student and one ablation over two seeds, with a
scripted teacher over HTTP and the 2-layer `tiny` student. Checks the bookkeeping, not the science: the one-shot arm
spends the IOA arm's teacher budget (within 5%) and trains for the same optimizer steps; the table, bench.json and
bench.svg hold every arm and seed; teacher-limited modules are listed and kept out of teachable retention; a bench
killed inside a run resumes it without paying a teacher call twice; a rerun reuses every finished run (zero new
teacher calls); a run directory made with another config is refused.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import xml.etree.ElementTree as ET
from importlib import resources
from pathlib import Path

import pytest
import yaml
from openai_server import OpenAIServer

import bench as bench_mod
from graph import builder
from ioa_state import ConfigError, load_config

ROOT = Path(__file__).resolve().parents[1]
SEEDS = [0, 1]
ARMS = ["ioa", "oneshot", "undistilled", "no_organizer"]
LIMITED = "culture"  # the scripted teacher does not know these facts: a teacher-limited module

SMALL = {
    "task": {"pack": "zorbia", "limit": 36},  # 6 facts: geography (taught) and culture (teacher-limited)
    "teacher": {"spec": "openai-compatible:scripted", "max_tokens": 40, "max_reasks": 0, "concurrency": 4},
    "student": {"source": "tiny", "epochs": 1, "batch_size": 8, "learning_rate": 0.002, "max_new_tokens": 12,
                "max_length": 128},
    "thresholds": {"samples_per_seed": 2, "max_remedial_rounds": 1, "max_cycles": 1, "target_fraction": 1.0},
    "min_items": 1,
    "watch_items": 2,
}

STOP = set("a an the of in is what which who whom how to for me tell name called and do does zorbia zorbia's "
           "its it that this are was be please".split())


class ZorbiaTeacher:
    """Replies like a teacher that has read the Zorbia sheet, except for the culture facts it cannot answer."""

    def __init__(self) -> None:
        data = json.loads((resources.files("tasks.packs") / "zorbia.json").read_text())
        self.facts = data["facts"]
        self.sheet_marker = data["sheet_intro"][:40]
        self.vocab = [self._words(" ".join(f["questions"]) + " " + f["fact"]) for f in self.facts]
        self.counts: dict[str, int] = {}
        self.lock = threading.Lock()

    @staticmethod
    def _words(text: str) -> set[str]:
        return {w for w in re.findall(r"[a-z]+", text.lower()) if w not in STOP}

    def fact_for(self, question: str) -> dict:
        words = self._words(question)
        best = max(range(len(self.facts)), key=lambda i: (len(words & self.vocab[i]), -i))
        return self.facts[best]

    def rewrite(self, question: str) -> str:
        with self.lock:
            n = self.counts[question] = self.counts.get(question, 0) + 1
        body = question[0].lower() + question[1:].rstrip(".?!")
        return f'New question: "Practice question {n} for the quiz: can you say {body}?"'

    def __call__(self, body: dict) -> str:
        msgs = body.get("messages", [])
        user = next((m["content"] for m in reversed(msgs) if m.get("role") == "user"), "") or ""
        system = next((m["content"] for m in msgs if m.get("role") == "system"), "") or ""
        tools = body.get("tools") or []
        schema = (body.get("response_format") or {}).get("json_schema") or {}  # json_schema mode names the schema
        name = tools[0]["function"]["name"] if tools else schema.get("name")
        if name:
            if name == "ModuleCard":
                return json.dumps({"name": "Zorbia facts", "description": "facts about Zorbia", "level": 1})
            return json.dumps({"edges": []})
        if user.startswith("How hard is this question"):
            return "1"
        m = (re.search(r'Here is a question about [^:]*: "(.+?)"\n', user)
             or re.search(r'answered the question "(.+?)" wrongly', user))
        if m:
            return self.rewrite(m.group(1))
        if self.sheet_marker not in system:
            return "I do not know."
        fact = self.fact_for(user)
        if fact["category"] == LIMITED:
            return "I am not sure about that."
        return f"The answer is {fact['answer']}.\nAnswer: {fact['answer']}"


class Killed(Exception):
    """Stands for a kill inside a run."""


@pytest.fixture(scope="module")
def server():
    with OpenAIServer(ZorbiaTeacher(), models=["scripted"]) as srv:
        yield srv


@pytest.fixture(scope="module")
def setup(server, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bench")
    data = json.loads(json.dumps(SMALL))
    data["teacher"]["base_url"] = server.base_url
    data["runs_dir"] = str(tmp / "runs")
    path = tmp / "bench.yaml"
    path.write_text(yaml.safe_dump(data))
    return tmp, path, load_config(path)


@pytest.fixture(scope="module")
def first(setup, server):
    """A bench killed inside seed 1's IOA run (after its first training round), then run again to its end."""
    tmp, _, cfg = setup
    original = builder.NODES["examine"]

    def examine(state, svc):
        if svc.cfg.run_id == "bench-1-ioa":
            raise Killed("killed inside the run")
        return original(state, svc)

    builder.NODES["examine"] = examine
    try:
        with pytest.raises(Killed):
            bench_mod.run_bench(cfg, SEEDS, ARMS, out_dir=tmp / "out")
    finally:
        builder.NODES["examine"] = original
    assert not (tmp / "out" / "bench.json").exists()
    assert (tmp / "runs" / "bench-1-ioa" / "checkpoints.sqlite").is_file()
    assert not (tmp / "runs" / "bench-1-ioa" / "report.json").exists()
    killed_requests = server.requests
    result = bench_mod.run_bench(cfg, SEEDS, ARMS, out_dir=tmp / "out")
    return result, killed_requests, server.requests


def _rows(result) -> dict:
    return {(r["arm"], r["seed"]): r for r in result["rows"]}


def _report(row) -> dict:
    return json.loads((Path(row["run_dir"]) / "report.json").read_text())


def test_every_arm_and_seed_in_the_table_json_and_plot(first, setup):
    tmp, _, _ = setup
    result, _, _ = first
    rows = _rows(result)
    assert sorted(rows) == sorted((a, s) for a in ARMS for s in SEEDS)
    saved = json.loads((tmp / "out" / "bench.json").read_text())
    assert sorted((r["arm"], r["seed"]) for r in saved["rows"]) == sorted(rows)
    assert saved["arms"] == ARMS and saved["seeds"] == SEEDS
    for arm in ARMS:
        for metric in bench_mod.METRICS:
            s = saved["summary"][arm][metric]
            vals = [rows[(arm, seed)][metric] for seed in SEEDS if rows[(arm, seed)][metric] is not None]
            assert s["n"] == len(vals)
            if vals:
                assert s["mean"] == pytest.approx(sum(vals) / len(vals))
                assert s["spread"] == pytest.approx(max(vals) - min(vals))
    table = result["table"]
    body = table.splitlines()
    for arm in ARMS:
        assert any(line.startswith(f"{arm:<15}") and re.match(r"\s*\d", line[15:]) for line in body), arm
    header = next(line for line in body if line.startswith("arm "))
    for col in ("ret. deficient", "ret. overall", "known before", "known after", "teacher tokens", "opt. steps",
                "wall s"):
        assert col in header
    svg = (tmp / "out" / "bench.svg").read_text()
    root = ET.fromstring(svg)
    assert root.tag.endswith("svg")
    texts = "".join(root.itertext())
    for arm in ARMS:
        assert arm in texts


def test_oneshot_spends_the_ioa_budget_and_the_same_steps(first):
    result, _, _ = first
    rows = _rows(result)
    for seed in SEEDS:
        ioa, one = _report(rows[("ioa", seed)]), _report(rows[("oneshot", seed)])
        budget = ioa["teacher_tokens"]
        assert budget > 0 and ioa["optimizer_steps"] > 0
        assert one["baseline"]["budget"] == budget
        assert 0.95 * budget <= one["teacher_tokens"] <= budget
        assert one["optimizer_steps"] == ioa["optimizer_steps"] == rows[("oneshot", seed)]["optimizer_steps"]
        # the IOA run's test-split teacher answers (the retention reference both arms use) are charged to it too
        shared = sum(e["tokens_in"] + e["tokens_out"] for e in map(json.loads, (Path(rows[("ioa", seed)]["run_dir"]) /
                     "trace.jsonl").read_text().splitlines()) if e["event"] == "teacher_call"
                     and e.get("node") == "diagnose:test" and not e["cached"])
        assert shared > 0 and one["baseline"]["shared_tokens"] == shared
        assert one["baseline"]["synthesis_budget"] == budget - shared
        u = one["usage"]["adapter"]
        assert u["tokens_in"] + u["tokens_out"] + shared == one["teacher_tokens"]
        assert one["teacher_tokens"] == rows[("oneshot", seed)]["teacher_tokens"]
        # uniform over the seed items: every seed item asked as often as any other, give or take one
        run_dir = Path(rows[("oneshot", seed)]["run_dir"])
        records = [json.loads(line) for f in ("oneshot.jsonl", "oneshot-dropped.jsonl")
                   for line in (run_dir / "items" / f).read_text().splitlines()]
        seeds = [r for r in records if r.get("question_template") == "seed"]  # the seed answers, one per seed item
        assert sorted(r["source"] for r in seeds) == sorted({r["source"] for r in records})
        records = [r for r in records if r not in seeds]
        per_source = {}
        for r in records:
            per_source[r["source"]] = per_source.get(r["source"], 0) + 1
        assert len(per_source) == 6 and max(per_source.values()) - min(per_source.values()) <= 1
        assert sum(per_source.values()) == one["baseline"]["pairs_asked"]
        kept = [json.loads(line) for line in (run_dir / "items" / "oneshot.jsonl").read_text().splitlines()]
        assert kept and len({r["prompt"].lower() for r in kept}) == len(kept)  # no exact duplicates
    check = {c["seed"]: c for c in result["checks"]}
    assert all(check[s]["within_5pct"] and check[s]["steps_equal"] for s in SEEDS)


def test_undistilled_is_the_ioa_before_numbers_at_no_cost(first):
    result, _, _ = first
    rows = _rows(result)
    for seed in SEEDS:
        ioa = _report(rows[("ioa", seed)])
        u = rows[("undistilled", seed)]
        assert u["score"] == ioa["overall"]["before"] and u["retention"] == ioa["overall"]["retention_before"]
        assert u["teacher_tokens"] == 0 and u["optimizer_steps"] == 0 and u["wall_s"] == 0
        assert rows[("ioa", seed)]["score"] == ioa["overall"]["after"]


def test_ablation_runs_with_its_switch_and_reports_its_own_spend(first):
    result, _, _ = first
    for seed in SEEDS:
        row = _rows(result)[("no_organizer", seed)]
        cfg = yaml.safe_load((Path(row["run_dir"]) / "config.yaml").read_text())
        assert cfg["ablation"] == "no_organizer" and cfg["seed"] == seed
        assert row["teacher_tokens"] == _report(row)["teacher_tokens"] > 0
        assert row["wall_s"] > 0


def _events(run_dir) -> list[dict]:
    return [json.loads(line) for line in (Path(run_dir) / "trace.jsonl").read_text().splitlines() if line.strip()]


def _first_diagnosis(events: list[dict]) -> list[dict]:
    """The events up to the first diagnose node_end."""
    end = next(i for i, e in enumerate(events) if e["event"] == "node_end" and e["node"] == "diagnose")
    return events[:end + 1]


def test_ablation_starts_from_the_ioa_runs_first_diagnosis_and_pays_for_it(first):
    """§5: the first diagnosis is one measurement for IOA and the ablation; the ablation does not measure it again,
    and its teacher tokens are charged to the ablation too."""
    result, _, _ = first
    rows = _rows(result)
    for seed in SEEDS:
        ioa_row, abl_row = rows[("ioa", seed)], rows[("no_organizer", seed)]
        assert abl_row["action"] == ("reuse" if seed == 0 else "fork")  # seed 0's forked before the kill
        ioa_diag, abl = _first_diagnosis(_events(ioa_row["run_dir"])), _events(abl_row["run_dir"])
        strip = [{k: v for k, v in e.items() if k not in ("seq", "ts")} for e in ioa_diag]
        assert [{k: v for k, v in e.items() if k not in ("seq", "ts")} for e in abl[:len(ioa_diag)]] == strip
        shared = abl[len(ioa_diag)]
        paid = sum(e["tokens_in"] + e["tokens_out"] for e in ioa_diag if e["event"] == "teacher_call"
                   and not e["cached"])
        assert shared["event"] == "diagnosis_shared" and shared["source"] == f"bench-{seed}-ioa"
        assert paid > 0 and shared["tokens"] == paid and shared["targets"]
        later = abl[len(ioa_diag) + 1:]
        assert not any(e["event"] == "node_start" and e["node"] == "diagnose" for e in later)  # one cycle here
        assert not any(e["event"] == "teacher_call" and e.get("node") in ("diagnose", "diagnose:test")
                       for e in later), "the ablation asked the diagnosis again"
        ioa, ablation = _report(ioa_row), _report(abl_row)
        assert ablation["overall"]["teacher"] == ioa["overall"]["teacher"]
        assert ablation["overall"]["before"] == ioa["overall"]["before"]
        assert ablation["usage"]["diagnostician"] == ioa["usage"]["diagnostician"]  # charged as IOA paid it
        adapter = ablation["usage"]["adapter"]
        assert ablation["teacher_tokens"] >= paid + adapter["tokens_in"] + adapter["tokens_out"]
        assert abl_row["wall_s"] >= shared["seconds"] > 0


def test_a_fork_killed_before_its_checkpoint_is_made_again_and_no_identifier_retargets(first, setup, monkeypatch):
    """A fork that died before its checkpoint leaves nothing to resume: the next one starts clean. no_identifier keeps
    the shared measurements and recomputes its targets with its own step (every teachable module not passed)."""
    from agents.checkpoints import has_checkpoint, load_state
    from graph import fork, runner

    tmp, _, cfg = setup
    result, _, _ = first
    ioa_dir = Path(_rows(result)[("ioa", 0)]["run_dir"])
    abl = bench_mod.arm_config(cfg, 0, "no_identifier", str(tmp / "forks"))
    assert bench_mod.arms.shares_diagnosis(abl, ioa_dir)
    assert not bench_mod.arms.shares_diagnosis(
        abl.model_copy(update={"student": abl.student.model_copy(update={"epochs": 2})}), ioa_dir)
    real = runner.compiled

    def dies(run_dir, *a, **kw):
        if Path(run_dir).name == abl.run_id:
            raise Killed("killed inside the fork")
        return real(run_dir, *a, **kw)

    monkeypatch.setattr(runner, "compiled", dies)
    with pytest.raises(Killed):
        fork.fork_after_diagnosis(abl, ioa_dir)
    run_dir = tmp / "forks" / abl.run_id
    assert (run_dir / "trace.jsonl").is_file() and not has_checkpoint(run_dir)
    monkeypatch.setattr(runner, "compiled", real)
    assert fork.fork_after_diagnosis(abl, ioa_dir)
    events = _events(run_dir)
    assert sum(e["event"] == "diagnosis_shared" for e in events) == 1
    assert sum(e["event"] == "node_end" and e["node"] == "diagnose" for e in events) == 1
    ioa_state = fork.diagnosed_state(ioa_dir)
    state = load_state(run_dir)
    assert state.run_id == abl.run_id and state.modules == ioa_state.modules and state.usage == ioa_state.usage
    teachable = sorted(k for k, m in state.modules.items() if not m.teacher_limited)
    assert state.targets == teachable
    assert events[-1]["event"] == "targets" and events[-1]["targets"] == teachable
    assert set(state.severity.values()) == {1.0}
    with pytest.raises(RuntimeError, match="already has a checkpoint"):
        fork.fork_after_diagnosis(abl, ioa_dir)


def test_teacher_limited_modules_listed_and_out_of_teachable_retention(first):
    result, _, _ = first
    for r in result["rows"]:
        assert r["teacher_limited"] == [LIMITED], r
        teach = {k: m for k, m in r["modules"].items() if not m["teacher_limited"]}
        assert list(teach) == ["geography"]
        g = teach["geography"]
        assert r["teachable_retention"] == pytest.approx(g["score"] / g["teacher"])
    table = result["table"]
    assert "teacher-limited modules" in table
    assert re.search(rf"^\s+{LIMITED}: seeds 0 1 in ioa, oneshot, undistilled, no_organizer$", table, re.M), table
    for arm in ARMS:
        assert result["summary"][arm]["teacher_limited"] == {LIMITED: SEEDS}


def test_killed_bench_resumed_the_run_without_paying_twice(first):
    result, _, _ = first
    rows = _rows(result)
    assert rows[("ioa", 1)]["action"] == "resume"
    assert rows[("ioa", 0)]["action"] == "reuse" and rows[("oneshot", 0)]["action"] == "reuse"
    assert rows[("no_organizer", 1)]["action"] == "fork"  # from the resumed IOA run's first diagnosis
    run_dir = Path(rows[("ioa", 1)]["run_dir"])
    events = [json.loads(line) for line in (run_dir / "trace.jsonl").read_text().splitlines() if line.strip()]
    paid = [json.dumps([e["messages"], e.get("sample_index"), e.get("role")], sort_keys=True)
            for e in events if e["event"] == "teacher_call" and not e["cached"]]
    assert paid and len(paid) == len(set(paid)), "a teacher call was paid twice"
    assert _report(rows[("ioa", 1)])["status"] == "finished"


def test_rerun_reuses_every_finished_run_with_zero_teacher_calls(first, setup, server, capsys):
    from cli.main import main

    tmp, path, _ = setup
    result, _, after_first = first
    assert server.requests == after_first
    rc = main(["bench", str(path), "--seeds", *map(str, SEEDS), "--arms", *ARMS, "--out", str(tmp / "out2")])
    out = capsys.readouterr().out
    assert rc == 0
    assert server.requests == after_first, "a rerun made new teacher calls"
    again = json.loads((tmp / "out2" / "bench.json").read_text())
    assert {r["action"] for r in again["rows"]} == {"reuse", "derived"}
    assert [(r["arm"], r["seed"], r["score"], r["teacher_tokens"], r["optimizer_steps"]) for r in again["rows"]] == \
        [(r["arm"], r["seed"], r["score"], r["teacher_tokens"], r["optimizer_steps"]) for r in result["rows"]]
    assert again["table"] in out


def test_oneshot_redone_from_its_cache_pays_nothing(first, setup, server):
    tmp, _, cfg = setup
    result, _, _ = first
    row = _rows(result)[("oneshot", 0)]
    before = _report(row)
    (Path(row["run_dir"]) / "report.json").unlink()
    n = server.requests
    redo = bench_mod.run_bench(cfg, [0], ["oneshot"], out_dir=tmp / "out3")
    assert server.requests == n
    (new,) = redo["rows"]
    assert new["action"] == "resume"
    after = _report(new)
    assert after["teacher_tokens"] == before["teacher_tokens"]
    assert after["baseline"]["pairs_asked"] == before["baseline"]["pairs_asked"]
    assert after["optimizer_steps"] == before["optimizer_steps"]


def test_a_run_made_with_another_config_is_refused(first, setup, server, capsys):
    from cli.main import EXIT_BAD_INPUT, main

    tmp, path, cfg = setup
    n = server.requests
    other = cfg.model_copy(update={"thresholds": cfg.thresholds.model_copy(update={"samples_per_seed": 3})})
    with pytest.raises(ConfigError, match="different config.*samples_per_seed"):
        bench_mod.run_bench(other, [0], ["ioa"], out_dir=tmp / "out4")
    rc = main(["bench", str(path), "--seeds", "0", "--arms", "oneshot", "--set", "student.epochs=2",
               "--out", str(tmp / "out4")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == EXIT_BAD_INPUT and err[-1].startswith("ioa: error: bench run") and "student.epochs" in err[-1]
    assert server.requests == n and not (tmp / "out4").exists()
    # operational fields (where the teacher is) do not count
    moved = cfg.model_copy(update={"teacher": cfg.teacher.model_copy(update={"base_url": "http://127.0.0.1:9/v1"})})
    bench_mod.check_compatible(Path(_rows(first[0])[("ioa", 0)]["run_dir"]),
                               bench_mod.arm_config(moved, 0, "ioa", cfg.runs_dir))


def test_benchmark_script_dry_run_prints_the_plan(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_ioa_vs_baselines.py"), "--dry-run",
                           "--runs-dir", str(tmp_path / "runs")], capture_output=True, text=True, timeout=120,
                          cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "seeds 0 1 2" in out
    for arm in bench_mod.ARMS:
        assert re.search(rf"seed 2\s+{arm}\s", out), arm
    assert not (tmp_path / "runs").exists()


def _fake_row(arm, seed, score, teach, limited=("economy",), tokens=100, steps=4, wall=1.0):
    return {"seed": seed, "arm": arm, "run_id": f"bench-{seed}-{arm}", "run_dir": "-", "action": "run",
            "status": "finished", "stop_reason": None, "teacher": 0.8, "score": score, "retention": score / 0.8,
            "teachable_retention": teach, "teacher_limited": list(limited), "teacher_tokens": tokens,
            "retention_overall": score / 0.8, "retention_deficient": teach, "retention_deficient_before": 0.0,
            "known_before": 0.9, "known_after": score, "optimizer_steps": steps, "wall_s": wall, "modules": {}}


def test_summary_mean_spread_and_teacher_limited_listing():
    rows = [_fake_row("ioa", 0, 0.4, 0.6, tokens=1000), _fake_row("ioa", 1, 0.6, 0.9, tokens=1200),
            _fake_row("ioa", 2, 0.5, 0.75, limited=(), tokens=1100),
            _fake_row("oneshot", 0, 0.2, None), _fake_row("oneshot", 1, 0.3, 0.5), _fake_row("oneshot", 2, 0.1, 0.2)]
    summary = bench_mod.summarize(rows, ["ioa", "oneshot"], [0, 1, 2])
    r = summary["ioa"]["retention"]
    assert r["mean"] == pytest.approx(0.625) and r["spread"] == pytest.approx(0.25) and r["n"] == 3
    assert summary["ioa"]["teacher_tokens"]["mean"] == pytest.approx(1100)
    assert summary["ioa"]["teacher_tokens"]["spread"] == 200
    # a seed whose every module is teacher-limited has no teachable retention: left out and counted, never a 0
    t = summary["oneshot"]["teachable_retention"]
    assert t["n"] == 2 and t["mean"] == pytest.approx(0.35)
    assert summary["ioa"]["teacher_limited"] == {"economy": [0, 1]}
    table = bench_mod.format_table({"arms": ["ioa", "oneshot"], "summary": summary, "seeds": [0, 1, 2], "rows": rows,
                                    "pack": "p", "teacher_spec": "t", "student_source": "s", "checks": []})
    ioa_line = next(line for line in table.splitlines() if line.startswith(f"{'ioa':<15}"))
    # retention on the deficient modules 0.6 0.9 0.75; overall 0.5 0.75 0.625; known after 0.4 0.6 0.5
    assert "0.750 [0.300]" in ioa_line and "0.625 [0.250]" in ioa_line and "0.50 [0.20]" in ioa_line
    assert "0.90 [0.00]" in ioa_line and "1100 [200]" in ioa_line
    # 1100 tokens per 75 points of deficient retention gained (0.0 -> 0.75)
    assert summary["ioa"]["tokens_per_point"] == pytest.approx(1100 / 75)
    assert "teacher tokens per point of deficient-module retention gained: ioa 15" in table
    assert "economy: seeds 0 1 in ioa; seeds 0 1 2 in oneshot" in table
    oneshot_line = next(line for line in table.splitlines() if line.startswith(f"{'oneshot':<15}"))
    assert "0.350 [0.300]*" in oneshot_line and "*: over fewer seeds" in table
    svg = bench_mod.render_svg({"arms": ["ioa", "oneshot"], "summary": summary, "seeds": [0, 1, 2], "rows": rows})
    ET.fromstring(svg)


def test_a_fixed_budget_is_given_to_every_arm_and_the_sweep_draws_the_curve(first, setup):
    """--budget N: IOA keeps within N (the round the budget cuts is trained on), the one-shot spends N, run ids carry
    the budget; --budgets A B: a bench per budget and the curve's points."""
    tmp, _, cfg = setup
    result, _, _ = first
    spent = _rows(result)[("ioa", 0)]["teacher_tokens"]
    low, high = int(spent * 0.9), spent * 2
    sweep = bench_mod.run_sweep(cfg, [0], ["ioa", "oneshot", "undistilled"], [high, low], out_dir=tmp / "sweep")
    assert sweep["budgets"] == [low, high]
    rows = {(b, r["arm"]): r for b in (low, high)
            for r in json.loads((tmp / "sweep" / f"b{b}" / "bench.json").read_text())["rows"]}
    ioa_low = _report(rows[(low, "ioa")])
    assert rows[(low, "ioa")]["run_id"] == f"bench-b{low}-0-ioa"
    assert ioa_low["teacher_tokens"] <= low
    trace = Path(rows[(low, "ioa")]["run_dir"]) / "trace.jsonl"
    cut = [e for e in map(json.loads, trace.read_text().splitlines())
           if e["event"] == "synthesis_yield" and e.get("budget_cut")]
    # the budget cut a round, which was trained on; then the run either stopped at its next call or ended by its own
    # rules (here: its last round was the cut one)
    assert cut and ioa_low["status"] == "finished"
    assert _report(rows[(high, "ioa")])["status"] == "finished"          # it did not need all of it
    for b in (low, high):
        one = _report(rows[(b, "oneshot")])
        assert one["baseline"]["budget"] == b and one["teacher_tokens"] <= b
        assert one["optimizer_steps"] == _report(rows[(b, "ioa")])["optimizer_steps"]
        assert rows[(b, "oneshot")]["budget"] == b and rows[(b, "ioa")]["budget"] == b
    saved = json.loads((tmp / "sweep" / "sweep.json").read_text())
    assert {(p["budget"], p["arm"]) for p in saved["points"]} == {(b, a) for b in (low, high)
                                                                   for a in ("ioa", "oneshot", "undistilled")}
    assert (tmp / "sweep" / "sweep.svg").read_text().count("<path") >= 2
    assert str(low) in saved["table"] and "retention vs teacher-token budget" in saved["table"]
    # the larger budget's IOA run starts from the smaller one's first diagnosis (a budget only stops a run, so it is
    # the same diagnosis) and is charged for it; the smaller one had no donor
    assert rows[(low, "ioa")]["action"] == "run" and rows[(high, "ioa")]["action"] == "fork"
    low_events, high_events = _events(rows[(low, "ioa")]["run_dir"]), _events(rows[(high, "ioa")]["run_dir"])
    diag = _first_diagnosis(low_events)
    strip = [{k: v for k, v in e.items() if k not in ("seq", "ts")} for e in diag]
    assert [{k: v for k, v in e.items() if k not in ("seq", "ts")} for e in high_events[:len(diag)]] == strip
    shared = high_events[len(diag)]
    assert shared["event"] == "diagnosis_shared" and shared["source"] == f"bench-b{low}-0-ioa" and shared["tokens"] > 0
    assert not any(e["event"] == "teacher_call" and e.get("node") in ("diagnose", "diagnose:test")
                   for e in high_events[len(diag) + 1:]), "the forked run asked the diagnosis again"
    ioa_high = _report(rows[(high, "ioa")])
    assert ioa_high["usage"]["diagnostician"] == ioa_low["usage"]["diagnostician"]
    assert ioa_high["overall"]["before"] == ioa_low["overall"]["before"]
    assert ioa_high["overall"]["teacher"] == ioa_low["overall"]["teacher"]
    # as the unlimited run of the first bench (it needed less than `high`): the same steps, the same spend by role
    fresh = _report(_rows(result)[("ioa", 0)])
    assert ioa_high["optimizer_steps"] == fresh["optimizer_steps"]
    assert ioa_high["usage"]["diagnostician"] == fresh["usage"]["diagnostician"]
    # a budget between the two: its plan names the smaller one's run as the donor, not the larger one's
    mid = (low + high) // 2
    step = next(s for s in bench_mod.plan(cfg, [0], ["ioa"], cfg.runs_dir, mid) if s["arm"] == "ioa")
    assert step["action"] == "fork" and f"bench-b{low}-0-ioa" in step["note"]


def test_jobs_plan_threads_and_command_line(tmp_path):
    """--jobs: one job per (budget, seed), budgets in order; each job's share of the cores; its command line."""
    from bench.jobs import Job, job_argv, plan_jobs, threads_now, threads_per_job

    assert plan_jobs([2, 0, 2], [120000, 60000]) == [Job(2, 60000), Job(0, 60000), Job(2, 120000),
                                                      Job(0, 120000)]
    assert [j.name for j in plan_jobs([1], [None])] == ["bcfg-s1"]
    assert threads_per_job(3, 2) == 1 and threads_per_job(2, 16) == 8 and threads_per_job(1, 2) == 2
    with pytest.raises(ConfigError):
        threads_per_job(0, 2)
    # while a job waits to start, the running ones keep the share of --jobs; after that, of those still running
    assert threads_now(3, 1, 2, 2) == 1 and threads_now(3, 0, 2, 2) == 1 and threads_now(3, 0, 1, 2) == 2
    assert threads_now(3, 4, 3, 16) == 5 and threads_now(3, 0, 2, 16) == 8 and threads_now(2, 0, 0, 16) == 16
    argv = job_argv(Job(1, 60000), tmp_path / "config.yaml", ["ioa", "oneshot"], "runs/b", tmp_path)
    assert argv[1:5] == ["-m", "cli.main", "bench", str(tmp_path / "config.yaml")]
    assert argv[argv.index("--seeds") + 1] == "1" and argv[argv.index("--budget") + 1] == "60000"
    assert argv[argv.index("--arms") + 1:argv.index("--arms") + 3] == ["ioa", "oneshot"]
    assert argv[argv.index("--out") + 1] == str(tmp_path / "b60000-s1")


def test_jobs_config_file_computes_what_the_callers_config_does(tmp_path):
    """The jobs read the caller's resolved config from a file: every comparable field the same (the embedded default
    included, whose file-less values differ from RunConfig's defaults)."""
    from bench.jobs import write_job_config

    for cfg in (load_config(None), load_config(None, {"thresholds.tau_gap": 0.4, "teacher.spec": "openai:gpt-x"})):
        path = write_job_config(cfg, tmp_path / f"gap{cfg.thresholds.tau_gap}")
        assert bench_mod.comparable(load_config(path)) == bench_mod.comparable(cfg)


def test_bad_jobs_is_refused_before_any_work(tmp_path, capsys):
    from cli.main import main

    assert main(["bench", "--jobs", "0", "--runs-dir", str(tmp_path / "runs")]) == 2
    assert "--jobs must be at least 1" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_jobs_run_the_seeds_side_by_side_then_one_table(setup, server):
    """`ioa bench --jobs 2`: each seed's runs made by its own process (with its log), then collected by the caller,
    which reuses them all; bench.json records the jobs and the whole bench's wall time."""
    from bench.jobs import cores, threads_per_job

    tmp, path, _ = setup
    runs, out = tmp / "jobs-runs", tmp / "jobs-out"
    proc = subprocess.run([sys.executable, "-m", "cli.main", "bench", str(path), "--seeds", "0", "1", "--arms", "ioa",
                           "undistilled", "--jobs", "2", "--runs-dir", str(runs), "--out", str(out)],
                          capture_output=True, text=True, timeout=900, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"2 at a time, {threads_per_job(2, cores())} torch thread(s) each" in proc.stderr
    for seed in (0, 1):
        log = (runs / "bench-jobs" / f"bcfg-s{seed}.log").read_text()
        assert f"bench-{seed}-ioa: new run" in log
        assert (runs / f"bench-{seed}-ioa" / "report.json").is_file()
    result = json.loads((out / "bench.json").read_text())
    assert result["jobs"] == 2 and result["bench_seconds"] > 0
    assert {(r["arm"], r["seed"], r["action"]) for r in result["rows"]} == {
        ("ioa", 0, "reuse"), ("ioa", 1, "reuse"), ("undistilled", 0, "derived"), ("undistilled", 1, "derived")}
    assert "(2 job(s) at a time)" in proc.stdout


CALLER = """
import sys, time
from pathlib import Path
import bench.jobs as jobs
from ioa_state import RunConfig
pids = Path(sys.argv[1])
def argv(job, *rest):  # a job that records its pid, then works for a minute
    return [sys.executable, "-c", f"import os, time; open({str(pids)!r} + '-' + str({job.seed}), 'w')"
                                  f".write(str(os.getpid())); time.sleep(60)"]
jobs.job_argv = argv
jobs.write_job_config = lambda cfg, root: (root.mkdir(parents=True, exist_ok=True), root / "config.yaml")[1]
jobs.run_jobs(RunConfig(), [0, 1], ["ioa"], [None], sys.argv[2], 2)
"""


SHARING_JOB = """
import os, sys, time
from training.device import apply_thread_setting
seed, seen = sys.argv[1], sys.argv[2]
deadline = time.monotonic() + 60
if seed == "0":  # the first job ends once the other has read its share
    while not os.path.exists(seen + ".first") and time.monotonic() < deadline:
        time.sleep(0.1)
else:  # the last job: waits until the first has ended and the caller has shared its core
    first = apply_thread_setting()
    open(seen + ".first", "w").write(str(first))
    while apply_thread_setting() != 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    open(seen, "w").write(f"{os.environ['IOA_TORCH_THREADS']} {first} {apply_thread_setting()}")
"""

SHARING = """
import sys
from pathlib import Path
import bench.jobs as jobs
from ioa_state import RunConfig
job_code, seen = sys.argv[3], sys.argv[1]
jobs.job_argv = lambda job, *rest: [sys.executable, "-c", job_code, str(job.seed), seen]
jobs.cores = lambda: 2
jobs.write_job_config = lambda cfg, root: (root.mkdir(parents=True, exist_ok=True), root / "config.yaml")[1]
assert jobs.run_jobs(RunConfig(), [0, 1], ["ioa"], [None], sys.argv[2], 2, progress=print) == []
"""


def test_the_last_running_job_takes_the_cores_an_ended_one_left(tmp_path):
    """--jobs 2 on 2 cores: each job starts on 1 torch thread; when the first ends and none waits, the caller rewrites
    the jobs' thread file, and the other one's next generate call or training round runs on 2."""
    import os

    seen = tmp_path / "seen"
    proc = subprocess.run([sys.executable, "-c", SHARING, str(seen), str(tmp_path / "runs"), SHARING_JOB], cwd=ROOT,
                          timeout=120, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert seen.read_text() == "1 1 2"  # started on 1 (the env and the file), then 2 once the first job had ended
    assert "1 job(s) still running, 2 torch thread(s) each" in proc.stdout
    assert (tmp_path / "runs" / "bench-jobs" / "torch-threads").read_text().strip() == "2"


@pytest.mark.parametrize("sig", ["SIGTERM", "SIGKILL"])
def test_jobs_stop_with_their_caller(tmp_path, sig):
    """A caller stopped by SIGTERM terminates its jobs; one killed by SIGKILL takes them with it too (the parent
    death signal, Linux): no job outlives its caller to share a run directory with the rerun."""
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    if sig == "SIGKILL" and not sys.platform.startswith("linux"):
        pytest.skip("the parent death signal is Linux's")
    root = Path(__file__).resolve().parents[1]
    pids = tmp_path / "pid"
    caller = subprocess.Popen([sys.executable, "-c", CALLER, str(pids), str(tmp_path / "runs")], cwd=root,
                              env={**os.environ, "PYTHONPATH": str(root)})
    files = [Path(f"{pids}-{s}") for s in (0, 1)]
    deadline = time.monotonic() + 60
    while not all(f.exists() and f.read_text() for f in files):
        assert caller.poll() is None and time.monotonic() < deadline, "the jobs did not start"
        time.sleep(0.2)
    children = [int(f.read_text()) for f in files]
    caller.send_signal(getattr(signal, sig))
    caller.wait(timeout=60)

    def alive(pid: int) -> bool:
        try:
            with open(f"/proc/{pid}/stat") as fh:
                return fh.read().split(")")[-1].split()[0] != "Z"  # a zombie has ended
        except FileNotFoundError:
            return False
        except OSError:  # pragma: no cover - no /proc
            try:
                os.kill(pid, 0)
                return True
            except ProcessLookupError:
                return False

    deadline = time.monotonic() + 30
    while any(alive(p) for p in children) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(alive(p) for p in children), f"jobs still running after the caller's {sig}"
