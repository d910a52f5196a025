"""options: one declaration, checked the same way in the library's and the wire's names."""

from __future__ import annotations

import pytest

from segmentation.errors import InvalidInputError, Problem
from segmentation.options import OPTIONS, AnalysisOptions, on_the_wire


@pytest.mark.parametrize(
    ("values", "field", "message"),
    [
        # above the documented maximum, with the value in the message
        ({"n_clusters": 31}, "n_clusters", "n_clusters=31 should be between 2 and 30"),
        # an inverted range
        ({"k_range": (6, 3)}, "k_range", "k_range=[6, 3] should satisfy min <= max"),
        # eps must be strictly positive
        ({"eps": 0.0}, "eps", "eps=0.0 should be > 0"),
        # an algorithm that is not offered names the ones that are
        ({"algorithm": "gmm"}, "algorithm", "'auto', 'kmeans', 'hierarchical', 'dbscan'"),
        # both ways of choosing k at once
        ({"n_clusters": 3, "k_range": (2, 5)}, "k_range", "not both"),
        # DBSCAN chooses its own k
        ({"algorithm": "dbscan", "n_clusters": 3}, "n_clusters", "dbscan finds"),
        # a bool is not an integer, even though Python says it is
        ({"random_state": True}, "random_state", "should be an integer"),
    ],
)
def test_bad_values_name_the_option_and_the_value(
    values: dict[str, object], field: str, message: str
) -> None:
    with pytest.raises(InvalidInputError) as raised:
        AnalysisOptions(**values)  # type: ignore[arg-type]
    assert [p.field for p in raised.value.problems] == [field]
    assert message in raised.value.problems[0].message


@pytest.mark.parametrize(
    ("payload", "field", "message"),
    [
        ({"nClusters": 31}, "options.nClusters", "nClusters=31"),
        ({"nClusters": "3"}, "options.nClusters", "(got '3')"),
        ({"kRange": [2]}, "options.kRange", "two integers"),
        ({"features": []}, "options.features", "at least 1"),
        ({"colour": "blue"}, "options.colour", "unknown option"),
        ({"includeCustomers": 1}, "options.includeCustomers", "true or false"),
    ],
)
def test_the_wire_names_options_as_the_request_does(
    payload: dict[str, object], field: str, message: str
) -> None:
    with pytest.raises(InvalidInputError) as raised:
        AnalysisOptions.from_wire(payload)
    assert raised.value.problems[0].field == field
    assert message in raised.value.problems[0].message


def test_the_wire_round_trips_every_option() -> None:
    options = AnalysisOptions.from_wire(
        {"nClusters": 4, "features": ["a", "b"], "randomState": 7, "includeCustomers": False}
    )
    assert options.n_clusters == 4 and options.features == ("a", "b")
    assert AnalysisOptions.from_wire(options.to_wire(analysis_only=False)) == options
    assert set(options.to_wire(analysis_only=False)) == {spec.wire for spec in OPTIONS}
    assert "includeCustomers" not in options.to_wire()


def test_a_data_dependent_problem_is_renamed_for_the_wire() -> None:
    error = InvalidInputError(
        Problem("n_clusters=8 should be <= n_customers=5", field="n_clusters")
    )
    renamed = on_the_wire(error).problems[0]
    assert renamed.field == "options.nClusters"
    assert renamed.message == "nClusters=8 should be <= n_customers=5"
