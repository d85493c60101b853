"""Unsubscribe from a real delivered email, through the real web endpoint."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta

import aiohttp
from helpers.builders import SECRET, changed
from helpers.cycles import DAY1, cycle, link_of, news, suppressed
from helpers.mailserver import MailServer, RecordingHandler

from digest.pipeline import run_once
from digest.store import Store
from digest.tokens import make_token


async def test_unsubscribe_flow_from_a_delivered_email(web, fake_arxiv, mail_server):
    settings, base, client = web
    await cycle(settings, DAY1)
    mails = mail_server.by_recipient()
    ada_link = link_of(mails["ada@example.org"][0], base)
    grace_link = link_of(mails["grace@example.org"][0], base)

    # GET shows a confirmation page naming the list, masking the address, changing nothing.
    async with client.get(ada_link) as answer:
        page = await answer.text()
        assert answer.status == 200
    assert "Daily Papers" in page and "a•••@example.org" in page
    assert "ada@example.org" not in page and 'method="post"' in page
    assert suppressed(settings) == {}

    # RFC 8058 one-click, form-urlencoded, twice (harmless), then multipart for another person.
    for _ in range(2):
        async with client.post(ada_link, data={"List-Unsubscribe": "One-Click"}) as answer:
            assert answer.status == 200 and "You are unsubscribed" in await answer.text()
    form = aiohttp.FormData()
    form.add_field("List-Unsubscribe", "One-Click")
    form._is_multipart = True
    async with client.post(grace_link, data=form) as answer:
        assert answer.status == 200
        assert answer.request_info.headers["Content-Type"].startswith("multipart/form-data")
    assert set(suppressed(settings)) == {"ada@example.org", "grace@example.org"}

    # The next cycle sends them nothing; Alan still gets his.
    mail_server.handler.received.clear()
    news(fake_arxiv, DAY1 + timedelta(days=1), 1)
    await cycle(settings, DAY1 + timedelta(days=1))
    assert sorted(mail_server.by_recipient()) == ["alan@example.org"]

    # Resubscribe brings Ada back.
    async with client.post(ada_link.replace("/unsubscribe", "/resubscribe")) as answer:
        assert answer.status == 200 and "subscribed again" in await answer.text()
    mail_server.handler.received.clear()
    news(fake_arxiv, DAY1 + timedelta(days=2), 2)
    await cycle(settings, DAY1 + timedelta(days=2))
    assert sorted(mail_server.by_recipient()) == ["ada@example.org", "alan@example.org"]


async def test_forged_and_altered_tokens_are_all_refused_alike(web, fake_arxiv, mail_server):
    settings, base, client = web
    await cycle(settings, DAY1)
    genuine = make_token(SECRET.encode(), "ada@example.org")
    rng = random.Random(3)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    forged = [
        "",
        "x",
        genuine + "A",
        genuine[:-1],
        genuine.replace(".", ""),
        make_token(b"other secret", "ada@example.org"),
        make_token(SECRET.encode(), "nobody@example.org"),
        "<script>",
        "../../etc",
    ]
    for _ in range(60):
        chars = list(genuine)
        spot = rng.choice([i for i, c in enumerate(chars) if c != "."])
        chars[spot] = rng.choice(alphabet.replace(chars[spot], ""))
        forged.append("".join(chars))
        forged.append(
            "".join(rng.choice(alphabet) for _ in range(16))
            + "."
            + "".join(rng.choice(alphabet) for _ in range(22))
        )
    bodies = set()
    for token in forged:
        for method in ("GET", "POST"):
            for path in ("/unsubscribe", "/resubscribe"):
                if method == "GET" and path == "/resubscribe":
                    continue
                async with client.request(method, base + path, params={"token": token}) as a:
                    assert a.status == 400, (method, path, token)
                    bodies.add(await a.text())
    async with client.get(base + "/unsubscribe") as answer:
        assert answer.status == 400
        bodies.add(await answer.text())
    assert len(bodies) == 1  # one friendly page, the same whatever was wrong
    assert "ada" not in bodies.pop()
    assert suppressed(settings) == {}


async def test_healthz_is_one_line_of_json(web):
    _, base, client = web
    async with client.get(base + "/healthz") as answer:
        text = await answer.text()
    assert answer.status == 200 and text.count("\n") == 1
    assert json.loads(text)["status"] == "ok"


class UnsubscribingHandler(RecordingHandler):
    """Accept mail; while accepting the first, someone else unsubscribes."""

    def __init__(self, settings_path, victim: str):
        super().__init__()
        self.database, self.victim = settings_path, victim

    async def handle_DATA(self, server, session, envelope) -> str:
        if not self.received:
            with Store(self.database) as store:
                store.suppress(self.victim, "unsubscribed", datetime.now(UTC))
        return await super().handle_DATA(server, session, envelope)


def test_an_unsubscribe_during_sending_is_honoured(make_settings, fake_arxiv):
    settings = make_settings()
    handler = UnsubscribingHandler(settings.database, "grace@example.org")
    with MailServer(handler) as server:
        settings = changed(settings, smtp_port=server.port, smtp_connections=1)
        report = run_once(settings, clock=lambda: DAY1)
        assert sorted(server.by_recipient()) == ["ada@example.org"]
        assert report.delivery.skipped == 1
