"""Which algorithm and how many segments: every candidate scored on a bounded sample.

Two criteria decide k, because neither is right alone (measured on the quality benchmark,
`python -m bench.quality`, and on public labelled sets):

- Stability: prediction strength (Tibshirani & Walther 2005). Split the sample in halves,
  segment each, and measure how often customers that one half puts together are also put
  together by the segmentation learned on the other half; a partition's strength is that of
  its worst segment. It is measured on several random splits in both directions, each
  k-means half fitted with several starts, and summarised by the median and quartiles of
  those values: one split and two starts made it zigzag across k (0.44, 0.96, 0.49, ...) by
  local optima alone. k-means and Ward's tree are both measured; a k is *reproducible* when
  either reproduces it (median >= 0.8). Ward's tree has no local optima, which keeps 15 or 20
  groups measurable; k-means handles round groups of unequal sizes that Ward merges early.
- Separation: the silhouette of the segmentation of the whole sample (the better of the two).

The rule, in three steps:

1. The reproducible k with the best silhouette, unless a larger k is *clearly* reproducible
   (median >= CLEARLY_STABLE) and loses at most SILHOUETTE_TOLERANCE of silhouette: then the
   largest such k. Silhouette alone prefers 2 or 3 segments whenever real segments overlap,
   as customer personas do; stability alone over-splits a large round group, whose halves
   are split the same way every time.
2. More groups than half-samples can reproduce: when a larger k separates clearly better
   (silhouette at least MORE_GROUPS_MARGIN higher) and still mostly reproduces (median
   strength >= MORE_GROUPS_MIN_STRENGTH), the best separated such k wins. With many
   overlapping groups, one group lost in one half-sample sinks the worst-segment strength.
3. At the chosen k the reproducible algorithm with the better silhouette is kept; DBSCAN
   replaces it only when it separates much better and reproduces (see
   `_density_could_win`).

When no k is reproducible the most reproducible one is returned, with a warning. Every
O(n^2) step (Ward's tree, DBSCAN's neighbourhoods, silhouette) runs on the bounded sample only.

Work is shared where the result is the same: one pdist of the sample serves Ward's tree and
DBSCAN's neighbourhoods (the halves' DBSCAN keeps the sample's pairs within eps that fall in
the half), each Ward tree is cut for every k in one pass, the k of an algorithm share one
silhouette product, and explain reuses the silhouette distances when it measures the same
customers (every one of them, up to 1,000).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace

import numpy as np

from segmentation.errors import InsufficientDataError, Problem
from segmentation.pipeline.models import (
    NOISE,
    Algorithm,
    CentroidModel,
    Pairs,
    SampleDistances,
    SegmentModel,
    centroids_of,
    choose_eps,
    close_pairs,
    fit_dbscan,
    pairs_among,
    sample_distances,
    sample_kmeans,
    ward_cuts,
    ward_tree,
)

__all__ = [
    "PREDICTION_STRENGTH_THRESHOLD",
    "Candidate",
    "SearchResult",
    "count_distinct",
    "distinct_rows",
    "format_score",
    "k_values",
    "search",
]

PREDICTION_STRENGTH_THRESHOLD = 0.8
SEARCH_SAMPLE_SIZE = 2000
SILHOUETTE_SAMPLE_SIZE = 1000
# Random half-splits per candidate; each split gives two strengths (each half predicting the
# other). In auto two algorithms vote, so each needs fewer splits than when it runs alone.
STABILITY_SPLITS = 3
WARD_STABILITY_SPLITS = 2
SOLE_ALGORITHM_SPLITS = 6
# the halves split the whole search sample
STABILITY_SAMPLE_SIZE = SEARCH_SAMPLE_SIZE
# k-means restarts: on the sample (the labels that are kept), and on each half-sample
SEARCH_N_INIT = 3
STABILITY_N_INIT = 3
# half-sample fits stop when at most this share of their customers still changes segment
HALF_FIT_TOLERANCE = 0.005
# Step 1: a larger reproducible k replaces the best separated one when it is clearly
# reproducible and loses at most this much silhouette.
SILHOUETTE_TOLERANCE = 0.08
CLEARLY_STABLE = 0.85
# Step 2: a larger k wins when its silhouette is this much higher and its median strength
# at least this.
MORE_GROUPS_MARGIN = 0.03
MORE_GROUPS_MIN_STRENGTH = 0.5
# Below this many customers halves are too small to say anything: k falls back to silhouette.
MIN_CUSTOMERS_FOR_STABILITY = 20
# A test segment smaller than this cannot show co-membership reliably; it counts as unstable.
MIN_SEGMENT_FOR_STABILITY = 5
# A density segmentation must beat the best partition's silhouette by this much to be chosen,
# and may not call more than MAX_NOISE_SHARE of the customers outliers.
DENSITY_SILHOUETTE_MARGIN = 0.1
MAX_NOISE_SHARE = 0.3


def k_values(
    n_clusters: int | None,
    k_range: Sequence[int] | None,
    n_customers: int,
    n_distinct: int,
    default_range: Sequence[int],
) -> list[int]:
    """The k to try, checked against the data (the options' own bounds are checked by
    `AnalysisOptions`); problems name the option and carry its value."""
    if n_clusters is not None:
        if n_clusters > n_customers:
            raise InsufficientDataError(
                Problem(
                    f"n_clusters={n_clusters} should be <= n_customers={n_customers}",
                    field="n_clusters",
                )
            )
        if n_clusters > n_distinct:
            raise InsufficientDataError(
                Problem(
                    f"n_clusters={n_clusters} but only {n_distinct} customers differ on the "
                    "fields used",
                    field="n_clusters",
                )
            )
        return [n_clusters]
    low, high = k_range if k_range is not None else default_range
    # the default range keeps >= 5 customers per segment in each stability half-sample
    # (n / 2 / 5); an explicit range only needs ~3 per segment. Never more than distinct rows.
    per_segment = 3 if k_range is not None else 2 * MIN_SEGMENT_FOR_STABILITY
    high = min(high, n_distinct, max(2, n_customers // per_segment))
    if low > high:
        raise InsufficientDataError(
            Problem(
                f"k_range starts at {low} but {n_customers} customers ({n_distinct} distinct) "
                f"support at most {high} segments",
                field="k_range",
            )
        )
    return list(range(low, high + 1))


def distinct_rows(rows: np.ndarray) -> int:
    """How many rows differ, as np.unique(rows, axis=0) counts them, at a fifth of its cost:
    each row as one opaque byte string rather than a record of float fields (+0.0 first, so
    that -0.0 and 0.0, equal floats, are the same bytes)."""
    rows = np.ascontiguousarray(rows + 0.0)
    return len(np.unique(rows.view(np.dtype((np.void, rows.dtype.itemsize * rows.shape[1])))))


def count_distinct(X: np.ndarray, cap: int, random_state: int) -> int:
    """Distinct customers on the fields used, counted up to `cap` (enough to bound k).

    Exact about "all identical" (a range check over every row); the count itself comes from
    a random sample of at most 5,000 rows, since sorting a million rows to bound k is waste.
    """
    if len(X) == 0 or float(np.ptp(X, axis=0).max()) == 0.0:
        return min(len(X), 1)
    rng = np.random.default_rng(random_state)
    probe = X[rng.choice(len(X), size=min(len(X), 5000), replace=False)]
    return max(2, min(distinct_rows(probe.round(9)), cap))


def format_score(value: float, digits: int = 2) -> str:
    """A score for a sentence: "n/a" rather than "nan" when it could not be measured."""
    return f"{value:.{digits}f}" if np.isfinite(value) else "n/a"


@dataclass(frozen=True)
class Candidate:
    """One algorithm at one k, scored on the search sample.

    `prediction_strength` is the median over the half-sample splits and
    `strength_quartiles` the 25th and 75th percentiles of the same values (NaN when
    stability was not measured).
    """

    algorithm: Algorithm
    k: int
    silhouette: float
    calinski_harabasz: float
    davies_bouldin: float
    prediction_strength: float
    strength_quartiles: tuple[float, float] = (float("nan"), float("nan"))
    noise_share: float = 0.0
    note: str = ""
    #: every half-sample strength measured, two per split
    strengths: tuple[float, ...] = ()

    @property
    def is_stable(self) -> bool:
        return bool(self.prediction_strength >= PREDICTION_STRENGTH_THRESHOLD)

    @property
    def silhouette_or_worst(self) -> float:
        return self.silhouette if np.isfinite(self.silhouette) else -1.0


@dataclass(frozen=True)
class SilhouetteSample:
    """The customers (row indices into X) the silhouette was measured on and their pairwise
    distances: explain measures its metrics on the same rows up to 1,000 customers."""

    rows: np.ndarray
    distances: np.ndarray


@dataclass(frozen=True)
class SearchResult:
    candidates: tuple[Candidate, ...]
    chosen: Candidate
    reason: str
    sample_index: np.ndarray
    sample_labels: np.ndarray
    model: SegmentModel
    silhouette_sample: SilhouetteSample
    dbscan_eps: float | None = None
    dbscan_min_samples: int | None = None
    #: the chosen k is the largest of several tried: more segments may exist
    more_segments_possible: bool = False


def prediction_strength(test_labels: np.ndarray, predicted: np.ndarray) -> float:
    """Worst share, over the test segments, of member pairs the other model also pairs.

    One contingency table of test segment by predicted segment (noise left out of both)
    instead of a pass over the customers per test segment.
    """
    tested = test_labels != NOISE
    if not tested.any():
        return 0.0
    _, segment = np.unique(test_labels[tested], return_inverse=True)
    sizes = np.bincount(segment)
    if sizes.min() < MIN_SEGMENT_FOR_STABILITY:
        # too small to test is not a reproducible segment: skipping it would let k grow
        # until every tested segment is trivially stable
        return 0.0
    predicted = predicted[tested]
    paired = predicted != NOISE
    width = int(predicted.max()) + 1 if paired.any() else 1
    table = np.bincount(
        segment[paired] * width + predicted[paired], minlength=len(sizes) * width
    ).reshape(len(sizes), width)
    together = (table * (table - 1)).sum(axis=1)
    return float(min(float(t) / (n * (n - 1)) for t, n in zip(together, sizes, strict=True)))


@dataclass(frozen=True)
class _Coded:
    """A labelling ready for the silhouette: its clustered customers, their segment index
    0..k-1 and the one-hot membership matrix (clustered customers x k)."""

    clustered: np.ndarray
    codes: np.ndarray
    members: np.ndarray


def _coded(labels: np.ndarray) -> _Coded | None:
    """None when the silhouette is undefined (fewer than 2 segments, or one per customer)."""
    clustered = labels != NOISE
    present = np.unique(labels[clustered])
    if not 2 <= len(present) < clustered.sum():
        return None
    codes = np.searchsorted(present, labels[clustered])
    members = np.zeros((len(codes), len(present)))
    members[np.arange(len(codes)), codes] = 1.0
    return _Coded(clustered, codes, members)


def _silhouette(coded: _Coded, sums: np.ndarray) -> float:
    """The mean silhouette from each customer's summed distance to every segment."""
    codes = coded.codes
    sizes = coded.members.sum(axis=0)
    own_size = sizes[codes]
    a = sums[np.arange(len(codes)), codes] / np.maximum(own_size - 1, 1)
    mean_to = sums / sizes[None, :]
    mean_to[np.arange(len(codes)), codes] = np.inf
    b = mean_to.min(axis=1)
    scores = np.where(own_size > 1, (b - a) / np.maximum(np.maximum(a, b), 1e-300), 0.0)
    return float(scores.mean())


