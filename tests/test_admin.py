"""/admin, the operator's dashboard: who gets in (password, signed link, HTTPS), its SVG plots
with one point per day or cycle, and `digest stats` and `digest admin-link` in a terminal."""

from __future__ import annotations

import base64
import dataclasses
import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest
import time_machine
from aiohttp.test_utils import TestServer
from click.testing import CliRunner
from helpers.builders import SECRET
from helpers.cycles import BASE
from helpers.operations import ADMIN_PASSWORD, history

from digest.cli import main
from digest.config import ConfigError
from digest.dashboard import WINDOW_DAYS
from digest.store import Store
from digest.tokens import (
    TokenError,
    TokenExpired,
    admin_token,
    make_confirm_token,
    read_link,
    verify_admin_token,
    verify_confirm_token,
)
from digest.web import ENDPOINT, make_app

SVG = "{http://www.w3.org/2000/svg}"
FROM_AFAR = {"X-Forwarded-For": "198.51.100.7"}  # the client of a proxy (the trusted 127.0.0.1)


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """Three days of real cycles (see helpers.operations)."""
    with history(tmp_path_factory.mktemp("admin"), days=3) as found:
        yield found


@pytest.fixture
async def site(recorded):
    """Serve the list's endpoint at the hour after its last cycle; yield (app, URL, client)."""
    app = make_app(recorded.settings)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    app[ENDPOINT].clock = lambda: recorded.cycles[-1] + timedelta(hours=1)
    async with aiohttp.ClientSession() as client:
        yield app, str(server.make_url("")).rstrip("/"), client
    await server.close()


async def get(site, path: str = "/admin", **headers: str) -> tuple[int, str, dict]:
    _, url, client = site
    async with client.get(url + path, headers=headers) as answer:
        return answer.status, await answer.text(), dict(answer.headers)


def link_of(app, minutes: float) -> str:
    """Return a dashboard link that expires `minutes` after the app's clock."""
    endpoint = app[ENDPOINT]
    expires = endpoint.clock() + timedelta(minutes=minutes)
    return "/admin?token=" + admin_token(endpoint.secret, expires)


async def test_without_or_with_a_wrong_password_401(site):
    status, page, headers = await get(site)
    assert status == 401 and headers["WWW-Authenticate"].startswith('Basic realm="digest admin"')
    assert "digest admin-link" in page and "Subscribers" not in page
    assert (await get(site, **basic("admin", "wrong password!")))[0] == 401
    assert (await get(site, **basic("root", ADMIN_PASSWORD)))[0] == 401
    assert (await get(site, **basic("admin", ADMIN_PASSWORD + "x")))[0] == 401
    assert (await get(site, Authorization="Basic not-base64!"))[0] == 401


async def test_the_password_or_a_signed_link_opens_it(site):
    status, page, headers = await get(site, **basic("admin", ADMIN_PASSWORD))
    assert status == 200 and "the operator's view</h1>" in page
    assert (
        headers["Cache-Control"] == "no-store"
        and "frame-ancestors 'none'" in (headers["Content-Security-Policy"])
    )
    app = site[0]
    assert (await get(site, link_of(app, 15)))[0] == 200


async def test_an_expired_link_403_a_forged_one_401(site):
    app = site[0]
    status, page, _ = await get(site, link_of(app, -1))
    assert status == 403 and "expired" in page and "digest admin-link" in page
    forged = link_of(app, 15)[:-4] + "AAAA"
    assert (await get(site, forged))[0] == 401
    expires = app[ENDPOINT].clock() + timedelta(minutes=5)
    other = admin_token(b"another secret of thirty-two bytes!!", expires)
    assert (await get(site, "/admin?token=" + other))[0] == 401
    assert (await get(site, "/admin?token=" + SECRET))[0] == 401


async def test_plain_http_from_afar_is_refused_https_through_the_proxy_is_not(site):
    status, page, _ = await get(site, **FROM_AFAR, **basic("admin", ADMIN_PASSWORD))
    assert status == 403 and "HTTPS" in page
    app = site[0]
    assert (await get(site, link_of(app, 15), **FROM_AFAR))[0] == 403
    https = {**FROM_AFAR, "X-Forwarded-Proto": "https"}
    assert (await get(site, **https, **basic("admin", ADMIN_PASSWORD)))[0] == 200
    mixed = {**FROM_AFAR, "X-Forwarded-Proto": "https, http"}
    assert (await get(site, **mixed, **basic("admin", ADMIN_PASSWORD)))[0] == 403


