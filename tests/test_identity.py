"""Who an address is: one key for every spelling of a mailbox, another for each look-alike."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
from helpers.builders import SECRET, SUBSCRIBERS, changed
from helpers.cycles import BASE
from helpers.mailserver import MailServer
from helpers.site import confirm_form, confirm_link, start

from digest.addresses import address_key, checked_key, legacy_address_key
from digest.config import Keyword
from digest.store import SCHEMA, VERSION, Store
from digest.store.schema import add_functions
from digest.subscribers import BadRow, Subscriber, read_subscribers
from digest.tokens import make_token, token_id, unsubscribe_token

SAM = "\u017fam@example.org"  # with a LATIN SMALL LETTER LONG S, which case-folds to s
KELVIN = "\u212a"  # KELVIN SIGN, which looks like K and case-folds to k
NOW = datetime(2025, 11, 16, 6, 0, tzinfo=UTC)


def test_spellings_of_one_mailbox_share_a_key():
    same = [
        ("sam@example.org", "SAM@Example.ORG"),
        (" sam@example.org ", "Sam@EXAMPLE.org"),
        ("a@bücher.de", "a@BÜCHER.de"),
        ("a@bücher.de", "a@xn--bcher-kva.de"),
        ("a@bücher.de", "a@XN--BCHER-KVA.DE"),
        ("a@straße.de", "a@xn--strae-oqa.de"),
        ("e\u0301@example.org", "\u00e9@example.org"),  # é decomposed and composed
    ]
    for one, other in same:
        assert address_key(one) == address_key(other), (one, other)
    assert address_key("Sam@Example.ORG") == "sam@example.org"
    assert address_key("a@XN--BCHER-KVA.DE") == "a@bücher.de"


def test_look_alikes_have_keys_of_their_own():
    different = [
        (SAM, "sam@example.org"),  # the long s case-folds to s
        ("straße@example.org", "strasse@example.org"),  # ß case-folds to ss
        (f"{KELVIN}ate@example.org", "kate@example.org"),  # the Kelvin sign to k
        (f"{KELVIN}ate@example.org", "Kate@example.org"),  # and NFC makes it K
        ("\u00dcber@example.org", "\u00fcber@example.org"),  # only ASCII letters are folded
        ("a@straße.de", "a@strasse.de"),  # IDNA 2008: two domains
    ]
    for one, other in different:
        assert address_key(one) != address_key(other), (one, other)
        # Before, they were one person: the migration has this to undo.
        assert legacy_address_key(one) == legacy_address_key(other) or "Ü" in one
    assert address_key(SAM) == SAM
    assert address_key(f"{KELVIN}ate@example.org") == f"{KELVIN}ate@example.org"
    secret = SECRET.encode()
    assert make_token(secret, SAM) != make_token(secret, "sam@example.org")


def test_checked_key_validates_and_gives_the_same_key():
    for address in (SAM, "Sam@Example.org", "a@BÜCHER.de", f"{KELVIN}@x.org"):
        assert checked_key(address) == address_key(address)
    for bad in ("sam", "sam@", "@example.org", "sam@@example.org"):
        with pytest.raises(ValueError):
            checked_key(bad)


def test_a_subscribers_file_keeps_look_alikes_apart_and_finds_duplicates(tmp_path: Path):
    path = tmp_path / "subscribers.csv"
    path.write_text(
        f"email,name,keywords\nsam@example.org,Sam,\n{SAM},Long S,\nSAM@Example.org,Sam again,\n",
        encoding="utf-8",
    )
    entries = list(read_subscribers(path, (Keyword("Topic"),)))
    assert [e.email for e in entries if isinstance(e, Subscriber)] == [
        "sam@example.org",
        SAM,
    ]
    (bad,) = [e for e in entries if isinstance(e, BadRow)]
    assert bad.line == 4 and "already listed on line 2" in bad.message


# --- the migration: keys stored the old way are computed again ----------------------------------


def rekey_index() -> int:
    """Return the position of the migration that computes keys again."""
    return next(i for i, script in enumerate(SCHEMA) if "legacy_address_key" in script)


def test_stored_keys_are_computed_again_and_nothing_merges(tmp_path: Path):
    path, before = tmp_path / "digest.db", rekey_index()
    conn = sqlite3.connect(path)
    add_functions(conn)
    for script in SCHEMA[:before]:
        conn.executescript(script)
    old = legacy_address_key
    stamp = NOW.isoformat()
    people = [  # (email, name): each key as the old function made it
        (SAM, "Long S"),
        ("ada@example.org", "Ada"),
        (f"{KELVIN}ate@example.org", "Kelvin"),
    ]
    for email, name in people:
        conn.execute(
            "INSERT INTO people (key, email, name, source, updated_at) VALUES (?, ?, ?, 'web', ?)",
            [old(email), email, name, stamp],
        )
    conn.execute(
        "INSERT INTO signups (nonce, key, email, name, topics, created_at) "
        "VALUES ('n', ?, ?, '', '[]', ?)",
        [old("Straße@example.org"), "Straße@example.org", stamp],
    )
    conn.execute("INSERT INTO recipients (id, email) VALUES ('r1', ?)", [SAM])
    # The long s unsubscribed: the old key suppressed sam@ too; and ada bounced once.
    conn.execute("INSERT INTO suppressions VALUES (?, 'unsubscribed', ?)", [old(SAM), stamp])
    conn.execute("INSERT INTO suppressions VALUES ('ada@example.org', 'bounced', ?)", [stamp])
    conn.execute(
        "INSERT INTO bounces VALUES (?, 2, '550 no', ?)", [old(f"{KELVIN}ate@example.org"), stamp]
    )
    conn.execute(f"PRAGMA user_version = {before}")
    conn.commit()
    conn.close()

    with Store(path) as store:
        assert store.db.execute("PRAGMA user_version").fetchone()[0] == VERSION
        keys = {row[0] for row in store.db.execute("SELECT key FROM people")}
        assert keys == {SAM, "ada@example.org", f"{KELVIN}ate@example.org"}
        assert store.person(SAM).name == "Long S"
        assert store.person("sam@example.org") is None
        assert store.person(f"{KELVIN}ate@example.org").name == "Kelvin"
        assert store.person("kate@example.org") is None
        assert store.recent_signups("straße@example.org", NOW) == 1
        assert store.recent_signups("strasse@example.org", NOW) == 0
        # Whoever the old suppression was for still gets no mail; nothing else is suppressed.
        assert store.is_suppressed(SAM) and store.is_suppressed("sam@example.org")
        assert store.suppressed() == {"sam@example.org", SAM, "ada@example.org"}
        bounced = dict(store.db.execute("SELECT email, failures FROM bounces").fetchall())
        assert bounced == {"kate@example.org": 2, f"{KELVIN}ate@example.org": 2}
        assert store.db.execute("SELECT count(*) FROM people").fetchone()[0] == 3


# --- sign-up: mail about a subscription goes to the address as stored ---------------------------


@pytest.fixture
def mail_server():
    """A relay that takes addresses that are not ASCII before the @ (SMTPUTF8)."""
    with MailServer(enable_SMTPUTF8=True) as server:
        yield server


@pytest.fixture
async def sam_site(make_settings):
    """Serve sign-up for a list that has sam@example.org in its subscribers.csv."""
    settings = changed(make_settings(SUBSCRIBERS + "sam@example.org,Sam,\n"), web_signup=True)
    site, server = await start(settings)
    yield site
    await site.client.close()
    await server.close()


def mailed_text(received) -> str:
    return received.message.get_body(("plain",)).get_content()


async def test_a_look_alike_sign_up_gets_no_link_of_sams(sam_site, mail_server):
    sam_token = token_id(SECRET.encode(), "sam@example.org")  # the first half of all of Sam's
    with Store(sam_site.settings.database) as store:
        store.suppress("sam@example.org", "unsubscribed", NOW)  # Sam left the list
    assert (await sam_site.sign_up(SAM))[0] == 200
    await sam_site.signup.idle()
    (received,) = mail_server.received
    assert received.rcpt_tos == [SAM]
    assert received.message["Subject"] == "Confirm your subscription to Daily Papers"
    assert sam_token not in mailed_text(received)  # no link that unsubscribes or manages Sam
    link = sam_site.local(confirm_link(received.message))
    form = await confirm_form(sam_site, link)
    async with sam_site.client.post(link, data={"form": form}) as answer:
        assert answer.status == 200 and "You are subscribed" in await answer.text()
    with Store(sam_site.settings.database) as store:
        assert store.is_suppressed("sam@example.org")  # Sam's unsubscribe stands
        assert not store.is_suppressed(SAM)
        assert store.person(SAM).source == "web"
        assert store.person("sam@example.org") is None


async def test_a_subscribed_persons_note_goes_to_the_address_as_stored(sam_site, mail_server):
    assert (await sam_site.sign_up("SAM@Example.ORG", client="198.51.100.1"))[0] == 200
    await sam_site.signup.idle()
    (received,) = mail_server.received
    assert received.rcpt_tos == ["sam@example.org"]  # as subscribers.csv has it, not as typed
    assert "sam@example.org" in received.message["To"] and "SAM" not in received.message["To"]
    assert received.message["Subject"] == "You are already subscribed to Daily Papers"
    text = mailed_text(received)
    token = unsubscribe_token(SECRET.encode(), "sam@example.org")
    assert f"{BASE}/unsubscribe?token={token}" in text
    assert "SAM@Example.ORG" not in text
