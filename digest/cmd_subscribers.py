"""`digest subscribers`: the list in 80 columns or as JSON, its export, and the operator's fixes."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import click

from .config import Settings
from .readers import reader
from .roster import as_json, export, roster, table
from .store import Store
from .terminal import Refused, settings_of
from .tokens import token_id


def _listed(settings: Settings, store: Store, email: str) -> bool:
    return reader(settings, store, email) is not None


def _mailed(settings: Settings, store: Store, email: str) -> bool:
    return store.recipient(token_id(store.secret(settings.secret), email)) is not None


def resubscribe_one(settings: Settings, store: Store, email: str) -> str:
    """Undo an unsubscribe or a bounce; return what was done, or raise Refused naming the
    real state (not on the list, not unsubscribed, their data deleted)."""
    state = store.suppression(email)
    listed = _listed(settings, store, email)
    if state is None and store.is_suppressed(email):  # an unsubscribe waits in the journal
        store.apply_journal()
        state = store.suppression(email)
    if state is None:
        if listed:
            raise Refused(f"{email} is not unsubscribed: they get the digest already")
        raise Refused(f"{email} is not on the list (neither in subscribers.csv nor signed up)")
    if state[0] == "deleted":
        raise Refused(
            f"{email} deleted their data through their page: they stay off the list; they may "
            "sign up again themselves (and remove their row from subscribers.csv)"
        )
    store.unsuppress(email)
    if not listed:
        return (
            f"{email} is no longer {state[0]}, but is not on the list: add them to "
            "subscribers.csv to mail them"
        )
    return f"{email} is subscribed again (was {state[0]})"


def reset_one(settings: Settings, store: Store, email: str) -> str:
    """Forget a person's own choices; return what was done, or raise Refused."""
    if not store.reset_choices(email, datetime.now(UTC)):
        if not _listed(settings, store, email):
            raise Refused(f"{email} is not on the list")
        raise Refused(f"{email} has made no choices of their own")
    done = f"{email}: their own choices are forgotten; the list's apply again"
    person = store.person(email)
    if person is not None and person.own_topics:  # written by them: only they remove them
        done += f"\n{email}: their {len(person.own_topics)} own topic(s) stay"
    return done


def revoke_one(settings: Settings, store: Store, email: str) -> str:
    """Sign out a person's manage links; return what was done, or raise Refused."""
    if not _listed(settings, store, email) and not _mailed(settings, store, email):
        raise Refused(f"{email} is not on the list and was never mailed: no link to sign out")
    version = store.revoke_links(email, datetime.now(UTC))
    return (
        f"{email}: every link to their page mailed so far is signed out (version "
        f"{version}); their next email carries a new one; unsubscribe links still work"
    )


@click.command()
@click.option("--json", "as_json_", is_flag=True, help="Print everyone as JSON, for scripts.")
@click.option("--resubscribe", metavar="EMAIL", help="Undo an unsubscribe (or a bounce).")
@click.option(
    "--resubscribe-bounced",
    "bounced",
    is_flag=True,
    help="Undo every bounce (after a relay's misconfiguration); see --since.",
)
@click.option(
    "--since",
    type=click.DateTime(["%Y-%m-%d"]),
    help="With --resubscribe-bounced: only bounces since this day (YYYY-MM-DD, UTC).",
)
@click.option(
    "--export",
    "export_to",
    type=click.File("w", encoding="utf-8"),
    metavar="FILE",
    help="Write everyone as CSV, a subscribers file `digest check` reads (email, name, keywords, "
    "then source, schedule, pause, status).",
)
@click.option(
    "--reset", metavar="EMAIL", help="Forget a person's own choices: their CSV row rules again."
)
@click.option(
    "--revoke",
    metavar="EMAIL",
    help="Sign out a person's links to their page (a leaked link); the next email has a new one.",
)
@click.pass_context
def subscribers(
    ctx: click.Context,
    as_json_: bool,
    resubscribe: str | None,
    bounced: bool,
    since: datetime | None,
    export_to: Any,
    reset: str | None,
    revoke: str | None,
) -> None:
    """List everyone (80 columns): status, since when, source, schedule, topics; totals."""
    settings = settings_of(ctx)
    with Store(settings.database) as store:
        if bounced:
            emails = store.unsuppress_bounced(since.replace(tzinfo=UTC) if since else None)
            for email in emails:
                click.echo(f"{email} is subscribed again")
            click.echo(f"{len(emails)} bounced address(es) subscribed again")
        elif resubscribe:
            click.echo(resubscribe_one(settings, store, resubscribe))
        elif reset:
            click.echo(reset_one(settings, store, reset))
        elif revoke:
            click.echo(revoke_one(settings, store, revoke))
        elif export_to is not None:
            count = export(settings, store, export_to)
            click.echo(f"wrote {count} people to {export_to.name}", err=True)
        else:
            today = datetime.now(settings.timezone).date()
            entries = list(roster(settings, store))
            if as_json_:
                click.echo(json.dumps(as_json(settings, entries, today), indent=1))
            else:
                click.echo("\n".join(table(settings, entries, today)))
