"""The plain approach, as a user would write it from the seed: the baseline of the benchmark.

It is deliberately naive and must stay so: k is chosen by the silhouette score over ALL rows,
which is O(n^2) in time, so the benchmark shows what that costs as the customer base grows.
Do not "fix" it here; its slowness is the point of comparison.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from fastapi import FastAPI
from pydantic import BaseModel
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score
from sklearn.preprocessing import StandardScaler

app = FastAPI(title="plain segmentation (benchmark baseline)")


class AnalyzeRequest(BaseModel):
    """The body the seed accepts: the customers and nothing else."""

    customerData: list[dict[str, Any]]  # noqa: N815 - the seed's wire name


@app.get("/health")
def health() -> dict[str, str]:
    """Lets the benchmark wait until the server is up before it measures."""
    return {"status": "ok"}


def _features(records: list[dict[str, Any]]) -> pd.DataFrame:
    """One-hot strings, drop the id, fill gaps with the median: the seed's preprocessing."""
    frame = pd.DataFrame(records).drop(columns=["id"], errors="ignore")
    frame = pd.get_dummies(frame, dtype=float)
    return frame.fillna(frame.median(numeric_only=True)).astype(float)


@app.post("/api/analyze")
def analyze(request: AnalyzeRequest) -> dict[str, Any]:
    """Try k = 2..10 and keep the k with the best silhouette computed on every row."""
    records = request.customerData
    features = _features(records)
    scaler = StandardScaler()
    X = scaler.fit_transform(features.to_numpy())

    best_score, best_model = -1.0, None
    for k in range(2, min(10, len(records) - 1) + 1):
        model = KMeans(n_clusters=k, n_init=10, random_state=0).fit(X)
        score = float(silhouette_score(X, model.labels_))
        if best_model is None or score > best_score:
            best_score, best_model = score, model
    if best_model is None:
        return {"clusters": [], "featureImportance": {}, "accuracy": 0.0}

    labels = best_model.labels_
    centres = scaler.inverse_transform(best_model.cluster_centers_)
    clusters = []
    for cluster_id in range(best_model.n_clusters):
        members = np.flatnonzero(labels == cluster_id)
        clusters.append(
            {
                "clusterId": cluster_id,
                "customers": [records[i] for i in members],
                "centroid": dict(zip(features.columns, centres[cluster_id].tolist(), strict=True)),
            }
        )
    return {"clusters": clusters, "featureImportance": {}, "accuracy": best_score}
