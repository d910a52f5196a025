"""`segmentation analyze FILE --previous DIR_OR_ID`: a refit through the installed script."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from segmentation.config import Settings
from segmentation.options import AnalysisOptions
from segmentation.service import SegmentationService
from segmentation.synthetic import Refit, make_refit

SCRIPT = Path(sys.executable).with_name("segmentation")


def run(*args: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    assert SCRIPT.exists(), f"the installed script {SCRIPT} is missing (pip install -e .)"
    return subprocess.run(
        [str(SCRIPT), *map(str, args)], capture_output=True, text=True, timeout=300,
        env={**os.environ, **(env or {})},
    )  # fmt: skip


@pytest.fixture(scope="module")
def months(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Refit]:
    folder = tmp_path_factory.mktemp("months")
    refit = make_refit(1500, 4, random_state=4)
    refit.first.frame.to_csv(folder / "october.csv", index=False)
    refit.second.frame.to_csv(folder / "november.csv", index=False)
    return folder / "october.csv", folder / "november.csv", refit


def test_previous_results_folder(tmp_path: Path, months: tuple[Path, Path, Refit]) -> None:
    october, november, _ = months
    first = run("analyze", october, "--k", "4", "--out", tmp_path / "oct", "--quiet")
    assert first.returncode == 0, first.stderr
    second = run(
        "analyze", november, "--k", "4", "--previous", tmp_path / "oct",
        "--out", tmp_path / "nov", "--quiet",
    )  # fmt: skip
    assert second.returncode == 0, second.stderr
    assert "previous segments survived" in second.stdout
    before = json.loads((tmp_path / "oct" / "analysis.json").read_text())
    after = json.loads((tmp_path / "nov" / "analysis.json").read_text())
    lineage = after["lineage"]
    assert lineage["matchedBy"] == "customers"
    events = [row["event"] for row in lineage["segments"]]
    assert events.count("survived") == 3
    assert "disappeared" in events and "emerged" in events
    survived = {r["clusterId"]: r["clusterName"] for r in lineage["segments"]
                if r["event"] == "survived"}  # fmt: skip
    previous = {c["clusterId"]: c["clusterName"] for c in before["clusters"]}
    assert all(previous[i] == name for i, name in survived.items())
    # the assignments carry the kept ids; the migration chart and the report section exist
    table = pd.read_csv(tmp_path / "nov" / "assignments.csv")
    assert set(table["clusterId"]) == {c["clusterId"] for c in after["clusters"]}
    assert (tmp_path / "nov" / "migration.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "What changed" in (tmp_path / "nov" / "report.html").read_text()
    assert not (tmp_path / "oct" / "migration.png").exists()
    # a third month follows the second one's folder: ids stay
    third = run(
        "analyze", november, "--k", "4", "--previous", tmp_path / "nov",
        "--out", tmp_path / "dec", "--quiet",
    )  # fmt: skip
    assert third.returncode == 0, third.stderr
    again = json.loads((tmp_path / "dec" / "analysis.json").read_text())
    assert [c["clusterId"] for c in again["clusters"]] == [
        c["clusterId"] for c in after["clusters"]
    ]
    assert again["lineage"]["moved"] == 0


def test_previous_stored_id(tmp_path: Path, months: tuple[Path, Path, Refit]) -> None:
    """An id of an analysis the service stored (same data folder) as the previous one."""
    _, november, refit = months
    data = tmp_path / "data"
    service = SegmentationService(Settings(data_dir=data))
    analysis = service.run_analysis(refit.first.frame, AnalysisOptions(n_clusters=4))
    analysis_id = service.store_analysis(analysis, [], AnalysisOptions())
    result = run(
        "analyze", november, "--k", "4", "--previous", analysis_id,
        "--out", tmp_path / "nov", "--quiet", env={"SEGMENTATION_DATA_DIR": str(data)},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    after = json.loads((tmp_path / "nov" / "analysis.json").read_text())
    assert after["lineage"]["previousAnalysisId"] == analysis_id
    assert after["options"]["previousAnalysisId"] == analysis_id
    assert after["lineage"]["customersCompared"] > 1000


@pytest.mark.parametrize(
    ("previous", "message"),
    [("AAAAAAAAAAAAAAAAAAAAAA", "no analysis with id"), ("not-an-id", "is not an analysis id")],
)
def test_unknown_previous_fails_clearly(
    tmp_path: Path, months: tuple[Path, Path, Refit], previous: str, message: str
) -> None:
    _, november, _ = months
    result = run(
        "analyze", november, "--previous", previous, "--out", tmp_path / "x", "--quiet",
        env={"SEGMENTATION_DATA_DIR": str(tmp_path / "data")},
    )  # fmt: skip
    assert result.returncode == 2
    assert message in result.stderr
    assert not (tmp_path / "x").exists()
