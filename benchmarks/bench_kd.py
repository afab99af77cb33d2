"""Logit distillation against plain SFT at the same items and optimizer steps (issue 13): `student.loss` sft, kd and
sft+kd, over the seeds of finished IOA bench runs.

For each seed, the IOA run `<runs-dir>/bench-b<budget>-<seed>-ioa` gives the items (every round's kept items) and the
number of optimizer steps; the initial student is trained once on those items for those steps with each loss (the
same seed, the same batches: only the loss differs; kd and sft+kd read the in-process teacher's next-token
distribution with its context, the student without it), and scored on the test split. Printed per loss: retention
on the modules deficient at the first diagnosis and overall, mean and spread (max - min) over the seeds, and whether
the best loss beats sft by more than the larger spread. Written to `--json`.

    .venv/bin/python benchmarks/bench_kd.py [--runs-dir runs/bench-default] [--budget 120000] [--seeds 0 1 2]
        [--losses sft kd sft+kd] [--json benchmarks/results/kd.json]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agents.runtime import read_jsonl  # noqa: E402
from baselines.oneshot import _ioa_run, _score_test, _services, _train_once, build_oneshot_report  # noqa: E402
from bench.arms import run_id_for  # noqa: E402
from ioa_state import load_config  # noqa: E402


def one(ioa_dir: Path, loss: str, out_dir: Path) -> dict:
    """Train the initial student on the IOA run's items for its steps with `loss`; the test-split retention."""
    ioa_report, state = _ioa_run(ioa_dir)
    cfg = load_config(ioa_dir / "config.yaml")
    cfg = cfg.model_copy(update={"run_id": f"{ioa_dir.name}-{loss}", "runs_dir": str(out_dir),
                                 "student": cfg.student.model_copy(update={"loss": loss}),
                                 "teacher": cfg.teacher.model_copy(update={"token_budget": None})})
    run_dir = out_dir / cfg.run_id
    svc = _services(cfg, run_dir, lambda m: None)
    items = [r for ref in state.item_files for r in read_jsonl(ioa_dir, ref)]
    t0 = time.perf_counter()
    try:
        stats = _train_once(svc, items, int(ioa_report["optimizer_steps"]), 0, [])
        after = _score_test(svc, state)
    finally:
        svc.teacher.close()
    rep = build_oneshot_report(cfg.run_id, state, ioa_report, after, cfg.thresholds.eps, {
        "spent": 0, "usage": {}, "optimizer_steps": stats.steps if stats else 0, "budget": 0, "target_steps": 0,
        "pairs": 0, "rounds": 0, "kept": len(items), "dropped": 0, "drop_reasons": {}})
    return {"seed": cfg.seed, "loss": loss, "items": len(items), "steps": rep["optimizer_steps"],
            "retention_deficient": (rep["deficient_overall"] or {}).get("retention_after"),
            "retention_overall": rep["overall"]["retention_after"], "seconds": round(time.perf_counter() - t0, 1)}


def stats(values: list[float]) -> dict:
    return {"mean": sum(values) / len(values), "spread": max(values) - min(values)} if values else {}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs-dir", default="runs/bench-default")
    p.add_argument("--budget", type=int, default=120_000, help="the budget in the IOA runs' ids (bench-b<N>-...)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--losses", nargs="+", default=["sft", "kd", "sft+kd"], choices=["sft", "kd", "sft+kd"])
    p.add_argument("--out", default="runs/bench-kd", help="where the trained students' folders go")
    p.add_argument("--json", help="write the rows and the summary here")
    args = p.parse_args(argv)
    rows = []
    for seed in args.seeds:
        ioa_dir = Path(args.runs_dir) / run_id_for(seed, "ioa", args.budget)
        for loss in args.losses:
            rows.append(one(ioa_dir, loss, Path(args.out)))
            r = rows[-1]
            print(f"seed {seed} {loss:<7} {r['items']} items, {r['steps']} steps: retention deficient "
                  f"{r['retention_deficient']:.3f}, overall {r['retention_overall']:.3f} ({r['seconds']} s)",
                  flush=True)
    summary = {loss: {m: stats([r[m] for r in rows if r["loss"] == loss and r[m] is not None])
                      for m in ("retention_deficient", "retention_overall")} for loss in args.losses}
    print(f"{'loss':<8}{'ret. deficient':<22}{'ret. overall':<22}  (mean [spread] over seeds "
          f"{' '.join(map(str, args.seeds))})")
    for loss, s in summary.items():
        d, o = s["retention_deficient"], s["retention_overall"]
        print(f"{loss:<8}{d['mean']:.3f} [{d['spread']:.3f}]{'':<8}{o['mean']:.3f} [{o['spread']:.3f}]")
    best = max(summary, key=lambda k: summary[k]["retention_deficient"]["mean"])
    margin = summary[best]["retention_deficient"]["mean"] - summary["sft"]["retention_deficient"]["mean"] \
        if "sft" in summary else None
    spread = max(s["retention_deficient"]["spread"] for s in summary.values())
    verdict = (f"best: {best}, ahead of sft by {margin:.3f} against the larger spread {spread:.3f}: "
               f"{'wins' if best != 'sft' and margin > spread else 'no loss wins by more than the spread'}")
    print(verdict)
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "summary": summary, "verdict": verdict}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
