"""features: imputation, log for skewed money, one-hot with rare levels, PCA, field weights."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from segmentation.pipeline.features import (
    MISSING_LEVEL,
    ONE_HOT_WEIGHT,
    OTHER_LEVEL,
    FeatureEncoder,
    FieldEncoding,
)
from segmentation.pipeline.ingest import ingest
from segmentation.pipeline.schema import infer_schema
from segmentation.synthetic import make_population


def _fit(frame: pd.DataFrame, random_state: int = 0) -> tuple[FeatureEncoder, pd.DataFrame]:
    ingested = ingest(frame)
    encoder = FeatureEncoder(infer_schema(ingested), random_state).fit(ingested.frame)
    return encoder, ingested.frame


def _encoding(encoder: FeatureEncoder, name: str) -> FieldEncoding:
    return next(e for e in encoder.encodings_ if e.spec.name == name)


def test_median_imputation_and_its_note() -> None:
    frame = pd.DataFrame({"age": [20.0, 30.0, np.nan, 40.0, 90.0], "tenure": [1, 2, 3, 4, 5]})
    encoder, clean = _fit(frame)
    age = _encoding(encoder, "age")
    assert age.missing == 1
    assert age.fill_value == 35.0
    assert "missing values filled with the median 35" in encoder.describe()["age"]
    # 1 of 5 missing is a pattern worth an indicator column
    assert age.missing_indicator
    encoded = encoder.encode(clean)[:, age.columns]
    assert encoded[2, 1] == 1.0
    # the imputed customer sits where a customer aged 35 would
    assert encoded[2, 0] == pytest.approx((35.0 - age.center) / age.scale)


def test_no_indicator_when_few_values_are_missing() -> None:
    values = [float(i) for i in range(40)]
    values[3] = np.nan
    encoder, _ = _fit(pd.DataFrame({"age": values, "tenure": range(40)}))
    age = _encoding(encoder, "age")
    assert not age.missing_indicator
    assert age.columns == slice(0, 1)


@pytest.mark.parametrize(
    ("values", "log"),
    [
        # skewed, non-negative: money
        ([20e3, 22e3, 25e3, 27e3, 30e3, 31e3, 35e3, 40e3, 1.5e6], True),
        # roughly symmetric
        ([20e3, 22e3, 25e3, 27e3, 30e3, 33e3, 35e3, 38e3, 40e3], False),
        # skewed but with a negative value: no log
        ([-5e3, 22e3, 25e3, 27e3, 30e3, 31e3, 35e3, 40e3, 1.5e6], False),
    ],
)
def test_log_only_for_skewed_non_negative_fields(values: list[float], log: bool) -> None:
    frame = pd.DataFrame({"income": values, "tenure": range(len(values))})
    encoder, clean = _fit(frame)
    income = _encoding(encoder, "income")
    assert income.log is log
    assert ("log-transformed" in encoder.describe().get("income", "")) is log
    column = encoder.encode(clean)[:, income.columns][:, 0]
    # standardized (weight 1 here), clipped at 5 SD
    assert np.abs(column).max() <= 5.0
    if log:
        assert column.mean() == pytest.approx(0.0, abs=1e-9)
        assert column.std() == pytest.approx(1.0)


def test_categorical_one_hot_with_rare_levels_and_missing() -> None:
    region = ["North"] * 100 + ["South"] * 96 + [None] * 2 + ["East", "West"]
    frame = pd.DataFrame({"region": region, "tenure": range(len(region))})
    encoder, clean = _fit(frame)
    encoding = _encoding(encoder, "region")
    # 1 customer in 200 is below the 1% share: East and West are grouped
    assert encoding.levels == ("North", "South", MISSING_LEVEL, OTHER_LEVEL)
    assert encoding.missing == 2
    notes = encoder.describe()["region"]
    assert "missing values as level '(missing)'" in notes
    assert "2 rare levels grouped as 'Other'" in notes
    one_hot = encoder.encode(clean)[:, encoding.columns]
    assert one_hot.shape == (200, 4)
    # one column set per customer, at 1/sqrt(2)
    assert np.allclose(one_hot.sum(axis=1), ONE_HOT_WEIGHT)
    assert one_hot[0].tolist() == pytest.approx([ONE_HOT_WEIGHT, 0, 0, 0])
    assert one_hot[196].tolist() == pytest.approx([0, 0, ONE_HOT_WEIGHT, 0])
    assert one_hot[199].tolist() == pytest.approx([0, 0, 0, ONE_HOT_WEIGHT])


def test_more_than_15_levels_keeps_15_and_groups_the_rest() -> None:
    levels = [f"L{i:02d}" for i in range(20)]
    frame = pd.DataFrame({"shop": levels * 5, "tenure": range(100)})
    encoder, _ = _fit(frame)
    encoding = _encoding(encoder, "shop")
    assert len(encoding.levels) == 16
    assert encoding.levels[-1] == OTHER_LEVEL


@pytest.mark.parametrize(
    "region",
    [
        # a level never seen while fitting, with an Other level to fall into
        "Atlantis",
        # missing when nothing was missing at fit time
        None,
    ],
)
def test_unseen_category_on_transform_does_not_crash(region: str | None) -> None:
    # BUG: without an Other level, the unseen value reaches pd.Categorical(values, categories=...)
    # which emits Pandas4Warning ("... will raise in a future version"): an error under this
    # project's warnings-as-errors, and an exception outright with pandas 4.
    fit_frame = pd.DataFrame({"region": ["North", "South"] * 5, "age": range(10)})
    encoder, _ = _fit(fit_frame)
    new = pd.DataFrame({"region": [region, "North"], "age": [3.0, 4.0]})
    X = encoder.transform(new)
    assert X.shape == (2, encoder.n_columns_)
    assert np.isfinite(X).all()
    encoding = _encoding(encoder, "region")
    # the unseen value is in no known level
    assert X[0, encoding.columns].sum() == 0.0


def test_unseen_category_falls_into_other_when_there_is_one() -> None:
    region = ["North"] * 100 + ["South"] * 99 + ["East"]
    encoder, _ = _fit(pd.DataFrame({"region": region, "age": range(200)}))
    encoding = _encoding(encoder, "region")
    assert encoding.levels[-1] == OTHER_LEVEL
    X = encoder.transform(pd.DataFrame({"region": ["Atlantis"], "age": [3.0]}))
    assert X[0, encoding.columns].tolist() == pytest.approx([0, 0, ONE_HOT_WEIGHT])


def test_booleans_stay_zero_one_and_are_filled_with_the_mode() -> None:
    frame = pd.DataFrame({"vip": [1.0, 1.0, 0.0, np.nan, 1.0], "age": [20, 30, 40, 50, 60]})
    encoder, clean = _fit(frame)
    vip = _encoding(encoder, "vip")
    assert vip.fill_value == 1.0
    assert encoder.encode(clean)[:, vip.columns][:, 0].tolist() == [1.0, 1.0, 0.0, 1.0, 1.0]


def test_dates_are_encoded_as_numbers() -> None:
    frame = pd.DataFrame(
        {"joined": [f"2021-03-{d:02d}" for d in range(1, 11)], "age": range(20, 30)}
    )
    encoder, clean = _fit(frame)
    column = encoder.encode(clean)[:, _encoding(encoder, "joined").columns][:, 0]
    assert np.all(np.diff(column) > 0)


def test_pca_when_more_than_20_encoded_columns() -> None:
    rng = np.random.default_rng(0)
    latent = rng.normal(size=(80, 3))
    wide = latent @ rng.normal(size=(3, 24)) + 0.05 * rng.normal(size=(80, 24))
    frame = pd.DataFrame(wide, columns=[f"f{i}" for i in range(24)])
    encoder, clean = _fit(frame)
    assert encoder.n_columns_ == 24
    assert encoder.pca_components_ is not None
    X = encoder.transform(clean)
    assert X.shape == (80, encoder.pca_components_.shape[0])
    # three latent factors explain 90% of the variance
    assert X.shape[1] <= 3


def test_no_pca_at_20_columns() -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(40, 20)), columns=[f"f{i}" for i in range(20)])
    encoder, clean = _fit(frame)
    assert encoder.pca_components_ is None
    assert encoder.transform(clean).shape == (40, 20)


def test_pure_noise_field_gets_a_small_weight() -> None:
    population = make_population(600, 4, random_state=0)
    encoder, _ = _fit(population.frame)
    weights = {e.spec.name: e.weight for e in encoder.encodings_}
    assert weights["satisfaction"] < 0.5
    for field in ("age", "income", "purchases", "region"):
        assert weights[field] == 1.0, field
    assert "shares little information" in encoder.describe()["satisfaction"]


def test_no_weights_when_no_field_depends_on_another() -> None:
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(rng.uniform(size=(300, 3)), columns=["a", "b", "c"])
    encoder, _ = _fit(frame)
    assert [e.weight for e in encoder.encodings_] == [1.0, 1.0, 1.0]


def test_transform_of_the_fit_frame_is_deterministic() -> None:
    population = make_population(300, 3, random_state=2)
    first, clean = _fit(population.frame, random_state=5)
    second, _ = _fit(population.frame, random_state=5)
    X = first.transform(clean)
    assert np.array_equal(X, first.transform(clean))
    assert np.array_equal(X, second.transform(clean))
    assert X.shape == (300, first.n_columns_)
    assert np.isfinite(X).all()


def test_encoding_does_not_mutate_the_frame() -> None:
    frame = pd.DataFrame({"income": [1.0, np.nan, 3.0, 4.0], "region": ["a", None, "b", "a"]})
    encoder, clean = _fit(frame)
    before = clean.copy(deep=True)
    encoder.transform(clean)
    pd.testing.assert_frame_equal(clean, before)
