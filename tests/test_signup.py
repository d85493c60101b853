"""Web sign-up with double opt-in: one confirmation email, a link that confirms, nothing leaks."""

from __future__ import annotations

import asyncio
import email
import email.policy
import logging
import re
from datetime import timedelta

import pytest
from helpers.browser import page_wait
from helpers.builders import ARTIFACTS, SECRET, changed, make_paper
from helpers.cycles import BASE, DAY1, GNN, LLM, cycle, papers_in
from helpers.mailserver import free_port
from helpers.site import LOCAL_PROXY, SENT, confirm_form, confirm_link, start
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions

from digest.config import Settings
from digest.store import Store
from digest.tokens import (
    TokenError,
    TokenExpired,
    make_confirm_token,
    make_token,
    parse_token,
    unsubscribe_token,
    verify_confirm_token,
)


@pytest.fixture
async def site(make_settings):
    """Serve the endpoint with [web] signup = true."""
    settings = changed(make_settings(), web_signup=True, web_trusted_proxies=LOCAL_PROXY)
    site, server = await start(settings)
    yield site
    await site.client.close()
    await server.close()


def person(settings: Settings, email: str):
    with Store(settings.database) as store:
        return store.person(email)


def signups(settings: Settings, email: str) -> int:
    with Store(settings.database) as store:
        return store.recent_signups(email, DAY1 - timedelta(days=30))


def news(fake, n: int) -> None:
    """Add a GNN paper and an LLM paper, announced the evening before day n."""
    evening = DAY1 + timedelta(days=n - 1, hours=-10)
    fake.papers += [
        make_paper(f"2511.5{n}001", f"{GNN} Pruning {n}", evening),
        make_paper(f"2511.5{n}002", f"{LLM} Agents {n}", evening),
    ]


def web_logs(caplog) -> str:
    return "\n".join(
        r.getMessage()
        for r in caplog.records
        if r.name.startswith(("digest.web", "digest.signups"))
    )


async def test_sign_up_confirm_then_only_ones_topics_arrive(site, fake_arxiv, mail_server, caplog):
    caplog.set_level(logging.INFO)
    news(fake_arxiv, 1)
    status, page = await site.sign_up("nora@example.org", [GNN], name="Nora Noether")
    assert status == 200 and SENT in page and "48 hours" in page
    await site.signup.idle()
    (received,) = mail_server.received
    mail = received.message
    assert received.rcpt_tos == ["nora@example.org"]
    assert mail["From"] == "Daily Papers <papers@example.org>"
    assert mail["To"] == "nora@example.org"  # the typed name waits for confirmation
    assert mail["Subject"] == "Confirm your subscription to Daily Papers"
    assert mail["Auto-Submitted"] == "auto-generated"
    assert re.fullmatch(r"<[^@>]+@example\.org>", mail["Message-ID"]) and mail["Date"]
    text, html = (mail.get_body((kind,)).get_content() for kind in ("plain", "html"))
    link = confirm_link(mail)
    assert link.replace("&", "&amp;") in html
    assert text.startswith("Hello,\r\n") and "Nora" not in text  # no name before confirmation
    assert f"- {GNN}" in text and LLM not in text and "48 hours" in text
    assert "If you did not ask for this, ignore this email: nothing more will be sent." in text

    # Before confirming, a cycle sends nothing to the address.
    mail_server.handler.received.clear()
    await cycle(site.settings, DAY1)
    assert "nora@example.org" not in mail_server.by_recipient()

    # GET shows one button and changes nothing (mail scanners open links).
    token = await confirm_form(site, site.local(link))
    assert person(site.settings, "nora@example.org") is None
    async with site.client.post(site.local(link), data={"form": token}) as answer:
        page = await answer.text()
    assert answer.status == 200 and "You are subscribed" in page
    assert f"<li>{GNN}</li>" in page and LLM not in page and "07:00 (Europe/Paris)" in page
    nora = person(site.settings, "nora@example.org")
    assert nora.source == "web" and nora.confirmed_at == site.clock.now
    assert nora.topics == (GNN.casefold(),) and nora.name == "Nora Noether"

    # The next cycle mails a digest of her topic only.
    mail_server.handler.received.clear()
    news(fake_arxiv, 2)
    await cycle(site.settings, DAY1 + timedelta(days=1))
    (digest,) = mail_server.by_recipient()["nora@example.org"]
    assert papers_in(digest) == ["2511.52001"]
    assert f"== {LLM}" not in digest.get_body(("plain",)).get_content()
    assert "nora@example.org" not in web_logs(caplog) and "n•••@example.org" in web_logs(caplog)


