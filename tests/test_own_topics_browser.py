"""A reader writes their own topics in chromium: a mistake named by its line, then fixed."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import pytest
from helpers.browser import page_wait, serving
from helpers.builders import ARTIFACTS, SECRET, settings_text, stored_paper
from helpers.mailserver import free_port
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions

from digest.config import load_settings
from digest.store import Store
from digest.tokens import manage_token, token_id

pytestmark = pytest.mark.slow  # a real browser and `digest serve`: seconds

ADA = "ada@example.org"
PAPERS = [  # (id, title, authors, category, days ago it arrived)
    ("2611.00001", "Graph neural networks for ranking", "Ada Lovelace", "cs.IR", 1),
    ("2611.00002", "Sparse graph neural networks", "Alan Turing", "cs.LG", 2),
    ("2611.00003", "Dense retrieval with graph neural networks", "Ada Lovelace", "cs.IR", 3),
    ("2610.00004", "Graph neural networks of old", "Ada Lovelace", "cs.IR", 40),
]


@pytest.fixture
def page_link(tmp_path):
    """Ada's manage link, with papers of the last weeks in the history; `digest serve` runs."""
    port = free_port()
    config = tmp_path / "settings.toml"
    text = settings_text(api_url="http://127.0.0.1:9/api/query")
    text = text.replace("https://papers.example.org", f"http://127.0.0.1:{port}")
    config.write_text(text + f'\n[web]\nlisten = "127.0.0.1:{port}"\n')
    (tmp_path / "subscribers.csv").write_text(f"email,name,keywords\n{ADA},Ada,\n")
    settings = load_settings(config, env={"DIGEST_SECRET": SECRET})
    now = datetime.now(UTC)
    with Store(settings.database) as store:
        store.remember_recipients([(token_id(SECRET.encode(), ADA), ADA)])
        store.record_papers(
            stored_paper(id=i, title=t, authors=(a,), primary_category=c, categories=(c,))
            for i, t, a, c, _ in PAPERS
        )
        with store.transaction():
            for number, (paper_id, *_, age) in enumerate(PAPERS, start=1):
                store.record_arrivals([paper_id], number, now - timedelta(days=age))
    env = {**os.environ, "DIGEST_CONFIG": str(config), "DIGEST_SECRET": SECRET}
    with serving(env, port):
        yield (
            settings,
            f"http://127.0.0.1:{port}/manage?token={manage_token(SECRET.encode(), ADA, 0)}",
        )


def own_topics(settings) -> tuple[str, ...] | None:
    with Store(settings.database) as store:
        person = store.person(ADA)
    return person.own_topics if person else None


def press_save(browser, waiting_for: str):
    browser.find_element(By.ID, "save").click()
    return page_wait(browser).until(
        expected_conditions.presence_of_element_located((By.ID, waiting_for))
    )


def test_three_topics_one_wrong_then_fixed(page_link, browser):
    ARTIFACTS.mkdir(exist_ok=True)
    settings, link = page_link
    browser.set_window_size(420, 1400)
    browser.get(link)
    box = browser.find_element(By.ID, "own_topics")
    label = browser.find_element(By.CSS_SELECTOR, 'label[for="own_topics"]')
    assert label.text == "Your topics, one per line"
    box.send_keys("graph neural\nau:\ncat:cs.IR")
    errors = press_save(browser, "own_topics_errors")
    browser.execute_script("arguments[0].scrollIntoView()", errors)
    browser.save_screenshot(str(ARTIFACTS / "own-topics-1-mistake.png"))
    assert "Line 2 (au:): au: needs something after it, as in au:Surname" in errors.text
    assert "Line 1" not in errors.text and "Line 3" not in errors.text
    alert = browser.find_element(By.ID, "own_topics_problem")
    assert alert.get_attribute("role") == "alert" and "Nothing was saved" in alert.text
    box = browser.find_element(By.ID, "own_topics")
    assert box.get_attribute("value") == "graph neural\nau:\ncat:cs.IR"  # kept, to fix
    assert box.get_attribute("aria-invalid") == "true"
    assert "own_topics_errors" in box.get_attribute("aria-describedby")
    assert own_topics(settings) is None  # nothing saved

    box.clear()
    box.send_keys("graph neural\nau:Lovelace\ncat:cs.IR")
    press_save(browser, "saved")
    browser.execute_script(
        "arguments[0].scrollIntoView()", browser.find_element(By.ID, "own_topics")
    )
    browser.save_screenshot(str(ARTIFACTS / "own-topics-2-saved.png"))
    assert own_topics(settings) == ("graph neural", "au:Lovelace", "cat:cs.IR")
    found = browser.find_elements(By.CSS_SELECTOR, 'ul[aria-labelledby="own_topics_found"] > li')
    counts = [" ".join(item.text.split()).split(", the newest")[0] for item in found]
    assert counts == ["graph neural: 3 papers", "au:Lovelace: 2 papers", "cat:cs.IR: 2 papers"]
    assert "Graph neural networks for ranking" in found[0].text  # the newest first
    assert not [item for item in found if "of old" in item.text]  # 40 days ago
    assert browser.find_elements(By.ID, "own_topics_errors") == []
