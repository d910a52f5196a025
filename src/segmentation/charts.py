"""Charts of an analysis, as PNG or SVG bytes (matplotlib, no display needed).

    projection   customers on the plane of the two largest principal components, by segment
    profiles     each segment's standardized difference from the average, per field
    sizes        segment sizes and shares
    k-selection  prediction strength and silhouette of every candidate, the winner marked
    silhouette   the per-customer confidence of each segment
    migration    a refit's flows of customers from the previous segments to the current ones
                 (only for an analysis made with a previous one)

Segments keep one colour everywhere, from the Okabe-Ito palette (distinguishable with the
common colour-vision deficiencies); Outliers are grey. Legends name segments, never numbers.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from segmentation.errors import NotAvailableError
from segmentation.pipeline.explain import AMBIGUOUS_BELOW
from segmentation.pipeline.lineage import Lineage
from segmentation.pipeline.search import PREDICTION_STRENGTH_THRESHOLD
from segmentation.results import Analysis, Projection

if TYPE_CHECKING:  # matplotlib is imported where a chart is drawn: the worker processes,
    # which never draw, do without its 24 MB
    from matplotlib.figure import Figure

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
CHARTS = ("projection", "profiles", "sizes", "k-selection", "silhouette", "migration")
NEW_COLOUR, GONE_COLOUR = "#BBBBBB", "#777777"
# every block of the migration chart gets at least this share of the height, so that a
# small segment's label stays readable with ten segments a side
MIN_BLOCK = 0.035
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
    lineage: Lineage | None = None

    def colour(self, segment_id: int) -> str:
        """A segment's colour, by id: a segment that persists across refits keeps it."""
        segment = next((s for s in self.segments if s.segment_id == segment_id), None)
        if segment is not None and segment.is_outliers:
            return OUTLIER_COLOUR
        return PALETTE[segment_id % len(PALETTE)]

    def available(self) -> tuple[str, ...]:
        """The charts this analysis has (migration only for a refit)."""
        return tuple(c for c in CHARTS if c != "migration" or self.lineage is not None)


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
        lineage=analysis.lineage,
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
    # centres are numbered by position (the segments' order), labels by segment id
    for position, segment in enumerate(data.segments):
        # outliers have no centre (DBSCAN's noise is not a segment with a middle)
        if segment.is_outliers or position >= len(view.centers):
            continue
        x, y = view.centers[position]
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


@dataclass(frozen=True)
class _Block:
    key: int | None  # a segment id; None for new (left side) or gone (right side) customers
    label: str
    customers: int
    bottom: float = 0.0
    height: float = 0.0


def _stack(blocks: list[_Block], gap: float) -> list[_Block]:
    """Blocks from the top down, each at least MIN_BLOCK high, filling 1 with the gaps."""
    total = sum(b.customers for b in blocks) or 1
    raw = [max(b.customers / total, MIN_BLOCK) for b in blocks]
    scale = (1 - gap * (len(blocks) - 1)) / sum(raw)
    stacked, top = [], 1.0
    for block, share in zip(blocks, raw, strict=True):
        height = share * scale
        stacked.append(_Block(block.key, block.label, block.customers, top - height, height))
        top -= height + gap
    return stacked


def _band(axes: Any, left: tuple[float, float], right: tuple[float, float], colour: str) -> None:
    """A flow from (bottom, top) on the left to (bottom, top) on the right, smoothstepped."""
    x = np.linspace(0.22, 0.78, 60)
    t = (x - x[0]) / (x[-1] - x[0])
    ease = 3 * t**2 - 2 * t**3
    lower = left[0] + (right[0] - left[0]) * ease
    upper = left[1] + (right[1] - left[1]) * ease
    axes.fill_between(x, lower, upper, color=colour, alpha=0.45, linewidth=0)