def silhouettes_from_distances(
    distances: np.ndarray, labellings: Sequence[np.ndarray]
) -> list[float]:
    """Mean silhouette of each labelling from a precomputed distance matrix; noise rows and
    columns left out.

    Equal to `sklearn.metrics.silhouette_score(..., metric="precomputed")` (tested), but
    matrix products instead of per-call validation and chunking. The labellings without noise
    share one product: the 1,000 x 1,000 matrix is read once rather than once per labelling
    (~1 ms each; the search scores nine k per algorithm).
    """
    coded = [_coded(labels) for labels in labellings]
    whole = {i: c.members for i, c in enumerate(coded) if c is not None and c.clustered.all()}
    sums: dict[int, np.ndarray] = {}
    if whole:
        product = distances @ np.hstack(list(whole.values()))
        edges = np.cumsum([members.shape[1] for members in whole.values()])[:-1]
        sums.update(zip(whole, np.split(product, edges, axis=1), strict=True))
    silhouettes = []
    for i, c in enumerate(coded):
        if c is None:
            silhouettes.append(float("nan"))
            continue
        if i not in sums:
            # with noise to drop, the labelling's own copy of the matrix
            sums[i] = distances[np.ix_(c.clustered, c.clustered)] @ c.members
        silhouettes.append(_silhouette(c, sums[i]))
    return silhouettes


