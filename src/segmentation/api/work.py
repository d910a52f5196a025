"""What a worker process does with a request body: parse, validate, analyze, serialize.

The whole request runs in the worker, so the server process only moves bytes: parsing 10 MB of
JSON or serializing 100,000 customers never blocks the event loop.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import hashlib
import os
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import orjson
from pydantic import ValidationError

from segmentation.analysis import analyze
from segmentation.api.convert import (
    analysis_to_wire,
    dumps,
    parse_json,
    problems_from_validation,
    server_timing,
)
from segmentation.api.schemas import AnalyzeOptions, AnalyzeRequest, AssignRequest
from segmentation.assign import assign
from segmentation.config import Settings
from segmentation.errors import InvalidInputError, Problem
from segmentation.pipeline.search import SEARCH_SAMPLE_SIZE
from segmentation.results import Analysis
from segmentation.storage.store import AnalysisStore, UnknownAnalysisError
from segmentation.synthetic import make_population

__all__ = [
    "AnalyzeOutput",
    "analyze_body",
    "assign_body",
    "die_with_parent",
    "keep_bounded",
    "parse_request",
    "run_analysis",
    "store_analysis",
    "warm_up",
]


PR_SET_PDEATHSIG = 1  # linux/prctl.h


def die_with_parent() -> None:
    """In a worker: have the kernel kill this process when the server dies, even by SIGKILL,
    so that no orphan keeps running (and writing) a request nobody will collect."""
    with contextlib.suppress(OSError, AttributeError):  # not Linux: the pipes still end it
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() == 1:  # the server died before the line above ran
        os._exit(1)


def warm_up() -> None:
    """Run one analysis at the search-sample size, so that a worker's first real request does
    not pay for lazy imports, first calls into scipy and scikit-learn, and the allocator's
    first growth to sample-sized arrays (measured: +40% on a cold worker's first 1,000)."""
    die_with_parent()
    analyze(make_population(SEARCH_SAMPLE_SIZE, 3, random_state=0).frame)
    # the ML stack is hundreds of thousands of long-lived objects: keep them out of every
    # later full garbage collection
    gc.collect()
    gc.freeze()


# the core names options as the library spells them; the wire as the request does
OPTION_NAMES = {
    "algorithm": "algorithm", "n_clusters": "nClusters", "k_range": "kRange",
    "features": "features", "exclude": "exclude", "eps": "eps", "min_samples": "minSamples",
}  # fmt: skip


def _on_the_wire(error: InvalidInputError) -> InvalidInputError:
    """The same problems with option names as the request spells them (`options.nClusters`)."""
    problems = []
    for problem in error.problems:
        wire_name = OPTION_NAMES.get(problem.field or "")
        if wire_name is None:
            problems.append(problem)
            continue
        message = problem.message
        for core_name, camel_name in OPTION_NAMES.items():
            message = message.replace(core_name, camel_name)
        problems.append(Problem(message, problem.record, f"options.{wire_name}"))
    return type(error)(problems)


def run_analysis(
    customers: Any,
    options: AnalyzeOptions,
    max_fields: int,
    progress: Callable[[str, float], None] | None = None,
) -> Analysis:
    """`analyze` with the wire's options; option problems are named as the request names them."""
    try:
        return analyze(
            customers,
            algorithm=options.algorithm,
            n_clusters=options.nClusters,
            k_range=options.kRange,
            features=options.features,
            exclude=options.exclude,
            random_state=options.randomState,
            eps=options.eps,
            min_samples=options.minSamples,
            max_fields=max_fields,
            progress=progress,
        )
    except InvalidInputError as error:
        raise _on_the_wire(error) from None


CustomersRequest = TypeVar("CustomersRequest", AnalyzeRequest, AssignRequest)


def parse_request(
    body: bytes, settings: Settings, model: type[CustomersRequest]
) -> tuple[dict[str, Any], CustomersRequest]:
    """A body carrying `customerData` as its raw payload and validated request."""
    payload = parse_json(body)
    if not isinstance(payload, dict):
        raise InvalidInputError('the body must be a JSON object: {"customerData": [...]}')
    try:
        request = model.model_validate(payload)
    except ValidationError as error:
        raise problems_from_validation(error) from None
    if len(request.customerData) > settings.max_customers:
        raise InvalidInputError(
            Problem(
                f"{len(request.customerData)} customers exceed the limit of "
                f"{settings.max_customers} per request (SEGMENTATION_MAX_CUSTOMERS)",
                field="customerData",
            )
        )
    return payload, request


def store_analysis(
    store: AnalysisStore,
    analysis: Analysis,
    records: Sequence[Mapping[str, Any]],
    options: AnalyzeOptions,
    cache_key: str | None,
) -> tuple[str, bytes]:
    """Serialize the response (with its new analysisId) and store it; returns both."""
    analysis_id = store.new_id()
    wire = analysis_to_wire(
        analysis,
        records,
        include_customers=options.includeCustomers,
        include_customer_scores=options.includeCustomerScores,
    )
    wire["analysisId"] = analysis_id
    response = dumps(wire)
    summary = dumps(
        {
            **{k: v for k, v in wire.items() if k != "customerScores"},
            "clusters": [{**c, "customers": []} for c in wire["clusters"]],
        }
    )
    store.save(analysis_id, analysis, response, summary, analysis.customer_ids, cache_key)
    return analysis_id, response


def keep_bounded(store: AnalysisStore, settings: Settings) -> None:
    """After a save: the cache answers the most recent requests, the disk keeps the most
    recently used analyses."""
    if settings.cache:
        store.evict_cache(settings.cache_max_entries)
    store.enforce_retention(settings.max_stored_analyses)


class AnalyzeOutput(NamedTuple):
    body: bytes
    server_timing: str
    cache: str  # "hit", "miss" or "off", sent as X-Cache


def cache_key(payload: dict[str, Any], request: AnalyzeRequest) -> str:
    """Same customers, same options (defaults filled in), same code: same key, whatever the
    key order in the JSON."""
    canonical = {"customerData": payload["customerData"], "options": request.options.model_dump()}
    digest = hashlib.sha256(CODE_VERSION.encode())
    digest.update(orjson.dumps(canonical, option=orjson.OPT_SORT_KEYS))
    return digest.hexdigest()


def _code_version() -> str:
    """A digest of this package's source: a new release never answers from an old cache."""
    digest = hashlib.sha256()
    package = Path(__file__).resolve().parents[1]
    for source in sorted(package.rglob("*.py")):
        digest.update(source.read_bytes())
    return digest.hexdigest()[:16]


CODE_VERSION = _code_version()


def analyze_body(body: bytes, settings: Settings) -> AnalyzeOutput:
    """An /api/analyze body in, the response body, its Server-Timing header and cache status
    out; the analysis is stored under a new `analysisId`. `InvalidInputError` on bad input."""
    payload, request = parse_request(body, settings, AnalyzeRequest)
    store = AnalysisStore(settings.data_dir)
    key = cache_key(payload, request) if settings.cache else None
    if key is not None:
        started = time.perf_counter()
        cached = store.cached(key)
        if cached is not None:
            with contextlib.suppress(UnknownAnalysisError):  # deleted since: compute anew
                body = store.read_response(cached)
                lookup = {"cache": time.perf_counter() - started}
                return AnalyzeOutput(body, server_timing(lookup), "hit")
    analysis = run_analysis(request.customerData, request.options, settings.max_fields)
    _, response = store_analysis(store, analysis, request.customerData, request.options, key)
    keep_bounded(store, settings)
    return AnalyzeOutput(response, server_timing(analysis.timings), "miss" if key else "off")


def assign_body(body: bytes, analysis_id: str, settings: Settings) -> bytes:
    """A /api/analyses/{id}/assign body in, the scored customers out (in a worker process)."""
    _, request = parse_request(body, settings, AssignRequest)
    fitted = AnalysisStore(settings.data_dir).fitted(analysis_id)
    scored = assign(fitted, request.customerData)
    id_field = fitted.encoder.schema.id_field
    rows = []
    for index, customer in enumerate(request.customerData):
        label = int(scored.labels[index])
        row: dict[str, Any] = {"index": index}
        if id_field is not None and id_field in customer:
            row["id"] = customer[id_field]
        row.update(
            clusterId=label,
            clusterName=scored.segment_names[label],
            confidence=round(float(scored.confidence[index]), 4),
            ambiguous=bool(scored.ambiguous[index]),
        )
        rows.append(row)
    return dumps({"analysisId": analysis_id, "assignments": rows, "warnings": scored.warnings})
