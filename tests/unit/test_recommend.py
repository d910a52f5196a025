"""recommend: one action per segment by impact (size x value), then cross-segment advice."""

from __future__ import annotations

import pytest

from segmentation.recommend import Recommendation, SegmentSummary, recommend


def _per_segment(advice: list[Recommendation], n_segments: int) -> list[Recommendation]:
    return advice[:n_segments]


def test_segments_are_ordered_by_size_times_value() -> None:
    segments = [
        # 10 x 3.0 = 30 (value: spend 600 vs a 200 average)
        SegmentSummary(0, "Big Spenders", 10, {"spend": 600.0}),
        # 60 x 0.75 = 45
        SegmentSummary(1, "Crowd", 60, {"spend": 150.0}),
        # 30 x 0.5 = 15
        SegmentSummary(2, "Thrifty", 30, {"spend": 100.0}),
    ]
    # average spend: (6000 + 9000 + 3000) / 100 = 180
    advice = recommend(segments)
    assert [r.segment for r in _per_segment(advice, 3)] == ["Crowd", "Big Spenders", "Thrifty"]
    assert [r.priority for r in advice] == list(range(1, len(advice) + 1))
    impacts = [r.impact for r in _per_segment(advice, 3)]
    assert impacts == sorted(impacts, reverse=True)
    assert impacts[0] == pytest.approx(60 * 150 / 180)


def test_outlier_segment_comes_last_whatever_its_size() -> None:
    segments = [
        SegmentSummary(0, "Outliers", 500, {"spend": 5000.0}, is_outliers=True),
        SegmentSummary(1, "Regulars", 100, {"spend": 100.0}),
        SegmentSummary(2, "Fans", 50, {"spend": 300.0}),
    ]
    per_segment = _per_segment(recommend(segments), 3)
    assert [r.segment for r in per_segment] == ["Fans", "Regulars", "Outliers"]
    assert per_segment[-1].action.startswith('Review the customers in "Outliers"')


def test_large_low_value_segment_gets_cross_segment_advice() -> None:
    segments = [
        SegmentSummary(0, "Browsers", 700, {"spend": 50.0}),
        SegmentSummary(1, "Loyal", 300, {"spend": 400.0}),
    ]
    advice = recommend(segments)
    cross = [r for r in advice[2:] if r.segment == "Browsers"]
    assert len(cross) == 1
    assert "largest segment but below-average in value" in cross[0].action
    assert "70% of customers" in cross[0].rationale


def test_value_concentration_and_instability_are_flagged() -> None:
    segments = [
        SegmentSummary(0, "Browsers", 800, {"spend": 50.0}, stability=0.9),
        SegmentSummary(1, "Whales", 200, {"spend": 800.0}, stability=0.4),
    ]
    actions = [r.action for r in recommend(segments, accuracy=0.5)]
    assert 'Put retention budget on "Whales" first:' in actions
    assert 'Validate "Whales" before building a campaign on it:' in actions
    assert "Treat this segmentation as exploratory:" in actions


@pytest.mark.parametrize(
    ("centroid", "verb"),
    [
        # high spend: protect
        ({"income": 100.0, "spend": 900.0}, "Protect"),
        # high income, low spend: premium offers
        ({"income": 300.0, "spend": 10.0}, "Target"),
        # low income, low spend: low-cost campaigns
        ({"income": 10.0, "spend": 10.0}, "Serve"),
    ],
)
def test_actions_follow_value_and_income(centroid: dict[str, float], verb: str) -> None:
    segments = [
        SegmentSummary(0, "Target Segment", 100, centroid),
        SegmentSummary(1, "Everyone Else", 300, {"income": 100.0, "spend": 100.0}),
    ]
    advice = recommend(segments)
    mine = next(r for r in advice if r.cluster_id == 0 and r.action.startswith(verb))
    assert "100 customers, 25% of the base" in mine.rationale


def test_every_recommendation_names_its_segment_in_quotes() -> None:
    segments = [
        SegmentSummary(0, "High-Value Customers", 40, {"income": 140.0, "spend": 900.0}, (), 0.5),
        SegmentSummary(1, "Budget-Conscious Customers", 160, {"income": 30.0, "spend": 100.0}),
        SegmentSummary(2, "Mainstream", 90, {"income": 70.0, "spend": 300.0}),
        SegmentSummary(3, "Outliers", 5, {"income": 900.0, "spend": 10.0}, is_outliers=True),
    ]
    advice = recommend(segments, accuracy=0.4)
    assert {r.segment for r in advice} >= {s.name for s in segments}
    for recommendation in advice:
        if recommendation.segment is not None:
            assert f'"{recommendation.segment}"' in recommendation.text


def test_without_value_fields_every_segment_still_gets_advice() -> None:
    segments = [
        SegmentSummary(0, "A", 10, {"age": 30.0}, ("Age below average (30 vs 40)",)),
        SegmentSummary(1, "B", 10, {"age": 50.0}),
    ]
    advice = recommend(segments)
    assert [r.segment for r in advice] == ["A", "B"]
    assert "Age below average (30 vs 40)" in advice[0].rationale