def silhouette_from_distances(distances: np.ndarray, labels: np.ndarray) -> float:
    """`silhouettes_from_distances` of one labelling."""
    return silhouettes_from_distances(distances, [labels])[0]


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


def clustering_scores_of(
    X: np.ndarray,
    labellings: Sequence[np.ndarray],
    distances: np.ndarray,
    silhouette_index: np.ndarray,
) -> list[tuple[float, float, float]]:
    """Silhouette (on the distance sample), Calinski-Harabasz and Davies-Bouldin of each
    labelling of X; noise left out."""
    silhouettes = silhouettes_from_distances(
        distances, [labels[silhouette_index] for labels in labellings]
    )
    return [
        (silhouette, *calinski_davies(X, labels))
        for silhouette, labels in zip(silhouettes, labellings, strict=True)
    ]


def clustering_scores(
    X: np.ndarray, labels: np.ndarray, distances: np.ndarray, silhouette_index: np.ndarray
) -> tuple[float, float, float]:
    """`clustering_scores_of` one labelling."""
    return clustering_scores_of(X, [labels], distances, silhouette_index)[0]


# a candidate, its labels on the search sample, and its model
_Scored = tuple[Candidate, np.ndarray, SegmentModel]


@dataclass(frozen=True)
class _Fit:
    """One algorithm fitted at one k on the sample, before scoring, with the strengths measured
    so far (Ward's, measured with the fit)."""

    k: int
    labels: np.ndarray
    model: SegmentModel
    strengths: list[float] = field(default_factory=list)


