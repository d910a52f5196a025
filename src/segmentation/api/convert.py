"""The one place where the core's dataclasses and the wire's camelCase JSON meet."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from pydantic import ValidationError

from segmentation.errors import InvalidInputError, Problem
from segmentation.pipeline.ingest import NonFiniteNumber, describe
from segmentation.recommend import Recommendation, SegmentSummary
from segmentation.results import Analysis

__all__ = [
    "analysis_to_wire",
    "dumps",
    "parse_json",
    "problems_from_validation",
    "recommendations_to_wire",
    "server_timing",
    "summaries_from_wire",
]


def parse_json(body: bytes) -> Any:
    """JSON to Python; NaN/Infinity literals become `NonFiniteNumber` so they can be rejected
    with the record and field that hold them (orjson, the fast path, refuses them outright)."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        pass
    try:
        return json.loads(body, parse_constant=NonFiniteNumber)
    except ValueError as error:  # also UnicodeDecodeError and integers of > 4300 digits
        raise InvalidInputError(f"the body is not valid JSON: {error}") from None
    except RecursionError:
        raise InvalidInputError("the body is nested too deeply to be customer data") from None


def dumps(payload: Any) -> bytes:
    try:
        return orjson.dumps(payload)
    except TypeError:
        # integers beyond 64 bits, which orjson refuses; rare enough for the slow path
        return json.dumps(payload, separators=(",", ":")).encode()


def problems_from_validation(error: ValidationError, root: str = "") -> InvalidInputError:
    """pydantic's errors as Problems: `options.nClusters` becomes field 'options.nClusters'."""
    problems = []
    for item in error.errors():
        location = [str(part) for part in item["loc"]]
        where = ".".join([root, *location] if root else location)
        value = item.get("input")
        shown = "" if isinstance(value, dict | list) else f" (got {describe(value)})"
        problems.append(Problem(f"{item['msg']}{shown}", field=where or None))
    return InvalidInputError(problems)


def _camel(name: str) -> str:
    """n_clusters -> nClusters: the core's option names as the wire spells them."""
    head, *rest = name.split("_")
    return head + "".join(word.title() for word in rest)


def _number(value: float, digits: int = 4) -> float | None:
    return round(value, digits) if math.isfinite(value) else None


def _candidate(candidate: Any, chosen: Any) -> dict[str, Any]:
    return {
        "algorithm": candidate.algorithm.value,
        "k": candidate.k,
        "predictionStrength": _number(candidate.prediction_strength),
        "predictionStrengthQuartiles": (
            [_number(q) for q in candidate.strength_quartiles]
            if math.isfinite(candidate.prediction_strength)
            else None
        ),
        "stable": bool(candidate.is_stable),
        "silhouette": _number(candidate.silhouette),
        "calinskiHarabasz": _number(candidate.calinski_harabasz, 2),
        "daviesBouldin": _number(candidate.davies_bouldin),
        "noiseShare": _number(candidate.noise_share),
        "note": candidate.note,
        "chosen": candidate is chosen,
    }


