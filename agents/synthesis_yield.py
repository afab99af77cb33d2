"""The Adapter's yield: of the candidate items the teacher wrote, how many were kept, why the others were dropped,
and how many teacher tokens each kept item cost.

Per round (one `items/<tag>.jsonl` of kept items and its `items/<tag>-dropped.jsonl`) and per run:
    written                       candidates written (kept + dropped)
    kept                          items kept
    dropped_by_reason             reason kind (a DroppedItem reason's text before ':') -> count
    teacher_tokens_per_kept_item  per run: every teacher token of the run, all roles (tokens_in + tokens_out of the
                                  usage), over the items kept; per round: the tokens that round's synthesis paid over
                                  its kept items (from its `synthesis_yield` trace event); None when none was kept
Pure functions on rows and numbers, and `run_yield`, which reads a run's item files (agents/runtime.read_jsonl).
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any, Iterable

from agents.runtime import read_jsonl


def reason_kind(reason: str | None) -> str:
    """A drop reason's kind: its text before the first ':' (as DroppedItem.reason_kind)."""
    return str(reason or "").split(":")[0]


def per_kept(tokens: int | None, kept: int) -> float | None:
    return None if tokens is None or not kept else round(tokens / kept, 1)


def round_yield(tag: str, kept: list[dict], dropped: list[dict], teacher_tokens: int | None = None) -> dict:
    """One round's yield from its kept and dropped rows (and the teacher tokens its synthesis paid, when known)."""
    reasons = Counter(reason_kind(d.get("reason")) for d in dropped)
    return {"round_tag": tag, "written": len(kept) + len(dropped), "kept": len(kept),
            "dropped_by_reason": dict(reasons.most_common()), "teacher_tokens": teacher_tokens,
            "teacher_tokens_per_kept_item": per_kept(teacher_tokens, len(kept))}


def summarise(rounds: list[dict], teacher_tokens: int) -> dict:
    """The run's yield from its rounds' yields and every teacher token the run spent."""
    reasons: Counter = Counter()
    for r in rounds:
        reasons.update(r["dropped_by_reason"])
    kept = sum(r["kept"] for r in rounds)
    return {"written": sum(r["written"] for r in rounds), "kept": kept,
            "dropped_by_reason": dict(reasons.most_common()), "teacher_tokens": teacher_tokens,
            "teacher_tokens_per_kept_item": per_kept(teacher_tokens, kept), "per_round": rounds}


def usage_tokens(usage: dict[str, Any]) -> int:
    """tokens_in + tokens_out over every role of a usage map (Usage models or their dumps)."""
    total = 0
    for u in usage.values():
        d = u if isinstance(u, dict) else u.model_dump()
        total += int(d.get("tokens_in") or 0) + int(d.get("tokens_out") or 0)
    return total


def round_tag(path: str) -> str:
    """items/c0-s1-r2.jsonl and items/c0-s1-r2-dropped.jsonl -> c0-s1-r2"""
    return Path(path).stem.removesuffix("-dropped")


def traced_tokens(events: Iterable[dict]) -> dict[str, int]:
    """round tag -> teacher tokens its synthesis paid, from the `synthesis_yield` events (the last one per tag)."""
    return {e["round_tag"]: e["teacher_tokens"] for e in events
            if e.get("event") == "synthesis_yield" and e.get("round_tag") and e.get("teacher_tokens") is not None}


def from_rows(kept_files: list[tuple[str, list[dict]]], dropped_files: list[tuple[str, list[dict]]],
              teacher_tokens: int, events: Iterable[dict] = ()) -> dict:
    """The run's yield from (path, rows) of its kept and dropped item files, in round order."""
    tokens = traced_tokens(events)
    tags: list[str] = []
    kept: dict[str, list[dict]] = {}
    dropped: dict[str, list[dict]] = {}
    for store, files in ((kept, kept_files), (dropped, dropped_files)):
        for path, rows in files:
            tag = round_tag(path)
            if tag not in tags:
                tags.append(tag)
            store.setdefault(tag, []).extend(rows)
    rounds = [round_yield(t, kept.get(t, []), dropped.get(t, []), tokens.get(t)) for t in tags]
    return summarise(rounds, teacher_tokens)


def run_yield(run_dir: Path, item_files: list, dropped_files: list, usage: dict[str, Any],
              events: Iterable[dict] = ()) -> dict:
    """A run's yield from its state's item and dropped files (ArtifactRefs), its usage and (optionally) its trace."""
    return from_rows([(r.path, read_jsonl(run_dir, r)) for r in item_files],
                     [(r.path, read_jsonl(run_dir, r)) for r in dropped_files], usage_tokens(usage), events)


def yield_line(y: dict) -> str:
    """One line: written, kept (share), dropped by reason, teacher tokens per kept item."""
    w, k = y["written"], y["kept"]
    share = f" ({k / w:.0%})" if w else ""
    reasons = ", ".join(f"{r} {n}" for r, n in y["dropped_by_reason"].items()) or "none"
    tpk = y["teacher_tokens_per_kept_item"]
    return (f"synthesis: {w} candidates written, {k} kept{share}; dropped: {reasons}; teacher tokens per kept item "
            f"{'-' if tpk is None else f'{tpk:,.1f}'}")
