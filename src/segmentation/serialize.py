"""The one place where the core's objects and their JSON meet, in both directions.

`analysis_to_wire` writes an `Analysis` as the seed's camelCase response (plus the additive
keys); `analysis_from_wire` reads a stored response back into an `Analysis`, so that charts,
the report and advice of a stored analysis take the same core object as a fresh one. No web
framework here: the HTTP layer, the job runner, the CLI and the store all use it.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import msgspec
import numpy as np
import orjson

from segmentation.assign import FittedSegmentation
from segmentation.errors import InvalidInputError, Problem
from segmentation.options import AnalysisOptions
from segmentation.pipeline.ingest import NonFiniteNumber
from segmentation.pipeline.lineage import FieldDrift, Lineage, SegmentEvent, Transition
from segmentation.pipeline.models import Algorithm
from segmentation.pipeline.search import Candidate
from segmentation.recommend import Recommendation
from segmentation.results import (
    Analysis,
    DataQuality,
    FieldReport,
    KSelection,
    Metrics,
    Outcome,
    Projection,
    Segment,
)

__all__ = [
    "analysis_from_wire",
    "analysis_to_wire",
    "customer_scores",
    "dumps",
    "parse_json",
    "recommendations_to_wire",
    "server_timing",
]


SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def _surrogate_problem(value: Any, path: tuple[Any, ...] = ()) -> Problem | None:
    """Where a lone UTF-16 surrogate sits (a key or a text value), as record and field."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return _located(
                "holds a lone UTF-16 surrogate (\\ud800-\\udfff), which is not text", path
            )
        return None
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(
        value, list
    ) else ()  # fmt: skip
    for key, item in items:
        if isinstance(key, str) and _surrogate_problem(key) is not None:
            return _located("is a field name with a lone UTF-16 surrogate", (*path, key))
        found = _surrogate_problem(item, (*path, key))
        if found is not None:
            return found
    return None


def _located(message: str, path: tuple[Any, ...]) -> Problem:
    if len(path) >= 2 and path[0] == "customerData" and isinstance(path[1], int):
        # the record's field that holds the text, however deep inside it
        return Problem(message, path[1], str(path[2]) if len(path) > 2 else None)
    return Problem(message, field=".".join(str(p) for p in path) or None)


def parse_json(body: bytes) -> Any:
    """JSON to Python; NaN/Infinity literals become `NonFiniteNumber` so they can be rejected
    with the record and field that hold them. msgspec, the fast path (integers of any size
    exact; 1.5x orjson, which also needed a scan for integers beyond 64 bits), refuses them
    outright, as it refuses numbers beyond a float and lone surrogates: Python's reader then
    reads the body, and the surrogates it accepts are refused here, located."""
    try:
        return msgspec.json.decode(body)
    except (msgspec.MsgspecError, RecursionError):
        pass
    try:
        parsed = json.loads(body, parse_constant=NonFiniteNumber)
        if SURROGATE_ESCAPE.search(body):
            problem = _surrogate_problem(parsed)
            if problem is not None:
                raise InvalidInputError(problem)
        return parsed
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


def _number(value: float, digits: int = 4) -> float | None:
    return round(value, digits) if math.isfinite(value) else None


def _candidate(candidate: Candidate, chosen: Candidate) -> dict[str, Any]:
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


def _cluster_outcomes(segment: Segment, kinds: Mapping[str, str]) -> dict[str, Any]:
    """{"Churn": {"rate": 0.59}} or {"Spend next year": {"mean": 120.5}} per outcome."""
    return {
        field: {kinds.get(field, "rate"): None if value is None else _number(value)}
        for field, value in segment.outcomes.items()
    }


def _outcomes_to_wire(outcomes: Sequence[Outcome]) -> list[dict[str, Any]]:
    return [
        {"field": o.field, "kind": o.kind, "positive": o.positive, "meaning": o.meaning,
         "overall": _number(o.overall)}
        for o in outcomes
    ]  # fmt: skip


def _cluster(segment: Segment, customers: list[Any], kinds: Mapping[str, str]) -> dict[str, Any]:
    return {
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
        "outcomes": _cluster_outcomes(segment, kinds),
        **({"renamedFrom": segment.renamed_from} if segment.renamed_from is not None else {}),
    }


def _metrics_to_wire(metrics: Metrics) -> dict[str, Any]:
    return {
        "silhouette": _number(metrics.silhouette),
        "calinskiHarabasz": _number(metrics.calinski_harabasz, 2),
        "daviesBouldin": _number(metrics.davies_bouldin),
        "surrogateFidelity": _number(metrics.surrogate_fidelity),
        "sampleSize": metrics.sample_size,
        "structureGap": _number(metrics.structure_gap),
        "structureGapError": _number(metrics.structure_gap_error),
    }


def _k_selection_to_wire(selection: KSelection) -> dict[str, Any]:
    return {
        "method": selection.method,
        "chosen": {"algorithm": selection.chosen.algorithm.value, "k": selection.chosen.k},
        "reason": selection.reason,
        "sampleSize": selection.sample_size,
        "candidates": [_candidate(c, selection.chosen) for c in selection.candidates],
    }


