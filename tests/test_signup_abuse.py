"""The sign-up form cannot be aimed at someone (issue 17, finding 2), each part as it was found:
a replayed form token, one Gmail mailbox under many spellings, many addresses of one IPv6 /64,
a forged X-Forwarded-For, a phishing text typed as the name, mail to people who left, a flood."""

from __future__ import annotations

import asyncio
import email
import email.policy
import logging
import re
from datetime import timedelta
from ipaddress import ip_address, ip_network

import pytest
from helpers.builders import changed
from helpers.cycles import DAY1, GNN
from helpers.site import LOCAL_PROXY, SENT, Site, confirm_form, confirm_link, start

from digest.addresses import mailbox_key
from digest.config import ConfigError
from digest.store import Store
from digest.web.clients import client_address, network_of

PHISH = "URGENT: your account is locked, verify at https://evil.example/verify"
REPLAYED = "This form was sent already"
HIDDEN = r'<input type="hidden" name="(\w+)" value="([^"]*)">'


@pytest.fixture
async def serve(make_settings):
    """Start sites with sign-up on (the tests' proxy trusted unless told); close them after."""
    running = []

    async def serve(**changes) -> Site:
        changes = {"web_signup": True, "web_trusted_proxies": LOCAL_PROXY, **changes}
        site, server = await start(changed(make_settings(), **changes))
        running.append((site, server))
        return site

    yield serve
    for site, server in running:
        await site.client.close()
        await server.close()


async def post(site: Site, hidden: dict[str, str], address: str, client: str, name: str = ""):
    """POST the sign-up form with these hidden fields; return the status and the page."""
    data = [("email", address), ("name", name), ("website", ""), *hidden.items()]
    data.append(("topic", GNN.casefold()))
    headers = {"X-Forwarded-For": client}
    async with site.client.post(site.url + "/subscribe", data=data, headers=headers) as answer:
        return answer.status, await answer.text()


def sent_to(mail_server) -> list[str]:
    return [r.rcpt_tos[0] for r in mail_server.received]


async def test_one_form_token_replayed_for_many_posts_sends_one_email(serve, mail_server):
    site = await serve()
    hidden = await site.form()
    assert hidden["form"] != (await site.form())["form"]  # unique to each page load
    site.clock.advance(seconds=5)
    answers = [await post(site, hidden, f"v{n}@example.org", f"198.51.{n}.1") for n in range(10)]
    assert answers[0][0] == 200 and SENT in answers[0][1]
    for status, page in answers[1:]:  # the form again, with a fresh token and why
        assert status == 400 and REPLAYED in page and SENT not in page
        assert 'role="alert"' in page
    fresh = dict(re.findall(HIDDEN, answers[1][1]))
    assert fresh["form"] != hidden["form"]
    await site.signup.idle()
    assert sent_to(mail_server) == ["v0@example.org"]
    with Store(site.settings.database) as store:
        assert store.db.execute("SELECT count(*) FROM form_tokens").fetchone()[0] == 1

    site.clock.advance(seconds=5)  # the fresh token works, once
    assert (await post(site, fresh, "v1@example.org", "198.51.50.1"))[0] == 200
    assert (await post(site, fresh, "v2@example.org", "198.51.51.1"))[0] == 400
    await site.signup.idle()
    assert sent_to(mail_server) == ["v0@example.org", "v1@example.org"]


def test_used_form_tokens_are_kept_until_they_expire(make_settings):
    with Store(make_settings().database) as store:
        assert store.use_form_token("a" * 16, DAY1 + timedelta(days=1), DAY1)
        assert not store.use_form_token("a" * 16, DAY1 + timedelta(days=1), DAY1)
        later = DAY1 + timedelta(days=1, seconds=1)
        assert store.use_form_token("b" * 16, later + timedelta(days=1), later)  # prunes a
        assert store.db.execute("SELECT id FROM form_tokens").fetchall() == [("b" * 16,)]


GMAIL = [
    "victim@gmail.com",
    "v.ictim@googlemail.com",
    "VICTIM@GMAIL.COM",
    "Vic.Tim@gmail.com",
    "v.i.c.t.i.m@gmail.com",
    "victim+1@gmail.com",
    "victim+2@googlemail.com",
    "v.ictim+news@gmail.com",
    "vi.ctim+a.b@googlemail.com",
    "victim+@gmail.com",
    "VICTIM+X@googlemail.com",
    "vict.im@gmail.com",
    "victi.m+9@gmail.com",
    "v.i.ctim@googlemail.com",
    "victim+deadbeef@gmail.com",
    "vi.c.tim+z@gmail.com",
    "victim+17@googlemail.com",
]


