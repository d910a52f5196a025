"""The data-quality report of an analysis: every field's role and handling, and the warnings
a reader needs before trusting the segments."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from segmentation.pipeline.explain import MIN_CUSTOMERS_FOR_ACCURACY, NO_STRUCTURE_ACCURACY, Trust
from segmentation.pipeline.features import FeatureEncoder
from segmentation.pipeline.ingest import IngestedCustomers
from segmentation.pipeline.schema import Schema
from segmentation.pipeline.search import PREDICTION_STRENGTH_THRESHOLD, format_score
from segmentation.results import DataQuality, FieldReport, Segment

__all__ = ["LOW_ACCURACY", "data_quality", "warnings"]

LOW_ACCURACY = 0.6
SMALL_SEGMENT_SHARE = 0.02


def data_quality(
    customers: IngestedCustomers,
    schema: Schema,
    encoder: FeatureEncoder,
    axes: dict[str, str],
    notes: Sequence[str],
) -> DataQuality:
    encoded = encoder.describe()
    reports = []
    frame = customers.frame
    for spec in schema.fields:
        # missing as read: blanks and placeholders count (ids and ignored fields as sent)
        missing = int(frame[spec.name].isna().sum()) if spec.name in frame else 0
        handling = "; ".join(n for n in (*spec.notes, encoded.get(spec.name, "")) if n)
        reports.append(
            FieldReport(spec.name, str(spec.role), missing, handling, spec.reason,
                        axes.get(spec.name))
        )  # fmt: skip
    return DataQuality(len(frame), tuple(reports), tuple(notes))


def _accuracy_note(trust: Trust, n_customers: int) -> str | None:
    accuracy = trust.accuracy
    if np.isnan(accuracy) and n_customers < MIN_CUSTOMERS_FOR_ACCURACY:
        return (
            f"Accuracy cannot be measured with fewer than {MIN_CUSTOMERS_FOR_ACCURACY} "
            "customers: resamples that small say nothing about whether the segments reproduce."
        )
    if np.isnan(accuracy):
        return (
            "Accuracy could not be measured: no bootstrap resample held enough distinct "
            "customers to refit the segments."
        )
    if trust.lacks_structure and trust.structure is not None:
        return (
            "The segments separate no better than uniform data of the same shape would "
            f"(gap statistic gain {format_score(trust.structure.gain, 3)}, standard error "
            f"{format_score(trust.structure.standard_error, 3)}): these customers show no "
            f"cluster structure, so accuracy is capped at {NO_STRUCTURE_ACCURACY} and the "
            "segments are a convenient partition, not distinct groups."
        )
    if trust.weak_k_strength is not None:
        return (
            f"The number of segments ({len(trust.stability.per_segment)}) does not clearly "
            "reproduce on held-out halves of the customers (prediction strength "
            f"{format_score(trust.weak_k_strength)}, below {PREDICTION_STRENGTH_THRESHOLD}): "
            "another random state may find another number. Accuracy is capped at that "
            "strength; compare a few random states, or fix nClusters."
        )
    if accuracy < LOW_ACCURACY:
        return (
            f"Accuracy {accuracy:.2f} is low: the segments change when the data is resampled, "
            "so the customers may not form distinct groups."
        )
    return None


def warnings(
    customers: IngestedCustomers, schema: Schema, segments: Sequence[Segment], trust: Trust
) -> list[str]:
    """Ignored fields, duplicate customers, tiny segments and doubts about accuracy."""
    notes = [
        f"Field {spec.name!r} was ignored: {spec.reason}."
        for spec in schema.ignored
        if spec.reason not in ("excluded by the options", "not named in features")
    ]
    notes += [
        f"Field {spec.name!r} is an outcome: its {'rate' if spec.positive else 'mean'} is "
        "reported per segment, and it is never used to segment."
        for spec in schema.outcomes
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
    accuracy_note = _accuracy_note(trust, len(customers.frame))
    if accuracy_note is not None:
        notes.append(accuracy_note)
    return notes
