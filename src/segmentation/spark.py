"""The same analysis on Apache Spark, for customer bases past one machine.

    from segmentation import spark
    analysis = spark.analyze("s3a://bucket/customers/", spark=session, n_clusters=None)
    analysis.assignments.write.parquet("s3a://bucket/segments/")

What runs where. The driver never collects the full data:

- over all rows, as Spark aggregations: the number of customers, missing values per field,
  mean, standard deviation, skew and quartiles (`percentile_approx`) of numeric fields;
- on a uniform sample pulled to the driver (SPARK_SAMPLE_SIZE customers): the local core
  chooses the fields' roles, the encoding, k and the algorithm, and measures stability,
  importance and accuracy (said in `kSelection.method` and `accuracyMethod`);
- over all rows again: when k-means is chosen, MLlib's `KMeans` refits the centres on every
  customer's vector, encoded by the sample's encoder in `mapInPandas`, started from the
  sample's centres' matches (aligned by `linear_sum_assignment`); then every customer is
  scored where the data lives, in `mapInPandas`, by the same `assign` that scores new
  customers locally, so a stored model scores identically in both engines;
- per segment, Spark aggregates every scored customer's fields into the sufficient
  statistics the local profile tests (`FieldSummary`: counts, means, variances, the
  count of every category level, rare ones included), so sizes, shares, means, category
  shares and the characteristics' significance tests use every customer; the names are the
  sample's profile's; outcomes (churn, response) are read by the same schema as locally and
  their rates or means per segment aggregated over every customer too;
- with `previous`, the sample follows the earlier analysis (ids and names kept, `lineage`
  measured on the sample's customers), and every customer is scored into those segments.

`Analysis.labels`, `confidence`, `ambiguous` and `customer_ids` then hold the sample's
customers (`sample_only`), and `Analysis.assignments` is the Spark DataFrame of every
customer's segment (lazy: written by the caller).
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
import shutil
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal, cast

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment

from segmentation.analysis import Progress
from segmentation.analysis import analyze as analyze_locally
from segmentation.assign import FittedSegmentation, assign, fitted_of
from segmentation.errors import InvalidInputError, Problem
from segmentation.files import DELIMITERS, SNIFF_BYTES, detect_kind
from segmentation.options import AnalysisOptions
from segmentation.pipeline.features import category_text, numeric_values
from segmentation.pipeline.lineage import PreviousSegmentation
from segmentation.pipeline.models import CentroidModel
from segmentation.pipeline.outcomes import Meaning, OutcomeSummary
from segmentation.pipeline.profile import (
    FieldSummary,
    categories_of,
    centroid_of,
    describe,
    outcome_of,
)
from segmentation.pipeline.schema import FieldRole, FieldSpec
from segmentation.results import Analysis, DataQuality, Outcome, Segment

__all__ = ["SPARK_SAMPLE_SIZE", "analyze", "read", "session"]

SPARK_SAMPLE_SIZE = 100_000
KMEANS_MAX_ITER = 20
# local mode: the driver's JVM also runs the executors; with DISK_ONLY persistence a 768 MiB
# heap holds 10M customers, and the serial collector keeps the JVM's own overhead small
# (at 3M: 1.86 GiB driver peak against 2.05 GiB with a 1 GiB heap and the default G1)
LOCAL_DRIVER_MEMORY = "768m"
LOCAL_DRIVER_JAVA_OPTIONS = "-XX:+UseSerialGC"
# rows per pandas batch in mapInPandas: fewer, larger batches spread the per-batch checks
ARROW_BATCH_ROWS = 100_000


def session(master: str | None = None, app_name: str = "segmentation") -> Any:
    """A SparkSession (`local[*]` unless a master URL is given), with Arrow transfers.
    Local Python workers run this interpreter (where this package is installed); on a
    cluster the executors need the package installed too (see the README)."""
    from pyspark.sql import SparkSession

    master = master or "local[*]"
    builder = SparkSession.builder.master(master).appName(app_name)
    if master.startswith("local"):
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        # the driver's JVM also runs the executors here: bounded, not a quarter of the RAM
        builder = builder.config("spark.driver.memory", LOCAL_DRIVER_MEMORY).config(
            "spark.driver.extraJavaOptions", LOCAL_DRIVER_JAVA_OPTIONS
        )
    return (
        builder.config("spark.sql.execution.arrow.maxRecordsPerBatch", str(ARROW_BATCH_ROWS))
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "8")
        .getOrCreate()
    )


def _local_kind(path: Path) -> tuple[str, str]:
    """(kind, CSV delimiter) of a local file or folder, by content like the local engine."""
    if path.is_dir():
        names = [p.name for p in path.iterdir() if not p.name.startswith((".", "_"))]
        if any(n.endswith((".json", ".jsonl", ".ndjson")) for n in names):
            return "jsonl", ","
        return ("csv", ",") if any(n.endswith(".csv") for n in names) else ("parquet", ",")
    with path.open("rb") as handle:
        head = handle.read(SNIFF_BYTES)
    kind = detect_kind(head, path.name)
    delimiter = ","
    if kind == "csv":
        try:
            text = head.decode("utf-8", errors="replace")
            delimiter = csv.Sniffer().sniff(text.split("\n", 1)[0], DELIMITERS).delimiter
        except csv.Error:
            delimiter = ","
    return kind, delimiter


def read(spark: Any, source: Any) -> Any:
    """A path or URI (Parquet file or folder, CSV, JSON Lines) as a Spark DataFrame; a
    DataFrame is returned as it is. A missing or unreadable source is InvalidInputError."""
    from py4j.protocol import Py4JJavaError
    from pyspark.errors import PySparkException
    from pyspark.sql import DataFrame

    if isinstance(source, DataFrame):
        return source
    text = str(source)
    local = "://" not in text or text.startswith("file://")
    path = Path(text.removeprefix("file://"))
    if local and not path.exists():
        raise InvalidInputError(Problem(f"{text}: no such file or directory", field="source"))
    kind, delimiter = _local_kind(path) if local else (_remote_kind(text), ",")
    try:
        if kind == "parquet":
            frame = spark.read.parquet(text)
        elif kind == "jsonl":
            frame = spark.read.json(text)
            check_mixed_kinds(frame, spark.read.text(text))
        else:
            frame = spark.read.options(header=True, inferSchema=True, sep=delimiter).csv(text)
        frame.schema  # noqa: B018  # resolves the schema: an unreadable file fails here
    except (PySparkException, Py4JJavaError) as error:
        first = str(error).strip().splitlines()[0][:300] if str(error).strip() else "unreadable"
        raise InvalidInputError(
            Problem(f"{text} cannot be read as {kind}: {first}", field="source")
        ) from None
    return frame


NUMBER_TEXT = r"^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$"


def _json_kinds(lines: Any, name: str) -> tuple[int, int]:
    """How many JSON lines give `name` an unquoted number and how many a quoted string."""
    from pyspark.sql import functions as sf

    key = re.escape(json.dumps(name))
    row = lines.agg(
        sf.sum(sf.when(sf.col("value").rlike(key + r"\s*:\s*-?[0-9]"), 1).otherwise(0)),
        sf.sum(sf.when(sf.col("value").rlike(key + r'\s*:\s*"'), 1).otherwise(0)),
    ).first()
    return int(row[0] or 0), int(row[1] or 0)


def check_mixed_kinds(frame: Any, lines: Any) -> None:
    """JSON Lines whose field holds numbers in some records and text in others: Spark reads
    the field as text; refused like the local engine does (the minority kind named). Text
    that only looks numeric ("02134" beside "SW1A", both quoted) is text, as locally."""
    from pyspark.sql import functions as sf

    text_fields = [name for name, kind in frame.dtypes if kind == "string"]
    if not text_fields:
        return
    aggregates = []
    for i, name in enumerate(text_fields):
        column = sf.col(f"`{name}`")
        number = column.rlike(NUMBER_TEXT)
        aggregates += [
            sf.sum(sf.when(number, 1).otherwise(0)).alias(f"n_{i}"),
            sf.sum(sf.when(column.isNotNull() & ~number, 1).otherwise(0)).alias(f"t_{i}"),
            sf.first(sf.when(~number, column), ignorenulls=True).alias(f"ft_{i}"),
            sf.first(sf.when(number, column), ignorenulls=True).alias(f"fn_{i}"),
        ]
    row = frame.agg(*aggregates).first()
    problems = []
    for i, name in enumerate(text_fields):
        numbers, texts = int(row[f"n_{i}"] or 0), int(row[f"t_{i}"] or 0)
        if numbers and texts:
            numbers, texts = _json_kinds(lines, name)
        if numbers and texts:
            expected, count, got = (
                ("a number", numbers, repr(row[f"ft_{i}"])) if numbers >= texts
                else ("text", texts, row[f"fn_{i}"])
            )  # fmt: skip
            problems.append(
                Problem(f"expected {expected} as in {count} other records, got {got}", field=name)
            )
    if problems:
        raise InvalidInputError(problems)


def _remote_kind(uri: str) -> str:
    lowered = uri.lower().rstrip("/")
    if lowered.endswith((".csv", ".csv.gz", ".tsv")):
        return "csv"
    if lowered.endswith((".json", ".jsonl", ".ndjson")):
        return "jsonl"
    return "parquet"


def _column_stats(frame: Any) -> tuple[int, dict[str, int]]:
    """The number of customers and the missing values per field, in one pass over all rows."""
    from pyspark.sql import functions as sf

    row = frame.agg(
        sf.count(sf.lit(1)).alias("__rows"),
        *[sf.count(sf.col(f"`{c}`")).alias(f"present_{i}") for i, c in enumerate(frame.columns)],
    ).first()
    rows = int(row["__rows"])
    missing = {c: rows - int(row[f"present_{i}"]) for i, c in enumerate(frame.columns)}
    return rows, missing


def _numeric_summary(frame: Any, fields: list[str]) -> dict[str, dict[str, Any]]:
    """Mean, standard deviation, skew and quartiles of numeric fields over all rows."""
    from pyspark.sql import functions as sf

    if not fields:
        return {}
    aggregates = []
    for i, name in enumerate(fields):
        column = sf.col(f"`{name}`").cast("double")
        aggregates += [
            sf.mean(column).alias(f"mean_{i}"),
            sf.stddev(column).alias(f"sd_{i}"),
            sf.skewness(column).alias(f"skew_{i}"),
            sf.percentile_approx(column, [0.25, 0.5, 0.75], 1000).alias(f"q_{i}"),
        ]
    row = frame.agg(*aggregates).first()
    return {
        name: {
            "mean": row[f"mean_{i}"],
            "sd": row[f"sd_{i}"],
            "skew": row[f"skew_{i}"],
            "quartiles": list(row[f"q_{i}"] or []),
        }
        for i, name in enumerate(fields)
    }


def _sample(frame: Any, rows: int, size: int, seed: int) -> pd.DataFrame:
    """A uniform sample of at most `size` customers, as pandas on the driver."""
    fraction = min(1.0, 1.05 * size / max(rows, 1))
    sampled = frame if fraction >= 1.0 else frame.sample(False, fraction, seed)
    sample: pd.DataFrame = sampled.limit(size).toPandas()
    return sample


def _encoded(frame: Any, fitted: FittedSegmentation) -> Any:
    """Every customer's feature vector (the sample's encoder), as an MLlib vector column."""
    from pyspark.ml.functions import array_to_vector
    from pyspark.sql import functions as sf
    from pyspark.sql.types import ArrayType, DoubleType, StructField, StructType

    encoder = fitted.encoder
    fields = [e.spec.name for e in encoder.encodings_]

    def encode(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        from segmentation.pipeline.ingest import ingest

        for batch in batches:
            X = encoder.transform(ingest(batch, min_customers=1).frame)
            yield pd.DataFrame({"features": list(X)})

    schema = StructType([StructField("features", ArrayType(DoubleType()), False)])
    vectors = frame.select(*[f"`{f}`" for f in fields]).mapInPandas(encode, schema)
    return vectors.select(array_to_vector(sf.col("features")).alias("features"))


def _disk() -> Any:
    """Intermediate results kept on disk, not in the JVM's heap: the driver's memory stays
    flat whatever the number of customers (in local mode the driver runs the executors;
    MEMORY_AND_DISK ran out of a 1 GiB heap at 3M customers)."""
    from pyspark import StorageLevel

    return StorageLevel.DISK_ONLY


def _refit_centres(frame: Any, fitted: FittedSegmentation, k: int, seed: int) -> np.ndarray:
    """MLlib k-means over every customer, its centres in the sample's segment order."""
    from pyspark.ml.clustering import KMeans

    # encoded once and kept: each Lloyd iteration would otherwise re-run the Python encoder
    vectors = _encoded(frame, fitted).persist(_disk())
    try:
        model = KMeans(k=k, seed=seed, maxIter=KMEANS_MAX_ITER, initMode="k-means||").fit(vectors)
    finally:
        vectors.unpersist()
    centres = np.array([np.asarray(c, dtype=float) for c in model.clusterCenters()])
    sample_centres = fitted.centers[:k]
    cost = np.linalg.norm(sample_centres[:, None, :] - centres[None, :, :], axis=2)
    rows, cols = linear_sum_assignment(cost)
    aligned = np.empty_like(centres)
    aligned[rows] = centres[cols]
    return aligned


