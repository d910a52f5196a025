"""Quality benchmark: does `auto` find the right number of segments on data we did not make?

Run from the project root: `.venv/bin/python -m bench.quality` (`make bench` runs it too).

For every labelled set of `bench.battery` it prints the true k, the k we find and our ARI
against the reference labels, the oracle (k-means at the true k, n_init=10, on standardized
fields) and the naive rule (k-means n_init=10 on standardized fields, the k with the best
silhouette over the same range). It ends with the summary: k exact, k within 15%, and the
median of ARI / oracle ARI, for us and for the naive rule. The real files have no true k and
are listed apart.

`--http` posts each set to a real server (`POST /api/analyze`, as a client would) instead of
calling the library in-process; the results are the same, only slower.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score, silhouette_score
from sklearn.preprocessing import StandardScaler

from bench.battery import LabelledSet, battery

RESULTS_DIR = Path(__file__).resolve().parent / "results"
WITHIN = 0.15
DEFAULT_RANGE = (2, 10)


@dataclass(frozen=True)
class Outcome:
    name: str
    family: str
    n: int
    true_k: int
    k: int
    ari: float
    oracle_ari: float
    naive_k: int
    naive_ari: float
    algorithm: str
    seconds: float
    counts_for_k: bool


def standardized(data: LabelledSet) -> np.ndarray:
    """What a notebook does: the fields used, categories one-hot, gaps filled, standardized."""
    frame = data.frame[list(data.features)] if data.features else data.frame
    frame = frame.drop(columns=[c for c in frame if c.lower() in ("id", "customer_id")])
    frame = pd.get_dummies(frame, dtype=float)
    frame = frame.fillna(frame.median(numeric_only=True)).astype(float)
    frame = frame.loc[:, frame.std() > 0]
    return StandardScaler().fit_transform(frame.to_numpy())


def naive_rule(X: np.ndarray, k_range: tuple[int, int]) -> np.ndarray:
    """k-means at each k of the range; the labels of the best silhouette (on every row)."""
    best_score, best_labels = -2.0, np.zeros(len(X), dtype=int)
    for k in range(k_range[0], k_range[1] + 1):
        labels = KMeans(k, n_init=10, random_state=0).fit_predict(X)
        score = silhouette_score(X, labels)
        if score > best_score:
            best_score, best_labels = score, labels
    return best_labels


def ours_in_process(data: LabelledSet) -> tuple[np.ndarray, str]:
    from segmentation import analyze

    analysis = analyze(
        data.frame,
        k_range=data.k_range,
        features=list(data.features) if data.features else None,
    )
    return analysis.labels, analysis.algorithm


class HttpClient:
    """Posts sets to a real uvicorn server started for the run (see bench.run.Server)."""

    def __init__(self) -> None:
        import httpx

        from bench.run import Server

        self.server = Server("quality", "main:app")
        self.server.start()
        self.client = httpx.Client(base_url=self.server.url, timeout=600.0)

    def analyze(self, data: LabelledSet) -> tuple[np.ndarray, str]:
        frame = data.frame.astype(object).where(data.frame.notna(), None)
        records = [
            {str(k): (v.item() if hasattr(v, "item") else v) for k, v in row.items()}
            for row in frame.to_dict(orient="records")
        ]
        options: dict[str, Any] = {"includeCustomers": False, "includeCustomerScores": True}
        if data.k_range:
            options["kRange"] = list(data.k_range)
        if data.features:
            options["features"] = list(data.features)
        response = self.client.post(
            "/api/analyze", json={"customerData": records, "options": options}
        )
        response.raise_for_status()
        payload = response.json()
        labels = np.array([row["clusterId"] for row in payload["customerScores"]])
        return labels, str(payload["algorithm"])

    def close(self) -> None:
        self.client.close()
        self.server.stop()


def evaluate(data: LabelledSet, http: HttpClient | None) -> Outcome:
    started = time.perf_counter()
    labels, algorithm = http.analyze(data) if http else ours_in_process(data)
    seconds = time.perf_counter() - started
    X = standardized(data)
    oracle = KMeans(data.true_k, n_init=10, random_state=0).fit_predict(X)
    naive = naive_rule(X, data.k_range or DEFAULT_RANGE)
    return Outcome(
        name=data.name,
        family=data.family,
        n=len(data.frame),
        true_k=data.true_k,
        k=len(np.unique(labels)),
        ari=float(adjusted_rand_score(data.labels, labels)),
        oracle_ari=float(adjusted_rand_score(data.labels, oracle)),
        naive_k=len(np.unique(naive)),
        naive_ari=float(adjusted_rand_score(data.labels, naive)),
        algorithm=algorithm,
        seconds=seconds,
        counts_for_k=data.counts_for_k,
    )


def within(found: int, true: int) -> bool:
    return abs(found - true) <= WITHIN * true


def summary(outcomes: list[Outcome]) -> dict[str, dict[str, float]]:
    labelled = [o for o in outcomes if o.counts_for_k]
    result = {}
    for who, k_of, ari_of in (
        ("ours", lambda o: o.k, lambda o: o.ari),
        ("naive", lambda o: o.naive_k, lambda o: o.naive_ari),
    ):
        ratios = [ari_of(o) / o.oracle_ari for o in labelled if o.oracle_ari > 0]
        result[who] = {
            "sets": len(labelled),
            "k_exact": sum(k_of(o) == o.true_k for o in labelled),
            "k_within_15pct": sum(within(k_of(o), o.true_k) for o in labelled),
            "median_ari_over_oracle": float(np.median(ratios)) if ratios else float("nan"),
        }
    return result


def table(outcomes: list[Outcome]) -> str:
    header = (
        "| set | n | true k | k | ARI | oracle ARI | naive k | naive ARI | algorithm |\n"
        "|---|---:|---:|---:|---:|---:|---:|---:|---|"
    )
    rows = [
        f"| {o.name} | {o.n:,} | {o.true_k} | {o.k}{'' if o.k == o.true_k else ' *'} | "
        f"{o.ari:.2f} | {o.oracle_ari:.2f} | {o.naive_k}"
        f"{'' if o.naive_k == o.true_k else ' *'} | {o.naive_ari:.2f} | {o.algorithm} |"
        for o in outcomes
    ]
    return "\n".join([header, *rows])


def summary_lines(outcomes: list[Outcome]) -> list[str]:
    lines = []
    for who, figures in summary(outcomes).items():
        sets = figures["sets"]
        lines.append(
            f"{who:>5}: k exact {figures['k_exact']}/{sets}, within 15% "
            f"{figures['k_within_15pct']}/{sets}, median ARI / oracle "
            f"{figures['median_ari_over_oracle']:.2f}"
        )
    return lines


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--http", action="store_true", help="post to a real server")
    parser.add_argument(
        "--families", nargs="*", default=None,
        help="only these families (sklearn blobs classification customers real)",
    )  # fmt: skip
    parser.add_argument("--only", nargs="*", default=None, help="only sets with these names")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sets = battery(tuple(args.families) if args.families else None)
    if args.only:
        sets = [s for s in sets if s.name in args.only]
    http = HttpClient() if args.http else None
    outcomes = []
    try:
        for data in sets:
            outcome = evaluate(data, http)
            outcomes.append(outcome)
            print(
                f"{outcome.name:<42} true k {outcome.true_k:>2}  k {outcome.k:>2}  "
                f"ARI {outcome.ari:.2f}  oracle {outcome.oracle_ari:.2f}  naive k "
                f"{outcome.naive_k:>2} ARI {outcome.naive_ari:.2f}  ({outcome.algorithm}, "
                f"{outcome.seconds:.1f} s)",
                flush=True,
            )
    finally:
        if http is not None:
            http.close()
    print()
    print(table(outcomes))
    print()
    for line in summary_lines(outcomes):
        print(line)
    RESULTS_DIR.mkdir(exist_ok=True)
    (RESULTS_DIR / "quality.json").write_text(
        json.dumps(
            {"outcomes": [asdict(o) for o in outcomes], "summary": summary(outcomes)}, indent=2
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
