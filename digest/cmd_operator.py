"""The operator's commands beside the cycle: `digest channels`, `digest stats` and
`digest admin-link`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import click

from .terminal import EXIT_CONFIG, EXIT_FAILED, Refused, settings_of


@click.command()
@click.option("--test", "name", metavar="NAME", help="Send the channel NAME a test message now.")
@click.pass_context
def channels(ctx: click.Context, name: str | None) -> None:
    """List the [[channels]]: where each posts (hidden), its last post and its status."""
    from .channels import describe, find_channel, send_test
    from .chat import ChatError
    from .store import Store

    settings = settings_of(ctx)
    if name is not None:
        try:
            channel = find_channel(settings, name)
        except ChatError as exc:
            raise Refused(str(exc), EXIT_CONFIG) from None
        try:
            send_test(settings, channel)
        except ChatError as exc:
            raise Refused(
                f"channel {channel.name} ({channel.redacted}): not sent: {exc}", EXIT_FAILED
            ) from None
        click.echo(f"channel {channel.name} ({channel.redacted}): test message sent")
        return
    if not settings.channels:
        click.echo(f"no channels: add [[channels]] to {settings.path.name} (see docs/channels.md)")
        return
    with Store(settings.database) as store:
        states = store.channel_states()
    for line in describe(settings, states):
        click.echo(line)


@click.command()
@click.option(
    "--cycles",
    "recent",
    type=click.IntRange(0, 90),
    default=10,
    show_default=True,
    help="How many recent cycles to list.",
)
@click.pass_context
def stats(ctx: click.Context, recent: int) -> None:
    """Print the operator's view: cycles, mail, the list, new papers per topic (80 columns)."""
    from .dashboard import read_dashboard, text_lines
    from .store import Store

    settings = settings_of(ctx)
    with Store(settings.database) as store:
        board = read_dashboard(settings, store, datetime.now(UTC))
    for line in text_lines(board, recent):
        click.echo(line)


@click.command("admin-link")
@click.option(
    "--minutes",
    type=click.IntRange(1, 24 * 60),
    default=15,
    show_default=True,
    help="How long the link opens the dashboard.",
)
@click.pass_context
def admin_link(ctx: click.Context, minutes: int) -> None:
    """Print a link that opens the operator's dashboard (/admin) for a few minutes."""
    from .signing import mismatch
    from .store import Store
    from .tokens import admin_token

    settings = settings_of(ctx)
    with Store(settings.database) as store:
        refusal = mismatch(settings.secret, *store.secret_record())
        if refusal is not None:  # the endpoint signs with another secret: the link would fail
            raise refusal
        secret = store.secret(settings.secret)
    expires = datetime.now(UTC) + timedelta(minutes=minutes)
    token = admin_token(secret, expires)
    click.echo(f"{settings.base_url}/admin?token={token}")
    host = settings.web_host if settings.web_host not in ("", "0.0.0.0", "::") else "127.0.0.1"
    host = f"[{host}]" if ":" in host else host
    local = f"http://{host}:{settings.web_port}/admin?token={token}"
    click.echo(
        f"valid until {expires.astimezone(settings.timezone):%Y-%m-%d %H:%M %Z}; open it over "
        f"HTTPS, or on this machine (an SSH tunnel to it) as {local}",
        err=True,
    )