def _scored(frame: Any, fitted: FittedSegmentation, id_field: str | None) -> Any:
    """Every customer's segment, confidence and ambiguity, computed by `assign` in
    `mapInPandas`, with the fields the segments were learned on as the profile reads them
    (numbers, booleans and dates as float64, categories as text) for the segments'
    aggregates."""
    from pyspark.sql.types import (
        BooleanType,
        DoubleType,
        LongType,
        StringType,
        StructField,
        StructType,
    )

    names = fitted.names
    specs = [e.spec for e in fitted.encoder.encodings_] + list(fitted.encoder.schema.outcomes)
    schema_fields = [StructField("clusterId", LongType(), False)]
    schema_fields += [StructField("clusterName", StringType(), False)]
    schema_fields += [StructField("confidence", DoubleType(), False)]
    schema_fields += [StructField("ambiguous", BooleanType(), False)]
    for spec in specs:
        text = spec.role is FieldRole.CATEGORICAL
        schema_fields.append(StructField(spec.name, StringType() if text else DoubleType(), True))
    types = dict(frame.dtypes)
    # ids keep their type: whole numbers stay numbers, anything else is text
    id_type = LongType() if types.get(id_field or "") in ("bigint", "int", "smallint") else (
        StringType()
    )  # fmt: skip
    id_schema = [StructField("id", id_type, True)] if id_field is not None else []
    schema = StructType(id_schema + schema_fields)

    def score(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            scored = assign(fitted, batch)
            customers = scored.customers
            out: dict[str, Any] = {}
            if id_field is not None:
                ids = batch[id_field]
                out["id"] = ids if isinstance(id_type, LongType) else (
                    ids.astype(object).where(ids.notna(), None).map(
                        lambda v: None if v is None else str(v)
                    )
                )  # fmt: skip
            out["clusterId"] = scored.labels.astype(np.int64)
            out["clusterName"] = [names[int(i)] for i in scored.labels]
            out["confidence"] = np.round(scored.confidence, 4)
            out["ambiguous"] = scored.ambiguous.astype(bool)
            for spec in specs:
                out[spec.name] = (
                    category_text(customers[spec.name])
                    if spec.role is FieldRole.CATEGORICAL
                    else numeric_values(customers, spec)
                )
            yield pd.DataFrame(out)

    return frame.mapInPandas(score, schema)


def _segment_summaries(
    scored: Any, specs: list[FieldSpec], segment_ids: list[int]
) -> tuple[np.ndarray, list[FieldSummary]]:
    """Each segment's size, and each field's FieldSummary (counts, means, variances, level
    counts per segment), as Spark aggregations over every scored customer; indexed by the
    segments' positions (the order of `segment_ids`)."""
    from pyspark.sql import functions as sf

    position = {segment: i for i, segment in enumerate(segment_ids)}
    n = len(segment_ids)
    numeric = [s for s in specs if s.role is not FieldRole.CATEGORICAL]
    aggregates = [sf.count(sf.lit(1)).alias("__size")]
    for i, spec in enumerate(numeric):
        column = sf.col(f"`{spec.name}`")
        aggregates += [
            sf.count(column).alias(f"n_{i}"),
            sf.mean(column).alias(f"mean_{i}"),
            sf.var_samp(column).alias(f"var_{i}"),
            sf.min(column).alias(f"min_{i}"),
        ]
    rows = scored.groupBy("clusterId").agg(*aggregates).collect()
    sizes = np.zeros(n, dtype=np.int64)
    counts, means, variances = np.zeros((3, len(numeric), n))
    variances[:] = means[:] = math.nan
    minima = np.full(len(numeric), math.inf)
    for row in rows:
        at = position[int(row["clusterId"])]
        sizes[at] = int(row["__size"])
        for i in range(len(numeric)):
            counts[i, at] = int(row[f"n_{i}"])
            means[i, at] = math.nan if row[f"mean_{i}"] is None else row[f"mean_{i}"]
            variances[i, at] = math.nan if row[f"var_{i}"] is None else row[f"var_{i}"]
            if row[f"min_{i}"] is not None:
                minima[i] = min(minima[i], row[f"min_{i}"])
    summaries = {
        spec.name: FieldSummary(
            spec,
            counts[i].astype(np.int64),
            means[i],
            variances[i],
            float(minima[i]) if math.isfinite(minima[i]) else math.nan,
            rows=sizes,
        )
        for i, spec in enumerate(numeric)
    }
    for spec in specs:
        if spec.role is not FieldRole.CATEGORICAL:
            continue
        levels: dict[str, np.ndarray] = {}
        for row in scored.groupBy("clusterId", f"`{spec.name}`").count().collect():
            cells = levels.setdefault(str(row[spec.name]), np.zeros(n, dtype=np.int64))
            cells[position[int(row["clusterId"])]] = int(row["count"])
        summaries[spec.name] = FieldSummary.of_levels(spec, levels)
    return sizes, [summaries[s.name] for s in specs]


def _outcome_summary(summary: FieldSummary) -> OutcomeSummary:
    """An outcome's aggregates (read by the schema as 0/1 or its numbers) as the profile's."""
    spec = summary.spec
    kind: Literal["rate", "mean"] = "rate" if spec.positive is not None else "mean"
    meaning = cast(Meaning | None, spec.meaning)
    return OutcomeSummary(
        spec.name, kind, spec.positive, meaning, summary.count, summary.mean, summary.var
    )


def _overall(outcome: Outcome, summaries: list[OutcomeSummary]) -> float:
    """An outcome's rate or mean over every customer, from the aggregates."""
    found = next((s for s in summaries if s.field == outcome.field), None)
    return outcome.overall if found is None else found.overall


def _full_segments(
    sample: Analysis,
    sizes: np.ndarray,
    summaries: list[FieldSummary],
    outcomes: list[OutcomeSummary],
) -> tuple[Segment, ...]:
    """The sample's segments with their sizes, means, shares, characteristics, outcomes and
    standardized differences measured on every customer (names stay the sample's)."""
    total = int(sizes.sum()) or 1
    segments = []
    for at, segment in enumerate(sample.segments):
        _, characteristics, standardized = describe(summaries, at, int(sizes[at]), outcomes)
        segments.append(
            replace(
                segment,
                size=int(sizes[at]),
                share=float(sizes[at] / total),
                centroid=centroid_of(summaries, at),
                categories=categories_of(summaries, at),
                characteristics=characteristics,
                standardized=standardized,
                outcomes={o.field: outcome_of(o, at) for o in outcomes},
            )
        )
    return tuple(segments)


def _note(method: str, sample_rows: int, rows: int) -> str:
    return (
        f"{method} (Spark engine: on a uniform sample of {sample_rows:,} of {rows:,} "
        "customers; segments refitted and scored over every customer)"
    )


def write_single_parquet(assignments: Any, path: Path) -> None:
    """Every customer's assignment as one Parquet file (what a stored analysis serves and
    streams), written by Spark through one task and moved into place."""
    staging = path.with_name(path.name + ".spark")
    assignments.coalesce(1).write.mode("overwrite").parquet(str(staging))
    part = next(p for p in staging.iterdir() if p.name.startswith("part-"))
    part.rename(path)
    shutil.rmtree(staging, ignore_errors=True)


class _Laps:
    """Stage durations (seconds) of a Spark analysis, for `Analysis.timings`."""

    def __init__(self) -> None:
        self.timings: dict[str, float] = {}
        self.started = time.perf_counter()

    def __call__(self, stage: str) -> None:
        now = time.perf_counter()
        self.timings[stage] = round(now - self.started, 4)
        self.started = now


def _skew_notes(summary: Mapping[str, Mapping[str, Any]], rows: int) -> tuple[str, ...]:
    """A data-quality note for each strongly skewed numeric field, measured on every row."""
    notes = []
    for name, s in summary.items():
        skew = s["skew"]
        if s["mean"] is None or s["sd"] is None or skew is None or not math.isfinite(skew):
            continue
        if abs(skew) > 2:
            quartiles = "/".join(f"{q:.4g}" for q in s["quartiles"])
            notes.append(
                f"{name}: mean {s['mean']:.4g}, sd {s['sd']:.4g}, skew {skew:.2f}, quartiles "
                f"{quartiles} over all {rows:,} customers"
            )
    return tuple(notes)


# MLlib's centres replace the sample's unless they fit the sample this much worse (k-means||
# can land in another local optimum than the sample's well-chosen one)
REFIT_TOLERANCE = 0.02


def _inertia(X: np.ndarray, centres: np.ndarray) -> float:
    squared = ((X[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2)
    return float(squared.min(axis=1).sum())


def _full_fit(frame: Any, sample: Analysis, local: pd.DataFrame, rows: int) -> FittedSegmentation:
    """The sample's segmentation, its k-means centres refitted over every customer by MLlib
    when they are the same solution (checked on the sample: within REFIT_TOLERANCE of the
    sample's own inertia)."""
    from segmentation.pipeline.ingest import ingest

    fitted = fitted_of(sample)
    regular = [s for s in sample.segments if not s.is_outliers]
    # the sample is all the data below SPARK_SAMPLE_SIZE: a refit would find the same centres
    refit = len(local) < rows
    if refit and sample.algorithm == "kmeans" and isinstance(sample.model, CentroidModel):
        centres = _refit_centres(frame, fitted, len(regular), sample.random_state)
        X = fitted.encoder.transform(ingest(local).frame)
        if _inertia(X, centres) <= (1 + REFIT_TOLERANCE) * _inertia(X, sample.model.centers):
            fitted = replace(fitted, model=CentroidModel(centres), centers=centres)
    return fitted


def _checked(options: AnalysisOptions | None, option_values: Mapping[str, Any]) -> AnalysisOptions:
    if options is None:
        options = AnalysisOptions(**option_values)
    elif option_values:
        raise TypeError("give options= or option keywords, not both")
    return options


def analyze(
    source: Any,
    *,
    spark: Any = None,
    options: AnalysisOptions | None = None,
    sample_size: int = SPARK_SAMPLE_SIZE,
    max_fields: int | None = None,
    progress: Progress | None = None,
    previous: PreviousSegmentation | Analysis | FittedSegmentation | None = None,
    **option_values: Any,
) -> Analysis:
    """Segment the customers of `source` (a path or URI Spark reads, or a Spark DataFrame)
    with the same options and result type as `segmentation.analyze`; see the module
    docstring for what runs where. `engine` is "spark"; `assignments` holds every
    customer's segment as a Spark DataFrame.

    With `previous`, segments keep their ids and names as locally: they are matched on the
    sample (by the sample's customers, or by centroids), so `lineage` counts the sample's
    customers; the refit over every customer keeps the sample's segments in their order."""
    options = _checked(options, option_values)
    spark = spark if spark is not None else session()
    lap = _Laps()
    frame = read(spark, source)
    rows, missing = _column_stats(frame)
    lap("spark-read-stats")
    if rows < 2:
        raise InvalidInputError(Problem(f"{rows} customers; at least 2 are needed"))
    local = _sample(frame, rows, sample_size, options.random_state)
    sample = analyze_locally(
        local, options=replace(options, include_customers=False), max_fields=max_fields,
        progress=progress, previous=previous,
    )  # fmt: skip
    lap("spark-sample-analysis")
    fitted = _full_fit(frame, sample, local, rows)
    lap("spark-refit")
    id_field = sample.encoder.schema.id_field
    scored = _scored(frame, fitted, id_field).persist(_disk())
    outcome_specs = list(fitted.encoder.schema.outcomes)
    specs = [e.spec for e in fitted.encoder.encodings_] + outcome_specs
    sizes, summaries = _segment_summaries(scored, specs, [s.segment_id for s in sample.segments])
    outcomes = [_outcome_summary(s) for s in summaries[len(specs) - len(outcome_specs) :]]
    summaries = summaries[: len(specs) - len(outcome_specs)]
    numeric = [s.name for s in specs if s.role is FieldRole.NUMERIC]
    notes = _skew_notes(_numeric_summary(frame, numeric), rows)
    lap("spark-score-profile")
    quality, selection = sample.data_quality, sample.k_selection
    return replace(
        sample,
        segments=_full_segments(sample, sizes, summaries, outcomes),
        outcomes=tuple(replace(o, overall=_overall(o, outcomes)) for o in sample.outcomes),
        model=fitted.model, centers=fitted.centers,
        data_quality=DataQuality(
            rows, tuple(replace(f, missing=missing.get(f.name, f.missing)) for f in quality.fields),
            quality.warnings + notes,
        ),
        k_selection=replace(selection, method=_note(selection.method, len(local), rows)),
        accuracy_method=_note(sample.accuracy_method, len(local), rows),
        options=options, engine="spark", sample_only=True,
        # each sample customer's previous segment: every customer's is not in the driver
        lineage=None if sample.lineage is None else replace(sample.lineage, previous_labels=None),
        timings={**{f"sample-{k}": v for k, v in sample.timings.items()}, **lap.timings},
        assignments=scored.select(*(["id"] if id_field else []), "clusterId", "clusterName",
                                  "confidence", "ambiguous"),
    )  # fmt: skip
