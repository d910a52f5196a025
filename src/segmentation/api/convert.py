"""The HTTP edge's conversions: pydantic's validation errors as Problems, and clusters a
front end posts back as the core's segment summaries. Everything else between core objects
and JSON is `segmentation.serialize`."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

from segmentation.errors import InvalidInputError, Problem
from segmentation.pipeline.ingest import describe
from segmentation.recommend import SegmentSummary
from segmentation.results import Outcome

__all__ = ["outcomes_from_wire", "problems_from_validation", "summaries_from_wire"]


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
            outcomes={
                field: value.rate if value.rate is not None else value.mean
                for field, value in cluster.outcomes.items()
            },
            categories=_categories(getattr(cluster, "categories", None)),
            standardized=_standardized(getattr(cluster, "standardized", None)),
        )
        for cluster in clusters
    ]


def _categories(posted: Any) -> dict[str, dict[str, float]]:
    """A posted-back cluster's `categories` (an additive key the request model lets through
    unchecked), kept where it has the response's shape."""
    if not isinstance(posted, dict):
        return {}
    return {
        str(field): {str(level): float(share) for level, share in shares.items()
                     if isinstance(share, int | float) and not isinstance(share, bool)}
        for field, shares in posted.items()
        if isinstance(shares, dict)
    }  # fmt: skip


def _standardized(posted: Any) -> dict[str, float]:
    """A posted-back cluster's `standardized` (additive, unchecked), its numbers only."""
    if not isinstance(posted, dict):
        return {}
    return {
        str(field): float(value)
        for field, value in posted.items()
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    }


def outcomes_from_wire(outcomes: Sequence[Any]) -> list[Outcome]:
    """A posted-back analysis' outcome fields (schemas.OutcomeOut) as the core's."""
    return [
        Outcome(o.field, o.kind, o.positive, o.meaning, float("nan") if o.overall is None
                else o.overall)
        for o in outcomes
    ]  # fmt: skip
