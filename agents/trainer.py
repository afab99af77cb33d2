"""The trainer node: supervised fine-tuning on the stage's items plus a replay sample (algorithm §4, train).

The stage's items are every item written for the current stage so far, its earlier rounds' with this round's
(`stage_items`): a remedial round adds practice to what the stage has, it does not replace it, so the student keeps
working on the whole stage until it masters it.

Replay: `replay_fraction` of the round's examples come from earlier stages' items, those of modules flagged for
forgetting first. The loss is on answer tokens only (training/trainer.py); training continues from the latest
checkpoint and saves this round's student under runs/<id>/student/, keeping the newest `keep_checkpoints`.
With `student.loss: kd | sft+kd` the student also learns the local teacher's next-token distribution (the `trainer`
role's spec, an `hf:` model shared with the teacher's; it sees its context, the student does not).
"""
from __future__ import annotations

import math
import random

from agents.progress import train_progress
from agents.runtime import Services, read_jsonl
from ioa_state import LearnerState

KEEP_CHECKPOINTS = 2


def replay_sample(current: list[dict], earlier: list[dict], forgetting: list[str], fraction: float,
                  seed: int) -> list[dict]:
    """ceil(f/(1-f) * n) earlier examples, so that they are about `fraction` of the round; forgetting modules first."""
    if not earlier or fraction <= 0:
        return []
    want = min(len(earlier), math.ceil(fraction / max(1e-9, 1 - fraction) * len(current)))
    rng = random.Random(seed)
    urgent = [r for r in earlier if r["module"] in forgetting]
    rest = [r for r in earlier if r["module"] not in forgetting]
    rng.shuffle(urgent)
    rng.shuffle(rest)
    return (urgent + rest)[:want]


def stage_items(files: list[list[dict]], cycle: int, stage: int) -> tuple[list[dict], list[dict]]:
    """(the current stage's items: every round of stage `stage` in cycle `cycle` so far; every earlier stage's
    items, the replay pool), from the run's item files in the order they were written."""
    rows = [r for f in files for r in f]
    here = [r for r in rows if (r.get("cycle", 0), r["stage"]) == (cycle, stage)]
    return here, [r for r in rows if (r.get("cycle", 0), r["stage"]) != (cycle, stage)]


def local_teacher(svc: Services):
    """The in-process teacher model for logit distillation, with the teacher's context."""
    from training.distill import LocalTeacher

    spec = svc.teacher.spec_for("trainer")
    chat = svc.teacher.chat_model(spec)
    if not hasattr(chat, "load"):
        raise ValueError(f"student.loss {svc.cfg.student.loss!r} needs an hf: teacher in this process, got {spec!r}")
    model, tokenizer = chat.load()
    return LocalTeacher(model, tokenizer, svc.teacher_context)


def train(state: LearnerState, svc: Services) -> dict:
    """The trainer node."""
    cfg = svc.cfg
    stage_idx = state.stage().index
    current, earlier = stage_items([read_jsonl(svc.run_dir, ref) for ref in state.item_files], state.cycle,
                                   stage_idx)
    round_no = state.total_rounds + 1
    replay = replay_sample(current, earlier, state.forgetting, cfg.thresholds.replay_fraction,
                           cfg.seed * 7919 + round_no)
    examples = [{"prompt": r["prompt"], "answer": r["answer"]} for r in current + replay]
    svc.progress(f"train round {round_no}: {len(current)} items of the stage + {len(replay)} replay")
    svc.student.load(state.student)
    def lines(s, n, loss):
        if s == n or s % 10 == 0:
            svc.progress(f"  step {s}/{n} loss {loss:.3f}")

    stats = svc.student.train(examples, seed=cfg.seed * 1000 + round_no,
                              progress=train_progress(f"train round {round_no}", also=lines),
                              teacher=local_teacher(svc) if cfg.student.loss != "sft" else None)
    ref = svc.student.save(f"student/round-{round_no:03d}", round_no)
    history = (state.student_history + [ref])[-KEEP_CHECKPOINTS:]
    svc.student.prune(history)
    trained = state.trained + [k for k in {r["module"] for r in current} if k not in state.trained]
    svc.trace.emit("train", node="train", cycle=state.cycle, stage=stage_idx, round=round_no,
                   stage_round=state.stage().rounds, items=len(current),
                   round_items=sum(1 for r in current if r.get("round") == state.stage().rounds),
                   replay=len(replay), steps=stats.steps, loss_first=stats.losses[0] if stats.losses else None,
                   loss_last=stats.losses[-1] if stats.losses else None, seconds=round(stats.seconds, 3),
                   checkpoint=ref.path, sha256=ref.sha256)
    return {"student": ref, "student_history": history, "total_rounds": round_no, "trained": sorted(trained),
            "optimizer_steps": state.optimizer_steps + stats.steps, "phase": "trained"}
