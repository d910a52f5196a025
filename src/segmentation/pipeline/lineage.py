"""Segments that persist across refits: identity, transitions and drift against a previous
analysis.

Matching. When the two analyses share customers (at least MIN_SHARED_CUSTOMERS of the current
ones, by id), segments are matched by customer overlap: the Jaccard similarity of their shared
members, with the optimal one-to-one assignment (`scipy.optimize.linear_sum_assignment`); an
assigned pair is the same segment when its Jaccard is at least MATCH_JACCARD, or when at least
CONTINUATION_SHARE of the previous segment's customers are in the current one and the
previous segment is its largest source (a segment that grew by absorbing another one's
customers keeps its identity although its Jaccard fell). Otherwise (a new cohort) they are
matched by centroid distance in the previous analysis' scaled space: the new segments'
customers are encoded with the previous encoder, and a pair matches when the new centroid lies
closer to the previous one than CENTROID_MATCH_SHARE of the way to that previous centre's
nearest other centre.

Events, after MONIC (Spiliopoulou et al. 2006), from the overlap shares of shared customers:
survived (matched); split (an unmatched previous segment whose customers went, at least
SPLIT_SHARE each and MATCH_JACCARD together, to two or more current segments that are not
survivors: it broke into new pieces); merged (two or more previous segments each
sending at least MERGE_SHARE of their customers to one current segment); emerged (a current
segment that is none of these); disappeared (a previous one that is none of these).

Identity. A survived segment keeps the previous `clusterId` and name; every other current
segment gets an id never used in the lineage (the counter travels with each analysis). A
survived segment is renamed (`renamedFrom`) only when its fresh name differs and its profile
moved by at least RENAME_SHIFT standard deviations on some field.

Drift per field used in both: the shift of the mean in previous standard deviations, and the
population stability index over the previous analysis' deciles (categories: over its levels).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from segmentation.errors import InvalidInputError, Problem
from segmentation.pipeline.features import FeatureEncoder, category_codes, numeric_values
from segmentation.pipeline.models import SegmentModel
from segmentation.pipeline.schema import FieldRole, Schema

__all__ = [
    "DriftReference",
    "FieldDrift",
    "Lineage",
    "Matching",
    "NumericReference",
    "PreviousSegmentation",
    "SegmentEvent",
    "Transition",
    "drift_reference",
    "field_drift",
    "match_by_centroids",
    "match_by_customers",
    "reference_from_wire",
    "reference_to_wire",
    "shared_positions",
]

MIN_SHARED_CUSTOMERS = 0.1
MATCH_JACCARD = 0.5
CONTINUATION_SHARE = 0.6
CENTROID_MATCH_SHARE = 0.5
SPLIT_SHARE = 0.25
MERGE_SHARE = 0.5
RENAME_SHIFT = 1.0
PSI_BINS = 10
PSI_FLOOR = 1e-4


# ---------------------------------------------------------------------------- drift


@dataclass(frozen=True)
class NumericReference:
    """A numeric field's deciles (inner edges), the shares of its bins (the last one for
    missing values), mean and standard deviation."""

    edges: tuple[float, ...]
    shares: tuple[float, ...]
    mean: float
    sd: float


@dataclass(frozen=True)
class DriftReference:
    """What the next analysis compares its fields with; stored with every analysis."""

    numeric: dict[str, NumericReference] = field(default_factory=dict)
    categorical: dict[str, dict[str, float]] = field(default_factory=dict)


def reference_to_wire(reference: DriftReference) -> dict[str, Any]:
    """The reference as JSON (stored in model.json)."""
    return {
        "numeric": {name: {"edges": list(r.edges), "shares": list(r.shares), "mean": r.mean,
                           "sd": r.sd} for name, r in reference.numeric.items()},
        "categorical": reference.categorical,
    }  # fmt: skip


def reference_from_wire(state: Mapping[str, Any]) -> DriftReference:
    numeric = {
        name: NumericReference(tuple(r["edges"]), tuple(r["shares"]), r["mean"], r["sd"])
        for name, r in state.get("numeric", {}).items()
    }
    categorical = {name: dict(levels) for name, levels in state.get("categorical", {}).items()}
    return DriftReference(numeric, categorical)


def _bin_shares(values: np.ndarray, edges: Sequence[float]) -> np.ndarray:
    present = values[~np.isnan(values)]
    counts = np.bincount(np.searchsorted(np.asarray(edges), present, side="right"),
                         minlength=len(edges) + 1).astype(float)  # fmt: skip
    counts = np.append(counts, float(np.isnan(values).sum()))
    return counts / max(len(values), 1)


def _level_shares(column: pd.Series) -> dict[str, float]:
    """Each level's share, most frequent first (as `value_counts` orders them), counted on
    level codes rather than on a text per customer."""
    codes, texts = category_codes(column)
    counts = pd.Series(np.bincount(codes, minlength=len(texts)), index=texts)
    shares = counts.sort_values(ascending=False) / max(len(codes), 1)
    return {str(k): float(v) for k, v in shares.items()}


def drift_reference(frame: pd.DataFrame, schema: Schema) -> DriftReference:
    """The reference of every feature field of the customers just analysed; O(n log n)."""
    numeric, categorical = {}, {}
    for spec in schema.features:
        if spec.role is FieldRole.CATEGORICAL:
            categorical[spec.name] = _level_shares(frame[spec.name])
            continue
        values = numeric_values(frame, spec)
        present = values[~np.isnan(values)]
        if not present.size:
            continue
        quantiles = np.quantile(present, np.linspace(0, 1, PSI_BINS + 1)[1:-1])
        edges = tuple(float(e) for e in np.unique(quantiles))
        shares = tuple(float(s) for s in _bin_shares(values, edges))
        numeric[spec.name] = NumericReference(
            edges, shares, float(present.mean()), float(present.std())
        )
    return DriftReference(numeric, categorical)


def _psi(expected: Sequence[float] | np.ndarray, actual: Sequence[float] | np.ndarray) -> float:
    e = np.maximum(np.asarray(expected, dtype=float), PSI_FLOOR)
    a = np.maximum(np.asarray(actual, dtype=float), PSI_FLOOR)
    return float(((a - e) * np.log(a / e)).sum())


@dataclass(frozen=True)
class FieldDrift:
    field: str
    previous_mean: float | None
    mean: float | None
    standardized_shift: float | None
    psi: float


def field_drift(previous: DriftReference, current: DriftReference, frame: pd.DataFrame,
                schema: Schema) -> list[FieldDrift]:  # fmt: skip
    """One row per field used in both analyses, in the current schema's order."""
    rows = []
    for spec in schema.features:
        name = spec.name
        if name in previous.numeric and name in current.numeric:
            before, now = previous.numeric[name], current.numeric[name]
            shares = _bin_shares(numeric_values(frame, spec), before.edges)
            shift = (now.mean - before.mean) / before.sd if before.sd > 0 else 0.0
            rows.append(FieldDrift(name, before.mean, now.mean, shift,
                                   _psi(before.shares, shares)))  # fmt: skip
        elif name in previous.categorical and name in current.categorical:
            before_levels, now_levels = previous.categorical[name], current.categorical[name]
            levels = sorted(set(before_levels) | set(now_levels))
            psi = _psi([before_levels.get(x, 0.0) for x in levels],
                       [now_levels.get(x, 0.0) for x in levels])  # fmt: skip
            rows.append(FieldDrift(name, None, None, None, psi))
    return rows


