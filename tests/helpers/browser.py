"""Debian's headless chromium for the browser tests, `digest serve` as a real process, and what
the tests measure on a page: sizes, contrast and sideways scrolling."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.support.ui import WebDriverWait

WINDOW = (800, 1000)  # the window's size at start and after a reset
FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    f"--window-size={WINDOW[0]},{WINDOW[1]}",
)


def chromium_paths() -> tuple[str, str]:
    """Return Debian's chromium and chromedriver; fail clearly when they are missing."""
    browser = shutil.which("chromium") or "/usr/bin/chromium"
    driver = shutil.which("chromedriver") or "/usr/bin/chromedriver"
    if not (os.path.exists(browser) and os.path.exists(driver)):
        pytest.fail("install Debian's chromium and chromium-driver (.ci/run does)")
    return browser, driver


@contextlib.contextmanager
def chromium(profile: Path) -> Iterator[webdriver.Chrome]:
    """Run headless chromium with its profile in `profile`; quit it afterwards."""
    binary, driver_path = chromium_paths()
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    try:
        yield driver
    finally:
        driver.quit()


@contextlib.contextmanager
def serving(env: dict[str, str], port: int, log: Path | None = None) -> Iterator[str]:
    """Run `digest serve` as a real process until /healthz answers; yield its URL."""
    errors = log.open("w") if log else subprocess.DEVNULL
    process = subprocess.Popen([sys.executable, "-m", "digest", "serve"], env=env, stderr=errors)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                urllib.request.urlopen(url + "/healthz", timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "digest serve did not start"
                time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)
        if log:
            errors.close()


# What a wait retries while a page is replaced: besides a stale element, chromium may answer a
# question about the page being torn down with "unhandled inspector error".
PAGE_CHANGING = (WebDriverException,)


# Each target's size, and its text's contrast with the background it is drawn on (the nearest
# opaque one, as WCAG computes it); and whether the page scrolls sideways.
MEASURE = """
function lum(rgb) {
  const c = rgb.match(/[\\d.]+/g).slice(0, 3).map(Number).map(v => v / 255)
    .map(v => v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4));
  return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2];
}
function behind(el) {
  for (; el; el = el.parentElement) {
    const bg = getComputedStyle(el).backgroundColor;
    if (!/rgba\\(.*, 0\\)$/.test(bg) && bg !== 'transparent') return bg;
  }
  return 'rgb(255, 255, 255)';
}
const found = [...document.querySelectorAll(arguments[0])].map(el => {
  const box = el.getBoundingClientRect();
  const a = lum(getComputedStyle(el).color), b = lum(behind(el));
  return {text: el.textContent.trim().slice(0, 30), width: box.width, height: box.height,
          right: box.right, contrast: (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05)};
});
return {targets: found, scroll: document.documentElement.scrollWidth};
"""


def show(browser, width: int, scheme: str, url: str | None = None) -> None:
    """Set the width (a phone below 500 px) and colour scheme, then open url (if any)."""
    browser.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": width < 500},
    )
    browser.execute_cdp_cmd(
        "Emulation.setEmulatedMedia",
        {"features": [{"name": "prefers-color-scheme", "value": scheme}]},
    )
    if url:
        browser.get(url)


def measure(browser, selector: str) -> dict:
    """Return the selected elements' boxes and contrast, and how wide the page scrolls."""
    return browser.execute_script(MEASURE, selector)


def check(browser, selector: str, width: int, least: int, name: str) -> None:
    """Assert at least `least` targets, each 24 px at least, readable, inside the width."""
    found = measure(browser, selector)
    targets = found["targets"]
    assert len(targets) >= least, (name, found)
    assert found["scroll"] <= width, (name, found)  # no sideways scrolling
    for target in targets:
        assert target["width"] >= 24 and target["height"] >= 24, (name, target)
        assert target["contrast"] >= 4.5, (name, target)
        assert target["right"] <= width, (name, target)


def page_wait(driver: webdriver.Chrome, timeout: float = 10) -> WebDriverWait:
    """Return a wait that asks every 50 ms (selenium's 0.5 s idles away each page change)."""
    return WebDriverWait(driver, timeout, poll_frequency=0.05, ignored_exceptions=PAGE_CHANGING)


class SharedChromium:
    """One headless chromium for the browser tests of a worker, made fresh for each test.

    Starting and quitting chromium costs about 1.5 s; between tests it is reset instead: a blank
    page, no cookies, cache or storage, no emulation, the default window. A browser the reset
    cannot reach is replaced.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.stack = contextlib.ExitStack()
        self.driver: webdriver.Chrome | None = None
        self.starts = 0

    def get(self) -> webdriver.Chrome:
        """Return the browser, started or reset."""
        if self.driver is not None:
            try:
                self._reset(self.driver)
                return self.driver
            except Exception:  # crashed or hung: a dead driver raises anything
                with contextlib.suppress(Exception):
                    self.close()
                self.stack = contextlib.ExitStack()
        self.starts += 1
        self.driver = self.stack.enter_context(chromium(self.folder / f"profile-{self.starts}"))
        return self.driver

    @staticmethod
    def _reset(driver: webdriver.Chrome) -> None:
        driver.get("about:blank")
        for command in (
            "Network.clearBrowserCookies",
            "Network.clearBrowserCache",
            "Emulation.clearDeviceMetricsOverride",
        ):
            driver.execute_cdp_cmd(command, {})
        driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "", "features": []})
        driver.execute_cdp_cmd("Storage.clearDataForOrigin", {"origin": "*", "storageTypes": "all"})
        driver.set_window_size(*WINDOW)

    def leave(self) -> None:
        """Open a blank page (a test's page may not outlive its servers); reset at the next get."""
        if self.driver is not None:
            with contextlib.suppress(Exception):
                self.driver.get("about:blank")

    def close(self) -> None:
        """Quit the browser."""
        self.driver = None
        self.stack.close()
