"""Exports as spreadsheets and CRMs write them, through the installed command: a European
export (semicolons, decimal commas, a BOM, CRLF, blank trailing rows and an empty trailing
column), blank-padded numbers, placeholder codes, an outcome and a classifier's score of it,
a file without a header row, and repeated ids. Each is checked as an analyst would.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tests.e2e.test_cli import run

pytestmark = pytest.mark.slow

N = 1_200


def export(seed: int = 0) -> pd.DataFrame:
    """Customers of a telecom as its CRM exports them: text throughout."""
    rng = np.random.default_rng(seed)
    fiber = rng.random(N) < 0.45
    month_to_month = rng.random(N) < np.where(fiber, 0.75, 0.35)
    tenure = np.where(month_to_month, rng.integers(1, 24, N), rng.integers(12, 72, N))
    monthly = np.round(np.where(fiber, rng.normal(90, 10, N), rng.normal(45, 12, N)), 2)
    total = np.round(monthly * tenure, 2)
    churn_p = 0.05 + 0.45 * (fiber & month_to_month)
    churned = rng.random(N) < churn_p
    blank_total = rng.random(N) < 0.01
    return pd.DataFrame(
        {
            "Customer No": [f"{9_000_000 + i * 7}" for i in range(N)],
            "Contract": np.where(month_to_month, "Month-to-month", "Two year"),
            "Internet": np.where(fiber, "Fiber optic", "DSL"),
            "tenure": tenure.astype(str),
            # decimal commas, as a European export writes them
            "MonthlyCharges": [f"{v:.2f}".replace(".", ",") for v in monthly],
            # blanks for customers too new to be billed
            "TotalCharges": [
                " " if b else f"{v:.2f}".replace(".", ",")
                for v, b in zip(total, blank_total, strict=True)
            ],
            # 999 for "never contacted"
            "pdays": np.where(rng.random(N) < 0.8, 999, rng.integers(0, 30, N)).astype(str),
            # placeholder texts
            "Region": rng.choice(["North", "South", "unknown", "?"], N, p=[0.45, 0.45, 0.06, 0.04]),
            "Churn": np.where(churned, "Yes", "No"),
            # a model's score of the outcome: restates it
            "churn_score": [
                f"{v:.3f}".replace(".", ",")
                for v in np.clip(churned * 0.7 + rng.random(N) * 0.25, 0, 1)
            ],
        }
    )


def european_csv(frame: pd.DataFrame, path: Path) -> Path:
    """Semicolons, a byte-order mark, CRLF, an empty unnamed last column and three blank
    rows at the end, as Excel saves a sheet."""
    lines = [";".join([*frame.columns, ""])]
    lines += [";".join([*map(str, row), ""]) for row in frame.itertuples(index=False)]
    lines += [";" * len(frame.columns)] * 3
    path.write_bytes(("\ufeff" + "\r\n".join(lines) + "\r\n").encode("utf-8"))
    return path


def analysis_of(out: Path) -> dict[str, Any]:
    result: dict[str, Any] = json.loads((out / "analysis.json").read_text())
    return result


def test_a_european_export_is_read_right(tmp_path: Path) -> None:
    path = european_csv(export(), tmp_path / "export.csv")
    out = tmp_path / "out"
    result = run("analyze", path, "--out", out, "--quiet")
    assert result.returncode == 0, result.stderr
    analysis = analysis_of(out)
    roles = {f["field"]: f for f in analysis["dataQuality"]["fields"]}
    assert roles["Customer No"]["role"] == "id"
    for field in ("MonthlyCharges", "TotalCharges", "tenure"):
        assert roles[field]["role"] == "numeric", roles[field]
    assert "decimal commas" in roles["MonthlyCharges"]["handling"]
    assert "blank value" in roles["TotalCharges"]["handling"]
    assert "999 in" in roles["pdays"]["handling"], roles["pdays"]
    assert "'unknown'" in roles["Region"]["handling"] and "'?'" in roles["Region"]["handling"]
    assert roles["Churn"]["role"] == "outcome"
    assert roles["churn_score"]["role"] == "ignored"
    assert "restates the outcome 'Churn'" in roles["churn_score"]["reason"]
    warnings = " ".join(analysis["dataQuality"]["warnings"])
    assert "3 rows with no value in any field skipped at the end of the file" in warnings
    assert "1 column with neither a name nor a value skipped" in warnings
    # every customer, once; the outcome reported, never a feature
    assignments = pd.read_csv(out / "assignments.csv")
    assert len(assignments) == N == sum(c["size"] for c in analysis["clusters"])
    assert {o["field"] for o in analysis["outcomes"]} == {"Churn"}
    assert not {"Churn", "churn_score", "Customer No"} & set(analysis["featureImportance"])
    # the churners concentrate where fiber meets month-to-month; the advice says so
    advice = (out / "recommendations.md").read_text()
    assert "Retain" in advice and "Churn" in advice, advice


def test_column_order_never_changes_the_segments(tmp_path: Path) -> None:
    frame = export(1)
    shuffled = frame[list(np.random.default_rng(3).permutation(frame.columns))]
    outs = []
    for name, data in (("a", frame), ("b", shuffled)):
        path = european_csv(data, tmp_path / f"{name}.csv")
        outs.append(tmp_path / f"out-{name}")
        result = run("analyze", path, "--out", outs[-1], "--quiet")
        assert result.returncode == 0, result.stderr
    first, second = (pd.read_csv(o / "assignments.csv") for o in outs)
    pd.testing.assert_frame_equal(first, second)


def test_a_file_without_a_header_row(tmp_path: Path) -> None:
    frame = export(2).drop(columns=["Customer No", "churn_score"])
    path = tmp_path / "no-header.csv"
    path.write_text("\n".join(";".join(map(str, r)) for r in frame.itertuples(index=False)))
    out = tmp_path / "out"
    result = run("analyze", path, "--out", out, "--quiet")
    assert result.returncode == 0, result.stderr
    analysis = analysis_of(out)
    fields = [f["field"] for f in analysis["dataQuality"]["fields"]]
    assert fields == [f"column_{i}" for i in range(1, len(frame.columns) + 1)]
    assert any("looks like data" in w for w in analysis["dataQuality"]["warnings"])
    # the first row was data: every customer is there
    assert sum(c["size"] for c in analysis["clusters"]) == N
    # the last column, two levels (Yes/No), is the outcome such files put last
    assert [o["field"] for o in analysis["outcomes"]] == [fields[-1]]


def test_no_header_can_be_forced(tmp_path: Path) -> None:
    # a first row that looks like field names ("a", "b"...) read as data when asked
    rows = [["a", "b", "c"]] + [[str(i % 7), str(i * 3 % 11), ("x", "y")[i % 2]] for i in range(60)]
    path = tmp_path / "rows.csv"
    path.write_text("\n".join(",".join(r) for r in rows))
    out = tmp_path / "out"
    result = run("analyze", path, "--out", out, "--quiet", "--no-header")
    assert result.returncode == 0, result.stderr
    assert sum(c["size"] for c in analysis_of(out)["clusters"]) == 61


def test_repeated_ids_one_line_and_the_choice(tmp_path: Path) -> None:
    frame = export(3)
    repeated = pd.concat([frame, frame.iloc[:40].assign(tenure="5")], ignore_index=True)
    path = tmp_path / "policies.csv"
    repeated.to_csv(path, index=False)
    out = tmp_path / "out"
    result = run("analyze", path, "--out", out, "--quiet")
    assert result.returncode == 2
    message = result.stderr.strip()
    assert "40 ids appear more than once (40 extra rows)" in message, message
    assert "differ in 'tenure'" in message and "--duplicate-ids" in message, message
    assert "Traceback" not in result.stderr
    kept = run("analyze", path, "--out", out, "--quiet", "--duplicate-ids", "last")
    assert kept.returncode == 0, kept.stderr
    analysis = analysis_of(out)
    assert sum(c["size"] for c in analysis["clusters"]) == N
    assert any("40 rows whose id repeats" in w for w in analysis["dataQuality"]["warnings"])
    assignments = pd.read_csv(out / "assignments.csv")
    # each kept customer's row: the last of its id, at its position in the file
    assert assignments["index"].max() == len(repeated) - 1
