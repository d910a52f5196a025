"""The Spark engine (segmentation.spark) on a real local[2] session: parity with the local
engine, the CLI's outputs, and bad input. One SparkSession for the whole module."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from sklearn.metrics import adjusted_rand_score

from segmentation import analyze
from segmentation.assign import assign, fitted_of
from segmentation.errors import InvalidInputError
from segmentation.pipeline.ingest import ingest
from segmentation.pipeline.profile import profile_segments
from segmentation.storage.model_file import load_fitted, save_fitted
from segmentation.synthetic import make_population

pyspark = pytest.importorskip("pyspark", reason="pip install -e '.[spark]'")
from segmentation import spark as engine  # noqa: E402

pytestmark = pytest.mark.spark
PARITY_CUSTOMERS = 200_000
SCRIPT = Path(sys.executable).with_name("segmentation")


@pytest.fixture(scope="module")
def session() -> Iterator[Any]:
    spark = engine.session("local[2]", app_name="segmentation-tests")
    yield spark
    spark.stop()


@pytest.fixture(scope="module")
def parity(session: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """200,000 customers in one Parquet file, analysed by both engines."""
    folder = tmp_path_factory.mktemp("parity")
    population = make_population(PARITY_CUSTOMERS + 2_000, 4, random_state=3)
    frame, held_out = population.frame.iloc[:PARITY_CUSTOMERS], population.frame.iloc[-2_000:]
    frame.to_parquet(folder / "customers.parquet", index=False)
    distributed = engine.analyze(str(folder / "customers.parquet"), spark=session)
    local = analyze(frame)
    scored = distributed.assignments.toPandas()
    return {"spark": distributed, "local": local, "scored": scored, "frame": frame,
            "held_out": held_out, "folder": folder}  # fmt: skip


def test_parity_same_k_and_customers(parity: dict[str, Any]) -> None:
    distributed, local = parity["spark"], parity["local"]
    assert distributed.engine == "spark" and distributed.sample_only
    assert len(distributed.segments) == len(local.segments)
    assert distributed.k_selection.chosen.k == local.k_selection.chosen.k
    scored = parity["scored"]
    assert len(scored) == PARITY_CUSTOMERS
    by_id = pd.Series(scored["clusterId"].to_numpy(), index=scored["id"])
    spark_labels = by_id.loc[parity["frame"]["id"].to_numpy()].to_numpy()
    assert adjusted_rand_score(local.labels, spark_labels) >= 0.9
    assert sum(s.size for s in distributed.segments) == PARITY_CUSTOMERS
    assert distributed.n_customers == PARITY_CUSTOMERS
    assert "uniform sample of 100,000 of 200,000" in distributed.k_selection.method
    assert "Spark engine" in distributed.accuracy_method


def test_parity_centroids_within_two_percent_of_each_sd(parity: dict[str, Any]) -> None:
    distributed, local, frame = parity["spark"], parity["local"], parity["frame"]
    # segments pair up by their customers (ids may be numbered differently)
    scored = parity["scored"]
    by_id = dict(zip(scored["id"], scored["clusterId"], strict=True))
    spark_labels = np.array([by_id[i] for i in frame["id"]])
    for segment in local.segments:
        members = local.labels == segment.segment_id
        ids, counts = np.unique(spark_labels[members], return_counts=True)
        twin = next(s for s in distributed.segments if s.segment_id == ids[counts.argmax()])
        for field, value in segment.centroid.items():
            sd = float(frame[field].std())
            assert value is not None and twin.centroid[field] is not None
            assert abs(twin.centroid[field] - value) <= 0.02 * sd, (segment.name, field)


def test_characteristics_are_tested_on_every_customer(parity: dict[str, Any]) -> None:
    """Sizes, means, shares, standardized differences and characteristics over all 200,000
    customers: what the local profile says of the same customers under Spark's segments."""
    distributed, frame, scored = parity["spark"], parity["frame"], parity["scored"]
    by_id = dict(zip(scored["id"], scored["clusterId"], strict=True))
    position = {s.segment_id: i for i, s in enumerate(distributed.segments)}
    labels = np.array([position[by_id[i]] for i in frame["id"]])
    ingested = ingest(frame)
    profiles, _ = profile_segments(
        ingested.frame, distributed.encoder.schema, labels, len(distributed.segments)
    )
    assert len(distributed.labels) < PARITY_CUSTOMERS  # the sample's, not these
    for segment, expected in zip(distributed.segments, profiles, strict=True):
        assert segment.size == int((labels == position[segment.segment_id]).sum())
        assert segment.characteristics == expected.characteristics
        assert segment.categories == expected.categories
        for field, value in expected.centroid.items():
            assert segment.centroid[field] == pytest.approx(value, rel=1e-5), field
        for field, value in expected.standardized.items():
            assert segment.standardized[field] == pytest.approx(value, abs=1e-9), field


def test_stored_model_scores_held_out_customers_alike(parity: dict[str, Any]) -> None:
    distributed, local, folder = parity["spark"], parity["local"], parity["folder"]
    save_fitted(fitted_of(distributed), folder / "model")
    stored = assign(load_fitted(folder / "model"), parity["held_out"])
    direct = assign(fitted_of(distributed), parity["held_out"])
    assert np.array_equal(stored.labels, direct.labels)
    reference = assign(local, parity["held_out"])
    assert adjusted_rand_score(reference.labels, stored.labels) >= 0.9


