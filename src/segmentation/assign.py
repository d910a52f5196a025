"""`assign`: score new customers into the segments of an earlier analysis.

The new customers go through the same checks as any input, then through the stored encoder
(same imputation values, log transforms, scales, category levels and weights, same PCA) and
the stored model (nearest centroid; for DBSCAN the nearest core customer within eps, else the
Outliers segment). A field the segments were learned on but the new customers lack is imputed
and reported; a category never seen before counts as no known level; a field holding another
kind of value than at learning time is an error naming the record and field.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from segmentation.errors import InvalidInputError, Problem
from segmentation.pipeline.explain import AMBIGUOUS_BELOW, confidence
from segmentation.pipeline.features import FeatureEncoder, numeric_values
from segmentation.pipeline.ingest import (
    MAX_PROBLEMS,
    CustomerColumns,
    IngestedCustomers,
    describe,
    ingest,
)
from segmentation.pipeline.lineage import DriftReference
from segmentation.pipeline.models import NOISE, CentroidModel, SegmentModel, nearest_centroid
from segmentation.pipeline.schema import FieldRole, FieldSpec, clean
from segmentation.pipeline.values import read_numbers, text_values
from segmentation.results import Analysis

__all__ = [
    "Assignment",
    "FittedSegmentation",
    "assign",
    "assignment_table",
    "fitted_of",
    "learned_numbers",
]


@dataclass(frozen=True)
class FittedSegmentation:
    """What scoring needs from an analysis: the encoder, the model, the segment centres, and
    per segment position (the model's numbering, outliers last) its name and its public id
    (`clusterId`; equal to the position unless a lineage kept earlier ids), and the position
    of the Outliers segment if there is one."""

    encoder: FeatureEncoder
    model: SegmentModel
    centers: np.ndarray
    segment_names: tuple[str, ...]
    outlier_segment: int | None
    segment_ids: tuple[int, ...] = ()
    # what the next refit follows the segments with (pipeline/lineage.py)
    sizes: tuple[int, ...] = ()
    standardized: tuple[dict[str, float], ...] = ()
    reference: DriftReference = field(default_factory=DriftReference)
    next_id: int = 0

    @property
    def ids(self) -> np.ndarray:
        """The public id of each position."""
        return np.array(self.segment_ids or range(len(self.segment_names)), dtype=np.int64)

    @property
    def names(self) -> dict[int, str]:
        return dict(zip(self.ids.tolist(), self.segment_names, strict=True))


@dataclass(frozen=True)
class Assignment:
    """Per new customer: segment id (`clusterId`), confidence and the ambiguous flag; the
    name of each segment id; warnings; and the customers as ingested (what an engine that
    profiles the scored customers where they live reads their fields from)."""

    labels: np.ndarray
    confidence: np.ndarray
    ambiguous: np.ndarray
    segment_names: dict[int, str]
    warnings: tuple[str, ...]
    customers: pd.DataFrame


def assignment_table(
    labels: np.ndarray,
    confidence: np.ndarray,
    ambiguous: np.ndarray,
    segment_names: Mapping[int, str],
    ids: Sequence[Any] | np.ndarray | None = None,
    index: np.ndarray | None = None,
) -> pd.DataFrame:
    """One row per customer: index (its position in the input as sent; `index` when rows
    were left out), id (if any), clusterId, clusterName, confidence, ambiguous; the shape of
    every assignments export (files, downloads, the CLI)."""
    columns: dict[str, Any] = {"index": np.arange(len(labels)) if index is None else index}
    if ids is not None:
        columns["id"] = ids if isinstance(ids, np.ndarray) else list(ids)
    columns["clusterId"] = labels
    columns["clusterName"] = pd.Series(labels).map(segment_names).to_numpy(dtype=object)
    columns["confidence"] = np.round(confidence, 4)
    columns["ambiguous"] = ambiguous
    return pd.DataFrame(columns)


def fitted_of(analysis: Analysis) -> FittedSegmentation:
    outliers = next((i for i, s in enumerate(analysis.segments) if s.is_outliers), None)
    return FittedSegmentation(
        analysis.encoder,
        analysis.model,
        analysis.centers,
        tuple(s.name for s in analysis.segments),
        outliers,
        tuple(s.segment_id for s in analysis.segments),
        tuple(s.size for s in analysis.segments),
        tuple(dict(s.standardized) for s in analysis.segments),
        analysis.reference,
        analysis.next_segment_id,
    )


def learned_numbers(encoder: FeatureEncoder) -> list[str]:
    """The fields the segments learned as numbers sent as numbers (not as text that reads
    as numbers: "$67,349", "29,85")."""
    return [
        e.spec.name
        for e in encoder.encodings_
        if e.spec.role is FieldRole.NUMERIC and e.spec.number_format is None
    ]


def _unreadable(raw: pd.Series, read: pd.Series, spec: FieldSpec) -> np.ndarray:
    """Which values of a field do not read as its numbers or dates, blanks and placeholder
    texts aside (those are missing values, as when the segments were learned)."""
    is_text = not pd.api.types.is_numeric_dtype(raw.dtype)
    stated = text_values(raw).values if is_text else raw
    if spec.role is FieldRole.DATE:
        values = numeric_values(read.to_frame(spec.name), spec)
    else:
        values = read_numbers(stated, spec.number_format)
    unreadable: np.ndarray = np.asarray(stated.notna()) & np.isnan(values)
    return unreadable


def _check_kinds(
    customers: IngestedCustomers, read: pd.DataFrame, encoder: FeatureEncoder
) -> list[Problem]:
    """Values of another kind than at learning time: text or true/false in a field learned
    from numbers, text that does not read as the numbers a field learned from text did, an
    unreadable date. `read` is the customers as their schema reads them."""
    frame = customers.frame
    problems = [
        Problem("holds an object or a list where the segments learned a value", field=name)
        for name in customers.nested_fields
        if any(e.spec.name == name for e in encoder.encodings_)
    ]
    for encoding in encoder.encodings_:
        spec = encoding.spec
        if spec.role is FieldRole.CATEGORICAL or spec.name not in frame:
            continue
        raw = frame[spec.name]
        if (
            spec.role is FieldRole.NUMERIC
            and spec.number_format is None
            and (
                spec.name in customers.boolean_fields
                or not pd.api.types.is_numeric_dtype(raw.dtype)
            )
        ):
            # "75000" as text, or true, where numbers were learned: refused, not converted
            unreadable = raw.notna().to_numpy()
        else:
            unreadable = _unreadable(raw, read[spec.name], spec)
        for position in np.flatnonzero(unreadable)[:MAX_PROBLEMS]:
            problems.append(
                Problem(
                    f"{describe(raw.iloc[position])} is not "
                    f"{'a date' if spec.role is FieldRole.DATE else 'a number'}, as this field "
                    "was when the segments were learned",
                    int(position),
                    spec.name,
                )
            )
    return problems


def assign(
    fitted: FittedSegmentation | Analysis,
    customers: pd.DataFrame | Sequence[Mapping[str, Any]] | CustomerColumns,
) -> Assignment:
    """Segment id, confidence and ambiguity of each new customer, in input order.

    Examples
    --------
    >>> from segmentation import analyze
    >>> from segmentation.synthetic import make_population
    >>> population = make_population(600, 3, random_state=0)
    >>> analysis = analyze(population.frame, random_state=0)
    >>> scored = assign(analysis, population.frame)
    >>> bool((scored.labels == analysis.labels).mean() >= 0.99)
    True
    """
    if isinstance(fitted, Analysis):
        fitted = fitted_of(fitted)
    encoder = fitted.encoder
    learned = dict.fromkeys(learned_numbers(encoder), "number")
    ingested = ingest(customers, min_customers=1, expected_kinds=learned)
    # read as the segments' customers were: text numbers, placeholders, spellings
    frame = clean(ingested.frame, encoder.schema)
    problems = _check_kinds(ingested, frame, encoder)
    if problems:
        raise InvalidInputError(problems)
    warnings = []
    absent = [e.spec.name for e in encoder.encodings_ if e.spec.name not in frame]
    if absent:
        warnings.append(
            f"Field(s) {', '.join(repr(name) for name in absent)} missing from every new "
            "customer; filled as at learning time (median, most frequent or missing level)."
        )
        frame = frame.assign(**dict.fromkeys(absent, np.nan))
    X = encoder.transform(frame)
    model = fitted.model
    if isinstance(model, CentroidModel) and np.array_equal(model.centers, fitted.centers):
        # the distances that place each customer also give its confidence
        raw, two_nearest = nearest_centroid(X, model.centers)
        scores = confidence(X, raw, fitted.centers, two_nearest)
    else:
        raw = model.assign(X)
        scores = confidence(X, raw, fitted.centers)
    outliers = fitted.outlier_segment
    positions = np.where(raw == NOISE, outliers if outliers is not None else 0, raw)
    return Assignment(
        labels=fitted.ids[positions],
        confidence=scores,
        ambiguous=(scores < AMBIGUOUS_BELOW) & (raw != NOISE),
        segment_names=fitted.names,
        warnings=tuple(warnings),
        customers=frame,
    )
