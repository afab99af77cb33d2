"""`ioa report` / viewers.html_report.write_html: one self-contained HTML page for the small run, checked as text and
rendered in headless Chromium (screenshot, DOM after its script ran, console, network log)."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from trace_helpers import ioa, small_run

from agents.runtime import read_jsonl
from graph import runner
from viewers import html_report

CHROMIUM = next(
    (shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome", "chrome") if shutil.which(n)), None
)
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium is not installed "
                                    "(apt-get install -y chromium chromium-driver)")


@pytest.fixture(scope="session")
def run():
    runs_dir, run_dir, _ = small_run()
    return runs_dir, run_dir, runner.load_state(run_dir)


@pytest.fixture(scope="session")
def page(run):
    runs_dir, run_dir, state = run
    path = html_report.write_html(run_dir)
    return path, path.read_text(encoding="utf-8")


def _charts(text: str) -> dict[str, str]:
    return {
        m.group(1): m.group(0) for m in re.finditer(r'<svg class="chart" data-chart="([^"]+)".*?</svg>', text, re.S)
    }


def test_written_in_the_run_directory(run, page):
    runs_dir, run_dir, state = run
    path, _ = page
    assert path == run_dir / "report.html"
    rc, out, _ = ioa("report", state.run_id, "--runs-dir", str(runs_dir), "--out", str(run_dir / "other.html"))
    assert rc == 0 and out.strip() == str(run_dir / "other.html") and (run_dir / "other.html").stat().st_size > 1000


def test_self_contained(page):
    _, text = page
    assert "http://" not in text and "https://" not in text
    assert not re.search(r"""(?:src|href|xlink:href)\s*=\s*["']?\s*(?!#)[^"'\s>]""", text), "an external reference"
    assert "@import" not in text and "url(" not in text.replace("url(#arrow-", "")
    assert "<link" not in text and "<img" not in text and "<iframe" not in text
    assert "default-src 'none'" in text  # and the page itself forbids any request


def test_charts_hold_the_runs_numbers(run, page):
    runs_dir, run_dir, state = run
    _, text = page
    charts = _charts(text)
    assert {"mastery", "graph", "tokens-stage", "tokens-role", "items", "decisions"} <= set(charts)
    assert sum('class="mark' in svg for svg in charts.values()) >= 4
    mastery = charts["mastery"]
    assert "tau_mastery 0.90" in mastery and "tau_low 0.70" in mastery
    assert mastery.count("<circle class=\"mark\"") == sum(len(o.scores) for o in state.observations)
    graph = charts["graph"]
    for e in state.edges:
        assert f"{e.src} -&gt; {e.dst}: strength {e.strength:.2f}" in graph
    for s in state.stages:
        assert f"stage {s.index} ({s.status})" in graph
    role = charts["tokens-role"]
    for u in state.usage.values():
        assert f"{u.tokens_in + u.tokens_out:,} tok · {u.calls} calls" in role
    stage = charts["tokens-stage"]
    paid = sum(u.tokens_in + u.tokens_out for u in state.usage.values())
    totals = [
        int(t.replace(",", ""))
        for t in re.findall(r'<text x="[^"]+" y="[^"]+" text-anchor="middle" font-size="10" >([\d,]+)</text>', stage)
    ]
    assert sum(totals) == paid
    timeline = charts["decisions"]
    assert timeline.count('class="mark decision"') == len(state.decisions)


def test_decisions_and_items_with_drop_reasons(run, page):
    runs_dir, run_dir, state = run
    _, text = page
    import html as h
    for d in state.decisions:
        assert h.escape(d.reason, quote=True) in text
    dropped = [r for ref in state.dropped_files for r in read_jsonl(run_dir, ref)]
    for module in {r["module"] for r in dropped}:
        reasons = {r["reason"].split(":")[0] for r in dropped if r["module"] == module}
        section = text.split(f"<summary><b>{module}</b>")[1].split("</details>")[0]
        shown = set(re.findall(r"data-reason='([^']+)'", section))
        assert shown == {h.escape(r, quote=True) for r in reasons}, "the sample shows every kind of drop"
        for r in [r for r in dropped if r["module"] == module][:1]:
            assert h.escape(r["reason"], quote=True) in section
    kept = [r for ref in state.item_files for r in read_jsonl(run_dir, ref)]
    assert h.escape(kept[0]["prompt"], quote=True) in text


def _chromium(url: str, tmp: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-extensions",
         f"--user-data-dir={tmp / 'profile'}", "--enable-logging=stderr", "--v=0",
         f"--log-net-log={tmp / 'net.json'}", "--virtual-time-budget=3000", *extra, url],
        capture_output=True, text=True, timeout=120)


