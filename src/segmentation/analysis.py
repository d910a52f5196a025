"""`analyze`: the pipeline stages composed, from customers to a typed `Analysis`.

Each stage lives in `pipeline/` (ingest, schema, features, search, fit, explain, profile,
quality); this module only runs them in order, times them and reports progress.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from threadpoolctl import ThreadpoolController

from segmentation.assign import FittedSegmentation, fitted_of
from segmentation.errors import InsufficientDataError, InvalidInputError, Problem
from segmentation.options import DEFAULT_K_RANGE, MAX_K, AnalysisOptions
from segmentation.pipeline.explain import Trust, measure_trust, projection
from segmentation.pipeline.features import FeatureEncoder
from segmentation.pipeline.fit import FittedSegments, fit_segments, warm_start
from segmentation.pipeline.ingest import IngestedCustomers, exact_int64, ingest
from segmentation.pipeline.lineage import (
    DriftReference,
    Lineage,
    PreviousSegmentation,
    drift_reference,
    field_drift,
    follow,
)
from segmentation.pipeline.models import Algorithm
from segmentation.pipeline.profile import profile_segments
from segmentation.pipeline.quality import data_quality, warnings
from segmentation.pipeline.schema import Schema, clean, infer_schema
from segmentation.pipeline.search import (
    SEARCH_SAMPLE_SIZE,
    SearchResult,
    count_distinct,
    k_values,
    search,
)
from segmentation.results import (
    ACCURACY_METHOD,
    K_SELECTION_METHOD,
    Analysis,
    KSelection,
    Outcome,
    Segment,
)

__all__ = ["DEFAULT_K_RANGE", "MAX_K", "analyze", "previous_segmentation"]

Progress = Callable[[str, float], None]
# when a stage ends: the stage that begins, and the share of a large analysis' time done
# (measured on a 1,000,000-customer job; "storing" is the caller's)
NEXT_STAGE = {
    "features": ("search", 0.3), "search": ("fit", 0.55), "fit": ("explain", 0.65),
    "explain": ("profile", 0.75), "profile": ("storing", 0.9),
}  # fmt: skip


# customers from which the final fit uses every core
PARALLEL_FIT_ROWS = 200_000


@functools.cache
def _thread_pools() -> ThreadpoolController:
    """BLAS/OpenMP pools, inspected once per process: inspection costs ~4 ms per call."""
    return ThreadpoolController()


class _Clock:
    """Stage timings (seconds) and the caller's progress callback, called as stages begin."""

    def __init__(self, progress: Progress | None) -> None:
        self.progress = progress
        self.timings: dict[str, float] = {}
        self.started = time.perf_counter()

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.timings[stage] = round(now - self.started, 4)
        self.started = now
        if self.progress is not None:
            self.progress(*NEXT_STAGE[stage])


@dataclass(frozen=True)
class _Prepared:
    """The customers checked, their schema, the fitted encoder and the feature matrix."""

    customers: IngestedCustomers
    schema: Schema
    encoder: FeatureEncoder
    X: np.ndarray
    #: the input row of each canonical position (see `_canonical_order`)
    order: np.ndarray
    #: what reading the customers left out or changed (a file's blank rows, repeated ids)
    notes: tuple[str, ...] = ()

    def restore(self, values: np.ndarray) -> np.ndarray:
        """Per-customer values from canonical order back to input order."""
        restored = np.empty_like(values)
        restored[self.order] = values
        return restored


def _canonical_order(frame: pd.DataFrame, schema: Schema) -> np.ndarray:
    """Rows sorted by a hash of their features (in the schema's order, by name): every random
    step (search samples, half-sample splits, k-means starts) then sees the same rows in the
    same order however the input's rows and columns were ordered, and whatever fields it does
    not use, so a shuffled file gives the same segments. Rows alike on every feature are
    interchangeable."""
    try:
        digest = content_digest(frame[[spec.name for spec in schema.features]])
    except TypeError:  # a cell pandas cannot hash: the input order is kept
        return np.arange(len(frame))
    return np.argsort(digest, kind="stable")


