"""The HTML report is one self-contained file whose charts render in a real headless Chromium
(Debian packages chromium and chromium-driver; .ci/run installs them)."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from tests.simulator.test_batch import batch
from tests.simulator.test_cli import clinsim

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")


@pytest.fixture
def html_report(tmp_path: Path, roles) -> Path:
    store = tmp_path / "runs.sqlite"
    assert batch(store, "r", roles, "--persona", "calm-adult", "--repeats", "2").returncode == 0
    out = tmp_path / "report.html"
    proc = clinsim("report", "r", "--store", str(store), "--format", "html", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    return out


def test_html_report_is_self_contained(html_report: Path) -> None:
    html = html_report.read_text(encoding="utf-8")
    assert "<script" not in html  # nothing to run, nothing fetched
    assert not re.search(r"""(?:src|href)=["']?https?:""", html)
    for chart in ("chart-axis", "chart-family", "chart-distribution"):
        assert f'id="{chart}"' in html
    assert "not validated by physicians" in html


def test_html_report_charts_render_in_headless_chromium(html_report: Path) -> None:
    if not (CHROMIUM and DRIVER):
        if os.environ.get("CLINSIM_REQUIRE_CHROMIUM"):
            pytest.fail("chromium and chromium-driver are required here (CI installs them)")
        pytest.skip("chromium and chromium-driver are not installed (apt-get install them)")
    from selenium import webdriver
    from selenium.webdriver.common.by import By

    opts = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        opts.add_argument(arg)
    opts.binary_location = CHROMIUM  # type: ignore[assignment]
    driver = webdriver.Chrome(options=opts, service=webdriver.ChromeService(executable_path=DRIVER))
    try:
        driver.set_window_size(1200, 900)
        driver.get(html_report.as_uri())
        assert "clinsim report" in driver.title
        charts = {
            c.get_attribute("id"): c for c in driver.find_elements(By.CSS_SELECTOR, "svg.chart")
        }
        assert {"chart-axis", "chart-family", "chart-distribution"} <= set(charts)
        for chart in charts.values():
            assert chart.is_displayed()
            assert chart.size["width"] > 300 and chart.size["height"] > 50
        bars = driver.find_elements(By.CSS_SELECTOR, "#chart-axis rect.bar")
        assert bars and max(b.size["width"] for b in bars) > 10  # bars drawn, not empty
        hist = driver.find_elements(By.CSS_SELECTOR, "#chart-distribution rect.bar")
        assert sum(1 for b in hist if b.size["height"] > 0) >= 1
        score = driver.find_element(By.ID, "kpi-score").text
        assert re.fullmatch(r"-?\d\.\d{3}", score)
    finally:
        driver.quit()