def test_cli_writes_the_same_outputs(session: Any, tmp_path: Path) -> None:
    population = make_population(3_000, 3, random_state=5)
    population.frame.to_csv(tmp_path / "customers.csv", index=False)
    result = subprocess.run(
        [str(SCRIPT), "analyze", str(tmp_path / "customers.csv"), "--engine", "spark",
         "--spark-master", "local[2]", "--out", str(tmp_path / "out"), "--quiet"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    out = tmp_path / "out"
    document = json.loads((out / "analysis.json").read_text())
    assert document["engine"] == "spark"
    assert all(c["customers"] == [] for c in document["clusters"])
    assert "customerScores" not in document
    table = pq.read_table(out / "assignments").to_pandas()
    assert len(table) == 3_000
    assert {p.name.split("=")[0] for p in (out / "assignments").iterdir() if "=" in p.name} == {
        "clusterId"
    }
    assert sorted(table["clusterId"].astype(int).unique()) == [
        c["clusterId"] for c in sorted(document["clusters"], key=lambda c: c["clusterId"])
    ]
    for name in ("model.json", "model.npz", "report.html", "recommendations.md",
                 "projection.png", "k-selection.png"):  # fmt: skip
        assert (out / name).stat().st_size > 0, name
    assert sum(c["size"] for c in document["clusters"]) == 3_000
    # the next month's refit follows this folder (its Parquet assignments): ids and names kept
    population.frame.iloc[::-1].to_csv(tmp_path / "next.csv", index=False)
    result = subprocess.run(
        [str(SCRIPT), "analyze", str(tmp_path / "next.csv"), "--engine", "spark",
         "--spark-master", "local[2]", "--previous", str(out), "--out", str(tmp_path / "next"),
         "--quiet"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    refit = json.loads((tmp_path / "next" / "analysis.json").read_text())
    assert refit["lineage"]["matchedBy"] == "customers"
    assert {e["event"] for e in refit["lineage"]["segments"]} == {"survived"}
    names = {c["clusterId"]: c["clusterName"] for c in document["clusters"]}
    assert {c["clusterId"]: c["clusterName"] for c in refit["clusters"]} == names


def test_bad_input_is_named(session: Any, tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="no such file or directory"):
        engine.analyze(str(tmp_path / "missing.parquet"), spark=session)
    (tmp_path / "broken.parquet").write_bytes(b"PAR1 this is not parquet at all")
    with pytest.raises(InvalidInputError, match="cannot be read as parquet"):
        engine.analyze(str(tmp_path / "broken.parquet"), spark=session)
    codes = pd.DataFrame({"code": [f"C{i:05d}" for i in range(500)]})
    codes.to_csv(tmp_path / "codes.csv", index=False)
    with pytest.raises(InvalidInputError, match="no usable feature field") as spark_error:
        engine.analyze(str(tmp_path / "codes.csv"), spark=session)
    with pytest.raises(InvalidInputError) as local_error:
        analyze(codes)
    assert str(spark_error.value) == str(local_error.value)


def test_a_field_mixing_numbers_and_text_is_named(session: Any, tmp_path: Path) -> None:
    rows = [{"id": i, "age": 20 + i % 50, "income": 1000 * i, "zip": f"{i % 90:05d}"}
            for i in range(300)]  # fmt: skip
    rows[17]["age"] = "unknown"
    rows[40]["zip"] = "SW1A"  # quoted text that sometimes looks numeric stays text
    path = tmp_path / "customers.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows))
    with pytest.raises(InvalidInputError) as spark_error:
        engine.analyze(str(path), spark=session)
    with pytest.raises(InvalidInputError) as local_error:
        analyze(rows)
    assert [p.field for p in spark_error.value.problems] == ["age"]
    local = local_error.value.problems[0]
    assert local.field == "age" and local.record == 17
    assert spark_error.value.problems[0].message == local.message


def test_a_spark_dataframe_is_a_source(session: Any) -> None:
    frame = make_population(2_000, 3, random_state=2).frame
    analysis = engine.analyze(session.createDataFrame(frame), spark=session, n_clusters=3)
    assert len(analysis.segments) == 3
    assert analysis.assignments.count() == 2_000
    assert len(analysis.labels) == 2_000  # the sample is every customer here


def test_outcomes_are_aggregated_over_every_customer(session: Any, tmp_path: Path) -> None:
    """An outcome field is found by the sample's schema, never segments customers, and its
    rate per segment and overall is measured on every customer, not the sample."""
    population = make_population(30_000, 3, random_state=5)
    frame = population.frame.copy()
    rng = np.random.default_rng(5)
    churn_rate = np.where(population.labels == population.labels[0], 0.6, 0.1)
    frame["Churn"] = np.where(rng.random(len(frame)) < churn_rate, "Yes", "No")
    frame.to_parquet(tmp_path / "customers.parquet", index=False)
    distributed = engine.analyze(
        str(tmp_path / "customers.parquet"), spark=session, sample_size=5_000
    )
    assert len(distributed.labels) == 5_000  # the sample's
    scored = distributed.assignments.toPandas()
    segment_of = dict(zip(scored["id"], scored["clusterId"], strict=True))
    labels = frame["id"].map(segment_of).to_numpy()
    churned = (frame["Churn"] == "Yes").to_numpy()
    (outcome,) = distributed.outcomes
    assert (outcome.field, outcome.kind, outcome.positive) == ("Churn", "rate", "Yes")
    assert outcome.overall == pytest.approx(churned.mean(), abs=1e-9)
    assert "Churn" not in distributed.feature_importance
    for segment in distributed.segments:
        members = labels == segment.segment_id
        assert segment.outcomes["Churn"] == pytest.approx(churned[members].mean(), abs=1e-9)
    assert any(c.startswith("Churn: ") for s in distributed.segments for c in s.characteristics)
