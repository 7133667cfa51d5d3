"""Headless Chromium (Debian's ``chromium`` + ``chromedriver``, which ``make test`` installs) for
the tests that look at pages: the report and the MLflow UI."""

from __future__ import annotations

import contextlib
import shutil

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--no-first-run"]


@contextlib.contextmanager
def chromium(tmp_path, monkeypatch, *, width: int = 1400, height: int = 1000,
             console_log: bool = False):
    """A selenium driver of headless Chromium at ``width`` x ``height``, offline, with its own
    profile folder; quit on exit. Fails (not skips) without the browser."""
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not shutil.which(p)]
    if missing:
        pytest.fail(f"{', '.join(missing)} not found: install Debian's browser with "
                    "`apt-get install -y chromium chromium-driver` (make test does this)")
    monkeypatch.setenv("SE_OFFLINE", "true")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in FLAGS + [f"--window-size={width},{height}",
                         f"--user-data-dir={tmp_path / 'chromium-profile'}"]:
        opts.add_argument(flag)
    if console_log:
        opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    driver.set_page_load_timeout(180)
    try:
        yield driver
    finally:
        driver.quit()
