"""Outcomes: what happened to a customer (churned, responded, defaulted), never a trait.

An outcome is recognised by its name (`Churn`, `Attrition_Flag`, `Exited`, `is_canceled`,
`Response`, `y`, `target`) and its shape (two levels, or numbers for a target or label), or
named by the caller (`outcomes`). It never segments customers: it is reported per segment
instead, as the rate of its positive level or its mean. A field that predicts an outcome
almost perfectly on its own (a classifier's score of it, a status set when it happened) is a
leak: it restates the outcome, so it is left out of the segmentation too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

__all__ = [
    "LEAK_AUC",
    "PRESENT",
    "OutcomeSummary",
    "leak_strength",
    "outcome_meaning",
    "outcome_values",
    "outcome_word",
    "positive_level",
    "segment_moments",
    "summarize_outcome",
]

# Words of a field's name that make a two-level field an outcome, by what the outcome means
# for the business: a loss to prevent, or a gain to repeat.
LOSS_WORDS = frozenset(
    {"churn", "churned", "churning", "attrition", "attrited", "exited", "cancelled", "canceled",
     "lapsed", "terminated"}
)  # fmt: skip
# a risk the business carries rather than a customer leaving
RISK_WORDS = frozenset({"default", "defaulted", "fraud", "fraudulent", "claim"})
GAIN_WORDS = frozenset(
    {"converted", "conversion", "response", "responded", "accepted", "subscribed", "y"}
)
# outcome words that need nothing else: a target or a label may also be numeric (its mean)
NEUTRAL_WORDS = frozenset({"target", "label", "outcome", "class"})
NUMERIC_OUTCOME_WORDS = frozenset({"target", "label", "outcome"})
# names that are an outcome only alone: "Revenue" (true/false) in a sessions file, "left" in
# an HR file; as one word among others they describe the customer ("purchased_last_month")
ALONE_WORDS = {"revenue": "gain", "purchased": "gain", "bought": "gain", "clicked": "gain",
               "left": "loss", "exit": "loss", "exited": "loss"}  # fmt: skip
YES_LEVELS = frozenset({"yes", "y", "true", "t", "1"})
# the "level" of an event outcome: a customer with any value had the event (a cancellation year)
PRESENT = "(any value)"

# A field whose values alone rank the outcome's positives above its negatives this well
# (area under the ROC curve, either direction) restates the outcome.
LEAK_AUC = 0.98
LEAK_MIN_CLASS = 10
LEAK_SAMPLE = 50_000

Meaning = Literal["loss", "risk", "gain"]


def outcome_word(words: Sequence[str]) -> tuple[str, Meaning | None] | None:
    """The word of a field's name (lower-case words) that makes it an outcome, and what it
    means: a loss (customers leaving), a risk (default, fraud, claims), a gain (response,
    conversion), or None (a target of unknown direction); None if no word does.

    Examples
    --------
    >>> outcome_word(["attrition", "flag"]), outcome_word(["y"]), outcome_word(["target"])
    (('attrition', 'loss'), ('y', 'gain'), ('target', None))
    >>> outcome_word(["cancellation", "year"]) is None
    True
    """
    if len(words) == 1 and words[0] in ALONE_WORDS:
        meaning: Meaning = "loss" if ALONE_WORDS[words[0]] == "loss" else "gain"
        return words[0], meaning
    for word in words:
        if word in LOSS_WORDS:
            return word, "loss"
        if word in RISK_WORDS:
            return word, "risk"
        if word in GAIN_WORDS and (word != "y" or len(words) == 1):
            return word, "gain"
    for word in words:
        if word in NEUTRAL_WORDS:
            return word, None
    return None


def outcome_meaning(words: Sequence[str]) -> Meaning | None:
    found = outcome_word(words)
    return None if found is None else found[1]


def positive_level(levels: Mapping[str, int], word: str | None) -> str:
    """The level an outcome's rate counts, among its two levels (text -> customers): a yes
    ("Yes", "1", "true"), a level that names the outcome ("Attrited Customer" for
    attrition), else the rarer one (churners are fewer than stayers; "2" in a 1/2 code)."""
    by_fold = {level.casefold(): level for level in levels}
    for fold, level in by_fold.items():
        # "1" is a yes beside "0" only: beside "2" it is a code
        if fold in YES_LEVELS and (fold != "1" or "0" in by_fold):
            return level
    if word is not None:
        stem = word[:5]
        for fold, level in by_fold.items():
            if len(stem) >= 4 and stem in fold.replace(" ", ""):
                return level
    return min(levels, key=lambda level: (levels[level], level))


def outcome_values(
    column: pd.Series, positive: str | None, numbers: np.ndarray | None
) -> np.ndarray:
    """An outcome per customer as float64: 1.0 for the positive level and 0.0 for the other
    (a rate), or the numbers themselves (`positive` None: a mean); NaN where missing.

    `numbers` are the field read as numbers when it is numeric (None for text)."""
    if positive is None:
        assert numbers is not None
        return numbers.astype(float, copy=False)
    if positive == PRESENT:  # never missing: no value is the other level
        present = ~np.isnan(numbers) if numbers is not None else column.notna().to_numpy()
        return present.astype(float)
    if numbers is not None:
        folded = positive.casefold()
        target = 1.0 if folded in ("true", "yes", "y", "t") else float(positive)
        return np.where(np.isnan(numbers), np.nan, (numbers == target).astype(float))
    present = column.notna().to_numpy()
    hits = column.astype(object).map(lambda v: str(v).casefold() == positive.casefold())
    return np.where(present, hits.to_numpy(dtype=float), np.nan)


def _auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve of `scores` for `positive` (ties count half), either
    direction: 0.5 says nothing, 1 separates perfectly."""
    ranks = pd.Series(scores).rank(method="average").to_numpy()
    n_positive = int(positive.sum())
    n_negative = len(positive) - n_positive
    auc = (ranks[positive].sum() - n_positive * (n_positive + 1) / 2) / (n_positive * n_negative)
    return float(max(auc, 1 - auc))


