"""A real browser (Debian's headless chromium) unsubscribes from a delivered email."""

from __future__ import annotations

import os

import pytest
from helpers.browser import page_wait, serving
from helpers.builders import ARTIFACTS, SECRET, settings_text
from helpers.cycles import DAY1
from helpers.mailserver import free_port
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions

from digest.config import load_settings
from digest.pipeline import run_once
from digest.store import Store

pytestmark = pytest.mark.slow  # a real browser: seconds to start, load and draw


@pytest.fixture
def served(fake_arxiv, mail_server, tmp_path):
    """Run a cycle, then `digest serve` as a real process on a free port."""
    port = free_port()
    config = tmp_path / "settings.toml"
    text = settings_text(api_url=fake_arxiv.url, smtp_port=mail_server.port)
    text = text.replace("https://papers.example.org", f"http://127.0.0.1:{port}")
    config.write_text(text + f'\n[web]\nlisten = "127.0.0.1:{port}"\n')
    (tmp_path / "subscribers.csv").write_text("email,name,keywords\nada@example.org,Ada,\n")
    env = {**os.environ, "DIGEST_CONFIG": str(config), "DIGEST_SECRET": SECRET}
    settings = load_settings(config, env={"DIGEST_SECRET": SECRET})
    run_once(settings, clock=lambda: DAY1)
    with serving(env, port):
        yield settings


def test_click_unsubscribe_in_the_email_then_confirm(served, mail_server, browser, tmp_path):
    ARTIFACTS.mkdir(exist_ok=True)
    (message,) = mail_server.by_recipient()["ada@example.org"]
    email_file = tmp_path / "email.html"
    email_file.write_text(message.get_body(("html",)).get_content(), encoding="utf-8")

    browser.get(email_file.as_uri())
    browser.save_screenshot(str(ARTIFACTS / "1-email.png"))
    browser.find_element(By.LINK_TEXT, "Unsubscribe from Daily Papers").click()
    wait = page_wait(browser)
    button = wait.until(expected_conditions.element_to_be_clickable((By.ID, "unsubscribe")))
    assert "a•••@example.org" in browser.page_source
    browser.save_screenshot(str(ARTIFACTS / "2-confirm.png"))
    with Store(served.database) as store:
        assert not store.is_suppressed("ada@example.org")  # opening the link changed nothing
    button.click()
    heading = wait.until(expected_conditions.presence_of_element_located((By.ID, "confirmation")))
    assert heading.text == "You are unsubscribed"
    browser.save_screenshot(str(ARTIFACTS / "3-unsubscribed.png"))
    with Store(served.database) as store:
        assert store.is_suppressed("ada@example.org")
    browser.find_element(By.ID, "resubscribe").click()
    # The next page's heading (the old one says "unsubscribed"). Waiting for the old one to go
    # stale instead asked chromium about a page being torn down: "unhandled inspector error".
    heading = wait.until(
        expected_conditions.text_to_be_present_in_element(
            (By.ID, "confirmation"), "You are subscribed again"
        )
    )
    browser.save_screenshot(str(ARTIFACTS / "4-resubscribed.png"))
    with Store(served.database) as store:
        assert not store.is_suppressed("ada@example.org")
