"""The wire schema documents exactly what the service enforces.

The request bodies are read raw and checked by `segmentation.options`; the pydantic models in
`api/schemas.py` exist for the OpenAPI document and are generated from the same declaration.
Here both judge the same random option values and must agree (the cross-option rules, such as
nClusters with kRange, cannot be written in a JSON schema and are left out).
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from segmentation.api.schemas import AnalysisResponse, AnalyzeOptions
from segmentation.errors import InvalidInputError
from segmentation.options import OPTIONS, AnalysisOptions
from segmentation.serialize import analysis_to_wire
from segmentation.synthetic import make_population

VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 2**33),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["auto", "kmeans", "hierarchical", "dbscan", "gmm", "", "3"]),
    st.lists(st.integers(-3, 40), max_size=3),
    st.lists(st.sampled_from(["age", "income"]), max_size=2),
    st.lists(st.one_of(st.integers(), st.text(max_size=3)), max_size=2),
)


def _core_accepts(payload: dict[str, Any]) -> bool:
    try:
        AnalysisOptions.from_wire(payload)
    except InvalidInputError:
        return False
    return True


def _schema_accepts(payload: dict[str, Any]) -> bool:
    try:
        AnalyzeOptions.model_validate(payload)
    except ValidationError:
        return False
    return True


@settings(max_examples=400, derandomize=True, deadline=None)
@given(key=st.sampled_from([spec.wire for spec in OPTIONS]), value=VALUES)
def test_the_schema_and_the_service_accept_the_same_option_values(key: str, value: Any) -> None:
    payload = {key: value}
    pair = isinstance(value, list) and len(value) == 2
    if key == "kRange" and pair and all(type(v) is int for v in value) and value[0] > value[1]:
        return  # min <= max: a rule between two values, beyond JSON schema
    assert _core_accepts(payload) == _schema_accepts(payload), payload


@pytest.mark.parametrize(
    "payload",
    [
        # a key the options do not have
        {"colour": "blue"},
        # one of each kind at its bound
        {"nClusters": 30, "eps": 1e-9, "minSamples": 2, "randomState": 2**32 - 1},
    ],
)
def test_examples_agree(payload: dict[str, Any]) -> None:
    assert _core_accepts(payload) == _schema_accepts(payload)


@pytest.mark.parametrize("scores", [False, True])
def test_the_documented_response_is_what_is_emitted(scores: bool) -> None:
    from segmentation import analyze

    population = make_population(300, 3, random_state=0)
    analysis = analyze(population.frame)
    wire = analysis_to_wire(analysis, population.records(), include_customer_scores=scores)
    wire["analysisId"] = "A" * 22
    # extra="forbid" on every response model: an undocumented key fails here
    AnalysisResponse.model_validate(wire)