def leak_strength(
    feature: np.ndarray | pd.Series, outcome: np.ndarray, random_state: int = 0
) -> float | None:
    """How well one field on its own predicts an outcome: the AUC for a rate outcome (a
    text field scored by each level's rate), |Spearman correlation| for a numeric one; None
    when too few customers have both to say.

    Missing values of the field are a value of their own (lowest), since "never set" can
    restate an outcome as well as a value can."""
    known = ~np.isnan(outcome)
    rows = np.flatnonzero(known)
    if len(rows) > LEAK_SAMPLE:
        rows = np.sort(np.random.default_rng(random_state).choice(rows, LEAK_SAMPLE, replace=False))
    target = outcome[rows]
    if isinstance(feature, pd.Series):
        codes, _ = pd.factorize(feature.iloc[rows], use_na_sentinel=False)
        rates = np.bincount(codes, weights=np.nan_to_num(target)) / np.bincount(codes)
        scores = rates[codes]
    else:
        values = feature[rows]
        scores = np.where(np.isnan(values), -np.inf, values)
    is_rate = bool(np.isin(target, (0.0, 1.0)).all())
    if is_rate:
        positive = target == 1.0
        if min(int(positive.sum()), int((~positive).sum())) < LEAK_MIN_CLASS:
            return None
        return _auc(scores, positive)
    if len(target) < 2 * LEAK_MIN_CLASS or np.std(target) == 0 or np.std(scores) == 0:
        return None
    ranked = pd.Series(scores).rank().to_numpy(), pd.Series(target).rank().to_numpy()
    return float(abs(np.corrcoef(*ranked)[0, 1]))


@dataclass(frozen=True)
class OutcomeSummary:
    """One outcome across the segments: per segment (by position) the customers with a
    value, its mean (a rate for a 0/1 outcome) and variance; and overall."""

    field: str
    kind: Literal["rate", "mean"]
    positive: str | None
    meaning: Meaning | None
    count: np.ndarray
    mean: np.ndarray
    var: np.ndarray

    @property
    def overall(self) -> float:
        total = self.count.sum()
        present = self.count > 0
        return float((self.count[present] * self.mean[present]).sum() / total) if total else np.nan


def summarize_outcome(
    field: str,
    positive: str | None,
    meaning: Meaning | None,
    values: np.ndarray,
    segment_ids: np.ndarray,
    n_segments: int,
) -> OutcomeSummary:
    """An outcome's count, mean and variance (ddof=1) per segment, in one pass."""
    count, mean, var = segment_moments(values, segment_ids, n_segments)
    kind: Literal["rate", "mean"] = "rate" if positive is not None else "mean"
    return OutcomeSummary(field, kind, positive, meaning, count, mean, var)


def segment_moments(
    values: np.ndarray, segment_ids: np.ndarray, n_segments: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per segment: how many customers have a value, its mean and variance (ddof=1; NaN for
    fewer than 2), NaN values left out, in one vectorised pass."""
    present = ~np.isnan(values)
    ids, kept = segment_ids[present], values[present]
    count = np.bincount(ids, minlength=n_segments)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.bincount(ids, weights=kept, minlength=n_segments) / count
        squares = np.bincount(ids, weights=(kept - mean[ids]) ** 2, minlength=n_segments)
        var = np.where(count > 1, squares / np.maximum(count - 1, 1), np.nan)
    return count, mean, var
