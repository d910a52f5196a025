"""Invariants of `analyze` on generated inputs: every customer once, seeds, row order, labels."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.metrics import adjusted_rand_score

from segmentation import analyze
from segmentation.analysis import content_digest
from segmentation.pipeline.fit import relabel as _relabel
from segmentation.pipeline.models import NOISE, CentroidModel

# database=None: examples are not saved to .hypothesis/ in the repository
SETTINGS = settings(
    max_examples=25, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)


@st.composite
def numeric_frames(draw: st.DrawFn) -> pd.DataFrame:
    """3-15 customers, 1-3 numeric fields of small integers, at least 2 distinct customers."""
    n = draw(st.integers(3, 15))
    n_fields = draw(st.integers(1, 3))
    values = draw(
        st.lists(
            st.lists(st.integers(-50, 50), min_size=n_fields, max_size=n_fields),
            min_size=n,
            max_size=n,
        ).filter(lambda rows: len({tuple(r) for r in rows}) >= 2)
    )
    return pd.DataFrame(np.array(values, dtype=float), columns=[f"f{i}" for i in range(n_fields)])


@st.composite
def separated_frames(draw: st.DrawFn) -> tuple[pd.DataFrame, int]:
    """2-3 groups of 2-8 customers, 100 apart on every field, jittered by at most 3."""
    k = draw(st.integers(2, 3))
    n_fields = draw(st.integers(1, 3))
    rows = []
    for group in range(k):
        size = draw(st.integers(2, 8))
        for _ in range(size):
            jitter = draw(st.lists(st.integers(0, 3), min_size=n_fields, max_size=n_fields))
            rows.append([100.0 * group + j for j in jitter])
    frame = pd.DataFrame(rows, columns=[f"f{i}" for i in range(n_fields)])
    return frame, k


@SETTINGS
@given(frame=numeric_frames(), seed=st.integers(0, 2**16))
def test_every_customer_is_assigned_exactly_once(frame: pd.DataFrame, seed: int) -> None:
    analysis = analyze(frame, n_clusters=2, random_state=seed)
    n = len(frame)
    labels = analysis.labels
    assert len(labels) == n
    assert sum(s.size for s in analysis.segments) == n
    assert [s.segment_id for s in analysis.segments] == list(range(len(analysis.segments)))
    assert set(labels.tolist()) <= set(range(len(analysis.segments)))
    members = np.concatenate([analysis.members(s.segment_id) for s in analysis.segments])
    assert sorted(members.tolist()) == list(range(n))
    for segment in analysis.segments:
        assert segment.size == int((labels == segment.segment_id).sum())
    assert len(analysis.confidence) == n


@SETTINGS
@given(frame=numeric_frames(), seed=st.integers(0, 2**16))
def test_same_seed_same_labels(frame: pd.DataFrame, seed: int) -> None:
    first = analyze(frame, n_clusters=2, random_state=seed)
    second = analyze(frame, n_clusters=2, random_state=seed)
    assert np.array_equal(first.labels, second.labels)
    assert [s.name for s in first.segments] == [s.name for s in second.segments]
    assert first.feature_importance == second.feature_importance


@SETTINGS
@given(data=separated_frames(), order=st.randoms(use_true_random=False), seed=st.integers(0, 99))
def test_row_order_does_not_change_the_partition(
    data: tuple[pd.DataFrame, int], order: object, seed: int
) -> None:
    frame, k = data
    permutation = list(range(len(frame)))
    order.shuffle(permutation)  # type: ignore[attr-defined]
    shuffled = frame.iloc[permutation].reset_index(drop=True)
    original = analyze(frame, algorithm="kmeans", n_clusters=k, random_state=seed)
    reordered = analyze(shuffled, algorithm="kmeans", n_clusters=k, random_state=seed)
    # back in the original order
    restored = np.empty_like(reordered.labels)
    restored[permutation] = reordered.labels
    assert adjusted_rand_score(original.labels, restored) == 1.0
    # segments are numbered by size, so the same partition gives the same sizes and centroids
    assert [s.size for s in original.segments] == [s.size for s in reordered.segments]
    assert sorted(map(str, (s.centroid for s in original.segments))) == sorted(
        map(str, (s.centroid for s in reordered.segments))
    )


@SETTINGS
@given(
    labels=st.lists(st.integers(-1, 5), min_size=1, max_size=40).filter(
        lambda ls: any(label != NOISE for label in ls)
    )
)
def test_relabelling_keeps_segment_sizes(labels: list[int]) -> None:
    raw = np.array(labels, dtype=np.int64)
    centers = np.arange(6, dtype=float)[:, None]
    relabelled, model, n_segments, has_outliers = _relabel(raw, CentroidModel(centers))
    clustered = raw[raw != NOISE]
    old_sizes = sorted(np.bincount(clustered)[np.bincount(clustered) > 0].tolist(), reverse=True)
    new_sizes = np.bincount(relabelled[relabelled != NOISE]).tolist()
    # the same multiset of sizes, now numbered largest first, none empty
    assert new_sizes == old_sizes
    assert has_outliers == bool((raw == NOISE).any())
    assert n_segments == len(old_sizes) + int(has_outliers)
    assert np.array_equal(relabelled == NOISE, raw == NOISE)
    # the same customers stay together
    assert adjusted_rand_score(raw, relabelled) == 1.0
    # and each segment keeps its own centre
    for old, new in zip(raw, relabelled, strict=True):
        if old != NOISE:
            assert model.centers[new][0] == centers[old][0]


@st.composite
def id_frames(draw: st.DrawFn) -> pd.DataFrame:
    """Ids as sent (whole numbers as Python objects, within 64 bits or beyond, or text)
    beside numbers with gaps, text with gaps and flags."""
    n = draw(st.integers(0, 30))
    whole = st.integers(-(2**63), 2**63 - 1) | st.integers(-(2**70), 2**70)
    ids = draw(st.lists(whole, min_size=n, max_size=n) | st.lists(st.text(), min_size=n,
                                                                    max_size=n))  # fmt: skip
    numbers = draw(st.lists(st.floats(allow_nan=True) | st.none(), min_size=n, max_size=n))
    text = draw(st.lists(st.sampled_from(["a", "b", None]), min_size=n, max_size=n))
    flags = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    frame = pd.DataFrame({"id": pd.Series(ids, dtype=object), "x": pd.Series(numbers, dtype=float),
                          "r": pd.Series(text, dtype=object), "b": flags})  # fmt: skip
    return frame[draw(st.permutations(list(frame.columns)))]


@SETTINGS
@given(id_frames())
def test_the_content_digest_is_pandas_hash(frame: pd.DataFrame) -> None:
    # the canonical row order sorts by it: the same numbers, so the same order as before
    assert np.array_equal(
        content_digest(frame), pd.util.hash_pandas_object(frame, index=False).to_numpy()
    )