def content_digest(frame: pd.DataFrame) -> np.ndarray:
    """`pd.util.hash_pandas_object(frame, index=False)`, the same numbers (tested), in less
    time for a column of whole numbers held as Python objects (the ids as sent).

    pandas hashes such a column as the text of each number, made by Python one number at a
    time after a factorization of all of them. Here Arrow writes the texts and they are
    hashed without the factorization, which only pays off for repeated values (a million
    customers with an id, two text fields and numbers: 0.90 s with pandas, 0.47 s here). The
    columns' hashes are then combined as pandas combines them (CPython's tuple hash)."""
    hashes: list[np.ndarray] = []
    for _, column in frame.items():
        whole = exact_int64(column) if column.dtype == object else None
        if whole is not None:
            texts = pa.array(whole).cast(pa.string()).to_numpy(zero_copy_only=False)
            hashes.append(pd.util.hash_array(texts, categorize=False))
        else:
            hashes.append(pd.util.hash_pandas_object(column, index=False).to_numpy())
    combined = np.full(len(frame), 0x345678, dtype=np.uint64)
    multiplier = np.uint64(1000003)
    for position, column_hash in enumerate(hashes):
        remaining = len(hashes) - position
        combined ^= column_hash
        combined *= multiplier
        multiplier += np.uint64(82520 + 2 * remaining)
    return combined + np.uint64(97531)


def _prepare(
    customers: pd.DataFrame | Sequence[Mapping[str, Any]],
    options: AnalysisOptions,
    max_fields: int | None,
    input_notes: Sequence[str] = (),
) -> _Prepared:
    ingested = ingest(customers, duplicate_ids=options.duplicate_ids)
    n_fields = len(ingested.frame.columns) + len(ingested.nested_fields)
    if max_fields is not None and n_fields > max_fields:
        raise InvalidInputError(
            Problem(f"customers have {n_fields} fields, more than the limit of {max_fields}")
        )
    schema = infer_schema(
        ingested, features=options.features, exclude=options.exclude, outcomes=options.outcomes,
        random_state=options.random_state,
    )  # fmt: skip
    if not schema.features:
        reasons = "; ".join(f"{f.name!r}: {f.reason}" for f in schema.fields) or "no fields at all"
        raise InvalidInputError(Problem(f"no usable feature field ({reasons})"))
    cleaned = clean(ingested.frame, schema)
    order = _canonical_order(cleaned, schema)
    frame = cleaned.iloc[order].reset_index(drop=True)
    ingested = replace(ingested, frame=frame)
    encoder = FeatureEncoder(schema, options.random_state).fit(frame)
    notes = (*input_notes, *ingested.notes)
    return _Prepared(ingested, schema, encoder, encoder.transform(frame), order, notes)


def _search(prepared: _Prepared, options: AnalysisOptions, sample_size: int) -> SearchResult:
    X = prepared.X
    distinct = count_distinct(X, MAX_K + 1, options.random_state)
    if distinct < 2:
        names = ", ".join(s.name for s in prepared.schema.features)
        raise InsufficientDataError(
            f"all customers are identical on the fields used ({names}); there is nothing to segment"
        )
    ks = k_values(options.n_clusters, options.k_range, len(X), distinct, DEFAULT_K_RANGE)
    # Dozens of fits on a sample of at most a few thousand rows: OpenMP threads cost more to
    # wake than they save there, and contend with the other worker processes.
    with _thread_pools().limit(limits=1):
        return search(
            X, algorithm=Algorithm(options.algorithm), k_values=ks,
            random_state=options.random_state, sample_size=sample_size, eps=options.eps,
            min_samples=options.min_samples,
        )  # fmt: skip


