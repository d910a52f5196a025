"""Charts of an analysis, as PNG or SVG bytes (matplotlib, no display needed).

    projection   customers on the plane of the two largest principal components, by segment
    profiles     each segment's standardized difference from the average, per field
    sizes        segment sizes and shares
    k-selection  prediction strength and silhouette of every candidate, the winner marked
    silhouette   the per-customer confidence of each segment

Segments keep one colour everywhere, from the Okabe-Ito palette (distinguishable with the
common colour-vision deficiencies); Outliers are grey. Legends name segments, never numbers.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from segmentation.pipeline.explain import AMBIGUOUS_BELOW
from segmentation.pipeline.search import PREDICTION_STRENGTH_THRESHOLD
from segmentation.results import Analysis, Projection

__all__ = [
    "CHARTS",
    "FORMATS",
    "PALETTE",
    "ChartData",
    "SegmentView",
    "chart_data_of",
    "render",
]

PALETTE = ("#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7",
           "#000000")  # fmt: skip
OUTLIER_COLOUR = "#999999"
CHARTS = ("projection", "profiles", "sizes", "k-selection", "silhouette")
FORMATS = {"png": "image/png", "svg": "image/svg+xml"}


@dataclass(frozen=True)
class SegmentView:
    segment_id: int
    name: str
    size: int
    share: float
    is_outliers: bool
    standardized: Mapping[str, float]


@dataclass(frozen=True)
class ChartData:
    """Everything the charts draw, whether from a fresh Analysis or a stored one."""

    segments: Sequence[SegmentView]
    candidates: Sequence[Mapping[str, Any]]
    labels: np.ndarray
    confidence: np.ndarray
    projection: Projection
    importance: Mapping[str, float] = field(default_factory=dict)

    def colour(self, segment_id: int) -> str:
        segment = next(s for s in self.segments if s.segment_id == segment_id)
        if segment.is_outliers:
            return OUTLIER_COLOUR
        return PALETTE[segment_id % len(PALETTE)]


def chart_data_of(analysis: Analysis) -> ChartData:
    chosen = analysis.k_selection.chosen
    return ChartData(
        segments=[
            SegmentView(s.segment_id, s.name, s.size, s.share, s.is_outliers, s.standardized)
            for s in analysis.segments
        ],
        candidates=[
            {
                "algorithm": c.algorithm.value,
                "k": c.k,
                "predictionStrength": c.prediction_strength,
                "predictionStrengthQuartiles": list(c.strength_quartiles),
                "silhouette": c.silhouette,
                "chosen": c is chosen,
            }
            for c in analysis.k_selection.candidates
        ],
        labels=analysis.labels,
        confidence=analysis.confidence,
        projection=analysis.projection,
        importance=analysis.feature_importance,
    )


def _projection(data: ChartData, figure: Figure) -> None:
    axes = figure.subplots()
    view = data.projection
    for segment in data.segments:
        members = view.labels == segment.segment_id
        axes.scatter(
            view.points[members, 0], view.points[members, 1], s=8, alpha=0.6,
            color=data.colour(segment.segment_id), label=segment.name, linewidths=0,
        )  # fmt: skip
    for segment in data.segments:
        # outliers have no centre (DBSCAN's noise is not a segment with a middle)
        if segment.is_outliers or segment.segment_id >= len(view.centers):
            continue
        x, y = view.centers[segment.segment_id]
        if not np.isfinite([x, y]).all():
            continue
        axes.scatter([x], [y], marker="X", s=160, color=data.colour(segment.segment_id),
                     edgecolors="black", linewidths=1.2, zorder=3)  # fmt: skip
        axes.annotate(segment.name, (x, y), xytext=(6, 6), textcoords="offset points",
                      fontsize=9, weight="bold")  # fmt: skip
    shown = f"{len(view.points):,} of {view.n_customers:,} customers (a random sample)"
    axes.set_title("Customers by segment" + (f" — {shown}" if view.sampled else ""), fontsize=11)
    axes.set_xlabel(f"component 1 ({view.explained[0]:.0%} of the variance)")
    axes.set_ylabel(f"component 2 ({view.explained[1]:.0%} of the variance)")
    axes.legend(loc="best", fontsize=8, markerscale=2, frameon=True)


# a cell needs this many points of width and height for its number to be legible
CELL_TEXT_WIDTH_PT, CELL_TEXT_HEIGHT_PT = 26.0, 11.0
PROFILE_ROW_INCHES, PROFILE_COLUMN_INCHES = 0.28, 1.0


def _profile_fields(data: ChartData) -> tuple[list[SegmentView], list[str]]:
    """The segments drawn (outliers have no profile) and the fields as rows, most important
    first; categorical fields have no mean to standardize (their profile is a share per
    level), so they are left out rather than drawn as a misleading zero."""
    segments = [s for s in data.segments if not s.is_outliers] or list(data.segments)
    fields = [f for f in segments[0].standardized if any(s.standardized[f] for s in segments)]
    fields.sort(key=lambda f: -data.importance.get(f, 0.0))
    return segments, fields


def _profiles_size(data: ChartData) -> tuple[float, float]:
    segments, fields = _profile_fields(data)
    width = max(7.0, 4.5 + PROFILE_COLUMN_INCHES * len(segments))
    height = max(4.0, 2.2 + PROFILE_ROW_INCHES * len(fields))
    return width, height


def _profiles(data: ChartData, figure: Figure) -> None:
    segments, fields = _profile_fields(data)
    # fields as rows: 60 fields stay legible as 60 rows, never as 60 rotated column labels
    values = np.array([[s.standardized.get(f, 0.0) for s in segments] for f in fields])
    values = values.reshape(len(fields), len(segments))
    axes = figure.subplots()
    limit = max(1.0, float(np.nanmax(np.abs(values))) if values.size else 1.0)
    image = axes.imshow(values, cmap="PuOr_r", vmin=-limit, vmax=limit, aspect="auto")
    axes.set_yticks(range(len(fields)), [_row_label(f, data) for f in fields], fontsize=8)
    # whole names, slanted when they would collide: a segment is never shown by a number
    rotation = 0 if len(segments) <= 4 and max(len(s.name) for s in segments) <= 18 else 30
    axes.set_xticks(
        range(len(segments)), [s.name for s in segments], fontsize=8,
        rotation=rotation, ha="center" if rotation == 0 else "left",
        rotation_mode="anchor",
    )  # fmt: skip
    axes.xaxis.tick_top()
    width_in, height_in = figure.get_size_inches()
    cell_width_pt = 72 * (width_in - 4.0) / max(len(segments), 1)
    cell_height_pt = 72 * (height_in - 2.0) / max(len(fields), 1)
    if cell_width_pt >= CELL_TEXT_WIDTH_PT and cell_height_pt >= CELL_TEXT_HEIGHT_PT:
        for row, column in np.ndindex(values.shape):
            value = values[row, column]
            ink = "white" if abs(value) > 0.6 * limit else "black"  # legible on dark cells
            axes.text(column, row, f"{value:+.1f}", ha="center", va="center", fontsize=7,
                      color=ink)  # fmt: skip
    figure.colorbar(image, ax=axes, label="standard deviations from the average", shrink=0.8)
    axes.set_title(
        "How each segment differs from the average customer (fields by importance)", fontsize=11
    )


def _row_label(field: str, data: ChartData) -> str:
    share = data.importance.get(field)
    shown = field if len(field) <= 28 else field[:27] + "…"
    return f"{shown} ({share:.0%})" if share is not None else shown


def _sizes(data: ChartData, figure: Figure) -> None:
    axes = figure.subplots()
    segments = list(data.segments)
    positions = np.arange(len(segments))
    bars = axes.barh(
        positions, [s.size for s in segments],
        color=[data.colour(s.segment_id) for s in segments], edgecolor="black", linewidth=0.5,
    )  # fmt: skip
    for bar, segment in zip(bars, segments, strict=True):
        axes.text(bar.get_width(), bar.get_y() + bar.get_height() / 2,
                  f"  {segment.size:,} ({segment.share:.0%})", va="center", fontsize=9)  # fmt: skip
    axes.set_yticks(positions, [s.name for s in segments], fontsize=9)
    axes.invert_yaxis()
    axes.set_xlabel("customers")
    axes.set_xlim(0, max(s.size for s in segments) * 1.3)
    axes.set_title("Segment sizes", fontsize=11)


def _k_selection(data: ChartData, figure: Figure) -> None:
    strength_axes, silhouette_axes = figure.subplots(1, 2)
    algorithms = sorted({str(c["algorithm"]) for c in data.candidates})
    styles = dict(zip(algorithms, ("o-", "s--", "^:"), strict=False))
    for algorithm in algorithms:
        rows = sorted((c for c in data.candidates if c["algorithm"] == algorithm),
                      key=lambda c: c["k"])  # fmt: skip
        ks = [c["k"] for c in rows]
        colour = {"kmeans": "#0072B2", "hierarchical": "#D55E00"}.get(algorithm, "#009E73")
        for axes, key in ((strength_axes, "predictionStrength"), (silhouette_axes, "silhouette")):
            values = np.array([np.nan if c[key] is None else c[key] for c in rows], dtype=float)
            # a strength not measured (it could not change the choice) is a gap in the line
            axes.plot(ks, values, styles.get(algorithm, "o-"), label=algorithm, color=colour)
        quartiles = np.array(
            [[np.nan if q is None else q for q in (c.get("predictionStrengthQuartiles") or
              (None, None))] for c in rows], dtype=float,
        )  # fmt: skip
        strengths = np.array(
            [np.nan if c["predictionStrength"] is None else c["predictionStrength"] for c in rows],
            dtype=float,
        )
        shown = np.isfinite(quartiles).all(axis=1) & np.isfinite(strengths)
        if shown.any():
            # the spread over the half-sample splits: 25th to 75th percentile
            strength_axes.errorbar(
                np.array(ks)[shown], strengths[shown],
                yerr=np.abs(quartiles[shown].T - strengths[shown]), fmt="none", ecolor=colour,
                alpha=0.6, capsize=3,
            )  # fmt: skip
    winner = next((c for c in data.candidates if c["chosen"]), None)
    for axes, key, title in ((strength_axes, "predictionStrength",
                              "Prediction strength (median, quartiles)"),
                             (silhouette_axes, "silhouette", "Silhouette")):  # fmt: skip
        if winner is not None and winner[key] is not None:
            axes.scatter([winner["k"]], [winner[key]], marker="*", s=320, color="#F0E442",
                         edgecolors="black", zorder=4, label=f"chosen: {winner['algorithm']}, "
                         f"k={winner['k']}")  # fmt: skip
        axes.set_xlabel("number of segments k")
        axes.set_title(title, fontsize=11)
        axes.legend(fontsize=8)
    strength_axes.axhline(PREDICTION_STRENGTH_THRESHOLD, color="grey", linestyle="--",
                          linewidth=1)  # fmt: skip
    if any(c["predictionStrength"] is None or not np.isfinite(c["predictionStrength"])
           for c in data.candidates if c["algorithm"] != "dbscan"):  # fmt: skip
        strength_axes.text(
            0.01, 0.01, "missing points: not measured, as they could not change the choice",
            transform=strength_axes.transAxes, fontsize=7, color="grey",
        )  # fmt: skip
    strength_axes.set_ylim(0, 1.05)


def _silhouette(data: ChartData, figure: Figure) -> None:
    axes = figure.subplots()
    segments = [s for s in data.segments if not s.is_outliers] or list(data.segments)
    values = [data.confidence[data.labels == s.segment_id] for s in segments]
    boxes = axes.boxplot(values, vert=False, patch_artist=True, showfliers=False,
                         tick_labels=[s.name for s in segments])  # fmt: skip
    for patch, segment in zip(boxes["boxes"], segments, strict=True):
        patch.set_facecolor(data.colour(segment.segment_id))
    axes.axvline(AMBIGUOUS_BELOW, color="grey", linestyle="--", linewidth=1)
    axes.text(AMBIGUOUS_BELOW, 0.4, " ambiguous below", fontsize=8, color="grey")
    axes.invert_yaxis()
    axes.set_xlabel("confidence (simplified silhouette)")
    axes.set_title("How clearly customers belong to their segment", fontsize=11)


DRAW = {
    "projection": (_projection, (9, 6.5)),
    "profiles": (_profiles, (10, 5.5)),
    "sizes": (_sizes, (9, 5)),
    "k-selection": (_k_selection, (11, 4.5)),
    "silhouette": (_silhouette, (9.0, 5.0)),
}


def render(name: str, data: ChartData, image_format: str = "png") -> bytes:
    """One chart as PNG or SVG bytes; ValueError for an unknown chart or format."""
    if name not in DRAW or image_format not in FORMATS:
        raise ValueError(f"no chart {name!r} as {image_format!r}")
    draw, size = DRAW[name]
    size = (float(size[0]), float(size[1]))
    if name == "profiles":
        size = _profiles_size(data)  # grows with the fields and segments it shows
    # a bare Figure, not pyplot: no global state, no GUI backend, safe in any thread
    figure = Figure(figsize=size, dpi=100, layout="constrained")
    draw(data, figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format=image_format)
    return buffer.getvalue()
