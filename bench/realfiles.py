"""Real files nobody here prepared: the roles found, k over random states, names and advice.

Run from the project root: `.venv/bin/python -m bench.realfiles` (`make bench` runs it too).

Every customer-level file of `../shared/datasets` and `realworld/` (and of `--extra DIR`, for
files kept outside the repository) is read as the CLI reads it and analysed with CLI defaults
under random states 0-4. For each file it records the fields by role (ids, outcomes, leaks,
numbers read from text, placeholders), k and accuracy per random state, the names and the
advice of random state 0, and what an analyst checks on them: no name shows a level without
its field ("Mostly No") or doubles a word, no two segments get the same action, every cited
"X vs Y" goes the way its sentence says. Beside it, in the same run, the naive approach: every
numeric column and the one-hot text columns of the file standardized, KMeans (n_init=10) with
the best silhouette over k = 2..10, under the same random states.

Results go to `bench/results/realfiles.json`; `--markdown` prints the table the docs show,
and `--table` prints it from the results file without running anything again.
"""

from __future__ import annotations

import argparse
import json
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score
from sklearn.preprocessing import StandardScaler

from segmentation import analyze
from segmentation.errors import InvalidInputError
from segmentation.files import detect_kind, read_customer_file
from segmentation.recommend import recommend
from segmentation.rfm import customers_from_transactions

ROOT = Path(__file__).resolve().parents[1]
DATASETS = ROOT.parent / "shared" / "datasets"
RESULTS = Path(__file__).resolve().parent / "results" / "realfiles.json"
SEEDS = (0, 1, 2, 3, 4)
NAIVE_SAMPLE = 3000
# files of orders: one row per customer is derived first (as `--transactions` does)
TRANSACTIONS = {
    "cdnow_master.csv": {"customer_id": "customer_id", "date": "date", "amount": "dollar_value"},
    "cdnow_sample.csv": {"customer_id": "customer_id", "date": "date", "amount": "dollar_value"},
    "online_retail.csv.xz": {
        "customer_id": "CustomerID", "date": "InvoiceDate", "quantity": "Quantity",
        "price": "UnitPrice", "invoice": "InvoiceNo",
    },
}  # fmt: skip
# the same data as another file here, in another layout (headerless, fixed width)
SKIPPED = {"cdnow_master.txt", "cdnow_sample.txt", "README.md"}
MOSTLY_BARE = re.compile(r"\bMostly (No|Yes|True|False|\d+)\b", re.IGNORECASE)


@dataclass
class FileResult:
    file: str
    customers: int
    roles: dict[str, list[str]]
    read_as_numbers: list[str]
    placeholders: list[str]
    ks: list[int]
    accuracies: list[float | None]
    naive_ks: list[int]
    names: list[str]
    sizes: list[int]
    outcomes: dict[str, list[float | None]]
    advice: list[str]
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0
    #: with CLI defaults the file was refused, with this message (then analysed keeping the
    #: first row of each repeated id)
    refused: str | None = None

    @property
    def k_stable(self) -> bool:
        return len(set(self.ks)) == 1


def _files(extra: Path | None) -> list[Path]:
    folders = [DATASETS, DATASETS / "realworld", *([extra] if extra else [])]
    found = []
    for folder in folders:
        for path in sorted(folder.iterdir()):
            if path.is_file() and path.name not in SKIPPED and not path.name.endswith(".md"):
                found.append(path)
    return found


def read(path: Path) -> tuple[pd.DataFrame, tuple[str, ...]]:
    """The customers of a file as the CLI reads them (orders turned into customers)."""
    with path.open("rb") as handle:
        kind = detect_kind(handle.read(8192), path.name)
    customer_file = read_customer_file(path, kind)
    columns = TRANSACTIONS.get(path.name)
    if columns is None:
        return customer_file.frame, customer_file.notes
    derived = customers_from_transactions(customer_file.frame, **columns)  # type: ignore[arg-type]
    return derived.customers, customer_file.notes


def naive_k(frame: pd.DataFrame, seed: int) -> int:
    """A notebook's k: every numeric column and the one-hot text columns (ids and outcomes
    included, as a notebook that does not look would), KMeans with the best silhouette."""
    numeric = frame.select_dtypes("number")
    text = frame.select_dtypes(exclude="number")
    text = text[[c for c in text if text[c].nunique() <= 20]]
    parts = [numeric, *([pd.get_dummies(text, dtype=float)] if text.shape[1] else [])]
    data = pd.concat(parts, axis=1)
    data = data.fillna(data.median(numeric_only=True)).astype(float)
    X = StandardScaler().fit_transform(data.to_numpy())
    rng = np.random.default_rng(seed)
    if len(X) > NAIVE_SAMPLE:
        X = X[rng.choice(len(X), NAIVE_SAMPLE, replace=False)]
    scores = {}
    for k in range(2, 11):
        labels = KMeans(k, n_init=10, random_state=seed).fit_predict(X)
        scores[k] = silhouette_score(X, labels)
    return max(scores, key=lambda k: scores[k])