async def test_twenty_sign_ups_in_a_day_send_one_confirmation(site, mail_server):
    for n in range(20):
        status, page = await site.sign_up("ada.l@example.org", client=f"198.51.{n}.1", wait=60)
        assert status == 200 and SENT in page
    await site.signup.idle()
    assert len(mail_server.received) == 1 and signups(site.settings, "ada.l@example.org") == 1
    site.clock.advance(hours=24)  # a day after the first: another one may go
    await site.sign_up("ADA.L@example.org", client="198.51.100.99")
    await site.signup.idle()
    assert len(mail_server.received) == 2


async def test_the_same_answer_for_known_unknown_and_automated_sign_ups(site, mail_server):
    answers = [
        await site.sign_up("ada@example.org", client="198.51.100.1"),  # in subscribers.csv
        await site.sign_up("new@example.org", client="198.51.100.2"),
        await site.sign_up("bot1@example.org", client="198.51.100.3", website="https://spam"),
        await site.sign_up("bot2@example.org", client="198.51.100.4", wait=1),  # too fast
    ]
    assert answers[0][0] == 200 and SENT in answers[0][1]
    assert all(answer == answers[0] for answer in answers)
    # A form left open for more than a day is shown again, fresh, to be sent again.
    status, page = await site.sign_up("late@example.org", client="198.51.100.5", wait=86_500)
    assert status == 400 and "open for more than a day" in page and SENT not in page
    await site.signup.idle()
    mails = mail_server.by_recipient()
    assert sorted(mails) == ["ada@example.org", "new@example.org"]
    (note,) = mails["ada@example.org"]
    text = note.get_body(("plain",)).get_content()
    assert note["Subject"] == "You are already subscribed to Daily Papers"
    unsubscribe = unsubscribe_token(SECRET.encode(), "ada@example.org")
    assert f"{BASE}/unsubscribe?token={unsubscribe}" in text
    assert "/confirm?token=" not in text and "ignore this email" in text
    assert [signups(site.settings, f"bot{n}@example.org") for n in (1, 2)] == [0, 0]
    assert signups(site.settings, "late@example.org") == 0


async def test_replayed_expired_forged_and_foreign_links_get_their_pages(site, mail_server):
    await site.sign_up("one@example.org")
    await site.sign_up("two@example.org")
    await site.signup.idle()
    links = {r.rcpt_tos[0]: site.local(confirm_link(r.message)) for r in mail_server.received}
    one = links["one@example.org"]
    token = await confirm_form(site, one)
    for _ in range(2):  # a replay is harmless
        async with site.client.post(one, data={"form": token}) as answer:
            page = await answer.text()
        assert answer.status == 200
    assert "Already confirmed" in page
    async with site.client.get(one) as answer:
        assert answer.status == 200 and "Already confirmed" in await answer.text()

    site.clock.advance(hours=49)
    for method in ("GET", "POST"):
        async with site.client.request(method, links["two@example.org"]) as answer:
            page = await answer.text()
        assert answer.status == 410 and "expired" in page and 'href="subscribe"' in page
    assert person(site.settings, "two@example.org") is None

    genuine = one.split("token=")[1]
    nonce = verify_confirm_token(SECRET.encode(), genuine, DAY1)
    head, _, signature = genuine.rpartition(".")
    later = int((DAY1 + timedelta(days=30)).timestamp())
    unsubscribe = make_token(SECRET.encode(), "ada@example.org")
    forged = [
        "",
        f"{head}.{'B' if signature[0] == 'A' else 'A'}{signature[1:]}",  # altered signature
        f"{nonce}.{later}.{signature}",  # a later expiry, the old signature
        make_confirm_token(
            b"another secret of thirty-two bytes!!", nonce, DAY1 + timedelta(days=9)
        ),
        unsubscribe,  # an unsubscribe token cannot confirm anyone
    ]
    for token in forged:
        for method in ("GET", "POST"):
            async with site.client.request(method, f"{site.url}/confirm?token={token}") as a:
                assert a.status == 400 and "This link is not valid" in await a.text(), token
    # ...and a confirmation token cannot unsubscribe or manage anyone.
    for method, path in (("GET", "unsubscribe"), ("POST", "unsubscribe"), ("GET", "manage")):
        url = f"{site.url}/{path}?token={genuine}"
        async with site.client.request(method, url) as answer:
            assert answer.status in (400, 404), path  # /manage: 404 where it is not served
    with Store(site.settings.database) as store:
        assert store.suppressed() == set()