def _k_reason(
    found: SearchResult, options: AnalysisOptions, trust: Trust
) -> tuple[str, str | None]:
    """The sentence of `kSelection.reason`, and the warning when k is the top of the range."""
    reason, range_note = found.reason, None
    low, high = options.k_range if options.k_range is not None else DEFAULT_K_RANGE
    tried = [c.k for c in found.candidates if c.algorithm is found.chosen.algorithm]
    if found.more_segments_possible and max(tried, default=0) == high < MAX_K:
        range_note = (
            f"k={found.chosen.k} is the largest number of segments tried, so more segments "
            f"may exist: try kRange {[low, min(MAX_K, 2 * high)]}."
        )
        reason = f"{reason} {range_note}"
    if trust.lacks_structure:
        reason += (
            " These segments separate no better than uniform data of the same shape would "
            "(gap statistic), so they are a convenient partition rather than distinct groups."
        )
    return reason, range_note


def _segments(
    prepared: _Prepared, fitted: FittedSegments, trust: Trust
) -> tuple[list[Segment], dict[str, str]]:
    ids = fitted.segment_ids
    profiles, axes = profile_segments(
        prepared.customers.frame, prepared.schema, ids, fitted.n_segments, fitted.outlier_segment
    )
    sizes = np.bincount(ids, minlength=fitted.n_segments)
    segments = [
        Segment(
            segment_id=i,
            name=profile.name,
            size=int(sizes[i]),
            share=float(sizes[i] / len(ids)),
            centroid=profile.centroid,
            categories=profile.categories,
            characteristics=profile.characteristics,
            outcomes=profile.outcomes,
            confidence=float(trust.confidence[ids == i].mean()),
            stability=float(trust.stability.per_segment[i]),
            ambiguous_share=float(trust.ambiguous[ids == i].mean()),
            is_outliers=i == fitted.outlier_segment,
            standardized=profile.standardized,
        )
        for i, profile in enumerate(profiles)
    ]
    return segments, axes


def _follow(
    prepared: _Prepared,
    fitted: FittedSegments,
    segments: list[Segment],
    previous: PreviousSegmentation,
    customer_ids: list[Any] | None,
    reference: DriftReference,
) -> tuple[list[Segment], np.ndarray, Lineage]:
    """Segment ids and names carried over from the previous analysis (see
    pipeline/lineage.py); returns the segments, every customer's segment id, the lineage."""
    frame, positions = prepared.customers.frame, fitted.segment_ids
    in_previous = previous.encode(frame)
    centres = np.array([in_previous[positions == i].mean(axis=0) for i in range(fitted.n_segments)])
    followed = follow(
        previous,
        positions=positions,
        customer_ids=customer_ids,
        centres_in_previous_space=centres,
        fresh_names=[s.name for s in segments],
        standardized=[s.standardized for s in segments],
        drift=field_drift(previous.reference, reference, frame, prepared.schema),
    )
    renamed = followed.lineage.renamed
    carried = [
        replace(s, segment_id=i, name=name, renamed_from=renamed.get(i))
        for s, i, name in zip(segments, followed.ids, followed.names, strict=True)
    ]
    return carried, np.array(followed.ids, dtype=np.int64)[positions], followed.lineage


def _customer_ids(
    customers: pd.DataFrame | Sequence[Mapping[str, Any]],
    id_field: str | None,
    rows: np.ndarray | None,
) -> list[Any] | None:
    """Each analysed customer's id as sent (the kept rows only, when `rows` says which)."""
    if id_field is None:
        return None
    if isinstance(customers, pd.DataFrame):
        ids = list(customers[id_field].tolist())
    else:
        ids = [record.get(id_field) for record in customers]
    return ids if rows is None else [ids[i] for i in rows.tolist()]


def _outcomes(frame: pd.DataFrame, schema: Schema) -> tuple[Outcome, ...]:
    """Each outcome field, with its rate or mean over every customer with a value."""
    found = []
    for spec in schema.outcomes:
        values = frame[spec.name].to_numpy(dtype=float, na_value=np.nan)
        present = values[~np.isnan(values)]
        overall = float(present.mean()) if present.size else float("nan")
        kind = "rate" if spec.positive is not None else "mean"
        found.append(Outcome(spec.name, kind, spec.positive, spec.meaning, overall))
    return tuple(found)


