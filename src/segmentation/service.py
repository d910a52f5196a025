"""The service layer: analyze -> store -> cache -> retain, assign, advice, charts, report.

HTTP (in its worker processes), the job runner and the CLI all call this module, and none of
them repeats it. It reads requests as plain JSON values (no web framework, no pydantic): the
same checks and the same messages whichever door a request came through. A service object is
small and picklable, so a worker process receives it with each task.

Every call that stores or names an analysis takes `tenant` (the tenant of the caller's API
key; None with SEGMENTATION_AUTH=off and in the CLI, which then see every analysis): a tenant
stores under its own name, reads only its own, and is never answered from another's cache.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, cast

import numpy as np
import orjson
import pandas as pd
import pyarrow.parquet as pq

from segmentation.analysis import analyze, previous_segmentation
from segmentation.assign import Assignment, assign, assignment_table, fitted_of, learned_numbers
from segmentation.bulk_json import (
    Customers,
    assignments_json,
    decode_customer_columns,
    write_analysis_json,
)
from segmentation.charts import chart_data_of, render
from segmentation.config import Settings
from segmentation.errors import InvalidInputError, Problem, SegmentationError
from segmentation.files import read_customer_file
from segmentation.options import AnalysisOptions, on_the_wire
from segmentation.pipeline.ingest import ingest
from segmentation.pipeline.lineage import PreviousSegmentation
from segmentation.pipeline.schema import infer_schema
from segmentation.recommend import Recommendation, SegmentSummary, recommend
from segmentation.report import render_report
from segmentation.results import Analysis, Outcome
from segmentation.serialize import analysis_to_wire, dumps, parse_json, server_timing
from segmentation.storage.database import check_id
from segmentation.storage.model_file import load_fitted, save_fitted
from segmentation.storage.store import RESPONSE_BUFFER, AnalysisStore, UnknownAnalysisError

__all__ = [
    "CODE_VERSION",
    "AnalyzeOutput",
    "AnalyzeRequest",
    "SegmentationService",
    "cache_key",
    "previous_of",
    "read_analyze_request",
    "read_customers_request",
    "read_spark_job",
    "write_results",
]

Progress = Callable[[str, float], None]


# a preview reads a file's first rows: more is refused rather than analysed for nothing
FIELD_PREVIEW_CUSTOMERS = 10_000

SPARK_MASTER_UNSET = Problem(
    'jobs with "engine": "spark" need SEGMENTATION_SPARK_MASTER (a Spark master URL such as '
    "local[2] or spark://host:7077); it is not set on this server",
    field="engine",
)


@dataclass(frozen=True)
class SparkJobRequest:
    """A `POST /api/jobs` body naming data for the Spark engine: `{"source": "<path or
    URI>", "engine": "spark", "options": {...}}`."""

    source: str
    options: AnalysisOptions


def read_spark_job(payload: Any, spark_master: str | None) -> SparkJobRequest:
    """The body checked: its keys, the engine, the source, the options, and the setting."""
    if not isinstance(payload, Mapping):
        raise InvalidInputError('the body must be a JSON object: {"source": ..., "engine": ...}')
    allowed = ("source", "engine", "options")
    problems = [
        Problem(f"unknown key {k!r}; a Spark job takes 'source', 'engine', 'options'", field=k)
        for k in payload
        if k not in allowed
    ]
    if payload.get("engine") != "spark":
        problems.append(Problem('must be "spark" for a job that names a source', field="engine"))
    source = payload.get("source")
    if not isinstance(source, str) or not source.strip():
        problems.append(Problem("must be a path or URI the Spark cluster reads", field="source"))
    if problems:
        raise InvalidInputError(problems)
    if spark_master is None:
        raise InvalidInputError(SPARK_MASTER_UNSET)
    assert isinstance(source, str)
    return SparkJobRequest(source, AnalysisOptions.from_wire(payload.get("options")))


@dataclass(frozen=True)
class AnalyzeRequest:
    """An /api/analyze body, read: the customers as sent and the checked options."""

    customers: list[Any]
    options: AnalysisOptions


def _customer_list(payload: Any, allowed: Sequence[str], max_customers: int) -> list[Any]:
    """The body's `customerData`, with every problem of the body's shape named at once."""
    if not isinstance(payload, Mapping):
        raise InvalidInputError('the body must be a JSON object: {"customerData": [...]}')
    shown = ", ".join(repr(k) for k in allowed)
    problems = [
        Problem(f"unknown key {k!r}; the body takes {shown}", field=str(k))
        for k in payload
        if k not in allowed
    ]
    customers = payload.get("customerData")
    if "customerData" not in payload:
        problems.append(Problem("is required: a list of customers", field="customerData"))
    elif not isinstance(customers, list):
        problems.append(Problem("must be a list of customer objects", field="customerData"))
    elif len(customers) > max_customers:
        problems.append(
            Problem(
                f"{len(customers)} customers exceed the limit of {max_customers} per request "
                "(SEGMENTATION_MAX_CUSTOMERS)",
                field="customerData",
            )
        )
    if problems:
        raise InvalidInputError(problems)
    assert isinstance(customers, list)
    return customers


def read_analyze_request(payload: Any, max_customers: int) -> AnalyzeRequest:
    """`{"customerData": [...], "options": {...}}` checked: unknown keys, the list, its size,
    every option. The records themselves are checked by the analysis (record and field)."""
    customers = _customer_list(payload, ("customerData", "options"), max_customers)
    return AnalyzeRequest(customers, AnalysisOptions.from_wire(payload.get("options")))


def read_customers_request(payload: Any, max_customers: int) -> list[Any]:
    """`{"customerData": [...]}` of new customers to score (at least one)."""
    customers = _customer_list(payload, ("customerData",), max_customers)
    if not customers:
        raise InvalidInputError(Problem("must hold at least 1 customer", field="customerData"))
    return customers


def _code_version() -> str:
    """A digest of this package's source: a new release never answers from an old cache."""
    digest = hashlib.sha256()
    package = Path(__file__).resolve().parent
    for source in sorted(package.rglob("*.py")):
        digest.update(source.read_bytes())
    return digest.hexdigest()[:16]


