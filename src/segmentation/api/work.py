"""What a worker process does with a request body: parse, validate, analyze, serialize.

The whole request runs in the worker, so the server process only moves bytes: parsing 10 MB of
JSON or serializing 100,000 customers never blocks the event loop.
"""

from __future__ import annotations

import gc
from typing import NamedTuple

from pydantic import ValidationError

from segmentation.analysis import analyze
from segmentation.api.convert import (
    analysis_to_wire,
    dumps,
    parse_json,
    problems_from_validation,
    server_timing,
)
from segmentation.api.schemas import AnalyzeRequest
from segmentation.errors import InvalidInputError, Problem
from segmentation.pipeline.search import SEARCH_SAMPLE_SIZE
from segmentation.results import Analysis
from segmentation.synthetic import make_population

__all__ = ["AnalyzeOutput", "analyze_body", "warm_up"]


def warm_up() -> None:
    """Run one analysis at the search-sample size, so that a worker's first real request does
    not pay for lazy imports, first calls into scipy and scikit-learn, and the allocator's
    first growth to sample-sized arrays (measured: +40% on a cold worker's first 1,000)."""
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


def _analyze(request: AnalyzeRequest, max_fields: int) -> Analysis:
    options = request.options
    return analyze(
        request.customerData,
        algorithm=options.algorithm,
        n_clusters=options.nClusters,
        k_range=options.kRange,
        features=options.features,
        exclude=options.exclude,
        random_state=options.randomState,
        eps=options.eps,
        min_samples=options.minSamples,
        max_fields=max_fields,
    )


class AnalyzeOutput(NamedTuple):
    body: bytes
    server_timing: str


def analyze_body(body: bytes, max_customers: int, max_fields: int) -> AnalyzeOutput:
    """An /api/analyze body in, the response body and its Server-Timing header out;
    `InvalidInputError` on bad input."""
    payload = parse_json(body)
    if not isinstance(payload, dict):
        raise InvalidInputError('the body must be a JSON object: {"customerData": [...]}')
    try:
        request = AnalyzeRequest.model_validate(payload)
    except ValidationError as error:
        raise problems_from_validation(error) from None
    if len(request.customerData) > max_customers:
        raise InvalidInputError(
            Problem(
                f"{len(request.customerData)} customers exceed the limit of {max_customers} "
                "per analysis (SEGMENTATION_MAX_CUSTOMERS)",
                field="customerData",
            )
        )
    options = request.options
    try:
        analysis = _analyze(request, max_fields)
    except InvalidInputError as error:
        raise _on_the_wire(error) from None
    payload = analysis_to_wire(
        analysis,
        request.customerData,
        include_customers=options.includeCustomers,
        include_customer_scores=options.includeCustomerScores,
    )
    return AnalyzeOutput(dumps(payload), server_timing(analysis.timings))
