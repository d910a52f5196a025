"""naming: names a marketer would sign; words: fields and levels in a reader's words."""

from __future__ import annotations

import pytest

from segmentation.pipeline.naming import descriptor, field_name, make_unique
from segmentation.pipeline.profile import Evidence
from segmentation.pipeline.words import fit_name, level_phrase


def _share(field: str, level: str | None, seg: float, overall: float, effect: float) -> Evidence:
    return Evidence(field, "share", seg, overall, effect, 0.0, level)


def _mean(field: str, effect: float, kind: str = "mean") -> Evidence:
    return Evidence(field, kind, 1.0, 0.0, effect, 0.0)


@pytest.mark.parametrize(
    ("field", "level", "phrase"),
    [
        # a yes/no level means nothing without its field
        ("InternetService", "No", "No Internet Service"),
        ("Partner", "Yes", "Partner"),
        ("OnlineSecurity", "None", "No Online Security"),
        # a level that says what it is stands alone
        ("Contract", "Month-to-month", "Month-to-month"),
        ("InternetService", "Fiber optic", "Fiber optic"),
        # numbers and short codes carry their field
        ("CityTier", "1", "City Tier 1"),
        ("GENDER", "M", "Gender M"),
        ("PaymentMethod", "Other", "Other Payment Method"),
        # a statistics package's reference-level prefix is no part of the level
        ("GENDER", "z_F", "Gender F"),
    ],
)
def test_level_phrases(field: str, level: str, phrase: str) -> None:
    assert level_phrase(field, level) == phrase


@pytest.mark.parametrize(
    ("evidence", "text"),
    [
        (_share("IsActiveMember", None, 0.2, 0.5, -0.6), "Not Active Member"),
        (_share("HasCrCard", None, 0.9, 0.7, 0.5), "Cr Card"),
        (_mean("MntWines", 1.2), "High Wines"),
        # axes in a marketer's words
        (_mean("recency_days", -1.0), "Recent"),
        (_mean("recency_days", 1.0), "Lapsing"),
        (_mean("tenure", -1.0), "New"),
        (_mean("Enrollment Year", 1.0), "New"),  # a later enrolment is a newer customer
        (_mean("Year_Birth", 1.0), "Young"),
    ],
)
def test_descriptors(evidence: Evidence, text: str) -> None:
    assert descriptor(evidence) == text


def test_placeholders_and_outcomes_never_name_a_segment() -> None:
    evidence = [
        Evidence("Salary", "missing", 0.9, 0.25, 2.0, 0.0, None, "90% with no Salary"),
        Evidence("Churn", "outcome", 0.6, 0.27, 1.5, 0.0, "Yes", "Churn: 60%"),
        _share("Region", "(missing)", 0.5, 0.1, 1.2),
        _mean("Age", 0.7),
    ]
    assert field_name(evidence) == "Senior Customers"


@pytest.mark.parametrize(
    ("options", "name"),
    [
        # " Customers" is added where it fits ...
        (("High Grocery & Milk",), "High Grocery & Milk Customers"),
        # ... never after a name that says who already (no "Customer Customers")
        (("Attrited Customer",), "Attrited Customer"),
        # the shorter option when the first does not fit 40 characters
        (("Fiber optic, Month-to-month, Electronic check", "Fiber optic"), "Fiber optic Customers"),
    ],
)
def test_fit_name(options: tuple[str, ...], name: str) -> None:
    assert fit_name(*options) == name
    assert len(fit_name(*options)) <= 40


def test_many_look_alikes_are_told_apart_by_their_own_traits() -> None:
    names = ["Enthusiastic Spenders"] * 4
    evidence = [
        [_share("Geography", "France", 1.0, 0.5, 1.5)],
        [_share("Geography", "Germany", 1.0, 0.25, 1.8)],
        [_share("Geography", "Spain", 1.0, 0.25, 1.7)],
        [_mean("NumOfProducts", 1.1)],
    ]
    standardized = [{"Balance": 0.6, "NumOfProducts": z} for z in (0.0, 0.1, -0.1, 1.1)]
    unique = make_unique(names, evidence, standardized)
    assert unique == [
        "Enthusiastic Spenders (France)",
        "Enthusiastic Spenders (Germany)",
        "Enthusiastic Spenders (Spain)",
        "Enthusiastic Spenders (High Products)",
    ]
