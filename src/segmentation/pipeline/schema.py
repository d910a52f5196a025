"""Each field's role: id, numeric, boolean, categorical, date, outcome, or ignored (with the
reason), and how its values are read.

The role decides how a field is encoded and described. An id is never a feature: the customer
id, row numbers, client numbers and codes (whole numbers all different, in sequence, or long;
an id-like name). An outcome (churn, response) is reported per segment, never a feature, and a
field that restates one is left out. Free text, constants, nested values and fields that are
almost empty are ignored and reported, never guessed at. Text is read as what it holds: dates,
numbers however a spreadsheet wrote them, bands at their midpoints, yes/no; placeholder codes
are missing values (see pipeline/values.py). `clean` reads customers the way a schema says,
so new customers are read exactly as the ones the segments were learned on.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum

import numpy as np
import pandas as pd

from segmentation.errors import InvalidInputError, Problem
from segmentation.pipeline.ingest import IngestedCustomers
from segmentation.pipeline.outcomes import (
    LEAK_AUC,
    NUMERIC_OUTCOME_WORDS,
    PRESENT,
    leak_strength,
    outcome_meaning,
    outcome_values,
    outcome_word,
    positive_level,
)
from segmentation.pipeline.values import (
    YES_NO,
    YES_WORDS,
    TextValues,
    band_reading,
    decimal_comma_evident,
    format_count,
    number_reading,
    numeric_placeholders,
    read_numbers,
    text_values,
    yes_no_reading,
)
from segmentation.pipeline.values import without as values_without

__all__ = [
    "ADDITIVE_AXES",
    "ALMOST_EMPTY_SHARE",
    "AXIS_LABELS",
    "FieldRole",
    "FieldSpec",
    "Schema",
    "axis_fields",
    "axis_of",
    "clean",
    "detect_date_format",
    "infer_schema",
    "is_money",
    "joined",
    "name_words",
    "parse_dates",
    "read_field",
]

# A text field with more distinct values than this is free text or a code, not a category.
MAX_CATEGORY_LEVELS = 50
# "ISO8601" covers what browsers send (toISOString: 2021-03-04T10:20:30.123Z) and offsets.
ISO_8601 = "ISO8601"
DATE_FORMATS = ("%Y-%m-%d", ISO_8601, "%d-%m-%Y", "%d/%m/%Y", "%m/%d/%Y", "%Y/%m/%d", "%Y%m%d")

# Business axes recognised from the words of field names (`NumWebPurchases` -> num, web,
# purchases); whole words, so `account_balance` is not a count and `discount` not a count.
INCOME_WORDS = frozenset({"income", "salary", "wealth", "earnings", "earning"})
SPEND_WORDS = frozenset(
    {
        "spend",
        "spending",
        "spent",
        "mnt",
        "amt",
        "amount",
        "monetary",
        "revenue",
        "sales",
        "value",
        "balance",
        "payment",
        "payments",
        "ltv",
        "clv",
        "charges",
        "charge",
        "bill",
        "billing",
        "fee",
        "fees",
        "premium",
    }
)
# words of a field whose small numbers are ordered (a city tier, a grade): numbers, not codes
ORDINAL_WORDS = frozenset({"tier", "level", "rank", "grade", "score", "rating", "stage"})
# the largest number of a two-valued field read as a code (1/2, 1/3), not an amount
SMALL_CODE = 9
# words of a field whose small whole numbers stand for kinds of things, not amounts
CODE_WORDS = frozenset(
    {"region", "channel", "type", "category", "code", "group", "segment", "zone", "area",
     "branch", "store", "country", "city", "state", "department", "industry", "occupation",
     "agent", "company", "employer", "vendor", "supplier"}
)  # fmt: skip
# words of a field whose 0 cannot be a real value: a year, an age, an income, a price
ZERO_PLACEHOLDER_WORDS = frozenset({"year", "yr", "price", "rate", "tariff", "wage"})
# events counted or summed that are no purchase: claims, complaints, returns, late payments
EVENT_WORDS = frozenset(
    {"clm", "claim", "claims", "complaint", "complaints", "complain", "return", "returns",
     "refund", "refunds", "late", "default", "fraud", "cancellation", "cancellations",
     "contact", "contacts", "call", "calls"}
)  # fmt: skip
# a change or a ratio of an amount is no amount: "Total_Amt_Chng_Q4_Q1", "OrderAmountHike"
CHANGE_WORDS = frozenset({"chng", "change", "ratio", "pct", "growth", "hike", "utilization"})
# how long someone has been a customer: months of tenure, years of seniority (`antig`) ...
TENURE_WORDS = frozenset({"tenure", "seniority", "antig", "longevity"})
DURATION_WORDS = frozenset({"days", "weeks", "months", "years"})
CALENDAR_PARTS = frozenset({"month", "day", "week", "weekday", "quarter", "hour"})
RELATIONSHIP_WORDS = frozenset({"book", "customer", "member", "client", "relationship", "account"})
# ... or when they became one (a later enrolment is a newer customer)
JOINED_WORDS = frozenset(
    {"enrollment", "enrolment", "enrolled", "joined", "join", "signup", "registration",
     "registered", "activation", "activ", "onboarded", "onboarding"}
)  # fmt: skip
FREQUENCY_WORDS = frozenset({"frequency", "freq", "count", "ct", "cnt", "trx", "visits"})
# a count of these is frequency, an amount of them is spend
PURCHASE_WORDS = frozenset({"purchases", "purchase", "orders", "order", "transactions", "deals"})
NUMBER_WORDS = frozenset({"num", "number", "n", "nb"})
RECENCY_WORDS = frozenset({"recency", "recent"})
LAST_WORDS = frozenset({"purchase", "order", "visit", "transaction", "seen", "active"})


def name_words(name: str) -> list[str]:
    """`CustomerID` -> customer, id; `amount_paid` -> amount, paid; `MntWines` -> mnt, wines."""
    return [w.lower() for w in re.findall(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+", name)]


def axis_of(field: str, is_count: bool | None) -> str | None:
    """The business axis a field measures (income, spend, frequency, recency, age, tenure), if
    its name says so.

    `purchases` is ambiguous: a count of purchases is frequency, an amount is spend.
    `is_count` settles it (None: unknown, read as a count, as in the seed's example).

    Examples
    --------
    >>> [axis_of(name, None) for name in ("Annual Income (k$)", "NumWebPurchases", "MntWines")]
    ['income', 'frequency', 'spend']
    >>> [axis_of(name, None) for name in ("account_balance", "discount", "last_purchase")]
    ['spend', None, 'recency']
    """
    words = name_words(field)
    bag = set(words)
    if bag & (EVENT_WORDS | CHANGE_WORDS):
        return None  # claims, calls, returns, or a change: neither what customers buy nor spend
    if "age" in bag or {"year", "birth"} <= bag or "birthyear" in bag:
        return "age"
    if bag & RECENCY_WORDS or ("last" in bag and bag & LAST_WORDS):
        return "recency"
    held = bag & (JOINED_WORDS | RELATIONSHIP_WORDS)  # months on book, years as a member
    if bag & TENURE_WORDS or joined(field) or (held and bag & DURATION_WORDS):
        return "tenure"
    if bag & JOINED_WORDS:
        return None  # an enrolment month: a time of year, not how long
    if bag & INCOME_WORDS:
        return "income"
    if bag & FREQUENCY_WORDS or (bag & NUMBER_WORDS and bag & PURCHASE_WORDS):
        return "frequency"
    if bag & SPEND_WORDS:
        return "spend"
    if bag & PURCHASE_WORDS:
        return "spend" if is_count is False else "frequency"
    return None


# Axes whose fields add up to one business quantity (total spend, total purchases); the
# others (age, recency) are averaged, since adding two ages means nothing.
ADDITIVE_AXES = frozenset({"income", "spend", "frequency"})
AXIS_LABELS = {"income": "Total income", "spend": "Total spend", "frequency": "Total purchases"}


def axis_fields(axes: Mapping[str, str]) -> dict[str, list[str]]:
    """The fields that make up each business axis, from a field -> axis mapping.

    Purchase counts and visit counts both read as frequency, but adding web visits to
    purchases would count browsing as buying: when a frequency field names purchases, orders
    or transactions, frequency is made of those alone.

    Examples
    --------
    >>> axis_fields({"MntWines": "spend", "MntFruits": "spend", "NumWebPurchases": "frequency",
    ...              "NumWebVisitsMonth": "frequency"})
    {'spend': ['MntWines', 'MntFruits'], 'frequency': ['NumWebPurchases']}
    """
    grouped: dict[str, list[str]] = {}
    for field, axis in axes.items():
        grouped.setdefault(axis, []).append(field)
    frequency = grouped.get("frequency", [])
    counts = [f for f in frequency if set(name_words(f)) & (PURCHASE_WORDS | {"trx"})]
    if counts:
        grouped["frequency"] = counts
    return grouped


def joined(field: str) -> bool:
    """Whether a field says when someone became a customer (an enrolment year, a signup or
    customer-since date): the later, the newer the customer. Days since signup count the
    other way, as tenure does."""
    bag = set(name_words(field))
    # days since signup count forward; an enrolment month or day is a time of year
    if bag & DURATION_WORDS or (bag & CALENDAR_PARTS and not bag & {"year", "date", "dt"}):
        return False
    since = "since" in bag and bool(bag & {"customer", "member", "client"})
    return since or bool(bag & JOINED_WORDS) or bool({"dt", "date"} & bag and "customer" in bag)


def is_money(field: str) -> bool:
    """Income or spend by its name: such fields get the log transform at a lower skew."""
    return axis_of(field, is_count=False) in ("income", "spend")


class FieldRole(StrEnum):
    """How a field takes part in the segmentation."""

    #: identifies the customer (or a row, an account); never a feature
    ID = "id"
    #: a number; imputed with the median, log-transformed when skewed, standardized
    NUMERIC = "numeric"
    #: true/false or 0/1; imputed with the most frequent value
    BOOLEAN = "boolean"
    #: a few distinct text values; one-hot encoded with rare levels grouped
    CATEGORICAL = "categorical"
    #: calendar dates; used as days before the latest date in the data
    DATE = "date"
    #: what happened to the customer (churned, responded); reported per segment, never a
    #: feature
    OUTCOME = "outcome"
    #: not used; `FieldSpec.reason` says why
    IGNORED = "ignored"


@dataclass(frozen=True)
class FieldSpec:
    """One field's role and how its values are read (the same way for new customers).

    `number_format` reads text as numbers (see `values.read_numbers`), `placeholders` are
    numeric codes read as missing (text placeholders such as 'NULL' always are), `aliases`
    map case and whitespace variants of a level to its spelling. An outcome counts its
    `positive` level (None: its mean) and `meaning` says whether it is a loss or a gain.
    `notes` say how the values were read, for the data-quality report.
    """

    name: str
    role: FieldRole
    reason: str = ""
    date_format: str | None = None
    number_format: str | None = None
    placeholders: tuple[float, ...] = ()
    aliases: tuple[tuple[str, str], ...] = ()
    positive: str | None = None
    meaning: str | None = None
    notes: tuple[str, ...] = ()

    @property
    def is_feature(self) -> bool:
        return self.role not in (FieldRole.ID, FieldRole.IGNORED, FieldRole.OUTCOME)

    @property
    def reads_numbers(self) -> bool:
        """Whether the field's values are read as numbers (its text included)."""
        return self.role in (FieldRole.NUMERIC, FieldRole.BOOLEAN) or (
            self.role is FieldRole.OUTCOME and self.number_format is not None
        )


@dataclass(frozen=True)
class Schema:
    """Every field's role, in input order; `features` in a canonical order (by name), so
    that the order of the columns never changes a result."""

    fields: tuple[FieldSpec, ...]
    id_field: str | None

    @property
    def features(self) -> tuple[FieldSpec, ...]:
        return tuple(sorted((f for f in self.fields if f.is_feature), key=lambda f: f.name))

    @property
    def outcomes(self) -> tuple[FieldSpec, ...]:
        return tuple(f for f in self.fields if f.role is FieldRole.OUTCOME)

    @property
    def ignored(self) -> tuple[FieldSpec, ...]:
        return tuple(f for f in self.fields if f.role is FieldRole.IGNORED)

    def role(self, name: str) -> FieldRole:
        return next(f.role for f in self.fields if f.name == name)

    def spec(self, name: str) -> FieldSpec:
        return next(f for f in self.fields if f.name == name)


def parse_dates(values: pd.Series, date_format: str) -> pd.Series:
    """Text to naive UTC timestamps with one explicit format; unparseable values become NaT."""
    if date_format == ISO_8601:
        stamps = pd.to_datetime(values, format=ISO_8601, errors="coerce", utc=True)
        return stamps.dt.tz_localize(None)
    return pd.to_datetime(values, format=date_format, errors="coerce")


def detect_date_format(text: pd.Series) -> str | None:
    # distinct values only: a million customers share a few thousand dates at most
    return _date_format_of(pd.Series(text.dropna().unique()))


def _date_format_of(present: pd.Series) -> str | None:
    """The date format of all these distinct present values, if they are dates."""
    # a date has digits and a separator or eight digits; "2013" alone is a number, not a date
    if present.empty or not present.str.match(r"^\d{8}$|^\d{1,4}[-/.]\d").all():
        return None
    probe = present.iloc[: min(len(present), 200)]
    for date_format in DATE_FORMATS:
        if parse_dates(probe, date_format).notna().all() and (
            parse_dates(present, date_format).notna().all()
        ):
            return date_format
    return None


# --- reading each field's values --------------------------------------------------------------

# a field at least this empty (placeholders included) cannot steer segments: left out
ALMOST_EMPTY_SHARE = 0.9
# whole numbers all different: an identifier when this many customers would have repeated a
# measured quantity (expected coincidences under an even spread over their range) ...
ID_COINCIDENCES = 5.0
# ... or when they are this long (client and card numbers)
ID_DIGITS = 8
MIN_ID_CUSTOMERS = 20
MIN_NAMED_ID_CUSTOMERS = 10
ID_NAME_ENDINGS = ("id", "ids", "key", "uuid", "guid", "number", "num", "no", "nr")
ID_NAME_WORDS = frozenset({"id", "key", "uuid", "guid", "number", "num", "no", "nr", "code"})
GENERIC_NAME = re.compile(r"^column_\d+$")
# words that name an event which ends a customer relationship: a field of the date or year it
# happened, set for some customers only, is an outcome (the share of customers with one)
EVENT_STEMS = ("cancel", "churn", "attrit", "exit", "terminat", "closure", "closed", "lapse")
EVENT_SHARE = 0.05


def id_like_name(field: str) -> bool:
    """`CustomerId`, `RowNumber`, `CLIENTNUM`, `Loyalty Number`, `account_no`."""
    words = name_words(field.strip())
    normalized = re.sub(r"[^a-z0-9]", "", field.lower())
    return bool(words) and (words[-1] in ID_NAME_WORDS or normalized.endswith(ID_NAME_ENDINGS))


def _constant(name: str, levels: int, notes: Sequence[str] = ()) -> FieldSpec:
    reason = "no value for any customer" if levels == 0 else "the same value for every customer"
    return FieldSpec(name, FieldRole.IGNORED, reason, notes=tuple(notes))


def _identifier(name: str, values: np.ndarray) -> str | None:
    """Why whole numbers, all different, identify customers rather than measure them."""
    n = len(values)
    if n < MIN_NAMED_ID_CUSTOMERS or np.isnan(values).any() or (values % 1 != 0).any():
        return None
    if not pd.Index(values).is_unique:
        return None
    low, high = float(values.min()), float(values.max())
    span = high - low + 1
    if id_like_name(name):
        return "an identifier: a different whole number for every customer, named as an id"
    if n < MIN_ID_CUSTOMERS:
        return None
    if span == n:
        return f"row numbers: every whole number from {low:.0f} to {high:.0f} once"
    if n * n / (2 * span) >= ID_COINCIDENCES:
        return (
            f"an identifier: {n:,} different whole numbers where a measured quantity would "
            "repeat values"
        )
    if low >= 10 ** (ID_DIGITS - 1) and len(f"{low:.0f}") == len(f"{high:.0f}"):
        return f"an identifier: {n:,} different {len(f'{low:.0f}')}-digit numbers"
    return None


def _numeric_spec(
    name: str,
    values: np.ndarray,
    *,
    is_boolean: bool = False,
    number_format: str | None = None,
    notes: Sequence[str] = (),
) -> tuple[FieldSpec, np.ndarray]:
    """A field of numbers: its id, placeholder, constant and boolean tests, and its values
    with placeholders as NaN."""
    reason = _identifier(name, values)
    if reason is not None:
        return FieldSpec(name, FieldRole.ID, reason, notes=tuple(notes)), values
    codes = (
        {}
        if is_boolean or number_format == YES_NO
        else numeric_placeholders(values, not _zero_can_be_a_placeholder(name, values))
    )
    cleaned = values_without(values, codes)
    notes = [
        *notes,
        *(f"{code:g} in {format_count(count, 'customer')} read as missing (a placeholder: it "
          "stands apart from every other value)" for code, count in codes.items()),
    ]  # fmt: skip
    present = cleaned[~np.isnan(cleaned)]
    if not len(present) or present.min() == present.max():
        return _constant(name, min(len(present), 1), notes), cleaned
    common = dict(number_format=number_format, placeholders=tuple(codes), notes=tuple(notes))
    if is_boolean or bool(np.isin(present, (0.0, 1.0)).all()):
        return FieldSpec(name, FieldRole.BOOLEAN, **common), cleaned  # type: ignore[arg-type]
    code = _number_code(name, present) if number_format is None else None
    if code is not None:
        spec = FieldSpec(name, code[0], code[1], placeholders=tuple(codes), notes=tuple(notes))
        return spec, cleaned
    return FieldSpec(name, FieldRole.NUMERIC, **common), cleaned  # type: ignore[arg-type]


def _number_code(name: str, present: np.ndarray) -> tuple[FieldRole, str] | None:
    """The role and reason of whole numbers that are codes rather than quantities: two small
    numbers only (1 and 2 are two kinds, not an amount), or values in a field named as a
    kind of thing (Region 1, 2, 3; a travel agent's number): categories, or ignored as a
    code when they are too many to be categories."""
    if (present % 1 != 0).any():
        return None
    levels = len(pd.unique(present))
    if levels == 2 and len(present) >= MIN_ID_CUSTOMERS and present.max() <= SMALL_CODE:
        return FieldRole.CATEGORICAL, "two small whole numbers only: categories coded as numbers"
    words = set(name_words(name.strip()))
    if not words & CODE_WORDS or words & ORDINAL_WORDS:
        return None
    if levels <= MAX_CATEGORY_LEVELS:
        return FieldRole.CATEGORICAL, (
            f"{levels} whole numbers in a field named as a kind of thing: categories"
        )
    return FieldRole.IGNORED, f"a code ({levels} different numbers), not a quantity"


def _zero_can_be_a_placeholder(name: str, values: np.ndarray) -> bool:
    """Whether a 0 in this field may stand for "unknown": in a year, an age, an income, a
    price, or among values that are all years. In an amount or a count (spend, a balance,
    past claims, purchases) 0 means none, a real value."""
    words = set(name_words(name.strip()))
    if words & ZERO_PLACEHOLDER_WORDS or axis_of(name, None) in ("income", "age"):
        return True
    others = values[(values != 0) & ~np.isnan(values)]
    return bool(len(others)) and bool(((others >= 1900) & (others <= 2100)).all())


def _aliases(levels: pd.Series, counts: np.ndarray) -> tuple[tuple[str, str], ...]:
    """Spellings of one level that differ only in case ('yes', 'YES' beside 'Yes'), each
    mapped to the most frequent one."""
    groups: dict[str, list[tuple[int, str]]] = {}
    for level, count in zip(levels.map(str), counts.tolist(), strict=True):
        groups.setdefault(level.casefold(), []).append((-int(count), level))
    aliases = []
    for spellings in groups.values():
        if len(spellings) > 1:
            canonical = min(spellings)[1]
            aliases += [(other, canonical) for _, other in sorted(spellings) if other != canonical]
    return tuple(sorted(aliases))


def apply_aliases(text: pd.Series, aliases: Sequence[tuple[str, str]]) -> pd.Series:
    return text.replace(dict(aliases)) if aliases else text


def _text_spec(name: str, read: TextValues, n_customers: int, notes: list[str]) -> FieldSpec:
    """The role of a text field (stripped, placeholders as missing) that holds no dates,
    numbers or yes/no: a category, an identifier, or free text (ignored)."""
    aliases = _aliases(read.levels, read.counts)
    distinct = apply_aliases(read.levels, aliases).unique()
    levels, n_present = len(distinct), read.present
    if levels <= 1:
        return _constant(name, levels, notes)
    if levels == n_present and n_present >= 10:
        tokens = not any(" " in str(v) for v in distinct[:1000])
        if tokens or id_like_name(name):
            return FieldSpec(
                name, FieldRole.ID, "an identifier: a different code for every customer",
                notes=tuple(notes),
            )  # fmt: skip
        return FieldSpec(name, FieldRole.IGNORED, "a different text for every customer (free text)")
    if levels > MAX_CATEGORY_LEVELS or (n_customers >= 40 and levels > n_customers / 2):
        return FieldSpec(
            name, FieldRole.IGNORED, f"free text or a code ({levels} distinct values)",
            notes=tuple(notes),
        )  # fmt: skip
    if aliases:
        merged = format_count(len(aliases), "spelling")
        notes = [*notes, f"{merged} that differ from a level only in case read as that level"]
    return FieldSpec(name, FieldRole.CATEGORICAL, aliases=aliases, notes=tuple(notes))


def _yes_spelling(read: TextValues) -> str:
    """The yes as the file spells it most ("Yes", "TRUE"): what an outcome's rate counts."""
    yes = read.levels.str.casefold().isin(YES_WORDS).to_numpy()
    if not yes.any():
        return "yes"
    return str(read.levels[yes].iloc[int(np.argmax(read.counts[yes]))])


def _text_field(
    name: str, read: TextValues, n_customers: int, decimal_hint: str | None
) -> tuple[FieldSpec, np.ndarray | pd.Series]:
    """A text field read as dates, numbers (plain, formatted, or bands), yes/no, or text.
    Every test looks at the field's distinct texts; the values per customer are built once."""
    notes = read.notes
    if read.levels.empty:
        return _constant(name, 0, notes), read.values
    date_format = _date_format_of(read.levels) if len(read.levels) > 1 else None
    if date_format is not None:
        spec = FieldSpec(name, FieldRole.DATE, date_format=date_format, notes=tuple(notes))
        return spec, read.values
    reading = number_reading(read, decimal_hint) or band_reading(read, decimal_hint)
    if reading is not None:
        return _numeric_spec(
            name, read.per_customer(reading.level_values), number_format=reading.number_format,
            notes=[*notes, *reading.notes],
        )  # fmt: skip
    yes_no = yes_no_reading(read)
    if yes_no is not None:
        spec, values = _numeric_spec(
            name, read.per_customer(yes_no.level_values), is_boolean=True, number_format=YES_NO,
            notes=notes,
        )  # fmt: skip
        return replace(spec, positive=_yes_spelling(read)), values
    spec = _text_spec(name, read, n_customers, notes)
    return spec, apply_aliases(read.values, spec.aliases)


def _value_field(
    name: str, column: pd.Series, customers: IngestedCustomers, read: TextValues | None,
    decimal_hint: str | None,
) -> tuple[FieldSpec, np.ndarray | pd.Series]:  # fmt: skip
    """A field's role from its values, and its values as read (numbers as float64 with
    placeholders as NaN, text stripped with placeholders as None); `read` is a text
    field's values (None for numbers)."""
    if read is None:
        numbers = column.to_numpy(dtype=float, na_value=np.nan)
        return _numeric_spec(name, numbers, is_boolean=name in customers.boolean_fields)
    return _text_field(name, read, len(customers.frame), decimal_hint)


def _decimal_hint(texts: Mapping[str, TextValues]) -> str | None:
    """A comma when some text field of these customers shows decimal commas ("29,85"): a
    "1,234" elsewhere in the same export is then read as 1.234 too."""
    return "," if any(decimal_comma_evident(read) for read in texts.values()) else None


def _levels(values: np.ndarray | pd.Series) -> dict[str, int]:
    """Customers per distinct value, as text ("2" for 2.0)."""
    counts = pd.Series(values).dropna().value_counts()
    return {(f"{k:g}" if isinstance(k, float) else str(k)): int(v) for k, v in counts.items()}


def _outcome_of(
    spec: FieldSpec, values: np.ndarray | pd.Series, word: str | None, explicit: bool
) -> FieldSpec | None:
    """The field as an outcome (its positive level for a rate, None for a mean), or None
    when its shape is not an outcome's; named by the caller, that is an error."""
    usable = spec.role in (FieldRole.BOOLEAN, FieldRole.NUMERIC, FieldRole.CATEGORICAL)
    levels = _levels(values) if usable else {}
    if len(levels) == 2:
        if spec.role is FieldRole.BOOLEAN:
            positive = spec.positive or "1"
        else:
            positive = positive_level(levels, word)
        return replace(spec, role=FieldRole.OUTCOME, positive=positive)
    if spec.role is FieldRole.NUMERIC and (explicit or word in NUMERIC_OUTCOME_WORDS):
        return replace(spec, role=FieldRole.OUTCOME, positive=None)
    if explicit:
        why = spec.reason or f"{spec.role.value}, {len(levels)} levels"
        raise InvalidInputError(
            Problem(
                f"cannot be an outcome ({why}): an outcome has two levels (a rate) or holds "
                "numbers (a mean)",
                field=spec.name,
            )
        )
    return None


def _find_outcomes(
    specs: dict[str, FieldSpec],
    values: Mapping[str, np.ndarray | pd.Series],
    named_outcomes: Sequence[str],
    named_features: set[str],
) -> None:
    """Turn the outcome fields into outcomes: those the caller named, those whose name and
    shape say so, and the last column of a file without a header row (its usual place)."""
    for name in named_outcomes:
        if specs[name].role is FieldRole.IGNORED and name not in values:
            continue  # excluded: exclude wins
        found = _outcome_of(specs[name], values.get(name, pd.Series(dtype=object)), None, True)
        assert found is not None
        words = [w.lower() for w in name_words(name.strip())]
        specs[name] = replace(
            found, reason="named as an outcome: reported per segment, never a feature",
            meaning=outcome_meaning(words),
        )  # fmt: skip
    for name, spec in specs.items():
        if name in named_features or name in named_outcomes or name not in values:
            continue
        found = _outcome_by_name(name, spec, values[name])
        if found is not None:
            specs[name] = found
    _last_column_outcome(specs, values, named_outcomes, named_features)


def _outcome_by_name(
    name: str, spec: FieldSpec, values: np.ndarray | pd.Series
) -> FieldSpec | None:
    """The field as an outcome when its name and shape say so: a two-level field named for
    one (Churn, Exited, y), or a field named for an event (a cancellation year, a churn date)
    that has a value only for the customers it happened to."""
    words = [w.lower() for w in name_words(name.strip())]
    found_word = outcome_word(words)
    if found_word is not None:
        outcome = _outcome_of(spec, values, found_word[0], explicit=False)
        if outcome is not None:
            return replace(
                outcome, meaning=found_word[1],
                reason=f"an outcome ('{found_word[0]}' in its name): reported per segment, "
                "never a feature",
            )  # fmt: skip
    event = next((w for w in words for stem in EVENT_STEMS if w.startswith(stem)), None)
    if event is None or spec.role not in (FieldRole.NUMERIC, FieldRole.DATE):
        return None
    present = float(1 - pd.isna(values).mean()) if len(values) else 0.0
    if not EVENT_SHARE <= present <= 1 - EVENT_SHARE:
        return None
    return replace(
        spec, role=FieldRole.OUTCOME, positive=PRESENT, meaning="loss",
        reason=f"an outcome: a {event} recorded for {present:.0%} of customers only (reported "
        "per segment as the share with one, never a feature)",
    )  # fmt: skip


def _last_column_outcome(
    specs: dict[str, FieldSpec],
    values: Mapping[str, np.ndarray | pd.Series],
    named_outcomes: Sequence[str],
    named_features: set[str],
) -> None:
    """The last column of a file without a header row, with two levels: its outcome, where
    such files put it (and no name says otherwise)."""
    names = list(specs)
    if not names or not all(GENERIC_NAME.match(n) for n in names) or named_outcomes:
        return
    last = names[-1]
    spec = specs[last]
    if last in values and last not in named_features and spec.role is not FieldRole.OUTCOME:
        outcome = _outcome_of(spec, values[last], None, explicit=False)
        if outcome is not None and outcome.positive is not None:
            specs[last] = replace(
                outcome, reason="an outcome: the last column of a file without a header "
                "row, with two levels (where such files put it)",
            )  # fmt: skip


def _as_outcome_values(spec: FieldSpec, values: np.ndarray | pd.Series) -> np.ndarray:
    numbers = values if isinstance(values, np.ndarray) else None
    text = values if isinstance(values, pd.Series) else pd.Series(dtype=object)
    return outcome_values(text, spec.positive, numbers)


def _leak_values(spec: FieldSpec, values: np.ndarray | pd.Series) -> np.ndarray | pd.Series:
    if spec.role is FieldRole.DATE and isinstance(values, pd.Series):
        assert spec.date_format is not None
        stamps = parse_dates(values, spec.date_format)
        return (stamps - pd.Timestamp("1970-01-01")).dt.days.to_numpy(dtype=float, na_value=np.nan)
    return values


def _find_leaks(
    specs: dict[str, FieldSpec],
    values: Mapping[str, np.ndarray | pd.Series],
    named_features: set[str],
    random_state: int,
) -> None:
    """Leave out the fields that restate an outcome: on their own they predict it almost
    perfectly (a classifier's score of it, a status set when it happened)."""
    outcomes = [(s, _as_outcome_values(s, values[s.name])) for s in specs.values()
                if s.role is FieldRole.OUTCOME and s.name in values]  # fmt: skip
    if not outcomes:
        return
    for name, spec in list(specs.items()):
        if not spec.is_feature or name in named_features:
            continue
        feature = _leak_values(spec, values[name])
        for outcome, target in outcomes:
            strength = leak_strength(feature, target, random_state)
            if strength is not None and strength >= LEAK_AUC:
                measure = "AUC" if outcome.positive is not None else "rank correlation"
                specs[name] = replace(
                    spec, role=FieldRole.IGNORED,
                    reason=f"restates the outcome {outcome.name!r}: on its own it predicts it "
                    f"almost perfectly ({measure} {strength:.3f}), so it is left out",
                )  # fmt: skip
                break


def _drop_almost_empty(
    specs: dict[str, FieldSpec],
    values: Mapping[str, np.ndarray | pd.Series],
    texts: Mapping[str, TextValues],
    named_features: set[str],
) -> None:
    """Leave out the features with hardly any value (placeholders included): imputed, they
    would mostly say where values are missing."""
    for name, spec in list(specs.items()):
        if not spec.is_feature or name in named_features:
            continue
        read = values[name]
        # numbers read as NaN where missing; text missing where its code says (no string scan)
        missing = float(
            np.isnan(read).mean()
            if isinstance(read, np.ndarray)
            else (texts[name].codes < 0).mean()
        )
        if missing > ALMOST_EMPTY_SHARE:
            specs[name] = replace(
                spec, role=FieldRole.IGNORED,
                reason=f"almost empty: {missing:.0%} of customers have no value",
            )  # fmt: skip


def _check_names(
    fields: Sequence[str],
    features: Sequence[str] | None,
    exclude: Sequence[str],
    outcomes: Sequence[str],
) -> None:
    """Every field the options name exists; none is both a feature and an outcome."""
    known = set(fields)
    shown = ", ".join(repr(c) for c in list(fields)[:30])
    problems = [
        Problem(f"names unknown field {name!r}; the customers have: {shown}", field=option)
        for option, names in (("features", features or []), ("exclude", exclude),
                              ("outcomes", outcomes))
        for name in names
        if name not in known
    ]  # fmt: skip
    problems += [
        Problem(f"{name!r} is named in features too; a field is a feature or an outcome",
                field="outcomes")
        for name in outcomes if name in (features or ())
    ]  # fmt: skip
    if problems:
        raise InvalidInputError(problems)


def _check_named_features(specs: Mapping[str, FieldSpec], named: Sequence[str]) -> None:
    """A field named in `features` is used, or the request fails saying why it cannot be."""
    problems = [
        Problem(f"cannot be a feature: {specs[name].reason}", field=name)
        for name in named
        if name in specs and not specs[name].is_feature
    ]
    if problems:
        raise InvalidInputError(problems)


def infer_schema(
    customers: IngestedCustomers,
    *,
    features: Sequence[str] | None = None,
    exclude: Sequence[str] = (),
    outcomes: Sequence[str] = (),
    random_state: int = 0,
) -> Schema:
    """Decide each field's role, and how its values are read, from its name and values.

    `features` (if given) is the complete list of fields to use, `exclude` removes fields,
    `outcomes` names outcome fields (others are recognised by name and shape); naming a
    field the customers do not have raises `InvalidInputError`, and so does naming a
    feature that cannot be one (with the reason).
    """
    frame = customers.frame
    _check_names([*frame.columns, *customers.nested_fields], features, exclude, outcomes)
    # features then exclude: a field named in both is excluded
    named = set(features or ()) - set(exclude)
    candidates = [n for n in frame.columns if n not in exclude and n != customers.id_field]
    # each text field read once: its distinct texts serve every test below
    texts = {
        name: text_values(frame[name])
        for name in candidates
        if not pd.api.types.is_numeric_dtype(frame[name].dtype)
    }
    decimal_hint = _decimal_hint(texts)
    specs: dict[str, FieldSpec] = {}
    values: dict[str, np.ndarray | pd.Series] = {}
    for name in frame.columns:
        if name == customers.id_field:
            specs[name] = FieldSpec(name, FieldRole.ID, "the customer id")
        elif name in exclude:
            specs[name] = FieldSpec(name, FieldRole.IGNORED, "excluded by the options")
        else:
            specs[name], values[name] = _value_field(
                name, frame[name], customers, texts.get(name), decimal_hint
            )
    _find_outcomes(specs, values, outcomes, named)
    if features:
        for name, spec in list(specs.items()):
            if spec.is_feature and name not in named:
                specs[name] = replace(spec, role=FieldRole.IGNORED, reason="not named in features")
    _find_leaks(specs, values, named, random_state)
    _drop_almost_empty(specs, values, texts, named)
    _check_named_features(specs, sorted(named))
    nested = [
        FieldSpec(name, FieldRole.IGNORED, "holds objects or lists, which cannot be compared")
        for name in customers.nested_fields
    ]
    _check_named_features({s.name: s for s in nested}, sorted(named))
    return Schema(fields=(*specs.values(), *nested), id_field=customers.id_field)


# --- reading customers the way their schema says ----------------------------------------------


def read_field(column: pd.Series, spec: FieldSpec) -> np.ndarray | pd.Series:
    """One field's values read as its spec says: numbers (float64, placeholders NaN), an
    outcome's rate flags or numbers, or text (stripped, placeholders None, aliases merged)."""
    if spec.role in (FieldRole.ID, FieldRole.IGNORED):
        return column
    numeric_dtype = pd.api.types.is_numeric_dtype(column.dtype)
    if numeric_dtype and spec.role in (FieldRole.CATEGORICAL, FieldRole.DATE):
        # a level sent as a number: read as its text where it is encoded; a code such as
        # 999 for "unknown" among the levels is no level
        if not spec.placeholders:
            return column
        codes_read = values_without(read_numbers(column, None), spec.placeholders)
        return pd.Series(codes_read, index=column.index)
    plain = spec.role in (FieldRole.NUMERIC, FieldRole.BOOLEAN) and not spec.placeholders
    if numeric_dtype and plain and column.dtype == np.float64:
        return column  # numbers as ingest gives them: nothing to read
    text = None if numeric_dtype else apply_aliases(text_values(column).values, spec.aliases)
    numbers: np.ndarray | None = None
    if spec.reads_numbers or (spec.role is FieldRole.OUTCOME and numeric_dtype):
        source = column if text is None else text
        numbers = values_without(read_numbers(source, spec.number_format), spec.placeholders)
    if spec.role is FieldRole.OUTCOME:
        return outcome_values(pd.Series(dtype=object) if text is None else text, spec.positive,
                              numbers)  # fmt: skip
    if numbers is not None:
        return numbers
    assert text is not None
    return text


def clean(frame: pd.DataFrame, schema: Schema) -> pd.DataFrame:
    """The customers with every feature and outcome read as the schema says (see
    `read_field`); ids, ignored and unknown fields as they were. The input is not changed."""
    specs = {spec.name: spec for spec in schema.fields}
    columns = {
        name: read_field(frame[name], specs[name]) if name in specs else frame[name]
        for name in frame.columns
    }
    return pd.DataFrame(columns, index=frame.index)
