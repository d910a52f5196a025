"""Transactions to customers, checked against the CDNOW ground truth and small literal cases."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from segmentation.errors import InvalidInputError
from segmentation.rfm import customers_from_transactions

DATASETS = Path(__file__).resolve().parents[3] / "shared" / "datasets"


def test_cdnow_matches_the_published_per_customer_summary() -> None:
    # Fader & Hardie's summary of the 1/10 sample: same-day purchases merged, calibration
    # period up to 1997-09-30, weeks as days / 7 (the datasets README's recipe)
    transactions = pd.read_csv(DATASETS / "cdnow_sample.csv", dtype={"customer_id": str})
    result = customers_from_transactions(
        transactions, customer_id="customer_id", date="date", amount="dollar_value",
        as_of="1997-09-30",
    )  # fmt: skip
    truth = pd.read_csv(DATASETS / "cdnow_customers_summary_with_monetary.csv")
    ours = result.customers.assign(ID=lambda d: d["customer_id"].astype(int)).merge(truth, on="ID")
    assert len(ours) == len(truth) == 2357
    assert ((ours["frequency"] - 1) == ours["x"]).all()  # repeat purchase days, exactly
    recency_weeks = (ours["tenure_days"] - ours["recency_days"]) / 7
    assert np.abs(recency_weeks - ours["t_x"]).max() <= 0.005 + 1e-9
    assert np.abs(ours["tenure_days"] / 7 - ours["T"]).max() <= 0.005 + 1e-9
    assert np.abs(ours["repeat_monetary"] - ours["zbar"]).max() <= 0.005 + 1e-9


def test_cancellations_and_returns_reduce_spend_but_are_not_purchases() -> None:
    orders = pd.DataFrame(
        {
            "InvoiceNo": ["1", "1", "2", "C3", "4", "5", "6"],
            "CustomerID": ["a", "a", "a", "a", "b", None, "c"],
            "InvoiceDate": ["2011-01-01 10:00:00", "2011-01-01 12:00:00", "2011-01-05 09:00:00",
                            "2011-01-06 09:00:00", "2011-01-02 08:00:00", "2011-01-03 08:00:00",
                            "2011-01-04 08:00:00"],
            "Quantity": [2, 1, 1, -1, 5, 3, -2],
            "UnitPrice": [10.0, 5.0, 20.0, 20.0, 1.0, 2.0, 4.0],
        }
    )  # fmt: skip
    result = customers_from_transactions(
        orders, customer_id="CustomerID", date="InvoiceDate", quantity="Quantity",
        price="UnitPrice", invoice="InvoiceNo",
    )  # fmt: skip
    rows = result.customers.set_index("CustomerID")
    assert rows.loc["a", "frequency"] == 2  # two purchase days; the cancellation is no purchase
    assert rows.loc["a", "total_spend"] == pytest.approx(25 + 20 - 20)
    assert rows.loc["a", "recency_days"] == 1 and rows.loc["a", "tenure_days"] == 5
    assert list(rows.index) == ["a", "b"]  # "c" only returned something
    assert result.customers_with_only_returns == 1
    assert result.rows_without_customer == 1
    assert result.return_rows == 2


def test_missing_columns_are_named() -> None:
    orders = pd.DataFrame({"customer": ["a"], "day": ["2011-01-01"], "spend": [1.0]})
    with pytest.raises(InvalidInputError, match="the amount column 'value' is not in the file"):
        customers_from_transactions(orders, customer_id="customer", date="day", amount="value")
