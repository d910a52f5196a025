"""Generated customer populations with known segments, for tests and benchmarks.

Real customer segments overlap: two personas can share an age band or a region and differ only
in spend. The generator mirrors that, so that a method tuned on it is not tuned on toy blobs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = [
    "PERSONAS",
    "Persona",
    "Population",
    "Refit",
    "make_population",
    "make_refit",
    "make_uniform_noise",
]


@dataclass(frozen=True)
class Persona:
    """One true segment: the centre and spread of each field."""

    name: str
    age_mean: float
    age_sd: float
    income_median: float
    purchases_mean: float
    female_share: float
    region_weights: tuple[float, float, float, float]  # North, South, East, West


REGIONS = ("North", "South", "East", "West")

PERSONAS: tuple[Persona, ...] = (
    Persona("affluent loyal", 50, 6, 150_000, 30, 0.5, (0.6, 0.1, 0.15, 0.15)),
    Persona("young bargain hunters", 24, 3, 30_000, 25, 0.65, (0.15, 0.6, 0.1, 0.15)),
    Persona("careful affluent", 56, 6, 130_000, 5, 0.4, (0.2, 0.15, 0.5, 0.15)),
    Persona("budget families", 38, 4, 40_000, 8, 0.6, (0.1, 0.15, 0.15, 0.6)),
    Persona("mainstream", 36, 5, 75_000, 15, 0.5, (0.25, 0.25, 0.25, 0.25)),
    Persona("retired regulars", 72, 4, 50_000, 18, 0.55, (0.15, 0.1, 0.6, 0.15)),
    Persona("high rollers", 42, 6, 350_000, 50, 0.35, (0.45, 0.05, 0.45, 0.05)),
    Persona("dormant", 46, 8, 60_000, 1, 0.5, (0.25, 0.25, 0.25, 0.25)),
)


@dataclass(frozen=True)
class Population:
    """Customers as a frame (one row each, `id` first) and their true segment per row."""

    frame: pd.DataFrame
    labels: np.ndarray

    def records(self) -> list[dict[str, object]]:
        """The customers as JSON-ready dicts, missing values as None."""
        frame = self.frame.astype(object).where(self.frame.notna(), None)
        return [{str(k): v for k, v in row.items()} for row in frame.to_dict(orient="records")]


def make_population(
    n_customers: int,
    n_segments: int = 5,
    *,
    random_state: int = 0,
    spread: float = 1.0,
    missing_rate: float = 0.02,
    noise_field: bool = True,
) -> Population:
    """Draw customers from the first `n_segments` personas.

    Segment sizes are unequal (weights 1, 1.5, 2, ... shuffled) as in real bases. `spread`
    scales every within-segment spread: 1 gives overlapping but recoverable segments.
    `missing_rate` of the age and income values are blanked. `noise_field` adds
    `satisfaction`, uniform 1-10 and unrelated to the segments.

    Examples
    --------
    >>> population = make_population(300, 3, random_state=1)
    >>> population.frame.shape[0], len(set(population.labels))
    (300, 3)
    """
    if not 1 <= n_segments <= len(PERSONAS):
        raise ValueError(f"n_segments={n_segments} should be in 1..{len(PERSONAS)}")
    rng = np.random.default_rng(random_state)
    weights = rng.permutation(1.0 + 0.5 * np.arange(n_segments))
    labels = rng.choice(n_segments, size=n_customers, p=weights / weights.sum())
    labels[:n_segments] = np.arange(n_segments)  # every segment present even for tiny n

    frame = _customers(
        labels, np.arange(1, n_customers + 1), rng, spread, missing_rate, noise_field
    )
    return Population(frame=frame, labels=labels)


def _customers(
    labels: np.ndarray,
    ids: np.ndarray,
    rng: np.random.Generator,
    spread: float,
    missing_rate: float,
    noise_field: bool,
) -> pd.DataFrame:
    """One customer per label (an index into PERSONAS), with the given ids."""
    n_customers = len(labels)
    personas = [PERSONAS[i] for i in labels]
    age_mean = np.array([p.age_mean for p in personas])
    age_sd = np.array([p.age_sd for p in personas])
    income_median = np.array([p.income_median for p in personas])
    purchases_mean = np.array([p.purchases_mean for p in personas])
    female_share = np.array([p.female_share for p in personas])

    age = np.clip(np.round(rng.normal(age_mean, age_sd * spread)), 18, 95)
    income = np.round(income_median * np.exp(rng.normal(0.0, 0.25 * spread, n_customers)), -2)
    purchases = rng.poisson(purchases_mean * np.exp(rng.normal(0.0, 0.2 * spread, n_customers)))
    gender = np.where(rng.random(n_customers) < female_share, "Female", "Male")
    region_p = np.array([p.region_weights for p in personas])
    region_index = (rng.random((n_customers, 1)) > np.cumsum(region_p, axis=1)).sum(axis=1)
    region = np.array(REGIONS)[np.minimum(region_index, len(REGIONS) - 1)]

    frame = pd.DataFrame(
        {
            "id": ids,
            "age": age,
            "gender": gender,
            "income": income,
            "purchases": purchases.astype(float),
            "region": region,
        }
    )
    if noise_field:
        frame["satisfaction"] = rng.integers(1, 11, n_customers).astype(float)
    for field in ("age", "income"):
        blank = rng.random(n_customers) < missing_rate
        frame.loc[blank, field] = np.nan
    return frame


def make_uniform_noise(n_customers: int, n_fields: int = 4, *, random_state: int = 0) -> Population:
    """Customers with no structure at all: every field uniform and independent."""
    rng = np.random.default_rng(random_state)
    frame = pd.DataFrame(
        rng.uniform(0, 100, (n_customers, n_fields)).round(2),
        columns=[f"field{i + 1}" for i in range(n_fields)],
    )
    frame.insert(0, "id", np.arange(1, n_customers + 1))
    return Population(frame=frame, labels=np.zeros(n_customers, dtype=int))


@dataclass(frozen=True)
class Refit:
    """Two months of the same customer base, with the truth of what happened in between.

    `first` and `second` are populations (labels index PERSONAS); `moved` is the share of the
    customers present in both months whose persona changed; `vanished` and `emerged` are the
    personas that are only in the first and only in the second month.
    """

    first: Population
    second: Population
    moved: float
    vanished: int
    emerged: int


def make_refit(
    n_customers: int,
    n_segments: int = 4,
    *,
    random_state: int = 0,
    spread: float = 0.6,
    changed: float = 0.10,
    churn: float = 0.05,
    newcomers: float = 0.05,
) -> Refit:
    """Month 1 from the first `n_segments` personas; month 2 of the same customer base, where
    `churn` of the customers have left and `newcomers` (a share of month 1's count) joined,
    `changed` of the staying customers switched persona, the last persona has vanished (its
    customers switched to the others) and the next persona of PERSONAS has appeared (among
    the switchers, and half of the newcomers). A customer who kept their persona keeps their
    record; the others are drawn anew from their new persona.

    Examples
    --------
    >>> refit = make_refit(1000, 4, random_state=1)
    >>> sorted(set(refit.first.labels.tolist())), sorted(set(refit.second.labels.tolist()))
    ([0, 1, 2, 3], [0, 1, 2, 4])
    >>> 0.1 < refit.moved < 0.5
    True
    """
    if not 2 <= n_segments < len(PERSONAS):
        raise ValueError(f"n_segments={n_segments} should be in 2..{len(PERSONAS) - 1}")
    rng = np.random.default_rng(random_state)
    first = make_population(n_customers, n_segments, random_state=random_state, spread=spread)
    vanished, emerged = n_segments - 1, n_segments
    remaining = np.array([p for p in range(n_segments) if p != vanished] + [emerged])
    stay = rng.random(n_customers) >= churn
    before = first.labels[stay]
    labels = before.copy()
    for i in np.flatnonzero((before == vanished) | (rng.random(len(before)) < changed)):
        labels[i] = rng.choice(remaining[remaining != before[i]])
    n_new = round(newcomers * n_customers)
    joining = np.where(rng.random(n_new) < 0.5, emerged, rng.choice(remaining[:-1], n_new))
    ids = np.concatenate([first.frame["id"].to_numpy()[stay],
                          np.arange(n_customers + 1, n_customers + 1 + n_new)])  # fmt: skip
    labels = np.concatenate([labels, joining])
    frame = _customers(labels, ids, rng, spread, 0.02, True)
    # a customer who kept their persona keeps their record
    kept = np.flatnonzero(labels[: len(before)] == before)
    frame.iloc[kept] = first.frame[stay].iloc[kept].to_numpy()
    moved = float(np.mean(labels[: len(before)] != before))
    return Refit(first, Population(frame, labels), moved, vanished, emerged)
