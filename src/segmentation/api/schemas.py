"""Wire schemas: the seed's camelCase JSON, as the OpenAPI document describes it.

The bodies of /api/analyze, /api/jobs and assign are read raw (for speed and size limits) and
checked by the service layer (`segmentation.service`, `segmentation.options`); the request
models here are generated from the same declaration (`OPTIONS`), so the documented constraints
are the enforced ones (`tests/unit/test_schemas.py` checks they agree). The response models
are the exact shape `segmentation.serialize` emits: `extra="forbid"`, and tests validate real
responses against them.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, create_model, model_validator

from segmentation.options import OPTIONS, OptionSpec, describe_default
from segmentation.storage.database import ID_PATTERN

__all__ = [
    "ACCURACY_DOC",
    "AnalysisId",
    "AnalysisResponse",
    "AnalyzeOptions",
    "AnalyzeRequest",
    "AssignRequest",
    "AssignResponse",
    "ErrorResponse",
    "JobOut",
    "RecommendationsRequest",
    "RecommendationsResponse",
    "TransactionsSpec",
]

ACCURACY_DOC = (
    "How reproducible the segmentation is, in [0, 1]: resampling stability (Hennig's "
    "clusterboot). The chosen method is refit on bootstrap resamples; each segment is matched "
    "to its best counterpart by Jaccard similarity; the mean is weighted by segment size. Above "
    "0.75 is usually read as stable, below 0.5 as no real structure. Capped at 0.5 when the "
    "segments separate no better than uniform data (gap statistic); null when it cannot be "
    "measured (fewer than 20 customers)."
)
IMPORTANCE_DOC = (
    "One weight per original input field, summing to 1: the share of customers whose segment "
    "changes when that field is shuffled (one-hot parts of a field shuffled together)."
)
CONFIDENCE_DOC = (
    "Mean over the segment's customers of the simplified silhouette (b - a) / max(a, b), a the "
    "distance to the own segment centre and b to the next nearest. Below 0.1 a customer is "
    "flagged ambiguous."
)
ID_REGEX = f"^{ID_PATTERN.pattern}$"
AnalysisId = Annotated[str, Field(pattern=ID_REGEX, description="22 characters of A-Z a-z 0-9 _ -")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class _Out(BaseModel):
    """A response model: exactly the keys the server sends."""

    model_config = ConfigDict(extra="forbid")


# --------------------------------------------------------------------------- errors


class ErrorItem(_Out):
    record: int | None = Field(description="0-based position of the customer at fault, if any.")
    field: str | None = Field(description="The field or option at fault, if any.")
    message: str


class ErrorResponse(_Out):
    """Every 4xx and 5xx: a sentence, and each problem with its record and field."""

    detail: str
    errors: list[ErrorItem]


# --------------------------------------------------------------------------- requests


def _option_field(spec: OptionSpec) -> tuple[Any, Any]:
    """The pydantic type and Field of one option, from its declaration."""
    bounds: dict[str, Any] = {}
    if spec.minimum is not None:
        bounds["gt" if spec.exclusive_minimum else "ge"] = spec.minimum
    if spec.maximum is not None:
        bounds["le"] = spec.maximum
    kinds: dict[str, Any] = {
        "bool": bool,
        "int": Annotated[int, Field(**bounds)],
        "float": Annotated[float, Field(allow_inf_nan=False, **bounds)],
        "choice": Literal[spec.choices] if spec.choices else str,
        "int_pair": Annotated[
            list[Annotated[int, Field(**bounds)]], Field(min_length=2, max_length=2)
        ],
        "names": Annotated[list[str], Field(min_length=spec.min_items)],
        "id": Annotated[str, Field(pattern=ID_REGEX)],
    }
    kind = kinds[spec.kind]
    if spec.nullable:
        kind = kind | None
    default = list(spec.default) if isinstance(spec.default, tuple) else spec.default
    description = f"{spec.description} Default: {describe_default(spec)}."
    return kind, Field(default, description=description)


AnalyzeOptions = create_model(  # type: ignore[call-overload]  # fields built from OPTIONS
    "AnalyzeOptions",
    __base__=_Strict,
    __doc__="How to segment. Every key is optional.",
    **{spec.wire: _option_field(spec) for spec in OPTIONS},
)


# the README's request: what a client generated from the document sends first
EXAMPLE_CUSTOMERS: list[JsonValue] = [
    {"id": 1, "age": 35, "gender": "Male", "income": 75000, "purchases": 12, "region": "North"},
    {"id": 2, "age": 22, "gender": "Female", "income": 28000, "purchases": 25, "region": "South"},
    {"id": 3, "age": 58, "gender": "Female", "income": 120000, "purchases": 4, "region": "East"},
    {"id": 4, "age": 41, "gender": "Male", "income": 64000, "purchases": 9, "region": "North"},
    {"id": 5, "age": 29, "gender": "Female", "income": 31000, "purchases": 21, "region": "West"},
    {"id": 6, "age": 63, "gender": "Male", "income": 98000, "purchases": 6, "region": "East"},
]
# an /api/analyze response cut to what advice reads: the clusters' names, centroids and sizes
EXAMPLE_ANALYSIS: dict[str, JsonValue] = {
    "clusters": [
        {
            "clusterId": 0,
            "clusterName": "Budget Shoppers",
            "centroid": {"income": 28000, "purchases": 25},
            "size": 40,
        },
        {
            "clusterId": 1,
            "clusterName": "Affluent Occasional Buyers",
            "centroid": {"income": 110000, "purchases": 5},
            "size": 25,
        },
    ],
    "accuracy": 0.82,
}
Customer = Annotated[
    dict[str, Any],
    Field(description="One customer: any fields (numbers, text, booleans, ISO dates, null)."),
]


class AnalyzeRequest(_Strict):
    """The seed's request: customers as objects with any fields, plus optional options."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"customerData": EXAMPLE_CUSTOMERS, "options": {"randomState": 0}}]
        }
    )

    customerData: list[Customer] = Field(
        min_length=2,
        description="One object per customer (at least 2), any fields (numbers, text, "
        "booleans, ISO dates, null).",
    )
    options: AnalyzeOptions = Field(default_factory=AnalyzeOptions)


