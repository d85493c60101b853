"""`digest backup` and `digest restore`: the database copied while digest runs, and put back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import click

from .backup import bring_back, take
from .store import VERSION, BadBackup
from .terminal import Refused, settings_of


def age(delta: timedelta) -> str:
    """Return a duration as a person says it: '40 s', '3 h 12 min', '2 days 5 h'."""
    seconds = max(int(delta.total_seconds()), 0)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    if days:
        return f"{days} day{'s' if days > 1 else ''} {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min" if minutes else f"{seconds} s"


def size(count: int) -> str:
    """Return a file size in kB or MB."""
    return f"{count / 1e6:.1f} MB" if count >= 1e6 else f"{max(count // 1000, 1)} kB"


@click.command()
@click.argument("file", type=click.Path(path_type=Path))
@click.option(
    "--keep",
    type=click.IntRange(1),
    metavar="N",
    help="FILE is a folder (made if missing): write digest-DATE-TIME.db into it and keep only "
    "the newest N.",
)
@click.pass_context
def backup(ctx: click.Context, file: Path, keep: int | None) -> None:
    """Copy the database into FILE (or a dated file in the folder FILE), while digest runs."""
    if keep is not None and file.exists() and not file.is_dir():
        raise click.UsageError(f"--keep needs FILE to be a folder; {file} is a file")
    settings = settings_of(ctx)
    snapshot, removed = take(settings, file, datetime.now(UTC), keep)
    click.echo(
        f"backed up {settings.database} to {snapshot.path}: {size(snapshot.size)}, schema "
        f"{snapshot.schema}, {snapshot.sent:,} messages sent, {snapshot.queued:,} queued; "
        "integrity ok"
    )
    for path in removed:
        click.echo(f"deleted the older backup {path} (keeping the newest {keep})")


@click.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_context
def restore(ctx: click.Context, file: Path) -> None:
    """Put a backup back in the database's place (stop digest first); keep the one replaced."""
    settings = settings_of(ctx)
    try:
        done = bring_back(settings, file)
    except BadBackup as exc:
        raise Refused(f"cannot restore: {exc}") from None
    shot = done.snapshot
    click.echo(f"restored {settings.database} from {file} (integrity ok)")
    if shot.taken_at is not None:
        local = shot.taken_at.astimezone(settings.timezone)
        ago = age(datetime.now(UTC) - shot.taken_at)
        zone = settings.timezone.key
        click.echo(f"  the backup was taken {local:%Y-%m-%d %H:%M} {zone}, {ago} ago")
    else:
        click.echo("  the backup does not say when it was taken (not made by digest backup)")
    if shot.schema < VERSION:
        click.echo(f"  its schema {shot.schema} was migrated to this digest's {VERSION}")
    if shot.queued:
        click.echo(
            f"  it holds {shot.queued:,} queued message(s), which may have gone out since it "
            "was taken: the next cycle sends them (again)"
        )
    else:
        click.echo("  it holds no queued message")
    if done.kept:
        click.echo(f"  the database it replaced is kept as {done.kept}")
    if done.carried is None:
        click.echo(
            "  the database it replaced cannot be read: unsubscribes since the backup are lost "
            "(see docs/operations.md, Restoring)"
        )
    elif done.carried:
        kinds = ", ".join(f"{n} {reason}" for reason, n in sorted(done.carried.items()))
        click.echo(f"  carried over from it, made since the backup: {kinds}")