CODE_VERSION = _code_version()


def cache_key(customers: Sequence[Any], options: AnalysisOptions, tenant: str | None = None) -> str:
    """Same customers, same options (defaults filled in), same code, same tenant: same key,
    whatever the key order in the JSON."""
    canonical: dict[str, Any] = {"customerData": customers, "options": options.cache_fields()}
    if tenant is not None:  # without a tenant the key is what it was before tenants
        canonical["tenant"] = tenant
    digest = hashlib.sha256(CODE_VERSION.encode())
    try:
        digest.update(orjson.dumps(canonical, option=orjson.OPT_SORT_KEYS))
    except TypeError:  # integers beyond 64 bits, which orjson refuses: the slow path
        digest.update(json.dumps(canonical, sort_keys=True, separators=(",", ":")).encode())
    return digest.hexdigest()


@dataclass(frozen=True)
class AnalyzeOutput:
    body: bytes
    server_timing: str
    cache: str  # "hit", "miss" or "off", sent as X-Cache


@dataclass(frozen=True)
class AssignOutput:
    body: bytes
    server_timing: str


class _Laps:
    """Seconds spent in each step of a request, for its Server-Timing header."""

    def __init__(self) -> None:
        self.timings: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, step: str | None) -> None:
        """The time since the last lap, added to `step` (None: timed elsewhere)."""
        now = time.perf_counter()
        if step is not None:
            self.timings[step] = self.timings.get(step, 0.0) + now - self._last
        self._last = now


