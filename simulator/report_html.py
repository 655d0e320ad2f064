"""The HTML report: one self-contained file (inline CSS and SVG charts, no scripts, nothing
fetched), rendered with autoescaping: transcripts are model output and may contain markup."""

from __future__ import annotations

from typing import Any

from markupsafe import Markup, escape

WIDTH = 640
BAR_H = 22


def _bars(title: str, data: dict[str, dict[str, Any]], chart_id: str) -> Markup:
    """Horizontal bars of means in [0, 1] with their confidence intervals as whiskers."""
    items = [(k, v) for k, v in data.items() if v.get("mean") is not None]
    if not items:
        return Markup("")
    label_w, plot_w = 200, WIDTH - 260
    h = 30 + BAR_H * len(items) + 20
    parts = [
        f'<svg class="chart" id="{escape(chart_id)}" role="img" aria-label="{escape(title)}" '
        f'width="{WIDTH}" height="{h}" viewBox="0 0 {WIDTH} {h}" xmlns="http://www.w3.org/2000/svg">',
        f'<text x="0" y="16" class="title">{escape(title)}</text>',
    ]
    for tick in (0, 0.25, 0.5, 0.75, 1.0):
        x = label_w + tick * plot_w
        parts.append(
            f'<line x1="{x:.1f}" y1="24" x2="{x:.1f}" y2="{h - 18}" class="grid"/>'
            f'<text x="{x:.1f}" y="{h - 4}" class="tick">{tick:g}</text>'
        )
    for i, (k, v) in enumerate(items):
        y = 28 + i * BAR_H
        w = max(0.0, min(1.0, v["mean"])) * plot_w
        parts.append(
            f'<text x="{label_w - 6}" y="{y + 15}" class="label">{escape(str(k))} (n={v["n"]})</text>'
            f'<rect class="bar" x="{label_w}" y="{y + 3}" width="{w:.1f}" height="{BAR_H - 8}">'
            f"<title>{escape(str(k))}: {v['mean']:.3f}</title></rect>"
        )
        if v.get("low") is not None and v.get("high") is not None:
            x1, x2 = label_w + v["low"] * plot_w, label_w + v["high"] * plot_w
            ym = y + BAR_H / 2
            parts.append(
                f'<line class="ci" x1="{x1:.1f}" y1="{ym:.1f}" x2="{x2:.1f}" y2="{ym:.1f}"/>'
            )
        parts.append(
            f'<text x="{label_w + plot_w + 6}" y="{y + 15}" class="value">{v["mean"]:.2f}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def _histogram(scores: list[float], chart_id: str, bins: int = 10) -> Markup:
    """Distribution of episode scores (clipped to [0, 1]) in ``bins`` bins."""
    if not scores:
        return Markup("")
    counts = [0] * bins
    for s in scores:
        counts[min(bins - 1, int(max(0.0, min(1.0, s)) * bins))] += 1
    h, plot_h, left = 200, 140, 40
    bw = (WIDTH - left - 20) / bins
    top = max(counts)
    parts = [
        f'<svg class="chart" id="{escape(chart_id)}" role="img" '
        f'aria-label="Distribution of episode scores" width="{WIDTH}" height="{h}" '
        f'viewBox="0 0 {WIDTH} {h}" xmlns="http://www.w3.org/2000/svg">',
        '<text x="0" y="16" class="title">Distribution of episode scores (clipped to [0, 1])</text>',
    ]
    for i, c in enumerate(counts):
        bh = plot_h * c / top if top else 0
        x = left + i * bw
        parts.append(
            f'<rect class="bar" x="{x + 1:.1f}" y="{30 + plot_h - bh:.1f}" width="{bw - 2:.1f}" '
            f'height="{bh:.1f}"><title>{i / bins:.1f}–{(i + 1) / bins:.1f}: {c}</title></rect>'
            f'<text x="{x + bw / 2:.1f}" y="{30 + plot_h - bh - 3:.1f}" class="tick">{c or ""}</text>'
            f'<text x="{x:.1f}" y="{h - 12}" class="tick">{i / bins:.1f}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def render_html(report: dict[str, Any], comparison: dict[str, Any] | None = None) -> str:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("simulator", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    charts = {
        "axis": _bars("Score by axis", report["by_axis"], "chart-axis"),
        "family": _bars("Score by task family", report["by_family"], "chart-family"),
        "clinician": _bars("Score by clinician model", report["by_clinician"], "chart-clinician")
        if len(report["by_clinician"]) > 1
        else Markup(""),
        "persona": _bars("Score by persona", report["by_persona"], "chart-persona"),
        "distribution": _histogram(report["scores"], "chart-distribution"),
    }
    return env.get_template("report.html.j2").render(r=report, charts=charts, comparison=comparison)