async def test_a_proxy_that_is_not_trusted_cannot_claim_https(recorded):
    settings = dataclasses.replace(recorded.settings, web_trusted_proxies=())
    server = TestServer(make_app(settings), host="127.0.0.1")
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as client:
            headers = {**FROM_AFAR, "X-Forwarded-Proto": "https", **basic("admin", ADMIN_PASSWORD)}
            async with client.get(server.make_url("/admin"), headers=headers) as answer:
                assert answer.status == 403
    finally:
        await server.close()


async def test_wrong_passwords_are_refused_for_a_minute_past_ten(site):
    https = {"X-Forwarded-Proto": "https"}
    wrong = {"X-Forwarded-For": "198.51.100.7", **https, **basic("admin", "guess number x")}
    statuses = [(await get(site, **wrong))[0] for _ in range(11)]
    assert statuses == [401] * 10 + [429]
    right = {**wrong, **basic("admin", ADMIN_PASSWORD)}
    status, _, headers = await get(site, **right)
    assert status == 429 and 1 <= int(headers["Retry-After"]) <= 60
    elsewhere = {**right, "X-Forwarded-For": "203.0.113.9"}
    assert (await get(site, **elsewhere))[0] == 200


async def test_every_plot_is_svg_with_one_point_per_day_or_cycle(site, recorded):
    status, page, _ = await get(site, **basic("admin", ADMIN_PASSWORD))
    assert status == 200
    svgs = [ET.fromstring(svg) for svg in re.findall(r"<svg\b.*?</svg>", page, re.DOTALL)]
    assert "<script" not in page and "http" not in page.replace("http://www.w3.org/2000/svg", "")
    charts = [svg for svg in svgs if svg.get("class") == "chart"]
    assert len(charts) == len(recorded.settings.keywords) + 3  # topics, mail, list, fetch
    for svg in charts:
        assert svg.get("role") == "img" and svg.get("aria-label")
        assert svg.find(f"{SVG}title").text == svg.get("aria-label")

    def points(svg) -> dict[str, int]:
        return {
            line.get("data-series"): len(line.get("points").split())
            for line in svg.iter(f"{SVG}polyline")
        }

    topics = charts[: len(recorded.settings.keywords)]
    for svg, keyword in zip(topics, recorded.settings.keywords, strict=True):
        assert points(svg) == {keyword.name: WINDOW_DAYS}  # one a day, 90 days
    mails, listed, fetching = charts[-3:]
    assert points(mails) == dict.fromkeys(("sent", "failed", "bounced"), recorded.days)
    assert points(listed)["active"] == recorded.days  # a census a day
    assert len(points(listed)) == 8  # each status, zeros too
    assert points(fetching) == {"fetch": recorded.days}
    # What is drawn, as its text alternative says: every digest the SMTP server accepted.
    label = mails.get("aria-label")
    assert f"{recorded.sent} sent, 1 bounced, {recorded.days} refused" in label


async def test_the_recent_cycles_show_their_warnings(site, recorded):
    _, page, _ = await get(site, **basic("admin", ADMIN_PASSWORD))
    table = page[page.index('id="cycles"') :]
    rows = re.findall(r"<tr><td class=\"n\">(\d+)</td>", table)
    assert rows == [str(n) for n in range(recorded.days, 0, -1)]  # newest first
    assert "Large Language Model: arXiv answered HTTP 404" in table
    assert "partial" in table


def run(settings, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["--config", str(settings.path), *args])
    return result.exit_code, result.stdout, result.stderr