# ---------------------------------------------------------------------------- matching


@dataclass(frozen=True)
class PreviousSegmentation:
    """What a refit needs of the previous analysis: its segments (ids, names, standardized
    profiles, sizes), its customers' ids and segment ids, its encoder, centres and drift
    reference, and the next id never used in its lineage."""

    analysis_id: str | None
    segment_ids: tuple[int, ...]
    names: dict[int, str]
    sizes: dict[int, int]
    standardized: dict[int, dict[str, float]]
    customer_ids: Sequence[object] | None
    labels: np.ndarray
    encoder: FeatureEncoder
    model: SegmentModel
    centers: np.ndarray
    reference: DriftReference
    next_id: int

    def positions_of(self, frame: pd.DataFrame) -> np.ndarray:
        """The previous model's segment position for each current customer (-1: outlier),
        fields the current customers lack imputed as at learning time."""
        return self.model.assign(self.encode(frame))

    def encode(self, frame: pd.DataFrame) -> np.ndarray:
        """Current customers in the previous analysis' scaled space."""
        absent = [e.spec.name for e in self.encoder.encodings_ if e.spec.name not in frame]
        return self.encoder.transform(frame.assign(**dict.fromkeys(absent, np.nan)))

    def check_fields(self, used: Sequence[str]) -> None:
        known = set(self.reference.numeric) | set(self.reference.categorical)
        if not known & set(used):
            raise InvalidInputError(
                Problem(
                    f"the previous analysis {self.analysis_id or ''} shares no field with these "
                    f"customers (it used {', '.join(sorted(known)) or 'none'}; these use "
                    f"{', '.join(used)}), so its segments cannot be followed",
                    field="previous_analysis_id",
                )
            )