class SegmentationService:
    """The analyses of one data folder, with the limits of the settings."""

    def __init__(self, settings: Settings, store: AnalysisStore | None = None) -> None:
        self.settings = settings
        self.store = store if store is not None else AnalysisStore(settings.data_dir)

    # -- analysing and storing -----------------------------------------------------------

    def run_analysis(
        self,
        customers: Any,
        options: AnalysisOptions,
        progress: Progress | None = None,
        tenant: str | None = None,
        input_notes: Sequence[str] = (),
    ) -> Analysis:
        """`analyze` with the service's limits, following `previousAnalysisId` when given
        (UnknownAnalysisError if it is not stored, or not the tenant's); option problems
        named as a request names them (`options.nClusters`); `input_notes` say what reading
        a file skipped."""
        previous = None
        if options.previous_analysis_id is not None:
            previous = self.store.previous(options.previous_analysis_id, tenant)
        try:
            return analyze(
                customers, options=options, max_fields=self.settings.max_fields,
                progress=progress, previous=previous, input_notes=input_notes,
            )  # fmt: skip
        except InvalidInputError as error:
            raise on_the_wire(error) from None

    def run_spark_analysis(
        self,
        source: str,
        options: AnalysisOptions,
        progress: Progress | None = None,
        tenant: str | None = None,
    ) -> Analysis:
        """The Spark engine on `source` (a path or URI the cluster reads), at
        SEGMENTATION_SPARK_MASTER, following `previousAnalysisId` as `run_analysis` does;
        the session is kept for the worker's next job."""
        from segmentation import spark

        if self.settings.spark_master is None:
            raise InvalidInputError(SPARK_MASTER_UNSET)
        previous = None
        if options.previous_analysis_id is not None:
            previous = self.store.previous(options.previous_analysis_id, tenant)
        session = spark.session(self.settings.spark_master)
        try:
            return spark.analyze(
                source, spark=session, options=options, max_fields=self.settings.max_fields,
                progress=progress, previous=previous,
            )  # fmt: skip
        except InvalidInputError as error:
            raise on_the_wire(error) from None

    def store_analysis(
        self,
        analysis: Analysis,
        customers: Customers,
        options: AnalysisOptions,
        key: str | None = None,
        tenant: str | None = None,
    ) -> str:
        """Store the analysis under a new id: its response (customers echoed from the records
        as sent or a file's frame, written to disk a batch at a time) and its summary; then
        keep the cache and the disk bounded. Returns the id."""
        analysis_id = self.store.new_id()
        summary = analysis_to_wire(analysis, None, include_customers=False)
        summary["analysisId"] = analysis_id

        def write_response(out: BinaryIO) -> None:
            write_analysis_json(
                out, analysis, customers, include_customers=options.include_customers,
                include_customer_scores=options.include_customer_scores,
                extra={"analysisId": analysis_id},
            )  # fmt: skip

        self.store.save(
            analysis_id, analysis, write_response, dumps(summary), analysis.customer_ids, key,
            tenant,
        )  # fmt: skip
        if self.settings.cache:
            self.store.evict_cache(self.settings.cache_max_entries)
        self.store.enforce_retention(self.settings.max_stored_analyses)
        return analysis_id

    def analyze_body(self, body: bytes, tenant: str | None = None) -> AnalyzeOutput:
        """An /api/analyze body in; the response, its Server-Timing (reading the body, each
        analysis stage, storing) and cache status out."""
        laps = _Laps()
        request = read_analyze_request(parse_json(body), self.settings.max_customers)
        key = None
        if self.settings.cache:
            key = cache_key(request.customers, request.options, tenant)
        laps.lap("read")
        if key is not None:
            cached = self.store.cached(key, tenant)
            if cached is not None:
                try:
                    stored = self.store.read_response(cached, tenant)
                except UnknownAnalysisError:  # deleted since: computed anew
                    pass
                else:
                    laps.lap("cache")
                    return AnalyzeOutput(stored, server_timing(laps.timings), "hit")
        analysis = self.run_analysis(request.customers, request.options, tenant=tenant)
        laps.timings.update(analysis.timings)  # stage by stage
        laps.lap(None)
        analysis_id = self.store_analysis(analysis, request.customers, request.options, key, tenant)
        response = self.store.read_response(analysis_id, tenant)
        laps.lap("store")
        return AnalyzeOutput(response, server_timing(laps.timings), "miss" if key else "off")

    # -- fields before a run -------------------------------------------------------------

    def field_roles(self, body: bytes) -> bytes:
        """`POST /api/fields`: the role the analysis would give each field of these
        customers (a file's first rows), why, and how its values would be read."""
        customers = read_customers_request(parse_json(body), FIELD_PREVIEW_CUSTOMERS)
        return dumps(_field_roles(customers, len(customers), ()))

    @staticmethod
    def file_field_roles(path: Path, kind: str, header: bool | None) -> bytes:
        """`POST /api/fields/file`: the same for a file's first rows, read as an analysis
        reads the whole file (its delimiter, header row, blank rows, decimal commas)."""
        read = read_customer_file(path, kind, FIELD_PREVIEW_CUSTOMERS, header)
        if read.frame.empty:
            raise InvalidInputError(Problem("the file holds no customers", field="file"))
        return dumps(_field_roles(read.frame, len(read.frame), read.notes))

    # -- scoring -------------------------------------------------------------------------

    def assign(self, analysis_id: str, customers: Any, tenant: str | None = None) -> Assignment:
        return assign(self.store.fitted(analysis_id, tenant), customers)

    def assign_body(self, analysis_id: str, body: bytes, tenant: str | None = None) -> AssignOutput:
        """An /api/analyses/{id}/assign body in, the scored customers and the Server-Timing
        (read, score, write) out.

        The usual body (customers holding only fields the segments saw) is read column by
        column and its rows written the same way (bulk_json.py); any other body, and any
        body with a problem, goes through the general reader, whose messages name the record
        and field."""
        laps = _Laps()
        fitted = self.store.fitted(analysis_id, tenant)
        id_field = fitted.encoder.schema.id_field
        columns = decode_customer_columns(
            body,
            [spec.name for spec in fitted.encoder.schema.fields],
            self.settings.max_customers,
            numbers=learned_numbers(fitted.encoder),
        )
        laps.lap("read")
        scored = None
        if columns is not None:
            with contextlib.suppress(SegmentationError):  # named by the general reader below
                scored = assign(fitted, columns)
        # each customer's id as sent (never a number pandas widened); None: not sent
        ids: Sequence[Any] | None = None
        if scored is not None and columns is not None:
            # (as sent: the id's role is never a number's, so it is never a decoded array)
            ids = cast(list[Any], columns.values.get(id_field)) if id_field is not None else None
        else:
            customers = read_customers_request(parse_json(body), self.settings.max_customers)
            laps.lap("read")
            scored = assign(fitted, customers)
            if id_field is not None and any(id_field in c for c in customers):
                ids = [c.get(id_field) for c in customers]
        laps.lap("score")
        written = None if ids is not None and None in ids else assignments_json(
            analysis_id, scored, ids
        )  # fmt: skip
        if written is None:
            rows = _assignment_rows(scored, ids)
            written = dumps({"analysisId": analysis_id, "assignments": rows,
                             "warnings": scored.warnings})  # fmt: skip
        laps.lap("write")
        return AssignOutput(written, server_timing(laps.timings))

    # -- what a stored analysis shows ----------------------------------------------------

    def analysis(self, analysis_id: str, tenant: str | None = None) -> Analysis:
        return self.store.analysis(analysis_id, tenant)

    def lineage(self, analysis_id: str, tenant: str | None = None) -> dict[str, Any]:
        """`GET /api/analyses/{id}/lineage`: the analysis and its ancestors, newest first,
        with their dates, sizes, segment names and what each refit reported."""
        chain, missing = self.store.ancestors(analysis_id, tenant)
        rows = []
        for stored in chain:
            try:
                summary = self.store.summary_dict(stored.analysis_id)
            except UnknownAnalysisError:  # deleted while the chain was read
                missing = stored.analysis_id
                break
            lineage = summary.get("lineage")
            rows.append(
                {
                    "analysisId": stored.analysis_id,
                    "createdAt": stored.created_at,
                    "customers": stored.customers,
                    "algorithm": stored.algorithm,
                    "accuracy": stored.accuracy,
                    "previousAnalysisId": stored.previous_id,
                    "segments": [
                        {
                            "clusterId": c["clusterId"],
                            "clusterName": c["clusterName"],
                            "size": c["size"],
                            **({"renamedFrom": c["renamedFrom"]} if "renamedFrom" in c else {}),
                        }
                        for c in summary["clusters"]
                    ],
                    "events": _event_counts(lineage),
                    "moved": None if lineage is None else lineage["moved"],
                    "customersCompared": None if lineage is None else lineage["customersCompared"],
                }
            )
        return {"analysisId": analysis_id, "chain": rows, "missingAnalysisId": missing}

    def recommendations(self, analysis_id: str, tenant: str | None = None) -> list[Recommendation]:
        """The advice of a stored analysis: the same call the report makes."""
        return recommend(self.store.analysis(analysis_id, tenant))

    @staticmethod
    def advise(
        segments: Sequence[SegmentSummary],
        accuracy: float | None,
        axes: Mapping[str, str] | None,
        outcomes: Sequence[Outcome] = (),
    ) -> list[Recommendation]:
        """Advice from the summaries a front end posts back."""
        return recommend(segments, accuracy=accuracy, axes=axes, outcomes=outcomes)

    def report(self, analysis_id: str, tenant: str | None = None) -> str:
        analysis = self.store.analysis(analysis_id, tenant)
        title = f"Customer segments — analysis {analysis_id}"
        return render_report(analysis, recommend(analysis), title)

    def chart(
        self, analysis_id: str, name: str, image_format: str, tenant: str | None = None
    ) -> bytes:
        analysis = self.store.analysis(analysis_id, tenant)
        return render(name, chart_data_of(analysis), image_format)


