"""Confirmations and notes count in, and obey, [smtp] rate_limit and hourly_limit with digests."""

from __future__ import annotations

import asyncio
import itertools
import time
from datetime import datetime, timedelta

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from helpers.builders import changed
from helpers.cycles import DAY1, GNN, wide_first_run
from helpers.mailserver import MailServer, RecordingHandler
from helpers.site import SENT, Clock, Site, confirm_link

from digest import delivery
from digest.delivery import RateLimiter
from digest.pipeline import run_once
from digest.store import Store
from digest.web import ENDPOINT, make_app
from digest.web.signup import SIGNUP

QUEUED = "may take up to an hour to arrive"


class MovingClock:
    """A clock that moves with real time, and jumps when the test moves it."""

    def __init__(self, start: datetime):
        self.start, self.began, self.offset = start, time.monotonic(), timedelta()

    def __call__(self) -> datetime:
        return self.start + self.offset + timedelta(seconds=time.monotonic() - self.began)

    def advance(self, **delta: float) -> None:
        self.offset += timedelta(**delta)


class Timed(RecordingHandler):
    """Record when each message arrived (monotonic seconds)."""

    def __init__(self) -> None:
        super().__init__()
        self.times: list[float] = []

    async def handle_DATA(self, server, session, envelope) -> str:
        self.times.append(time.monotonic())
        return await super().handle_DATA(server, session, envelope)


async def serve(settings, clock) -> tuple[Site, TestServer]:
    """Serve settings' app with sign-up on and the given clock; return (site, server)."""
    app = make_app(changed(settings, web_signup=True))
    app[ENDPOINT].clock = clock
    signup = app[SIGNUP]
    signup.mailer.poll = 0.02  # look at the (hand-moved) clock often
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    url = str(server.make_url("")).rstrip("/")
    return Site(settings, url, aiohttp.ClientSession(), signup, clock), server


async def stop(site: Site, server: TestServer) -> None:
    await site.client.close()
    await server.close()


def turns(settings) -> dict[str, float]:
    """Return the recorded turn of each sign-up's email, by address, sent or not."""
    with Store(settings.database) as store:
        rows = store.db.execute(
            "SELECT signups.email, at FROM notice_sends JOIN signups USING (nonce)"
        )
        return dict(rows.fetchall())


def recipients(server: MailServer) -> list[str]:
    return [r.rcpt_tos[0] for r in server.received]


async def test_a_confirmation_over_the_hourly_limit_waits_for_the_digests_hour(
    make_settings, fake_arxiv, mail_server
):
    settings = changed(wide_first_run(make_settings()), smtp_hourly_limit=4)
    report = await asyncio.to_thread(run_once, settings, clock=lambda: DAY1)
    assert report.delivery.sent == 3  # 3 of 4 this hour
    site, server = await serve(settings, Clock(DAY1 + timedelta(minutes=5)))
    try:
        status, page = await site.sign_up("first@example.org")
        assert status == 200 and SENT in page and QUEUED not in page
        await site.signup.idle()
        assert recipients(mail_server)[3:] == ["first@example.org"]

        status, page = await site.sign_up("second@example.org")  # the hour is full
        assert status == 200 and SENT in page and QUEUED in page
        await site.signup.idle()
        assert len(mail_server.received) == 4
        # Its turn: an hour after the digests (counted at the end of their second).
        assert turns(settings)["second@example.org"] == DAY1.timestamp() + 1 + 3600

        site.clock.advance(hours=1)
        await asyncio.wait_for(site.signup.mailer.task, 10)  # it watches the clock: sent
        late = mail_server.received[4]
        assert late.rcpt_tos == ["second@example.org"] and confirm_link(late.message)
        text = late.message.get_body(("plain",)).get_content()
        # Valid 48 hours from the sign-up (06:05 UTC), not from when it went.
        assert "until 18 November 2025, 07:05 (Europe/Paris)" in text
    finally:
        await stop(site, server)


async def test_a_cycle_counts_the_confirmations_sent_before_it(
    make_settings, fake_arxiv, mail_server, monkeypatch
):
    settings = changed(wide_first_run(make_settings()), smtp_hourly_limit=3)
    site, server = await serve(settings, Clock(DAY1 - timedelta(minutes=10)))
    try:
        for n in range(2):
            await site.sign_up(f"new{n}@example.org", client=f"198.51.100.{n}")
        await site.signup.idle()
    finally:
        await stop(site, server)
    assert len(mail_server.received) == 2
    waits: list[float] = []
    real = delivery.RateLimiter.reserve

    def record(self):
        wait = real(self)
        waits.append(wait)
        return 0.0 if wait > 60 else wait  # do not really wait an hour in a test

    monkeypatch.setattr(delivery.RateLimiter, "reserve", record)
    await asyncio.to_thread(run_once, settings, clock=lambda: DAY1)
    assert [w > 60 for w in waits] == [False, True, True]  # 2 confirmations + 1 digest


