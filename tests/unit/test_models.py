"""models: nearest-centroid assignment, Ward cuts, DBSCAN with an automatic eps."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import make_blobs

from segmentation.pipeline.models import (
    NOISE,
    CentroidModel,
    centroids_of,
    choose_eps,
    fit_dbscan,
    fit_kmeans,
    nearest_centroid,
    sample_kmeans,
    ward_labels,
    ward_tree,
)

BLOBS, BLOB_LABELS = make_blobs(
    n_samples=150, centers=[[0, 0], [10, 0], [0, 10]], cluster_std=0.5, random_state=0
)


def test_nearest_centroid_labels_and_two_nearest_distances() -> None:
    centers = np.array([[0.0, 0.0], [3.0, 4.0], [10.0, 0.0]])
    X = np.array([[0.0, 0.0], [3.0, 4.0], [9.0, 0.0]])
    labels, two_nearest = nearest_centroid(X, centers)
    assert labels.tolist() == [0, 1, 2]
    assert two_nearest[0] == pytest.approx([0.0, 5.0])
    assert two_nearest[2] == pytest.approx([1.0, np.sqrt(52.0)])


def test_nearest_centroid_with_one_centre() -> None:
    labels, two_nearest = nearest_centroid(np.array([[1.0], [2.0]]), np.array([[0.0]]))
    assert labels.tolist() == [0, 0]
    assert np.isinf(two_nearest[:, 1]).all()


def test_centroids_of_skips_noise_and_empty_labels_never_win() -> None:
    X = np.array([[0.0], [2.0], [10.0], [100.0]])
    centers = centroids_of(X, np.array([0, 0, 2, NOISE]), 3)
    assert centers[0] == pytest.approx([1.0])
    assert np.isinf(centers[1]).all()
    assert centers[2] == pytest.approx([10.0])
    # BUG: the +inf centre makes the squared distance inf - inf = nan, and argmin picks the nan:
    # every customer is assigned to the EMPTY segment 1 ([1, 1, 1] instead of [0, 2, 0]).
    # Latent since ward_labels falls back to cut_tree (always k segments), but any caller that
    # passes centroids_of's output to CentroidModel with an empty label hits it.
    with np.errstate(invalid="ignore"):
        assigned = CentroidModel(centers).assign(np.array([[5.0], [50.0], [1.0]]))
    assert assigned.tolist() == [0, 2, 0]


def test_fit_kmeans_is_deterministic_and_assigns_like_its_labels() -> None:
    labels, model = fit_kmeans(BLOBS, 3, random_state=0)
    again, _ = fit_kmeans(BLOBS, 3, random_state=0)
    assert np.array_equal(labels, again)
    assert model.n_segments == 3
    assert np.array_equal(model.assign(BLOBS), labels)


def test_ward_labels_are_0_to_k_minus_1() -> None:
    labels = ward_labels(ward_tree(BLOBS), 3)
    assert sorted(np.unique(labels).tolist()) == [0, 1, 2]
    assert sorted(np.bincount(labels).tolist()) == sorted(np.bincount(BLOB_LABELS).tolist())


@pytest.mark.parametrize(
    ("X", "k"),
    [
        # evenly spaced customers: every merge height ties
        (np.arange(12.0)[:, None], 5),
        # tied customers, three distinct values
        (np.array([[0.0]] * 6 + [[5.0]] * 3 + [[9.0]]), 3),
    ],
)
def test_ward_labels_give_exactly_k_segments_when_heights_tie(X: np.ndarray, k: int) -> None:
    labels = ward_labels(ward_tree(X), k)
    assert sorted(np.unique(labels).tolist()) == list(range(k))


@pytest.mark.parametrize(
    ("X", "k"),
    [
        # three separated blobs
        (BLOBS, 3),
        # no structure
        (np.random.default_rng(1).normal(size=(300, 4)), 5),
        # tied customers
        (np.repeat(np.random.default_rng(2).normal(size=(20, 2)), 5, axis=0), 4),
    ],
)
def test_sample_kmeans_reaches_the_inertia_of_sklearn(X: np.ndarray, k: int) -> None:
    labels, model = sample_kmeans(X, k, random_state=0, n_init=4)
    reference, _ = fit_kmeans(X, k, random_state=0, n_init=4)

    def inertia(assigned: np.ndarray) -> float:
        return sum(
            ((X[assigned == j] - X[assigned == j].mean(axis=0)) ** 2).sum() for j in range(k)
        )

    assert inertia(labels) <= inertia(reference) * 1.05
    # labels are the nearest centres
    assert np.array_equal(model.assign(X), labels)
    again, _ = sample_kmeans(X, k, random_state=0, n_init=4)
    assert np.array_equal(labels, again)


@pytest.mark.parametrize(
    "X",
    [
        # three blobs
        BLOBS,
        # uniform noise
        np.random.default_rng(0).uniform(size=(100, 3)),
        # every point the same: the fallback must still be positive
        np.zeros((10, 2)),
        # two points
        np.array([[0.0, 0.0], [1.0, 1.0]]),
    ],
)
def test_choose_eps_returns_a_positive_float(X: np.ndarray) -> None:
    eps = choose_eps(X, min_samples=5)
    assert isinstance(eps, float)
    assert eps > 0


def test_fit_dbscan_labels_noise_minus_one() -> None:
    X = np.vstack([BLOBS, [[50.0, 50.0], [-40.0, 30.0]]])
    eps = choose_eps(X, 5)
    labels, model = fit_dbscan(X, eps, 5)
    assert labels[-2:].tolist() == [NOISE, NOISE]
    assert model.n_segments == 3
    assert set(np.unique(labels).tolist()) == {NOISE, 0, 1, 2}
    # new customers: near a core customer joins its segment, far away is noise
    near = model.assign(np.array([[0.1, 0.0], [70.0, 70.0]]))
    assert near[0] == labels[np.argmin(np.linalg.norm(X - [0.1, 0.0], axis=1))]
    assert near[1] == NOISE


def test_dbscan_with_no_core_customers_calls_everyone_noise() -> None:
    X = np.array([[0.0], [10.0], [20.0], [30.0]])
    labels, model = fit_dbscan(X, 1.0, 3)
    assert labels.tolist() == [NOISE] * 4
    assert model.n_segments == 0
    assert model.assign(X).tolist() == [NOISE] * 4
