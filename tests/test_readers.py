"""Who is on the list: the roll of a cycle, one person's reader, and the cached CSV."""

from __future__ import annotations

import os
import time
from datetime import UTC, date, datetime

from digest import readers as readers_module
from digest import subscribers as subscribers_module
from digest.pipeline import run_once
from digest.readers import Reader, is_subscribed, reader, readers, roll
from digest.store import Store
from digest.subscribers import BadRow

NOW = datetime(2025, 11, 16, 6, 0, tzinfo=UTC)  # the fixture papers' day
ROWS = """email,name,keywords
ada@example.org,Ada Lovelace,
not an address,Nobody,
alan@example.org,Alan Turing,Graph Neural Network
"""


def settle(path) -> None:
    """Date the file a minute back, as a file edited a while ago is."""
    then = time.time() - 60
    os.utime(path, (then, then))


def signed_up(store: Store, email: str, confirmed: bool = True) -> None:
    store.add_signup(f"nonce-{email}", email, "Web Person", ["graph neural network"], NOW)
    if confirmed:
        store.confirm_signup(f"nonce-{email}", NOW)


def test_the_roll_gives_bad_rows_as_values_and_sign_ups_after_the_csv(make_settings):
    settings = make_settings(subscribers=ROWS)
    with Store(settings.database) as store:
        signed_up(store, "web@example.org")
        signed_up(store, "waiting@example.org", confirmed=False)
        entries = list(roll(settings, store))
        listed = list(readers(settings, store))
    bad = [e for e in entries if isinstance(e, BadRow)]
    assert len(entries) == 4 and [str(e)[:19] for e in bad] == ["subscribers.csv:3: "]
    assert [r.email for r in listed] == ["ada@example.org", "alan@example.org", "web@example.org"]
    assert listed[2].source == "web" and listed[2].topics == ("graph neural network",)


def test_one_reader_is_their_row_with_their_choices_or_their_confirmed_sign_up(make_settings):
    settings = make_settings(subscribers=ROWS)
    with Store(settings.database) as store:
        choices = {"topics": ["large language model"], "frequency": "weekly", "weekday": 2,
                   "paused_until": date(2025, 12, 1), "abstracts": "none"}  # fmt: skip
        store.save_choices("ada@example.org", "Ada Lovelace", "csv", choices, NOW)
        signed_up(store, "web@example.org")
        signed_up(store, "waiting@example.org", confirmed=False)
        ada = reader(settings, store, "ADA@example.org")
        alan = reader(settings, store, "alan@example.org")
        web = reader(settings, store, "web@example.org")
        assert reader(settings, store, "waiting@example.org") is None
        assert reader(settings, store, "stranger@example.org") is None
        by_roll = {r.key: r for r in readers(settings, store)}
    assert ada == by_roll["ada@example.org"]  # the cycle and the web see the same person
    assert ada.topics == ("large language model",) and ada.schedule == "weekly on Wednesday"
    assert ada.paused_until == date(2025, 12, 1) and ada.abstracts == "none" and ada.chosen
    assert alan == Reader("alan@example.org", "Alan Turing", ("graph neural network",))
    assert web is not None and web.source == "web" and web == by_roll["web@example.org"]


def test_is_subscribed_says_no_to_the_suppressed_the_unconfirmed_and_strangers(make_settings):
    settings = make_settings(subscribers=ROWS)
    with Store(settings.database) as store:
        signed_up(store, "web@example.org")
        signed_up(store, "waiting@example.org", confirmed=False)
        store.suppress("alan@example.org", "unsubscribed", NOW)
        answers = {
            email: is_subscribed(settings, store, email)
            for email in ("ada@example.org", "alan@example.org", "web@example.org",
                          "waiting@example.org", "stranger@example.org")
        }  # fmt: skip
    assert answers == {
        "ada@example.org": True,
        "alan@example.org": False,
        "web@example.org": True,
        "waiting@example.org": False,
        "stranger@example.org": False,
    }


def test_one_reader_reads_the_csv_again_only_when_it_changes(make_settings, monkeypatch):
    settings = make_settings(subscribers=ROWS)
    settle(settings.subscribers)
    reads = []
    original = readers_module.read_subscribers
    monkeypatch.setattr(
        readers_module, "read_subscribers", lambda *a: reads.append(1) or original(*a)
    )
    with Store(settings.database) as store:
        for _ in range(3):
            assert reader(settings, store, "ada@example.org") is not None
        assert len(reads) == 1
        settings.subscribers.write_text(ROWS.replace("ada@", "ida@"), encoding="utf-8")
        settle(settings.subscribers)
        assert reader(settings, store, "ada@example.org") is None
        assert reader(settings, store, "ida@example.org") is not None
        assert len(reads) == 2
        # A file changed a moment ago may change again unseen within its mtime's tick: read
        # each time until it settles.
        settings.subscribers.write_text(ROWS, encoding="utf-8")
        assert reader(settings, store, "ada@example.org") is not None
        assert reader(settings, store, "ada@example.org") is not None
        assert len(reads) == 4


def test_an_unusable_csv_leaves_the_confirmed_sign_ups(make_settings):
    settings = make_settings(subscribers="mail,name\n")
    with Store(settings.database) as store:
        signed_up(store, "web@example.org")
        assert reader(settings, store, "ada@example.org") is None
        assert is_subscribed(settings, store, "web@example.org")


def test_a_cycle_parses_each_row_of_the_csv_once(
    make_settings, fake_arxiv, mail_server, monkeypatch
):
    settings = make_settings(subscribers=ROWS)
    parsed = []
    original = subscribers_module._row
    monkeypatch.setattr(subscribers_module, "_row", lambda *a: parsed.append(a[1]) or original(*a))
    report = run_once(settings, clock=lambda: NOW)
    assert sorted(parsed) == [2, 3, 4]  # each line once (the header is only checked first)
    assert len(report.bad_rows) == 1 and report.bad_rows[0].startswith("subscribers.csv:3: ")
    assert report.planned == report.delivery.sent == 1  # Ada; no news for Alan today