def test_confirmation_tokens_are_purpose_bound_and_expire():
    secret, nonce, soon = SECRET.encode(), "n" * 22, DAY1 + timedelta(hours=48)
    token = make_confirm_token(secret, nonce, soon)
    assert verify_confirm_token(secret, token, DAY1) == nonce
    with pytest.raises(TokenExpired):
        verify_confirm_token(secret, token, soon)
    for bad in (token + "x", token.replace(".", "", 1), make_token(secret, "a@example.org")):
        with pytest.raises(TokenError) as caught:
            verify_confirm_token(secret, bad, DAY1)
        assert not isinstance(caught.value, TokenExpired)
    with pytest.raises(TokenError):
        parse_token(token)  # not shaped like an unsubscribe token


async def test_cross_site_or_tokenless_posts_are_refused(site, mail_server):
    evil = {"Origin": "https://evil.example"}
    hidden = {"Origin": "null", "Sec-Fetch-Site": "cross-site"}  # Referrer-Policy: no-referrer
    ours = {"Origin": site.url, "Sec-Fetch-Site": "same-origin"}
    for status, page in (
        await site.sign_up("x@example.org", headers=evil),
        await site.sign_up("x@example.org", headers=hidden),
        await site.sign_up("x@example.org", form=""),
        await site.sign_up("x@example.org", issued="1"),  # the token signs another time
    ):
        assert status == 403 and "This form could not be accepted" in page
    assert (await site.sign_up("y@example.org", headers=ours))[0] == 200
    await site.signup.idle()
    assert signups(site.settings, "x@example.org") == 0 and len(mail_server.received) == 1
    link = site.local(confirm_link(mail_server.received[0].message))
    token = await confirm_form(site, link)
    for data, headers in (
        ({"form": token}, evil),
        ({"form": token}, hidden),
        ({}, {}),
        ({"form": token[::-1]}, {}),
    ):
        async with site.client.post(link, data=data, headers=headers) as answer:
            assert answer.status == 403 and "could not be accepted" in await answer.text()
    assert person(site.settings, "y@example.org") is None
    async with site.client.post(link, data={"form": token}, headers=ours) as a:
        assert a.status == 200 and "You are subscribed" in await a.text()


async def test_more_than_five_sign_ups_an_hour_from_one_network_get_429(site, mail_server):
    for n in range(5):
        assert (await site.sign_up(f"r{n}@example.org", client="198.51.100.8"))[0] == 200
    status, page = await site.sign_up("r5@example.org", client="198.51.100.8")
    assert status == 429 and "Too many sign-ups" in page and site.last.get("Retry-After")
    assert (await site.sign_up("r6@example.org", client="198.51.101.9"))[0] == 200
    await site.signup.idle()
    assert "r5@example.org" not in mail_server.by_recipient() and len(mail_server.received) == 6
    site.clock.advance(hours=1)
    assert (await site.sign_up("r5@example.org", client="198.51.100.8"))[0] == 200


async def test_a_bad_address_or_no_topic_shows_the_form_again(site, mail_server):
    async with site.client.get(site.url + "/subscribe") as answer:
        page = await answer.text()
    assert '<label for="email">' in page and '<label for="name">' in page and "<legend>" in page
    assert re.search(r'aria-hidden="true"[^>]*>\s*<label for="website">', page)
    assert 'tabindex="-1"' in page and "<main>" in page and "<h1>" in page
    for address, topics, problem in (
        ("not an address", [GNN], "a whole email address"),
        ("a@localhost", [GNN], "a whole email address"),
        ("ok@example.org", [], "at least one topic"),
    ):
        status, page = await site.sign_up(address, topics, name="Kept Name")
        assert status == 400 and problem in page and 'role="alert"' in page
        assert 'value="Kept Name"' in page
    await site.signup.idle()
    assert mail_server.received == [] and signups(site.settings, "ok@example.org") == 0


