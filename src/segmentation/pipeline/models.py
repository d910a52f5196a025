"""The clustering algorithms, each as a fitted model that can assign any customer.

Every model answers `assign(X)`: k-means and Ward by the nearest centroid, DBSCAN by the nearest
core customer within `eps` (else noise, label -1). That single operation serves the final fit
on all rows, prediction strength, permutation importance and, later, scoring new customers.

Ward's tree and DBSCAN's neighbourhoods both start from the pairwise distances of a bounded
sample; the search computes them once (`sample_distances`) and hands them to both.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

__all__ = [
    "ASSIGN_BLOCK",
    "NOISE",
    "Algorithm",
    "CentroidModel",
    "DensityModel",
    "Pairs",
    "SampleDistances",
    "SegmentModel",
    "centroids_of",
    "choose_eps",
    "close_pairs",
    "fit_dbscan",
    "fit_kmeans",
    "nearest_centroid",
    "nearest_labels",
    "pairs_among",
    "sample_distances",
    "sample_kmeans",
    "ward_cuts",
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


def _squared_to_centres(
    block: np.ndarray, centers: np.ndarray, center_norms: np.ndarray
) -> np.ndarray:
    """|x|^2 - 2 x.c + |c|^2 for every row and centre, in place in the product's array (the
    same floating-point values as the expression written out, without its four temporaries
    of rows x centres and the doubled copy of the rows)."""
    squared = block @ centers.T
    squared *= -2.0  # exact: a power of two
    squared += (block**2).sum(axis=1)[:, None]
    squared += center_norms[None, :]
    if not np.isfinite(center_norms).all():
        # an empty segment's centre is +inf: inf - inf is nan, which must lose, not win
        squared = np.nan_to_num(squared, nan=np.inf)
    return np.asarray(np.maximum(squared, 0, out=squared))


def nearest_labels(X: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """Label of the nearest center per row: `nearest_centroid` without the two distances,
    whose partition and square roots cost as much as the labels (assignment runs ~50 times
    per search)."""
    labels = np.empty(len(X), dtype=np.int64)
    center_norms = (centers**2).sum(axis=1)
    for start in range(0, len(X), ASSIGN_BLOCK):
        block = X[start : start + ASSIGN_BLOCK]
        labels[start : start + len(block)] = _squared_to_centres(
            block, centers, center_norms
        ).argmin(axis=1)
    return labels


def nearest_centroid(X: np.ndarray, centers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Label of the nearest center per row and the sorted distances to the two nearest."""
    labels = np.empty(len(X), dtype=np.int64)
    two_nearest = np.empty((len(X), 2))
    center_norms = (centers**2).sum(axis=1)
    for start in range(0, len(X), ASSIGN_BLOCK):
        block = X[start : start + ASSIGN_BLOCK]
        squared = _squared_to_centres(block, centers, center_norms)
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
        return nearest_labels(X, self.centers)


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
        from sklearn.neighbors import NearestNeighbors

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
    from sklearn.cluster import KMeans

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


@dataclass(frozen=True)
class SampleDistances:
    """The pairwise distances of a sample, as pdist's condensed vectors: squared (DBSCAN
    compares them with eps^2, as scikit-learn's trees do) and their square roots (Ward's
    tree). The roots equal pdist's euclidean distances bit for bit (tested)."""

    squared: np.ndarray
    euclidean: np.ndarray


def sample_distances(X: np.ndarray) -> SampleDistances:
    """One pdist of a bounded sample (O(n^2) memory) for Ward's tree and DBSCAN."""
    from scipy.spatial.distance import pdist

    squared = pdist(X, "sqeuclidean")
    return SampleDistances(squared, np.sqrt(squared))


def ward_tree(X: np.ndarray) -> np.ndarray:
    """The Ward merge tree of customers, or of their condensed euclidean distances (the same
    tree: linkage computes exactly those), in scipy's linkage format; O(n^2) memory, so
    callers pass a bounded sample.

    fastcluster builds it, not scipy: it makes the same merges (heights within 1e-12, tested)
    in 0.6x the time, and releases the GIL while it runs, so the search's Ward tree and its
    k-means fits run on both cores (measured: two trees of 2,000 customers in two threads
    took 40 ms with fastcluster, 137 ms with scipy, whose two took 121 ms one after the
    other). The search at 10,000 customers: 240 -> 188 ms.
    """
    import fastcluster

    return np.asarray(fastcluster.linkage(X, method="ward", preserve_input=True))


