"""Transactions to customers: recency, frequency, monetary value and tenure (RFM).

Many users hold orders, not customer rows. One row per customer is derived here, then
segmented like any other customers.

- A purchase day is a day with at least one sale to the customer: same-day orders are merged,
  as Fader & Hardie do for the CDNOW data (a zero-value sale still counts as a purchase).
- Cancellations and negative values are returns: they reduce the customer's spend but are
  not purchases. A cancellation is an invoice "C" + digits among invoices of digits (the UCI
  Online Retail convention); where invoices have another shape ("CA-2016-152156"), a leading C
  marks nothing.
- Amounts, quantities and prices written as text ("$1,234.50", "12,5") are read as numbers,
  as any customer field is (pipeline/values.py).
- Rows without a customer id cannot be attributed and are left out (and counted).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd

from segmentation.errors import InvalidInputError, Problem
from segmentation.pipeline.schema import detect_date_format, parse_dates
from segmentation.pipeline.values import number_reading, read_numbers, text_values

__all__ = ["RfmResult", "TransactionColumns", "customers_from_transactions"]


@dataclass(frozen=True)
class TransactionColumns:
    """Which columns of a file of orders hold what (the wire's `transactions` object)."""

    customer_id: str
    date: str
    amount: str | None = None
    quantity: str | None = None
    price: str | None = None
    invoice: str | None = None
    as_of: str | None = None

    WIRE: ClassVar[dict[str, str]] = {
        "customerId": "customer_id", "date": "date", "amount": "amount",
        "quantity": "quantity", "price": "price", "invoice": "invoice", "asOf": "as_of",
    }  # fmt: skip

    @classmethod
    def from_wire(cls, payload: object, root: str = "transactions") -> TransactionColumns:
        if not isinstance(payload, dict):
            raise InvalidInputError(Problem("must be a JSON object", field=root))
        problems = [
            Problem(f"unknown key {key!r}; known: {', '.join(cls.WIRE)}", field=f"{root}.{key}")
            for key in payload
            if key not in cls.WIRE
        ]
        problems += [
            Problem("is required: a column name", field=f"{root}.{key}")
            for key in ("customerId", "date")
            if payload.get(key) is None
        ]
        problems += [
            Problem(f"should be a column name (got {value!r})", field=f"{root}.{key}")
            for key, value in payload.items()
            if key in cls.WIRE and value is not None and not isinstance(value, str)
        ]
        if problems:
            raise InvalidInputError(problems)
        return cls(**{cls.WIRE[key]: value for key, value in payload.items()})

    def derive(self, frame: pd.DataFrame) -> RfmResult:
        return customers_from_transactions(
            frame, customer_id=self.customer_id, date=self.date, amount=self.amount,
            quantity=self.quantity, price=self.price, invoice=self.invoice, as_of=self.as_of,
        )  # fmt: skip


@dataclass(frozen=True)
class RfmResult:
    """One row per customer, and what was left out on the way."""

    customers: pd.DataFrame
    rows_without_customer: int
    return_rows: int
    customers_with_only_returns: int
    as_of: pd.Timestamp


def _column(frame: pd.DataFrame, name: str | None, role: str) -> pd.Series:
    if name is None or name not in frame:
        shown = ", ".join(repr(c) for c in frame.columns[:20])
        raise InvalidInputError(
            Problem(f"the {role} column {name!r} is not in the file; it has {shown}", field=role)
        )
    return frame[name]


# invoices of digits, and the share of them a file must hold for "C" + digits to mark a return
INVOICE_DIGITS = r"^\d+$"
CANCELLATION = r"^[Cc]\d+$"
DIGIT_INVOICES_SHARE = 0.9


def _cancellations(invoices: pd.Series) -> pd.Series:
    """Which rows are cancellations: "C536379" among invoices such as "536365". When most
    invoices start with C, or the others are not digits, a leading C is part of the number."""
    text = invoices.astype(str).str.strip()
    marked = text.str.match(CANCELLATION)
    others = text[~text.str.match(r"^[Cc]")]
    if (
        not marked.any()
        or marked.mean() > 0.5
        or others.empty
        or others.str.match(INVOICE_DIGITS).mean() < DIGIT_INVOICES_SHARE
    ):
        return pd.Series(False, index=invoices.index)
    return marked


def _numbers(column: pd.Series) -> pd.Series:
    """A column of amounts as numbers, text read as a spreadsheet wrote it ("$1,234.50")."""
    if pd.api.types.is_numeric_dtype(column.dtype):
        return column.astype(float)
    read = text_values(column)
    reading = number_reading(read)
    numbers = (
        read.per_customer(reading.level_values)
        if reading is not None
        else read_numbers(read.values, None)
    )
    return pd.Series(numbers, index=column.index)


def customers_from_transactions(
    frame: pd.DataFrame,
    *,
    customer_id: str,
    date: str,
    amount: str | None = None,
    quantity: str | None = None,
    price: str | None = None,
    invoice: str | None = None,
    as_of: str | pd.Timestamp | None = None,
) -> RfmResult:
    """Per customer: recency_days (since the last purchase day), frequency (purchase days),
    monetary (net spend per purchase day), repeat_monetary (mean value of the purchase days
    after the first: Fader & Hardie's z-bar), tenure_days (since the first purchase day) and
    total_spend (net of returns). The value of a row is `amount`, or `quantity` x `price`.
    `as_of` (default: the last date in the data) is the day recency and tenure count to;
    later transactions are left out.
    """
    ids = _column(frame, customer_id, "customer_id")
    text_dates = _column(frame, date, "date").astype(str)
    date_format = detect_date_format(text_dates)
    if date_format is None:
        raise InvalidInputError(
            Problem(f"{text_dates.iloc[0]!r} is not a date format this service reads", field=date)
        )
    days = parse_dates(text_dates, date_format).dt.normalize()
    if amount is not None:
        value = _numbers(_column(frame, amount, "amount"))
    elif quantity is not None and price is not None:
        value = _numbers(_column(frame, quantity, "quantity")) * _numbers(
            _column(frame, price, "price")
        )
    else:
        raise InvalidInputError(
            Problem("give the amount column, or the quantity and price columns", field="amount")
        )
    cut = pd.Timestamp(as_of) if as_of is not None else days.max()
    known = ids.notna() & days.notna() & value.notna() & (days <= cut)
    cancelled = (
        _cancellations(_column(frame, invoice, "invoice"))
        if invoice is not None
        else pd.Series(False, index=frame.index)
    )
    returns = known & (cancelled | (value < 0))
    sales = known & ~returns
    table = pd.DataFrame({"customer": ids, "day": days, "value": value})
    per_day = table[sales].groupby(["customer", "day"], sort=True)["value"].sum().reset_index()
    grouped = per_day.groupby("customer", sort=True)
    first, last = grouped["day"].min(), grouped["day"].max()
    frequency = grouped.size()
    spent = grouped["value"].sum()
    first_value = per_day.drop_duplicates("customer", keep="first").set_index("customer")["value"]
    returned = table[returns].groupby("customer")["value"].sum()
    total = spent.add(-returned.abs(), fill_value=0.0).reindex(spent.index)
    repeat_days = frequency - 1
    repeat_value = (spent - first_value).where(repeat_days > 0, 0.0) / repeat_days.replace(
        0, np.nan
    )
    customers = pd.DataFrame(
        {
            customer_id: spent.index,
            "recency_days": (cut - last).dt.days.to_numpy(),
            "frequency": frequency.to_numpy(),
            "monetary": (total / frequency).round(4).to_numpy(),
            "repeat_monetary": repeat_value.fillna(0.0).round(4).to_numpy(),
            "tenure_days": (cut - first).dt.days.to_numpy(),
            "total_spend": total.round(4).to_numpy(),
        }
    )
    only_returns = len(set(table.loc[returns, "customer"]) - set(spent.index))
    return RfmResult(
        customers=customers,
        rows_without_customer=int(ids.isna().sum()),
        return_rows=int(returns.sum()),
        customers_with_only_returns=only_returns,
        as_of=cut,
    )