class AssignRequest(_Strict):
    """New customers to score into a stored analysis' segments."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"customerData": EXAMPLE_CUSTOMERS}]})

    customerData: list[Customer] = Field(
        min_length=1, description="One object per customer, with the fields of the analysis."
    )


class FieldsRequest(_Strict):
    """The first rows of a file (at most 10,000), to see each field's role before a run."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"customerData": EXAMPLE_CUSTOMERS}]})

    customerData: list[Customer] = Field(min_length=1, max_length=10_000)


FieldRole = Literal["id", "numeric", "boolean", "categorical", "date", "outcome", "ignored"]


class FieldRoleOut(_Out):
    field: str
    role: FieldRole
    reason: str | None = Field(
        description="Why the field has its role: an identifier, an outcome (reported per "
        "segment, never a feature), or why it is ignored."
    )
    handling: str | None = Field(
        None, description="How its values are read: blanks, placeholders, decimal commas, bands."
    )
    examples: list[str] = Field(default_factory=list, description="A few of its values, as text.")


class FieldsOut(_Out):
    customers: int
    fields: list[FieldRoleOut]
    notes: list[str] = Field(
        default_factory=list,
        description="What reading a file skipped or assumed (blank rows, no header row).",
    )


class SparkJobRequest(_Strict):
    """A job for the Spark engine: data the cluster reads (needs SEGMENTATION_SPARK_MASTER)."""

    source: str = Field(
        min_length=1,
        description="A path or URI Spark reads: a Parquet file or folder, CSV, JSON Lines.",
    )
    engine: Literal["spark"]
    options: AnalyzeOptions = Field(default_factory=AnalyzeOptions)


class TransactionsSpec(_Strict):
    """With a job's file of orders: the columns to derive one row per customer from (RFM)."""

    customerId: str
    date: str
    amount: str | None = None
    quantity: str | None = None
    price: str | None = None
    invoice: str | None = Field(
        None, description='"C" + digits among invoices of digits marks a cancellation'
    )
    asOf: str | None = Field(None, description="the day recency counts to; default the last")


# a centroid value that is NaN or infinite cannot be compared with an average
FiniteNumber = Annotated[float, Field(allow_inf_nan=False)]


