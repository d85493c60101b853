"""A person manages their subscription in chromium: weekly, daily again, a pause, their data."""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime, timedelta

import pytest
from helpers.browser import page_wait, serving
from helpers.builders import ARTIFACTS, SECRET, make_paper, settings_text
from helpers.cycles import GNN
from helpers.mailserver import free_port
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import Select

from digest.config import load_settings
from digest.pipeline import run_once

pytestmark = pytest.mark.slow  # a real browser: seconds to start, load and draw

# Cycles run on the days after today: the page checks a pause against the real date.
T0 = datetime.now(UTC).replace(hour=6, minute=0, second=0, microsecond=0)


def day(n: int) -> datetime:
    return T0 + timedelta(days=n)


@pytest.fixture
def alan(fake_arxiv, mail_server, tmp_path):
    """Alan follows GNN daily and has had a first digest; the endpoint runs as a process."""
    port = free_port()
    config = tmp_path / "settings.toml"
    text = settings_text(api_url=fake_arxiv.url, smtp_port=mail_server.port)
    text = text.replace("https://papers.example.org", f"http://127.0.0.1:{port}")
    text = text.replace('timezone = "Europe/Paris"', 'timezone = "UTC"')
    config.write_text(text + f'\n[web]\nlisten = "127.0.0.1:{port}"\n')
    (tmp_path / "subscribers.csv").write_text(
        "email,name,keywords\nalan@example.org,Alan,Graph Neural Network\n"
    )
    settings = load_settings(config, env={"DIGEST_SECRET": SECRET})
    env = {**os.environ, "DIGEST_CONFIG": str(config), "DIGEST_SECRET": SECRET}
    with serving(env, port):
        yield settings


def cycle_with_news(settings, fake, mail_server, n: int) -> list[list[str]]:
    """Announce one GNN paper for day n, run day n's cycle; return the ids of what was mailed."""
    fake.papers.append(
        make_paper(f"2611.7{n:04d}", f"{GNN} on day {n}", day(n) - timedelta(hours=8))
    )
    mail_server.handler.received.clear()
    run_once(settings, clock=lambda: day(n))
    return [
        re.findall(r"arxiv.org/abs/(2611\.7\d{4})v", r.message.get_body(("html",)).get_content())
        for r in mail_server.received
    ]


def manage_link(mail_server) -> str:
    html = mail_server.received[-1].message.get_body(("html",)).get_content()
    return re.search(r'<a href="([^"]+)">Manage your subscription</a>', html)[1].replace(
        "&amp;", "&"
    )


def save(browser, name: str) -> None:
    browser.find_element(By.ID, "save").click()
    page_wait(browser).until(expected_conditions.presence_of_element_located((By.ID, "saved")))
    browser.save_screenshot(str(ARTIFACTS / f"manage-{name}.png"))


def test_weekly_daily_pause_and_delete_through_the_page(alan, browser, fake_arxiv, mail_server):
    ARTIFACTS.mkdir(exist_ok=True)
    settings = alan
    assert cycle_with_news(settings, fake_arxiv, mail_server, 0) == [["2611.70000"]]
    link = manage_link(mail_server)
    browser.set_window_size(420, 1200)
    browser.get(link)
    assert browser.find_element(
        By.CSS_SELECTOR, 'input[value="graph neural network"]'
    ).is_selected()
    browser.save_screenshot(str(ARTIFACTS / "manage-0-page.png"))

    # Weekly, on the weekday of day 3: days 1 and 2 send nothing, day 3 all three papers.
    browser.find_element(By.CSS_SELECTOR, 'input[value="weekly"]').click()
    Select(browser.find_element(By.NAME, "weekday")).select_by_value(str(day(3).weekday()))
    save(browser, "1-weekly")
    assert cycle_with_news(settings, fake_arxiv, mail_server, 1) == []
    assert cycle_with_news(settings, fake_arxiv, mail_server, 2) == []
    assert cycle_with_news(settings, fake_arxiv, mail_server, 3) == [
        ["2611.70003", "2611.70002", "2611.70001"]
    ]

    # Daily again: day 4 has its own paper only, nothing lost or repeated.
    browser.get(link)
    browser.find_element(By.CSS_SELECTOR, 'input[value="daily"]').click()
    save(browser, "2-daily")
    assert cycle_with_news(settings, fake_arxiv, mail_server, 4) == [["2611.70004"]]

    # A pause until day 6: nothing on day 5; day 6 has day 6's paper and says the pause ended.
    browser.get(link)
    field = browser.find_element(By.ID, "paused_until")
    browser.execute_script("arguments[0].value = arguments[1]", field, day(6).date().isoformat())
    save(browser, "3-paused")
    assert cycle_with_news(settings, fake_arxiv, mail_server, 5) == []
    assert cycle_with_news(settings, fake_arxiv, mail_server, 6) == [["2611.70006"]]
    text = mail_server.received[0].message.get_body(("plain",)).get_content()
    assert "Your pause ended on" in " ".join(text.split())

    # Delete my data: the page shows what is kept, then deletes it; no more mail.
    browser.get(link)
    browser.find_element(By.PARTIAL_LINK_TEXT, "See what is kept").click()
    kept = page_wait(browser).until(
        expected_conditions.presence_of_element_located((By.ID, "delete"))
    )
    assert "alan@example.org" in browser.page_source
    browser.save_screenshot(str(ARTIFACTS / "manage-4-data.png"))
    kept.click()
    page_wait(browser).until(
        expected_conditions.text_to_be_present_in_element((By.ID, "confirmation"), "deleted")
    )
    assert cycle_with_news(settings, fake_arxiv, mail_server, 7) == []
