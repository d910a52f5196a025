"""search: fast clustering scores equal scikit-learn's; prediction strength picks k."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import make_blobs
from sklearn.metrics import (
    calinski_harabasz_score,
    davies_bouldin_score,
    pairwise_distances,
    silhouette_score,
)

from segmentation.pipeline.models import NOISE, Algorithm
from segmentation.pipeline.search import (
    calinski_davies,
    count_distinct,
    distinct_rows,
    prediction_strength,
    search,
    silhouette_from_distances,
    silhouettes_from_distances,
)


def _random_labelling(seed: int, with_noise: bool) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(60, 3))
    labels = rng.integers(0, 4, size=60)
    if with_noise:
        labels[rng.random(60) < 0.2] = NOISE
    return X, labels


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize(
    "with_noise",
    [
        # every customer clustered
        False,
        # a fifth of them noise (-1), which sklearn never sees
        True,
    ],
)
def test_scores_equal_sklearn(seed: int, with_noise: bool) -> None:
    X, labels = _random_labelling(seed, with_noise)
    kept = labels != NOISE
    distances = pairwise_distances(X)
    expected_silhouette = silhouette_score(
        distances[np.ix_(kept, kept)], labels[kept], metric="precomputed"
    )
    assert silhouette_from_distances(distances, labels) == pytest.approx(expected_silhouette)
    calinski, davies = calinski_davies(X, labels)
    assert calinski == pytest.approx(calinski_harabasz_score(X[kept], labels[kept]))
    assert davies == pytest.approx(davies_bouldin_score(X[kept], labels[kept]))


def test_scores_equal_sklearn_with_a_singleton_and_gaps_in_the_labels() -> None:
    X, labels = _random_labelling(7, with_noise=False)
    labels = labels * 3  # labels 0, 3, 6, 9
    labels[0] = 20  # a segment of one customer: silhouette 0 for it
    distances = pairwise_distances(X)
    assert silhouette_from_distances(distances, labels) == pytest.approx(
        silhouette_score(distances, labels, metric="precomputed")
    )
    calinski, davies = calinski_davies(X, labels)
    assert calinski == pytest.approx(calinski_harabasz_score(X, labels))
    assert davies == pytest.approx(davies_bouldin_score(X, labels), rel=1e-6)


def test_silhouettes_of_several_labellings_equal_each_alone() -> None:
    X, labels = _random_labelling(3, with_noise=False)
    _, noisy = _random_labelling(4, with_noise=True)
    labellings = [labels, noisy, np.zeros(60, dtype=int), (labels + 1) % 3, labels * 2]
    distances = pairwise_distances(X)
    together = silhouettes_from_distances(distances, labellings)
    alone = [silhouette_from_distances(distances, labels) for labels in labellings]
    # the same sums from one product or several: equal up to the order of additions
    assert together == pytest.approx(alone, rel=1e-12, nan_ok=True)
    assert np.isnan(together[2])


@pytest.mark.parametrize(
    "labels",
    [
        # one segment
        np.zeros(10, dtype=int),
        # one segment and noise
        np.array([0] * 8 + [NOISE] * 2),
        # as many segments as customers
        np.arange(10),
    ],
)
def test_scores_are_nan_when_undefined(labels: np.ndarray) -> None:
    X = np.random.default_rng(0).normal(size=(10, 2))
    assert np.isnan(silhouette_from_distances(pairwise_distances(X), labels))
    assert all(np.isnan(calinski_davies(X, labels)))


@pytest.mark.parametrize(
    "rows",
    [
        # repeated customers
        np.repeat(np.random.default_rng(0).normal(size=(30, 3)), 4, axis=0),
        # -0.0 and 0.0 are one value
        np.array([[0.0, 1.0], [-0.0, 1.0], [0.0, -1.0]]),
        # all different
        np.random.default_rng(1).normal(size=(50, 2)),
        # values that round to -0.0 and 0.0 at 9 decimals, as count_distinct rounds them
        np.array([[-1e-12, 1.0], [1e-12, 1.0], [0.0, 1.0]]).round(9),
    ],
)
def test_distinct_rows_counts_as_np_unique(rows: np.ndarray) -> None:
    assert distinct_rows(rows) == len(np.unique(rows, axis=0))


def test_count_distinct_caps_and_sees_identical_customers() -> None:
    X = np.repeat(np.random.default_rng(2).normal(size=(7, 2)), 3, axis=0)
    assert count_distinct(X, 31, 0) == 7
    assert count_distinct(X, 5, 0) == 5
    assert count_distinct(np.zeros((4, 2)), 31, 0) == 1


def test_prediction_strength_is_1_for_identical_labellings() -> None:
    labels = np.repeat([0, 1, 2], 20)
    assert prediction_strength(labels, labels) == 1.0
    # the names of the segments do not matter
    assert prediction_strength(labels, (labels + 1) % 3) == 1.0


def test_prediction_strength_is_low_for_random_labellings() -> None:
    labels = np.repeat([0, 1, 2], 40)
    predicted = np.random.default_rng(0).integers(0, 3, size=120)
    assert prediction_strength(labels, predicted) < 0.5


def test_prediction_strength_ignores_noise() -> None:
    labels = np.array([0] * 10 + [1] * 6 + [NOISE] * 3)
    predicted = np.array([4] * 10 + [1] * 6 + [2, 3, 5])
    assert prediction_strength(labels, predicted) == 1.0


def _strength_by_segment(test_labels: np.ndarray, predicted: np.ndarray) -> float:
    """The definition, one test segment at a time."""
    strengths = []
    for label in np.unique(test_labels[test_labels != NOISE]):
        members = predicted[test_labels == label]
        if len(members) < 5:
            return 0.0
        counts = np.bincount(members[members != NOISE])
        strengths.append(float((counts * (counts - 1)).sum()) / (len(members) * (len(members) - 1)))
    return min(strengths) if strengths else 0.0


@pytest.mark.parametrize("seed", range(6))
def test_prediction_strength_equals_its_definition(seed: int) -> None:
    rng = np.random.default_rng(seed)
    test_labels = rng.integers(-1, 4, size=200)
    predicted = np.where(rng.random(200) < 0.7, test_labels, rng.integers(-1, 6, size=200))
    assert prediction_strength(test_labels, predicted) == _strength_by_segment(
        test_labels, predicted
    )
    assert prediction_strength(np.full(10, NOISE), predicted[:10]) == 0.0
    assert prediction_strength(test_labels, np.full(200, NOISE)) == 0.0


def test_a_test_segment_too_small_to_test_counts_as_unstable() -> None:
    # skipping it would let k grow until every tested segment is trivially stable
    labels = np.array([0] * 10 + [1] * 2)
    predicted = np.array([4] * 10 + [1] * 2)
    assert prediction_strength(labels, predicted) == 0.0


BLOBS, _ = make_blobs(
    n_samples=150, centers=[[0, 0], [8, 0], [0, 8]], cluster_std=0.6, random_state=1
)


@pytest.mark.parametrize(
    "algorithm",
    [
        # k-means alone
        Algorithm.KMEANS,
        # Ward alone
        Algorithm.HIERARCHICAL,
        # everything
        Algorithm.AUTO,
    ],
)
def test_search_finds_three_blobs(algorithm: Algorithm) -> None:
    found = search(BLOBS, algorithm=algorithm, k_values=range(2, 7), random_state=0)
    assert found.chosen.k == 3
    assert "k=3" in found.reason
    assert found.chosen.is_stable
    assert len(found.sample_labels) == len(BLOBS)
    assert len(np.unique(found.sample_labels)) == 3
    tried = {(c.algorithm, c.k) for c in found.candidates}
    if algorithm is not Algorithm.AUTO:
        assert tried == {(algorithm, k) for k in range(2, 7)}


def test_search_with_fewer_than_20_customers_uses_silhouette() -> None:
    X = BLOBS[[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]]
    found = search(X, algorithm=Algorithm.KMEANS, k_values=[2, 3], random_state=0)
    assert "silhouette" in found.reason
    assert all(np.isnan(c.prediction_strength) for c in found.candidates)


def test_search_with_dbscan_reports_eps() -> None:
    found = search(BLOBS, algorithm=Algorithm.DBSCAN, k_values=[], random_state=0)
    assert found.chosen.algorithm is Algorithm.DBSCAN
    assert found.dbscan_eps is not None and found.dbscan_eps > 0
    assert "eps=" in found.reason


def test_search_is_deterministic() -> None:
    first = search(BLOBS, algorithm=Algorithm.AUTO, k_values=range(2, 5), random_state=3)
    second = search(BLOBS, algorithm=Algorithm.AUTO, k_values=range(2, 5), random_state=3)
    # repr, not ==: a strength that was not measured is NaN, and NaN != NaN
    assert repr(first.candidates) == repr(second.candidates)
    assert np.array_equal(first.sample_labels, second.sample_labels)


def test_hierarchical_search_on_tied_customers() -> None:
    # A half-sample holding only two distinct customers used to be cut into fewer than k=3 Ward
    # segments whose empty +inf centre won every assignment (see test_models); numpy's
    # "invalid value encountered" warning is an error here.
    X = np.array([[0.0, 0.0]] * 18 + [[5.0, 0.0]] * 3 + [[0.0, 5.0]])
    found = search(X, algorithm=Algorithm.HIERARCHICAL, k_values=[2, 3], random_state=0)
    assert [c.k for c in found.candidates] == [2, 3]
