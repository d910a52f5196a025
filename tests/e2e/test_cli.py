"""The command line through its installed entry point, on the real customer files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tests.e2e.conftest import DATASETS

# the console script `pip install` puts beside the interpreter, as a user runs it; never
# `python -m segmentation.cli` instead, which would pass with a broken or missing entry point
SCRIPT = Path(sys.executable).with_name("segmentation")


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    assert SCRIPT.is_file() and os.access(SCRIPT, os.X_OK), (
        f"{SCRIPT} is missing: `pip install -e .` (or `make test`) installs the command"
    )
    return subprocess.run(
        [str(SCRIPT), *map(str, args)], capture_output=True, text=True, timeout=300, check=False
    )


def test_the_installed_command_is_this_package() -> None:
    result = run("--help")
    assert result.returncode == 0, result.stderr
    for command in ("analyze", "assign", "serve"):
        assert command in result.stdout, result.stdout
    assert "segmentation.cli" in SCRIPT.read_text(), SCRIPT.read_text()


@pytest.mark.parametrize(
    "name",
    [
        "mall_customers.csv",
        # zero-padded ids, no final newline
        "mall_customers_genre_variant.csv",
        # blank cells
        "mall_customers_with_missing.csv",
        # tab-separated with dd-mm-yyyy dates
        "marketing_campaign.tsv",
        "wholesale_customers.csv",
        "cc_general.csv",
    ],
)
def test_analyze_writes_every_result_file(tmp_path: Path, name: str) -> None:
    out = tmp_path / "out"
    result = run("analyze", DATASETS / name, "--out", out, "--quiet")
    assert result.returncode == 0, result.stderr
    analysis = json.loads((out / "analysis.json").read_text())
    sizes = [cluster["size"] for cluster in analysis["clusters"]]
    assignments = pd.read_csv(out / "assignments.csv")
    echoed = sum(len(cluster["customers"]) for cluster in analysis["clusters"])
    assert len(assignments) == sum(sizes) == echoed
    assert list(assignments.columns)[-4:] == ["clusterId", "clusterName", "confidence", "ambiguous"]
    recommendations = (out / "recommendations.md").read_text()
    for cluster in analysis["clusters"]:
        if not cluster["isOutliers"]:
            assert cluster["clusterName"] in recommendations
    assert (out / "model.json").is_file() and (out / "model.npz").is_file()
    for chart in ("projection", "profiles", "sizes", "k-selection", "silhouette"):
        assert (out / f"{chart}.png").read_bytes().startswith(b"\x89PNG")
    report = (out / "report.html").read_text()
    assert report.count("data:image/png;base64,") == 5
    assert "segments:" in result.stdout


def test_assign_scores_new_customers_with_a_saved_analysis(tmp_path: Path) -> None:
    out = tmp_path / "mall"
    features = "Annual Income (k$),Spending Score (1-100)"
    mall = DATASETS / "mall_customers.csv"
    assert run("analyze", mall, "--out", out, "--features", features, "--k", "5").returncode == 0
    scored = tmp_path / "scored.csv"
    result = run("assign", "--analysis", out, mall, "--out", scored)
    assert result.returncode == 0, result.stderr
    original = pd.read_csv(out / "assignments.csv")
    again = pd.read_csv(scored)
    assert (original["clusterId"] == again["clusterId"]).mean() >= 0.99


@pytest.mark.parametrize(
    ("args", "message"),
    [
        # the file does not exist
        (("analyze", "/no/such/customers.csv", "--out", "x"), "no such file"),
        # no folder of a saved analysis
        (("assign", "--analysis", "/no/such/folder", "x.csv"), "no model.json"),
    ],
)
def test_errors_are_clear_with_a_non_zero_exit(args: tuple[str, ...], message: str) -> None:
    result = run(*args)
    assert result.returncode == 2
    assert message in result.stderr


def test_a_file_with_no_usable_field_fails_clearly(tmp_path: Path) -> None:
    path = tmp_path / "ids.csv"
    path.write_text("id,note\n" + "".join(f"{i},text {i}\n" for i in range(30)))
    result = run("analyze", path, "--out", tmp_path / "out")
    assert result.returncode == 2
    assert "no usable feature" in result.stderr


def test_an_unreadable_file_fails_clearly(tmp_path: Path) -> None:
    path = tmp_path / "binary.csv"
    path.write_bytes(b"\x00\x01\x02" * 100)
    result = run("analyze", path, "--out", tmp_path / "out")
    assert result.returncode == 2
    assert "neither CSV" in result.stderr


def test_transactions_become_customers_before_segmenting(tmp_path: Path) -> None:
    out = tmp_path / "cdnow"
    result = run(
        "analyze", DATASETS / "cdnow_sample.csv", "--transactions", "--customer-id",
        "customer_id", "--date", "date", "--amount", "dollar_value", "--as-of", "1997-09-30",
        "--out", out, "--quiet",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "6,919 transactions -> 2,357 customers as of 1997-09-30" in result.stdout
    analysis = json.loads((out / "analysis.json").read_text())
    fields = {f["field"]: f["role"] for f in analysis["dataQuality"]["fields"]}
    assert fields["customer_id"] == "id"
    for feature in ("recency_days", "frequency", "monetary", "tenure_days"):
        assert fields[feature] == "numeric"
    assert sum(c["size"] for c in analysis["clusters"]) == 2357


def test_transactions_need_their_columns(tmp_path: Path) -> None:
    result = run(
        "analyze", DATASETS / "cdnow_sample.csv", "--transactions", "--out", tmp_path / "x"
    )
    assert result.returncode == 2
    assert "--customer-id and --date" in result.stderr
