"""The bench's plot: retention per arm with min-max bars, as one self-contained SVG (bench.svg)."""
from __future__ import annotations


def _esc(text: str) -> str:
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def render_svg(result: dict) -> str:
    """Retention per arm: a bar at the mean, a min-max bar, a dot per seed; teachable retention as a diamond."""
    arms, summary, rows = result["arms"], result["summary"], result["rows"]
    left, right, top, row_h = 130, 30, 66, 34
    width = 680
    plot_w = width - left - right
    height = top + row_h * len(arms) + 50
    vals = [v for arm in arms for m in ("retention", "teachable_retention") for v in (summary[arm][m]["max"],)
            if v is not None]
    xmax = max([1.0] + vals) * 1.05
    x = lambda v: left + plot_w * v / xmax  # noqa: E731
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           '<text x="10" y="20" font-size="14" font-weight="bold">Test-split retention (student / teacher) '
           'per arm</text>',
           f'<text x="10" y="38" fill="#555">bar: mean over seeds {_esc(" ".join(map(str, result["seeds"])))}; '
           f'line: min-max; dots: seeds; diamond: teachable retention</text>']
    axis_y = top + row_h * len(arms)
    tick = 0.0
    while tick <= xmax + 1e-9:
        out.append(f'<line x1="{x(tick):.1f}" y1="{top - 4}" x2="{x(tick):.1f}" y2="{axis_y}" stroke="#ddd"/>')
        out.append(f'<text x="{x(tick):.1f}" y="{axis_y + 16}" text-anchor="middle">{tick:.2f}</text>')
        tick = round(tick + 0.25, 10)
    out.append(f'<line x1="{x(1.0):.1f}" y1="{top - 8}" x2="{x(1.0):.1f}" y2="{axis_y}" stroke="#c33" '
               f'stroke-dasharray="4 3"/>')
    out.append(f'<text x="{x(1.0) + 3:.1f}" y="{top - 10}" fill="#c33">teacher</text>')
    out.append(f'<text x="{left + plot_w / 2:.1f}" y="{axis_y + 36}" text-anchor="middle">retention</text>')
    for i, arm in enumerate(arms):
        s = summary[arm]
        cy = top + row_h * i + row_h / 2
        out.append(f'<text x="{left - 8}" y="{cy + 4:.1f}" text-anchor="end">{_esc(arm)}</text>')
        r = s["retention"]
        if r["mean"] is None:
            continue
        out.append(f'<rect x="{left}" y="{cy - 9:.1f}" width="{max(0.0, x(r["mean"]) - left):.1f}" height="18" '
                   f'fill="#7fa7d9"><title>{_esc(arm)}: mean {r["mean"]:.3f}, min {r["min"]:.3f}, '
                   f'max {r["max"]:.3f}</title></rect>')
        out.append(f'<line x1="{x(r["min"]):.1f}" y1="{cy:.1f}" x2="{x(r["max"]):.1f}" y2="{cy:.1f}" '
                   f'stroke="#123" stroke-width="2"/>')
        for end in (r["min"], r["max"]):
            out.append(f'<line x1="{x(end):.1f}" y1="{cy - 6:.1f}" x2="{x(end):.1f}" y2="{cy + 6:.1f}" '
                       f'stroke="#123" stroke-width="2"/>')
        for row in rows:
            if row["arm"] == arm and row["retention"] is not None:
                out.append(f'<circle cx="{x(row["retention"]):.1f}" cy="{cy:.1f}" r="3" fill="#123">'
                           f'<title>seed {row["seed"]}: {row["retention"]:.3f}</title></circle>')
        t = s["teachable_retention"]
        if t["mean"] is not None:
            px = x(t["mean"])
            out.append(f'<path d="M{px:.1f},{cy - 13:.1f} l5,5 l-5,5 l-5,-5 z" fill="#e08a2c">'
                       f'<title>{_esc(arm)} teachable retention: mean {t["mean"]:.3f}, min {t["min"]:.3f}, '
                       f'max {t["max"]:.3f}</title></path>')
    out.append("</svg>")
    return "\n".join(out) + "\n"




COLOURS = ("#1f5fa8", "#d0641c", "#2e8b3a", "#8a3ab9", "#777", "#b8860b", "#c33")


def render_curve(sweep: dict) -> str:
    """Retention on the first diagnosis's deficient modules against the teacher-token budget: one line per arm
    through the means, a min-max bar at each budget."""
    arms, budgets, points = sweep["arms"], sweep["budgets"], sweep["points"]
    at = {(p["budget"], p["arm"]): p["retention_deficient"] for p in points}
    shown = [a for a in arms if any((at.get((b, a)) or {}).get("mean") is not None for b in budgets)]
    left, top, width, height = 70, 50, 680, 380
    pw, ph = width - left - 150, height - top - 60
    ymax = max([1.0] + [at[k]["max"] for k in at if at[k] and at[k].get("max") is not None]) * 1.05
    bmin, bmax = min(budgets), max(budgets)
    x = lambda b: left + (pw * (b - bmin) / (bmax - bmin) if bmax > bmin else pw / 2)  # noqa: E731
    y = lambda v: top + ph - ph * v / ymax  # noqa: E731
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           '<text x="10" y="20" font-size="14" font-weight="bold">Retention on the deficient modules vs teacher '
           'tokens</text>',
           f'<text x="10" y="38" fill="#555">mean over seeds {_esc(" ".join(map(str, sweep["seeds"])))}; bars: '
           f'min-max</text>']
    for i in range(5):
        v = ymax * i / 4
        out.append(f'<line x1="{left}" y1="{y(v):.1f}" x2="{left + pw}" y2="{y(v):.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{left - 6}" y="{y(v) + 4:.1f}" text-anchor="end">{v:.2f}</text>')
    for b in budgets:
        out.append(f'<text x="{x(b):.1f}" y="{top + ph + 16}" text-anchor="middle">{b}</text>')
    out.append(f'<text x="{left + pw / 2:.1f}" y="{top + ph + 36}" text-anchor="middle">teacher-token budget'
               f'</text>')
    for i, arm in enumerate(shown):
        c = COLOURS[i % len(COLOURS)]
        pts = [(b, at[(b, arm)]) for b in budgets if (at.get((b, arm)) or {}).get("mean") is not None]
        path = " ".join(f"{'M' if j == 0 else 'L'}{x(b):.1f},{y(s['mean']):.1f}" for j, (b, s) in enumerate(pts))
        out.append(f'<path d="{path}" fill="none" stroke="{c}" stroke-width="2"/>')
        for b, s in pts:
            out.append(f'<line x1="{x(b):.1f}" y1="{y(s["min"]):.1f}" x2="{x(b):.1f}" y2="{y(s["max"]):.1f}" '
                       f'stroke="{c}"/>')
            out.append(f'<circle cx="{x(b):.1f}" cy="{y(s["mean"]):.1f}" r="3.5" fill="{c}"><title>{_esc(arm)} '
                       f'at {b}: mean {s["mean"]:.3f}, min {s["min"]:.3f}, max {s["max"]:.3f}</title></circle>')
        out.append(f'<text x="{left + pw + 14}" y="{top + 16 + 18 * i}" fill="{c}">{_esc(arm)}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"
