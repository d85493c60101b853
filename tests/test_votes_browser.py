"""👍 / 👎 as people see them in chromium: the email's vote links, the vote page and the manage
page's list with Undo, on a phone and a desktop, light and dark: 24 px targets, 4.5:1 contrast."""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime

import pytest
from helpers.browser import page_wait, serving
from helpers.builders import ARTIFACTS, SECRET, settings_text
from helpers.mailserver import free_port
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions

from digest.config import load_settings
from digest.pipeline import run_once

pytestmark = pytest.mark.slow  # a real browser and `digest serve`: seconds to start

DAY1 = datetime(2025, 11, 17, 6, 0, tzinfo=UTC)
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


@pytest.fixture
def alan(fake_arxiv, mail_server, tmp_path):
    """Alan, mailed a first digest of every GNN fixture paper; the endpoint as a process."""
    port = free_port()
    config = tmp_path / "settings.toml"
    text = settings_text(api_url=fake_arxiv.url, smtp_port=mail_server.port)
    text = text.replace("https://papers.example.org", f"http://127.0.0.1:{port}")
    text = text.replace("first_run_days = 2", "first_run_days = 10000")
    config.write_text(text + f'\n[web]\nlisten = "127.0.0.1:{port}"\n')
    (tmp_path / "subscribers.csv").write_text(
        "email,name,keywords\nalan@example.org,Alan,Graph Neural Network\n"
    )
    settings = load_settings(config, env={"DIGEST_SECRET": SECRET})
    assert run_once(settings, clock=lambda: DAY1).ok
    env = {**os.environ, "DIGEST_CONFIG": str(config), "DIGEST_SECRET": SECRET}
    with serving(env, port):
        yield mail_server.received[-1].message


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


def check(browser, selector: str, width: int, least: int, name: str) -> None:
    """Assert at least `least` targets, each 24 px at least, readable, inside the width."""
    found = browser.execute_script(MEASURE, selector)
    targets = found["targets"]
    assert len(targets) >= least, (name, found)
    assert found["scroll"] <= width, (name, found)  # no sideways scrolling
    for target in targets:
        assert target["width"] >= 24 and target["height"] >= 24, (name, target)
        assert target["contrast"] >= 4.5, (name, target)
        assert target["right"] <= width, (name, target)


def press(browser, selector: str, done: str) -> None:
    """Press a button and wait for the next page's element `done` (an id)."""
    browser.find_element(By.CSS_SELECTOR, selector).click()
    page_wait(browser).until(expected_conditions.presence_of_element_located((By.ID, done)))


def test_vote_buttons_are_large_and_readable_in_the_email_and_on_the_pages(alan, browser, tmp_path):
    ARTIFACTS.mkdir(exist_ok=True)
    message = alan
    email_file = tmp_path / "email.html"
    email_file.write_text(message.get_body(("html",)).get_content(), encoding="utf-8")
    papers = len(re.findall(r"<h3>", email_file.read_text(encoding="utf-8")))
    assert papers >= 5
    for width in (375, 1024):
        for scheme in ("light", "dark"):
            show(browser, width, scheme, email_file.as_uri())
            check(browser, ".vt a", width, 2 * papers, f"email {width} {scheme}")
            browser.save_screenshot(str(ARTIFACTS / f"email-votes-{width}-{scheme}.png"))

    text = message.get_body(("plain",)).get_content()
    up = re.search(r"More like this: (\S+)", text)[1]
    show(browser, 375, "light", up)
    check(browser, "button#vote", 375, 1, "vote page")
    browser.save_screenshot(str(ARTIFACTS / "vote-page-375.png"))
    press(browser, "button#vote", "recorded")
    manage = re.search(r"Manage your subscription \(.*?\): (\S+)", text, re.S)[1]
    browser.get(manage)
    for width in (375, 1024):
        for scheme in ("light", "dark"):
            show(browser, width, scheme)
            check(browser, "button.undo", width, 1, f"manage {width} {scheme}")
            if width == 375:
                browser.execute_script("document.getElementById('votes').scrollIntoView()")
                browser.save_screenshot(str(ARTIFACTS / f"manage-votes-{scheme}.png"))
    press(browser, "button.undo", "undone")
    assert browser.find_elements(By.CSS_SELECTOR, "button.undo") == []
