"""Do Gaussian mixtures or HDBSCAN earn a place? Both measured on the quality battery.

Run from the project root: `.venv/bin/python -m bench.algorithms` (`make bench` runs it too).

For every labelled set of `bench.battery` it fits, in the space our encoder builds:

- auto: what `analyze` returns (its k and its segments);
- gmm@k: `GaussianMixture` (diagonal and tied covariance) on the continuous columns at the k
  auto chose, i.e. as an auto candidate at that k;
- gmm-bic: the same mixture with k chosen by BIC over the range, i.e. as an explicit
  algorithm that chooses its own k;
- hdbscan: `sklearn.cluster.HDBSCAN` (min_cluster_size 1% of the customers, at least 5),
  noise as its own segment, i.e. as an explicit algorithm or a density candidate.

It prints the ARI of each against the reference labels and the median over the sets, and
how often each beats auto. The README quotes the summary.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

import numpy as np
from sklearn.cluster import HDBSCAN
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import adjusted_rand_score
from sklearn.mixture import GaussianMixture

from bench.battery import LabelledSet, battery
from bench.quality import DEFAULT_RANGE

RESULTS_DIR = Path(__file__).resolve().parent / "results"
# the search sample's size: every method is fitted on at most this many customers, as auto is
SAMPLE = 2000


def continuous_columns(data: LabelledSet) -> tuple[np.ndarray, np.ndarray, int]:
    """Our encoding of the set, its continuous columns only (numbers and dates, scaled), and
    the k auto chose."""
    from segmentation import analyze
    from segmentation.pipeline.schema import FieldRole

    analysis = analyze(
        data.frame, k_range=data.k_range, features=list(data.features) if data.features else None
    )
    encoder = analysis.encoder
    frame = data.frame
    encoded = encoder.encode(frame)
    columns = [
        e.columns.start
        for e in encoder.encodings_
        if e.spec.role in (FieldRole.NUMERIC, FieldRole.DATE)
    ]
    continuous = encoded[:, columns] if columns else encoder.transform(frame)
    return analysis.labels, continuous, len(analysis.segments)


def gmm_labels(X: np.ndarray, k: int, covariance: str, seed: int = 0) -> tuple[np.ndarray, float]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = GaussianMixture(
            k, covariance_type=covariance, n_init=2, reg_covar=1e-3, random_state=seed
        ).fit(X)
    return model.predict(X), float(model.bic(X))


def evaluate(data: LabelledSet) -> dict[str, float | int | str]:
    auto_labels, X, k = continuous_columns(data)
    rng = np.random.default_rng(0)
    sample = np.sort(rng.choice(len(X), size=min(len(X), SAMPLE), replace=False))
    truth = data.labels[sample]
    row: dict[str, float | int | str] = {
        "set": data.name,
        "true_k": data.true_k,
        "auto_k": k,
        "auto": adjusted_rand_score(truth, auto_labels[sample]),
    }
    for covariance in ("diag", "tied"):
        labels, _ = gmm_labels(X[sample], k, covariance)
        row[f"gmm_{covariance}@k"] = adjusted_rand_score(truth, labels)
    low, high = data.k_range or DEFAULT_RANGE
    fits = [gmm_labels(X[sample], j, "diag") for j in range(low, high + 1)]
    best = int(np.argmin([bic for _, bic in fits]))
    row["gmm_bic_k"] = low + best
    row["gmm_bic"] = adjusted_rand_score(truth, fits[best][0])
    hdbscan = HDBSCAN(min_cluster_size=max(5, len(sample) // 100), copy=True).fit(X[sample])
    row["hdbscan_k"] = len(set(hdbscan.labels_.tolist()) - {-1})
    row["hdbscan_noise"] = float(np.mean(hdbscan.labels_ == -1))
    row["hdbscan"] = adjusted_rand_score(truth, hdbscan.labels_)
    return row


METHODS = ("auto", "gmm_diag@k", "gmm_tied@k", "gmm_bic", "hdbscan")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--families", nargs="*", default=None)
    args = parser.parse_args(argv)
    sets = [s for s in battery(tuple(args.families) if args.families else None) if s.counts_for_k]
    rows = []
    for data in sets:
        row = evaluate(data)
        rows.append(row)
        print(
            f"{row['set']:<42} k {row['true_k']:>2}/{row['auto_k']:>2}  "
            + "  ".join(f"{m} {float(row[m]):.2f}" for m in METHODS)
            + f"  (gmm-bic k {row['gmm_bic_k']}, hdbscan k {row['hdbscan_k']}, "
            f"noise {float(row['hdbscan_noise']):.0%})",
            flush=True,
        )
    print()
    for method in METHODS:
        values = np.array([float(r[method]) for r in rows])
        better = sum(float(r[method]) > float(r["auto"]) + 0.01 for r in rows)
        worse = sum(float(r[method]) < float(r["auto"]) - 0.01 for r in rows)
        print(
            f"{method:>12}: median ARI {np.median(values):.2f}, mean {values.mean():.2f}; "
            f"better than auto on {better}/{len(rows)}, worse on {worse}/{len(rows)}"
        )
    RESULTS_DIR.mkdir(exist_ok=True)
    (RESULTS_DIR / "algorithms.json").write_text(json.dumps(rows, indent=2, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
