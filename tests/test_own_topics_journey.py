"""Issue 18's first acceptance, in one journey: a reader writes their own topics in chromium,
from the manage link of a digest they received, and the next cycles' mail follows them.

One `digest serve`, one browser, three cycles against the fake arXiv harvesting cs.LG; each
message is read from the bytes the SMTP server received.
"""

from __future__ import annotations

import email
import email.policy
import html
import os
import re
from datetime import timedelta

import pytest
from helpers.browser import PAGE_CHANGING, serving
from helpers.builders import SECRET, make_paper, settings_text
from helpers.cycles import DAY1, GNN, LLM
from helpers.fake_arxiv import FakeArxiv
from helpers.mailserver import MailServer, free_port
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from digest.config import load_settings
from digest.pipeline import run_once
from digest.store import Store

pytestmark = pytest.mark.slow  # a real browser, `digest serve` and three cycles: seconds

ADA, BOB, GRACE = "ada@example.org", "bob@example.org", "grace@example.org"
READERS = f"""email,name,keywords
{ADA},Ada,{GNN}
{BOB},Bob,{GNN}
{GRACE},Grace,{LLM}
"""
PHRASE, AUTHOR, CATEGORY = '"sparse attention" -survey', "au:Muller", "cat:stat.ML diffusion"
DAY2, DAY3 = DAY1 + timedelta(days=1), DAY1 + timedelta(days=2)


def paper(pid: str, title: str, day, hours: float, **changes):
    """Return a cs.LG paper updated `hours` before `day` (harvested unless changed)."""
    changes.setdefault("categories", ["cs.LG"])
    changes.setdefault("primary_category", changes["categories"][0])
    return make_paper(pid, title, day - timedelta(hours=hours), **changes)


MULLER = ["Jürgen Müller"]
FIRST = paper("2511.10001", f"{GNN} basics", DAY1, 10)
# The second day's news: what each topic should catch, and what none should.
SPARSE = paper("2511.20001", "Sparse attention for long documents", DAY2, 9)
SURVEY = paper("2511.20002", "A survey of sparse attention", DAY2, 9.5)  # excluded
FOLDING = paper("2511.20003", "Protein folding at scale", DAY2, 10, authors=MULLER)
TABULAR = paper(
    "2511.20004", "Diffusion for tabular data", DAY2, 11, categories=["cs.LG", "stat.ML"]
)
IMAGES = paper("2511.20005", "Diffusion of images", DAY2, 11.5)  # not in stat.ML
BOTH = paper("2511.20006", "Sparse attention in diffusion transformers", DAY2, 12, authors=MULLER)
LISTED = paper("2511.20007", f"{GNN} with sparse attention", DAY2, 12.5)  # Ada's list topic too
CHEMISTRY = paper("2511.20008", "Quantum chemistry at scale", DAY2, 13)
PRETRAIN = paper("2511.20009", f"{LLM} pretraining", DAY2, 13.5)
RETRIEVAL = paper("2511.20010", "Sparse attention for retrieval", DAY2, 14, categories=["cs.IR"])
SECOND = [SPARSE, SURVEY, FOLDING, TABULAR, IMAGES, BOTH, LISTED, CHEMISTRY, PRETRAIN, RETRIEVAL]
# The third day's, after Ada removed her category topic.
TIMESERIES = paper(
    "2511.30001", "Diffusion for time series", DAY3, 9, categories=["stat.ML", "cs.LG"]
)
REVISITED = paper("2511.30002", "Sparse attention revisited", DAY3, 10)
FOLDED = paper("2511.30003", "Folding proteins again", DAY3, 11, authors=["Anna Muller"])
THIRD = [TIMESERIES, REVISITED, FOLDED]


@pytest.fixture
def site(tmp_path, monkeypatch):
    """Settings harvesting cs.LG, the fake arXiv, an SMTP server and `digest serve` running."""
    monkeypatch.setenv("DIGEST_SECRET", SECRET)
    with FakeArxiv([FIRST]) as fake, MailServer() as mail:
        port = free_port()
        text = settings_text(api_url=fake.url, smtp_port=mail.port, keywords=(GNN, LLM))
        text = text.replace("[arxiv]\n", '[arxiv]\nharvest = ["cs.LG"]\n')
        text = text.replace("https://papers.example.org", f"http://127.0.0.1:{port}")
        config = tmp_path / "settings.toml"
        config.write_text(text + f'\n[web]\nlisten = "127.0.0.1:{port}"\n', encoding="utf-8")
        (tmp_path / "subscribers.csv").write_text(READERS, encoding="utf-8")
        settings = load_settings(config)
        env = {**os.environ, "DIGEST_CONFIG": str(config), "DIGEST_SECRET": SECRET}
        with serving(env, port, log=tmp_path / "serve.log") as url:
            yield settings, fake, mail, url


def cycle(settings, mail, day) -> dict:
    """Run a cycle at `day`; return each recipient's one message, parsed from the raw bytes."""
    mail.handler.received.clear()
    assert run_once(settings, clock=lambda: day).ok
    found: dict = {}
    for item in mail.received:
        message = email.message_from_bytes(item.data, policy=email.policy.default)
        for rcpt in item.rcpt_tos:
            assert rcpt not in found, f"{rcpt} got two messages"
            found[rcpt] = message
    return found