def previous_segmentation(
    source: Analysis | FittedSegmentation,
    *,
    analysis_id: str | None = None,
    customer_ids: Sequence[Any] | None = None,
    labels: np.ndarray | None = None,
) -> PreviousSegmentation:
    """What a refit needs of an earlier analysis: pass it as `analyze(..., previous=...)`.

    `source` is an `Analysis` (fresh, or loaded from the store) or its fitted model (the
    model.json a results folder holds). A model alone carries no customers, so its segments
    are followed by centroids unless `customer_ids` and `labels` (each customer's clusterId,
    as in assignments.csv) are given.
    """
    if isinstance(source, Analysis):
        customer_ids = source.customer_ids if customer_ids is None else customer_ids
        labels = source.labels if labels is None else labels
        source = fitted_of(source)
    ids = tuple(int(i) for i in source.ids)
    sizes = source.sizes or tuple(
        int((labels == i).sum()) if labels is not None else 0 for i in ids
    )
    return PreviousSegmentation(
        analysis_id=analysis_id,
        segment_ids=ids,
        names=source.names,
        sizes=dict(zip(ids, sizes, strict=True)),
        standardized=dict(zip(ids, source.standardized or ({},) * len(ids), strict=True)),
        customer_ids=customer_ids if labels is not None else None,
        labels=np.asarray(labels if labels is not None else [], dtype=np.int64),
        encoder=source.encoder,
        model=source.model,
        centers=source.centers,
        reference=source.reference,
        next_id=max(source.next_id, max(ids) + 1),
    )


def analyze(
    customers: pd.DataFrame | Sequence[Mapping[str, Any]],
    *,
    options: AnalysisOptions | None = None,
    max_fields: int | None = None,
    search_sample_size: int = SEARCH_SAMPLE_SIZE,
    progress: Progress | None = None,
    previous: PreviousSegmentation | Analysis | FittedSegmentation | None = None,
    input_notes: Sequence[str] = (),
    **option_values: Any,
) -> Analysis:
    """Segment customers and explain the result.

    Parameters
    ----------
    customers : a DataFrame or a list of dicts, one per customer; any fields.
    options : an `AnalysisOptions`; or give its fields as keywords (`n_clusters=4`,
        `algorithm="kmeans"`, `k_range=(2, 8)`, `features=[...]`, `exclude=[...]`,
        `random_state=0`, `eps`, `min_samples`: see `segmentation.options.OPTIONS`).
    max_fields : refuse customers with more fields than this (None: no limit). Field
        dependence is O(fields^2) and importance O(fields), so a service bounds them.
    search_sample_size : customers in the candidate search (and Ward's and DBSCAN's fits);
        every O(n^2) step is bounded by it.
    progress : called as `progress(stage, fraction)` as each stage begins (the fraction of the
        expected work done, 0..1); it may raise to abandon the analysis (a cancelled job).
    previous : the previous analysis of the same population (`previous_segmentation(...)`
        of an `Analysis`, or a stored one): segments keep their ids and names, and
        `lineage` reports who moved where and how fields drifted (pipeline/lineage.py).
    input_notes : what reading the customers' file noted (blank rows skipped, no header
        row), added to the data-quality warnings.

    Examples
    --------
    >>> from segmentation.synthetic import make_population
    >>> result = analyze(make_population(400, 3, random_state=0).frame, random_state=0)
    >>> len(result.segments), sorted(result.feature_importance)[:3]
    (3, ['age', 'gender', 'income'])
    """
    if options is None:
        options = AnalysisOptions(**option_values)
    elif option_values:
        raise TypeError("give options= or option keywords, not both")
    clock = _Clock(progress)
    if previous is not None and not isinstance(previous, PreviousSegmentation):
        previous = previous_segmentation(previous)
    prepared = _prepare(customers, options, max_fields, input_notes)
    if previous is not None:
        previous.check_fields([s.name for s in prepared.schema.features])
    clock.lap("features")
    found = _search(prepared, options, search_sample_size)
    clock.lap("search")
    # scikit-learn's final k-means runs OpenMP threads: below PARALLEL_FIT_ROWS they cost
    # more to wake (and spin on afterwards, against the other workers) than they save
    # (measured at 10,000 customers beside one busy process: 136 ms with them, 7 ms without)
    with _thread_pools().limit(limits=1 if len(prepared.X) < PARALLEL_FIT_ROWS else None):
        fitted = fit_segments(prepared.X, found, options.random_state)
    frame = prepared.customers.frame
    # Ward and DBSCAN are deterministic given the data: only k-means has a start to seed
    if previous is not None and found.chosen.algorithm is Algorithm.KMEANS:
        fitted, _ = warm_start(
            prepared.X, fitted, previous.positions_of(frame), options.random_state
        )
    clock.lap("fit")
    with _thread_pools().limit(limits=1):
        trust = measure_trust(
            prepared.X, frame, fitted, found, prepared.encoder, options.random_state
        )
    clock.lap("explain")
    segments, axes = _segments(prepared, fitted, trust)
    ids = _customer_ids(customers, prepared.customers.id_field, prepared.customers.rows)
    reference = drift_reference(frame, prepared.schema)
    labels, lineage = fitted.segment_ids, None
    if previous is not None:
        canonical_ids = None if ids is None else [ids[i] for i in prepared.order]
        segments, labels, lineage = _follow(
            prepared, fitted, segments, previous, canonical_ids, reference
        )
    clock.lap("profile")
    return _assemble(
        prepared, found, fitted, trust, segments, labels, axes, options, ids, clock.timings,
        reference=reference, lineage=lineage,
    )  # fmt: skip