@dataclass(frozen=True)
class SegmentEvent:
    cluster_id: int | None
    previous_cluster_id: int | None
    event: str  # survived | split | merged | emerged | disappeared
    jaccard: float | None = None
    distance: float | None = None


@dataclass(frozen=True)
class Transition:
    source: int | None
    target: int | None
    customers: int


@dataclass(frozen=True)
class Lineage:
    previous_analysis_id: str | None
    matched_by: str  # "customers" | "centroids"
    segments: tuple[SegmentEvent, ...]
    transitions: tuple[Transition, ...]
    customers_compared: int
    moved: int
    drift: tuple[FieldDrift, ...]
    renamed: dict[int, str] = field(default_factory=dict)
    next_id: int = 0
    #: the previous analysis' segment names, by id
    previous_names: dict[int, str] = field(default_factory=dict)
    #: per current customer, its previous segment id (None: new this time)
    previous_labels: tuple[int | None, ...] | None = None


@dataclass(frozen=True)
class Matching:
    """The outcome of matching: the previous id each current position survives, and the
    other events as (current position or None, previous id, event, jaccard or distance)."""

    survived: dict[int, tuple[int, float]]
    events: list[tuple[int | None, int, str, float | None]]


def _key(value: object) -> str:
    """Ids compare by value across files and JSON: 7, 7.0 and "7" are one customer."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def shared_positions(
    previous_ids: Sequence[object] | None, current_ids: Sequence[object] | None
) -> tuple[np.ndarray, np.ndarray]:
    """(previous positions, current positions) of the customers present in both."""
    empty = np.zeros(0, dtype=np.int64)
    if previous_ids is None or current_ids is None:
        return empty, empty
    where = {_key(v): i for i, v in enumerate(previous_ids)}
    pairs = [(where[k], j) for j, v in enumerate(current_ids) if (k := _key(v)) in where]
    if not pairs:
        return empty, empty
    previous, current = zip(*pairs, strict=True)
    return np.array(previous, dtype=np.int64), np.array(current, dtype=np.int64)


def match_by_customers(table: np.ndarray, previous_ids: Sequence[int]) -> Matching:
    """Jaccard matching of the shared customers (`table`: previous x current counts), then
    MONIC's split and merge events (see the module docstring)."""
    from scipy.optimize import linear_sum_assignment

    p_size, c_size = table.sum(axis=1), table.sum(axis=0)
    union = p_size[:, None] + c_size[None, :] - table
    jaccard = np.divide(table, union, out=np.zeros(table.shape), where=union > 0)
    out = np.divide(table, p_size[:, None], out=np.zeros(table.shape), where=p_size[:, None] > 0)
    # a segment that absorbed another one's customers keeps the identity of its main source
    main_source = table.argmax(axis=0)
    rows, cols = linear_sum_assignment(-jaccard)
    survived = {
        int(c): (previous_ids[int(r)], round(float(jaccard[r, c]), 4))
        for r, c in zip(rows, cols, strict=True)
        if jaccard[r, c] >= MATCH_JACCARD
        or (out[r, c] >= CONTINUATION_SHARE and main_source[c] == r)
    }
    matched = {pid for pid, _ in survived.values()}
    events: list[tuple[int | None, int, str, float | None]] = []
    merging: dict[int, list[int]] = {}
    for r, pid in enumerate(previous_ids):
        if pid in matched:
            continue
        # a split is into new pieces; customers spread over surviving segments just moved
        products = [int(c) for c in np.flatnonzero(out[r] >= SPLIT_SHARE) if c not in survived]
        if len(products) >= 2 and out[r, products].sum() >= MATCH_JACCARD:
            events += [(c, pid, "split", round(float(jaccard[r, c]), 4)) for c in products]
        elif p_size[r] and out[r].max() >= MERGE_SHARE:
            merging.setdefault(int(out[r].argmax()), []).append(r)
        else:
            events.append((None, pid, "disappeared", None))
    for target, sources in merging.items():
        # absorbed by a survivor, or two or more joined: a merge; alone, it only moved
        merged = len(sources) + int(target in survived) >= 2
        for r in sources:
            row = (target if merged else None, previous_ids[r],
                   "merged" if merged else "disappeared",
                   round(float(jaccard[r, target]), 4) if merged else None)  # fmt: skip
            events.append(row)
    return Matching(survived, events)


