"""Browser fixtures: a real `uvicorn main:app` on 127.0.0.1 and Debian's Chromium driven by
Playwright (`make test-browser` installs both; Playwright downloads no browser of its own).

Every page runs with the network off: any request to a host other than 127.0.0.1 is aborted and
recorded, and a test fails if a page tried one or logged a console error. Screenshots go to
`test-artifacts/browser/` (git-ignored by the `.gitignore` written there) to be looked at.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.e2e.conftest import DATASETS, HOST, ROOT, SERVER_ENV, _serve

if TYPE_CHECKING:
    from playwright.sync_api import Browser, ConsoleMessage, Page, Playwright, Request, Route

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
# as the machine notes say: without the background-networking flags Chromium keeps trying
# Google's hosts, which this closed network refuses
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
ARTIFACTS = ROOT / "test-artifacts" / "browser"
MALL = DATASETS / "mall_customers.csv"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
# generous: another engineer may be running benchmarks on the same two cores
JOB_TIMEOUT_MS = 120_000


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The base URL of a server of the e2e suite's configuration (3 MB JSON body limit)."""
    yield from _serve(SERVER_ENV, tmp_path_factory.mktemp("browser-server"))


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield chromium
    chromium.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS.parent / ".gitignore").write_text("*\n")
    return ARTIFACTS


@dataclass
class Watch:
    """What a page did that it should not: console errors, uncaught errors, outside requests."""

    console_errors: list[str] = field(default_factory=list)
    outside_requests: list[str] = field(default_factory=list)

    def on_console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.console_errors.append(f"{message.text} ({message.location.get('url')})")

    def expect_failed_responses(self) -> None:
        """An API error the test provoked is logged by Chromium as a failed resource."""
        self.console_errors = [e for e in self.console_errors if "Failed to load resource" not in e]


def _only_local(watch: Watch) -> Any:
    def handle(route: Route, request: Request) -> None:
        if urlsplit(request.url).hostname in (HOST, None) or request.url.startswith(
            ("blob:", "data:")
        ):
            route.continue_()
        else:
            watch.outside_requests.append(request.url)
            route.abort("internetdisconnected")

    return handle


def new_page(browser: Browser, viewport: dict[str, int]) -> tuple[Page, Watch]:
    context = browser.new_context(viewport=viewport, accept_downloads=True)  # type: ignore[arg-type]
    # generous: the two cores may be shared with another suite
    context.set_default_timeout(60_000)
    page = context.new_page()
    watch = Watch()
    page.on("console", watch.on_console)
    page.on("pageerror", lambda error: watch.console_errors.append(f"uncaught: {error}"))
    context.route("**/*", _only_local(watch))
    return page, watch


@pytest.fixture
def watched(browser: Browser) -> Iterator[tuple[Page, Watch]]:
    """A desktop-sized page; the test fails if it logged an error or reached outside."""
    page, watch = new_page(browser, DESKTOP)
    yield page, watch
    page.context.close()
    assert watch.console_errors == [], watch.console_errors
    assert watch.outside_requests == [], watch.outside_requests


@pytest.fixture
def page(watched: tuple[Page, Watch]) -> Page:
    return watched[0]


def stored_analysis(base_url: str, path: Path = MALL, **options: Any) -> str:
    """An analysis made through the jobs API (not the page): its id once the job succeeded."""
    import json
    import time

    with httpx.Client(base_url=base_url, timeout=120) as http:
        with path.open("rb") as handle:
            form = {"options": json.dumps({"includeCustomers": False, **options})}
            submitted = http.post("/api/jobs", files={"file": (path.name, handle)}, data=form)
        assert submitted.status_code == 202, submitted.text
        job_id = submitted.json()["jobId"]
        deadline = time.monotonic() + JOB_TIMEOUT_MS / 1000
        while time.monotonic() < deadline:
            job = http.get(f"/api/jobs/{job_id}").json()
            if job["status"] == "succeeded":
                return str(job["analysisId"])
            assert job["status"] in ("queued", "running"), job
            time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish")


@pytest.fixture(scope="session")
def mall_analysis(server: str) -> str:
    return stored_analysis(server)
