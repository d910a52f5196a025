"""How far to trust a segmentation: accuracy, confidence, feature importance, fidelity.

- accuracy: resampling stability (Hennig's clusterboot). Refit the chosen method on bootstrap
  resamples, match each segment to its best counterpart by Jaccard similarity, average per
  segment, weight by segment size. Near 1 for well-separated segments, 0.5 or below for none.
- confidence: per customer, the simplified silhouette (b - a) / max(a, b), a the distance to
  its own segment's centre and b to the next nearest; O(n k).
- featureImportance: the share of customers whose segment changes when one original field is
  shuffled (one-hot and indicator columns of a field shuffled together), normalised to sum 1.
- surrogate fidelity: cross-validated accuracy of a depth-3 decision tree predicting the segment.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from sklearn.model_selection import KFold, cross_val_score
from sklearn.tree import DecisionTreeClassifier

from segmentation.pipeline.models import (
    NOISE,
    Algorithm,
    CentroidModel,
    SegmentModel,
    centroids_of,
    fit_dbscan,
    nearest_centroid,
    sample_kmeans,
    ward_labels,
    ward_tree,
)

__all__ = [
    "AMBIGUOUS_BELOW",
    "Stability",
    "confidence",
    "permutation_importance",
    "resampling_stability",
    "surrogate_fidelity",
]

# A customer whose simplified silhouette is below this sits about as close to another segment's
# centre as to its own (distance ratio a/b > 0.9).
AMBIGUOUS_BELOW = 0.1
BOOTSTRAP_RUNS = 10
BOOTSTRAP_SIZE = 1000
# Fewer customers than this cannot say whether segments reproduce: a resample of 2 customers
# split into 2 segments always "matches" perfectly. Accuracy is then unmeasured (null).
MIN_CUSTOMERS_FOR_ACCURACY = 20
IMPORTANCE_REPEATS = 3
SURROGATE_DEPTH = 3


def confidence(X: np.ndarray, labels: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """Simplified silhouette per customer in [-1, 1]; outliers (label -1) get 0."""
    if len(centers) < 2:
        return np.zeros(len(X))
    _, two_nearest = nearest_centroid(X, centers)
    own = np.zeros(len(X))
    clustered = labels != NOISE
    own[clustered] = np.linalg.norm(X[clustered] - centers[labels[clustered]], axis=1)
    # b is the nearest centre other than the customer's own
    nearest, second = two_nearest[:, 0], two_nearest[:, 1]
    other = np.where(np.isclose(own, nearest), second, nearest)
    denominator = np.maximum(np.maximum(own, other), 1e-12)
    scores = (other - own) / denominator
    scores[~clustered] = 0.0
    return np.clip(scores, -1.0, 1.0)


@dataclass(frozen=True)
class Stability:
    """Mean best-match Jaccard per segment over the bootstrap runs, and their size-weighted mean."""

    per_segment: np.ndarray
    overall: float
    runs: int
    resample_size: int


def _refit(
    algorithm: Algorithm, k: int, seed: int, eps: float | None, min_samples: int | None
) -> Callable[[np.ndarray], np.ndarray]:
    def run(X: np.ndarray) -> np.ndarray:
        if algorithm is Algorithm.KMEANS:
            return sample_kmeans(X, k, seed, n_init=2)[0]
        if algorithm is Algorithm.HIERARCHICAL:
            return ward_labels(ward_tree(X), k)
        assert eps is not None and min_samples is not None
        return fit_dbscan(X, eps, min_samples)[0]

    return run


def resampling_stability(
    X: np.ndarray,
    labels: np.ndarray,
    n_segments: int,
    *,
    algorithm: Algorithm,
    k: int,
    random_state: int,
    eps: float | None = None,
    min_samples: int | None = None,
) -> Stability:
    """clusterboot on bounded resamples; the Outliers segment (label -1) is matched like others.

    Segments are indexed 0..n_segments-1 with outliers last (index n_segments-1) when present.
    """
    rng = np.random.default_rng(random_state)
    n = len(X)
    if n < MIN_CUSTOMERS_FOR_ACCURACY:
        return Stability(np.full(n_segments, np.nan), float("nan"), 0, n)
    size = min(n, BOOTSTRAP_SIZE)
    has_noise = bool((labels == NOISE).any())
    segment_ids = np.where(labels == NOISE, n_segments - 1, labels) if has_noise else labels
    jaccard_sums = np.zeros(n_segments)
    counted = np.zeros(n_segments)
    runs = 0
    for run in range(BOOTSTRAP_RUNS):
        drawn = rng.choice(n, size=size, replace=True)
        # k segments need k distinct customers; with exactly k each is its own segment
        if len(np.unique(X[drawn], axis=0)) < k:
            continue
        refit_labels = _refit(algorithm, k, random_state + run + 1, eps, min_samples)(X[drawn])
        unique_drawn, first = np.unique(drawn, return_index=True)
        boot = refit_labels[first]
        original = segment_ids[unique_drawn]
        runs += 1
        for segment in np.unique(original):
            in_original = original == segment
            best = 0.0
            for other in np.unique(boot):
                in_boot = boot == other
                union = np.count_nonzero(in_original | in_boot)
                best = max(best, np.count_nonzero(in_original & in_boot) / union)
            jaccard_sums[segment] += best
            counted[segment] += 1
    per_segment = np.divide(jaccard_sums, counted, out=np.zeros(n_segments), where=counted > 0)
    sizes = np.bincount(segment_ids, minlength=n_segments).astype(float)
    # nothing measured is not "unstable": NaN, reported as null with a warning
    overall = float((per_segment * sizes).sum() / sizes.sum()) if runs else float("nan")
    return Stability(per_segment, overall, runs, size)


def permutation_importance(
    encoded: np.ndarray,
    groups: dict[str, slice],
    project: Callable[[np.ndarray], np.ndarray],
    model: SegmentModel,
    random_state: int,
) -> dict[str, float]:
    """Share of customers that change segment when a field is shuffled, normalised to sum 1.

    `encoded` is the pre-PCA matrix of a bounded sample; each field's columns (`groups`) are
    shuffled together with one permutation, so one-hot parts count as one field.
    """
    rng = np.random.default_rng(random_state)
    base = model.assign(project(encoded))
    changed = {}
    for name, columns in groups.items():
        shares = []
        for _ in range(IMPORTANCE_REPEATS):
            shuffled = encoded.copy()
            shuffled[:, columns] = encoded[rng.permutation(len(encoded))][:, columns]
            shares.append(np.mean(model.assign(project(shuffled)) != base))
        changed[name] = float(np.mean(shares))
    total = sum(changed.values())
    if total <= 0:
        return {name: 1.0 / len(changed) for name in changed}
    return {name: value / total for name, value in changed.items()}


def surrogate_fidelity(encoded: np.ndarray, labels: np.ndarray, random_state: int) -> float:
    """Cross-validated accuracy of a depth-3 tree that predicts the segment from the fields."""
    if len(np.unique(labels)) < 2 or len(labels) < 6:
        return 1.0
    tree = DecisionTreeClassifier(max_depth=SURROGATE_DEPTH, random_state=random_state)
    folds = KFold(n_splits=3, shuffle=True, random_state=random_state)
    return float(np.mean(cross_val_score(tree, encoded, labels, cv=folds)))


def model_centers(X: np.ndarray, labels: np.ndarray, model: SegmentModel) -> np.ndarray:
    """Segment centres in feature space: the model's own, or the members' mean for DBSCAN."""
    if isinstance(model, CentroidModel):
        return model.centers
    return centroids_of(X, labels, model.n_segments)
