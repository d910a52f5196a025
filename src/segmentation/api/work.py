"""What a worker process does with a request body: parse, validate, analyze, serialize.

The whole request runs in the worker, so the server process only moves bytes: parsing 10 MB of
JSON or serializing 100,000 customers never blocks the event loop.
"""

from __future__ import annotations

from pydantic import ValidationError

from segmentation.analysis import analyze
from segmentation.api.convert import analysis_to_wire, dumps, parse_json, problems_from_validation
from segmentation.api.schemas import AnalyzeRequest
from segmentation.errors import InvalidInputError, Problem

__all__ = ["analyze_body", "warm_up"]


def warm_up() -> int:
    """Import everything a request needs, so the first request does not pay for it."""
    import sklearn.cluster  # noqa: F401  (import cost is the point)

    return 0


def analyze_body(body: bytes, max_customers: int) -> bytes:
    """An /api/analyze body in, the response body out; `InvalidInputError` on bad input."""
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
    analysis = analyze(
        request.customerData,
        algorithm=options.algorithm,
        n_clusters=options.nClusters,
        k_range=options.kRange,
        features=options.features,
        exclude=options.exclude,
        random_state=options.randomState,
        eps=options.eps,
        min_samples=options.minSamples,
    )
    return dumps(
        analysis_to_wire(
            analysis,
            request.customerData,
            include_customers=options.includeCustomers,
            include_customer_scores=options.includeCustomerScores,
        )
    )