async def test_a_failed_send_keeps_the_sign_up_and_logs_one_line(make_settings, caplog):
    settings = changed(make_settings(), web_signup=True, smtp_port=free_port(), smtp_timeout=2)
    site, server = await start(settings)
    try:
        status, page = await site.sign_up("lost@example.org")
        await site.signup.idle()
    finally:
        await site.client.close()
        await server.close()
    assert status == 200 and SENT in page
    assert signups(settings, "lost@example.org") == 1
    (line,) = [r for r in caplog.records if "not sent" in r.getMessage()]
    assert "l•••@example.org" in line.getMessage() and "lost@" not in line.getMessage()


async def test_without_smtp_the_confirmation_goes_to_the_maildir(make_settings):
    settings = changed(make_settings(smtp=False), web_signup=True)
    site, server = await start(settings)
    try:
        await site.sign_up("maildir@exämple.org")
        await site.signup.idle()
    finally:
        await site.client.close()
        await server.close()
    (path,) = (settings.outbox / "new").iterdir()
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert message["To"] == "maildir@exämple.org" and confirm_link(message)


async def test_signup_is_off_by_default(web):
    _, base, client = web
    for method in ("GET", "POST"):
        for path in ("/subscribe", "/confirm?token=x"):
            async with client.request(method, base + path) as answer:
                assert answer.status == 404, (method, path)


@pytest.mark.slow
async def test_a_browser_signs_up_and_confirms_at_phone_width(
    site, fake_arxiv, mail_server, browser
):
    """Headless chromium at 375 px: the form, the emailed link, the button, the first digest."""
    ARTIFACTS.mkdir(exist_ok=True)
    wait = page_wait(browser)

    def fill_in() -> None:
        browser.set_window_size(375, 900)
        browser.get(site.url + "/subscribe")
        assert browser.execute_script("return document.documentElement.scrollWidth") <= 375
        assert not browser.find_element(By.ID, "website").is_displayed()
        browser.find_element(By.ID, "email").send_keys("bea@example.org")
        browser.find_element(By.ID, "name").send_keys("Béa")
        browser.find_element(By.CSS_SELECTOR, f'input[value="{LLM.casefold()}"]').click()
        browser.save_screenshot(str(ARTIFACTS / "signup-1-form-375.png"))

    def send() -> None:
        browser.find_element(By.ID, "subscribe").click()
        wait.until(expected_conditions.presence_of_element_located((By.ID, "sent")))

    def confirm(link: str) -> str:
        browser.get(link)
        browser.save_screenshot(str(ARTIFACTS / "signup-2-confirm-375.png"))
        browser.find_element(By.ID, "confirm").click()
        heading = wait.until(expected_conditions.presence_of_element_located((By.ID, "confirmed")))
        browser.save_screenshot(str(ARTIFACTS / "signup-3-confirmed-375.png"))
        return heading.text

    await asyncio.to_thread(fill_in)
    site.clock.advance(seconds=20)  # a person takes a while
    await asyncio.to_thread(send)
    await site.signup.idle()
    (received,) = mail_server.received  # the browser's own Origin and Sec-Fetch-Site passed
    link = site.local(confirm_link(received.message))
    assert await asyncio.to_thread(confirm, link) == "You are subscribed"
    bea = person(site.settings, "bea@example.org")
    assert bea.confirmed_at and bea.topics == (LLM.casefold(),) and bea.name == "Béa"

    # The first digest: the next cycle mails her topic's news.
    mail_server.handler.received.clear()
    news(fake_arxiv, 2)
    await cycle(site.settings, DAY1 + timedelta(days=1))
    (digest,) = mail_server.by_recipient()["bea@example.org"]
    assert papers_in(digest) == ["2511.52002"]  # the LLM paper only