def _checks(names: list[str], advice: list[Any]) -> list[str]:
    """What an analyst would object to."""
    problems = []
    for name in names:
        if MOSTLY_BARE.search(name):
            problems.append(f"name shows a level without its field: {name!r}")
        words = [w.lower().rstrip("s") for w in re.findall(r"[A-Za-z]+", name)]
        if len(words) != len(set(words)) and "high" not in words and "low" not in words:
            problems.append(f"name repeats a word: {name!r}")
        if len(name) > 40:
            problems.append(f"name longer than 40 characters: {name!r}")
    # each segment's own action: the first advice naming it (cross-segment advice follows)
    first: dict[int, Any] = {}
    for r in advice:
        if r.cluster_id is not None:
            first.setdefault(r.cluster_id, r)
    per_segment = list(first.values())
    actions = [r.action.replace(f'"{r.segment}"', "{segment}") for r in per_segment]
    if len(per_segment) > 1 and len(set(actions)) < len(actions):
        problems.append(f"{len(actions) - len(set(actions))} segments share an action")
    for r in advice:
        for figure in r.figures:
            if not figure.holds:
                problems.append(f"cited figure does not hold: {figure.text} in {r.text!r}")
    return problems


def run_file(path: Path, seeds: tuple[int, ...]) -> FileResult:
    started = time.perf_counter()
    frame, _ = read(path)
    refused, options = None, {}
    try:
        analyses = [analyze(frame, random_state=seeds[0])]
    except InvalidInputError as error:
        refused, options = str(error), {"duplicate_ids": "first"}
        analyses = [analyze(frame, random_state=seeds[0], **options)]
    analyses += [analyze(frame, random_state=seed, **options) for seed in seeds[1:]]
    first = analyses[0]
    fields = first.data_quality.fields
    roles: dict[str, list[str]] = {}
    for report in fields:
        roles.setdefault(report.role, []).append(report.name)
    advice = recommend(first)
    return FileResult(
        file=path.name, customers=first.n_customers, roles=roles,
        read_as_numbers=[f.name for f in fields if "read as" in f.handling and f.role in (
            "numeric", "boolean", "outcome")],
        placeholders=[f"{f.name}: {f.handling}" for f in fields if "placeholder" in f.handling],
        ks=[len(a.segments) for a in analyses],
        accuracies=[None if a.accuracy != a.accuracy else round(a.accuracy, 3) for a in analyses],
        naive_ks=[naive_k(frame, seed) for seed in seeds],
        names=[s.name for s in first.segments], sizes=[s.size for s in first.segments],
        outcomes={
            o.field: [s.outcomes.get(o.field) for s in first.segments] for o in first.outcomes
        },
        advice=[r.text for r in advice],
        problems=_checks([s.name for s in first.segments], advice),
        seconds=round(time.perf_counter() - started, 1), refused=refused,
    )  # fmt: skip


def markdown(results: list[FileResult]) -> str:
    lines = [
        "| file | customers | ids | outcomes | left out | k over random states 0-4 | "
        "accuracy | naive k | names (random state 0) | analyst's objections |",
        "| --- | ---: | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        accuracy = "/".join("-" if a is None else f"{a:.2f}" for a in r.accuracies)
        refused = " (refused with the defaults: ids repeat; shown with duplicateIds first)"
        lines.append(
            f"| {r.file}{refused if r.refused else ''} | {r.customers:,} | "
            f"{', '.join(r.roles.get('id', [])) or '-'} | "
            f"{', '.join(r.roles.get('outcome', [])) or '-'} | "
            f"{len(r.roles.get('ignored', []))} | {', '.join(map(str, r.ks))} | {accuracy} | "
            f"{', '.join(map(str, r.naive_ks))} | {'; '.join(r.names)} | "
            f"{len(r.problems) or 'none'} |"
        )
    stable = sum(r.k_stable for r in results)
    naive_stable = sum(len(set(r.naive_ks)) == 1 for r in results)
    lines.append("")
    lines.append(
        f"k is the same under every random state on {stable} of {len(results)} files (the "
        f"naive approach: {naive_stable} of {len(results)})."
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--extra", type=Path, default=None, help="a folder of more files")
    parser.add_argument("--seeds", type=int, default=len(SEEDS), help="random states 0..N-1")
    parser.add_argument("--only", default=None, help="files whose name contains this")
    parser.add_argument("--markdown", action="store_true", help="print the docs' table")
    parser.add_argument("--table", action="store_true", help="the table of the results file")
    args = parser.parse_args()
    if args.table:
        stored = json.loads(RESULTS.read_text())
        print(markdown([FileResult(**row) for row in stored]))
        return
    seeds = tuple(range(args.seeds))
    results = []
    for path in _files(args.extra):
        if args.only and args.only not in path.name:
            continue
        result = run_file(path, seeds)
        results.append(result)
        print(
            f"{result.file}: k {result.ks} (naive {result.naive_ks}), accuracy "
            f"{result.accuracies}, {result.seconds} s\n  names: {result.names}\n  outcomes: "
            f"{result.outcomes}\n  ids: {result.roles.get('id')}; outcome fields: "
            f"{result.roles.get('outcome')}; ignored: {result.roles.get('ignored')}\n"
            f"  read from text: {result.read_as_numbers}\n  placeholders: "
            f"{result.placeholders}\n  problems: {result.problems}\n  refused: {result.refused}",
            flush=True,
        )
        for line in result.advice:
            print(f"    - {line}")
    if not args.only:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps([asdict(r) for r in results], indent=1) + "\n")
    if args.markdown:
        print(markdown(results))


if __name__ == "__main__":
    main()