async def test_digest_admin_link_prints_a_link_that_opens_it_then_expires(site, recorded):
    code, out, err = run(recorded.settings, "admin-link", "--minutes", "5")
    assert code == 0, err
    link = out.strip()
    assert link.startswith(f"{BASE}/admin?token=admin.") and "valid until" in err
    assert "http://127.0.0.1:8080/admin?token=admin." in err  # the form for an SSH tunnel
    endpoint, path = site[0][ENDPOINT], link.removeprefix(BASE)
    endpoint.clock = lambda: datetime.now(UTC) + timedelta(minutes=4)  # the link's own time
    assert (await get(site, path))[0] == 200
    endpoint.clock = lambda: datetime.now(UTC) + timedelta(minutes=6)
    assert (await get(site, path))[0] == 403


def test_digest_stats_prints_the_same_numbers_in_80_columns(recorded):
    with time_machine.travel(recorded.cycles[-1] + timedelta(hours=1), tick=False):
        code, out, err = run(recorded.settings, "stats")
    assert code == 0, err
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= 80
    joined = out.replace("\n              ", " ")
    deferred = recorded.days * (recorded.days + 1)  # Cid's waiting digests, twice a cycle each
    assert f"{recorded.sent} sent, {recorded.days} refused, {deferred} deferred, 1 bounced" in (
        joined
    )
    assert re.search(r"\b5 active\b", out) and "1 invalid" in out
    table = out[out.index("Recent cycles") :]
    shown = re.findall(r"^\s+(\d+)  2025-", table, re.M)
    assert shown == [str(n) for n in range(1, recorded.days + 1)]  # oldest first, as a log
    assert "! Large Language Model: arXiv answered HTTP 404" in table
    for keyword in recorded.settings.keywords:
        assert keyword.name[:20] in out


def test_digest_stats_on_an_empty_database(make_settings):
    settings = make_settings()
    code, out, err = run(settings, "stats")
    assert code == 0, err
    assert "no cycle has succeeded yet" in out and "not counted yet" in out


async def test_the_reading_room_shows_each_topics_activity_as_an_accessible_sparkline(
    site, recorded
):
    status, page, _ = await get(site, "/")
    assert status == 200
    items = re.findall(r"<li><a href=\"/topics/[^\"]+\">([^<]+)</a> (<svg\b.*?</svg>)", page)
    assert [name for name, _ in items] == [k.name for k in recorded.settings.keywords]
    for (name, svg), keyword in zip(items, recorded.settings.keywords, strict=True):
        spark = ET.fromstring(svg)
        assert spark.get("role") == "img" and spark.get("class") == "spark"
        label = spark.get("aria-label")
        assert spark.find(f"{SVG}title").text == label and label.startswith(f"{name}: ")
        (line,) = spark.iter(f"{SVG}polyline")
        assert len(line.get("points").split()) == 30  # one point a day
        total = int(re.search(r": (\d+) new papers in the 30 days", label)[1])
        with Store(recorded.settings.database) as store:
            (news,) = store.db.execute(
                "SELECT count(*) FROM seen WHERE keyword = ? AND news = 1", [keyword.key]
            ).fetchone()
        assert total == news  # every paper of these days was news in the last 30


def test_a_dashboard_token_opens_nothing_else_and_nothing_else_opens_the_dashboard():
    secret, now = SECRET.encode(), datetime(2026, 1, 1, tzinfo=UTC)
    token = admin_token(secret, now + timedelta(minutes=15))
    assert verify_admin_token(secret, token, now) == now + timedelta(minutes=15)
    with pytest.raises(TokenError):
        read_link(token)  # not an unsubscribe or manage link
    with pytest.raises(TokenError):
        verify_confirm_token(secret, token, now)  # not a sign-up's confirmation
    confirm = make_confirm_token(secret, "n" * 16, now + timedelta(minutes=15))
    with pytest.raises(TokenError):
        verify_admin_token(secret, confirm, now)
    with pytest.raises(TokenExpired):
        verify_admin_token(secret, token, now + timedelta(minutes=15))


def test_a_short_admin_password_is_refused_at_start(make_settings, monkeypatch):
    monkeypatch.setenv("DIGEST_ADMIN_PASSWORD", "hunter2")
    with pytest.raises(ConfigError) as caught:
        make_settings()
    (problem,) = caught.value.problems
    assert "DIGEST_ADMIN_PASSWORD" in problem and "at least 12" in problem
