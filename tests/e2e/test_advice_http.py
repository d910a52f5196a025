"""Advice never contradicts its own figures, on every shared data set, through HTTP.

Each data set is analysed (`POST /api/analyze`), then advised by id (`POST
/api/recommendations`). Every "X vs Y average" in every recommendation must be a figure the
action lists, and each figure must go in the direction its sentence claims.
"""

from __future__ import annotations

import re
from typing import Any

import httpx
import pandas as pd
import pytest

from segmentation.pipeline.words import format_number
from segmentation.rfm import customers_from_transactions
from tests.e2e.conftest import DATASETS, REQUEST_TIMEOUT, analyze_ok, frame_records

pytestmark = pytest.mark.slow

# "... 1271 vs 606 average", "Churn 47% vs 27% average": the shape of every cited figure
# (characteristics, quoted when a segment has no figure, read "(26.0 vs 304)" instead)
CITED = re.compile(r"\d[\d.]*(%|[kM]?) vs -?\d[\d.]*(%|[kM]?) average")


def _read(name: str, **options: Any) -> pd.DataFrame:
    path = DATASETS / name
    if not path.exists():
        pytest.fail(f"dataset {path} is missing")
    return pd.read_csv(path, **options)


def _cdnow_customers() -> pd.DataFrame:
    orders = _read("cdnow_master.csv", dtype={"customer_id": str, "date": str})
    return customers_from_transactions(
        orders, customer_id="customer_id", date="date", amount="dollar_value"
    ).customers


DATA_SETS = {
    # name: (loader, the server fixture that can take its size)
    "mall_customers": (lambda: _read("mall_customers.csv"), "base_url"),
    "mall_customers_genre_variant": (
        lambda: _read("mall_customers_genre_variant.csv", dtype={"CustomerID": str}),
        "base_url",
    ),
    "mall_customers_with_missing": (lambda: _read("mall_customers_with_missing.csv"), "base_url"),
    "wholesale_customers": (lambda: _read("wholesale_customers.csv"), "base_url"),
    "marketing_campaign": (lambda: _read("marketing_campaign.tsv", sep="\t"), "base_url"),
    "cc_general": (lambda: _read("cc_general.csv"), "large_body_base_url"),
    "cdnow_summary": (lambda: _read("cdnow_customers_summary_with_monetary.csv"), "base_url"),
    "cdnow_rfm": (_cdnow_customers, "large_body_base_url"),
}


@pytest.mark.parametrize("name", list(DATA_SETS))
def test_every_cited_figure_goes_the_way_its_sentence_says(
    name: str, request: pytest.FixtureRequest
) -> None:
    loader, fixture = DATA_SETS[name]
    base_url: str = request.getfixturevalue(fixture)
    payload = analyze_ok(base_url, frame_records(loader()), includeCustomers=False)
    response = httpx.post(
        f"{base_url}/api/recommendations",
        json={"analysisId": payload["analysisId"]},
        timeout=REQUEST_TIMEOUT,
    )
    assert response.status_code == 200, response.text
    advice = response.json()
    assert len(advice["actions"]) == len(advice["recommendations"])
    checked = 0
    for action, text in zip(advice["actions"], advice["recommendations"], strict=True):
        assert "nan" not in text.lower().split(), text
        # every figure in the sentence is a listed one, so none escapes the check below
        assert len(CITED.findall(text)) == len(action["figures"]), (text, action["figures"])
        for figure in action["figures"]:
            shown = (
                f"{figure['label']} {figure['value']:.0%} vs {figure['average']:.0%} average"
                if figure["percent"]
                else f"{figure['label']} {format_number(figure['value'])} vs "
                f"{format_number(figure['average'])} average"
            )
            assert shown in text, (shown, text)
            value, average = figure["value"], figure["average"]
            claim = figure["direction"]
            if claim == "above":
                assert value > average, (figure, text)
            elif claim == "below":
                assert value < average, (figure, text)
            else:
                assert 0.8 * average < value < 1.25 * average, (figure, text)
            checked += 1
    # where field names say spend, income or frequency, the advice must cite figures (the
    # others, such as wholesale's Fresh and Milk or CDNOW's x and zbar, name no such axis)
    if name not in ("wholesale_customers", "cdnow_summary"):
        assert checked > 0, advice["recommendations"]