def _data_quality_to_wire(quality: DataQuality) -> dict[str, Any]:
    fields = [
        {
            "field": f.name,
            "role": f.role,
            "missing": f.missing,
            "handling": f.handling,
            **({"reason": f.reason} if f.reason else {}),
            **({"axis": f.axis} if f.axis else {}),
        }
        for f in quality.fields
    ]
    return {
        "records": quality.records,
        "fields": fields,
        "ignoredFields": [{"field": f.name, "reason": f.reason} for f in quality.ignored],
        "warnings": list(quality.warnings),
    }


def _lineage_to_wire(lineage: Lineage, names: Mapping[int, str]) -> dict[str, Any]:
    metric = "jaccard" if lineage.matched_by == "customers" else "distance"
    before = lineage.previous_names
    return {
        "previousAnalysisId": lineage.previous_analysis_id,
        "matchedBy": lineage.matched_by,
        "segments": [
            {
                "clusterId": e.cluster_id,
                "clusterName": None if e.cluster_id is None else names.get(e.cluster_id),
                "previousClusterId": e.previous_cluster_id,
                "previousClusterName": (
                    None if e.previous_cluster_id is None else before.get(e.previous_cluster_id)
                ),
                "event": e.event,
                metric: e.jaccard if metric == "jaccard" else e.distance,
            }
            for e in lineage.segments
        ],
        "transitions": [
            {"from": t.source, "to": t.target, "customers": t.customers}
            for t in lineage.transitions
        ],
        "customersCompared": lineage.customers_compared,
        "moved": lineage.moved,
        "drift": [
            {
                "field": d.field,
                "previousMean": None if d.previous_mean is None else _number(d.previous_mean),
                "mean": None if d.mean is None else _number(d.mean),
                "standardizedShift": (
                    None if d.standardized_shift is None else _number(d.standardized_shift)
                ),
                "psi": _number(d.psi),
            }
            for d in lineage.drift
        ],
        "nextClusterId": lineage.next_id,
    }


def customer_scores(analysis: Analysis, positions: range | None = None) -> list[dict[str, Any]]:
    """The `customerScores` rows of the customers at `positions` (all by default)."""
    ids = analysis.customer_ids
    before = analysis.lineage.previous_labels if analysis.lineage is not None else None
    rows = analysis.input_rows
    return [
        {
            "index": i if rows is None else int(rows[i]),
            **({"id": ids[i]} if ids is not None else {}),
            "clusterId": int(analysis.labels[i]),
            "confidence": round(float(analysis.confidence[i]), 4),
            "ambiguous": bool(analysis.ambiguous[i]),
            **({"previousClusterId": before[i]} if before is not None else {}),
        }
        for i in (range(analysis.n_customers) if positions is None else positions)
    ]


def analysis_to_wire(
    analysis: Analysis,
    records: Sequence[Mapping[str, Any]] | None,
    *,
    include_customers: bool = True,
    include_customer_scores: bool = False,
) -> dict[str, Any]:
    """The seed's response (clusters, featureImportance, accuracy) plus the additive keys."""
    clusters = []
    kinds = {o.field: o.kind for o in analysis.outcomes}
    # a Spark analysis holds only a sample of its customers: no per-customer lists
    include_customers = include_customers and not analysis.sample_only
    include_customer_scores = include_customer_scores and not analysis.sample_only
    for segment in analysis.segments:
        members = analysis.members(segment.segment_id)
        kept = analysis.input_positions(members).tolist()
        customers = [records[i] for i in kept] if include_customers and records else []
        clusters.append(_cluster(segment, customers, kinds))
    payload: dict[str, Any] = {
        "clusters": clusters,
        "featureImportance": {k: round(v, 6) for k, v in analysis.feature_importance.items()},
        "accuracy": _number(analysis.accuracy),
        "outcomes": _outcomes_to_wire(analysis.outcomes),
        "accuracyMethod": analysis.accuracy_method,
        "algorithm": analysis.algorithm,
        "metrics": _metrics_to_wire(analysis.metrics),
        "kSelection": _k_selection_to_wire(analysis.k_selection),
        "dataQuality": _data_quality_to_wire(analysis.data_quality),
        "randomState": analysis.random_state,
        "options": analysis.options.to_wire(),
    }
    if analysis.engine != "local":
        payload["engine"] = analysis.engine
    if analysis.lineage is not None:
        names = {segment.segment_id: segment.name for segment in analysis.segments}
        payload["lineage"] = _lineage_to_wire(analysis.lineage, names)
    if include_customer_scores:
        payload["customerScores"] = customer_scores(analysis)
    return payload


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
                        "percent": f.percent,
                    }
                    for f in r.figures
                ],
            }
            for r in advice
        ],
    }


def _float(value: Any) -> float:
    """A wire number back to float: null (not measured) is NaN again."""
    return float("nan") if value is None else float(value)