def test_one_gmail_mailbox_has_one_key_and_others_lose_only_their_tag():
    assert {mailbox_key(a) for a in GMAIL} == {"victim@gmail.com"}
    assert mailbox_key("A.Lovelace+x@Example.org") == "a.lovelace@example.org"  # dots stay
    assert mailbox_key("+only@example.org") == "+only@example.org"
    assert mailbox_key("victim@gmail.com.evil.example") != mailbox_key("victim@gmail.com")


async def test_seventeen_spellings_of_one_gmail_mailbox_in_one_second_get_one_email(
    serve, mail_server
):
    site = await serve()
    forms = [await site.form() for _ in GMAIL]
    site.clock.advance(seconds=5)  # all sent at the same moment, from 17 networks
    answers = await asyncio.gather(
        *(
            post(site, f, a, f"203.0.{n}.7")
            for n, (f, a) in enumerate(zip(forms, GMAIL, strict=True))
        )
    )
    assert all(status == 200 and SENT in page for status, page in answers)
    assert len({page for _, page in answers}) == 1  # the same answer for each
    await site.signup.idle()
    assert len(mail_server.received) == 1 and sent_to(mail_server)[0] in GMAIL


async def test_twelve_addresses_of_one_ipv6_64_are_limited_as_one_client(serve, mail_server):
    site = await serve()
    statuses = []
    for n in range(1, 13):
        site.clock.advance(seconds=5)
        hidden = await site.form()
        site.clock.advance(seconds=5)
        answer = await post(site, hidden, f"six{n}@example.org", f"2001:db8:5:6::{n:x}")
        statuses.append(answer[0])
    assert statuses == [200] * 5 + [429] * 7
    hidden = await site.form()
    site.clock.advance(seconds=5)  # the next /64 is another client
    assert (await post(site, hidden, "other@example.org", "2001:db8:5:7::1"))[0] == 200
    await site.signup.idle()
    assert len(mail_server.received) == 6


async def test_x_forwarded_for_is_ignored_from_an_untrusted_peer(serve, mail_server):
    site = await serve(web_trusted_proxies=())  # the test client (127.0.0.1) is no proxy
    statuses = []
    for n in range(6):
        hidden = await site.form()
        site.clock.advance(seconds=5)
        statuses.append((await post(site, hidden, f"x{n}@example.org", f"198.51.{n}.1"))[0])
    assert statuses == [200] * 5 + [429]  # all from 127.0.0.0/24, whatever the header said


def test_the_client_is_the_nearest_hop_that_is_not_a_trusted_proxy():
    proxies = (ip_network("127.0.0.1/32"), ip_network("10.0.0.0/8"), ip_network("::1/128"))

    def client(remote: str, *forwarded: str) -> str:
        return str(client_address(remote, list(forwarded), proxies))

    assert client("198.51.100.1", "203.0.113.9") == "198.51.100.1"  # untrusted: ignored
    assert client("127.0.0.1", "192.0.2.1, 203.0.113.9") == "203.0.113.9"
    assert client("127.0.0.1", "192.0.2.1, 203.0.113.9, 10.1.2.3") == "203.0.113.9"
    assert client("::1", "192.0.2.1", "203.0.113.9, 10.0.0.5") == "203.0.113.9"  # two headers
    assert client("::ffff:127.0.0.1", "[2001:db8::1]:4711") == "2001:db8::1"
    assert client("127.0.0.1", "203.0.113.9:443") == "203.0.113.9"
    assert client("127.0.0.1", "::ffff:203.0.113.9") == "203.0.113.9"
    assert client("127.0.0.1", "203.0.113.9, garbage, 10.0.0.5") == "10.0.0.5"
    assert client("127.0.0.1") == "127.0.0.1"
    assert client_address(None, ["203.0.113.9"], proxies) is None
    assert network_of(ip_address("203.0.113.9")) == "203.0.113.0/24"
    assert network_of(ip_address("2001:db8:5:6:7::1")) == "2001:db8:5:6::/64"


def test_trusted_proxies_must_be_addresses_or_networks(make_settings):
    with pytest.raises(ConfigError) as caught:
        make_settings(extra='\n[web]\ntrusted_proxies = ["127.0.0.1", "proxy.local"]\n')
    (problem,) = caught.value.problems
    assert problem.startswith("settings.toml:") and "[web] trusted_proxies" in problem
    assert "'proxy.local' is no IP address or network" in problem
    settings = make_settings(extra='\n[web]\ntrusted_proxies = ["::ffff:10.0.0.0/104", "::1"]\n')
    assert settings.web_trusted_proxies == (ip_network("10.0.0.0/8"), ip_network("::1/128"))
    default = make_settings()
    assert default.web_trusted_proxies == () and default.web_signup_hourly_cap == 100