def match_by_centroids(
    current_centres: np.ndarray, previous_centres: np.ndarray, previous_ids: Sequence[int]
) -> Matching:
    """One-to-one matching by distance in the previous scaled space (see the docstring)."""
    from scipy.optimize import linear_sum_assignment

    # an Outliers segment has no centre (+inf or NaN): it never matches by distance
    finite = np.isfinite(previous_centres).all(axis=1)
    usable = np.where(np.isfinite(previous_centres), previous_centres, 0.0)
    current = np.where(np.isfinite(current_centres), current_centres, 0.0)
    distance = np.linalg.norm(current[:, None, :] - usable[None, :, :], axis=2)
    between = np.linalg.norm(usable[:, None, :] - usable[None, :, :], axis=2)
    between[:, ~finite] = np.inf
    np.fill_diagonal(between, np.inf)
    nearest = between.min(axis=1)
    cost = distance.copy()
    cost[:, ~finite] = 1e12
    cost[~np.isfinite(current_centres).all(axis=1)] = 1e12
    survived = {}
    for c, p in zip(*linear_sum_assignment(cost), strict=True):
        limit = CENTROID_MATCH_SHARE * nearest[p] if np.isfinite(nearest[p]) else math.inf
        if finite[p] and cost[c, p] < 1e12 and distance[c, p] < limit:
            survived[int(c)] = (previous_ids[int(p)], round(float(distance[c, p]), 4))
    matched = {pid for pid, _ in survived.values()}
    events = [(None, pid, "disappeared", None) for pid in previous_ids if pid not in matched]
    return Matching(dict(survived), list(events))


@dataclass(frozen=True)
class Followed:
    """A refit followed from its previous analysis: the public id and the name of each
    current segment position, and the lineage report."""

    ids: list[int]
    names: list[str]
    lineage: Lineage


def _ids(n_positions: int, matching: Matching, next_id: int) -> tuple[list[int], int]:
    ids = []
    for position in range(n_positions):
        if position in matching.survived:
            ids.append(matching.survived[position][0])
        else:
            ids.append(next_id)
            next_id += 1
    return ids, next_id


