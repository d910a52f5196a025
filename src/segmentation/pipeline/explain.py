"""How far to trust a segmentation: accuracy, confidence, feature importance, fidelity.

- accuracy: resampling stability (Hennig's clusterboot). Refit the chosen method on bootstrap
  resamples, match each segment to its best counterpart by Jaccard similarity, average per
  segment, weight by segment size. Near 1 for well-separated segments, 0.5 or below for none.
- confidence: per customer, the simplified silhouette (b - a) / max(a, b), a the distance to
  its own segment's centre and b to the next nearest; O(n k).
- featureImportance: the share of customers whose segment changes when one original field is
  shuffled (one-hot and indicator columns of a field shuffled together), normalised to sum 1.
- surrogate fidelity: cross-validated accuracy of a depth-3 decision tree predicting the segment.
- structure: the gap statistic of the segments against uniform data of the same shape; a cut
  of structureless data can be perfectly reproducible (a uniform square splits into the same
  four quadrants every time), so stability alone cannot say there are segments.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from segmentation.pipeline.features import FeatureEncoder
from segmentation.pipeline.fit import FittedSegments
from segmentation.pipeline.models import (
    ASSIGN_BLOCK,
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
from segmentation.pipeline.search import (
    PREDICTION_STRENGTH_THRESHOLD,
    SILHOUETTE_SAMPLE_SIZE,
    SearchResult,
    SilhouetteSample,
    clustering_scores,
    distinct_rows,
)
from segmentation.results import Metrics, Projection

__all__ = [
    "AMBIGUOUS_BELOW",
    "Stability",
    "StructureGap",
    "Trust",
    "confidence",
    "measure_trust",
    "permutation_importance",
    "projection",
    "resampling_stability",
    "structure_gap",
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


def confidence(
    X: np.ndarray,
    labels: np.ndarray,
    centers: np.ndarray,
    two_nearest: np.ndarray | None = None,
) -> np.ndarray:
    """Simplified silhouette per customer in [-1, 1]; outliers (label -1) get 0.

    `two_nearest` (from `nearest_centroid(X, centers)`) when the caller has it already.
    Computed in blocks of rows: O(block x features) memory, not three copies of X (240 MB
    at 1,000,000 customers).
    """
    if len(centers) < 2:
        return np.zeros(len(X))
    if two_nearest is None:
        _, two_nearest = nearest_centroid(X, centers)
    scores = np.zeros(len(X))
    for start in range(0, len(X), ASSIGN_BLOCK):
        rows = slice(start, start + ASSIGN_BLOCK)
        block_labels = labels[rows]
        clustered = block_labels != NOISE
        if clustered.all():  # (no outlier: the same distances without two masked copies)
            own = np.linalg.norm(X[rows] - centers[block_labels], axis=1)
        else:
            own = np.zeros(len(block_labels))
            own[clustered] = np.linalg.norm(
                X[rows][clustered] - centers[block_labels[clustered]], axis=1
            )
        # b is the nearest centre other than the customer's own
        nearest, second = two_nearest[rows, 0], two_nearest[rows, 1]
        other = np.where(np.isclose(own, nearest), second, nearest)
        denominator = np.maximum(np.maximum(own, other), 1e-12)
        scores[rows] = np.where(clustered, (other - own) / denominator, 0.0)
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


def _at_least_distinct(rows: np.ndarray, k: int) -> bool:
    """Whether at least k rows differ. The distinct values of one column bound the distinct
    rows from below: a sort of one column settles the usual case (15 us at 1,000 rows, where
    comparing whole rows takes 190 us), and the rows are compared whole only when it falls
    short."""
    return len(np.unique(rows[:, 0])) >= k or distinct_rows(rows) >= k


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
        if not _at_least_distinct(X[drawn], k):
            continue
        refit_labels = _refit(algorithm, k, random_state + run + 1, eps, min_samples)(X[drawn])
        unique_drawn, first = np.unique(drawn, return_index=True)
        boot = refit_labels[first]
        original = segment_ids[unique_drawn]
        runs += 1
        # every segment's Jaccard with every refit segment, from one contingency table
        boot_ids, boot_codes = np.unique(boot, return_inverse=True)
        together = np.bincount(
            original * len(boot_ids) + boot_codes, minlength=n_segments * len(boot_ids)
        ).reshape(n_segments, len(boot_ids))
        sizes = together.sum(axis=1)
        present = np.flatnonzero(sizes)
        union = sizes[present, None] + together.sum(axis=0)[None, :] - together[present]
        jaccard_sums[present] += (together[present] / union).max(axis=1)
        counted[present] += 1
    per_segment = np.divide(jaccard_sums, counted, out=np.zeros(n_segments), where=counted > 0)
    sizes = np.bincount(segment_ids, minlength=n_segments).astype(float)
    # nothing measured is not "unstable": NaN, reported as null with a warning
    overall = float((per_segment * sizes).sum() / sizes.sum()) if runs else float("nan")
    return Stability(per_segment, overall, runs, size)


# The structure test: B uniform reference samples of at most GAP_SAMPLE_SIZE customers.
GAP_REFERENCES = 5
GAP_SAMPLE_SIZE = 1000


@dataclass(frozen=True)
class StructureGap:
    """How much better the segments separate than structureless data of the same shape.

    `gain` is Gap(k) - Gap(1) of the gap statistic (Tibshirani, Walther & Hastie 2001):
    Gap(k) = E*[log W*_k] - log W_k, W_k the within-segment sum of squares and W*_k the same
    for k-means on uniform data in the customers' principal-axis bounding box. Uniform noise
    and a single round group score about 0 or below; real segments score well above
    `standard_error`, the spread of the reference log W*_k.
    """

    gain: float
    standard_error: float

    @property
    def has_structure(self) -> bool:
        return bool(self.gain > self.standard_error)


def _log_within(X: np.ndarray, labels: np.ndarray) -> float:
    total = 0.0
    for label in np.unique(labels):
        members = X[labels == label]
        total += float(((members - members.mean(axis=0)) ** 2).sum())
    return float(np.log(max(total, 1e-300)))


def structure_gap(X: np.ndarray, labels: np.ndarray, k: int, random_state: int) -> StructureGap:
    """The gap test of the segments `labels` (noise excluded) on a bounded sample; O(B n k)."""
    rng = np.random.default_rng(random_state)
    clustered = np.flatnonzero(labels != NOISE)
    rows = rng.choice(clustered, size=min(len(clustered), GAP_SAMPLE_SIZE), replace=False)
    sample, sample_labels = X[rows], labels[rows]
    mean = sample.mean(axis=0)
    _, _, axes = np.linalg.svd(sample - mean, full_matrices=False)
    rotated = (sample - mean) @ axes.T
    low, high = rotated.min(axis=0), rotated.max(axis=0)
    one = np.zeros(len(sample), dtype=np.int64)
    reference_one, reference_k = [], []
    for run in range(GAP_REFERENCES):
        reference = rng.uniform(low, high, size=rotated.shape) @ axes + mean
        reference_one.append(_log_within(reference, one))
        reference_labels = sample_kmeans(reference, k, random_state + run, n_init=2)[0]
        reference_k.append(_log_within(reference, reference_labels))
    gap_one = float(np.mean(reference_one)) - _log_within(sample, one)
    gap_k = float(np.mean(reference_k)) - _log_within(sample, sample_labels)
    spread = float(np.std(reference_k) * np.sqrt(1 + 1 / GAP_REFERENCES))
    return StructureGap(gap_k - gap_one, spread)


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
    """Cross-validated accuracy of a depth-3 tree that predicts the segment from the fields.

    The folds fitted in a plain loop: cross_val_score's per-call validation, cloning and
    scorer set-up cost more than the three small trees (same folds, seed and scores).
    """
    from sklearn.model_selection import KFold
    from sklearn.tree import DecisionTreeClassifier

    if len(np.unique(labels)) < 2 or len(labels) < 6:
        return 1.0
    folds = KFold(n_splits=3, shuffle=True, random_state=random_state)
    scores = []
    for train, test in folds.split(encoded):
        tree = DecisionTreeClassifier(max_depth=SURROGATE_DEPTH, random_state=random_state)
        tree.fit(encoded[train], labels[train])
        scores.append(np.mean(tree.predict(encoded[test]) == labels[test]))
    return float(np.mean(scores))


def model_centers(X: np.ndarray, labels: np.ndarray, model: SegmentModel) -> np.ndarray:
    """Segment centres in feature space: the model's own, or the members' mean for DBSCAN."""
    if isinstance(model, CentroidModel):
        return model.centers
    return centroids_of(X, labels, model.n_segments)


# Customer-level statistics that are O(n) per field but costly in Python run on this sample.
EXPLAIN_SAMPLE_SIZE = 2000
# accuracy when the segments separate no better than structureless data ("dissolved")
NO_STRUCTURE_ACCURACY = 0.5
PROJECTION_SAMPLE_SIZE = 5000


@dataclass(frozen=True)
class Trust:
    """Everything that says how far to trust the segments."""

    centers: np.ndarray
    confidence: np.ndarray
    ambiguous: np.ndarray
    stability: Stability
    #: the headline accuracy: the stability, capped when there is no structure and at the
    #: chosen k's prediction strength when that is below the threshold
    accuracy: float
    structure: StructureGap | None
    importance: dict[str, float]
    metrics: Metrics
    #: the chosen k's prediction strength when it fell short and capped the accuracy
    weak_k_strength: float | None = None

    @property
    def lacks_structure(self) -> bool:
        return self.structure is not None and not self.structure.has_structure


def _metrics(
    X: np.ndarray,
    labels: np.ndarray,
    sample: np.ndarray,
    random_state: int,
    searched: SilhouetteSample,
) -> tuple[float, float, float]:
    """Silhouette, Calinski-Harabasz and Davies-Bouldin of the final labels on the sample; the
    silhouette's distances are the search's when the rows are (all customers up to 1,000)."""
    from sklearn.metrics import pairwise_distances

    # a random subset: the first rows of a sorted sample would all come from early input
    rng = np.random.default_rng(random_state + 1)
    silhouette_index = np.sort(
        rng.choice(len(sample), size=min(len(sample), SILHOUETTE_SAMPLE_SIZE), replace=False)
    )
    rows = sample[silhouette_index]
    distances = (
        searched.distances if np.array_equal(rows, searched.rows) else pairwise_distances(X[rows])
    )
    return clustering_scores(X[sample], labels[sample], distances, silhouette_index)


def measure_trust(
    X: np.ndarray,
    frame: pd.DataFrame,
    fitted: FittedSegments,
    found: SearchResult,
    encoder: FeatureEncoder,
    random_state: int,
) -> Trust:
    """Confidence, stability, structure, importance and the metrics of fitted segments."""
    labels, model = fitted.labels, fitted.model
    centers = model_centers(X, labels, model)
    scores = confidence(X, labels, centers)
    stability = resampling_stability(
        X, labels, fitted.n_segments, algorithm=found.chosen.algorithm, k=found.chosen.k,
        random_state=random_state, eps=found.dbscan_eps, min_samples=found.dbscan_min_samples,
    )  # fmt: skip
    rng = np.random.default_rng(random_state)
    sample = np.sort(rng.choice(len(X), size=min(len(X), EXPLAIN_SAMPLE_SIZE), replace=False))
    # without PCA the segments' space is the encoded one: X holds these rows already
    encoded_sample = (
        X[sample] if encoder.pca_components_ is None else encoder.encode(frame.iloc[sample])
    )
    groups = {e.spec.name: e.columns for e in encoder.encodings_}
    importance = permutation_importance(
        encoded_sample, groups, encoder.project, model, random_state
    )
    fidelity = surrogate_fidelity(encoded_sample, labels[sample], random_state)
    silhouette, calinski, davies = _metrics(
        X, labels, sample, random_state, found.silhouette_sample
    )
    segments = fitted.n_segments - int(fitted.has_outliers)
    gap = (
        structure_gap(X, labels, segments, random_state)
        if segments >= 2 and len(X) >= MIN_CUSTOMERS_FOR_ACCURACY
        else None
    )
    accuracy = stability.overall
    if gap is not None and not gap.has_structure:
        accuracy = min(accuracy, NO_STRUCTURE_ACCURACY)
    # a number of segments whose segments do not reproduce on held-out halves is one a
    # rerun with another random state may not find again: the partition's own stability
    # would overstate how far to trust it
    strength = found.chosen.prediction_strength
    weak = bool(np.isfinite(strength) and strength < PREDICTION_STRENGTH_THRESHOLD)
    if weak:
        accuracy = min(accuracy, strength)
    nan = float("nan")
    metrics = Metrics(
        silhouette, calinski, davies, fidelity, len(sample),
        gap.gain if gap else nan, gap.standard_error if gap else nan,
    )  # fmt: skip
    ambiguous = (scores < AMBIGUOUS_BELOW) & (labels != NOISE)
    return Trust(
        centers, scores, ambiguous, stability, accuracy, gap, importance, metrics,
        float(strength) if weak else None,
    )  # fmt: skip


def projection(
    X: np.ndarray, segment_ids: np.ndarray, centers: np.ndarray, random_state: int
) -> Projection:
    """Customers and centres on the plane of the two largest principal components."""
    rng = np.random.default_rng(random_state)
    sample = np.sort(rng.choice(len(X), size=min(len(X), PROJECTION_SAMPLE_SIZE), replace=False))
    mean = X.mean(axis=0)
    dims = min(2, X.shape[1])
    _, singular, axes = np.linalg.svd(X[sample] - mean, full_matrices=False)
    axes = axes[:dims]
    explained = singular[:dims] ** 2 / max(float((singular**2).sum()), 1e-12)
    finite = np.isfinite(centers).all(axis=1)
    plane_centers = np.full((len(centers), dims), np.nan)
    plane_centers[finite] = (centers[finite] - mean) @ axes.T
    points = (X[sample] - mean) @ axes.T
    if dims == 1:  # one feature: draw it against zero
        points = np.column_stack([points, np.zeros(len(points))])
        plane_centers = np.column_stack([plane_centers, np.zeros(len(plane_centers))])
        explained = np.append(explained, 0.0)
    return Projection(points, segment_ids[sample], plane_centers, explained, len(X))
