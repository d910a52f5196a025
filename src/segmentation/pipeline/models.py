"""The clustering algorithms, each as a fitted model that can assign any customer.

Every model answers `assign(X)`: k-means and Ward by the nearest centroid, DBSCAN by the nearest
core customer within `eps` (else noise, label -1). That single operation serves the final fit
on all rows, prediction strength, permutation importance and, later, scoring new customers.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import numpy as np
from scipy.cluster.hierarchy import cut_tree, fcluster, linkage
from sklearn.cluster import DBSCAN, KMeans
from sklearn.neighbors import NearestNeighbors

__all__ = [
    "ASSIGN_BLOCK",
    "NOISE",
    "Algorithm",
    "CentroidModel",
    "DensityModel",
    "SegmentModel",
    "centroids_of",
    "choose_eps",
    "fit_dbscan",
    "fit_kmeans",
    "nearest_centroid",
    "sample_kmeans",
    "ward_labels",
    "ward_tree",
]

NOISE = -1
# Assignment runs in blocks so that the distance matrix stays small: O(block x k) memory.
ASSIGN_BLOCK = 65_536


class Algorithm(StrEnum):
    """The clustering methods a caller can ask for."""

    #: the best of the methods below by stability, then silhouette (see search.py)
    AUTO = "auto"
    #: k-means (Lloyd, k-means++ starts): round segments of similar spread
    KMEANS = "kmeans"
    #: Ward agglomerative clustering: nested segments, uneven sizes
    HIERARCHICAL = "hierarchical"
    #: DBSCAN with eps from the knee of the k-distance curve: any shape, noise as Outliers
    DBSCAN = "dbscan"


def nearest_centroid(X: np.ndarray, centers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Label of the nearest center per row and the sorted distances to the two nearest."""
    labels = np.empty(len(X), dtype=np.int64)
    two_nearest = np.empty((len(X), 2))
    center_norms = (centers**2).sum(axis=1)
    for start in range(0, len(X), ASSIGN_BLOCK):
        block = X[start : start + ASSIGN_BLOCK]
        squared = (block**2).sum(axis=1)[:, None] - 2 * block @ centers.T + center_norms[None, :]
        # an empty segment's centre is +inf: inf - inf is nan, which must lose, not win
        squared = np.nan_to_num(squared, nan=np.inf)
        np.maximum(squared, 0, out=squared)
        labels[start : start + len(block)] = squared.argmin(axis=1)
        if centers.shape[0] > 1:
            part = np.partition(squared, 1, axis=1)[:, :2]
        else:
            part = np.column_stack([squared[:, 0], np.full(len(block), np.inf)])
        two_nearest[start : start + len(block)] = np.sqrt(part)
    return labels, two_nearest