def analysis_to_wire(
    analysis: Analysis,
    records: Sequence[Mapping[str, Any]] | None,
    *,
    include_customers: bool = True,
    include_customer_scores: bool = False,
) -> dict[str, Any]:
    """The seed's response (clusters, featureImportance, accuracy) plus the additive keys."""
    clusters = []
    for segment in analysis.segments:
        members = analysis.members(segment.segment_id)
        customers = [records[i] for i in members] if include_customers and records else []
        clusters.append(
            {
                "clusterId": segment.segment_id,
                "customers": customers,
                "centroid": segment.centroid,
                "clusterName": segment.name,
                "characteristics": list(segment.characteristics),
                "size": segment.size,
                "share": round(segment.share, 4),
                "confidence": round(segment.confidence, 4),
                "stability": _number(segment.stability),
                "ambiguousShare": round(segment.ambiguous_share, 4),
                "isOutliers": segment.is_outliers,
                "categories": segment.categories,
                "standardized": {k: round(v, 4) for k, v in segment.standardized.items()},
            }
        )
    selection = analysis.k_selection
    quality = analysis.data_quality
    metrics = analysis.metrics
    payload: dict[str, Any] = {
        "clusters": clusters,
        "featureImportance": {k: round(v, 6) for k, v in analysis.feature_importance.items()},
        "accuracy": _number(analysis.accuracy),
        "accuracyMethod": analysis.accuracy_method,
        "algorithm": analysis.algorithm,
        "metrics": {
            "silhouette": _number(metrics.silhouette),
            "calinskiHarabasz": _number(metrics.calinski_harabasz, 2),
            "daviesBouldin": _number(metrics.davies_bouldin),
            "surrogateFidelity": _number(metrics.surrogate_fidelity),
            "sampleSize": metrics.sample_size,
            "structureGap": _number(metrics.structure_gap),
            "structureGapError": _number(metrics.structure_gap_error),
        },
        "kSelection": {
            "method": selection.method,
            "chosen": {"algorithm": selection.chosen.algorithm.value, "k": selection.chosen.k},
            "reason": selection.reason,
            "sampleSize": selection.sample_size,
            "candidates": [_candidate(c, selection.chosen) for c in selection.candidates],
        },
        "dataQuality": {
            "records": quality.records,
            "fields": [
                {
                    "field": f.name,
                    "role": f.role,
                    "missing": f.missing,
                    "handling": f.handling,
                    **({"reason": f.reason} if f.reason else {}),
                    **({"axis": f.axis} if f.axis else {}),
                }
                for f in quality.fields
            ],
            "ignoredFields": [{"field": f.name, "reason": f.reason} for f in quality.ignored],
            "warnings": list(quality.warnings),
        },
        "randomState": analysis.random_state,
        "options": {_camel(key): value for key, value in analysis.options.items()},
    }
    if include_customer_scores:
        ids = analysis.customer_ids
        payload["customerScores"] = [
            {
                "index": i,
                **({"id": ids[i]} if ids is not None else {}),
                "clusterId": int(analysis.labels[i]),
                "confidence": round(float(analysis.confidence[i]), 4),
                "ambiguous": bool(analysis.ambiguous[i]),
            }
            for i in range(analysis.n_customers)
        ]
    return payload


def summaries_from_wire(clusters: Sequence[Any]) -> list[SegmentSummary]:
    """Clusters posted back by a front end (schemas.ClusterIn) as the core's summaries."""
    problems = [
        Problem(
            "has neither 'size' nor 'customers', so its size is unknown",
            field=f"analysis.clusters.{i}",
        )
        for i, cluster in enumerate(clusters)
        if cluster.size is None and cluster.customers is None
    ]
    first_with: dict[int, int] = {}
    for i, cluster in enumerate(clusters):
        if cluster.clusterId in first_with:
            problems.append(
                Problem(
                    f"clusterId {cluster.clusterId} is also used by cluster "
                    f"{first_with[cluster.clusterId]}; each cluster needs its own id",
                    field=f"analysis.clusters.{i}.clusterId",
                )
            )
        first_with.setdefault(cluster.clusterId, i)
    if problems:
        raise InvalidInputError(problems)
    return [
        SegmentSummary(
            cluster_id=cluster.clusterId,
            name=cluster.clusterName,
            size=cluster.size if cluster.size is not None else len(cluster.customers),
            centroid=cluster.centroid,
            characteristics=cluster.characteristics,
            stability=cluster.stability,
            is_outliers=cluster.isOutliers,
        )
        for cluster in clusters
    ]


def server_timing(timings: Mapping[str, float]) -> str:
    """Stage durations as a Server-Timing header (`search;dur=85.0, ...`, milliseconds): kept
    out of the body so that the same input and seed give a byte-identical body."""
    return ", ".join(f"{stage};dur={seconds * 1000:.1f}" for stage, seconds in timings.items())


def recommendations_to_wire(advice: Sequence[Recommendation]) -> dict[str, Any]:
    return {
        "recommendations": [r.text for r in advice],
        "actions": [
            {
                "segment": r.segment,
                "clusterId": r.cluster_id,
                "action": r.action,
                "rationale": r.rationale,
                "priority": r.priority,
                "impact": round(r.impact, 4),
                "figures": [
                    {
                        "label": f.label,
                        "value": _number(f.value, 6),
                        "average": _number(f.average, 6),
                        "direction": f.direction.value,
                    }
                    for f in r.figures
                ],
            }
            for r in advice
        ],
    }
