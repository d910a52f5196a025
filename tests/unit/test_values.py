"""values: numbers written as text, placeholders, bands and yes/no, read as a spreadsheet
wrote them and reported."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from segmentation.pipeline.values import (
    NumberReading,
    TextValues,
    band_reading,
    number_reading,
    numeric_placeholders,
    read_numbers,
    text_values,
    yes_no_reading,
)


def _text(values: list[str | None]) -> TextValues:
    return text_values(pd.Series(values, dtype=object))


def _numbers(reading: NumberReading, values: list[str | None]) -> list[float]:
    """The numbers of `values`, per customer, as the reading reads them."""
    result: list[float] = _text(values).per_customer(reading.level_values).tolist()
    return result


@pytest.mark.parametrize(
    ("values", "expected", "number_format"),
    [
        # thousands separators with a decimal point
        (["75,000", "1,200.50", "64,500"], [75000, 1200.5, 64500], "."),
        # decimal commas, as a semicolon export writes them
        (["29,85", "1889,5", "108,15"], [29.85, 1889.5, 108.15], ","),
        # European thousands and decimals
        (["1.234,56", "12,5", "999"], [1234.56, 12.5, 999], ","),
        # currency signs before and after, and a percent sign (kept as written: 12% is 12)
        (["$67,349", "€ 12", "12%", "5 $"], [67349, 12, 12, 5], "."),
        # an accounting negative and a sign after the currency
        (["(1,234.00)", "$-5", "7"], [-1234, -5, 7], "."),
        # no-break spaces as thousands separators
        (["1\u00a0234", "56"], [1234, 56], "."),
    ],
)
def test_numbers_written_as_text(
    values: list[str], expected: list[float], number_format: str
) -> None:
    reading = number_reading(_text(values))
    assert reading is not None
    assert reading.number_format == number_format
    assert _numbers(reading, values) == pytest.approx(expected)


def test_blanks_are_missing_and_counted() -> None:
    read = text_values(pd.Series(["12", " ", "", None, "  7 "], dtype=object))
    assert read.values.tolist() == ["12", None, None, None, "7"]
    assert read.blanks == 2
    assert read.notes == ["2 blank values read as missing"]


def test_placeholder_texts_are_missing_and_counted() -> None:
    read = text_values(pd.Series(["a", "NULL", "unknown", "?", "N/A", "None", "b"] * 2))
    assert read.values.dropna().tolist() == ["a", "None", "b"] * 2  # "None" is a level
    assert read.placeholders == {"NULL": 2, "unknown": 2, "?": 2, "N/A": 2}


@pytest.mark.parametrize(
    "values",
    [
        # zero-padded codes are codes
        ["0042", "0117", "1200"],
        # words, with a number among them
        ["gold", "silver", "12"],
        # dates
        ["2021-03-04", "2021-03-05"],
    ],
)
def test_text_that_is_not_numbers(values: list[str]) -> None:
    assert number_reading(_text(values)) is None


def test_a_few_stray_words_among_numbers_are_missing_and_reported() -> None:
    values = [str(i) for i in range(200)] + ["n.a.", "see notes"]
    reading = number_reading(_text(values))
    assert reading is not None
    numbers = _numbers(reading, values)
    assert np.isnan(numbers[-1]) and numbers[10] == 10
    # "n.a." is a placeholder, read as missing before any number is looked for
    assert reading.notes == ["1 value that is not a number ('see notes') read as missing"]


def test_the_rest_of_the_file_says_which_mark_is_decimal() -> None:
    # "1,234" alone could be either; a file whose other fields show decimal commas says comma
    values = ["1,234", "5,678"]
    point = number_reading(_text(values))
    assert point is not None and _numbers(point, values) == [1234, 5678]
    comma = number_reading(_text(values), decimal_hint=",")
    assert comma is not None and _numbers(comma, values) == pytest.approx([1.234, 5.678])


@pytest.mark.parametrize(
    ("values", "midpoints"),
    [
        # money bands with an open end on each side
        (["Less than $40K", "$40K - $60K", "$60K - $80K", "$120K +"], [30e3, 50e3, 70e3, 130e3]),
        # age bands
        (["18-24", "25-29", "30-34"], [21, 27, 32]),
        # fee bands with cents
        (["$7.00 - $7.99", "$8.00 - $8.99"], [7.495, 8.495]),
        # "Under" and "Plus"
        (["Under $20,000", "$20,000 - $29,999", "$30,000 Plus"], [15000, 24999.5, 35000]),
    ],
)
def test_bands_are_numbers_at_their_midpoints(values: list[str], midpoints: list[float]) -> None:
    reading = band_reading(_text(values))
    assert reading is not None
    assert _numbers(reading, values) == pytest.approx(midpoints, rel=1e-3)
    # new customers scored later are read the same way
    again = read_numbers(pd.Series(values), reading.number_format)
    assert again.tolist() == pytest.approx(midpoints, rel=1e-3)


def test_phone_numbers_are_no_bands() -> None:
    assert band_reading(_text([f"555-{1000 + i}" for i in range(80)])) is None


def test_yes_no_in_any_case() -> None:
    reading = yes_no_reading(_text(["Yes", "no", "YES", None]))
    assert reading is not None
    numbers = _numbers(reading, ["Yes", "no", "YES", None])
    assert numbers[:3] == [1.0, 0.0, 1.0] and math.isnan(numbers[3])
    assert yes_no_reading(_text(["Yes", "Maybe"])) is None


RNG = np.random.default_rng(0)


@pytest.mark.parametrize(
    ("values", "zero_is_a_value", "codes"),
    [
        # 0 among years: a cancellation year never set
        (np.r_[np.zeros(300), RNG.integers(2012, 2019, 100)], False, {0.0: 300}),
        # 0 among salaries, a few stray negatives aside
        (np.r_[np.zeros(50), RNG.normal(70_000, 15_000, 400), [-5000.0]], False, {0.0: 50}),
        # 999 among day counts: never contacted
        (np.r_[np.full(500, 999.0), RNG.integers(0, 27, 60)], False, {999.0: 500}),
        # -1 among non-negative counts
        (np.r_[np.full(10, -1.0), RNG.integers(0, 40, 200)], False, {-1.0: 10}),
        # an amount: 0 is none, a real value
        (np.r_[np.zeros(300), RNG.normal(70_000, 15_000, 400)], True, {}),
        # shares in [0, 1]: 0 is a share
        (np.r_[np.zeros(100), RNG.integers(1, 13, 300) / 12], False, {}),
        # counts next to 1, 2, 3: 0 is a count
        (RNG.integers(0, 6, 500).astype(float), False, {}),
        # 99 as an age among 18-92: not apart enough to be a code
        (np.r_[np.full(3, 99.0), RNG.integers(18, 93, 300)], False, {}),
    ],
)
def test_numeric_placeholders(
    values: np.ndarray, zero_is_a_value: bool, codes: dict[float, int]
) -> None:
    assert numeric_placeholders(values.astype(float), zero_is_a_value) == codes
