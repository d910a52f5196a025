"""The labelled data sets of the quality benchmark (`python -m bench.quality`).

None of them was designed with our method in view:

- scikit-learn's bundled labelled sets (iris, wine, breast_cancer, digits);
- `make_blobs` populations with 2 to 20 groups, where the spread varies per group so that
  neighbours overlap, and sizes are unbalanced up to 1:10;
- `make_classification` sets: a few informative dimensions among many noisy ones;
- customer populations from two generators: the package's own (`segmentation.synthetic`) and
  an independent one below, written from a marketing brief (mixed fields, skewed money,
  counts, categories, flags, random personas) rather than from the package's;
- the real files in `../shared/datasets/` (mall customers, wholesale customers), which have
  no true number of segments: they are scored apart from the k summary.

The battery is fixed by its seeds in advance; nothing here is chosen after looking at results.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn import datasets as sk_datasets
from sklearn.cluster import KMeans
from sklearn.preprocessing import StandardScaler

__all__ = ["DATASETS_DIR", "LabelledSet", "battery", "customer_population"]

DATASETS_DIR = Path(__file__).resolve().parents[2] / "shared" / "datasets"


@dataclass(frozen=True)
class LabelledSet:
    """One data set: the customers as a frame, the reference labels, and what to send."""

    name: str
    family: str  # "sklearn", "blobs", "classification", "customers", "real"
    frame: pd.DataFrame
    labels: np.ndarray
    k_range: tuple[int, int] | None = None  # sent as kRange (None: the default range)
    features: tuple[str, ...] | None = None  # sent as features (None: every field)

    @property
    def true_k(self) -> int:
        return len(np.unique(self.labels))

    @property
    def counts_for_k(self) -> bool:
        """Whether the set has a true number of groups (the real files have none)."""
        return self.family != "real"


def _frame(X: np.ndarray, prefix: str = "x") -> pd.DataFrame:
    return pd.DataFrame(X, columns=[f"{prefix}{i + 1}" for i in range(X.shape[1])])


def _range_for(k: int) -> tuple[int, int] | None:
    """The default range covers up to 10 groups; beyond, the caller widens it (as a user
    who expects many segments would)."""
    return None if k <= 10 else (2, 25)


def _sklearn_sets() -> list[LabelledSet]:
    loaders: dict[str, Callable[..., object]] = {
        "iris": sk_datasets.load_iris,
        "wine": sk_datasets.load_wine,
        "breast_cancer": sk_datasets.load_breast_cancer,
        "digits": sk_datasets.load_digits,
    }
    sets = []
    for name, loader in loaders.items():
        bunch = loader(as_frame=True)
        frame = bunch.frame.drop(columns=["target"])  # type: ignore[attr-defined]
        labels = bunch.target.to_numpy()  # type: ignore[attr-defined]
        sets.append(LabelledSet(name, "sklearn", frame, labels))
    return sets


def overlapping_blobs(
    n_groups: int, dims: int, n_customers: int, separation: float, imbalance: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian groups whose spreads vary (0.6x to 1.4x) and whose sizes are unbalanced.

    Centres are drawn in a box, keeping each new one at least `separation` (in units of the
    mean spread) from the others, so that neighbouring groups touch: 3 to 4 is the range
    where groups overlap visibly but remain recoverable. Sizes are log-uniform between 1 and
    `imbalance`.
    """
    from sklearn.datasets import make_blobs

    rng = np.random.default_rng(seed)
    side = separation * max(1.0, n_groups ** (1 / dims)) * 1.6
    centres: list[np.ndarray] = []
    while len(centres) < n_groups:
        candidate = rng.uniform(-side, side, dims)
        if all(np.linalg.norm(candidate - c) >= separation for c in centres):
            centres.append(candidate)
    weights = np.exp(rng.uniform(0.0, np.log(imbalance), n_groups))
    sizes = np.maximum(20, np.round(n_customers * weights / weights.sum())).astype(int)
    spreads = rng.uniform(0.6, 1.4, n_groups)
    X, labels = make_blobs(
        n_samples=sizes.tolist(), centers=np.array(centres), cluster_std=spreads,
        random_state=seed,
    )  # fmt: skip
    return X, labels