def _events(matching: Matching, ids: list[int], by: str) -> tuple[SegmentEvent, ...]:
    metric = "jaccard" if by == "customers" else "distance"
    rows = [
        SegmentEvent(ids[c], pid, "survived", **{metric: value})
        for c, (pid, value) in sorted(matching.survived.items())
    ]
    covered = set(matching.survived)
    for position, pid, event, value in matching.events:
        rows.append(SegmentEvent(None if position is None else ids[position], pid, event, value))
        if position is not None:
            covered.add(position)
    rows += [SegmentEvent(ids[c], None, "emerged") for c in range(len(ids)) if c not in covered]
    return tuple(rows)


def _transitions(
    previous_labels: list[int | None], current_ids: np.ndarray, gone: dict[int, int]
) -> tuple[Transition, ...]:
    counts: dict[tuple[int | None, int | None], int] = {}
    for before, now in zip(previous_labels, current_ids.tolist(), strict=True):
        counts[(before, now)] = counts.get((before, now), 0) + 1
    for pid, count in gone.items():
        if count:
            counts[(pid, None)] = count
    order = sorted(counts, key=lambda k: (k[0] is None, k[0] or 0, k[1] is None, k[1] or 0))
    return tuple(Transition(a, b, counts[(a, b)]) for a, b in order)


def _names(
    previous: PreviousSegmentation,
    matching: Matching,
    fresh: Sequence[str],
    standardized: Sequence[Mapping[str, float]],
) -> tuple[list[str], dict[int, str]]:
    """Survivors keep their name unless their profile moved by RENAME_SHIFT and the fresh
    name differs; a new segment named like a previous one is marked "(new)"."""
    names, renamed = list(fresh), {}
    for position, (pid, _) in matching.survived.items():
        before = previous.standardized.get(pid, {})
        shifts = [abs(standardized[position].get(f, 0.0) - v) for f, v in before.items()]
        old = previous.names[pid]
        if fresh[position] != old and max(shifts, default=0.0) >= RENAME_SHIFT:
            renamed[position] = old
        else:
            names[position] = old
    # a new segment never takes a name the lineage already gave another segment
    taken = set(previous.names.values()) | {names[p] for p in matching.survived}
    for position in range(len(names)):
        if position not in matching.survived and names[position] in taken:
            names[position] = f"{names[position]} (new)"
    return names, renamed


def follow(
    previous: PreviousSegmentation,
    *,
    positions: np.ndarray,
    customer_ids: Sequence[object] | None,
    centres_in_previous_space: np.ndarray,
    fresh_names: Sequence[str],
    standardized: Sequence[Mapping[str, float]],
    drift: Sequence[FieldDrift],
) -> Followed:
    """Match the current segments (by position, `positions` per customer) to the previous
    ones, and report what happened (see the module docstring)."""
    n_positions = len(fresh_names)
    before, now = shared_positions(previous.customer_ids, customer_ids)
    by_customers = len(now) >= max(1.0, MIN_SHARED_CUSTOMERS * len(positions))
    if by_customers:
        index = {pid: i for i, pid in enumerate(previous.segment_ids)}
        rows = np.array([index[int(label)] for label in previous.labels[before]], dtype=np.int64)
        table = np.zeros((len(previous.segment_ids), n_positions), dtype=np.int64)
        np.add.at(table, (rows, positions[now]), 1)
        matching = match_by_customers(table, previous.segment_ids)
    else:
        matching = match_by_centroids(
            centres_in_previous_space, previous.centers, previous.segment_ids
        )
        before, now = before[:0], now[:0]
    ids, next_id = _ids(n_positions, matching, previous.next_id)
    current_ids = np.array(ids, dtype=np.int64)[positions]
    previous_labels: list[int | None] = [None] * len(positions)
    for b, n in zip(before.tolist(), now.tolist(), strict=True):
        previous_labels[n] = int(previous.labels[b])
    stayed = np.bincount(
        [list(previous.segment_ids).index(int(x)) for x in previous.labels[before]],
        minlength=len(previous.segment_ids),
    )
    gone = {pid: previous.sizes[pid] - int(stayed[i]) for i, pid in enumerate(previous.segment_ids)}
    names, renamed = _names(previous, matching, fresh_names, standardized)
    lineage = Lineage(
        previous_analysis_id=previous.analysis_id,
        matched_by="customers" if by_customers else "centroids",
        segments=_events(matching, ids, "customers" if by_customers else "centroids"),
        transitions=_transitions(previous_labels, current_ids, gone),
        customers_compared=len(now),
        moved=int(sum(1 for n in now.tolist() if previous_labels[n] != current_ids[n])),
        drift=tuple(drift),
        renamed={ids[p]: old for p, old in renamed.items()},
        next_id=next_id,
        previous_names=dict(previous.names),
        previous_labels=tuple(previous_labels),
    )
    return Followed(ids, names, lineage)