def centroids_of(X: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """Mean of each label 0..k-1 (noise excluded); an empty label gets +inf so it never wins."""
    centers = np.full((k, X.shape[1]), np.inf)
    for label in range(k):
        members = labels == label
        if members.any():
            centers[label] = X[members].mean(axis=0)
    return centers


@dataclass(frozen=True)
class CentroidModel:
    """Segments as centroids: a customer belongs to the nearest one."""

    centers: np.ndarray

    @property
    def n_segments(self) -> int:
        return len(self.centers)

    def assign(self, X: np.ndarray) -> np.ndarray:
        return nearest_centroid(X, self.centers)[0]


@dataclass(frozen=True)
class DensityModel:
    """Segments as dense regions: a customer within `eps` of a core customer joins its segment."""

    core_points: np.ndarray
    core_labels: np.ndarray
    eps: float
    min_samples: int
    n_segments: int

    def assign(self, X: np.ndarray) -> np.ndarray:
        if len(self.core_points) == 0:
            return np.full(len(X), NOISE, dtype=np.int64)
        index = NearestNeighbors(n_neighbors=1).fit(self.core_points)
        distance, nearest = index.kneighbors(X)
        labels = self.core_labels[nearest[:, 0]].astype(np.int64)
        labels[distance[:, 0] > self.eps] = NOISE
        return np.asarray(labels, dtype=np.int64)


SegmentModel = CentroidModel | DensityModel


def fit_kmeans(
    X: np.ndarray,
    k: int,
    random_state: int,
    n_init: int = 4,
    init: np.ndarray | None = None,
) -> tuple[np.ndarray, CentroidModel]:
    """k-means labels and model; `init` centers (from a sample) make large fits one start."""
    kmeans = KMeans(
        n_clusters=k,
        init=init if init is not None else "k-means++",
        n_init=1 if init is not None else n_init,
        random_state=random_state,
        # centred in place and restored, instead of a copy of X (80 MB at 1,000,000
        # customers); the restored values may differ in the last bit
        copy_x=False,
    ).fit(X)
    return kmeans.labels_.astype(np.int64), CentroidModel(kmeans.cluster_centers_)


def sample_kmeans(
    X: np.ndarray,
    k: int,
    random_state: int,
    n_init: int = 2,
    max_iter: int = 100,
    tolerance: float = 0.0,
) -> tuple[np.ndarray, CentroidModel]:
    """k-means (k-means++ starts, Lloyd iterations) for the small samples of the search.

    The search and the bootstrap fit k-means hundreds of times on at most 2,000 rows. There
    scikit-learn's KMeans spends ~3 ms per call on validation and thread-pool set-up around
    ~0.2 ms of arithmetic; this plain version does the same arithmetic without it (tested to
    reach the same inertia), about 60 us per Lloyd iteration at 2,000 x 10. Final fits on all
    rows use scikit-learn.

    With `tolerance` > 0 the iterations stop once at most that share of the rows changes
    segment: the last third of Lloyd's iterations typically moves a handful of customers,
    which the half-sample fits of prediction strength do not need.
    """
    allowed = int(tolerance * len(X))
    rng = np.random.default_rng(random_state)
    n = len(X)
    squared_norms = np.einsum("ij,ij->i", X, X)
    rows = np.arange(n)
    best_inertia, best_labels, best_centers = np.inf, np.zeros(n, dtype=np.int64), X[:k]
    for _ in range(n_init):
        centers = _plusplus(X, k, rng, squared_norms)
        previous = None
        for _ in range(max_iter):
            # 0.5 |c|^2 - x.c orders centres as |x - c|^2 does, with one operation fewer
            scores = X @ centers.T
            np.subtract(0.5 * np.einsum("ij,ij->i", centers, centers), scores, out=scores)
            labels = scores.argmin(axis=1)
            # unchanged assignments are a fixed point of Lloyd's iteration
            if previous is not None and (
                np.array_equal(labels, previous)
                or (allowed and np.count_nonzero(labels != previous) <= allowed)
            ):
                break
            previous = labels
            members = np.zeros((n, k))
            members[rows, labels] = 1.0
            counts = np.bincount(labels, minlength=k)
            # an emptied segment keeps its centre rather than vanishing
            centers = np.where(
                counts[:, None] > 0, (members.T @ X) / np.maximum(counts, 1)[:, None], centers
            )
        inertia = float(np.maximum(squared_norms + 2 * scores[rows, labels], 0).sum())
        if inertia < best_inertia:
            best_inertia, best_labels, best_centers = inertia, labels, centers
    return best_labels.astype(np.int64), CentroidModel(best_centers)


def _plusplus(
    X: np.ndarray, k: int, rng: np.random.Generator, squared_norms: np.ndarray
) -> np.ndarray:
    """Greedy k-means++ seeding (Arthur & Vassilvitskii 2007, as scikit-learn does it): each
    new centre is the best of 2 + log(k) draws weighted by squared distance to the nearest
    centre so far."""
    trials = 2 + int(np.log(k))
    centers = np.empty((k, X.shape[1]))
    centers[0] = X[rng.integers(len(X))]
    closest = np.maximum(squared_norms - 2 * X @ centers[0] + (centers[0] ** 2).sum(), 0)
    for i in range(1, k):
        total = closest.sum()
        if total <= 0:
            centers[i] = X[rng.integers(len(X))]
            continue
        # draws weighted by `closest` (rng.choice with p= validates p at every call: slower)
        cumulative = np.cumsum(closest)
        candidates = np.minimum(
            np.searchsorted(cumulative, rng.random(trials) * cumulative[-1]), len(X) - 1
        )
        distance = np.maximum(
            squared_norms[:, None] - 2 * X @ X[candidates].T + squared_norms[candidates], 0
        )
        updated = np.minimum(closest[:, None], distance)
        best = int(updated.sum(axis=0).argmin())
        centers[i] = X[candidates[best]]
        closest = updated[:, best]
    return centers


def ward_tree(X: np.ndarray) -> np.ndarray:
    """The Ward merge tree (scipy linkage); O(n^2) memory, so callers pass a bounded sample."""
    return np.asarray(linkage(X, method="ward"))


def ward_labels(tree: np.ndarray, k: int) -> np.ndarray:
    """Cut a Ward tree into exactly k segments labelled 0..k-1.

    fcluster is fast but gives fewer than k segments when merge heights tie (evenly spaced
    customers); cut_tree always gives k but costs ~15x more, so it is the fallback.
    """
    labels = fcluster(tree, k, criterion="maxclust").astype(np.int64) - 1
    if labels.max() + 1 < k:
        labels = cut_tree(tree, n_clusters=k).ravel().astype(np.int64)
    return np.asarray(labels, dtype=np.int64)


def choose_eps(X: np.ndarray, min_samples: int) -> float:
    """eps at the knee of the sorted k-distance curve (Ester et al.'s heuristic, made automatic).

    The knee is the point farthest from the chord joining the curve's ends (Kneedle).
    """
    neighbors = NearestNeighbors(n_neighbors=min(min_samples, len(X) - 1)).fit(X)
    distances = np.sort(neighbors.kneighbors(X)[0][:, -1])
    if distances[-1] <= distances[0]:
        return float(distances[-1]) or 1e-9
    x = np.linspace(0.0, 1.0, len(distances))
    y = (distances - distances[0]) / (distances[-1] - distances[0])
    knee = int(np.argmax(x - y))
    return float(distances[knee]) or 1e-9


def fit_dbscan(X: np.ndarray, eps: float, min_samples: int) -> tuple[np.ndarray, DensityModel]:
    """DBSCAN labels (noise -1) and a model that assigns new rows to the nearest core."""
    dbscan = DBSCAN(eps=eps, min_samples=min_samples).fit(X)
    labels = dbscan.labels_.astype(np.int64)
    core = dbscan.core_sample_indices_
    model = DensityModel(
        core_points=X[core],
        core_labels=labels[core],
        eps=eps,
        min_samples=min_samples,
        n_segments=int(labels.max() + 1) if labels.size else 0,
    )
    return labels, model