def _migration_blocks(data: ChartData) -> tuple[list[_Block], list[_Block]]:
    lineage = data.lineage
    assert lineage is not None
    names = {s.segment_id: s.name for s in data.segments}
    out: dict[int | None, int] = {}
    into: dict[int | None, int] = {}
    for t in lineage.transitions:
        out[t.source] = out.get(t.source, 0) + t.customers
        into[t.target] = into.get(t.target, 0) + t.customers
    before = lineage.previous_names
    left = [_Block(k, f"{before.get(k, k)} ({n:,})", n) for k, n in sorted(
        ((k, n) for k, n in out.items() if k is not None), key=lambda kv: -kv[1])]  # fmt: skip
    right = [_Block(k, f"{names.get(k, k)} ({n:,})", n) for k, n in sorted(
        ((k, n) for k, n in into.items() if k is not None), key=lambda kv: -kv[1])]  # fmt: skip
    if out.get(None):
        left.append(_Block(None, f"new customers ({out[None]:,})", out[None]))
    if into.get(None):
        right.append(_Block(None, f"left ({into[None]:,})", into[None]))
    gap = 0.012
    return _stack(left, gap), _stack(right, gap)


def _migration(data: ChartData, figure: Figure) -> None:
    from matplotlib.patches import Rectangle

    if data.lineage is None:
        raise NotAvailableError("this analysis has no previous analysis: no migration chart")
    axes = figure.subplots()
    left, right = _migration_blocks(data)
    filled = {("l", b.key): b.bottom + b.height for b in left}
    filled |= {("r", b.key): b.bottom + b.height for b in right}
    order = {b.key: i for i, b in enumerate(right)}
    for block in left:
        colour = NEW_COLOUR if block.key is None else data.colour(block.key)
        flows = [t for t in data.lineage.transitions if t.source == block.key]
        for t in sorted(flows, key=lambda t: order.get(t.target, len(order))):
            target = next(b for b in right if b.key == t.target)
            lw = block.height * t.customers / max(block.customers, 1)
            rw = target.height * t.customers / max(target.customers, 1)
            top_l, top_r = filled[("l", block.key)], filled[("r", t.target)]
            _band(axes, (top_l - lw, top_l), (top_r - rw, top_r), colour)
            filled[("l", block.key)] -= lw
            filled[("r", t.target)] -= rw
    for side, blocks, x, align in (("l", left, 0.2, "right"), ("r", right, 0.8, "left")):
        for b in blocks:
            none = NEW_COLOUR if side == "l" else GONE_COLOUR
            colour = none if b.key is None else data.colour(b.key)
            axes.add_patch(Rectangle((x - 0.02 if side == "l" else x, b.bottom), 0.02,
                                     b.height, color=colour))  # fmt: skip
            offset = -0.03 if side == "l" else 0.05
            axes.text(x + offset, b.bottom + b.height / 2, b.label, ha=align, va="center",
                      fontsize=8)  # fmt: skip
    axes.set_xlim(-0.25, 1.25)
    axes.set_ylim(-0.01, 1.01)
    axes.axis("off")
    moved = data.lineage.moved
    axes.set_title(
        f"Where customers went: previous segments (left) to current ones (right); {moved:,} "
        f"of {data.lineage.customers_compared:,} customers in both changed segment",
        fontsize=10,
    )


def _migration_size(data: ChartData) -> tuple[float, float]:
    if data.lineage is None:
        return (10.0, 5.0)
    sides = max(len(data.lineage.previous_names), len(data.segments)) + 1
    return (11.0, max(5.0, 0.42 * sides + 1.5))


DRAW = {
    "projection": (_projection, (9, 6.5)),
    "profiles": (_profiles, (10, 5.5)),
    "sizes": (_sizes, (9, 5)),
    "k-selection": (_k_selection, (11, 4.5)),
    "silhouette": (_silhouette, (9.0, 5.0)),
    "migration": (_migration, (11.0, 6.0)),
}


def render(name: str, data: ChartData, image_format: str = "png") -> bytes:
    """One chart as PNG or SVG bytes; ValueError for an unknown chart or format,
    NotAvailableError for the migration chart of an analysis without a previous one."""
    if name not in DRAW or image_format not in FORMATS:
        raise ValueError(f"no chart {name!r} as {image_format!r}")
    draw, size = DRAW[name]
    size = (float(size[0]), float(size[1]))
    if name == "profiles":
        size = _profiles_size(data)  # grows with the fields and segments it shows
    if name == "migration":
        size = _migration_size(data)
    from matplotlib.figure import Figure

    # a bare Figure, not pyplot: no global state, no GUI backend, safe in any thread
    figure = Figure(figsize=size, dpi=100, layout="constrained")
    draw(data, figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format=image_format)
    return buffer.getvalue()