def _summarise(strengths: list[float]) -> tuple[float, tuple[float, float]]:
    values = np.array(strengths)
    low, median, high = np.quantile(values, [0.25, 0.5, 0.75])
    return float(median), (float(low), float(high))


def _with_strengths(candidate: Candidate, strengths: list[float]) -> Candidate:
    median, quartiles = _summarise(strengths)
    return replace(
        candidate, prediction_strength=median, strength_quartiles=quartiles,
        strengths=tuple(round(v, 4) for v in strengths),
    )  # fmt: skip


class _Search:
    """State shared by the candidates: the sample, its halves and its distance matrices (the
    silhouette's, and the whole sample's pdist when Ward or DBSCAN runs)."""

    def __init__(
        self, X: np.ndarray, random_state: int, sample_size: int, algorithm: Algorithm
    ) -> None:
        self.random_state = random_state
        rng = np.random.default_rng(random_state)
        n = len(X)
        self.sample_index = np.sort(rng.choice(n, size=min(n, sample_size), replace=False))
        self.X = X[self.sample_index]
        from sklearn.metrics import pairwise_distances

        m = len(self.X)
        self.silhouette_index = np.sort(
            rng.choice(m, size=min(m, SILHOUETTE_SAMPLE_SIZE), replace=False)
        )
        self.distances = pairwise_distances(self.X[self.silhouette_index])
        self.with_stability = m >= MIN_CUSTOMERS_FOR_STABILITY
        # halves of at most STABILITY_SAMPLE_SIZE customers of the sample: the fits of the
        # splits are most of the search's cost
        held = min(m, STABILITY_SAMPLE_SIZE)
        self.halves = [
            np.array_split(rng.permutation(m)[:held], 2) for _ in range(SOLE_ALGORITHM_SPLITS)
        ]
        # computed before the threads start, so that Ward and DBSCAN share it
        self.pairwise: SampleDistances | None = (
            sample_distances(self.X) if algorithm is not Algorithm.KMEANS else None
        )

    @property
    def silhouette_sample(self) -> SilhouetteSample:
        return SilhouetteSample(self.sample_index[self.silhouette_index], self.distances)

    def candidates(
        self, algorithm: Algorithm, fits: Sequence[_Fit], note: str = ""
    ) -> list[Candidate]:
        """The fits of one algorithm scored together (one silhouette product for all k)."""
        scores = clustering_scores_of(
            self.X, [fit.labels for fit in fits], self.distances, self.silhouette_index
        )
        nan = float("nan")
        found = []
        for fit, (silhouette, ch, db) in zip(fits, scores, strict=True):
            strengths = fit.strengths
            median, quartiles = _summarise(strengths) if strengths else (nan, (nan, nan))
            found.append(Candidate(
                algorithm, fit.k, silhouette, ch, db, median, strength_quartiles=quartiles,
                noise_share=float(np.mean(fit.labels == NOISE)), note=note,
                strengths=tuple(round(s, 4) for s in strengths),
            ))  # fmt: skip
        return found

    def _pair_strength(self, fit_a: SegmentModel, labels_b: np.ndarray, b: np.ndarray) -> float:
        return prediction_strength(labels_b, fit_a.assign(self.X[b]))

    def kmeans(self, k: int) -> _Fit:
        """k-means on the sample; its stability is measured by `kmeans_strength`, when the
        rule needs it."""
        labels, model = sample_kmeans(self.X, k, self.random_state, SEARCH_N_INIT)
        return _Fit(k, labels, model)

    def scored(self, algorithm: Algorithm, fits: Sequence[_Fit]) -> list[_Scored]:
        candidates = self.candidates(algorithm, fits)
        return [(c, fit.labels, fit.model) for c, fit in zip(candidates, fits, strict=True)]

    def kmeans_strength(self, candidate: Candidate, splits: int) -> Candidate:
        """The k-means candidate with its prediction strength over `splits` splits."""
        strengths = []
        for split, (a, b) in enumerate(self.halves[:splits]):
            seed = self.random_state + 7919 * (split + 1)
            labels_a, model_a = sample_kmeans(
                self.X[a], candidate.k, seed, STABILITY_N_INIT, tolerance=HALF_FIT_TOLERANCE
            )
            labels_b, model_b = sample_kmeans(
                self.X[b], candidate.k, seed + 1, STABILITY_N_INIT, tolerance=HALF_FIT_TOLERANCE
            )
            strengths.append(self._pair_strength(model_a, labels_b, b))
            strengths.append(self._pair_strength(model_b, labels_a, a))
        return _with_strengths(candidate, strengths)

    def hierarchical(self, ks: Sequence[int], splits: int) -> list[_Scored]:
        """Ward at every k: one tree of the sample and one per half, each cut for every k."""
        assert self.pairwise is not None
        cuts = ward_cuts(ward_tree(self.pairwise.euclidean), ks)
        halves = (
            [(self.X[a], self.X[b]) for a, b in self.halves[:splits]] if self.with_stability else []
        )
        half_cuts = [
            (ward_cuts(ward_tree(Xa), ks), ward_cuts(ward_tree(Xb), ks)) for Xa, Xb in halves
        ]
        fits = []
        for k in ks:
            strengths = []
            for (Xa, Xb), (cuts_a, cuts_b) in zip(halves, half_cuts, strict=True):
                labels_a, labels_b = cuts_a[k], cuts_b[k]
                model_a = CentroidModel(centroids_of(Xa, labels_a, k))
                model_b = CentroidModel(centroids_of(Xb, labels_b, k))
                strengths.append(prediction_strength(labels_b, model_a.assign(Xb)))
                strengths.append(prediction_strength(labels_a, model_b.assign(Xa)))
            model = CentroidModel(centroids_of(self.X, cuts[k], k))
            fits.append(_Fit(k, cuts[k], model, strengths))
        return self.scored(Algorithm.HIERARCHICAL, fits)

    def dbscan(self, eps: float | None, min_samples: int | None) -> _Density:
        """DBSCAN on the sample, without its stability (see `dbscan_strength`)."""
        assert self.pairwise is not None
        if min_samples is None:
            # Ester et al.'s rule of thumb (2 x dimensions, at least 5), kept below a quarter of
            # the sample so that small inputs can still have a dense core
            min_samples = min(max(5, 2 * self.X.shape[1]), max(2, len(self.X) // 4))
        eps = eps or choose_eps(self.X, min_samples)
        pairs = close_pairs(self.pairwise.squared, len(self.X), eps)
        labels, model = fit_dbscan(self.X, eps, min_samples, pairs)
        note = f"eps={eps:.3g}, min_samples={min_samples}"
        fit = _Fit(model.n_segments, labels, model)
        candidate = self.candidates(Algorithm.DBSCAN, [fit], note)[0]
        return _Density(candidate, labels, model, eps, min_samples, pairs)

    def dbscan_strength(self, density: _Density) -> Candidate:
        """The density candidate with its prediction strength: DBSCAN refitted on the halves
        of WARD_STABILITY_SPLITS splits (fits are costly, and the result rarely matters). A
        half's pairs within eps are the sample's pairs inside it."""
        candidate = density.candidate
        # with fewer than 2 segments there is no co-membership to test, and it cannot win
        if not self.with_stability or candidate.k < 2:
            return candidate
        half_min = max(2, density.min_samples // 2)
        strengths = []
        for a, b in self.halves[:WARD_STABILITY_SPLITS]:
            labels_a, model_a = fit_dbscan(
                self.X[a], density.eps, half_min, pairs_among(density.pairs, a, len(self.X))
            )
            labels_b, model_b = fit_dbscan(
                self.X[b], density.eps, half_min, pairs_among(density.pairs, b, len(self.X))
            )
            strengths.append(self._pair_strength(model_a, labels_b, b))
            strengths.append(self._pair_strength(model_b, labels_a, a))
        return _with_strengths(candidate, strengths)


@dataclass(frozen=True)
class _Density:
    """The DBSCAN candidate, its labels and model on the sample, the eps and min_samples it
    ran with, and the sample's pairs within eps (which its halves reuse)."""

    candidate: Candidate
    labels: np.ndarray
    model: SegmentModel
    eps: float
    min_samples: int
    pairs: Pairs


@dataclass(frozen=True)
class _AtK:
    """What the rule knows of one k: the candidates at that k (k-means, Ward or both), the
    best strength and the best silhouette among them. A k is reproducible when either
    algorithm reproduces it: Ward's tree has no local optima, k-means handles round groups
    of unequal size, and each misses what the other sees."""

    k: int
    candidates: tuple[Candidate, ...]

    @property
    def strength(self) -> float:
        values = [c.prediction_strength for c in self.candidates]
        finite = [v for v in values if np.isfinite(v)]
        return max(finite) if finite else float("nan")

    @property
    def silhouette(self) -> float:
        return max(c.silhouette_or_worst for c in self.candidates)

    @property
    def is_stable(self) -> bool:
        return bool(self.strength >= PREDICTION_STRENGTH_THRESHOLD)

    @property
    def best(self) -> Candidate:
        """The candidate to keep at this k: a reproducible one if any, then the best
        separated."""
        return max(self.candidates, key=lambda c: (c.is_stable, c.silhouette_or_worst))


Measure = Callable[[Candidate], Candidate]


def _unmeasured(candidate: Candidate) -> bool:
    return not candidate.strengths


@dataclass(frozen=True)
class KChoice:
    """The winner of `choose_k`, the sentence saying why, and every partition with the
    strengths measured on the way."""

    chosen: Candidate
    reason: str
    partitions: tuple[Candidate, ...]


class _Views:
    """The candidates per k, measured on demand."""

    def __init__(self, partitions: Sequence[Candidate], measure: Measure | None) -> None:
        self.by_k: dict[int, list[Candidate]] = {}
        for candidate in partitions:
            self.by_k.setdefault(candidate.k, []).append(candidate)
        self.ks = sorted(self.by_k)
        self.measure = measure

    def __call__(self, k: int) -> _AtK:
        return _AtK(k, tuple(self.by_k[k]))

    def measured(self, k: int) -> _AtK:
        if self.measure is not None:
            self.by_k[k] = [self.measure(c) if _unmeasured(c) else c for c in self.by_k[k]]
        return self(k)

    def at_least(self, k: int, threshold: float) -> _AtK | None:
        """The view of k if its strength reaches `threshold`, measuring it only if needed."""
        found = self(k)
        if not found.strength >= threshold:  # NaN (unmeasured) included
            found = self.measured(k)
        return found if found.strength >= threshold else None

    def choice(self, view: _AtK, reason: str) -> KChoice:
        partitions = tuple(c for k in self.ks for c in self.by_k[k])
        return KChoice(view.best, reason, partitions)


def _fallback(views: _Views, with_stability: bool) -> KChoice:
    """Without stability (too few customers) or without any reproducible k."""
    if not with_stability:
        best = max((views(k) for k in views.ks), key=lambda v: v.silhouette)
        return views.choice(best, (
            f"k={best.k} has the best silhouette ({format_score(best.silhouette)}); with fewer "
            f"than {MIN_CUSTOMERS_FOR_STABILITY} customers stability cannot be measured."
        ))  # fmt: skip
    # every k was measured on the way
    best = max((views(k) for k in views.ks), key=lambda v: (v.strength, -v.k))
    return views.choice(best, (
        f"No k reached prediction strength {PREDICTION_STRENGTH_THRESHOLD} (median over "
        f"half-sample splits), so the data has no clearly reproducible segments; k={best.k} is "
        f"the most reproducible ({format_score(best.strength)}). Treat these segments as a "
        "convenient partition."
    ))  # fmt: skip


def _reason(chosen: _AtK, separated: _AtK, reproducible: _AtK, beyond: bool) -> str:
    if beyond:
        return (
            f"k={chosen.k}: its segments separate clearly better (silhouette "
            f"{format_score(chosen.silhouette)} vs {format_score(reproducible.silhouette)} at "
            f"k={reproducible.k}, the best reproducible k) and mostly reproduce (prediction "
            f"strength {format_score(chosen.strength)}), so there are more groups than "
            "half-samples can reproduce one by one"
        )
    reason = (
        f"k={chosen.k}: the segments reproduce on held-out halves (prediction strength "
        f"{format_score(chosen.strength)} >= {PREDICTION_STRENGTH_THRESHOLD}, median over "
        "half-sample splits)"
    )
    if chosen.k == separated.k:
        return reason + (
            f" and separate best of the reproducible k (silhouette "
            f"{format_score(chosen.silhouette)})"
        )
    return reason + (
        f", clearly (>= {CLEARLY_STABLE}), with a silhouette ({format_score(chosen.silhouette)}) "
        f"within {SILHOUETTE_TOLERANCE} of the best separated reproducible k (k={separated.k}, "
        f"{format_score(separated.silhouette)}): more segments, as well founded"
    )


def choose_k(
    partitions: Sequence[Candidate], with_stability: bool, measure: Measure | None = None
) -> KChoice:
    """Steps 1 and 2 of the module docstring over the partitions tried (one or two
    algorithms per k).

    A partition may come without its strength; `measure` then supplies it, and is called only
    for the k the rule needs to decide (their prediction strength is most of the search's
    cost). The choice is the one every strength measured would give: a k is only skipped when
    no strength could change the outcome.
    """
    views = _Views(partitions, measure)
    ks = views.ks
    by_silhouette = sorted(ks, key=lambda k: -views(k).silhouette)
    # step 1: the best separated reproducible k, scanned from the best silhouette down
    separated = (
        next((v for k in by_silhouette if (v := views.at_least(k, PREDICTION_STRENGTH_THRESHOLD))),
             None)
        if with_stability
        else None
    )  # fmt: skip
    if separated is None:
        return _fallback(views, with_stability)
    floor = separated.silhouette - SILHOUETTE_TOLERANCE
    finer = [
        v
        for k in ks
        if k > separated.k
        and views(k).silhouette >= floor
        and (v := views.at_least(k, CLEARLY_STABLE)) is not None
    ]
    reproducible = max(finer, key=lambda v: v.k) if finer else separated
    # step 2: more groups than half-samples can reproduce
    more = [
        v
        for k in ks
        if k > reproducible.k
        and views(k).silhouette >= reproducible.silhouette + MORE_GROUPS_MARGIN
        and (v := views.at_least(k, MORE_GROUPS_MIN_STRENGTH)) is not None
    ]
    beyond = max(more, key=lambda v: v.silhouette) if more else None
    # every algorithm at the chosen k measured, so that the better founded one is kept and
    # the sentence quotes the final figures
    chosen = views.measured(beyond.k if beyond is not None else reproducible.k)
    reason = _reason(chosen, separated, reproducible, beyond is not None)
    if len(chosen.candidates) > 1:
        reason += f"; at k={chosen.k} {chosen.best.algorithm} has the better-founded segments"
    return views.choice(chosen, reason + ".")


def _density_could_win(density: Candidate | None, chosen: Candidate) -> bool:
    """DBSCAN replaces the chosen partition only with 2+ segments, few outliers and a much
    better silhouette (its stability is then measured, and must hold too)."""
    return (
        density is not None
        and density.k >= 2
        and density.noise_share <= MAX_NOISE_SHARE
        and np.isfinite(density.silhouette)
        and density.silhouette > chosen.silhouette_or_worst + DENSITY_SILHOUETTE_MARGIN
    )


def _density_reason(density: Candidate, chosen: Candidate) -> str:
    return (
        f"dbscan found {density.k} dense segments ({density.noise_share:.0%} outliers) with "
        f"silhouette {format_score(density.silhouette)}, better than {chosen.algorithm} "
        f"k={chosen.k} ({format_score(chosen.silhouette)}) by more than "
        f"{DENSITY_SILHOUETTE_MARGIN}, and stable (prediction strength "
        f"{format_score(density.prediction_strength)})."
    )


def _fit_all(
    state: _Search,
    algorithm: Algorithm,
    k_values: Sequence[int],
    ward_splits: int,
    eps: float | None,
    min_samples: int | None,
) -> tuple[list[_Scored], _Density | None]:
    """Every candidate fitted on the sample (k-means strengths still unmeasured)."""
    # Two threads: the fits spend part of their time in numpy/scipy with the GIL released.
    # One task per k-means k, one for Ward (its tree serves every k), one for DBSCAN.
    with ThreadPoolExecutor(max_workers=2) as threads:
        ward = (
            threads.submit(state.hierarchical, k_values, ward_splits)
            if algorithm in (Algorithm.AUTO, Algorithm.HIERARCHICAL)
            else None
        )
        density = (
            threads.submit(state.dbscan, eps, min_samples)
            if algorithm in (Algorithm.AUTO, Algorithm.DBSCAN)
            else None
        )
        kmeans = (
            [threads.submit(state.kmeans, k) for k in k_values]
            if algorithm in (Algorithm.AUTO, Algorithm.KMEANS)
            else []
        )
        fits = [future.result() for future in kmeans]
        partitions = state.scored(Algorithm.KMEANS, fits) if fits else []
        partitions += ward.result() if ward is not None else []
        return partitions, density.result() if density is not None else None


def _dbscan_requested(state: _Search, density: _Density) -> SearchResult:
    chosen = state.dbscan_strength(density)
    reason = f"dbscan was requested; it found {chosen.k} dense segments ({chosen.note})."
    if chosen.k < 1:
        reason += " Every customer is an outlier at this density."
    return _density_result(state, density, (chosen,), chosen, reason)


def _density_result(
    state: _Search,
    density: _Density,
    candidates: tuple[Candidate, ...],
    chosen: Candidate,
    reason: str,
) -> SearchResult:
    return SearchResult(
        candidates, chosen, reason, state.sample_index, density.labels, density.model,
        state.silhouette_sample, density.eps, density.min_samples,
    )  # fmt: skip


def _as_measured(choice: KChoice, with_stability: bool) -> dict[tuple[Algorithm, int], Candidate]:
    """The partitions as measured; a k-means k whose strength could not change the choice
    keeps NaN, with a note saying why."""
    note = "stability not measured: it could not change the choice"
    return {
        (c.algorithm, c.k): (replace(c, note=note) if with_stability and _unmeasured(c) else c)
        for c in choice.partitions
    }


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
    state = _Search(X, random_state, sample_size, algorithm)
    # in auto two algorithms vote, so each is measured on fewer splits than when alone
    sole = SOLE_ALGORITHM_SPLITS
    kmeans_splits = sole if algorithm is Algorithm.KMEANS else STABILITY_SPLITS
    ward_splits = sole if algorithm is Algorithm.HIERARCHICAL else WARD_STABILITY_SPLITS
    partitions, density = _fit_all(state, algorithm, k_values, ward_splits, eps, min_samples)
    if algorithm is Algorithm.DBSCAN:
        assert density is not None
        return _dbscan_requested(state, density)

    def measure(candidate: Candidate) -> Candidate:
        return state.kmeans_strength(candidate, kmeans_splits)

    choice = choose_k([c for c, _, _ in partitions], state.with_stability, measure)
    measured = _as_measured(choice, state.with_stability)
    chosen = measured[(choice.chosen.algorithm, choice.chosen.k)]
    candidates = [measured[(c.algorithm, c.k)] for c, _, _ in partitions]
    if density is not None and _density_could_win(density.candidate, chosen):
        found = state.dbscan_strength(density)
        if found.is_stable:
            reason = _density_reason(found, chosen)
            return _density_result(state, density, (*candidates, found), found, reason)
        candidates.append(found)
    elif density is not None:
        candidates.append(density.candidate)
    _, labels, model = next(r for r in partitions if (r[0].algorithm, r[0].k) == (
        chosen.algorithm, chosen.k))  # fmt: skip
    return SearchResult(
        tuple(candidates), chosen, f"{chosen.algorithm} with {choice.reason}",
        state.sample_index, labels, model, state.silhouette_sample,
        # at the top of a range of several k, the best segmentation may lie beyond it
        more_segments_possible=len(k_values) > 1 and chosen.k == max(k_values),
    )  # fmt: skip
