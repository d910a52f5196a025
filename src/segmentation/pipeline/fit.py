"""The chosen segmentation on every customer: final labels, numbered by size, outliers last."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from segmentation.errors import InsufficientDataError
from segmentation.pipeline.models import (
    NOISE,
    Algorithm,
    CentroidModel,
    DensityModel,
    SegmentModel,
    fit_kmeans,
)
from segmentation.pipeline.search import SearchResult

__all__ = ["FittedSegments", "fit_segments", "relabel"]


@dataclass(frozen=True)
class FittedSegments:
    """Every customer's segment: `labels` with outliers as -1, `segment_ids` with outliers as
    the last segment, the model numbered the same way, and the segment count (outliers
    included)."""

    labels: np.ndarray
    segment_ids: np.ndarray
    model: SegmentModel
    n_segments: int
    has_outliers: bool

    @property
    def outlier_segment(self) -> int | None:
        return self.n_segments - 1 if self.has_outliers else None


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


def relabel(labels: np.ndarray, model: SegmentModel) -> tuple[np.ndarray, SegmentModel, int, bool]:
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


def fit_segments(X: np.ndarray, found: SearchResult, random_state: int) -> FittedSegments:
    """The search's choice applied to every customer; InsufficientDataError when DBSCAN
    called everyone an outlier."""
    raw, model = _final_labels(X, found, random_state)
    labels, model, n_segments, has_outliers = relabel(raw, model)
    if n_segments - int(has_outliers) < 1:
        raise InsufficientDataError(
            f"dbscan called every customer an outlier ({found.chosen.note}); "
            "give a larger eps or use kmeans"
        )
    segment_ids = np.where(labels == NOISE, n_segments - 1, labels)
    return FittedSegments(labels, segment_ids, model, n_segments, has_outliers)


# the fresh fit is kept over the warm start only when its inertia is this much lower
WARM_MARGIN = 0.01


def _inertia(X: np.ndarray, fitted: FittedSegments) -> float:
    assert isinstance(fitted.model, CentroidModel)
    centres = fitted.model.centers[fitted.labels]
    return float(((X - centres) ** 2).sum())


def warm_start(
    X: np.ndarray, fresh: FittedSegments, previous_positions: np.ndarray, random_state: int
) -> tuple[FittedSegments, bool]:
    """k-means seeded from last month's segments, against the fresh fit at the same k.

    The seeds are the centres, in this analysis' space, of the customers the previous model
    puts in each of its segments. When those segments still fit, Lloyd's iterations from them
    land on them again; the fresh fit (k-means++ restarts) is kept when its inertia is clearly
    lower (by WARM_MARGIN), so that a refit never locks in last month's local optimum.
    Returns the kept fit and whether it is the warm one.
    """
    if not isinstance(fresh.model, CentroidModel) or fresh.has_outliers:
        return fresh, False
    k = fresh.n_segments
    groups = [g for g in np.unique(previous_positions) if g != NOISE]
    if len(groups) != k:
        return fresh, False
    seeds = np.array([X[previous_positions == g].mean(axis=0) for g in groups])
    raw, seeded = fit_kmeans(X, k, random_state, init=seeds)
    labels, model, n_segments, has_outliers = relabel(raw, seeded)
    if n_segments != k:
        return fresh, False
    warm = FittedSegments(labels, labels, model, n_segments, has_outliers)
    if _inertia(X, fresh) < (1 - WARM_MARGIN) * _inertia(X, warm):
        return fresh, False
    return warm, True
