"""profile: figures in the user's units, characteristics backed by numbers, unique names."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from segmentation import analyze
from segmentation.pipeline.features import MISSING_LEVEL
from segmentation.pipeline.ingest import ingest
from segmentation.pipeline.profile import (
    OUTLIERS_NAME,
    SegmentProfile,
    profile_segments,
    summarize,
)
from segmentation.pipeline.schema import FieldRole, FieldSpec, axis_of, infer_schema
from segmentation.pipeline.words import format_number

MALL = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "mall_customers.csv"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        # thousands
        (152_000, "152k"),
        # millions, one decimal
        (1.2e6, "1.2M"),
        # tens with one decimal
        (14.3, "14.3"),
        # below 1, two decimals
        (0.42, "0.42"),
        # hundreds without decimals
        (450.4, "450"),
        # the 1e4 boundary
        (10_000, "10k"),
        # negative values keep their sign
        (-152_000, "-152k"),
        # zero
        (0, "0.00"),
        # BUG: rounds up across the million boundary and prints "1000k"
        (999_999, "1.0M"),
    ],
)
def test_format_number(value: float, text: str) -> None:
    assert format_number(value) == text


@pytest.mark.parametrize(
    ("field", "is_count", "axis"),
    [
        # Mall customers
        ("Annual Income (k$)", None, "income"),
        ("Spending Score (1-100)", None, "spend"),
        # the seed's purchases: a count by default
        ("purchases", None, "frequency"),
        # purchases as an amount
        ("purchases", False, "spend"),
        ("Age", None, "age"),
        ("Recency", None, "recency"),
        # whole words: "account" holds "count" but is not a count
        ("account_balance", None, "spend"),
        ("discount", None, None),
        ("number_of_children", None, None),
        # a number of purchases is frequency, in camelCase too
        ("NumWebPurchases", None, "frequency"),
        ("customer_age", None, "age"),
        ("Year_Birth", None, "age"),
        # days since signup is tenure, not recency; days since last purchase is recency
        ("days_since_signup", None, "tenure"),
        ("days_since_last_purchase", None, "recency"),
        # nothing recognised
        ("satisfaction", None, None),
    ],
)
def test_axis_of(field: str, is_count: bool | None, axis: str | None) -> None:
    assert axis_of(field, is_count) == axis


def _profiles(frame: pd.DataFrame, segments: np.ndarray, **kwargs: object) -> list[SegmentProfile]:
    ingested = ingest(frame)
    schema = infer_schema(ingested)
    n_segments = int(segments.max()) + 1
    profiles, _ = profile_segments(ingested.frame, schema, segments, n_segments, **kwargs)  # type: ignore[arg-type]
    return profiles


def _three_segments(same: bool) -> tuple[pd.DataFrame, np.ndarray]:
    """Segments 0 and 1 low income and low spend (identical if `same`), segment 2 high."""
    rng = np.random.default_rng(0)
    low_income = rng.normal(30e3, 2e3, 20).round()
    low_spend = rng.normal(20, 3, 20).round()
    second = (low_income, low_spend) if same else (low_income + 500, low_spend - 1)
    frame = pd.DataFrame(
        {
            "income": np.r_[low_income, second[0], rng.normal(120e3, 5e3, 20).round()],
            "spending": np.r_[low_spend, second[1], rng.normal(90, 3, 20).round()],
        }
    )
    return frame, np.repeat([0, 1, 2], 20)


@pytest.mark.parametrize(
    "same",
    [
        # two segments that look alike
        False,
        # two segments with exactly the same customers' values
        True,
    ],
)
def test_names_are_unique_within_an_analysis(same: bool) -> None:
    frame, segments = _three_segments(same)
    names = [p.name for p in _profiles(frame, segments)]
    assert len(set(names)) == 3, names
    assert names[2] == "High-Value Customers"
    assert all(name.startswith("Budget-Conscious") for name in names[:2])
    assert all(len(name) <= 40 for name in names)


def test_characteristics_carry_numbers() -> None:
    frame, segments = _three_segments(same=False)
    for profile in _profiles(frame, segments):
        assert profile.characteristics
        for phrase in profile.characteristics:
            assert re.search(r"\d", phrase), phrase
    high = _profiles(frame, segments)[2]
    assert any(
        re.fullmatch(r"Income \d\.\dx the average \(\d+k vs \d+k\)", p)
        for p in high.characteristics
    )


def test_centroids_in_original_units_and_category_shares() -> None:
    frame = pd.DataFrame(
        {
            "income": [10.0, 20.0, 30.0, 100.0, 110.0, 120.0],
            "region": ["N", "N", "S", "S", "S", "S"],
        }
    )
    profiles = _profiles(frame, np.array([0, 0, 0, 1, 1, 1]))
    assert profiles[0].centroid == {"income": 20.0}
    assert profiles[1].centroid == {"income": 110.0}
    assert profiles[0].categories == {"region": {"N": pytest.approx(0.6667), "S": 0.3333}}
    assert profiles[1].standardized["income"] > 0 > profiles[0].standardized["income"]


def test_unknown_fields_are_named_after_what_distinguishes_them() -> None:
    frame, segments = _three_segments(same=False)
    frame = frame.rename(columns={"income": "alpha", "spending": "beta"})
    names = [p.name for p in _profiles(frame, segments)]
    assert names[2] == "High Alpha & Beta Customers"


@pytest.mark.parametrize(
    ("first", "second", "expected"),
    [
        # filler words (Num, Month) dropped; both would pass 40 characters, so one
        ("NumCouponsTaken", "NumWebSessionsMonth", "High Coupons Taken Customers"),
        # too long for both: the first field alone (three words at most), within 40 characters
        ("CREDIT_LINE_UTILISATION_RATIO", "CARD_TENURE_IN_MONTHS",
         "High Credit Line Utilisation Customers"),
    ],
)  # fmt: skip
def test_fallback_names_are_short(first: str, second: str, expected: str) -> None:
    frame, segments = _three_segments(same=False)
    frame = frame.rename(columns={"income": first, "spending": second})
    names = [p.name for p in _profiles(frame, segments)]
    assert names[2].startswith(expected), names
    assert all(len(name) <= 40 for name in names), names


def test_outlier_segment_is_named_outliers() -> None:
    frame, segments = _three_segments(same=False)
    profiles = _profiles(frame, segments, outlier_segment=2)
    assert profiles[2].name == OUTLIERS_NAME
    assert OUTLIERS_NAME not in {p.name for p in profiles[:2]}


def test_a_segment_like_everyone_says_so_with_a_number() -> None:
    frame = pd.DataFrame({"income": [10.0, 20.0, 30.0, 11.0, 21.0, 31.0]})
    profiles = _profiles(frame, np.array([0, 1, 0, 1, 0, 1]))
    for profile in profiles:
        (phrase,) = profile.characteristics
        assert phrase.startswith("Close to the average on every field")
        assert re.search(r"[+-]\d\.\d SD", phrase)


def test_mall_customers_by_income_and_spending_score() -> None:
    mall = pd.read_csv(MALL)
    analysis = analyze(
        mall, features=["Annual Income (k$)", "Spending Score (1-100)"], random_state=0
    )
    names = [s.name for s in analysis.segments]
    assert names.count("High-Value Customers") == 1
    assert len(set(names)) == len(names)
    high = next(s for s in analysis.segments if s.name == "High-Value Customers")
    assert high.centroid["Annual Income (k$)"] > mall["Annual Income (k$)"].mean()
    assert high.centroid["Spending Score (1-100)"] > mall["Spending Score (1-100)"].mean()


def test_recency_from_a_date_reads_later_as_more_recent() -> None:
    # a later last-purchase date is a recent customer, not a lapsing one
    recent = [f"2024-12-{d:02d}" for d in range(1, 21)]
    old = [f"2020-01-{d:02d}" for d in range(1, 21)]
    frame = pd.DataFrame({"last_purchase": recent + old, "spend": [100.0] * 20 + [90.0] * 20})
    profiles = _profiles(frame, np.array([0] * 20 + [1] * 20))
    assert not profiles[0].name.startswith("Lapsing"), profiles[0].name
    assert profiles[1].name.startswith("Lapsing"), profiles[1].name


def test_a_lone_customer_is_not_called_average() -> None:
    frame = pd.DataFrame({"x": [float(i % 7) for i in range(60)] + [500.0]})
    profiles = _profiles(frame, np.array([0] * 60 + [1]))
    assert profiles[1].characteristics[0].startswith("No difference is significant with 1 customer")


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_field_summary_equals_the_figures_of_every_value(seed: int) -> None:
    """The sufficient statistics give what numpy gives on the values themselves: overall mean
    and SD, and each segment's complement (Welch's other side), missing values and a
    one-customer segment included."""
    rng = np.random.default_rng(seed)
    values = rng.lognormal(3, 1, 3_000)
    values[rng.random(3_000) < 0.1] = np.nan
    segments = rng.integers(0, 4, 3_000)
    segments[0] = 4  # a segment of one customer
    spec = FieldSpec("spend", FieldRole.NUMERIC)
    summary, kept = summarize(pd.DataFrame({"spend": values}), spec, segments, 5)
    assert kept is not None and np.array_equal(kept, values, equal_nan=True)
    present = values[~np.isnan(values)]
    assert summary.total == present.size
    assert summary.overall_mean == pytest.approx(present.mean(), rel=1e-12)
    assert summary.overall_sd == pytest.approx(present.std(), rel=1e-10)
    for segment in range(5):
        outside = values[(segments != segment) & ~np.isnan(values)]
        mean, var, n = summary.outside(segment)
        assert n == outside.size
        assert mean == pytest.approx(outside.mean(), rel=1e-10)
        assert var == pytest.approx(outside.var(ddof=1), rel=1e-8)


def test_field_summary_counts_every_level_with_missing_as_its_own() -> None:
    frame = pd.DataFrame({"plan": ["a", "b", None, "a", "b", "b"]})
    spec = FieldSpec("plan", FieldRole.CATEGORICAL)
    summary, kept = summarize(frame, spec, np.array([0, 0, 0, 1, 1, 1]), 2)
    assert kept is None and summary.levels is not None
    assert {k: v.tolist() for k, v in summary.levels.items()} == {
        "a": [1, 1], "b": [1, 2], MISSING_LEVEL: [1, 0],
    }  # fmt: skip
    assert summary.shares(1) == {"b": 0.6667, "a": 0.3333}
