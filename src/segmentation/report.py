"""One self-contained HTML file per analysis: segments, charts (inlined PNG), advice, data
quality, and how accuracy and k were chosen. It can be e-mailed: no script, no external file.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Sequence
from html import escape

from segmentation.charts import ChartData, chart_data_of, render
from segmentation.pipeline.lineage import what_changed
from segmentation.recommend import Recommendation
from segmentation.results import Analysis

__all__ = ["render_report"]

CHART_TITLES = {
    "projection": "Customers by segment",
    "profiles": "How each segment differs from the average",
    "sizes": "Segment sizes",
    "k-selection": "How the number of segments was chosen",
    "silhouette": "How clearly customers belong to their segment",
    "migration": "Where customers went since the previous analysis",
}
STYLE = """
body { font-family: system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif;
       max-width: 1100px; margin: 2rem auto; padding: 0 1rem; color: #222; line-height: 1.45; }
h1 { margin-bottom: 0.2rem; } h2 { margin-top: 2.2rem; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; width: 100%; font-size: 0.92rem; }
th, td { border: 1px solid #ddd; padding: 0.35rem 0.5rem; text-align: left; vertical-align: top; }
th { background: #f4f4f4; } td.number { text-align: right; white-space: nowrap; }
.swatch { display: inline-block; width: 0.9rem; height: 0.9rem; border-radius: 2px;
          margin-right: 0.4rem; vertical-align: middle; border: 1px solid #555; }
figure { margin: 1.2rem 0; } figure img { max-width: 100%; border: 1px solid #eee; }
.muted { color: #666; font-size: 0.9rem; }
"""


def _number(value: float | None, pattern: str = "{:.2f}") -> str:
    return "n/a" if value is None or not math.isfinite(value) else pattern.format(value)


def _segments_table(analysis: Analysis, data: ChartData) -> str:
    rows = []
    for segment in analysis.segments:
        colour = data.colour(segment.segment_id)
        traits = "".join(f"<li>{escape(t)}</li>" for t in segment.characteristics)
        rows.append(
            "<tr class='segment'>"
            f"<td><span class='swatch' style='background:{colour}'></span>"
            f"<strong>{escape(segment.name)}</strong></td>"
            f"<td class='number'>{segment.size:,}</td>"
            f"<td class='number'>{segment.share:.1%}</td>"
            f"<td class='number'>{_number(segment.confidence)}</td>"
            f"<td class='number'>{_number(segment.stability)}</td>"
            f"<td><ul>{traits}</ul></td></tr>"
        )
    return (
        "<table><tr><th>Segment</th><th>Customers</th><th>Share</th><th>Confidence</th>"
        "<th>Stability</th><th>Characteristics</th></tr>" + "".join(rows) + "</table>"
    )


def _outcome_value(value: float | None, kind: str) -> str:
    if value is None or not math.isfinite(value):
        return "n/a"
    return f"{value:.1%}" if kind == "rate" else f"{value:,.4g}"


def _outcomes(analysis: Analysis) -> str:
    """Each outcome's rate (or mean) per segment beside the overall one: what happened to
    the customers of each segment, never used to form them."""
    if not analysis.outcomes:
        return ""
    heads = "".join(
        f"<th>{escape(o.field)}" + (
            f" <span class='muted'>(share {escape(o.positive)})</span>"
            if o.kind == "rate" and o.positive else " <span class='muted'>(mean)</span>"
        ) + "</th>"
        for o in analysis.outcomes
    )  # fmt: skip
    rows = "".join(
        f"<tr><td>{escape(s.name)}</td>"
        + "".join(
            f"<td class='number'>{_outcome_value(s.outcomes.get(o.field), o.kind)}</td>"
            for o in analysis.outcomes
        )
        + "</tr>"
        for s in analysis.segments
    )
    overall = "".join(
        f"<td class='number'>{_outcome_value(o.overall, o.kind)}</td>" for o in analysis.outcomes
    )
    return (
        "<h2>Outcomes</h2><p class='muted'>What happened to each segment's customers. These "
        "fields are reported, never used to form the segments.</p>"
        f"<table><tr><th>Segment</th>{heads}</tr>{rows}"
        f"<tr><td><strong>All customers</strong></td>{overall}</tr></table>"
    )


def _charts(data: ChartData) -> str:
    figures = []
    for name in data.available():
        encoded = base64.b64encode(render(name, data, "png")).decode()
        figures.append(
            f"<figure><img alt='{escape(CHART_TITLES[name])}' "
            f"src='data:image/png;base64,{encoded}'>"
            f"<figcaption class='muted'>{escape(CHART_TITLES[name])}</figcaption></figure>"
        )
    return "".join(figures)


def _data_quality(analysis: Analysis) -> str:
    quality = analysis.data_quality
    rows = "".join(
        f"<tr><td>{escape(f.name)}</td><td>{escape(f.role)}</td>"
        f"<td class='number'>{f.missing:,}</td>"
        f"<td>{escape(f.reason)}</td><td>{escape(f.handling)}</td></tr>"
        for f in quality.fields
    )
    warnings = "".join(f"<li>{escape(w)}</li>" for w in quality.warnings)
    return (
        f"<p>{quality.records:,} customers.</p>"
        "<table><tr><th>Field</th><th>Role</th><th>Missing</th><th>Why</th><th>How it was "
        "read and encoded</th></tr>"
        f"{rows}</table>" + (f"<h3>Warnings</h3><ul>{warnings}</ul>" if warnings else "")
    )


def _what_changed(analysis: Analysis) -> str:
    """The refit against its previous analysis: events, movement, flows, drift."""
    lineage = analysis.lineage
    if lineage is None:
        return ""
    names = {s.segment_id: s.name for s in analysis.segments}
    sentences = "".join(f"<li>{escape(s)}</li>" for s in what_changed(lineage, names))
    renamed = "".join(
        f"<li>{escape(s.renamed_from)} is now called {escape(s.name)}: its profile changed.</li>"
        for s in analysis.segments
        if s.renamed_from is not None
    )
    drift = "".join(
        f"<tr><td>{escape(d.field)}</td><td class='number'>{_number(d.previous_mean, '{:,.4g}')}"
        f"</td><td class='number'>{_number(d.mean, '{:,.4g}')}</td>"
        f"<td class='number'>{_number(d.standardized_shift)}</td>"
        f"<td class='number'>{_number(d.psi)}</td></tr>"
        for d in lineage.drift
    )
    previous = escape(lineage.previous_analysis_id or "the previous analysis")
    return (
        f"<h2>What changed</h2><p class='muted'>Compared with {previous}.</p>"
        f"<ul>{sentences}{renamed}</ul>"
        "<table><tr><th>Field</th><th>Previous mean</th><th>Mean</th>"
        "<th>Shift (previous SD)</th><th>PSI</th></tr>" + drift + "</table>"
        "<p class='muted'>PSI (population stability index) over the previous analysis' "
        "deciles: below 0.1 stable, 0.1-0.25 a moderate drift, above 0.25 a shift.</p>"
    )


def render_report(analysis: Analysis, recommendations: Sequence[Recommendation], title: str) -> str:
    """The report of an analysis (fresh or stored) as one HTML document, with the advice
    `recommend(analysis)` gives."""
    data = chart_data_of(analysis)
    selection = analysis.k_selection
    advice = "".join(f"<li>{escape(r.text)}</li>" for r in recommendations)
    accuracy = _number(analysis.accuracy)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)}</title><style>{STYLE}</style></head>
<body>
<h1>{escape(title)}</h1>
<p class="muted">{analysis.data_quality.records:,} customers,
{len(analysis.segments)} segments ({escape(analysis.algorithm)}), accuracy {accuracy},
silhouette {_number(analysis.metrics.silhouette)}.</p>
<h2>Segments</h2>
{_segments_table(analysis, data)}
{_outcomes(analysis)}
{_what_changed(analysis)}
<h2>Recommendations</h2>
<ol>{advice}</ol>
<h2>Charts</h2>
{_charts(data)}
<h2>How far to trust this</h2>
<p><strong>Accuracy {accuracy}</strong>: {escape(analysis.accuracy_method)}. Above 0.75 is
usually read as stable, below 0.5 as no real structure. Each segment's stability is in the
table above; its confidence is the mean simplified silhouette of its customers.</p>
<p><strong>Number of segments</strong>: {escape(selection.method)}.
{escape(selection.reason)}</p>
<h2>Data quality</h2>
{_data_quality(analysis)}
</body></html>
"""
