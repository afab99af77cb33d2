"""The Adapter's yield as figures: the pure functions on hand-made rows, and the same figures on the small real run
(tests/trace_helpers.py) in its trace, report.json, `ioa status` and the HTML page."""
from __future__ import annotations

import json

from agents import synthesis_yield as sy


def test_round_and_run_yield_from_hand_made_rows():
    kept = [{"prompt": "q1"}, {"prompt": "q2"}]
    dropped = [{"reason": "unparseable question"}, {"reason": "test_overlap: duplicates 'x'"},
               {"reason": "test_overlap: duplicates 'y'"}]
    r0 = sy.round_yield("c0-s0-r0", kept, dropped, teacher_tokens=300)
    assert (r0["written"], r0["kept"], r0["teacher_tokens_per_kept_item"]) == (5, 2, 150.0)
    assert r0["dropped_by_reason"] == {"test_overlap": 2, "unparseable question": 1}
    r1 = sy.round_yield("c0-s0-r1", [], [{"reason": "vote: 1 of 5"}])
    assert r1["teacher_tokens_per_kept_item"] is None                 # nothing kept (and tokens unknown)
    run = sy.summarise([r0, r1], teacher_tokens=1000)
    assert (run["written"], run["kept"], run["teacher_tokens_per_kept_item"]) == (6, 2, 500.0)
    assert run["dropped_by_reason"] == {"test_overlap": 2, "unparseable question": 1, "vote": 1}
    assert sy.summarise([r1], 10)["teacher_tokens_per_kept_item"] is None


def test_rounds_pair_kept_and_dropped_files_and_take_their_tokens_from_the_trace():
    events = [{"event": "synthesis_yield", "round_tag": "c0-s0-r0", "teacher_tokens": 40},
              {"event": "teacher_call", "tokens_in": 5}]
    y = sy.from_rows([("items/c0-s0-r0.jsonl", [{"prompt": "q"}])],
                     [("items/c0-s0-r0-dropped.jsonl", [{"reason": "parse: bad"}]),
                      ("items/c0-s0-r1-dropped.jsonl", [{"reason": "parse: bad"}])], 90, events)
    assert [(r["round_tag"], r["written"], r["kept"], r["teacher_tokens"]) for r in y["per_round"]] == [
        ("c0-s0-r0", 2, 1, 40), ("c0-s0-r1", 1, 0, None)]
    assert y["teacher_tokens_per_kept_item"] == 90.0
    assert sy.usage_tokens({"adapter": {"tokens_in": 7, "tokens_out": 3}, "examiner": {"tokens_in": 1,
                                                                                       "tokens_out": 0}}) == 11
    assert sy.yield_line(y) == ("synthesis: 3 candidates written, 1 kept (33%); dropped: parse 2; teacher tokens "
                                "per kept item 90.0")


def test_the_small_runs_yield_in_its_trace_report_status_and_page():
    from trace_helpers import ioa, small_run

    from agents.runtime import read_jsonl
    from graph import runner
    from viewers import html_report

    runs_dir, run_dir, _ = small_run()
    state = runner.load_state(run_dir)
    kept = sum(len(read_jsonl(run_dir, r)) for r in state.item_files)
    dropped = [d for r in state.dropped_files for d in read_jsonl(run_dir, r)]
    report = json.loads((run_dir / "report.json").read_text())
    syn = report["synthesis"]
    assert (syn["written"], syn["kept"]) == (kept + len(dropped), kept) and kept > 0
    assert sum(syn["dropped_by_reason"].values()) == len(dropped)
    assert syn["teacher_tokens_per_kept_item"] == round(report["teacher_tokens"] / kept, 1)
    assert len(syn["per_round"]) == state.total_rounds
    assert all(r["teacher_tokens"] is not None for r in syn["per_round"])     # each round's synthesis_yield event
    events = [json.loads(line) for line in (run_dir / "trace.jsonl").read_text().splitlines()]
    traced = [e for e in events if e["event"] == "synthesis_yield"]
    assert sum(e["kept"] for e in traced) == kept and {e["item_format"] for e in traced} == {"text"}
    rc, out, _ = ioa("status", state.run_id, "--runs-dir", str(runs_dir))
    assert rc == 0 and f"{kept + len(dropped)} candidates written, {kept} kept" in out
    page = html_report.render_html(run_dir)
    table = page.split("<h2>Synthesis yield</h2>")[1].split("</section>")[0]
    assert table.count("<tr>") == 1 + state.total_rounds + 1             # header, one per round, the run
    assert f"<td class='num'>{syn['teacher_tokens_per_kept_item']:.1f}</td>" in table
