"""Roles a careful analyst would give: identifiers, outcomes (by name and shape, or named),
leaks of an outcome, placeholders, almost-empty fields, codes written as numbers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from segmentation.errors import InvalidInputError
from segmentation.pipeline.ingest import ingest
from segmentation.pipeline.schema import FieldRole, FieldSpec, Schema, clean, infer_schema

N = 400
RNG = np.random.default_rng(0)


def _schema(frame: pd.DataFrame, **options: object) -> Schema:
    return infer_schema(ingest(frame), **options)  # type: ignore[arg-type]


def _spec(schema: Schema, name: str) -> FieldSpec:
    return schema.spec(name)


def _base() -> pd.DataFrame:
    """Customers with two real traits to segment on."""
    return pd.DataFrame(
        {"income": RNG.normal(50_000, 12_000, N).round(), "visits": RNG.poisson(6, N)}
    )


@pytest.mark.parametrize(
    ("name", "values"),
    [
        # a 9-digit client number, not in sequence
        ("CLIENTNUM", RNG.choice(np.arange(708_000_000, 828_000_000), N, replace=False)),
        # row numbers
        ("RowNumber", np.arange(1, N + 1)),
        # a 6-digit loyalty number, all different
        ("Loyalty Number", RNG.choice(np.arange(100_000, 999_999), N, replace=False)),
        # any name: all different where a quantity would repeat
        ("ref", RNG.choice(np.arange(0, 10_000), N, replace=False)),
        # text codes without spaces
        ("account", [f"AC-{i:05d}X" for i in range(N)]),
    ],
)
def test_identifiers_are_never_features(name: str, values: object) -> None:
    frame = _base().assign(**{name: values})
    spec = _spec(_schema(frame), name)
    assert spec.role is FieldRole.ID, spec
    assert spec.reason


@pytest.mark.parametrize(
    ("name", "values", "positive", "meaning"),
    [
        ("Churn", np.where(RNG.random(N) < 0.3, "Yes", "No"), "Yes", "loss"),
        ("Exited", (RNG.random(N) < 0.2).astype(int), "1", "loss"),
        ("Attrition_Flag",
         np.where(RNG.random(N) < 0.16, "Attrited Customer", "Existing Customer"),
         "Attrited Customer", "loss"),
        ("y", np.where(RNG.random(N) < 0.1, "yes", "no"), "yes", "gain"),
        ("Response", (RNG.random(N) < 0.15).astype(int), "1", "gain"),
        ("is_canceled", (RNG.random(N) < 0.3).astype(int), "1", "loss"),
        ("default", np.where(RNG.random(N) < 0.1, "yes", "no"), "yes", "risk"),
        # a trailing space in the header
        ("churn ", (RNG.random(N) < 0.3).astype(int), "1", "loss"),
        # 1 good / 2 bad: the rarer level
        ("class", np.where(RNG.random(N) < 0.3, 2, 1), "2", None),
    ],
)  # fmt: skip
def test_outcomes_by_name_and_shape(
    name: str, values: object, positive: str, meaning: str | None
) -> None:
    frame = _base().assign(**{name: values})
    schema = _schema(frame)
    spec = _spec(schema, name)
    assert spec.role is FieldRole.OUTCOME, spec
    assert (spec.positive, spec.meaning) == (positive, meaning)
    assert name not in [f.name for f in schema.features]
    flags = clean(ingest(frame).frame, schema)[name].to_numpy()
    assert set(np.unique(flags)) <= {0.0, 1.0}


def test_an_event_set_only_for_some_customers_is_an_outcome() -> None:
    cancelled = RNG.random(N) < 0.12
    frame = _base().assign(
        **{"Cancellation Year": np.where(cancelled, RNG.integers(2013, 2019, N), 0)}
    )
    schema = _schema(frame)
    spec = _spec(schema, "Cancellation Year")
    assert spec.role is FieldRole.OUTCOME and spec.placeholders == (0.0,)
    flags = clean(ingest(frame).frame, schema)["Cancellation Year"].to_numpy()
    assert flags.tolist() == cancelled.astype(float).tolist()


def test_two_level_fields_with_other_names_stay_features() -> None:
    frame = _base().assign(Partner=np.where(RNG.random(N) < 0.5, "Yes", "No"))
    assert _spec(_schema(frame), "Partner").role is FieldRole.BOOLEAN


def test_named_outcomes_and_what_cannot_be_one() -> None:
    frame = _base().assign(
        spend_next_year=RNG.normal(100, 20, N), region=["N", "S", "E"] * 133 + ["N"]
    )
    spec = _spec(_schema(frame, outcomes=["spend_next_year"]), "spend_next_year")
    assert spec.role is FieldRole.OUTCOME and spec.positive is None  # a mean
    with pytest.raises(InvalidInputError, match=r"'region': cannot be an outcome"):
        _schema(frame, outcomes=["region"])
    with pytest.raises(InvalidInputError, match=r"named in features too"):
        _schema(frame, outcomes=["income"], features=["income", "visits"])


def test_exclude_and_features_win_over_outcome_names() -> None:
    frame = _base().assign(Churn=np.where(RNG.random(N) < 0.3, "Yes", "No"))
    assert _spec(_schema(frame, exclude=["Churn"]), "Churn").role is FieldRole.IGNORED
    assert _spec(_schema(frame, features=["Churn", "income"]), "Churn").role is FieldRole.BOOLEAN


def test_a_field_that_restates_the_outcome_is_left_out() -> None:
    churned = RNG.random(N) < 0.3
    frame = _base().assign(
        Churn=np.where(churned, "Yes", "No"),
        # a classifier's score of the outcome
        churn_score=np.where(churned, 0.7, 0.0) + RNG.random(N) * 0.25,
        # a status set when it happened
        status=np.where(churned, "Closed", "Open"),
        # related, but far from a restatement
        complaints=RNG.poisson(np.where(churned, 2, 1)),
    )
    schema = _schema(frame)
    for leak in ("churn_score", "status"):
        spec = _spec(schema, leak)
        assert spec.role is FieldRole.IGNORED and "restates the outcome 'Churn'" in spec.reason
    assert _spec(schema, "complaints").role is FieldRole.NUMERIC
    # named as a feature, a leak is the caller's choice
    named = _schema(frame, features=["income", "churn_score"])
    assert _spec(named, "churn_score").role is FieldRole.NUMERIC


def test_almost_empty_fields_are_left_out_unless_named() -> None:
    sparse = np.where(RNG.random(N) < 0.95, np.nan, RNG.normal(size=N))
    frame = _base().assign(sparse=sparse)
    spec = _spec(_schema(frame), "sparse")
    assert spec.role is FieldRole.IGNORED and spec.reason.startswith("almost empty")
    assert _spec(_schema(frame, features=["sparse", "income"]), "sparse").role is FieldRole.NUMERIC


@pytest.mark.parametrize(
    ("name", "values", "role"),
    [
        # 1 = Horeca, 2 = Retail: two kinds, not an amount
        ("Channel", np.where(RNG.random(N) < 0.3, 2, 1), FieldRole.CATEGORICAL),
        # region codes
        ("Region", RNG.integers(1, 4, N), FieldRole.CATEGORICAL),
        # a travel agent's number: a code with too many values to be a category
        ("agent", RNG.integers(1, 400, N), FieldRole.IGNORED),
        # a tier is ordered: a number
        ("CityTier", RNG.integers(1, 4, N), FieldRole.NUMERIC),
    ],
)
def test_codes_written_as_numbers(name: str, values: object, role: FieldRole) -> None:
    frame = _base().assign(**{name: values})
    assert _spec(_schema(frame), name).role is role


def test_a_feature_that_cannot_be_used_is_refused_naming_it() -> None:
    frame = _base().assign(note=[f"free text number {i}" for i in range(N)], constant=5)
    with pytest.raises(InvalidInputError) as error:
        _schema(frame, features=["income", "note", "constant"])
    fields = {p.field for p in error.value.problems}
    assert fields == {"note", "constant"}
    assert "the same value for every customer" in str(error.value)


def test_case_variants_of_a_level_are_one_level() -> None:
    frame = _base().assign(plan=RNG.choice(["Gold", "gold ", "GOLD", "Silver"], N))
    schema = _schema(frame)
    cleaned = clean(ingest(frame).frame, schema)
    # one spelling for the three: the most frequent
    assert len(set(cleaned["plan"])) == 2 and "Silver" in set(cleaned["plan"])
