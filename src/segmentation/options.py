"""The options of an analysis, declared once: names, types, ranges, defaults, descriptions.

`OPTIONS` is the single declaration. `AnalysisOptions` validates values against it (in the
library's names: `n_clusters=31 should be between 2 and 30`); `AnalysisOptions.from_wire` reads
the request's camelCase object (`options.nClusters`) with the same checks and the wire's
names in its messages; the wire schema (`api/schemas.py`) and the CLI flags (`cli.py`) are
generated from the same declaration, so the three cannot disagree.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, Literal

from segmentation.errors import InvalidInputError, Problem
from segmentation.pipeline.ingest import DUPLICATE_IDS, describe
from segmentation.storage.database import ID_PATTERN

__all__ = [
    "ALGORITHMS",
    "DEFAULT_K_RANGE",
    "MAX_K",
    "OPTIONS",
    "AnalysisOptions",
    "OptionSpec",
    "on_the_wire",
]

ALGORITHMS = ("auto", "kmeans", "hierarchical", "dbscan")
DEFAULT_K_RANGE = (2, 10)
MAX_K = 30
MAX_RANDOM_STATE = 2**32 - 1

Kind = Literal["choice", "int", "float", "int_pair", "names", "bool", "id"]


@dataclass(frozen=True)
class OptionSpec:
    """One option: its names, its kind of value, its bounds and what it means.

    `nullable` options accept None (the wire's null) as "not given". `analysis` is False for
    options that shape the response only, not the segments.
    """

    name: str
    wire: str
    kind: Kind
    default: Any
    description: str
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False
    choices: tuple[str, ...] = ()
    nullable: bool = False
    min_items: int = 0
    cli: str | None = None
    analysis: bool = True


OPTIONS: tuple[OptionSpec, ...] = (
    OptionSpec(
        "algorithm", "algorithm", "choice", "auto",
        "'auto' tries k-means, Ward hierarchical and DBSCAN and keeps the best by the "
        "documented rule; or one of them.",
        choices=ALGORITHMS, cli="--algorithm",
    ),
    OptionSpec(
        "n_clusters", "nClusters", "int", None, "A fixed number of segments.",
        minimum=2, maximum=MAX_K, nullable=True, cli="--k",
    ),
    OptionSpec(
        "k_range", "kRange", "int_pair", None,
        f"[min, max] numbers of segments to try; default {list(DEFAULT_K_RANGE)}.",
        minimum=2, maximum=MAX_K, nullable=True, cli="--k-range",
    ),
    OptionSpec(
        "features", "features", "names", None,
        "Only these fields are used (default: every usable one).",
        nullable=True, min_items=1, cli="--features",
    ),
    OptionSpec("exclude", "exclude", "names", (), "Fields not to use.", cli="--exclude"),
    OptionSpec(
        "outcomes", "outcomes", "names", (),
        "Outcome fields (churn, response): reported per segment as a rate or a mean, never "
        "used to segment. Fields named like one (Churn, Exited, y) with two levels are found "
        "without it.",
        cli="--outcome",
    ),
    OptionSpec(
        "duplicate_ids", "duplicateIds", "choice", "refuse",
        "Customers whose id repeats: 'refuse' them (the error says how many and how the "
        "rows differ), or keep the 'first' or 'last' row of each id.",
        choices=DUPLICATE_IDS, cli="--duplicate-ids",
    ),
    OptionSpec(
        "header", "header", "bool", None,
        "Files only: whether the first row names the fields (default: detected; a first row "
        "that looks like data gets generic names column_1, column_2, ...).",
        nullable=True,
    ),
    OptionSpec(
        "random_state", "randomState", "int", 0,
        "Seed: the same input and seed give the same response.",
        minimum=0, maximum=MAX_RANDOM_STATE, cli="--random-state",
    ),
    OptionSpec(
        "eps", "eps", "float", None, "DBSCAN radius (scaled units); default from the data.",
        minimum=0, exclusive_minimum=True, nullable=True, cli="--eps",
    ),
    OptionSpec(
        "min_samples", "minSamples", "int", None,
        "DBSCAN density; default 2 x dimensions (at least 5).",
        minimum=2, nullable=True, cli="--min-samples",
    ),
    OptionSpec(
        "include_customers", "includeCustomers", "bool", True,
        "false leaves clusters[].customers empty, to save bandwidth.", analysis=False,
    ),
    OptionSpec(
        "include_customer_scores", "includeCustomerScores", "bool", False,
        "true adds customerScores: per customer its segment, confidence, ambiguous.",
        analysis=False,
    ),
    OptionSpec(
        "previous_analysis_id", "previousAnalysisId", "id", None,
        "A stored analysis of the same customer base (last month's): its segments keep "
        "their ids and names where they persist, and the response's lineage reports "
        "migration and drift.",
        nullable=True,
    ),
)  # fmt: skip
BY_NAME = {spec.name: spec for spec in OPTIONS}
BY_WIRE = {spec.wire: spec for spec in OPTIONS}


def _kind_problem(spec: OptionSpec, value: Any) -> str | None:
    """Why `value` is not of the option's kind, or None. Strict: true is not 1, 2.0 is not 2,
    "5" is not 5."""
    if value is None:
        return None if spec.nullable else "must not be null"
    if spec.kind == "bool":
        return None if isinstance(value, bool) else "should be true or false"
    if spec.kind == "choice":
        return None if isinstance(value, str) else "should be a string"
    if spec.kind == "int":
        return None if isinstance(value, int) and not isinstance(value, bool) else (
            "should be an integer"
        )  # fmt: skip
    if spec.kind == "float":
        if isinstance(value, bool) or not isinstance(value, int | float):
            return "should be a number"
        return None if math.isfinite(value) else "should be a finite number"
    if spec.kind == "int_pair":
        ok = (
            isinstance(value, list | tuple)
            and len(value) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
        )
        return None if ok else "should be a list of two integers [min, max]"
    if spec.kind == "id":
        if not isinstance(value, str):
            return "should be an analysis id (a string)"
        return None if ID_PATTERN.fullmatch(value) else (
            "should be an analysis id: 22 characters of A-Z a-z 0-9 _ -"
        )  # fmt: skip
    ok = isinstance(value, list | tuple) and all(isinstance(v, str) for v in value)
    if not ok:
        return "should be a list of field names"
    if len(value) < spec.min_items:
        return f"should name at least {spec.min_items} field"
    return None


def _range_problem(spec: OptionSpec, label: str, value: Any) -> str | None:
    """Why `value` lies outside the option's bounds (the message carries the value), or None."""
    if value is None or spec.kind not in ("int", "float", "int_pair"):
        return None
    low, high = spec.minimum, spec.maximum
    shown = list(value) if spec.kind == "int_pair" else value
    values = list(value) if spec.kind == "int_pair" else [value]
    if spec.kind == "int_pair" and values[0] > values[1]:
        return f"{label}={shown} should satisfy min <= max"
    for v in values:
        below = low is not None and (v <= low if spec.exclusive_minimum else v < low)
        if below or (high is not None and v > high):
            if high is None:
                relation = ">" if spec.exclusive_minimum else ">="
                return f"{label}={shown} should be {relation} {_bound(low)}"
            return f"{label}={shown} should be between {_bound(low)} and {_bound(high)}"
    return None


def _bound(value: float | None) -> str:
    return str(int(value)) if value is not None and float(value).is_integer() else f"{value:g}"


def _problems(values: Mapping[str, Any], wire: bool, root: str) -> list[Problem]:
    problems = []
    for spec in OPTIONS:
        value = values.get(spec.name, spec.default)
        label = spec.wire if wire else spec.name
        where = f"{root}.{spec.wire}" if wire else spec.name
        why = _kind_problem(spec, value)
        if why is None and spec.kind == "choice" and value not in spec.choices:
            shown = ", ".join(repr(c) for c in spec.choices)
            why = f"{label}={value!r} is not one of {shown}"
        elif why is None:
            why = _range_problem(spec, label, value)
        elif why is not None:
            why = f"{label} {why} (got {describe(value)})"
        if why is not None:
            problems.append(Problem(why, field=where))
    if problems:
        return problems
    names = {spec.name: (spec.wire if wire else spec.name) for spec in OPTIONS}
    field_of = {n: (f"{root}.{w}" if wire else n) for n, w in names.items()}
    if values.get("n_clusters") is not None and values.get("k_range") is not None:
        problems.append(
            Problem(
                f"give {names['n_clusters']} or {names['k_range']}, not both",
                field=field_of["k_range"],
            )
        )
    if values.get("algorithm") == "dbscan" and (
        values.get("n_clusters") is not None or values.get("k_range") is not None
    ):
        problems.append(
            Problem(
                "dbscan finds the number of segments itself; drop "
                f"{names['n_clusters']}/{names['k_range']}",
                field=field_of["n_clusters"],
            )
        )
    return problems


@dataclass(frozen=True)
class AnalysisOptions:
    """How to segment; every value checked against `OPTIONS` when the object is made.

    Examples
    --------
    >>> AnalysisOptions(n_clusters=4).n_clusters
    4
    >>> AnalysisOptions(k_range=(5, 2))
    Traceback (most recent call last):
    ...
    segmentation.errors.InvalidInputError: field 'k_range': k_range=[5, 2] should satisfy min <= max
    """

    algorithm: str = "auto"
    n_clusters: int | None = None
    k_range: tuple[int, int] | None = None
    features: tuple[str, ...] | None = None
    exclude: tuple[str, ...] = ()
    outcomes: tuple[str, ...] = ()
    duplicate_ids: str = "refuse"
    header: bool | None = None
    random_state: int = 0
    eps: float | None = None
    min_samples: int | None = None
    include_customers: bool = True
    include_customer_scores: bool = False
    previous_analysis_id: str | None = None

    def __post_init__(self) -> None:
        # sequences arrive as lists from JSON and callers: stored as tuples (hashable, frozen)
        for name in ("k_range", "features", "exclude", "outcomes"):
            value = getattr(self, name)
            if isinstance(value, list):
                object.__setattr__(self, name, tuple(value))
        problems = _problems({f.name: getattr(self, f.name) for f in fields(self)}, False, "")
        if problems:
            raise InvalidInputError(problems)

    @classmethod
    def from_wire(cls, payload: Any, root: str = "options") -> AnalysisOptions:
        """The request's options object (camelCase, every key optional); problems name
        `options.<key>` and carry the value."""
        if payload is None:
            payload = {}
        if not isinstance(payload, Mapping):
            raise InvalidInputError(Problem("must be a JSON object", field=root))
        unknown = [key for key in payload if key not in BY_WIRE]
        if unknown:
            known = ", ".join(BY_WIRE)
            raise InvalidInputError(
                [Problem(f"unknown option {k!r}; the options are {known}", field=f"{root}.{k}")
                 for k in unknown]
            )  # fmt: skip
        values = {BY_WIRE[key].name: value for key, value in payload.items()}
        problems = _problems(values, True, root)
        if problems:
            raise InvalidInputError(problems)
        return cls(**values)

    def to_wire(self, analysis_only: bool = True) -> dict[str, Any]:
        """camelCase, every option (defaults filled in): the response's `options`."""
        result = {}
        for spec in OPTIONS:
            if analysis_only and not spec.analysis:
                continue
            value = getattr(self, spec.name)
            result[spec.wire] = list(value) if isinstance(value, tuple) else value
        return result

    def cache_fields(self) -> dict[str, Any]:
        """Everything that can change a response, for the cache key."""
        return self.to_wire(analysis_only=False)


def on_the_wire(error: InvalidInputError, root: str = "options") -> InvalidInputError:
    """The same problems with option names as a request spells them: a data-dependent check
    in the core (`n_clusters=8 should be <= n_customers=5`) reads `options.nClusters`."""
    problems = []
    for problem in error.problems:
        spec = BY_NAME.get(problem.field or "")
        if spec is None:
            problems.append(problem)
            continue
        message = problem.message
        for other in OPTIONS:
            message = message.replace(other.name, other.wire)
        problems.append(Problem(message, problem.record, f"{root}.{spec.wire}"))
    return type(error)(problems)


def describe_default(spec: OptionSpec) -> str:
    """The default as a reader would write it, for help texts."""
    if spec.default is None:
        return "none"
    if isinstance(spec.default, Sequence) and not isinstance(spec.default, str):
        return "[]" if not spec.default else str(list(spec.default))
    return str(spec.default).lower() if isinstance(spec.default, bool) else str(spec.default)
