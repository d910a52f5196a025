"""Charts of stored analyses through HTTP, decoded and looked at as images."""

from __future__ import annotations

import html
import io
from typing import Any

import httpx
import numpy as np
import pytest
from matplotlib import colors
from matplotlib import image as mpimg

from segmentation.charts import CHARTS, PALETTE
from segmentation.synthetic import make_population

REQUEST_TIMEOUT = 120.0


@pytest.fixture(scope="module", params=["auto", "dbscan"])
def stored(request: pytest.FixtureRequest, base_url: str) -> dict[str, Any]:
    records = make_population(3000, 4, random_state=21).records()
    response = httpx.post(
        f"{base_url}/api/analyze",
        json={"customerData": records, "options": {"algorithm": request.param}},
        timeout=REQUEST_TIMEOUT,
    )
    assert response.status_code == 200, response.text[:2000]
    return response.json()


def _png(base_url: str, analysis_id: str, chart: str) -> np.ndarray:
    response = httpx.get(
        f"{base_url}/api/analyses/{analysis_id}/charts/{chart}.png", timeout=REQUEST_TIMEOUT
    )
    assert response.status_code == 200, response.text[:500]
    assert response.headers["content-type"] == "image/png"
    return mpimg.imread(io.BytesIO(response.content), format="png")


def _segment_colours_present(pixels: np.ndarray, n_colours: int, min_pixels: int) -> int:
    rgb = pixels[..., :3].reshape(-1, 3)
    present = 0
    for hex_colour in PALETTE[:n_colours]:
        target = np.array(colors.to_rgb(hex_colour))
        if (np.abs(rgb - target).max(axis=1) < 0.02).sum() >= min_pixels:
            present += 1
    return present


# the charts of every analysis; the migration chart of a refit is tested in test_lineage_http
ANALYSIS_CHARTS = tuple(chart for chart in CHARTS if chart != "migration")


@pytest.mark.parametrize("chart", ANALYSIS_CHARTS)
def test_every_chart_is_a_readable_non_blank_image(
    base_url: str, stored: dict[str, Any], chart: str
) -> None:
    pixels = _png(base_url, stored["analysisId"], chart)
    height, width = pixels.shape[:2]
    assert width >= 800 and height >= 400
    assert pixels[..., :3].std() > 0.05  # not blank
    svg = httpx.get(
        f"{base_url}/api/analyses/{stored['analysisId']}/charts/{chart}.svg",
        timeout=REQUEST_TIMEOUT,
    )
    assert svg.status_code == 200 and svg.headers["content-type"] == "image/svg+xml"
    assert b"<svg" in svg.content[:1000]
    for cluster in stored["clusters"]:  # segment names, not numbers, label the charts
        if chart in ("sizes", "projection") or (
            chart != "k-selection" and not cluster["isOutliers"]
        ):
            assert cluster["clusterName"].encode() in svg.content.replace(b"&amp;", b"&")


@pytest.mark.parametrize(("chart", "min_pixels"), [("sizes", 400), ("projection", 60)])
def test_as_many_segment_colours_as_segments(
    base_url: str, stored: dict[str, Any], chart: str, min_pixels: int
) -> None:
    regular = [c for c in stored["clusters"] if not c["isOutliers"]]
    pixels = _png(base_url, stored["analysisId"], chart)
    assert _segment_colours_present(pixels, len(regular), min_pixels) == len(regular)


def test_unknown_charts_formats_and_ids(base_url: str, stored: dict[str, Any]) -> None:
    base = f"{base_url}/api/analyses"
    assert httpx.get(f"{base}/{stored['analysisId']}/charts/pie.png").status_code == 422
    assert httpx.get(f"{base}/{stored['analysisId']}/charts/sizes.gif").status_code == 422
    assert httpx.get(f"{base}/{'A' * 22}/charts/sizes.png").status_code == 404
    assert httpx.get(f"{base}/bad/charts/sizes.png").status_code == 422


def test_the_report_is_one_self_contained_page(base_url: str, stored: dict[str, Any]) -> None:
    response = httpx.get(
        f"{base_url}/api/analyses/{stored['analysisId']}/report.html", timeout=REQUEST_TIMEOUT
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    for cluster in stored["clusters"]:
        assert html.escape(cluster["clusterName"]) in page
    assert page.count("src='data:image/png;base64,") == len(ANALYSIS_CHARTS)
    assert "<script" not in page and "http://" not in page and "https://" not in page
    assert "Recommendations" in page and "Data quality" in page
    assert html.escape(stored["kSelection"]["reason"]) in page
    assert httpx.get(f"{base_url}/api/analyses/{'A' * 22}/report.html").status_code == 404
