"""Segments that persist across refits (pipeline/lineage.py), through the library.

Two months of one customer base with known truth (`make_refit`): 10% of the staying
customers change persona, one persona vanishes, one appears, 5% leave and 5% join.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from segmentation import analyze
from segmentation.analysis import previous_segmentation
from segmentation.assign import fitted_of
from segmentation.errors import InvalidInputError
from segmentation.pipeline.lineage import (
    MATCH_JACCARD,
    follow,
    match_by_centroids,
    match_by_customers,
    what_changed,
)
from segmentation.recommend import recommend
from segmentation.results import Analysis
from segmentation.synthetic import make_population, make_refit

SEEDS = (0, 1, 2, 3, 4, 5)


def _segment_of(analysis: Analysis, truth: np.ndarray, persona: int) -> int:
    """The segment id that holds most of a persona's customers."""
    ids, counts = np.unique(analysis.labels[truth == persona], return_counts=True)
    return int(ids[counts.argmax()])


@pytest.fixture(scope="module")
def months() -> list[tuple[object, Analysis, Analysis]]:
    runs = []
    for seed in SEEDS:
        refit = make_refit(2000, 4, random_state=seed)
        first = analyze(refit.first.frame, n_clusters=4)
        second = analyze(refit.second.frame, n_clusters=4, previous=first)
        runs.append((refit, first, second))
    return runs


def test_surviving_segments_keep_their_id_and_name(months: list) -> None:
    kept = total = 0
    for refit, first, second in months:
        for persona in range(refit.vanished):  # the personas of both months
            before = _segment_of(first, refit.first.labels, persona)
            after = _segment_of(second, refit.second.labels, persona)
            names = {s.segment_id: s.name for s in second.segments}
            previous_names = {s.segment_id: s.name for s in first.segments}
            total += 1
            kept += before == after and names[after] == previous_names[before]
    assert kept / total >= 0.95, f"{kept} of {total} surviving segments kept id and name"


def test_vanished_persona_disappears_and_new_persona_emerges(months: list) -> None:
    for refit, first, second in months:
        events = {(e.previous_cluster_id, e.cluster_id): e.event for e in second.lineage.segments}
        vanished = _segment_of(first, refit.first.labels, refit.vanished)
        emerged = _segment_of(second, refit.second.labels, refit.emerged)
        assert events[(vanished, None)] == "disappeared"
        assert events[(None, emerged)] == "emerged"
        # a fresh id, never used in the lineage
        assert emerged not in {s.segment_id for s in first.segments}
        assert emerged >= first.next_segment_id
        assert second.next_segment_id > emerged


def test_moved_is_within_two_points_of_the_truth(months: list) -> None:
    for refit, _, second in months:
        lineage = second.lineage
        measured = lineage.moved / lineage.customers_compared
        assert abs(measured - refit.moved) <= 0.02, (measured, refit.moved)


def test_transitions_add_up_to_every_customer_of_both_months(months: list) -> None:
    for refit, first, second in months:
        lineage = second.lineage
        flows = lineage.transitions
        both = lineage.customers_compared
        assert sum(t.customers for t in flows) == first.n_customers + second.n_customers - both
        assert sum(t.customers for t in flows if t.target is not None) == second.n_customers
        assert sum(t.customers for t in flows if t.source is not None) == first.n_customers
        new = sum(t.customers for t in flows if t.source is None)
        gone = sum(t.customers for t in flows if t.target is None)
        assert new == len(set(refit.second.frame["id"]) - set(refit.first.frame["id"]))
        assert gone == len(set(refit.first.frame["id"]) - set(refit.second.frame["id"]))


def test_segments_stay_ordered_by_size(months: list) -> None:
    for _, _, second in months:
        sizes = [s.size for s in second.segments]
        assert sizes == sorted(sizes, reverse=True)


def test_identical_refit_moves_nobody_and_keeps_every_id() -> None:
    population = make_population(1500, 4, random_state=7, spread=0.6)
    first = analyze(population.frame)
    again = analyze(population.frame, previous=first)
    assert again.lineage.moved == 0
    assert {e.event for e in again.lineage.segments} == {"survived"}
    assert [s.segment_id for s in again.segments] == [s.segment_id for s in first.segments]
    assert [s.name for s in again.segments] == [s.name for s in first.segments]
    assert all(d.psi < 1e-3 for d in again.lineage.drift)


def test_shuffled_rows_change_no_id() -> None:
    refit = make_refit(2000, 4, random_state=11)
    first = analyze(refit.first.frame, n_clusters=4)
    second = analyze(refit.second.frame, n_clusters=4, previous=first)
    shuffled_frame = refit.second.frame.sample(frac=1.0, random_state=3).reset_index(drop=True)
    shuffled = analyze(shuffled_frame, n_clusters=4, previous=first)
    by_customer = dict(zip(refit.second.frame["id"], second.labels, strict=True))
    agree = np.mean(
        [
            by_customer[i] == label
            for i, label in zip(shuffled_frame["id"], shuffled.labels, strict=True)
        ]
    )
    assert {(s.segment_id, s.name) for s in shuffled.segments} == {
        (s.segment_id, s.name) for s in second.segments
    }
    assert agree >= 0.99


def test_a_chain_of_three_keeps_its_ids() -> None:
    refit = make_refit(2000, 4, random_state=5)
    a = analyze(refit.first.frame, n_clusters=4)
    b = analyze(refit.second.frame, n_clusters=4, previous=a)
    # month 3: month 2's customers again, 5% of them switching among month 2's segments
    frame = refit.second.frame.copy()
    rng = np.random.default_rng(0)
    switch = rng.random(len(frame)) < 0.05
    donors = frame.sample(n=int(switch.sum()), random_state=1)
    frame.loc[switch, ["age", "income", "purchases"]] = donors[
        ["age", "income", "purchases"]
    ].to_numpy()
    c = analyze(frame, n_clusters=4, previous=b)
    assert [s.segment_id for s in b.segments] == [s.segment_id for s in c.segments]
    assert {e.event for e in c.lineage.segments} == {"survived"}
    assert c.next_segment_id == b.next_segment_id