def test_a_running_cycle_counts_the_turns_the_web_takes_meanwhile():
    now, taken = [100.0], [[], [100.5], []]
    limiter = RateLimiter(0, 2, [], clock=lambda: now[0], others=lambda: taken.pop(0))
    assert limiter.reserve() == 0.0
    now[0] = 101.0
    assert limiter.reserve() == 100.0 + 3600 - 101.0  # the web's email made two this hour
    spaced = RateLimiter(2.0, 0, [], clock=lambda: now[0], others=lambda: [101.2])
    assert spaced.reserve() == pytest.approx(
        0.7
    )  # half a second after the web's email, not 0.3 before it


def test_an_email_after_a_digest_waits_rate_limit_and_an_hour_of_backlog_is_refused(
    make_settings,
):
    settings = make_settings()
    with Store(settings.database) as store:
        cycle = store.begin_cycle(DAY1)
        edition = store.add_edition(cycle, ("k",), 1, "s", "t", "h", {})
        store.plan_messages(
            [{"cycle_id": cycle, "edition_id": edition, "email": "a@example.org", "name": "A",
              "message_id": "<m@x>"}],
            DAY1,
        )  # fmt: skip
        store.mark_planned(cycle, DAY1)
        store.mark_sent(next(store.pending()).id, "a@example.org", DAY1)
        now = DAY1.timestamp()
        assert store.notice_turn(now, 0.5, 0) == now + 1.5  # its second's end, then 0.5 s
        assert store.reserve_notice("n1", "confirmation", now, 0.0, 2, 3600) == now
        assert store.reserve_notice("n2", "confirmation", now, 0.0, 2, 3600) == now + 3600
        assert store.reserve_notice("n3", "confirmation", now, 0.0, 2, 3600) is None
        assert [n for (n,) in store.db.execute("SELECT nonce FROM notice_sends")] == ["n1", "n2"]


async def test_beyond_an_hour_of_waiting_mail_a_sign_up_gets_no_email_and_a_log_line(
    make_settings, mail_server, caplog
):
    settings = changed(make_settings(), smtp_hourly_limit=1)
    site, server = await serve(settings, Clock(DAY1))
    try:
        for n, address in enumerate(("one@example.org", "two@example.org", "three@example.org")):
            await site.sign_up(address, client=f"198.51.100.{n}")
            await site.signup.idle()
    finally:
        await stop(site, server)
    assert recipients(mail_server) == ["one@example.org"]
    assert sorted(turns(settings)) == ["one@example.org", "two@example.org"]
    (line,) = [r.getMessage() for r in caplog.records if "not sent" in r.getMessage()]
    assert line.startswith("web: confirmation to t•••@example.org not sent: an hour of mail")
    assert "[smtp] hourly_limit (1)" in line


async def test_a_waiting_confirmation_is_sent_after_a_restart(make_settings, mail_server):
    settings = changed(make_settings(), smtp_hourly_limit=1)
    site, server = await serve(settings, Clock(DAY1))
    try:
        for n, address in enumerate(("one@example.org", "two@example.org")):
            await site.sign_up(address, client=f"198.51.100.{n}")
            await site.signup.idle()
    finally:
        started = time.monotonic()
        await stop(site, server)  # the waiting email does not hold the stop
    assert time.monotonic() - started < 5
    assert recipients(mail_server) == ["one@example.org"]
    site, server = await serve(settings, Clock(DAY1 + timedelta(hours=1, minutes=1)))
    try:
        await site.signup.idle()
    finally:
        await stop(site, server)
    assert recipients(mail_server) == ["one@example.org", "two@example.org"]


@pytest.mark.slow
async def test_confirmations_are_spaced_by_rate_limit(make_settings):
    with MailServer(Timed()) as relay:
        settings = changed(make_settings(), smtp_port=relay.port, smtp_rate_limit=4.0)
        site, server = await serve(settings, MovingClock(DAY1))
        try:
            forms = [await site.form() for _ in range(3)]
            site.clock.advance(seconds=5)  # filled in like a person

            async def post(n: int, hidden: dict[str, str]) -> int:
                data = [("email", f"s{n}@example.org"), ("name", ""), ("website", "")]
                data += [*hidden.items(), ("topic", GNN.casefold())]
                headers = {"X-Forwarded-For": f"198.51.100.{n}"}
                async with site.client.post(
                    site.url + "/subscribe", data=data, headers=headers
                ) as a:
                    return a.status

            assert await asyncio.gather(*(post(n, f) for n, f in enumerate(forms))) == [200] * 3
            await site.signup.idle()
        finally:
            await stop(site, server)
        times = relay.handler.times
    assert len(times) == 3
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert all(gap >= 0.2 for gap in gaps), gaps  # 4 a second: 0.25 s apart (less jitter)


async def test_without_limits_an_email_is_sent_at_once_and_counted(make_settings, mail_server):
    site, server = await serve(make_settings(), Clock(DAY1))
    try:
        status, page = await site.sign_up("plain@example.org")
        assert status == 200 and QUEUED not in page
        await site.signup.idle()
    finally:
        await stop(site, server)
    assert recipients(mail_server) == ["plain@example.org"]
    with Store(site.settings.database) as store:
        assert store.db.execute("SELECT sent_at FROM notice_sends").fetchall() == [
            ("2025-11-16T06:00:05+00:00",)
        ]  # counted in the hour of a later cycle
