"""Open the report in headless Chromium: charts render, no console errors, screenshot saved.

Uses Debian's ``chromium`` and ``chromium-driver`` (``make test`` installs them with apt-get
when missing) through selenium with explicit paths; selenium-manager never downloads anything
(``SE_OFFLINE=true``). The page is opened from ``file://``: it must work offline.
"""

from __future__ import annotations

import shutil

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--no-first-run", "--window-size=1400,2400"]


@pytest.fixture
def browser(tmp_path, monkeypatch):
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not shutil.which(p)]
    if missing:
        pytest.fail(f"{', '.join(missing)} not found: install Debian's browser with "
                    "`apt-get install -y chromium chromium-driver` (make test does this)")
    monkeypatch.setenv("SE_OFFLINE", "true")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in FLAGS:
        opts.add_argument(flag)
    opts.add_argument(f"--user-data-dir={tmp_path / 'chromium-profile'}")
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    driver.set_page_load_timeout(180)
    try:
        yield driver
    finally:
        driver.quit()


def test_report_renders_in_chromium(report_dir, browser, tmp_path):
    _, out = report_dir
    browser.get((out / "index.html").resolve().as_uri())
    state = browser.execute_script("""
        const imgs = [...document.querySelectorAll('figure.chart img')];
        return {
          ready: document.readyState,
          sections: [...document.querySelectorAll('section[id]')].map(s => s.id),
          charts: [...document.querySelectorAll('figure.chart')].map(f => f.dataset.chart),
          images: imgs.map(i => [i.closest('figure').dataset.chart, i.complete, i.naturalWidth]),
          polylines: document.querySelectorAll('figure[data-chart="best-so-far"] svg polyline').length,
          svgWidth: Math.max(0, ...[...document.querySelectorAll('figure.chart svg')]
                                   .map(s => s.getBoundingClientRect().width)),
          heatmapCells: document.querySelectorAll('#ground-truth-table td[data-value]').length,
          tauCells: document.querySelectorAll('#tau-table td').length,
          noData: document.querySelectorAll('p.no-data').length,
        };""")
    # Grow the window to the whole page, so the screenshot shows every section.
    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(1400, min(height + 150, 12_000))
    shot = tmp_path / "report.png"
    assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
    severe = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not severe, severe
    assert state["ready"] == "complete"
    assert state["sections"] == ["ground-truth", "scores", "taus", "critical-difference", "sweeps"]
    assert {"gt-heatmap", "score-grid", "cd-diagram", "best-so-far",
            "best-so-far-png"} <= set(state["charts"])
    assert len(state["images"]) == 4
    for chart, complete, width in state["images"]:
        assert complete and width > 0, chart
    assert state["polylines"] == 4 and state["svgWidth"] > 0
    assert state["heatmapCells"] == 16 and state["tauCells"] == 12
    assert state["noData"] == 0
