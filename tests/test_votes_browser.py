"""👍 / 👎 as people see them in chromium: the email's vote links, the vote page and the manage
page's list with Undo, on a phone and a desktop, light and dark: 24 px targets, 4.5:1 contrast."""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime

import pytest
from helpers.browser import check, page_wait, serving, show
from helpers.builders import ARTIFACTS, SECRET, settings_text
from helpers.mailserver import free_port
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions

from digest.config import load_settings
from digest.pipeline import run_once

pytestmark = pytest.mark.slow  # a real browser and `digest serve`: seconds to start

DAY1 = datetime(2025, 11, 17, 6, 0, tzinfo=UTC)


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