# distinct values shown per field in a preview
PREVIEW_EXAMPLES = 3


def _field_roles(customers: Any, count: int, notes: Sequence[str]) -> dict[str, Any]:
    """Each field's role, reason, reading and a few of its values, for a preview (repeated
    ids are no reason to withhold one: the first row of each is looked at)."""
    ingested = ingest(customers, min_customers=1, duplicate_ids="first")
    schema = infer_schema(ingested)
    frame = ingested.frame

    def examples(name: str) -> list[str]:
        if name not in frame:
            return []
        present = frame[name].dropna().astype(str)
        return [str(v) for v in present.unique()[:PREVIEW_EXAMPLES]]

    fields = [
        {"field": spec.name, "role": spec.role.value, "reason": spec.reason or None,
         "handling": "; ".join(spec.notes) or None, "examples": examples(spec.name)}
        for spec in schema.fields
    ]  # fmt: skip
    return {"customers": count, "fields": fields, "notes": list(notes)}


def _assignment_rows(scored: Assignment, ids: Sequence[Any] | None) -> list[dict[str, Any]]:
    """The rows of an assign response as dicts (what `assignments_json` cannot write)."""
    names = scored.segment_names
    columns = zip(
        scored.labels.tolist(), np.round(scored.confidence, 4).tolist(),
        scored.ambiguous.tolist(), strict=True,
    )  # fmt: skip
    rows = [
        {"index": index, "clusterId": label, "clusterName": names[label],
         "confidence": score, "ambiguous": ambiguous}
        for index, (label, score, ambiguous) in enumerate(columns)
    ]  # fmt: skip
    for row, customer_id in zip(rows, ids or (), strict=False):
        if customer_id is not None:
            row["id"] = customer_id
    return rows