class OutcomeValue(_Out):
    """An outcome in one segment: its rate (share at the positive level) or its mean; null
    when no customer of the segment has a value."""

    rate: FiniteNumber | None = None
    mean: FiniteNumber | None = None


class OutcomeOut(_Out):
    """An outcome field (churn, response): reported per segment, never used to segment."""

    field: str
    kind: Literal["rate", "mean"] = Field(
        description="rate: the share of customers at the positive level; mean: its average."
    )
    positive: str | None = Field(
        None, description="The level a rate counts ('Yes', '1', 'Attrited Customer')."
    )
    meaning: Literal["loss", "risk", "gain"] | None = Field(
        None,
        description="loss: customers leaving (churn, attrition); risk: default, fraud, claims; "
        "gain: to repeat (response, conversion); null: unknown.",
    )
    overall: FiniteNumber | None = Field(None, description="Over every customer with a value.")


class ClusterIn(BaseModel):
    """A cluster as /api/analyze returned it; customers may have been dropped."""

    model_config = ConfigDict(extra="allow")

    clusterId: int
    clusterName: str
    centroid: dict[str, FiniteNumber | None]
    characteristics: list[str] = Field(default_factory=list)
    customers: list[Any] | None = None
    size: int | None = Field(None, ge=0)
    stability: float | None = None
    isOutliers: bool = False
    outcomes: dict[str, OutcomeValue] = Field(default_factory=dict)


class FieldIn(BaseModel):
    model_config = ConfigDict(extra="allow")

    field: str
    axis: str | None = None


class DataQualityIn(BaseModel):
    model_config = ConfigDict(extra="allow")

    fields: list[FieldIn] = Field(default_factory=list)


class AnalysisIn(BaseModel):
    model_config = ConfigDict(extra="allow")

    clusters: list[ClusterIn] = Field(min_length=1)
    accuracy: float | None = None
    dataQuality: DataQualityIn | None = None
    outcomes: list[OutcomeOut] = Field(default_factory=list)

    def axes(self) -> dict[str, str] | None:
        """Field -> business axis as the analysis reported them, if it did."""
        if self.dataQuality is None:
            return None
        return {f.field: f.axis for f in self.dataQuality.fields if f.axis is not None}