# (groups, dims, customers, separation, imbalance): 2 to 20 groups, 2 to 8 dims; the
# separation 3.2-4.5 makes neighbours touch, imbalance up to 1:10
BLOBS = [
    (2, 2, 1500, 3.2, 4.0),
    (3, 2, 1500, 3.5, 10.0),
    (3, 5, 2000, 3.2, 3.0),
    (4, 3, 2000, 3.5, 10.0),
    (5, 2, 2500, 4.0, 5.0),
    (5, 6, 3000, 3.5, 10.0),
    (6, 4, 3000, 3.8, 10.0),
    (7, 2, 3500, 4.5, 3.0),
    (8, 3, 4000, 4.0, 10.0),
    (8, 8, 4000, 3.5, 5.0),
    (10, 2, 5000, 4.5, 10.0),
    (10, 5, 5000, 3.8, 4.0),
    (12, 3, 5000, 4.0, 10.0),
    (15, 2, 5000, 4.5, 3.0),
    (15, 4, 6000, 4.0, 10.0),
    (20, 2, 6000, 4.5, 5.0),
    (20, 6, 8000, 4.0, 10.0),
]


def _blob_sets() -> list[LabelledSet]:
    sets = []
    for seed, (k, dims, n, separation, imbalance) in enumerate(BLOBS):
        X, labels = overlapping_blobs(k, dims, n, separation, imbalance, seed=1000 + seed)
        name = f"blobs_k{k}_d{dims}_sep{separation:g}_1to{imbalance:g}"
        sets.append(LabelledSet(name, "blobs", _frame(X), labels, _range_for(k)))
    return sets


# (classes, features, informative, class separation)
CLASSIFICATION = [(3, 10, 4, 2.0), (4, 20, 5, 2.5), (5, 30, 8, 2.5), (6, 15, 6, 3.0)]


def _classification_sets() -> list[LabelledSet]:
    sets = []
    for seed, (k, features, informative, separation) in enumerate(CLASSIFICATION):
        X, labels = sk_datasets.make_classification(
            n_samples=2000, n_features=features, n_informative=informative,
            n_redundant=min(2, features - informative), n_classes=k, n_clusters_per_class=1,
            class_sep=separation, flip_y=0.0, random_state=2000 + seed,
        )  # fmt: skip
        name = f"classification_k{k}_f{features}_inf{informative}"
        sets.append(LabelledSet(name, "classification", _frame(X, "f"), labels))
    return sets


CHANNELS = ("store", "web", "app", "phone")
TIERS = ("basic", "silver", "gold")


