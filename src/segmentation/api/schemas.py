"""Wire schemas: the seed's camelCase JSON, validated at the edge with pydantic.

Requests are strict: an unknown key, a string where a number belongs or an out-of-range option
is a 422 naming it, never a silent coercion. Responses are described here for the OpenAPI
document; they are built by `convert.py` and serialized with orjson for speed.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from segmentation.analysis import DEFAULT_K_RANGE, MAX_K

__all__ = [
    "ACCURACY_DOC",
    "AnalysisResponse",
    "AnalyzeOptions",
    "AnalyzeRequest",
    "AssignRequest",
    "RecommendationsRequest",
    "RecommendationsResponse",
    "TransactionsSpec",
]

ACCURACY_DOC = (
    "How reproducible the segmentation is, in [0, 1]: resampling stability (Hennig's "
    "clusterboot). The chosen method is refit on bootstrap resamples; each segment is matched "
    "to its best counterpart by Jaccard similarity; the mean is weighted by segment size. Above "
    "0.75 is usually read as stable, below 0.5 as no real structure."
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


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class AnalyzeOptions(_Strict):
    """How to segment. Every key is optional."""

    algorithm: Literal["auto", "kmeans", "hierarchical", "dbscan"] = Field(
        "auto", description="'auto' tries k-means, Ward hierarchical and DBSCAN and keeps the best."
    )
    nClusters: int | None = Field(None, ge=2, le=MAX_K, description="A fixed number of segments.")
    kRange: list[int] | None = Field(
        None,
        min_length=2,
        max_length=2,
        description=f"[min, max] numbers of segments to try; default {list(DEFAULT_K_RANGE)}.",
    )
    features: list[str] | None = Field(
        None, min_length=1, description="Only these fields are used (default: every usable one)."
    )
    exclude: list[str] = Field(default_factory=list, description="Fields not to use.")
    randomState: int = Field(
        0, ge=0, le=2**32 - 1, description="Seed: the same input and seed give the same response."
    )
    eps: float | None = Field(None, gt=0, description="DBSCAN radius (scaled units); default auto.")
    minSamples: int | None = Field(None, ge=2, description="DBSCAN density; default 2 x dims.")
    includeCustomers: bool = Field(
        True, description="false leaves clusters[].customers empty, to save bandwidth."
    )
    includeCustomerScores: bool = Field(
        False,
        description="true adds customerScores: per customer its segment, confidence, ambiguous.",
    )


class AnalyzeRequest(_Strict):
    """The seed's request: customers as objects with any fields, plus optional options."""

    customerData: list[Any] = Field(
        description="One object per customer, any fields (numbers, text, booleans, ISO dates)."
    )
    options: AnalyzeOptions = Field(default_factory=AnalyzeOptions)


class TransactionsSpec(_Strict):
    """With a job's file of orders: the columns to derive one row per customer from (RFM)."""

    customerId: str
    date: str
    amount: str | None = None
    quantity: str | None = None
    price: str | None = None
    invoice: str | None = Field(None, description="a leading C marks a cancellation")
    asOf: str | None = Field(None, description="the day recency counts to; default the last")


class AssignRequest(_Strict):
    """New customers to score into a stored analysis' segments."""

    customerData: list[Any] = Field(
        min_length=1, description="One object per customer, with the fields of the analysis."
    )


class ClusterOut(BaseModel):
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


class AnalysisResponse(BaseModel):
    clusters: list[ClusterOut]
    featureImportance: dict[str, float] = Field(description=IMPORTANCE_DOC)
    accuracy: float | None = Field(description=ACCURACY_DOC)
    accuracyMethod: str
    algorithm: str
    metrics: dict[str, Any]
    kSelection: dict[str, Any]
    dataQuality: dict[str, Any]
    randomState: int
    options: dict[str, Any] = Field(description="The options in force, defaults filled in.")
    customerScores: list[dict[str, Any]] | None = None
    analysisId: str = Field(description="Where it is stored: GET /api/analyses/{analysisId}.")


# a centroid value that is NaN or infinite cannot be compared with an average
FiniteNumber = Annotated[float, Field(allow_inf_nan=False)]


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

    def axes(self) -> dict[str, str] | None:
        """Field -> business axis as the analysis reported them, if it did."""
        if self.dataQuality is None:
            return None
        return {f.field: f.axis for f in self.dataQuality.fields if f.axis is not None}


class RecommendationsRequest(BaseModel):
    """Either the analysis itself or the id of a stored one."""

    model_config = ConfigDict(extra="forbid")

    analysis: AnalysisIn | None = None
    analysisId: str | None = None

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


class CitedFigure(BaseModel):
    """A number a recommendation rests on, and what its sentence claims of it."""

    label: str = Field(description="The business axis: one field, or the sum of several.")
    value: float | None = Field(description="The segment's value (centroid, or sum of centroids).")
    average: float | None = Field(description="The customer-weighted average over all segments.")
    direction: Literal["above", "below", "near"] = Field(
        description="What the sentence claims: above or below the average, or near it (within "
        "0.8x-1.25x)."
    )


class Action(BaseModel):
    segment: str | None
    clusterId: int | None
    action: str
    rationale: str
    priority: int = Field(description="1 = act first; per-segment actions by size x value.")
    impact: float
    figures: list[CitedFigure] = Field(
        default_factory=list, description="The figures the rationale cites, each with its claim."
    )


class RecommendationsResponse(BaseModel):
    recommendations: list[str]
    actions: list[Action]
