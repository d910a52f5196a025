"""explain: per-customer confidence, resampling stability, permutation importance."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import make_blobs
from sklearn.metrics import pairwise_distances
from sklearn.model_selection import KFold, cross_val_score
from sklearn.tree import DecisionTreeClassifier

from segmentation.pipeline.explain import (
    _at_least_distinct,
    _metrics,
    confidence,
    permutation_importance,
    resampling_stability,
    surrogate_fidelity,
)
from segmentation.pipeline.models import NOISE, Algorithm, CentroidModel, fit_kmeans
from segmentation.pipeline.search import SilhouetteSample

CENTERS = np.array([[0.0, 0.0], [4.0, 0.0]])


@pytest.mark.parametrize(
    ("point", "label", "expected"),
    [
        # at its own centre
        ([0.0, 0.0], 0, 1.0),
        # at the other centre, labelled there
        ([4.0, 0.0], 1, 1.0),
        # at the midpoint of two centres
        ([2.0, 0.0], 0, 0.0),
        # a quarter of the way: a=1, b=3
        ([1.0, 0.0], 0, 2 / 3),
        # labelled with the farther centre (possible for Ward): negative
        ([1.0, 0.0], 1, -2 / 3),
        # beyond its own centre: a=6, b=10
        ([10.0, 0.0], 1, 0.4),
        # an outlier (DBSCAN noise) gets 0
        ([50.0, 50.0], NOISE, 0.0),
    ],
)
def test_confidence(point: list[float], label: int, expected: float) -> None:
    scores = confidence(np.array([point]), np.array([label]), CENTERS)
    assert scores[0] == pytest.approx(expected, abs=1e-9)


def test_confidence_is_within_minus_1_and_1() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3)) * 5
    centers = rng.normal(size=(4, 3))
    labels = rng.integers(-1, 4, size=200)
    scores = confidence(X, labels, centers)
    assert scores.shape == (200,)
    assert np.all((scores >= -1) & (scores <= 1))
    assert np.all(scores[labels == NOISE] == 0)


def test_confidence_of_a_customer_does_not_depend_on_outliers_beside_it() -> None:
    # blocks without an outlier take a path without masks: the same numbers, bit for bit
    rng = np.random.default_rng(1)
    X = rng.normal(size=(300, 4))
    centers = rng.normal(size=(3, 4))
    labels = rng.integers(0, 3, size=300)
    with_outliers = labels.copy()
    with_outliers[::7] = NOISE
    kept = with_outliers != NOISE
    assert np.array_equal(
        confidence(X, labels, centers)[kept], confidence(X, with_outliers, centers)[kept]
    )


@pytest.mark.parametrize(
    ("rows", "k", "expected"),
    [
        (np.array([[0.0, 1.0], [1.0, 1.0], [2.0, 1.0]]), 3, True),
        # the first column alone falls short; the rows still differ
        (np.array([[0.0, 1.0], [0.0, 2.0], [0.0, 3.0]]), 3, True),
        (np.array([[0.0, 1.0], [0.0, 1.0], [1.0, 1.0]]), 3, False),
        # -0.0 and 0.0 are the same value
        (np.array([[-0.0, 5.0], [0.0, 5.0]]), 2, False),
    ],
)
def test_at_least_distinct_counts_rows_that_differ(
    rows: np.ndarray, k: int, expected: bool
) -> None:
    assert _at_least_distinct(rows, k) is expected


def test_confidence_with_one_segment_is_zero() -> None:
    scores = confidence(np.array([[1.0], [2.0]]), np.array([0, 0]), np.array([[1.5]]))
    assert scores.tolist() == [0.0, 0.0]


def _stability(X: np.ndarray, k: int) -> float:
    labels, _ = fit_kmeans(X, k, random_state=0)
    return resampling_stability(
        X, labels, k, algorithm=Algorithm.KMEANS, k=k, random_state=0
    ).overall


def test_resampling_stability_near_1_on_separated_blobs() -> None:
    X, _ = make_blobs(300, centers=[[0, 0], [10, 0], [0, 10]], cluster_std=0.5, random_state=0)
    assert _stability(X, 3) > 0.95


@pytest.mark.parametrize(
    "n_fields",
    [
        # four independent uniform fields (make_uniform_noise's default)
        4,
        # six: the more fields, the less a k-means cut of a uniform cube repeats itself.
        # Two fields are a known limit of resampling stability (README, "Limits"): k-means
        # cuts a uniform square into the same four quadrants on every resample (0.90).
        6,
    ],
)
def test_resampling_stability_lower_on_uniform_noise(n_fields: int) -> None:
    centres = [[0, 0], [10, 0], [0, 10], [10, 10]]
    X, _ = make_blobs(300, n_features=2, centers=centres, cluster_std=0.5, random_state=0)
    noise = np.random.default_rng(0).uniform(size=(300, n_fields))
    blobs = _stability(X, 4)
    uniform = _stability(noise, 4)
    assert uniform < 0.75  # Hennig: below 0.75 is not stable
    assert blobs - uniform > 0.2


def test_resampling_stability_per_segment_and_outliers() -> None:
    X, _ = make_blobs(200, centers=[[0, 0], [10, 0]], cluster_std=0.5, random_state=1)
    labels, _ = fit_kmeans(X, 2, random_state=0)
    labels = labels.copy()
    labels[:3] = NOISE  # an Outliers segment, indexed last
    stability = resampling_stability(X, labels, 3, algorithm=Algorithm.KMEANS, k=2, random_state=0)
    assert stability.per_segment.shape == (3,)
    assert np.all((stability.per_segment >= 0) & (stability.per_segment <= 1))
    assert stability.runs == 10
    assert 0 <= stability.overall <= 1


def test_resampling_stability_is_deterministic() -> None:
    X = np.random.default_rng(2).normal(size=(120, 2))
    labels, _ = fit_kmeans(X, 3, random_state=0)
    first = resampling_stability(X, labels, 3, algorithm=Algorithm.KMEANS, k=3, random_state=4)
    second = resampling_stability(X, labels, 3, algorithm=Algorithm.KMEANS, k=3, random_state=4)
    assert np.array_equal(first.per_segment, second.per_segment)


def _two_groups_and_an_unused_field() -> tuple[np.ndarray, CentroidModel]:
    rng = np.random.default_rng(0)
    X = np.column_stack(
        [
            np.r_[np.zeros(50), np.full(50, 10.0)] + rng.normal(0, 0.1, 100),
            rng.normal(0, 0.1, 100),
            rng.normal(0, 0.1, 100),
        ]
    )
    return X, CentroidModel(np.array([[0.0, 0.0, 0.0], [10.0, 0.0, 0.0]]))


def test_permutation_importance_sums_to_1_and_ignores_an_irrelevant_field() -> None:
    X, model = _two_groups_and_an_unused_field()
    groups = {"spend": slice(0, 1), "noise": slice(1, 3)}
    importance = permutation_importance(X, groups, lambda z: z, model, random_state=0)
    assert set(importance) == {"spend", "noise"}
    assert sum(importance.values()) == pytest.approx(1.0)
    assert importance["noise"] == pytest.approx(0.0, abs=0.01)
    assert importance["spend"] > 0.99
    assert all(v >= 0 for v in importance.values())


def test_permutation_importance_is_uniform_when_nothing_changes_a_segment() -> None:
    X = np.random.default_rng(0).normal(size=(30, 2))
    model = CentroidModel(np.array([[0.0, 0.0]]))
    importance = permutation_importance(
        X, {"a": slice(0, 1), "b": slice(1, 2)}, lambda z: z, model, random_state=0
    )
    assert importance == {"a": 0.5, "b": 0.5}


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        # a single segment: nothing to predict
        (np.zeros(30, dtype=int), 1.0),
        # a wide gap on the first column: a depth-3 tree is exact
        (np.r_[np.zeros(15, dtype=int), np.ones(15, dtype=int)], 1.0),
    ],
)
def test_surrogate_fidelity(labels: np.ndarray, expected: float) -> None:
    first = np.r_[np.arange(15.0), 100 + np.arange(15.0)]
    X = np.column_stack([first, np.random.default_rng(0).normal(size=30)])
    assert surrogate_fidelity(X, labels, random_state=0) == pytest.approx(expected)


@pytest.mark.parametrize("seed", range(3))
def test_surrogate_fidelity_equals_cross_val_score(seed: int) -> None:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(300, 4))
    labels = (X[:, 0] > 0).astype(int) + 2 * (X[:, 1] + 0.5 * rng.normal(size=300) > 0)
    tree = DecisionTreeClassifier(max_depth=3, random_state=seed)
    folds = KFold(n_splits=3, shuffle=True, random_state=seed)
    expected = float(np.mean(cross_val_score(tree, X, labels, cv=folds)))
    assert surrogate_fidelity(X, labels, random_state=seed) == expected


def test_metrics_reuse_the_search_distances_only_for_the_same_rows() -> None:
    X = np.random.default_rng(2).normal(size=(200, 3))
    labels = (X[:, 0] > 0).astype(np.int64)
    sample = np.arange(200)
    fresh = _metrics(X, labels, sample, 0, SilhouetteSample(np.arange(1), np.zeros((1, 1))))
    same = SilhouetteSample(sample, pairwise_distances(X))
    assert _metrics(X, labels, sample, 0, same) == fresh
    # other rows: the search's distances (zeros here) are not used
    other = SilhouetteSample(sample[::-1], np.zeros((200, 200)))
    assert _metrics(X, labels, sample, 0, other) == fresh
