"""A list with days of real cycles for the operator's view: a retried and a failed fetch, a
refused and a deferred address, a late bounce, an unsubscribe, a pending sign-up, a bad row,
a channel post each day; what the servers saw, kept for the tests to compare with."""

from __future__ import annotations

import contextlib
import mailbox
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from string import Template

import pytest

from digest.config import Settings, load_settings
from digest.pipeline import run_once
from digest.store import Store
from helpers.builders import DATA, KEYWORDS, SECRET, make_paper, settings_text
from helpers.chatserver import ChatServer
from helpers.cycles import DAY1, news
from helpers.fake_arxiv import FakeArxiv, load_papers, status
from helpers.mailserver import FaultyHandler, MailServer

REFUSED, DEFERRED, GONE = "bea@example.org", "cid@example.org", "dan@example.org"
SUBSCRIBERS = f"""email,name,keywords
ada@example.org,Ada Lovelace,
alan@example.org,Alan Turing,Graph Neural Network
grace@example.org,Grace Hopper,Diffusion Model for Recommendation;Large Language Model
{REFUSED},Bea,Graph Neural Network
{DEFERRED},Cid,Graph Neural Network
{GONE},Dan,Graph Neural Network
not an address,Nobody,
"""
METRICS_TOKEN = "metrics-token-of-the-tests-0123456789"
ADMIN_PASSWORD = "correct horse battery staple"
# The first cycle's requests: the first keyword's answer is 503 then fine (a retry), the
# second's fine, the third's 404 (it fails); every later request is answered.
SCRIPT = [status(503), "ok", "ok", status(404)]


@dataclass
class History:
    """The settings of a list with `days` cycles recorded, and what the servers saw."""

    settings: Settings
    days: int
    sent: int  # digests the SMTP server accepted
    requests: dict[str, int]  # requests arXiv received, by keyword name
    posts: int  # posts the chat server took
    cycles: list[datetime]  # when each cycle ran


def _bounce(received, recipient: str) -> bytes:
    """Return a Postfix 'user unknown' DSN of a received digest."""
    text = (DATA / "bounces" / "postfix-user-unknown.eml").read_text(encoding="utf-8")
    message = received.message
    return (
        Template(text)
        .substitute(
            id=uuid.uuid4().hex,
            recipient=recipient,
            envelope=received.mail_from,
            original=message["Message-ID"],
            to=recipient,
            unsubscribe=message["List-Unsubscribe"].strip("<>"),
        )
        .encode()
    )


@contextlib.contextmanager
def history(
    folder: Path,
    days: int = 2,
    deferring: int | None = None,
    start: datetime = DAY1,
    web: str = "",
    more: int = 0,
) -> Iterator[History]:
    """Record `days` daily cycles from `start` in `folder`; yield what they did.

    DEFERRED's digests are put off (451) in the first `deferring` cycles (default: all),
    REFUSED's refused (550) in every one; before the second cycle a bounce of Ada's first
    digest arrives, GONE unsubscribes and someone signs up without confirming. Each day after
    the first brings a paper of every topic, and up to `more` more of one topic (a busier
    history to look at); `web` adds lines to [web].
    """
    deferring = days if deferring is None else deferring
    handler = FaultyHandler(
        refused={REFUSED: "550 5.1.1 No such user here", DEFERRED: "451 4.2.1 Mailbox busy"}
    )
    with (
        FakeArxiv(load_papers(DATA / "papers.json"), script=list(SCRIPT)) as fake,
        MailServer(handler) as mail,
        ChatServer() as chat,
        pytest.MonkeyPatch.context() as patch,
    ):
        patch.setenv("DIGEST_SECRET", SECRET)
        patch.setenv("DIGEST_ADMIN_PASSWORD", ADMIN_PASSWORD)
        extra = (
            "max_attempts = 2\n"  # still [smtp]: a deferred digest is tried twice a cycle
            'return_path = "bounces+{token}@lists.example.org"\n'
            '\n[bounces]\nmaildir = "bounces"\n'
            f'\n[[channels]]\nname = "Lab"\nurl = "json://{chat.host}/in/hook"\n'
            f'\n[web]\nmetrics_token = "{METRICS_TOKEN}"\ntrusted_proxies = ["127.0.0.1"]\n{web}'
        )
        text = settings_text(api_url=fake.url, smtp_port=mail.port, extra=extra)
        text = text.replace("first_run_days = 2", "first_run_days = 10000")
        (folder / "settings.toml").write_text(text, encoding="utf-8")
        (folder / "subscribers.csv").write_text(SUBSCRIBERS, encoding="utf-8")
        mailbox.Maildir(folder / "bounces", create=True)
        settings = load_settings(folder / "settings.toml")
        moments = []
        for n in range(days):
            day = start + timedelta(days=n)
            if n == 1:
                first = next(r for r in mail.received if r.rcpt_tos == ["ada@example.org"])
                data = _bounce(first, "ada@example.org")
                (folder / "bounces" / "new" / f"{uuid.uuid4().hex}.relay").write_bytes(data)
                with Store(settings.database) as store:
                    store.suppress(GONE, "unsubscribed", day - timedelta(hours=2))
                    store.add_signup(uuid.uuid4().hex, "eve@example.org", "Eve", [], day)
            if n == deferring:
                del handler.refused[DEFERRED]
            if n:
                news(fake, day, n)
                topic = KEYWORDS[n % len(KEYWORDS)]
                for extra in range((n * 5) % (more + 1)):
                    paper_id, title = f"2511.6{n:02d}{extra:02d}", f"{topic} study {n}.{extra}"
                    fake.papers.append(make_paper(paper_id, title, day - timedelta(hours=9)))
            run_once(settings, clock=lambda day=day: day)
            moments.append(day)
        queries = {k: k.search_query() for k in settings.keywords}
        requests = {
            k.name: sum(1 for r in fake.requests if r.query.get("search_query") == query)
            for k, query in queries.items()
        }
        yield History(settings, days, len(mail.received), requests, len(chat.posts), moments)


assert len(KEYWORDS) == 3  # SCRIPT answers three keywords
