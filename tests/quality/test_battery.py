"""The number of segments on data we did not design: a fixed subset of the quality benchmark.

`python -m bench.quality` runs the whole battery (scikit-learn's labelled sets, overlapping and
unbalanced `make_blobs`, `make_classification`, two customer generators, the real files); this
is a subset of it that runs in about half a minute. The thresholds are what was measured on
this subset minus a small slack (see the README's table for every set), never "more than half".
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score

from bench.battery import battery, overlapping_blobs
from bench.quality import standardized
from segmentation import analyze

pytestmark = pytest.mark.slow

SUBSET = (
    "wine",
    "breast_cancer",
    "blobs_k3_d5_sep3.2_1to3",
    "blobs_k5_d6_sep3.5_1to10",
    "blobs_k8_d3_sep4_1to10",
    "blobs_k10_d5_sep3.8_1to4",
    "blobs_k15_d2_sep4.5_1to3",
    "blobs_k20_d6_sep4_1to10",
    "classification_k4_f20_inf5",
    "classification_k6_f15_inf6",
    "customers_k3_s3003",
    "customers_k4_s3004",
    "customers_k5_s3005",
    "customers_k6_s3006",
    "customers_k7_s3007",
    "customers_k8_s3008",
)


@pytest.fixture(scope="module")
def outcomes() -> dict[str, tuple[int, int, float, float]]:
    """name -> (true k, k found, ARI, oracle ARI: k-means at the true k, standardized)."""
    found = {}
    for data in battery():
        if data.name not in SUBSET:
            continue
        analysis = analyze(data.frame, k_range=data.k_range)
        oracle = KMeans(data.true_k, n_init=10, random_state=0).fit_predict(standardized(data))
        found[data.name] = (
            data.true_k,
            len(analysis.segments),
            adjusted_rand_score(data.labels, analysis.labels),
            adjusted_rand_score(data.labels, oracle),
        )
    assert set(found) == set(SUBSET)
    return found


def test_the_true_number_of_segments(outcomes) -> None:
    exact = [name for name, (true_k, k, *_) in outcomes.items() if k == true_k]
    within = [
        name for name, (true_k, k, *_) in outcomes.items() if abs(k - true_k) <= 0.15 * true_k
    ]
    # measured: 16 of 16 exact
    assert len(exact) >= 15, outcomes
    assert len(within) >= 15, outcomes


def test_segments_match_the_reference_at_least_as_well_as_kmeans_at_the_true_k(outcomes) -> None:
    ratios = [ari / oracle for *_, ari, oracle in outcomes.values() if oracle > 0]
    # measured: median 1.00 (1.0 on blobs, up to 3x on customers, whose money fields are
    # skewed and whose categories a plain standardization mishandles)
    assert np.median(ratios) >= 0.98, outcomes
    # measured: lowest 0.72 (breast_cancer, whose two classes overlap)
    assert min(ari for *_, ari, _ in outcomes.values()) >= 0.68, outcomes


def test_customer_populations_from_an_independent_generator(outcomes) -> None:
    customers = {n: o for n, o in outcomes.items() if n.startswith("customers_")}
    # measured: 6 of 6
    assert sum(k == true_k for true_k, k, *_ in customers.values()) >= 5, customers


def test_the_top_of_the_range_says_more_segments_may_exist() -> None:
    X, truth = overlapping_blobs(15, 2, 4000, 4.5, 3.0, seed=7)
    frame = pd.DataFrame(X, columns=["x", "y"])
    default = analyze(frame)
    assert len(default.segments) == 10
    assert "try kRange [2, 20]" in default.k_selection.reason
    assert any("try kRange [2, 20]" in w for w in default.data_quality.warnings)
    # the advice taken: the 15 groups are found, and the warning is gone
    widened = analyze(frame, k_range=(2, 20))
    assert len(widened.segments) == 15
    assert adjusted_rand_score(truth, widened.labels) >= 0.9
    assert not any("kRange" in w for w in widened.data_quality.warnings)
