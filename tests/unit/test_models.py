"""models: nearest-centroid assignment, Ward cuts, DBSCAN with an automatic eps."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.cluster.hierarchy import cut_tree, fcluster, linkage
from scipy.spatial.distance import pdist
from sklearn.cluster import DBSCAN
from sklearn.datasets import make_blobs

from segmentation.pipeline.models import (
    NOISE,
    CentroidModel,
    centroids_of,
    choose_eps,
    close_pairs,
    fit_dbscan,
    fit_kmeans,
    nearest_centroid,
    nearest_labels,
    pairs_among,
    sample_distances,
    sample_kmeans,
    ward_cuts,
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


def test_nearest_labels_are_nearest_centroids_labels() -> None:
    rng = np.random.default_rng(0)
    X, centers = rng.normal(size=(500, 4)), rng.normal(size=(6, 4))
    centers[2] = np.inf  # an empty segment
    with np.errstate(invalid="ignore"):
        assert np.array_equal(nearest_labels(X, centers), nearest_centroid(X, centers)[0])


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
    # the +inf centre makes the squared distance inf - inf = nan, which argmin would pick:
    # assignment counts it as +inf, so the empty segment 1 never wins
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


def _fcluster_or_cut_tree(tree: np.ndarray, k: int) -> np.ndarray:
    """What ward_labels computed before ward_cuts: fcluster, or cut_tree when it gives < k."""
    labels = fcluster(tree, k, criterion="maxclust").astype(np.int64) - 1
    if labels.max() + 1 < k:
        labels = cut_tree(tree, n_clusters=k).ravel().astype(np.int64)
    return labels


TREES = [
    # separated blobs
    BLOBS,
    # no structure
    np.random.default_rng(3).normal(size=(120, 3)),
    # evenly spaced customers: every merge height ties
    np.arange(40.0)[:, None],
    # few distinct values: many ties
    np.random.default_rng(4).integers(0, 3, size=(90, 2)).astype(float),
    # repeated customers
    np.repeat(np.random.default_rng(5).normal(size=(25, 2)), 4, axis=0),
]


@pytest.mark.parametrize("X", TREES)
def test_ward_cuts_equal_fcluster_or_cut_tree_at_every_k(X: np.ndarray) -> None:
    tree = ward_tree(X)
    ks = list(range(1, len(X) + 1))
    cuts = ward_cuts(tree, ks)
    for k in ks:
        # the same partition, numbered the same way
        assert np.array_equal(cuts[k], _fcluster_or_cut_tree(tree, k)), k
    assert np.array_equal(ward_cuts(tree, [4, 9])[9], cuts[9])
    assert np.array_equal(ward_labels(tree, 7), cuts[7])


@pytest.mark.parametrize("X", TREES)
def test_ward_tree_of_the_sample_distances_is_the_tree_of_the_customers(X: np.ndarray) -> None:
    distances = sample_distances(X)
    assert np.array_equal(distances.euclidean, pdist(X))
    assert np.array_equal(ward_tree(distances.euclidean), ward_tree(X))


@pytest.mark.parametrize("X", TREES)
def test_the_ward_tree_is_scipys(X: np.ndarray) -> None:
    """fastcluster's tree: scipy's merges and sizes, heights within rounding, the same
    segments at every k, ties included."""
    tree, scipys = ward_tree(X), linkage(X, method="ward")
    assert np.array_equal(tree[:, [0, 1, 3]], scipys[:, [0, 1, 3]])
    assert np.allclose(tree[:, 2], scipys[:, 2], rtol=1e-12, atol=1e-12)
    ks = list(range(1, len(X) + 1))
    ours, theirs = ward_cuts(tree, ks), ward_cuts(scipys, ks)
    assert all(np.array_equal(ours[k], theirs[k]) for k in ks)


def _dbscan_cases() -> list[tuple[np.ndarray, int]]:
    rng = np.random.default_rng(6)
    two_groups = np.vstack([rng.normal(size=(150, 3)), rng.normal(size=(60, 3)) * 0.3 + 3])
    return [
        (BLOBS, 5),
        (two_groups, 4),
        (two_groups, 2),
        # repeated customers, at distance 0
        (np.repeat(rng.normal(size=(40, 2)), 5, axis=0), 5),
        # groups touching through border customers
        (rng.uniform(size=(300, 2)), 8),
        # wider than scikit-learn's kd-tree: its own DBSCAN
        (rng.normal(size=(100, 20)), 5),
    ]


@pytest.mark.parametrize(("X", "min_samples"), _dbscan_cases())
def test_fit_dbscan_equals_sklearn(X: np.ndarray, min_samples: int) -> None:
    for eps in (choose_eps(X, min_samples), 0.5 * choose_eps(X, min_samples)):
        reference = DBSCAN(eps=eps, min_samples=min_samples).fit(X)
        labels, model = fit_dbscan(X, eps, min_samples)
        assert np.array_equal(labels, reference.labels_)
        assert np.array_equal(model.core_points, X[reference.core_sample_indices_])
        # the pairs of a half-sample are the sample's pairs inside it
        rows = np.random.default_rng(0).permutation(len(X))[: len(X) // 2]
        pairs = close_pairs(sample_distances(X).squared, len(X), eps)
        half, _ = fit_dbscan(X[rows], eps, 3, pairs_among(pairs, rows, len(X)))
        assert np.array_equal(half, DBSCAN(eps=eps, min_samples=3).fit(X[rows]).labels_)


def test_close_pairs_are_the_pairs_within_eps() -> None:
    X = np.random.default_rng(7).normal(size=(30, 2))
    first, second = close_pairs(pdist(X, "sqeuclidean"), len(X), 0.8)
    within = np.linalg.norm(X[:, None] - X[None, :], axis=2) <= 0.8
    expected = {(i, j) for i, j in zip(*np.nonzero(within), strict=True) if i < j}
    assert set(zip(first.tolist(), second.tolist(), strict=True)) == expected


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