def ward_labels(tree: np.ndarray, k: int) -> np.ndarray:
    """Cut a Ward tree into exactly k segments labelled 0..k-1 (see `ward_cuts`)."""
    return ward_cuts(tree, [k])[k]


def ward_cuts(tree: np.ndarray, ks: Sequence[int]) -> dict[int, np.ndarray]:
    """Cut a Ward tree into exactly k segments labelled 0..k-1, for every k at once.

    The partitions and their numbering are fcluster's (criterion "maxclust"): k segments are
    the tree without its last k - 1 merges. fcluster gives fewer than k when merge heights tie
    at the cut (evenly spaced or repeated customers); there cut_tree, which always gives k.
    One pass over the top merges serves every k (tested equal to fcluster at every k): fcluster
    costs ~0.2 ms a call, mostly validating the tree, and a search cuts five trees at nine k.
    """
    from scipy.cluster.hierarchy import cut_tree

    n = len(tree) + 1
    heights = tree[:, 2]
    untied = [k for k in ks if k == 1 or (1 < k < n and heights[n - k - 1] < heights[n - k])]
    cuts = {k: cut_tree(tree, n_clusters=k).ravel().astype(np.int64) for k in ks if k not in untied}
    if untied:
        cuts.update(_top_cuts(tree, untied))
    return cuts


def _top_cuts(tree: np.ndarray, ks: Sequence[int]) -> dict[int, np.ndarray]:
    """`ward_cuts` where heights do not tie at the cut: each customer's segment at the largest
    k, then the top merges undone one at a time (each O(k) on the segments, not O(n))."""
    n = len(tree) + 1
    children = tree[:, :2].astype(np.intp)
    top = max(ks)
    # each customer's ancestor just below the cut: parents of the first n - top merges,
    # followed by pointer jumping (O(n log depth))
    parent = np.arange(2 * n - 1)
    parent[children[: n - top]] = (n + np.arange(n - top))[:, None]
    while not np.array_equal(ancestor := parent[parent], parent):
        parent = ancestor
    node_of, codes = np.unique(parent[:n], return_inverse=True)
    group = np.arange(top)
    cuts = {}
    for k in range(top, min(ks) - 1, -1):
        if k in ks:
            rank = {node: i for i, node in enumerate(_fcluster_order(children, n, k))}
            cuts[k] = np.array([rank.get(int(node), -1) for node in node_of])[group[codes]]
        if k > 1:
            # merge n - k joins two segments of this cut into the node 2n - k
            joined = [int(np.flatnonzero(node_of == child)[0]) for child in children[n - k]]
            group[group == joined[1]] = joined[0]
            node_of[joined[0]], node_of[joined[1]] = 2 * n - k, -1
    return cuts


def _fcluster_order(children: np.ndarray, n: int, k: int) -> list[int]:
    """The tree nodes that are the k segments, in the order fcluster numbers them: its
    depth-first walk from the root visits left then right subtrees, and numbers a single
    customer when its parent is done with the subtrees."""
    if k == 1:
        return [2 * n - 2]
    cut = 2 * n - k  # nodes at or above it are merges the cut undoes
    order: list[int] = []
    stack, seen = [2 * n - 2], set()
    while stack:
        pair = [int(c) for c in children[stack[-1] - n]]
        deeper = next((c for c in pair if c >= n and c not in seen), None)
        if deeper is not None:
            seen.add(deeper)
            if deeper >= cut:
                stack.append(deeper)
            else:
                order.append(deeper)
            continue
        order.extend(c for c in pair if c < n)
        stack.pop()
    return order


def choose_eps(X: np.ndarray, min_samples: int) -> float:
    """eps at the knee of the sorted k-distance curve (Ester et al.'s heuristic, made automatic).

    The knee is the point farthest from the chord joining the curve's ends (Kneedle).
    """
    from sklearn.neighbors import NearestNeighbors

    neighbors = NearestNeighbors(n_neighbors=min(min_samples, len(X) - 1)).fit(X)
    distances = np.sort(neighbors.kneighbors(X)[0][:, -1])
    if distances[-1] <= distances[0]:
        return float(distances[-1]) or 1e-9
    x = np.linspace(0.0, 1.0, len(distances))
    y = (distances - distances[0]) / (distances[-1] - distances[0])
    knee = int(np.argmax(x - y))
    return float(distances[knee]) or 1e-9