def customer_population(n_customers: int, n_personas: int, seed: int) -> LabelledSet:
    """Customers from random personas, with the fields a retailer exports.

    Each persona draws its own centre on a latent scale for every numeric field (age, income,
    spend, visits, tenure, basket) and its own category mix (channel, tier) and flag rate (app
    user). Personas are kept at least 2.5 within-persona spreads apart over the numeric
    fields, so that they are distinct but overlap on most single fields, as real segments do.
    Money is log-normal, visits negative-binomial, a survey score is pure noise, and 3% of
    incomes are missing.
    """
    rng = np.random.default_rng(seed)
    n_latent = 6
    centres: list[np.ndarray] = []
    while len(centres) < n_personas:
        candidate = rng.uniform(-2.2, 2.2, n_latent)
        if all(np.linalg.norm(candidate - c) >= 2.5 for c in centres):
            centres.append(candidate)
    centre = np.array(centres)
    weights = np.exp(rng.uniform(0.0, np.log(6.0), n_personas))
    persona = rng.choice(n_personas, size=n_customers, p=weights / weights.sum())
    persona[:n_personas] = np.arange(n_personas)
    z = centre[persona] + rng.normal(0.0, 0.5, (n_customers, n_latent))
    age = np.clip(np.round(45 + 12 * z[:, 0]), 18, 90)
    income = np.round(np.exp(np.log(55_000) + 0.45 * z[:, 1]), -2)
    spend = np.round(np.exp(np.log(900) + 0.6 * z[:, 2]), 2)
    visits = rng.negative_binomial(8, 8 / (8 + np.exp(np.log(6) + 0.5 * z[:, 3])))
    tenure = np.round(np.exp(np.log(30) + 0.5 * z[:, 4]))
    basket = np.round(np.exp(np.log(45) + 0.35 * z[:, 5]), 2)
    channel_mix = rng.dirichlet(np.ones(len(CHANNELS)) * 0.8, n_personas)
    channel = np.array([rng.choice(CHANNELS, p=channel_mix[p]) for p in persona], dtype=object)
    tier_mix = rng.dirichlet(np.ones(len(TIERS)), n_personas)
    tier = np.array([rng.choice(TIERS, p=tier_mix[p]) for p in persona], dtype=object)
    app_rate = rng.uniform(0.1, 0.9, n_personas)
    frame = pd.DataFrame(
        {
            "customer_id": [f"C{100000 + i}" for i in range(n_customers)],
            "age": age,
            "annual_income": income,
            "total_spend": spend,
            "visits_per_month": visits.astype(float),
            "tenure_months": tenure,
            "avg_basket": basket,
            "preferred_channel": channel,
            "loyalty_tier": tier,
            "uses_app": rng.random(n_customers) < app_rate[persona],
            "survey_score": rng.integers(1, 11, n_customers).astype(float),
        }
    )
    frame.loc[rng.random(n_customers) < 0.03, "annual_income"] = np.nan
    return LabelledSet(f"customers_k{n_personas}_s{seed}", "customers", frame, persona)


def _customer_sets() -> list[LabelledSet]:
    from segmentation.synthetic import make_population

    sets = [customer_population(3000, k, seed=3000 + k) for k in (3, 4, 5, 6, 7, 8)]
    for k in (3, 4, 5, 6, 7, 8):
        population = make_population(3000, k, random_state=4000 + k)
        sets.append(
            LabelledSet(f"synthetic_k{k}", "customers", population.frame, population.labels)
        )
    return sets


def _real_sets() -> list[LabelledSet]:
    sets = []
    mall = DATASETS_DIR / "mall_customers.csv"
    if mall.exists():
        frame = pd.read_csv(mall)
        features = ("Annual Income (k$)", "Spending Score (1-100)")
        # no labels: the common reading is 5 groups on income x score, so the reference is
        # k-means at 5 on those two fields, standardized
        scaled = StandardScaler().fit_transform(frame[list(features)])
        reference = KMeans(5, n_init=10, random_state=0).fit_predict(scaled)
        sets.append(LabelledSet("mall_income_score", "real", frame, reference, features=features))
    wholesale = DATASETS_DIR / "wholesale_customers.csv"
    if wholesale.exists():
        frame = pd.read_csv(wholesale)
        labels = frame.pop("Channel").to_numpy()
        # Region is a location code, not behaviour: left out as in the HTTP test
        frame = frame.drop(columns=["Region"])
        sets.append(LabelledSet("wholesale_vs_channel", "real", frame, labels))
    return sets


def battery(families: tuple[str, ...] | None = None) -> list[LabelledSet]:
    """Every set of the benchmark, or only those of the given families."""
    builders = {
        "sklearn": _sklearn_sets,
        "blobs": _blob_sets,
        "classification": _classification_sets,
        "customers": _customer_sets,
        "real": _real_sets,
    }
    chosen = families or tuple(builders)
    return [s for family in chosen for s in builders[family]()]