def sections(message) -> dict[str, list[str]]:
    """Return the arXiv ids under each section title of a message's HTML part, in order."""
    page = message.get_body(("html",)).get_content()
    parts = re.split(r'<h2 id="topic-\d+"[^>]*>(.*?) <span class="n">', page)
    found = {}
    for title, body in zip(parts[1::2], parts[2::2], strict=True):
        ids = re.findall(r'<h3><a href="https://arxiv.org/abs/([^"]+)v\d+"', body)
        found[html.unescape(title)] = ids
    return found


def manage_link(message, base: str) -> str:
    """Return the manage link of a message's text part, the one its reader would follow."""
    text = message.get_body(("plain",)).get_content()
    (link,) = set(re.findall(rf"{re.escape(base)}/manage\?token=[\w.-]+", text))
    return link


def own_topics(settings) -> tuple[str, ...] | None:
    with Store(settings.database) as store:
        person = store.person(ADA)
    return person.own_topics if person else None


def save(browser, lines: str, waiting_for: str):
    """Write `lines` in the box, press Save and wait for the answer's element `waiting_for`."""
    box = browser.find_element(By.ID, "own_topics")
    box.clear()
    box.send_keys(lines)
    browser.find_element(By.ID, "save").click()
    return WebDriverWait(browser, 10, ignored_exceptions=PAGE_CHANGING).until(
        expected_conditions.presence_of_element_located((By.ID, waiting_for))
    )


def ids(*papers) -> list[str]:
    return [p.id for p in papers]


def test_a_reader_writes_topics_in_chromium_and_the_next_cycles_follow_them(site, browser):
    settings, fake, mail, url = site
    first = cycle(settings, mail, DAY1)  # the watermarks; Ada gets her list topic
    assert sections(first[ADA]) == {GNN: ids(FIRST)}

    browser.get(manage_link(first[ADA], url))  # as Ada would, from her email
    errors = save(browser, f"{PHRASE}\nau:\n{CATEGORY}", "own_topics_errors")
    assert "Line 2 (au:): au: needs something after it, as in au:Surname" in errors.text
    assert "Line 1" not in errors.text and "Line 3" not in errors.text
    assert "Nothing was saved" in browser.find_element(By.ID, "own_topics_problem").text
    box = browser.find_element(By.ID, "own_topics")
    assert box.get_attribute("value") == f"{PHRASE}\nau:\n{CATEGORY}"  # kept, to fix
    assert box.get_attribute("aria-invalid") == "true"
    assert own_topics(settings) is None  # nothing saved
    browser.get(manage_link(first[ADA], url))  # and the page, opened again, shows no topic
    assert browser.find_element(By.ID, "own_topics").get_attribute("value") == ""
    save(browser, f"{PHRASE}\n{AUTHOR}\n{CATEGORY}", "saved")
    assert own_topics(settings) == (PHRASE, AUTHOR, CATEGORY)
    assert browser.find_elements(By.ID, "own_topics_errors") == []

    fake.papers += SECOND
    fake.requests.clear()
    second = cycle(settings, mail, DAY2)
    assert "cat:cs.LG" in {r.query["search_query"] for r in fake.requests}  # the harvest
    assert set(second) == {ADA, BOB, GRACE}
    ada = sections(second[ADA])  # the list topic, then the lines as she typed them, in order
    assert list(ada) == [GNN, PHRASE, AUTHOR, CATEGORY]
    assert {title: set(found) for title, found in ada.items()} == {
        GNN: {LISTED.id},  # in her list topic and her phrase: shown once, under the first
        PHRASE: {SPARSE.id, BOTH.id},  # not the survey
        AUTHOR: {FOLDING.id},  # Müller, written without the accent; BOTH is under PHRASE
        CATEGORY: {TABULAR.id},  # not the diffusion paper outside stat.ML
    }
    mailed = [paper for found in ada.values() for paper in found]
    assert len(mailed) == len(set(mailed)) == 5  # none twice
    text = "\n".join(second[ADA].get_body(("plain",)).get_content().splitlines())  # CRLF as sent
    for title, found in ada.items():
        assert f"== {title} ({len(found)}) ==" in text
    for paper in SECOND:
        assert text.count(f"arXiv:{paper.id}v") == (paper.id in mailed)
    also = {p.split("\n")[0]: p for p in text.split("\n* ")[1:]}  # each paper's entry
    assert f"Also in: {AUTHOR}" in also[BOTH.title] and f"Also in: {PHRASE}" in also[LISTED.title]
    assert sum("Also in" in entry for entry in also.values()) == 2
    # The others' mail is as it would be without Ada's topics.
    assert sections(second[BOB]) == {GNN: ids(LISTED)}
    assert "Also in" not in second[BOB].get_body(("plain",)).get_content()
    assert sections(second[GRACE]) == {LLM: ids(PRETRAIN)}

    browser.get(manage_link(second[ADA], url))  # she stops following the category
    box = browser.find_element(By.ID, "own_topics")
    assert box.get_attribute("value") == f"{PHRASE}\n{AUTHOR}\n{CATEGORY}"
    save(browser, f"{PHRASE}\n{AUTHOR}", "saved")
    assert own_topics(settings) == (PHRASE, AUTHOR)

    fake.papers += THIRD
    third = cycle(settings, mail, DAY3)
    assert set(third) == {ADA}  # no news of a list topic: nobody else gets mail
    assert sections(third[ADA]) == {PHRASE: ids(REVISITED), AUTHOR: ids(FOLDED)}
    assert f"arXiv:{TIMESERIES.id}" not in third[ADA].get_body(("plain",)).get_content()
