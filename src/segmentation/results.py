"""The typed result of an analysis. The wire layer turns it into the seed's JSON."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from segmentation.options import AnalysisOptions
from segmentation.pipeline import search
from segmentation.pipeline.features import FeatureEncoder
from segmentation.pipeline.lineage import DriftReference, Lineage
from segmentation.pipeline.models import SegmentModel
from segmentation.pipeline.search import Candidate

__all__ = [
    "Analysis",
    "DataQuality",
    "FieldReport",
    "KSelection",
    "Metrics",
    "Outcome",
    "Projection",
    "Segment",
]

ACCURACY_METHOD = (
    "resampling stability (Hennig's clusterboot): mean best-match Jaccard similarity of each "
    "segment over bootstrap refits, weighted by segment size; capped at 0.5 when the segments "
    "separate no better than uniform data of the same shape (gap statistic: Gap(k) - Gap(1) "
    "within one standard error), since cuts of structureless data can reproduce perfectly; "
    f"and capped at the chosen k's prediction strength when that is below "
    f"{search.PREDICTION_STRENGTH_THRESHOLD}, since a number of segments that does not "
    "reproduce on held-out halves may not be found again with another random state"
)
K_SELECTION_METHOD = (
    "stability, then separation, on a bounded sample: the k whose segments reproduce on "
    "held-out halves (median prediction strength over half-sample splits >= "
    f"{search.PREDICTION_STRENGTH_THRESHOLD} for k-means or Ward, Tibshirani & Walther 2005) "
    "with the best silhouette; a larger k instead when it is clearly reproducible (>= "
    f"{search.CLEARLY_STABLE}) and loses at most {search.SILHOUETTE_TOLERANCE} of silhouette; "
    f"a larger k still when its silhouette is higher by {search.MORE_GROUPS_MARGIN} or more and "
    f"its prediction strength >= {search.MORE_GROUPS_MIN_STRENGTH} (more groups than "
    "half-samples can reproduce one by one)"
)


@dataclass(frozen=True)
class Segment:
    """One segment: who is in it, what it looks like, how much to trust it."""

    segment_id: int
    name: str
    size: int
    share: float
    centroid: dict[str, float | None]
    categories: dict[str, dict[str, float]]
    characteristics: tuple[str, ...]
    confidence: float
    stability: float
    ambiguous_share: float
    is_outliers: bool
    standardized: dict[str, float]
    #: the name a segment that survived a refit carried before its profile changed
    renamed_from: str | None = None
    #: each outcome's rate (or mean) among the segment's customers; None: none has a value
    outcomes: dict[str, float | None] = field(default_factory=dict)


@dataclass(frozen=True)
class Outcome:
    """An outcome field (churn, response): reported per segment, never a feature.

    `kind` is "rate" (the share of customers at the `positive` level) or "mean"; `meaning`
    is "loss" (churn, attrition, default: to prevent), "gain" (response, conversion: to
    repeat) or None (a target of unknown direction); `overall` is over every customer with
    a value."""

    field: str
    kind: str
    positive: str | None
    meaning: str | None
    overall: float


@dataclass(frozen=True)
class KSelection:
    method: str
    candidates: tuple[Candidate, ...]
    chosen: Candidate
    reason: str
    sample_size: int


@dataclass(frozen=True)
class Metrics:
    silhouette: float
    calinski_harabasz: float
    davies_bouldin: float
    surrogate_fidelity: float
    sample_size: int
    #: Gap(k) - Gap(1) of the gap statistic and its standard error (NaN: not measured)
    structure_gap: float = float("nan")
    structure_gap_error: float = float("nan")


@dataclass(frozen=True)
class FieldReport:
    """One input field: its role, missing values, how it was encoded, why it was ignored,
    and the business axis its name maps to (income, spend, frequency, recency, age)."""

    name: str
    role: str
    missing: int
    handling: str = ""
    reason: str = ""
    axis: str | None = None


@dataclass(frozen=True)
class DataQuality:
    records: int
    fields: tuple[FieldReport, ...]
    warnings: tuple[str, ...]

    @property
    def ignored(self) -> tuple[FieldReport, ...]:
        return tuple(f for f in self.fields if f.role == "ignored")

    @property
    def axes(self) -> dict[str, str]:
        return {f.name: f.axis for f in self.fields if f.axis is not None}


@dataclass(frozen=True)
class Projection:
    """A 2-D view of the customers (the first two principal components of the feature
    space) for charts: a random sample of at most 5,000 customers, their segments, and the
    segment centres in the same plane."""

    points: np.ndarray
    labels: np.ndarray
    centers: np.ndarray
    explained: np.ndarray
    n_customers: int

    @property
    def sampled(self) -> bool:
        return len(self.points) < self.n_customers


@dataclass(frozen=True)
class Analysis:
    """A finished segmentation.

    `labels[i]` is the segment id of the i-th customer sent; `confidence[i]` its simplified
    silhouette and `ambiguous[i]` whether that is below `AMBIGUOUS_BELOW`. `encoder`,
    `model` and `centers` (the segment centres confidence is measured against) are the fitted
    pipeline that assigns new customers (`segmentation.assign`).
    """

    segments: tuple[Segment, ...]
    labels: np.ndarray
    confidence: np.ndarray
    ambiguous: np.ndarray
    customer_ids: Sequence[Any] | None
    feature_importance: dict[str, float]
    accuracy: float
    accuracy_method: str
    metrics: Metrics
    k_selection: KSelection
    data_quality: DataQuality
    algorithm: str
    random_state: int
    options: AnalysisOptions
    encoder: FeatureEncoder
    model: SegmentModel
    centers: np.ndarray
    projection: Projection
    timings: dict[str, float] = field(default_factory=dict)
    #: what the next refit compares its fields with
    reference: DriftReference = field(default_factory=DriftReference)
    #: the refit's report against its previous analysis (None without one)
    lineage: Lineage | None = None
    #: the first segment id never used in this analysis' lineage
    next_segment_id: int = 0
    #: "local", or "spark" (segmentation.spark)
    engine: str = "local"
    #: labels, confidence, ambiguous and customer_ids hold a uniform sample of the customers
    #: (the Spark engine); every customer's segment is in `assignments`
    sample_only: bool = False
    #: the Spark engine's per-customer segments, a lazy Spark DataFrame (None otherwise)
    assignments: Any = None
    #: the outcome fields, reported per segment (`Segment.outcomes`)
    outcomes: tuple[Outcome, ...] = ()
    #: the positions (in the input) of the customers analysed, when rows whose id repeated
    #: another's were left out (`duplicate_ids`); None: every row, in order
    input_rows: np.ndarray | None = None

    @property
    def n_customers(self) -> int:
        if self.sample_only:
            return self.data_quality.records
        return len(self.labels)

    def members(self, segment_id: int) -> np.ndarray:
        """Positions (in input order) of the customers in one segment."""
        return np.flatnonzero(self.labels == segment_id)

    def input_positions(self, positions: np.ndarray) -> np.ndarray:
        """Positions among the analysed customers as positions in the input as sent (they
        differ when rows whose id repeated another's were left out)."""
        return positions if self.input_rows is None else self.input_rows[positions]