class RecommendationsRequest(BaseModel):
    """Either the analysis itself or the id of a stored one (exactly one of the two)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "oneOf": [{"required": ["analysis"]}, {"required": ["analysisId"]}],
            "examples": [{"analysis": EXAMPLE_ANALYSIS}],
        },
    )

    analysis: AnalysisIn | None = None
    analysisId: AnalysisId | None = None

    @model_validator(mode="before")
    @classmethod
    def _one_source(cls, data: Any) -> Any:
        given = (
            {key for key in ("analysis", "analysisId") if data.get(key) is not None}
            if isinstance(data, dict)
            else set()
        )
        if isinstance(data, dict) and len(given) != 1:
            raise ValueError(
                'give either "analysis" (an /api/analyze response) or "analysisId", not both'
                if len(given) == 2
                else 'give "analysis" (an /api/analyze response) or "analysisId"'
            )
        return data


# --------------------------------------------------------------------------- responses


class ClusterOut(_Out):
    clusterId: int
    customers: list[dict[str, Any]] = Field(description="The customers exactly as sent.")
    centroid: dict[str, float | None] = Field(
        description="Mean of each numeric field in original units (booleans: share true)."
    )
    clusterName: str = Field(description="A business name, unique within the analysis.")
    characteristics: list[str] = Field(description="Large, significant differences, with numbers.")
    size: int
    share: float
    confidence: float = Field(description=CONFIDENCE_DOC)
    stability: float | None = Field(
        description="This segment's mean best-match Jaccard over resamples (null: not measurable)."
    )
    ambiguousShare: float
    isOutliers: bool
    categories: dict[str, dict[str, float]] = Field(
        description="Share of each level of each categorical field."
    )
    standardized: dict[str, float] = Field(
        description="Segment mean minus overall mean in overall standard deviations, per field."
    )
    renamedFrom: str | None = Field(
        None, description="The name a segment that persists carried in the previous analysis."
    )
    outcomes: dict[str, OutcomeValue] = Field(
        default_factory=dict,
        description="Each outcome field's rate or mean in the segment (see the top-level "
        "outcomes).",
    )


class MetricsOut(_Out):
    silhouette: float | None
    calinskiHarabasz: float | None
    daviesBouldin: float | None
    surrogateFidelity: float | None
    sampleSize: int
    structureGap: float | None = Field(description="Gap(k) - Gap(1) of the gap statistic.")
    structureGapError: float | None


class ChosenOut(_Out):
    algorithm: str
    k: int


class CandidateOut(_Out):
    algorithm: str
    k: int
    predictionStrength: float | None = Field(
        description="Median over the half-sample splits; null: not measured."
    )
    predictionStrengthQuartiles: list[float | None] | None
    stable: bool
    silhouette: float | None
    calinskiHarabasz: float | None
    daviesBouldin: float | None
    noiseShare: float | None
    note: str
    chosen: bool


class KSelectionOut(_Out):
    method: str
    chosen: ChosenOut
    reason: str
    sampleSize: int
    candidates: list[CandidateOut]


class FieldOut(_Out):
    field: str
    role: str
    missing: int
    handling: str
    reason: str | None = None
    axis: str | None = None


class IgnoredOut(_Out):
    field: str
    reason: str


class DataQualityOut(_Out):
    records: int
    fields: list[FieldOut]
    ignoredFields: list[IgnoredOut]
    warnings: list[str]


class CustomerScoreOut(_Out):
    index: int
    id: Any = None
    clusterId: int
    confidence: float
    ambiguous: bool
    previousClusterId: int | None = Field(
        None, description="With previousAnalysisId: the customer's segment then (null: new)."
    )


class LineageSegmentOut(_Out):
    """What became of one segment between the previous analysis and this one."""

    clusterId: int | None = Field(description="Null: the previous segment disappeared.")
    clusterName: str | None
    previousClusterId: int | None = Field(description="Null: the segment emerged.")
    previousClusterName: str | None
    event: Literal["survived", "split", "merged", "emerged", "disappeared"]
    jaccard: float | None = Field(None, description="Matched by customers: their overlap.")
    distance: float | None = Field(None, description="Matched by centroids: how far apart.")


class TransitionOut(_Out):
    """Customers of both analyses that moved from one segment to another."""

    from_: int | None = Field(alias="from", description="The previous segment (null: new).")
    to: int | None
    customers: int


class FieldDriftOut(_Out):
    field: str
    previousMean: float | None
    mean: float | None
    standardizedShift: float | None
    psi: float | None = Field(description="Population stability index of the field.")


class LineageOut(_Out):
    """With previousAnalysisId: how the segments and fields moved since that analysis."""

    previousAnalysisId: str | None
    matchedBy: Literal["customers", "centroids"]
    segments: list[LineageSegmentOut]
    transitions: list[TransitionOut]
    customersCompared: int
    moved: int
    drift: list[FieldDriftOut]
    nextClusterId: int


class ChainSegmentOut(_Out):
    clusterId: int
    clusterName: str
    size: int
    renamedFrom: str | None = None


class ChainLinkOut(_Out):
    """One analysis of a lineage: when, how many customers, its segments, and what its refit
    reported against the analysis before it (null for the first one)."""

    analysisId: str
    createdAt: float = Field(description="Seconds since the epoch.")
    customers: int
    algorithm: str
    accuracy: float | None
    previousAnalysisId: str | None
    segments: list[ChainSegmentOut]
    events: dict[str, int] | None = Field(description="How many segments of each event.")
    moved: int | None
    customersCompared: int | None


class LineageChainOut(_Out):
    """The analysis and its ancestors, newest first."""

    analysisId: str
    chain: list[ChainLinkOut]
    missingAnalysisId: str | None = Field(
        description="The first ancestor no longer stored (deleted), where the chain stops."
    )


class AnalysisResponse(_Out):
    clusters: list[ClusterOut]
    featureImportance: dict[str, float] = Field(description=IMPORTANCE_DOC)
    accuracy: float | None = Field(description=ACCURACY_DOC)
    outcomes: list[OutcomeOut] = Field(
        default_factory=list,
        description="Outcome fields (churn, response): reported per cluster, never a feature.",
    )
    accuracyMethod: str
    algorithm: str
    metrics: MetricsOut
    kSelection: KSelectionOut
    dataQuality: DataQualityOut
    randomState: int
    options: dict[str, Any] = Field(description="The options in force, defaults filled in.")
    customerScores: list[CustomerScoreOut] | None = None
    lineage: LineageOut | None = None
    analysisId: str = Field(description="Where it is stored: GET /api/analyses/{analysisId}.")


class StoredAnalysisOut(_Out):
    analysisId: str
    createdAt: float
    customers: int
    segments: int
    algorithm: str
    accuracy: float | None


class AnalysesOut(_Out):
    analyses: list[StoredAnalysisOut]


class AssignmentOut(_Out):
    index: int
    id: Any = None
    clusterId: int
    clusterName: str
    confidence: float
    ambiguous: bool


class AssignResponse(_Out):
    analysisId: str
    assignments: list[AssignmentOut]
    warnings: list[str]


class CitedFigure(_Out):
    """A number a recommendation rests on, and what its sentence claims of it."""

    label: str = Field(description="The business axis: one field, or the sum of several.")
    value: float | None = Field(description="The segment's value (centroid, or sum of centroids).")
    average: float | None = Field(description="The customer-weighted average over all segments.")
    direction: Literal["above", "below", "near"] = Field(
        description="What the sentence claims: above or below the average, or near it (within "
        "0.8x-1.25x)."
    )
    percent: bool = Field(
        False, description="A rate or a share (0.59), which the sentence writes as 59%."
    )


class Action(_Out):
    segment: str | None
    clusterId: int | None
    action: str
    rationale: str
    priority: int = Field(description="1 = act first; per-segment actions by size x value.")
    impact: float
    figures: list[CitedFigure] = Field(
        default_factory=list, description="The figures the rationale cites, each with its claim."
    )


class RecommendationsResponse(_Out):
    recommendations: list[str]
    actions: list[Action]


class JobLinks(_Out):
    self: str
    result: str


class JobOut(_Out):
    jobId: str
    status: Literal["queued", "running", "succeeded", "failed", "cancelled"]
    stage: str
    progress: float
    createdAt: float
    startedAt: float | None
    finishedAt: float | None
    error: str | None
    analysisId: str | None
    attempts: int
    links: JobLinks


class HealthOut(_Out):
    status: Literal["ok"]
    version: str
    workers: int
    pending: int
    maxPending: int


# --------------------------------------------------------------------------- keys and audit


class KeyRequest(_Strict):
    """A new API key, of the caller's own tenant (the CLI creates keys of any tenant)."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"name": "nightly-job", "scope": "read"}]}
    )

    name: str = Field(
        min_length=1,
        max_length=100,
        pattern=r"^[^\x00-\x1f\x7f]*[^\x00-\x20\x7f][^\x00-\x1f\x7f]*$",
        description="What the key is for: one line, not only spaces.",
    )
    scope: Literal["read", "write", "admin"] = Field(
        description="read: GET; write: read plus analyses, jobs, assign, advice and deletes; "
        "admin: write plus keys and the audit trail."
    )


