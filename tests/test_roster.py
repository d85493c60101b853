"""`digest subscribers`: 80 columns however mixed the list, JSON for scripts, an export that
reads back and replaces subscribers.csv, and messages that name the real state."""

from __future__ import annotations

import json
import re
import unicodedata
from datetime import UTC, date, datetime, timedelta

import pytest
from click.testing import CliRunner
from helpers.builders import KEYWORDS

from digest.cli import main
from digest.store import Store

NOW = datetime(2025, 11, 16, 6, 0, tzinfo=UTC)
FUTURE = date.today() + timedelta(days=30)  # a pause still running when the test runs
LONG_TOPIC = "Retrieval-Augmented Generation for Scientific Question Answering over Tables"
KEYS = [k.casefold() for k in KEYWORDS]
SETS = ["", KEYWORDS[1], f"{KEYWORDS[0]};{KEYWORDS[2]}", f"{KEYWORDS[1]};{LONG_TOPIC}"]


def columns(text: str) -> int:
    """Return a line's width on a terminal, counted apart from digest's own code."""
    return sum(
        0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in "WF" else 1
        for c in text
    )


def mixed_list(count: int) -> str:
    """Return subscribers.csv with `count` rows: short, long and international addresses,
    hostile names, every topic set, and a few bad rows."""
    rows = []
    for i in range(count):
        if i % 97 == 0:
            rows.append(f"broken-{i},Bad Row,")  # no @: an invalid row
            continue
        local = {0: f"u{i}", 1: f"first.middle.lastname.{i}.of.a.long.address", 2: f"用户{i}"}
        domain = "example.org" if i % 3 != 1 else "department.university.example.edu"
        name = "=HYPERLINK(x)" if i % 50 == 0 else f"Person {i}"
        rows.append(f"{local[i % 3]}@{domain},{name},{SETS[i % len(SETS)]}")
    return "email,name,keywords\n" + "\n".join(rows) + "\n"


@pytest.fixture
def mixed_of(make_settings):
    """Return a maker of a list of `count` rows, sign-ups, choices and every suppression."""

    def make(count: int):
        extra = f'\n[[keywords]]\nname = "{LONG_TOPIC}"\n'
        settings = make_settings(subscribers=mixed_list(count), extra=extra)
        with Store(settings.database) as store:
            for n in range(20):  # confirmed web sign-ups, one of them with a very long address
                email = f"web{n}@example.org" if n else f"{'w' * 60}@example.org"
                store.add_signup(f"{n:022d}", email, f"Web {n}", [KEYS[n % 3]], NOW)
                store.confirm_signup(f"{n:022d}", NOW)
            for i in (2, 5, 8):
                store.save_choices(
                    f"u{i * 3}@example.org", "", "csv", {"paused_until": FUTURE}, NOW
                )
                weekly = {"frequency": "weekly", "weekday": i % 7}
                store.save_choices(f"u{i * 3 + 300}@example.org", "", "csv", weekly, NOW)
            store.suppress(
                "u3@example.org", "unsubscribed", datetime(2026, 1, 2, 22, 13, tzinfo=UTC)
            )
            store.suppress("u30@example.org", "bounced", NOW)
            store.suppress("u9@example.org", "complaint", NOW)
            store.suppress("gone@example.org", "unsubscribed", NOW)  # on no list any more
            store.forget("u12@example.org", NOW)  # deleted their data
        return settings

    return make


@pytest.fixture
def mixed(mixed_of):
    """A list of 1,000 rows, sign-ups, choices and every kind of suppression."""
    return mixed_of(1000)


