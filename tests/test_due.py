"""due(): who gets a digest today, of which cycles, walked day by day on a frozen clock."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine

from digest.readers import Due, Reader, due

PARIS = ZoneInfo("Europe/Paris")
MONDAY = datetime(2025, 11, 17, 5, 0, tzinfo=UTC)  # 06:00 in Paris, the default cycle time
ADA = Reader("ada@example.org", "Ada", ("graph neural network",))


@pytest.fixture
def clock() -> Iterator[time_machine.Traveller]:
    """Stop the clock on Monday 17 November 2025, 06:00 in Paris."""
    with time_machine.travel(MONDAY, tick=False) as traveller:
        yield traveller


def today() -> date:
    """Return the day a cycle would plan for now (the list's time zone)."""
    return datetime.now(UTC).astimezone(PARIS).date()


def fortnight(clock: time_machine.Traveller, reader: Reader) -> list[tuple[str, Due]]:
    """Return what `reader` gets on each of 14 days from now, the clock moving a day a time."""
    seen = []
    for _ in range(14):
        seen.append((f"{today():%a %d}", due(reader, today())))
        clock.shift(timedelta(days=1))
    return seen


def test_a_daily_reader_gets_the_news_since_their_last_digest_every_day(clock):
    reader = Reader(ADA.email, ADA.name, ADA.topics, last_cycle=7, chosen=True)
    assert {d for _, d in fortnight(clock, reader)} == {Due(mail=True, since=7)}


def test_a_reader_from_the_csv_alone_gets_this_cycles_news():
    assert due(ADA, date(2025, 11, 17)) == Due(mail=True, since=None)


def test_a_weekly_reader_gets_mail_on_their_weekday_only(clock):
    reader = Reader(ADA.email, ADA.name, ADA.topics, frequency="weekly", weekday=2, last_cycle=3)
    mailed = [day for day, d in fortnight(clock, reader) if d.mail]
    assert mailed == ["Wed 19", "Wed 26"]
    assert due(reader, date(2025, 11, 19)) == Due(mail=True, since=3)
    assert due(reader, date(2025, 11, 20)) == Due(mail=False)  # waits; the window stays put


def test_a_second_cycle_on_a_weekly_readers_day_sends_nothing_more(clock):
    reader = Reader(
        ADA.email, ADA.name, ADA.topics, frequency="weekly", weekday=0, last_sent_on=today()
    )
    assert due(reader, today()) == Due(mail=False)
    clock.shift(timedelta(days=7))
    assert due(reader, today()).mail  # next Monday it is due again


def test_a_pause_covers_the_days_before_it_ends_then_says_it_ended(clock):
    resume = date(2025, 11, 20)
    reader = Reader(ADA.email, ADA.name, ADA.topics, paused_until=resume, chosen=True)
    days = fortnight(clock, reader)
    assert [d for _, d in days[:3]] == [Due(mail=False, covered=True)] * 3  # Mon-Wed
    assert days[3] == ("Thu 20", Due(mail=True, since=None, resumed=resume))


def test_a_pause_without_own_choices_moves_no_window():
    reader = Reader(ADA.email, ADA.name, ADA.topics, paused_until=date(2025, 11, 30))
    assert due(reader, date(2025, 11, 17)) == Due(mail=False, covered=False)


def test_a_pause_wins_over_a_weekly_day(clock):
    reader = Reader(
        ADA.email, ADA.name, ADA.topics, frequency="weekly", weekday=0,
        paused_until=date(2025, 11, 25), last_cycle=4, chosen=True,
    )  # fmt: skip
    days = dict(fortnight(clock, reader))
    assert days["Mon 17"] == Due(mail=False, covered=True)  # a Monday, but paused
    assert days["Tue 25"] == Due(mail=False)  # the pause is over; Monday is the day
    assert days["Mon 24"] == Due(mail=False, covered=True)
    assert [day for day, d in days.items() if d.mail] == []
    assert f"{today():%a %d}" == "Mon 01"  # the first Monday after the pause
    assert due(reader, today()) == Due(mail=True, since=4, resumed=date(2025, 11, 25))