# Both ends of every pair of customers within eps of each other, each pair once.
Pairs = tuple[np.ndarray, np.ndarray]
# scikit-learn's neighbour searches ("auto") use a kd-tree up to this many fields and from this
# many customers on (DBSCAN's); otherwise distances by the dot-product expansion, whose rounding
# the pair list does not reproduce (a repeated customer is not at distance 0)
KD_TREE_MAX_FIELDS = 15
KD_TREE_MIN_CUSTOMERS = 12


def close_pairs(squared: np.ndarray, n: int, eps: float) -> Pairs:
    """The pairs within eps from pdist's condensed squared distances of n customers.

    "Within" is squared distance <= eps^2, as scikit-learn's trees decide it: choose_eps's eps
    is the distance of a pair, and that pair's squared distance can round to either side of
    eps^2, so comparing distances with eps would not give scikit-learn's neighbourhoods.
    """
    close = np.flatnonzero(squared <= eps * eps)
    # the condensed position of the pair (i, i + 1), for every i
    starts = np.cumsum(np.r_[0, np.arange(n - 1, 1, -1)])
    first = np.searchsorted(starts, close, side="right") - 1
    return first, close - starts[first] + first + 1


def pairs_among(pairs: Pairs, rows: np.ndarray, n: int) -> Pairs:
    """The pairs of customers `rows` (indices into n customers), renumbered as positions in
    `rows`: a half-sample's neighbourhoods at the same eps, without new distances."""
    position = np.full(n, -1)
    position[rows] = np.arange(len(rows))
    first, second = position[pairs[0]], position[pairs[1]]
    kept = (first >= 0) & (second >= 0)
    return first[kept], second[kept]


def fit_dbscan(
    X: np.ndarray, eps: float, min_samples: int, pairs: Pairs | None = None
) -> tuple[np.ndarray, DensityModel]:
    """DBSCAN labels (noise -1) and a model that assigns new rows to the nearest core.

    Where scikit-learn's DBSCAN would search a kd-tree, the labels are its own (tested) but
    come from the pairs within eps: `pairs` when known (`close_pairs`), else one pdist.
    scikit-learn's radius queries cost ~15 us per customer, most of the search's DBSCAN time.
    """
    from scipy.spatial.distance import pdist
    from sklearn.cluster import DBSCAN

    if X.shape[1] > KD_TREE_MAX_FIELDS or len(X) < KD_TREE_MIN_CUSTOMERS:
        dbscan = DBSCAN(eps=eps, min_samples=min_samples).fit(X)
        labels, core = dbscan.labels_.astype(np.int64), dbscan.core_sample_indices_
    else:
        if pairs is None:
            pairs = close_pairs(pdist(X, "sqeuclidean"), len(X), eps)
        labels, core = _density_labels(len(X), pairs, min_samples)
    model = DensityModel(
        core_points=X[core],
        core_labels=labels[core],
        eps=eps,
        min_samples=min_samples,
        n_segments=int(labels.max() + 1) if labels.size else 0,
    )
    return labels, model


def _density_labels(n: int, pairs: Pairs, min_samples: int) -> tuple[np.ndarray, np.ndarray]:
    """DBSCAN's labels and core customers as scikit-learn's scan produces them: core customers
    (min_samples within eps, themselves included) linked through each other form segments,
    numbered by their first core customer; a border customer joins the first-numbered
    segment among its core neighbours; the others are noise."""
    first, second = pairs
    counts = 1 + np.bincount(first, minlength=n) + np.bincount(second, minlength=n)
    core = np.flatnonzero(counts >= min_samples)
    labels = np.full(n, NOISE, dtype=np.int64)
    if not len(core):
        return labels, core
    is_core = counts >= min_samples
    linked = is_core[first] & is_core[second]
    from scipy import sparse
    from scipy.sparse.csgraph import connected_components

    graph = sparse.coo_matrix(
        (np.ones(np.count_nonzero(linked)), (first[linked], second[linked])), shape=(n, n)
    )
    component = connected_components(graph, directed=False)[1][core]
    found, first_core = np.unique(component, return_index=True)
    rank = np.empty(int(found.max()) + 1, dtype=np.int64)
    rank[found[np.argsort(first_core)]] = np.arange(len(found))
    labels[core] = rank[component]
    border = np.full(n, n, dtype=np.int64)
    for customer, neighbour in ((first, second), (second, first)):
        reach = is_core[neighbour] & ~is_core[customer]
        np.minimum.at(border, customer[reach], labels[neighbour[reach]])
    reached = border < n
    labels[reached] = border[reached]
    return labels, core
