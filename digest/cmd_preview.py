"""`digest preview`: the next email for someone, or a sample of the design for any address."""

from __future__ import annotations

import difflib
from datetime import UTC, date, datetime
from email.message import EmailMessage
from pathlib import Path

import click

from .config import Settings
from .readers import WEEKDAYS, readers
from .readers import reader as find_reader
from .store import Store
from .terminal import Refused, settings_of

SAMPLE_HINT = "`digest preview --sample` shows the design with stored papers"


def standing(settings: Settings, store: Store, email: str, today: date) -> str | None:
    """Return why a cycle today would send an address nothing (not on the list, a typo,
    unsubscribed, paused, no topic, not their weekday), or None if it may send them news."""
    person = find_reader(settings, store, email)
    suppressed = store.suppression(email)
    if person is None:
        if suppressed and suppressed[0] == "deleted":
            return f"{email} deleted their data: they are not on the list"
        known = [r.email for r in readers(settings, store)]
        close = difflib.get_close_matches(email, known, n=1, cutoff=0.8)
        hint = f"; did you mean {close[0]}?" if close else ""
        return f"{email} is not on the list{hint}"
    if suppressed:
        since = suppressed[1].astimezone(settings.timezone)
        return f"{email} is {suppressed[0]} (since {since:%Y-%m-%d %H:%M}): nothing is sent to them"
    if person.paused_until is not None and today < person.paused_until:
        return f"{email} is paused until {person.paused_until}: nothing is sent to them before"
    if not person.topics:
        return f"{email} follows no topic: nothing is sent to them"
    if (
        person.frequency == "weekly"
        and person.weekday is not None
        and (today.weekday() != person.weekday)
    ):
        day = WEEKDAYS[person.weekday]
        return f"{email} gets a weekly digest on {day}s: a cycle today sends them nothing"
    return None


def _write(message: EmailMessage, output: Path | None) -> None:
    if output is None:
        body = message.get_body(("plain",))
        assert body is not None  # a digest is multipart/alternative: a text and an HTML part
        click.echo(body.get_content())
        return
    part = {".html": "html", ".txt": "plain"}.get(output.suffix.lower())
    if part:
        body = message.get_body((part,))
        assert body is not None
        output.write_text(body.get_content(), encoding="utf-8")
    else:
        output.write_bytes(message.as_bytes())
    click.echo(f"wrote {output}")


@click.command()
@click.option("--subscriber", metavar="EMAIL", help="Whose email to render [default: the first].")
@click.option(
    "--sample",
    is_flag=True,
    help="Render the design from stored papers for EMAIL (anyone, even made up): no fetch.",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write to FILE: .html → HTML part, .txt → text part, else the whole .eml.",
)
@click.pass_context
def preview(ctx: click.Context, subscriber: str | None, sample: bool, output: Path | None) -> None:
    """Render the email the next run would send, without recording or sending anything."""
    from .pipeline import render_preview
    from .sample import NothingStored, render_sample

    settings = settings_of(ctx)
    state = None
    if subscriber:  # before any fetch: a typo is named at once, even offline
        today = datetime.now(settings.timezone).date()
        with Store(settings.database) as store:
            state = standing(settings, store, subscriber, today)
    if sample:
        try:
            made = render_sample(settings, subscriber)
        except NothingStored as exc:
            raise Refused(str(exc)) from None
        if state:
            click.echo(f"note: {state}; this is a sample of the design", err=True)
        if made.reader is None or not made.reader.topics:
            click.echo("note: the sample shows every topic", err=True)
        _write(made.message, output)
        return
    if state:
        raise Refused(f"{state}; {SAMPLE_HINT}")
    message = render_preview(settings, subscriber, lambda: datetime.now(UTC))
    if message is None:
        who = subscriber or "anyone"
        click.echo(f"no new papers for {who}: nothing would be sent; {SAMPLE_HINT}")
        return
    _write(message, output)