def run(settings, *args: str):
    result = CliRunner().invoke(main, ["--config", str(settings.path), "subscribers", *args])
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.mark.slow
def test_the_list_fits_80_columns_with_a_header_aligned_columns_and_totals(mixed):
    lines = run(mixed).splitlines()
    assert all(columns(line) <= 80 for line in lines), max(lines, key=columns)
    assert lines[0] == "Daily Papers: times in Europe/Paris"
    header = lines[1]
    assert header.split() == ["EMAIL", "STATUS", "SINCE", "SRC", "SCHEDULE", "TOPICS"]
    states = "(active|paused|unsubscribed|bounced|complaint|deleted) "
    people = [line for line in lines[2:] if re.match(rf"\S+ +{states}", line)]
    # 989 good rows (one of them deleted their data), 20 sign-ups, gone@ and the deleted one
    assert len(people) == 988 + 20 + 2
    status_at = header.index("STATUS")
    for line in people:  # each status starts in its column, whatever the address before it
        address = line.split()[0]
        assert columns(line[: line.index(line.split()[1], len(address))]) == status_at
    long_one = next(line for line in people if line.startswith("first.middle.lastname.1."))
    assert "…" in long_one.split()[0]  # cut, and says so
    assert any(line.startswith("用户2@example.org ") for line in people)  # wide, still aligned
    assert any(  # 22:13 UTC is 23:13 in Paris, the list's time zone
        line.split()[:4] == ["u3@example.org", "unsubscribed", "2026-01-02", "23:13"]
        for line in people
    )
    assert any(line.split()[:3] == ["u6@example.org", "paused", "until"] for line in people)
    assert any(line.split()[1] == "deleted" and "u12@" in line for line in people)
    assert any(re.match(r"subscribers\.csv:99 +invalid +bad email address", x) for x in lines)
    totals = "\n".join(lines[-7:])
    assert (
        "1,010 people: 1,002 active, 3 paused, 2 unsubscribed, 1 bounced, 1 complaint, 1 deleted"
    ) in totals.replace("\n  ", " ")
    assert "sources: 988 csv, 20 web; 11 invalid row(s)" in totals
    assert f"4 {LONG_TOPIC}" in totals.replace("\n  ", " ")


def test_json_has_one_object_per_person_for_scripts(mixed):
    found = json.loads(run(mixed, "--json"))
    people = [p for p in found if p["status"] != "invalid"]
    assert len(people) == 1010 and len(found) == 1010 + 11
    assert all({"email", "status", "source"} <= set(p) for p in found)
    by_email = {p["email"]: p for p in people}
    assert by_email["u3@example.org"]["status"] == "unsubscribed"
    assert by_email["u3@example.org"]["since"] == "2026-01-02T23:13:00+01:00"
    assert by_email["u6@example.org"]["paused_until"] == FUTURE.isoformat()
    assert by_email["web1@example.org"]["source"] == "web"
    assert by_email["u15@example.org"]["topics"] == [KEYWORDS[1], LONG_TOPIC]
    assert by_email["u306@example.org"]["schedule"] == "weekly"
    assert by_email["u306@example.org"]["weekday"] == "Wednesday"
    assert f"{'w' * 60}@example.org" in by_email  # whole, not cut
    assert by_email["gone@example.org"]["source"] is None
    bad = next(p for p in found if p["status"] == "invalid")
    assert bad["line"] == 2 and "bad email address" in bad["problem"]


@pytest.mark.slow
def test_export_check_reimport_round_trips(mixed, tmp_path):
    first = tmp_path / "first.csv"
    run(mixed, "--export", str(first))
    mixed.subscribers.write_text(first.read_text(encoding="utf-8"), encoding="utf-8")
    result = CliRunner().invoke(main, ["--config", str(mixed.path), "check"])
    assert f"{mixed.subscribers}: 1008 valid, 0 bad row(s)" in result.output, result.output
    assert result.exit_code == 0
    second = tmp_path / "second.csv"
    run(mixed, "--export", str(second))
    assert second.read_text(encoding="utf-8") == first.read_text(encoding="utf-8")


def test_messages_name_the_real_state(mixed_of):
    mixed = mixed_of(40)

    def refused(*args: str) -> str:
        result = CliRunner().invoke(main, ["--config", str(mixed.path), "subscribers", *args])
        assert result.exit_code == 1, result.output
        return result.output

    assert "nobody@example.org is not on the list" in refused("--resubscribe", "nobody@example.org")
    assert "u18@example.org is not unsubscribed" in refused("--resubscribe", "u18@example.org")
    assert "deleted their data" in refused("--resubscribe", "u12@example.org")
    assert "nobody@example.org is not on the list" in refused("--reset", "nobody@example.org")
    assert "has made no choices of their own" in refused("--reset", "u18@example.org")
    assert "is not on the list and was never mailed" in refused("--revoke", "nobody@example.org")
    assert "u3@example.org is subscribed again (was unsubscribed)" in run(
        mixed, "--resubscribe", "u3@example.org"
    )
    assert "gone@example.org is no longer unsubscribed, but is not on the list" in run(
        mixed, "--resubscribe", "gone@example.org"
    )
