"""Transactions to customers: recency, frequency, monetary value and tenure (RFM).

Many users hold orders, not customer rows. One row per customer is derived here, then
segmented like any other customers.

- A purchase day is a day with at least one sale to the customer: same-day orders are merged,
  as Fader & Hardie do for the CDNOW data (a zero-value sale still counts as a purchase).
- Cancellations (an invoice number starting with "C") and negative values are returns: they
  reduce the customer's spend but are not purchases.
- Rows without a customer id cannot be attributed and are left out (and counted).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd

from segmentation.errors import InvalidInputError, Problem
from segmentation.pipeline.schema import detect_date_format, parse_dates

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
        value = pd.to_numeric(_column(frame, amount, "amount"), errors="coerce")
    elif quantity is not None and price is not None:
        value = pd.to_numeric(_column(frame, quantity, "quantity"), errors="coerce") * (
            pd.to_numeric(_column(frame, price, "price"), errors="coerce")
        )
    else:
        raise InvalidInputError(
            Problem("give the amount column, or the quantity and price columns", field="amount")
        )
    cut = pd.Timestamp(as_of) if as_of is not None else days.max()
    known = ids.notna() & days.notna() & value.notna() & (days <= cut)
    cancelled = (
        _column(frame, invoice, "invoice").astype(str).str.upper().str.startswith("C")
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