def _event_counts(lineage: Mapping[str, Any] | None) -> dict[str, int] | None:
    if lineage is None:
        return None
    counts: dict[str, int] = {}
    for row in lineage["segments"]:
        counts[row["event"]] = counts.get(row["event"], 0) + 1
    return counts


def previous_of(reference: str, settings: Settings) -> PreviousSegmentation:
    """The previous analysis a refit follows, named by the CLI's --previous: a results
    folder of `segmentation analyze` (its model.json and assignments.csv), else the id of an
    analysis stored in the settings' data folder."""
    folder = Path(reference)
    if folder.is_dir():
        if not (folder / "model.json").is_file():
            raise InvalidInputError(
                Problem(
                    f"{folder} has no model.json (a `segmentation analyze` folder)",
                    field="--previous",
                )
            )
        fitted = load_fitted(folder)
        ids = labels = None
        table = None
        if (folder / "assignments.csv").is_file():
            table = pd.read_csv(folder / "assignments.csv")
        elif (folder / "assignments").is_dir():  # the Spark engine's, partitioned by clusterId
            columns = ["id", "clusterId"] if fitted.encoder.schema.id_field else ["clusterId"]
            table = pq.read_table(folder / "assignments", columns=columns).to_pandas()
        if table is not None:
            labels = table["clusterId"].to_numpy(dtype=np.int64)
            ids = table["id"].tolist() if "id" in table else None
        return previous_segmentation(
            fitted, analysis_id=str(folder), customer_ids=ids, labels=labels
        )
    check_id(reference, "previousAnalysisId")
    return AnalysisStore(settings.data_dir).previous(reference)