def _segment(cluster: Mapping[str, Any]) -> Segment:
    return Segment(
        segment_id=cluster["clusterId"],
        name=cluster["clusterName"],
        size=cluster["size"],
        share=cluster["share"],
        centroid=dict(cluster["centroid"]),
        categories={k: dict(v) for k, v in cluster["categories"].items()},
        characteristics=tuple(cluster["characteristics"]),
        confidence=cluster["confidence"],
        stability=_float(cluster["stability"]),
        ambiguous_share=cluster["ambiguousShare"],
        is_outliers=cluster["isOutliers"],
        standardized=dict(cluster.get("standardized", {})),
        renamed_from=cluster.get("renamedFrom"),
        outcomes={
            field: next(iter(value.values()), None)
            for field, value in cluster.get("outcomes", {}).items()
        },
    )


def _lineage_from_wire(lineage: Mapping[str, Any]) -> Lineage:
    segments = tuple(
        SegmentEvent(
            row["clusterId"],
            row["previousClusterId"],
            row["event"],
            row.get("jaccard"),
            row.get("distance"),
        )
        for row in lineage["segments"]
    )
    drift = tuple(
        FieldDrift(
            d["field"], d["previousMean"], d["mean"], d["standardizedShift"], _float(d["psi"])
        )
        for d in lineage["drift"]
    )
    return Lineage(
        previous_analysis_id=lineage["previousAnalysisId"],
        matched_by=lineage["matchedBy"],
        segments=segments,
        transitions=tuple(
            Transition(t["from"], t["to"], t["customers"]) for t in lineage["transitions"]
        ),
        customers_compared=lineage["customersCompared"],
        moved=lineage["moved"],
        drift=drift,
        next_id=lineage["nextClusterId"],
        previous_names={
            row["previousClusterId"]: row["previousClusterName"]
            for row in lineage["segments"]
            if row["previousClusterId"] is not None
        },
    )


def _candidate_from_wire(row: Mapping[str, Any]) -> Candidate:
    quartiles = row.get("predictionStrengthQuartiles") or (None, None)
    return Candidate(
        algorithm=Algorithm(row["algorithm"]),
        k=row["k"],
        silhouette=_float(row["silhouette"]),
        calinski_harabasz=_float(row["calinskiHarabasz"]),
        davies_bouldin=_float(row["daviesBouldin"]),
        prediction_strength=_float(row["predictionStrength"]),
        strength_quartiles=(_float(quartiles[0]), _float(quartiles[1])),
        noise_share=_float(row["noiseShare"]),
        note=row["note"],
    )


def _k_selection(selection: Mapping[str, Any]) -> KSelection:
    rows = selection["candidates"]
    candidates = tuple(_candidate_from_wire(row) for row in rows)
    chosen = next(c for c, row in zip(candidates, rows, strict=True) if row["chosen"])
    return KSelection(
        selection["method"], candidates, chosen, selection["reason"], selection["sampleSize"]
    )


def _data_quality(quality: Mapping[str, Any]) -> DataQuality:
    fields = tuple(
        FieldReport(
            f["field"], f["role"], f["missing"], f["handling"], f.get("reason", ""), f.get("axis")
        )
        for f in quality["fields"]
    )
    return DataQuality(quality["records"], fields, tuple(quality["warnings"]))


def _metrics(metrics: Mapping[str, Any]) -> Metrics:
    return Metrics(
        _float(metrics["silhouette"]),
        _float(metrics["calinskiHarabasz"]),
        _float(metrics["daviesBouldin"]),
        _float(metrics["surrogateFidelity"]),
        metrics["sampleSize"],
        _float(metrics.get("structureGap")),
        _float(metrics.get("structureGapError")),
    )


def analysis_from_wire(
    summary: Mapping[str, Any],
    *,
    labels: np.ndarray,
    confidence: np.ndarray,
    ambiguous: np.ndarray,
    customer_ids: Sequence[Any] | None,
    fitted: FittedSegmentation,
    projection: Projection,
) -> Analysis:
    """A stored analysis as the core object: its response (without the customers) and the
    per-customer arrays, the fitted pipeline and the projection stored beside it."""
    segments = tuple(_segment(c) for c in summary["clusters"])
    return Analysis(
        segments=segments,
        labels=labels,
        confidence=confidence,
        ambiguous=ambiguous,
        customer_ids=customer_ids,
        feature_importance=dict(summary["featureImportance"]),
        accuracy=_float(summary["accuracy"]),
        accuracy_method=summary["accuracyMethod"],
        metrics=_metrics(summary["metrics"]),
        k_selection=_k_selection(summary["kSelection"]),
        data_quality=_data_quality(summary["dataQuality"]),
        algorithm=summary["algorithm"],
        random_state=summary["randomState"],
        options=AnalysisOptions.from_wire(summary["options"]),
        encoder=fitted.encoder,
        model=fitted.model,
        centers=fitted.centers,
        projection=projection,
        reference=fitted.reference,
        lineage=_lineage_from_wire(summary["lineage"]) if "lineage" in summary else None,
        next_segment_id=fitted.next_id,
        outcomes=tuple(
            Outcome(o["field"], o["kind"], o["positive"], o["meaning"], _float(o["overall"]))
            for o in summary.get("outcomes", [])
        ),
    )