def _assemble(
    prepared: _Prepared,
    found: SearchResult,
    fitted: FittedSegments,
    trust: Trust,
    segments: list[Segment],
    labels: np.ndarray,
    axes: dict[str, str],
    options: AnalysisOptions,
    customer_ids: list[Any] | None,
    timings: dict[str, float],
    *,
    reference: DriftReference,
    lineage: Lineage | None,
) -> Analysis:
    reason, range_note = _k_reason(found, options, trust)
    # an SVD of at most 5,000 rows: two OpenBLAS threads took ~15 ms to wake for 0.2 ms of work
    with _thread_pools().limit(limits=1):
        plane = projection(prepared.X, labels, trust.centers, options.random_state)
    notes = warnings(prepared.customers, prepared.schema, segments, trust)
    next_id = lineage.next_id if lineage is not None else max(s.segment_id for s in segments) + 1
    if lineage is not None and lineage.previous_labels is not None:
        before = np.array(lineage.previous_labels, dtype=object)
        lineage = replace(lineage, previous_labels=tuple(prepared.restore(before).tolist()))
    return Analysis(
        segments=tuple(segments), labels=prepared.restore(labels),
        confidence=prepared.restore(trust.confidence),
        ambiguous=prepared.restore(trust.ambiguous), customer_ids=customer_ids,
        feature_importance=trust.importance, accuracy=trust.accuracy,
        accuracy_method=ACCURACY_METHOD, metrics=trust.metrics,
        k_selection=KSelection(
            K_SELECTION_METHOD, found.candidates, found.chosen, reason, len(found.sample_index)
        ),
        data_quality=data_quality(
            prepared.customers, prepared.schema, prepared.encoder, axes,
            [*prepared.notes, *notes, *([range_note] if range_note else [])],
        ),
        algorithm=found.chosen.algorithm.value, random_state=options.random_state,
        options=options, encoder=prepared.encoder, model=fitted.model, centers=trust.centers,
        projection=plane,
        timings=timings, reference=reference, lineage=lineage, next_segment_id=next_id,
        outcomes=_outcomes(prepared.customers.frame, prepared.schema),
        input_rows=prepared.customers.rows,
    )  # fmt: skip