def _markdown(source: str, n_customers: int, advice: Sequence[Recommendation]) -> str:
    lines = [f"# Recommendations for {source}", "", f"{n_customers} customers.", ""]
    lines += [f"{i}. {r.text}" for i, r in enumerate(advice, start=1)]
    return "\n".join(lines) + "\n"


def write_results(analysis: Analysis, customers: Customers, out: Path, source: str) -> list[str]:
    """An analysis as files in `out`: analysis.json, assignments.csv (a Spark analysis:
    assignments/ as partitioned Parquet), recommendations.md, report.html, the charts as PNG
    and the model that `assign` reads; returns their names."""
    out.mkdir(parents=True, exist_ok=True)
    with (out / "analysis.json").open("wb", buffering=RESPONSE_BUFFER) as response:
        write_analysis_json(response, analysis, customers)
    if analysis.assignments is not None:  # the Spark engine: written where the data lives
        analysis.assignments.write.mode("overwrite").partitionBy("clusterId").parquet(
            str(out / "assignments")
        )
        assignments = "assignments/ (Parquet, partitioned by clusterId)"
    else:
        names = {segment.segment_id: segment.name for segment in analysis.segments}
        assignment_table(
            analysis.labels, analysis.confidence, analysis.ambiguous, names,
            analysis.customer_ids, analysis.input_rows,
        ).to_csv(out / "assignments.csv", index=False)  # fmt: skip
        assignments = "assignments.csv"
    advice = recommend(analysis)
    (out / "recommendations.md").write_text(_markdown(source, analysis.n_customers, advice))
    save_fitted(fitted_of(analysis), out)
    charts = chart_data_of(analysis)
    for name in charts.available():
        (out / f"{name}.png").write_bytes(render(name, charts, "png"))
    (out / "report.html").write_text(
        render_report(analysis, advice, f"Customer segments — {source}")
    )
    written = ["analysis.json", assignments, "recommendations.md", "report.html"]
    return [*written, *(f"{name}.png" for name in charts.available()), "model.json", "model.npz"]
