"""`analyze`: the pipeline stages composed, from customers to a typed `Analysis`."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import pairwise_distances
from threadpoolctl import ThreadpoolController

from segmentation.errors import InsufficientDataError, InvalidInputError, Problem
from segmentation.pipeline.explain import (
    AMBIGUOUS_BELOW,
    MIN_CUSTOMERS_FOR_ACCURACY,
    Stability,
    StructureGap,
    confidence,
    model_centers,
    permutation_importance,
    resampling_stability,
    structure_gap,
    surrogate_fidelity,
)
from segmentation.pipeline.features import FeatureEncoder
from segmentation.pipeline.ingest import IngestedCustomers, ingest
from segmentation.pipeline.models import (
    NOISE,
    Algorithm,
    CentroidModel,
    DensityModel,
    SegmentModel,
    fit_kmeans,
)
from segmentation.pipeline.profile import profile_segments
from segmentation.pipeline.schema import Schema, infer_schema
from segmentation.pipeline.search import (
    MIN_SEGMENT_FOR_STABILITY,
    SEARCH_SAMPLE_SIZE,
    SILHOUETTE_SAMPLE_SIZE,
    SearchResult,
    clustering_scores,
    format_score,
    search,
)
from segmentation.results import (
    ACCURACY_METHOD,
    K_SELECTION_METHOD,
    Analysis,
    DataQuality,
    FieldReport,
    KSelection,
    Metrics,
    Projection,
    Segment,
)

__all__ = ["DEFAULT_K_RANGE", "MAX_K", "analyze"]

DEFAULT_K_RANGE = (2, 10)
# when a stage ends: the stage that begins, and the share of a large analysis' time done
# (measured on a 1,000,000-customer job; "storing" is the caller's)
NEXT_STAGE = {
    "features": ("search", 0.3), "search": ("fit", 0.55), "fit": ("explain", 0.65),
    "explain": ("profile", 0.75), "profile": ("storing", 0.9),
}  # fmt: skip
MAX_K = 30
# Customer-level statistics that are O(n) per field but costly in Python run on this sample.
EXPLAIN_SAMPLE_SIZE = 2000
LOW_ACCURACY = 0.6
# accuracy when the segments separate no better than structureless data ("dissolved")
NO_STRUCTURE_ACCURACY = 0.5
SMALL_SEGMENT_SHARE = 0.02


def _k_values(
    n_clusters: int | None, k_range: Sequence[int] | None, n_customers: int, n_distinct: int
) -> list[int]:
    """The k to try, checked against the data; option errors name the option and its value."""
    if n_clusters is not None and k_range is not None:
        raise InvalidInputError(Problem("give n_clusters or k_range, not both", field="k_range"))
    if n_clusters is not None:
        if not 2 <= n_clusters <= MAX_K:
            raise InvalidInputError(
                Problem(
                    f"n_clusters={n_clusters} should be between 2 and {MAX_K}", field="n_clusters"
                )
            )
        if n_clusters > n_customers:
            raise InsufficientDataError(
                Problem(
                    f"n_clusters={n_clusters} should be <= n_customers={n_customers}",
                    field="n_clusters",
                )
            )
        if n_clusters > n_distinct:
            raise InsufficientDataError(
                Problem(
                    f"n_clusters={n_clusters} but only {n_distinct} customers differ on the "
                    "fields used",
                    field="n_clusters",
                )
            )
        return [n_clusters]
    low, high = k_range if k_range is not None else DEFAULT_K_RANGE
    if k_range is not None and not (2 <= low <= high <= MAX_K):
        raise InvalidInputError(
            Problem(
                f"k_range=[{low}, {high}] should satisfy 2 <= min <= max <= {MAX_K}",
                field="k_range",
            )
        )
    # the default range keeps >= 5 customers per segment in each stability half-sample
    # (n / 2 / 5); an explicit range only needs ~3 per segment. Never more than distinct rows.
    per_segment = 3 if k_range is not None else 2 * MIN_SEGMENT_FOR_STABILITY
    high = min(high, n_distinct, max(2, n_customers // per_segment))
    if low > high:
        raise InsufficientDataError(
            Problem(
                f"k_range starts at {low} but {n_customers} customers ({n_distinct} distinct) "
                f"support at most {high} segments",
                field="k_range",
            )
        )
    return list(range(low, high + 1))


@functools.cache
def _thread_pools() -> ThreadpoolController:
    """BLAS/OpenMP pools, inspected once per process: inspection costs ~4 ms per call."""
    return ThreadpoolController()


def _count_distinct(X: np.ndarray, cap: int, random_state: int) -> int:
    """Distinct customers on the fields used, counted up to `cap` (enough to bound k).

    Exact about "all identical" (a range check over every row); the count itself comes from
    a random sample of at most 5,000 rows, since sorting a million rows to bound k is waste.
    """
    if len(X) == 0 or float(np.ptp(X, axis=0).max()) == 0.0:
        return min(len(X), 1)
    rng = np.random.default_rng(random_state)
    probe = X[rng.choice(len(X), size=min(len(X), 5000), replace=False)]
    return max(2, min(len(np.unique(probe.round(9), axis=0)), cap))


def _final_labels(
    X: np.ndarray, found: SearchResult, random_state: int
) -> tuple[np.ndarray, SegmentModel]:
    """Labels for every customer.

    Ward's segments are always the nearest of its centroids. Otherwise, when the sample is
    everyone its labels are final; if not, k-means is refit on all rows from the sample's
    centres (one start, so cheap even at 1M) and DBSCAN assigns every customer to the nearest
    core customer within eps.
    """
    if found.chosen.algorithm is Algorithm.HIERARCHICAL:
        # every customer by the nearest Ward centroid, even when the tree saw them all: the
        # segments are then exactly what scoring new (or the same) customers reproduces
        return found.model.assign(X), found.model
    if len(found.sample_index) == len(X):
        return found.sample_labels, found.model
    if found.chosen.algorithm is Algorithm.KMEANS:
        assert isinstance(found.model, CentroidModel)
        return fit_kmeans(X, found.chosen.k, random_state, init=found.model.centers)
    return found.model.assign(X), found.model


def _relabel(labels: np.ndarray, model: SegmentModel) -> tuple[np.ndarray, SegmentModel, int, bool]:
    """Segments numbered by size (largest 0), empty ones dropped, outliers last.

    Returns labels (outliers still -1), the model with the same numbering, the segment count
    including the outlier segment, and whether there is one.
    """
    clustered = labels[labels != NOISE]
    counts = np.bincount(clustered) if clustered.size else np.zeros(0, dtype=int)
    order = [int(old) for old in np.argsort(-counts, kind="stable") if counts[old] > 0]
    mapping = np.full(max(len(counts), 1), NOISE, dtype=np.int64)
    mapping[order] = np.arange(len(order))
    relabelled = np.where(labels == NOISE, NOISE, mapping[np.maximum(labels, 0)])
    has_outliers = bool((labels == NOISE).any())
    if isinstance(model, CentroidModel):
        model = CentroidModel(model.centers[order])
    else:
        core_mapping = mapping[np.maximum(model.core_labels, 0)]
        model = DensityModel(
            model.core_points, np.where(model.core_labels == NOISE, NOISE, core_mapping),
            model.eps, model.min_samples, len(order),
        )  # fmt: skip
    return relabelled, model, len(order) + int(has_outliers), has_outliers


@dataclass(frozen=True)
class _Trust:
    """Everything that says how far to trust the segments (see pipeline/explain.py)."""

    centers: np.ndarray
    confidence: np.ndarray
    ambiguous: np.ndarray
    stability: Stability
    #: the headline accuracy: the stability, capped when there is no structure
    accuracy: float
    structure: StructureGap | None
    importance: dict[str, float]
    metrics: Metrics


def _trust(
    X: np.ndarray,
    frame: pd.DataFrame,
    labels: np.ndarray,
    n_segments: int,
    found: SearchResult,
    encoder: FeatureEncoder,
    model: SegmentModel,
    random_state: int,
) -> _Trust:
    centers = model_centers(X, labels, model)
    scores = confidence(X, labels, centers)
    stability = resampling_stability(
        X, labels, n_segments, algorithm=found.chosen.algorithm, k=found.chosen.k,
        random_state=random_state, eps=found.dbscan_eps, min_samples=found.dbscan_min_samples,
    )  # fmt: skip
    rng = np.random.default_rng(random_state)
    sample = np.sort(rng.choice(len(X), size=min(len(X), EXPLAIN_SAMPLE_SIZE), replace=False))
    encoded_sample = encoder.encode(frame.iloc[sample])
    importance = permutation_importance(
        encoded_sample,
        {e.spec.name: e.columns for e in encoder.encodings_},
        encoder.project,
        model,
        random_state,
    )
    # a random subset: the first rows of a sorted sample would all come from early input
    silhouette_index = np.sort(
        rng.choice(len(sample), size=min(len(sample), SILHOUETTE_SAMPLE_SIZE), replace=False)
    )
    silhouette, calinski, davies = clustering_scores(
        X[sample], labels[sample], pairwise_distances(X[sample][silhouette_index]), silhouette_index
    )
    fidelity = surrogate_fidelity(encoded_sample, labels[sample], random_state)
    segments = len(np.unique(labels[labels != NOISE]))
    gap = (
        structure_gap(X, labels, segments, random_state)
        if segments >= 2 and len(X) >= MIN_CUSTOMERS_FOR_ACCURACY
        else None
    )
    accuracy = stability.overall
    if gap is not None and not gap.has_structure:
        accuracy = min(accuracy, NO_STRUCTURE_ACCURACY)
    nan = float("nan")
    return _Trust(
        centers=centers,
        confidence=scores,
        ambiguous=(scores < AMBIGUOUS_BELOW) & (labels != NOISE),
        stability=stability,
        accuracy=accuracy,
        structure=gap,
        importance=importance,
        metrics=Metrics(
            silhouette, calinski, davies, fidelity, len(sample),
            gap.gain if gap else nan, gap.standard_error if gap else nan,
        ),
    )  # fmt: skip


PROJECTION_SAMPLE_SIZE = 5000


def _projection(
    X: np.ndarray, segment_ids: np.ndarray, centers: np.ndarray, random_state: int
) -> Projection:
    """Customers and centres on the plane of the two largest principal components."""
    rng = np.random.default_rng(random_state)
    sample = np.sort(rng.choice(len(X), size=min(len(X), PROJECTION_SAMPLE_SIZE), replace=False))
    mean = X.mean(axis=0)
    dims = min(2, X.shape[1])
    _, singular, axes = np.linalg.svd(X[sample] - mean, full_matrices=False)
    axes = axes[:dims]
    explained = singular[:dims] ** 2 / max(float((singular**2).sum()), 1e-12)
    finite = np.isfinite(centers).all(axis=1)
    plane_centers = np.full((len(centers), dims), np.nan)
    plane_centers[finite] = (centers[finite] - mean) @ axes.T
    points = (X[sample] - mean) @ axes.T
    if dims == 1:  # one feature: draw it against zero
        points = np.column_stack([points, np.zeros(len(points))])
        plane_centers = np.column_stack([plane_centers, np.zeros(len(plane_centers))])
        explained = np.append(explained, 0.0)
    return Projection(points, segment_ids[sample], plane_centers, explained, len(X))


def _data_quality(
    customers: IngestedCustomers,
    schema: Schema,
    encoder: FeatureEncoder,
    axes: dict[str, str],
    warnings: list[str],
) -> DataQuality:
    handling = encoder.describe()
    reports = []
    for spec in schema.fields:
        missing = (
            int(customers.frame[spec.name].isna().sum()) if spec.name in customers.frame else 0
        )
        reports.append(
            FieldReport(
                spec.name,
                str(spec.role),
                missing,
                handling.get(spec.name, ""),
                spec.reason,
                axes.get(spec.name),
            )
        )
    return DataQuality(len(customers.frame), tuple(reports), tuple(warnings))


def _warnings(
    customers: IngestedCustomers, schema: Schema, segments: list[Segment], trust: _Trust
) -> list[str]:
    accuracy = trust.accuracy
    notes = [
        f"Field {spec.name!r} was ignored: {spec.reason}."
        for spec in schema.ignored
        if spec.reason != "excluded by the options"
    ]
    feature_names = [spec.name for spec in schema.features]
    duplicates = int(customers.frame[feature_names].duplicated().sum())
    if duplicates:
        notes.append(
            f"{duplicates} customers are exact duplicates of another on every field used "
            "(possibly double-counted customers); each is kept and segmented."
        )
    for segment in segments:
        if segment.share < SMALL_SEGMENT_SHARE and not segment.is_outliers:
            notes.append(
                f"Segment {segment.name!r} holds only {segment.size} customers "
                f"({segment.share:.1%}); treat its profile with care."
            )
    if np.isnan(accuracy) and len(customers.frame) < MIN_CUSTOMERS_FOR_ACCURACY:
        notes.append(
            f"Accuracy cannot be measured with fewer than {MIN_CUSTOMERS_FOR_ACCURACY} "
            "customers: resamples that small say nothing about whether the segments reproduce."
        )
    elif np.isnan(accuracy):
        notes.append(
            "Accuracy could not be measured: no bootstrap resample held enough distinct "
            "customers to refit the segments."
        )
    elif trust.structure is not None and not trust.structure.has_structure:
        notes.append(
            "The segments separate no better than uniform data of the same shape would "
            f"(gap statistic gain {format_score(trust.structure.gain, 3)}, standard error "
            f"{format_score(trust.structure.standard_error, 3)}): these customers show no "
            f"cluster structure, so accuracy is capped at {NO_STRUCTURE_ACCURACY} and the "
            "segments are a convenient partition, not distinct groups."
        )
    elif accuracy < LOW_ACCURACY:
        notes.append(
            f"Accuracy {accuracy:.2f} is low: the segments change when the data is resampled, "
            "so the customers may not form distinct groups."
        )
    return notes


def analyze(
    customers: pd.DataFrame | Sequence[Mapping[str, Any]],
    *,
    algorithm: str = "auto",
    n_clusters: int | None = None,
    k_range: Sequence[int] | None = None,
    features: Sequence[str] | None = None,
    exclude: Sequence[str] = (),
    random_state: int = 0,
    eps: float | None = None,
    min_samples: int | None = None,
    max_fields: int | None = None,
    search_sample_size: int = SEARCH_SAMPLE_SIZE,
    progress: Callable[[str, float], None] | None = None,
) -> Analysis:
    """Segment customers and explain the result.

    Parameters
    ----------
    customers : a DataFrame or a list of dicts, one per customer; any fields.
    algorithm : "auto", "kmeans", "hierarchical" or "dbscan".
    n_clusters : a fixed number of segments, or None to choose it (see search.py).
    k_range : (min, max) numbers of segments to try; default (2, 10).
    features, exclude : the fields to use / to leave out (default: every usable field).
    random_state : seeds every random choice; the same input and seed give the same result.
    eps, min_samples : DBSCAN's radius and density; chosen from the data when None.
    max_fields : refuse customers with more fields than this (None: no limit). Field
        dependence is O(fields^2) and importance O(fields), so a service bounds them.
    search_sample_size : customers in the candidate search (and Ward's and DBSCAN's fits);
        every O(n^2) step is bounded by it.
    progress : called as `progress(stage, fraction)` as each stage begins (the fraction of the
        expected work done, 0..1); it may raise to abandon the analysis (a cancelled job).

    Examples
    --------
    >>> from segmentation.synthetic import make_population
    >>> result = analyze(make_population(400, 3, random_state=0).frame, random_state=0)
    >>> len(result.segments), sorted(result.feature_importance)[:3]
    (3, ['age', 'gender', 'income'])
    """
    try:
        chosen_algorithm = Algorithm(algorithm)
    except ValueError:
        choices = ", ".join(repr(a.value) for a in Algorithm)
        raise InvalidInputError(
            Problem(f"algorithm={algorithm!r} is not one of {choices}", field="algorithm")
        ) from None
    if chosen_algorithm is Algorithm.DBSCAN and (n_clusters is not None or k_range is not None):
        raise InvalidInputError(
            Problem("dbscan finds the number of segments itself; drop n_clusters/k_range",
                    field="n_clusters")
        )  # fmt: skip
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(stage: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[stage] = round(now - clock, 4)
        clock = now
        if progress is not None:
            progress(*NEXT_STAGE[stage])

    ingested = ingest(customers)
    n_fields = len(ingested.frame.columns) + len(ingested.nested_fields)
    if max_fields is not None and n_fields > max_fields:
        raise InvalidInputError(
            Problem(f"customers have {n_fields} fields, more than the limit of {max_fields}")
        )
    schema = infer_schema(ingested, features=features, exclude=exclude)
    if not schema.features:
        reasons = "; ".join(f"{f.name!r}: {f.reason}" for f in schema.fields) or "no fields at all"
        raise InvalidInputError(Problem(f"no usable feature field ({reasons})"))
    frame = ingested.frame
    encoder = FeatureEncoder(schema, random_state).fit(frame)
    X = encoder.transform(frame)
    lap("features")

    n = len(X)
    n_distinct = _count_distinct(X, MAX_K + 1, random_state)
    if n_distinct < 2:
        raise InsufficientDataError(
            "all customers are identical on the fields used "
            f"({', '.join(s.name for s in schema.features)}); there is nothing to segment"
        )
    k_values = _k_values(n_clusters, k_range, n, n_distinct)
    # Dozens of fits on a sample of at most a few thousand rows: OpenMP threads cost more to
    # wake than they save there, and contend with the other worker processes.
    with _thread_pools().limit(limits=1):
        found = search(
            X, algorithm=chosen_algorithm, k_values=k_values, random_state=random_state,
            sample_size=search_sample_size, eps=eps, min_samples=min_samples,
        )  # fmt: skip
    lap("search")
    k_reason, range_note = found.reason, None
    if found.more_segments_possible:
        low, requested_high = k_range if k_range is not None else DEFAULT_K_RANGE
        if requested_high == max(k_values) and requested_high < MAX_K:
            wider = [low, min(MAX_K, 2 * requested_high)]
            range_note = (
                f"k={found.chosen.k} is the largest number of segments tried, so more segments "
                f"may exist: try kRange {wider}."
            )
            k_reason = f"{k_reason} {range_note}"

    raw_labels, model = _final_labels(X, found, random_state)
    labels, model, n_segments, has_outliers = _relabel(raw_labels, model)
    if n_segments - int(has_outliers) < 1:
        raise InsufficientDataError(
            f"dbscan called every customer an outlier ({found.chosen.note}); "
            "give a larger eps or use kmeans"
        )
    lap("fit")

    with _thread_pools().limit(limits=1):
        trust = _trust(X, frame, labels, n_segments, found, encoder, model, random_state)
    if trust.structure is not None and not trust.structure.has_structure:
        k_reason += (
            " These segments separate no better than uniform data of the same shape would "
            "(gap statistic), so they are a convenient partition rather than distinct groups."
        )
    lap("explain")

    segment_ids = np.where(labels == NOISE, n_segments - 1, labels)
    outlier_segment = n_segments - 1 if has_outliers else None
    profiles, axes = profile_segments(frame, schema, segment_ids, n_segments, outlier_segment)
    sizes = np.bincount(segment_ids, minlength=n_segments)
    segments = [
        Segment(
            segment_id=i,
            name=profile.name,
            size=int(sizes[i]),
            share=float(sizes[i] / n),
            centroid=profile.centroid,
            categories=profile.categories,
            characteristics=profile.characteristics,
            confidence=float(trust.confidence[segment_ids == i].mean()),
            stability=float(trust.stability.per_segment[i]),
            ambiguous_share=float(trust.ambiguous[segment_ids == i].mean()),
            is_outliers=i == outlier_segment,
            standardized=profile.standardized,
        )
        for i, profile in enumerate(profiles)
    ]
    lap("profile")

    id_field = ingested.id_field
    if id_field is None:
        customer_ids = None
    elif isinstance(customers, pd.DataFrame):
        customer_ids = customers[id_field].tolist()
    else:
        customer_ids = [record.get(id_field) for record in customers]
    options = {
        "algorithm": chosen_algorithm.value, "n_clusters": n_clusters,
        "k_range": list(k_range) if k_range is not None else None,
        "features": list(features) if features is not None else None,
        "exclude": list(exclude), "random_state": random_state, "eps": eps,
        "min_samples": min_samples,
    }  # fmt: skip
    return Analysis(
        segments=tuple(segments),
        labels=segment_ids,
        confidence=trust.confidence,
        ambiguous=trust.ambiguous,
        customer_ids=customer_ids,
        feature_importance=trust.importance,
        accuracy=trust.accuracy,
        accuracy_method=ACCURACY_METHOD,
        metrics=trust.metrics,
        k_selection=KSelection(
            K_SELECTION_METHOD,
            found.candidates,
            found.chosen,
            k_reason,
            len(found.sample_index),
        ),
        data_quality=_data_quality(
            ingested,
            schema,
            encoder,
            axes,
            _warnings(ingested, schema, segments, trust) + ([range_note] if range_note else []),
        ),
        algorithm=found.chosen.algorithm.value,
        random_state=random_state,
        options=options,
        encoder=encoder,
        model=model,
        centers=trust.centers,
        projection=_projection(X, segment_ids, trust.centers, random_state),
        timings=timings,
    )