def test_a_new_cohort_matches_by_centroids() -> None:
    first = analyze(make_population(1500, 4, random_state=3, spread=0.6).frame, n_clusters=4)
    cohort = make_population(1200, 4, random_state=3, spread=0.6).frame.sample(
        frac=1.0, random_state=9
    )
    cohort["id"] = cohort["id"] + 1_000_000  # nobody in common
    second = analyze(cohort.reset_index(drop=True), n_clusters=4, previous=first)
    lineage = second.lineage
    assert lineage.matched_by == "centroids"
    assert lineage.customers_compared == 0 and lineage.moved == 0
    assert {e.event for e in lineage.segments} == {"survived"}
    assert {s.name for s in second.segments} == {s.name for s in first.segments}
    assert all(e.distance is not None and e.distance >= 0 for e in lineage.segments)


def test_previous_from_the_model_alone_matches_by_centroids() -> None:
    population = make_population(1200, 3, random_state=2, spread=0.6)
    first = analyze(population.frame, n_clusters=3)
    second = analyze(population.frame, n_clusters=3, previous=fitted_of(first))
    assert second.lineage.matched_by == "centroids"
    assert [s.segment_id for s in second.segments] == [s.segment_id for s in first.segments]


def test_no_shared_field_is_refused_naming_it() -> None:
    first = analyze(make_population(300, 3, random_state=1).frame)
    other = pd.DataFrame({"tenure": np.arange(300) % 17, "visits": np.arange(300) % 5})
    with pytest.raises(InvalidInputError, match="shares no field") as error:
        analyze(other, previous=first)
    assert error.value.problems[0].field == "previous_analysis_id"


def test_jaccard_matching_split_merge_and_absorption() -> None:
    ids = [10, 11, 12]
    # previous 10 -> current 0 (kept), 11 splits into 1 and 2, 12 vanishes into 0
    table = np.array([[90, 5, 5], [2, 48, 50], [60, 0, 0]])
    matching = match_by_customers(table, ids)
    assert matching.survived[0][0] == 10
    events = {(pid, c): e for c, pid, e, _ in matching.events}
    assert events[(11, 1)] == "split" and events[(11, 2)] == "split"
    assert events[(12, 0)] == "merged"  # absorbed by a survivor
    # a segment that grew by absorbing another keeps its identity below MATCH_JACCARD
    grown = np.array([[100, 0], [300, 0], [0, 50]])
    matching = match_by_customers(grown, [1, 2, 3])
    assert matching.survived[0][0] in (1, 2)
    low = np.array([[30, 70], [70, 30]])  # nobody clearly kept
    assert all(j >= MATCH_JACCARD for _, j in match_by_customers(low, [1, 2]).survived.values())


def test_centroid_matching_refuses_distant_centres() -> None:
    previous = np.array([[0.0, 0.0], [4.0, 0.0]])
    current = np.array([[0.1, 0.0], [2.0, 3.0]])
    matching = match_by_centroids(current, previous, [5, 6])
    assert matching.survived == {0: (5, 0.1)}
    assert [(pid, e) for _, pid, e, _ in matching.events] == [(6, "disappeared")]


def test_lineage_in_words_and_advice(months: list) -> None:
    refit, first, second = months[0]
    names = {s.segment_id: s.name for s in second.segments}
    sentences = what_changed(second.lineage, names)
    assert "disappeared" in sentences[0] and "emerged" in sentences[0]
    assert f"{second.lineage.moved:,} of the" in sentences[1]
    advice = [r.text for r in recommend(second)]
    vanished = _segment_of(first, refit.first.labels, refit.vanished)
    gone_name = next(s.name for s in first.segments if s.segment_id == vanished)
    assert any(f'"{gone_name}" segment disappeared' in text for text in advice)
    assert any(text.startswith("A new segment emerged") for text in advice)


def test_previous_segmentation_of_an_analysis_carries_its_customers(months: list) -> None:
    _, first, _ = months[0]
    previous = previous_segmentation(first, analysis_id="A")
    assert previous.analysis_id == "A"
    assert len(previous.labels) == first.n_customers
    assert previous.sizes == {s.segment_id: s.size for s in first.segments}


def test_a_survivor_is_renamed_only_when_its_profile_moved(months: list) -> None:
    _, first, _ = months[0]
    previous = previous_segmentation(first)
    positions = np.array([first.segments.index(s) for s in first.segments for _ in range(3)])
    fresh = [s.name for s in first.segments]
    fresh[0] = "Brand New Name"
    standardized = [dict(s.standardized) for s in first.segments]

    def follow_with(shift: float) -> tuple[list[str], dict[int, str]]:
        moved = [dict(p) for p in standardized]
        field = next(iter(moved[0]))
        moved[0][field] += shift
        followed = follow(
            previous, positions=positions, customer_ids=[], centres_in_previous_space=
            first.centers[: len(fresh)], fresh_names=fresh, standardized=moved, drift=[],
        )  # fmt: skip
        return followed.names, followed.lineage.renamed

    # matched by centroids (no shared customers): every segment survives
    names, renamed = follow_with(0.5)  # a small move: the name stays
    assert names[0] == first.segments[0].name and renamed == {}
    names, renamed = follow_with(1.5)  # past RENAME_SHIFT: the fresh name, and renamedFrom
    assert names[0] == "Brand New Name"
    assert renamed == {first.segments[0].segment_id: first.segments[0].name}