def read_back(raw: bytes) -> str:
    """Return every header and every decoded part of a message, as the recipient reads it."""
    message = email.message_from_bytes(raw, policy=email.policy.default)
    texts = [f"{name}: {value}" for name, value in message.items()]
    texts += [part.get_content() for part in message.walk() if not part.is_multipart()]
    return "\n".join(texts)


async def test_a_typed_name_never_reaches_a_mailbox_before_confirmation(serve, mail_server):
    site = await serve()
    assert (await site.sign_up("target@example.org", name=PHISH, client="198.51.1.1"))[0] == 200
    assert (await site.sign_up("ada@example.org", name=PHISH, client="198.51.2.1"))[0] == 200
    await site.signup.idle()
    assert sorted(sent_to(mail_server)) == ["ada@example.org", "target@example.org"]
    for received in mail_server.received:  # a confirmation, and a subscribed person's note
        for text in (received.data, read_back(received.data).encode()):
            assert b"evil.example" not in text and b"URGENT" not in text
        assert received.message["To"] == received.rcpt_tos[0]
        assert read_back(received.data).count("Hello,") == 2  # text and HTML, no name
    # The name is kept, and used once the address is confirmed.
    (confirmation,) = [r for r in mail_server.received if r.rcpt_tos == ["target@example.org"]]
    link = site.local(confirm_link(confirmation.message))
    token = await confirm_form(site, link)
    async with site.client.post(link, data={"form": token}) as answer:
        assert answer.status == 200
    with Store(site.settings.database) as store:
        assert store.person("target@example.org").name == PHISH


async def test_people_who_left_get_nothing_for_30_days_then_one_a_month(serve, mail_server):
    site = await serve()
    with Store(site.settings.database) as store:
        store.suppress("ada@example.org", "unsubscribed", site.clock.now)
        store.forget("grace@example.org", site.clock.now)  # "delete my data"
    stranger = await site.sign_up("stranger@example.org", client="198.51.0.1")
    for n, address in enumerate(("Ada+back@example.org", "grace@example.org")):
        assert await site.sign_up(address, client=f"198.51.{n + 1}.1") == stranger
    await site.signup.idle()
    assert sent_to(mail_server) == ["stranger@example.org"]

    async def attempt(address: str, n: int) -> list[str]:
        mail_server.handler.received.clear()
        await site.sign_up(address, client=f"198.51.{n}.2")
        await site.signup.idle()
        return sent_to(mail_server)

    site.clock.advance(days=29, hours=23)  # still within 30 days
    assert await attempt("ada@example.org", 10) == []
    site.clock.advance(hours=1)  # 30 days after unsubscribing: one email
    assert await attempt("ada@example.org", 11) == ["ada@example.org"]
    assert await attempt("grace@example.org", 12) == ["grace@example.org"]
    site.clock.advance(days=2)  # then at most one per 30 days
    assert await attempt("ADA+again@example.org", 13) == []
    site.clock.advance(days=28)
    assert await attempt("ada@example.org", 15) == ["ada@example.org"]


async def test_past_the_hourly_cap_the_page_answers_as_usual_and_no_email_goes(
    serve, mail_server, caplog
):
    caplog.set_level(logging.INFO)
    site = await serve(web_signup_hourly_cap=3)
    answers = [await site.sign_up(f"c{n}@example.org", client=f"198.51.{n}.3") for n in range(6)]
    assert all(answer == answers[0] for answer in answers) and answers[0][0] == 200
    await site.signup.idle()
    assert sent_to(mail_server) == ["c0@example.org", "c1@example.org", "c2@example.org"]
    capped = [r for r in caplog.records if "signup_hourly_cap (3) reached" in r.getMessage()]
    assert len(capped) == 1 and capped[0].levelno == logging.WARNING  # once, for three

    site.clock.advance(hours=1)  # the first three are an hour old: room again
    for n in range(6, 10):
        await site.sign_up(f"c{n}@example.org", client=f"198.51.{n}.3")
    await site.signup.idle()
    assert sent_to(mail_server)[3:] == ["c6@example.org", "c7@example.org", "c8@example.org"]
    capped = [r for r in caplog.records if "signup_hourly_cap (3) reached" in r.getMessage()]
    assert len(capped) == 2  # an hour later, said again
