"""Which algorithm and how many segments: every candidate scored on a bounded sample.

The number of segments is chosen by prediction strength (Tibshirani & Walther, 2005): split the
sample in halves, segment each, and ask how often customers that the test half puts together
are also put together by the segmentation learned on the other half. The chosen k is the
largest whose worst segment keeps that agreement >= 0.8; among candidates with that k the one
with the best silhouette wins. Silhouette alone prefers 2 or 3 segments whenever real segments
overlap (it found the true k in 1 of 6 of our test populations; prediction strength in 5 of 6).

Every O(n^2) step (Ward's tree, silhouette) runs on the bounded sample only.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from sklearn.metrics import pairwise_distances

from segmentation.pipeline.models import (
    NOISE,
    Algorithm,
    CentroidModel,
    SegmentModel,
    centroids_of,
    choose_eps,
    fit_dbscan,
    sample_kmeans,
    ward_labels,
    ward_tree,
)

__all__ = ["PREDICTION_STRENGTH_THRESHOLD", "Candidate", "SearchResult", "search"]

PREDICTION_STRENGTH_THRESHOLD = 0.8
SEARCH_SAMPLE_SIZE = 2000
SILHOUETTE_SAMPLE_SIZE = 1000
# Half-splits per candidate: one when the halves hold 500+ customers, up to five for small
# samples, where a single split is noisy and fits are cheap.
STABILITY_CUSTOMERS = 1000
MAX_STABILITY_SPLITS = 5
# k-means restarts per fit: on the sample, and on each half-sample for prediction strength
SEARCH_N_INIT = 2
STABILITY_N_INIT = 2
# Below this many customers halves are too small to say anything: k falls back to silhouette.
MIN_CUSTOMERS_FOR_STABILITY = 20
# A test segment smaller than this cannot show co-membership reliably; it counts as unstable.
MIN_SEGMENT_FOR_STABILITY = 5
# A density segmentation must beat the best partition's silhouette by this much to be chosen,
# and may not call more than MAX_NOISE_SHARE of the customers outliers.
DENSITY_SILHOUETTE_MARGIN = 0.1
MAX_NOISE_SHARE = 0.3


@dataclass(frozen=True)
class Candidate:
    """One algorithm at one k, scored on the search sample."""

    algorithm: Algorithm
    k: int
    silhouette: float
    calinski_harabasz: float
    davies_bouldin: float
    prediction_strength: float
    noise_share: float = 0.0
    note: str = ""

    @property
    def is_stable(self) -> bool:
        return bool(self.prediction_strength >= PREDICTION_STRENGTH_THRESHOLD)


@dataclass(frozen=True)
class SearchResult:
    candidates: tuple[Candidate, ...]
    chosen: Candidate
    reason: str
    sample_index: np.ndarray
    sample_labels: np.ndarray
    model: SegmentModel
    dbscan_eps: float | None = None
    dbscan_min_samples: int | None = None


def prediction_strength(test_labels: np.ndarray, predicted: np.ndarray) -> float:
    """Worst share, over the test segments, of member pairs the other model also pairs."""
    strengths = []
    for label in np.unique(test_labels):
        if label == NOISE:
            continue
        members = predicted[test_labels == label]
        size = len(members)
        if size < MIN_SEGMENT_FOR_STABILITY:
            # too small to test is not a reproducible segment: skipping it would let k grow
            # until every tested segment is trivially stable
            return 0.0
        counts = np.bincount(members[members != NOISE])
        strengths.append(float((counts * (counts - 1)).sum()) / (size * (size - 1)))
    return min(strengths) if strengths else 0.0


def silhouette_from_distances(distances: np.ndarray, labels: np.ndarray) -> float:
    """Mean silhouette from a precomputed distance matrix; noise rows and columns left out.

    Equal to `sklearn.metrics.silhouette_score(..., metric="precomputed")` (tested), but one
    matrix product instead of per-call validation and chunking: the search calls it ~20 times.
    """
    clustered = labels != NOISE
    present = np.unique(labels[clustered])
    if not 2 <= len(present) < clustered.sum():
        return float("nan")
    codes = np.searchsorted(present, labels[clustered])
    members = np.zeros((len(codes), len(present)))
    members[np.arange(len(codes)), codes] = 1.0
    # the copy costs more than the product: only make it when there is noise to drop
    kept = distances if clustered.all() else distances[np.ix_(clustered, clustered)]
    sums = kept @ members
    sizes = members.sum(axis=0)
    own_size = sizes[codes]
    a = sums[np.arange(len(codes)), codes] / np.maximum(own_size - 1, 1)
    mean_to = sums / sizes[None, :]
    mean_to[np.arange(len(codes)), codes] = np.inf
    b = mean_to.min(axis=1)
    scores = np.where(own_size > 1, (b - a) / np.maximum(np.maximum(a, b), 1e-300), 0.0)
    return float(scores.mean())


def calinski_davies(X: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """Calinski-Harabasz and Davies-Bouldin indices (noise left out), O(n k) from centroids.

    Same formulas as scikit-learn's scorers (tested against them) without their per-call
    overhead, which dominated the search at 1,000 customers.
    """
    clustered = labels != NOISE
    X, labels = X[clustered], labels[clustered]
    present, codes = np.unique(labels, return_inverse=True)
    k, n = len(present), len(X)
    if not 2 <= k < n:
        return float("nan"), float("nan")
    sizes = np.bincount(codes).astype(float)
    centers = np.zeros((k, X.shape[1]))
    np.add.at(centers, codes, X)
    centers /= sizes[:, None]
    overall = X.mean(axis=0)
    between = float((sizes * ((centers - overall) ** 2).sum(axis=1)).sum())
    within_distances = np.linalg.norm(X - centers[codes], axis=1)
    within = float((within_distances**2).sum())
    calinski = 1.0 if within == 0 else between * (n - k) / (within * (k - 1))
    spread = np.bincount(codes, weights=within_distances) / sizes
    center_distances = np.linalg.norm(centers[:, None, :] - centers[None, :, :], axis=2)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = (spread[:, None] + spread[None, :]) / center_distances
    ratio[~np.isfinite(ratio)] = 0.0
    np.fill_diagonal(ratio, 0.0)
    davies = float(ratio.max(axis=1).mean())
    return calinski, davies


def clustering_scores(
    X: np.ndarray, labels: np.ndarray, distances: np.ndarray, silhouette_index: np.ndarray
) -> tuple[float, float, float]:
    """Silhouette (on the distance sample), Calinski-Harabasz and Davies-Bouldin; noise left out."""
    calinski, davies = calinski_davies(X, labels)
    return silhouette_from_distances(distances, labels[silhouette_index]), calinski, davies


# a candidate, its labels on the search sample, and its model
_Scored = tuple[Candidate, np.ndarray, SegmentModel]


class _Search:
    """State shared by the candidates: the sample, its halves and its distance matrix."""

    def __init__(self, X: np.ndarray, random_state: int, sample_size: int) -> None:
        self.random_state = random_state
        rng = np.random.default_rng(random_state)
        n = len(X)
        self.sample_index = np.sort(rng.choice(n, size=min(n, sample_size), replace=False))
        self.X = X[self.sample_index]
        m = len(self.X)
        self.silhouette_index = np.sort(
            rng.choice(m, size=min(m, SILHOUETTE_SAMPLE_SIZE), replace=False)
        )
        self.distances = pairwise_distances(self.X[self.silhouette_index])
        self.with_stability = m >= MIN_CUSTOMERS_FOR_STABILITY
        splits = max(1, min(MAX_STABILITY_SPLITS, STABILITY_CUSTOMERS // max(m, 1)))
        self.halves = [np.array_split(rng.permutation(m), 2) for _ in range(splits)]

    def candidate(
        self, algorithm: Algorithm, k: int, labels: np.ndarray, strength: float, note: str = ""
    ) -> Candidate:
        silhouette, ch, db = clustering_scores(
            self.X, labels, self.distances, self.silhouette_index
        )
        return Candidate(
            algorithm, k, silhouette, ch, db, strength,
            noise_share=float(np.mean(labels == NOISE)), note=note,
        )  # fmt: skip

    def _pair_strength(self, fit_a: SegmentModel, labels_b: np.ndarray, b: np.ndarray) -> float:
        return prediction_strength(labels_b, fit_a.assign(self.X[b]))

    def kmeans(self, ks: Sequence[int]) -> list[_Scored]:
        results: list[_Scored] = []
        for k in ks:
            labels, model = sample_kmeans(self.X, k, self.random_state, SEARCH_N_INIT)
            strength = float("nan")
            if self.with_stability:
                values = []
                for a, b in self.halves:
                    labels_a, model_a = sample_kmeans(
                        self.X[a], k, self.random_state, STABILITY_N_INIT
                    )
                    labels_b, model_b = sample_kmeans(
                        self.X[b], k, self.random_state, STABILITY_N_INIT
                    )
                    values.append(self._pair_strength(model_a, labels_b, b))
                    values.append(self._pair_strength(model_b, labels_a, a))
                strength = float(np.mean(values))
            results.append((self.candidate(Algorithm.KMEANS, k, labels, strength), labels, model))
        return results

    def hierarchical(self, ks: Sequence[int]) -> list[_Scored]:
        tree = ward_tree(self.X)
        half_trees = (
            [(ward_tree(self.X[a]), ward_tree(self.X[b])) for a, b in self.halves]
            if self.with_stability
            else []
        )
        results: list[_Scored] = []
        for k in ks:
            labels = ward_labels(tree, k)
            model = CentroidModel(centroids_of(self.X, labels, k))
            strength = float("nan")
            if self.with_stability:
                values = []
                for (a, b), (tree_a, tree_b) in zip(self.halves, half_trees, strict=True):
                    labels_a, labels_b = ward_labels(tree_a, k), ward_labels(tree_b, k)
                    model_a = CentroidModel(centroids_of(self.X[a], labels_a, k))
                    model_b = CentroidModel(centroids_of(self.X[b], labels_b, k))
                    values.append(self._pair_strength(model_a, labels_b, b))
                    values.append(self._pair_strength(model_b, labels_a, a))
                strength = float(np.mean(values))
            candidate = self.candidate(Algorithm.HIERARCHICAL, k, labels, strength)
            results.append((candidate, labels, model))
        return results

    def dbscan(
        self, eps: float | None, min_samples: int | None
    ) -> tuple[Candidate, np.ndarray, SegmentModel, float, int]:
        if min_samples is None:
            # Ester et al.'s rule of thumb (2 x dimensions, at least 5), kept below a quarter of
            # the sample so that small inputs can still have a dense core
            min_samples = min(max(5, 2 * self.X.shape[1]), max(2, len(self.X) // 4))
        eps = eps or choose_eps(self.X, min_samples)
        labels, model = fit_dbscan(self.X, eps, min_samples)
        k = model.n_segments
        strength = float("nan")
        # with fewer than 2 segments there is no co-membership to test, and it cannot win
        if self.with_stability and k >= 2:
            half_min = max(2, min_samples // 2)
            values = []
            for a, b in self.halves:
                labels_a, model_a = fit_dbscan(self.X[a], eps, half_min)
                labels_b, model_b = fit_dbscan(self.X[b], eps, half_min)
                values.append(self._pair_strength(model_a, labels_b, b))
                values.append(self._pair_strength(model_b, labels_a, a))
            strength = float(np.mean(values))
        note = f"eps={eps:.3g}, min_samples={min_samples}"
        candidate = self.candidate(Algorithm.DBSCAN, k, labels, strength, note)
        return candidate, labels, model, eps, min_samples


def _rank_key(candidate: Candidate) -> tuple[float, float]:
    silhouette = candidate.silhouette if np.isfinite(candidate.silhouette) else -1.0
    return (candidate.k, silhouette)


def _choose(
    partitions: list[Candidate], density: Candidate | None, with_stability: bool
) -> tuple[Candidate, str]:
    """The documented selection rule; returns the winner and a sentence saying why."""
    threshold = PREDICTION_STRENGTH_THRESHOLD
    if not with_stability:
        best = max(partitions, key=lambda c: c.silhouette if np.isfinite(c.silhouette) else -1)
        return best, (
            f"{best.algorithm} with k={best.k} has the best silhouette ({best.silhouette:.2f}); "
            f"with fewer than {MIN_CUSTOMERS_FOR_STABILITY} customers stability cannot be measured."
        )
    stable = [c for c in partitions if c.is_stable]
    if stable:
        best = max(stable, key=_rank_key)
        larger = [c for c in partitions if c.k > best.k]
        best_larger = max((c.prediction_strength for c in larger), default=0.0)
        why_not_larger = (
            f"; every larger k falls below it (best {best_larger:.2f})" if larger else ""
        )
        reason = (
            f"{best.algorithm} with k={best.k} is the largest number of segments that stays "
            f"reproducible: prediction strength {best.prediction_strength:.2f} >= {threshold}"
            f"{why_not_larger}; among k={best.k} candidates it has the best silhouette "
            f"({best.silhouette:.2f})."
        )
    else:
        best = max(partitions, key=lambda c: (c.prediction_strength, -c.k))
        reason = (
            f"No candidate reached prediction strength {threshold}, so the data has no clearly "
            f"reproducible segments; {best.algorithm} with k={best.k} is the most reproducible "
            f"({best.prediction_strength:.2f}). Treat these segments as a convenient partition."
        )
    if (
        density is not None
        and density.k >= 2
        and density.is_stable
        and density.noise_share <= MAX_NOISE_SHARE
        and np.isfinite(density.silhouette)
        and density.silhouette > best.silhouette + DENSITY_SILHOUETTE_MARGIN
    ):
        reason = (
            f"dbscan found {density.k} dense segments ({density.noise_share:.0%} outliers) with "
            f"silhouette {density.silhouette:.2f}, better than {best.algorithm} k={best.k} "
            f"({best.silhouette:.2f}) by more than {DENSITY_SILHOUETTE_MARGIN}, and stable "
            f"(prediction strength {density.prediction_strength:.2f})."
        )
        return density, reason
    return best, reason


def search(
    X: np.ndarray,
    *,
    algorithm: Algorithm,
    k_values: Sequence[int],
    random_state: int,
    sample_size: int = SEARCH_SAMPLE_SIZE,
    eps: float | None = None,
    min_samples: int | None = None,
) -> SearchResult:
    """Score every candidate on a bounded sample and choose one (see the module docstring)."""
    state = _Search(X, random_state, sample_size)
    # Two threads: the fits spend most of their time in numpy/scipy with the GIL released.
    # One task per k-means k, one for Ward (its tree serves every k), one for DBSCAN.
    with ThreadPoolExecutor(max_workers=2) as threads:
        ward = (
            threads.submit(state.hierarchical, k_values)
            if algorithm in (Algorithm.AUTO, Algorithm.HIERARCHICAL)
            else None
        )
        density = (
            threads.submit(state.dbscan, eps, min_samples)
            if algorithm in (Algorithm.AUTO, Algorithm.DBSCAN)
            else None
        )
        kmeans = (
            [threads.submit(state.kmeans, [k]) for k in k_values]
            if algorithm in (Algorithm.AUTO, Algorithm.KMEANS)
            else []
        )
        partition_results = [result for future in kmeans for result in future.result()]
        if ward is not None:
            partition_results += ward.result()
        density_result = density.result() if density is not None else None

    candidates = [c for c, _, _ in partition_results]
    if density_result is not None:
        candidates.append(density_result[0])
    if algorithm is Algorithm.DBSCAN:
        assert density_result is not None
        chosen, labels, model, used_eps, used_min = density_result
        reason = f"dbscan was requested; it found {chosen.k} dense segments ({chosen.note})."
        if chosen.k < 1:
            reason += " Every customer is an outlier at this density."
        return SearchResult(
            tuple(candidates), chosen, reason, state.sample_index, labels, model,
            used_eps, used_min,
        )  # fmt: skip

    chosen, reason = _choose(
        [c for c, _, _ in partition_results],
        density_result[0] if density_result else None,
        state.with_stability,
    )
    if density_result is not None and chosen is density_result[0]:
        _, labels, model, used_eps, used_min = density_result
        return SearchResult(
            tuple(candidates), chosen, reason, state.sample_index, labels, model,
            used_eps, used_min,
        )  # fmt: skip
    _, labels, model = next(r for r in partition_results if r[0] is chosen)
    return SearchResult(tuple(candidates), chosen, reason, state.sample_index, labels, model)