# ---------------------------------------------------------------------------- in words

# the usual reading of the population stability index: below 0.1 stable, above 0.25 a shift
PSI_MODERATE = 0.1
PSI_SIGNIFICANT = 0.25


def drifted(lineage: Lineage, threshold: float = PSI_MODERATE) -> list[FieldDrift]:
    """The fields whose distribution moved by at least `threshold` PSI, largest first."""
    rows = [d for d in lineage.drift if d.psi >= threshold]
    return sorted(rows, key=lambda d: -d.psi)


def flows(lineage: Lineage) -> list[Transition]:
    """Customers who changed segment, largest flows first (new and gone customers aside)."""
    moves = [
        t for t in lineage.transitions
        if t.source is not None and t.target is not None and t.source != t.target
    ]  # fmt: skip
    return sorted(moves, key=lambda t: -t.customers)


def _amount(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}"


def what_changed(lineage: Lineage, names: Mapping[int, str]) -> list[str]:
    """The lineage as sentences, most telling first: events, movement, the largest flows and
    the drifted fields. `names` are the current segments' names by id."""
    before = lineage.previous_names
    sentences = []
    by_event: dict[str, list[str]] = {}
    for e in lineage.segments:
        if e.event == "survived":
            continue
        # emerged segments are named as they are now, the others as they were
        if e.event == "emerged" and e.cluster_id is not None:
            label = names.get(e.cluster_id, f"segment {e.cluster_id}")
        else:
            label = before.get(e.previous_cluster_id or 0, f"segment {e.previous_cluster_id}")
        labels = by_event.setdefault(e.event, [])
        if label not in labels:
            labels.append(label)
    survived = sum(1 for e in lineage.segments if e.event == "survived")
    sentences.append(
        f"{survived} of {len(before)} previous segments survived (matched by "
        f"{lineage.matched_by})"
        + "".join(f"; {event}: {', '.join(labels)}" for event, labels in by_event.items())
        + "."
    )
    if lineage.customers_compared:
        share = lineage.moved / lineage.customers_compared
        sentences.append(
            f"{lineage.moved:,} of the {lineage.customers_compared:,} customers in both "
            f"analyses changed segment ({share:.1%})."
        )
    for t in flows(lineage)[:3]:
        assert t.source is not None and t.target is not None
        sentences.append(
            f"{t.customers:,} customers moved from {before.get(t.source, t.source)} to "
            f"{names.get(t.target, t.target)}."
        )
    for d in drifted(lineage):
        shift = (f", mean {_amount(d.previous_mean)} -> {_amount(d.mean)}"
                 if d.previous_mean is not None and d.mean is not None else "")  # fmt: skip
        level = "shifted" if d.psi >= PSI_SIGNIFICANT else "drifted moderately"
        sentences.append(f"The {d.field} field {level} (PSI {d.psi:.2f}{shift}).")
    return sentences


def lineage_summary(lineage: Lineage, names: Mapping[int, str]) -> str:
    return " ".join(what_changed(lineage, names))
