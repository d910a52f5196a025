"""The dashboard in a real Chromium against a real server, as an analyst uses it: upload a file,
watch the job, read the analysis, download, score, delete, refit; the docs offline; keyboard
only; a phone's width. Runs with `make test-browser`."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from tests.browser.conftest import (
    DATASETS,
    JOB_TIMEOUT_MS,
    MALL,
    PHONE,
    Watch,
    new_page,
    stored_analysis,
)

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = pytest.mark.browser

ANALYSIS_URL = re.compile(r"/analyses/[A-Za-z0-9_-]{22}$")
MALL_FIELDS = ["CustomerID", "Gender", "Age", "Annual Income (k$)", "Spending Score (1-100)"]

# every text the progress label shows and every value of the bar, reported to the test as
# they change (an exposed function outlives the page's navigation to the analysis)
RECORD_PROGRESS = """() => {
  const label = document.getElementById("job-stage"), bar = document.getElementById("job-progress");
  new MutationObserver(() => window.recordProgress(label.textContent, bar.value))
    .observe(label, {childList: true, characterData: true, subtree: true});
}"""


def api_json(base_url: str, path: str) -> Any:
    response = httpx.get(f"{base_url}{path}", timeout=60)
    assert response.status_code == 200, response.text
    return response.json()


def shot(page: Page, artifacts: Path, name: str, *, full_page: bool = True) -> None:
    page.screenshot(path=str(artifacts / f"{name}.png"), full_page=full_page)


def wait_for_analysis_page(page: Page) -> str:
    page.wait_for_url(ANALYSIS_URL, timeout=JOB_TIMEOUT_MS)
    page.wait_for_selector("body[data-ready=true]")
    return page.url.rsplit("/", 1)[1]


def charts_loaded(page: Page) -> list[tuple[str, int]]:
    return page.eval_on_selector_all(
        "img[data-chart]",
        "imgs => imgs.filter(i => !i.closest('[hidden]'))"
        ".map(i => [i.dataset.chart, i.complete ? i.naturalWidth : 0])",
    )


def test_upload_watch_the_job_and_land_on_every_segment(
    page: Page, server: str, artifacts: Path
) -> None:
    page.goto(f"{server}/")
    page.set_input_files("#file", MALL)
    page.wait_for_selector("#fields-table tbody tr")
    fields = page.locator("#fields-table tbody th").all_inner_texts()
    assert fields == MALL_FIELDS
    # the roles the service gives these rows (POST /api/fields), before the run
    page.wait_for_function(
        "[...document.querySelectorAll('#fields-table td.role')].every(c => c.textContent !== '…')"
    )
    roles = dict(zip(fields, page.locator("#fields-table tbody td.role").all_inner_texts(),
                     strict=True))  # fmt: skip
    assert roles["CustomerID"].startswith("the customer id")
    assert roles["Gender"] == "category"
    assert roles["Annual Income (k$)"] == roles["Age"] == "number"
    shot(page, artifacts, "new-analysis")
    progress: list[tuple[str, float]] = []
    page.expose_function("recordProgress", lambda text, value: progress.append((text, value)))
    page.evaluate(RECORD_PROGRESS)
    page.click("#start")
    analysis_id = wait_for_analysis_page(page)

    stages = [text for text, _ in progress]
    assert stages[0] == "Uploading mall_customers.csv…", progress
    assert stages[-1] == "Done (100%)", progress
    values = [value for _, value in progress]
    assert values == sorted(values), progress
    stored = api_json(server, f"/api/analyses/{analysis_id}")
    names = page.locator("#segments .card h3").all_inner_texts()
    assert names == [c["clusterName"] for c in stored["clusters"]]
    assert page.locator("#analysis-title").inner_text() == "Analysis of mall_customers.csv"
    charts = charts_loaded(page)
    assert {name for name, _ in charts} == {
        "projection", "profiles", "sizes", "silhouette", "k-selection",
    }  # fmt: skip
    assert all(width > 0 for _, width in charts), charts
    assert page.locator("#k-reason").inner_text() == stored["kSelection"]["reason"]
    shot(page, artifacts, "analysis")


def test_the_analysis_page_shows_advice_quality_and_downloads(
    watched: tuple[Page, Watch], server: str, mall_analysis: str, artifacts: Path
) -> None:
    page, _ = watched
    page.goto(f"{server}/analyses/{mall_analysis}")
    page.wait_for_selector("body[data-ready=true]")
    advice = httpx.post(
        f"{server}/api/recommendations", json={"analysisId": mall_analysis}, timeout=60
    ).json()["actions"]
    shown = page.locator("#advice li strong").all_inner_texts()
    assert shown == [a["action"] for a in sorted(advice, key=lambda a: a["priority"])]
    assert page.locator("#fields tbody th").all_inner_texts() == MALL_FIELDS
    assert all(width > 0 for _, width in charts_loaded(page))

    with page.expect_download() as download:
        page.get_by_role("link", name="Assignments (CSV)").click()
    rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text())))
    assert len(rows) == 200
    assert set(rows[0]) == {"index", "id", "clusterId", "clusterName", "confidence", "ambiguous"}

    page.set_input_files("#score-file", MALL)
    with page.expect_download() as scored:
        page.click("#score")
    scored_rows = list(csv.DictReader(io.StringIO(Path(scored.value.path()).read_text())))
    assert [r["clusterName"] for r in scored_rows] == [r["clusterName"] for r in rows]
    page.wait_for_selector("#score-status:has-text('Scored 200 customers')")


def test_scoring_errors_are_shown_next_to_the_file_input(
    watched: tuple[Page, Watch], server: str, mall_analysis: str, tmp_path: Path
) -> None:
    page, watch = watched
    page.goto(f"{server}/analyses/{mall_analysis}")
    page.wait_for_selector("body[data-ready=true]")
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "CustomerID,Gender,Age,Annual Income (k$),Spending Score (1-100)\n"
        "1,Male,19,15,39\n2,Female,old,16,81\n"
    )
    page.set_input_files("#score-file", bad)
    page.click("#score")
    error = page.locator("#score-error")
    error.wait_for()
    # the server's 422 names the record and the field
    assert re.search(r"record 1.*Age|Age.*record 1", error.inner_text()), error.inner_text()
    assert page.locator("#score-file").get_attribute("aria-invalid") == "true"

    # beyond the server's 3 MB JSON body limit: its 413 in words
    big = tmp_path / "big.csv"
    lines = [",".join(f'"{f}"' for f in ["CustomerID", "Gender", "Age"])]
    lines += [f"{i},Female,{20 + i % 50}" for i in range(120_000)]
    big.write_text("\n".join(lines) + "\n")
    page.set_input_files("#score-file", big)
    page.click("#score")
    page.wait_for_selector("#score-error:has-text('Too large for the service')")
    watch.expect_failed_responses()


def test_an_unknown_analysis_is_said_in_words(watched: tuple[Page, Watch], server: str) -> None:
    page, watch = watched
    page.goto(f"{server}/analyses/AAAAAAAAAAAAAAAAAAAAAA")
    message = page.locator("#page-message")
    message.wait_for()
    assert "no analysis with id 'AAAAAAAAAAAAAAAAAAAAAA' is stored" in message.inner_text()
    assert message.get_by_role("link", name="Back to the analyses").is_visible()
    watch.expect_failed_responses()


def test_a_file_with_no_usable_field_shows_the_servers_message(
    page: Page, server: str, tmp_path: Path, artifacts: Path
) -> None:
    useless = tmp_path / "useless.csv"
    useless.write_text("id,country\n" + "".join(f"{i},Peru\n" for i in range(1, 31)))
    page.goto(f"{server}/")
    page.set_input_files("#file", useless)
    page.click("#start")
    error = page.locator("#job-error")
    error.wait_for(timeout=JOB_TIMEOUT_MS)
    text = error.inner_text()
    assert "The analysis failed" in text and "no usable feature field" in text, text
    assert "the same value for every customer" in text
    assert page.url.endswith("/")
    shot(page, artifacts, "new-analysis-failed")


def test_a_running_job_can_be_cancelled(page: Page, server: str) -> None:
    # 8,950 customers: seconds of work, so the job is still running when Cancel is pressed
    page.goto(f"{server}/")
    page.set_input_files("#file", DATASETS / "cc_general.csv")
    page.click("#start")
    page.click("#cancel:enabled")
    page.wait_for_selector("#job-status:has-text('Cancelled')")
    assert page.locator("#job-stage").inner_text() == "Cancelled"
    assert page.locator("#cancel").is_hidden()
    assert page.locator("#start").is_enabled()
    assert page.url.endswith("/")


def test_deleting_removes_the_row(page: Page, server: str, artifacts: Path) -> None:
    doomed = stored_analysis(server, nClusters=3)
    page.goto(f"{server}/analyses")
    row = page.locator(f"tr[data-analysis-id='{doomed}']")
    row.wait_for()
    shot(page, artifacts, "analyses")
    row.get_by_role("button", name=re.compile("^Delete")).click()
    dialog = page.locator("#confirm-dialog")
    dialog.wait_for()
    shot(page, artifacts, "analyses-confirm-delete")
    dialog.get_by_role("button", name="Delete").click()
    row.wait_for(state="detached")
    assert "Deleted" in page.locator("#list-status").inner_text()
    assert httpx.get(f"{server}/api/analyses/{doomed}", timeout=30).status_code == 404
    page.reload()
    page.wait_for_selector("#list-status:has-text('shown'), #list-status:has-text('No analyses')")
    assert page.locator(f"tr[data-analysis-id='{doomed}']").count() == 0


def next_month(path: Path) -> Path:
    """The mall customers a month later: the first 40 spend the other way round."""
    with MALL.open(newline="") as source:
        rows = list(csv.reader(source))
    for row in rows[1:41]:
        row[4] = str(100 - int(row[4]))
    with path.open("w", newline="") as sink:
        csv.writer(sink).writerows(rows)
    return path


def test_a_refit_shows_the_migration_chart_and_what_changed(
    page: Page, server: str, mall_analysis: str, artifacts: Path, tmp_path: Path
) -> None:
    page.goto(f"{server}/?previous={mall_analysis}")
    page.wait_for_selector(f"#previous option[value='{mall_analysis}']", state="attached")
    assert page.locator("#previous").input_value() == mall_analysis
    page.set_input_files("#file", next_month(tmp_path / "mall_next_month.csv"))
    page.click("#start")
    refit = wait_for_analysis_page(page)
    lineage = api_json(server, f"/api/analyses/{refit}")["lineage"]
    assert lineage["previousAnalysisId"] == mall_analysis
    changes = page.locator("#changes")
    assert changes.is_visible()
    assert lineage["moved"] > 0
    assert f"{lineage['moved']} of the {lineage['customersCompared']}" in changes.inner_text()
    widths = dict(charts_loaded(page))
    assert widths["migration"] > 0
    shot(page, artifacts, "analysis-refit")


@pytest.mark.parametrize(
    ("path", "rendered"),
    [
        # Swagger UI: the operations listed
        ("/docs", ".swagger-ui .opblock-summary"),
        # ReDoc: the operations in its side menu
        ("/redoc", "[role=menuitem]"),
    ],
)
def test_the_api_docs_render_with_the_network_off(
    page: Page, server: str, artifacts: Path, path: str, rendered: str
) -> None:
    page.goto(f"{server}{path}")
    page.wait_for_selector(rendered)
    assert page.locator(rendered).count() > 10
    assert "Customer segmentation" in page.content()
    shot(page, artifacts, f"docs-{path.strip('/')}", full_page=False)


def test_a_key_prompt_on_401_and_the_key_sent_after(
    watched: tuple[Page, Watch], server: str, mall_analysis: str
) -> None:
    """Before API keys exist, a 401 is played by the test; the page asks, keeps the key in
    sessionStorage and sends it as X-API-Key."""
    page, watch = watched
    sent: list[str | None] = []

    def guard(route: Any, request: Any) -> None:
        key = request.headers.get("x-api-key")
        sent.append(key)
        if key == "sesame":
            route.continue_()
        else:
            route.fulfill(status=401, json={"detail": "an API key is needed", "errors": []})

    page.route("**/api/analyses?*", guard)
    page.goto(f"{server}/analyses")
    page.locator("#key-dialog").wait_for()
    page.fill("#key-input", "sesame")
    page.keyboard.press("Enter")
    page.locator(f"tr[data-analysis-id='{mall_analysis}']").wait_for()
    assert sent == [None, "sesame"]
    assert page.evaluate("sessionStorage.getItem('segmentation.apiKey')") == "sesame"
    assert page.evaluate("localStorage.getItem('segmentation.apiKey')") is None
    watch.expect_failed_responses()


def test_keyboard_only_upload(page: Page, server: str, artifacts: Path) -> None:
    # A listener for the whole test makes Playwright intercept file choosers from the start.
    # Interception switched on only by expect_file_chooser is a message racing the key press:
    # on a loaded CI machine the chooser opened first, was not intercepted, and never came.
    page.on("filechooser", lambda chooser: None)
    page.goto(f"{server}/")
    page.wait_for_selector("#previous")
    focused = ""
    for _ in range(12):
        page.keyboard.press("Tab")
        focused = page.evaluate("document.activeElement.id")
        if focused == "file":
            break
    assert focused == "file"
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none"
    shot(page, artifacts, "new-analysis-keyboard-focus", full_page=False)
    from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

    chooser = None
    # One more press, as a person would, if a loaded machine let the first one lapse: still
    # only the keyboard, and a broken control fails every time.
    for _ in range(3):
        try:
            with page.expect_file_chooser(timeout=15_000) as opened:
                page.keyboard.press("Space")
        except PlaywrightTimeoutError:
            continue
        chooser = opened.value
        break
    assert chooser is not None, "Space on the focused file input never opened a file chooser"
    chooser.set_files(MALL)
    page.wait_for_selector("#fields-table tbody tr")
    for _ in range(40):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "start":
            break
    page.keyboard.press("Enter")
    wait_for_analysis_page(page)
    assert page.locator("#segments .card").count() >= 2


def test_no_horizontal_scroll_at_390_px(
    browser: Browser, server: str, mall_analysis: str, artifacts: Path
) -> None:
    page, watch = new_page(browser, PHONE)
    try:
        for name, path, ready in [
            ("new-analysis", "/", "#previous option"),
            ("analyses", "/analyses", "#analyses-table tbody tr"),
            ("analysis", f"/analyses/{mall_analysis}", "body[data-ready=true]"),
        ]:
            page.goto(f"{server}{path}")
            page.wait_for_selector(ready, state="attached")
            if name == "new-analysis":
                page.set_input_files("#file", MALL)
                page.check("#orders")
                page.wait_for_selector("#fields-table tbody tr")
            overflow = page.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert overflow <= 0, f"{path} scrolls sideways by {overflow} px at 390 px"
            shot(page, artifacts, f"{name}-390")
    finally:
        page.context.close()
    assert watch.console_errors == [], watch.console_errors
    assert watch.outside_requests == [], watch.outside_requests


def test_a_european_churn_export_reads_right_and_shows_churn_per_segment(
    page: Page, server: str, artifacts: Path
) -> None:
    """A semicolon export with a BOM and blank numeric cells: the preview (read by the
    service as the job will read it) shows the numbers as numbers, the id and the outcome
    for what they are; the analysis page shows each segment's churn beside the overall."""
    page.goto(f"{server}/")
    page.set_input_files("#file", DATASETS / "realworld" / "ecommerce_churn.csv")
    page.wait_for_selector("#fields-table tbody tr")
    fields = page.locator("#fields-table tbody th").all_inner_texts()
    roles = dict(zip(fields, page.locator("#fields-table tbody td.role").all_inner_texts(),
                     strict=True))  # fmt: skip
    assert roles["CustomerID"] == "the customer id"
    assert roles["Churn"].startswith("outcome, reported per segment")
    assert roles["Tenure"] == roles["WarehouseToHome"] == "number"
    shot(page, artifacts, "new-analysis-churn-export")
    page.click("#start")
    analysis_id = wait_for_analysis_page(page)
    stored = api_json(server, f"/api/analyses/{analysis_id}")
    overall = stored["outcomes"][0]["overall"]
    cards = page.locator("#segments .card")
    assert cards.count() == len(stored["clusters"])
    for i in range(cards.count()):
        text = cards.nth(i).inner_text()
        assert "Churn" in text and f"({overall:.0%} overall)" in text, text
    shot(page, artifacts, "analysis-churn-export")