class KeyOut(_Out):
    """A stored key: never the key itself."""

    keyId: str
    tenant: str
    name: str
    scope: Literal["read", "write", "admin"]
    createdAt: float = Field(description="Seconds since the epoch.")
    lastUsedAt: float | None = Field(description="Recorded to the minute; null: never used.")
    revokedAt: float | None


class KeyCreatedOut(KeyOut):
    key: str = Field(description="The key, shown this once: only its hash is stored.")


class KeysOut(_Out):
    keys: list[KeyOut]


class AuditEventOut(_Out):
    eventId: int
    at: float = Field(description="Seconds since the epoch.")
    keyId: str | None = Field(description="The key that made the request (null: none matched).")
    tenant: str | None
    method: str = Field(description="The HTTP method, or CLI for the keys commands.")
    path: str = Field(description="Without the query string.")
    status: int | None = Field(description="The HTTP status (null for the CLI).")
    client: str | None = Field(description="The client's address.")
    event: str = Field(
        description="write, key.created, key.revoked, denied.unauthenticated, denied.scope, "
        "denied.rate-limit or denied.other-tenant"
    )
    target: str | None = Field(description="The key created or revoked.")


class AuditOut(_Out):
    """The caller's tenant's audit trail, newest first."""

    events: list[AuditEventOut]