def _page_requests(net_log: Path) -> list[str]:
    """URLs the page itself asked for (the browser's own background requests have no origin)."""
    text = net_log.read_text()
    try:
        log = json.loads(text)
    except json.JSONDecodeError:  # a log cut at exit
        log = json.loads(text.rstrip().rstrip(",") + "]}")
    types = {v: k for k, v in log["constants"]["logEventTypes"].items()}
    return [ev["params"]["url"] for ev in log["events"]
            if types.get(ev["type"]) == "URL_REQUEST_START_JOB" and "url" in ev.get("params", {})
            and ev["params"].get("initiator") != "not an origin"]


def _console(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line]


@needs_chromium
def test_checks_catch_a_bad_page(tmp_path):
    """The console and network checks below are not vacuous: a page with a request and a script error fails them."""
    bad = tmp_path / "bad.html"
    bad.write_text('<!DOCTYPE html><html><body><img src="http://127.0.0.1:9/x.png">'
                   '<script>console.error("boom"); missing();</script></body></html>')
    proc = _chromium(bad.as_uri(), tmp_path, "--dump-dom")
    assert _console(proc.stderr) and any("127.0.0.1:9" in u for u in _page_requests(tmp_path / "net.json"))


@needs_chromium
def test_renders_in_headless_chromium(run, page, tmp_path):
    path, _ = page
    proc = _chromium(path.as_uri(), tmp_path, "--dump-dom")
    assert proc.returncode == 0, proc.stderr[-2000:]
    dom = proc.stdout
    drawn = re.search(r'data-charts-drawn="(\d+)"', dom)
    assert drawn and int(drawn.group(1)) >= 4, "the page's script counts the charts it finds with data marks"
    assert len(re.findall(r'<svg class="chart"[^>]*data-drawn="1"', dom)) >= 4
    assert _console(proc.stderr) == [], _console(proc.stderr)
    assert _page_requests(tmp_path / "net.json") == []
    shot = tmp_path / "report.png"
    proc = _chromium(path.as_uri(), tmp_path, f"--screenshot={shot}", "--window-size=1280,2400",
                     "--hide-scrollbars")
    assert proc.returncode == 0 and shot.stat().st_size > 20_000
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    keep = Path(path).parent / "report.png"  # kept next to the page for a person to look at
    shutil.copy(shot, keep)


def test_a_run_without_checkpoints_still_gets_a_page(run, tmp_path):
    """A run killed in its first node: config and part of the trace only. The page says what is missing."""
    runs_dir, run_dir, state = run
    early = tmp_path / "early"
    early.mkdir()
    shutil.copy(run_dir / "config.yaml", early / "config.yaml")
    lines = (run_dir / "trace.jsonl").read_text().splitlines(keepends=True)
    (early / "trace.jsonl").write_text("".join(lines[:30]) + lines[30][:20])  # cut mid-line, as by a kill
    text = html_report.write_html(early).read_text()
    assert "no exam yet" in text and "no modules yet" in text and "No decision yet." in text
    assert not (early / "checkpoints.sqlite").exists()
    rc, out, _ = ioa("inspect", str(early))
    assert rc == 0 and "no checkpoint yet" in out and not (early / "checkpoints.sqlite").exists()


def test_report_node_can_hand_its_state_in(run, tmp_path):
    runs_dir, run_dir, state = run
    finished = state.model_copy(update={"status": "finished"})
    out = html_report.write_html(run_dir, tmp_path / "r.html", state=finished)
    assert out == tmp_path / "r.html" and "<b>finished</b>status" in out.read_text()
