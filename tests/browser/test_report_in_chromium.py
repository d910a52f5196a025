"""The HTML report in a real headless Chromium: it loads without console errors and shows
every segment. Runs with `make test-browser` (it needs Debian's chromium)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import DATASETS

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--enable-logging=stderr", "--v=0",
]  # fmt: skip


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report")
    script = Path(sys.executable).with_name("segmentation")
    subprocess.run(
        [str(script), "analyze", str(DATASETS / "mall_customers.csv"), "--out", str(out),
         "--features", "Annual Income (k$),Spending Score (1-100)", "--quiet"],
        check=True, timeout=300,
    )  # fmt: skip
    return out / "report.html"


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is installed by `make test-browser`")
def test_the_report_renders_without_console_errors(report: Path, tmp_path: Path) -> None:
    assert CHROMIUM is not None
    profile = tmp_path / "profile"
    screenshot = tmp_path / "report.png"
    result = subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "--window-size=1200,2400",
         f"--screenshot={screenshot}", "--dump-dom", report.as_uri()],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    console_errors = [
        line for line in result.stderr.splitlines()
        if re.search(r"CONSOLE|Uncaught|Failed to load resource", line)
    ]  # fmt: skip
    assert console_errors == [], console_errors
    dom = result.stdout
    rows = re.findall(r"<tr class=\"segment\">.*?<strong>(.*?)</strong>", dom, flags=re.S)
    assert rows == [
        "Mainstream Customers", "High-Value Customers", "Cautious Affluent Customers",
        "Budget-Conscious Customers", "Impulsive Spenders",
    ]  # fmt: skip
    assert dom.count("<img") == 5
    assert screenshot.stat().st_size > 50_000
