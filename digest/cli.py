"""The `digest` command; the only place where errors become messages and exit codes."""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

import click

from . import __version__, logs
from .archive import ArchiveError
from .config import ConfigError, Keyword, Settings, find_settings, is_harvest, load_settings
from .lock import CycleRunning, LockError, ServiceRunning, service_lock
from .progress import LogProgress, Progress
from .signing import SecretChanged
from .store import StoreError
from .subscribers import BadRow, SubscribersError, read_subscribers
from .terminal import EXIT_CONFIG, EXIT_FAILED, EXIT_OK, Refused, settings_of

log = logging.getLogger(__name__)


def setup_logging(verbosity: int) -> None:
    """Log to stderr; without timestamps under systemd (journald adds its own)."""
    level = logging.WARNING if verbosity < 0 else logging.DEBUG if verbosity > 0 else logging.INFO
    fmt = "%(levelname)s %(name)s: %(message)s"
    if not os.environ.get("JOURNAL_STREAM"):
        fmt = "%(asctime)s " + fmt
    logs.install(level, fmt, sys.stderr)  # every logger: values escaped, repeats summarised
    for noisy in ("mail.log", "aiohttp.access", "flufl.bounce", "apprise"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))


def fail(message: str, code: int) -> NoReturn:
    """Print an error on stderr and exit with the code."""
    click.echo(f"digest: {message}", err=True)
    sys.exit(code)


def handled(command: Callable[..., Any]) -> Callable[..., Any]:
    """Turn the package's exceptions into clear messages and exit codes."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except ConfigError as exc:
            fail("bad settings:\n  " + "\n  ".join(exc.problems), EXIT_CONFIG)
        except SubscribersError as exc:
            fail(str(exc), EXIT_CONFIG)
        except SecretChanged as exc:
            fail(str(exc), EXIT_CONFIG)
        except StoreError as exc:
            fail(f"database: {exc}", EXIT_FAILED)
        except (CycleRunning, LockError, ArchiveError, ServiceRunning) as exc:
            fail(str(exc), EXIT_FAILED)
        except Refused as exc:  # a command of its own module that cannot do what was asked
            fail(str(exc), exc.code)
        except OSError as exc:  # a file digest reads or writes: say which, without a traceback
            where = f"{exc.filename}: " if exc.filename else ""
            fail(f"{where}{exc.strerror or exc}", EXIT_FAILED)

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "-c",
    "--config",
    type=click.Path(dir_okay=False),
    default=None,
    help="Settings file [default: $DIGEST_CONFIG, else ./settings.toml].",
)
@click.option("-v", "--verbose", count=True, help="Log more (debug).")
@click.option("-q", "--quiet", is_flag=True, help="Log only warnings and errors.")
@click.version_option(__version__, prog_name="digest")
@click.pass_context
def main(ctx: click.Context, config: str | None, verbose: int, quiet: bool) -> None:
    """Email researchers the new arXiv papers on the topics they follow."""
    setup_logging(-1 if quiet else verbose)
    ctx.obj = {"config": config}


def stop_on_signals() -> threading.Event:
    """Return an event set by SIGTERM or SIGINT, so a cycle can stop cleanly."""
    stop = threading.Event()

    def handler(signum: int, frame: object) -> None:
        log.warning(
            "%s: finishing the message in flight, then stopping", signal.Signals(signum).name
        )
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, handler)
    return stop


class TerminalProgress(Progress):
    """Progress bars on a terminal: fetch per keyword, send n/N."""

    bar: Any = None

    def start(self, phase: str, total: int) -> None:
        """Open a bar for the phase."""
        self.bar = click.progressbar(
            length=total,
            label=f"{phase:>5}",
            file=sys.stderr,
            show_pos=True,
            show_eta=phase == "send",
        )
        self.bar.__enter__()

    def advance(self, steps: int = 1) -> None:
        """Move the bar."""
        if self.bar is not None:
            self.bar.update(steps)

    def finish(self) -> None:
        """Close the bar."""
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None


def warn_plain_http(settings: Settings) -> None:
    """Warn when unsubscribe links are not https (RFC 8058 one-click requires it)."""
    if not settings.base_url.startswith("https://"):
        log.warning(
            "[digest] base_url %s is not https: one-click unsubscribe (RFC 8058) needs https "
            "in production; put the web endpoint behind an HTTPS proxy",
            settings.base_url,
        )


@main.command()
@click.option(
    "--new-secret",
    is_flag=True,
    help="Sign with this secret though another signed the mail already sent (voids old links).",
)
@click.pass_context
@handled
def once(ctx: click.Context, new_secret: bool) -> None:
    """Run one cycle now: fetch, diff, render, send, archive."""
    from .pipeline import run_once

    progress = TerminalProgress() if sys.stderr.isatty() else LogProgress()
    settings = settings_of(ctx)
    report = run_once(settings, stop=stop_on_signals(), progress=progress, new_secret=new_secret)
    # A cycle stopped by a signal is not a failure: its outbox resumes at the next start.
    sys.exit(EXIT_OK if report.ok or report.interrupted else EXIT_FAILED)


def service_settings(ctx: click.Context, cycles: bool) -> Settings:
    """Load the settings of a long-running command and check what it will need.

    A secret that did not sign the mail already sent stops a service that runs cycles
    (SecretChanged); the web endpoint alone starts, saying that old links will be refused.
    """
    from .signing import mismatch
    from .store import Store

    settings = settings_of(ctx)
    warn_plain_http(settings)
    with Store(settings.database) as store:  # fail now on a bad database, not at the first cycle
        refusal = mismatch(settings.secret, *store.secret_record())
    if refusal is not None and cycles:
        raise refusal
    if refusal is not None:
        log.warning("secret: %s; until then the endpoint refuses the links mailed", refusal)
    return settings


@main.command()
@click.pass_context
@handled
def run(ctx: click.Context) -> None:
    """Run as a service: the daily cycle at send_at, and the unsubscribe endpoint."""
    from .daemon import Daemon, serve

    settings = service_settings(ctx, cycles=True)
    daemon = Daemon(settings)
    log.info(
        "daemon: cycles daily at %s %s; %s",
        f"{settings.send_at:%H:%M}",
        settings.timezone.key,
        daemon.status_line(),
    )
    with service_lock(settings.database):  # `digest restore` waits for no running service
        asyncio.run(serve(settings, daemon))


@main.command()
@click.pass_context
@handled
def serve(ctx: click.Context) -> None:
    """Serve only the unsubscribe endpoint (run `digest once` from a timer)."""
    from .daemon import serve as serve_web

    settings = service_settings(ctx, cycles=False)
    with service_lock(settings.database):  # `digest restore` waits for no running service
        asyncio.run(serve_web(settings))


@main.command()
@click.pass_context
@handled
def bounces(ctx: click.Context) -> None:
    """Read the bounce mailbox now: count bounces, unsubscribe complaints, print each."""
    from .bouncebox import BounceBoxError
    from .bounces import line, read_bounces
    from .store import Store

    settings = settings_of(ctx)
    if settings.bounces is None:
        fail(
            'no [bounces] section in the settings; add maildir = "PATH" or '
            'imap = "imaps://user@host/INBOX"',
            EXIT_CONFIG,
        )
    with Store(settings.database) as store:
        try:
            found = read_bounces(settings, store, store.secret(settings.secret), datetime.now(UTC))
        except BounceBoxError as exc:
            fail(str(exc), EXIT_FAILED)
    for outcome in found:
        click.echo(line(outcome))
    click.echo(f"{len(found)} finding(s) in the bounce mailbox", err=True)


@main.command()
@click.pass_context
@handled
def check(ctx: click.Context) -> None:
    """Validate the settings, the subscribers file, the secret and the paths (no network)."""
    from .checks import findings, subscribers_source

    path = find_settings(ctx.obj["config"])
    try:
        settings = load_settings(path)
    except ConfigError as exc:
        problems = list(exc.problems)
        click.echo(f"{path}: {len(problems)} problem(s)")
        for problem in problems:
            click.echo(f"  {problem}")
        if path.is_file():  # the subscribers file's problems too, not hidden by these
            check_subscribers(*subscribers_source(path))
        sys.exit(EXIT_CONFIG)
    click.echo(f"settings: {settings.path}")
    for notice in settings.notices:
        click.echo(f"  note: {notice}")
    click.echo(
        f"  list {settings.name!r}, sends at {settings.send_at:%H:%M} "
        f"{settings.timezone.key}, links to {settings.base_url}"
    )
    target = (
        f"SMTP {settings.smtp.host}:{settings.smtp.port}"
        if settings.smtp
        else f"Maildir {settings.outbox}"
    )
    click.echo(f"  mail goes to {target}; database {settings.database}")
    if box := settings.bounces:
        where = f"Maildir {box.maildir}" if box.maildir else (
            f"IMAP {box.imap_host}:{box.imap_port} folder {box.imap_folder}"
        )  # fmt: skip
        click.echo(f"  bounces are read from {where} (not opened by check)")
    from .dkim import check_lines

    click.echo("\n".join(check_lines(settings)))
    click.echo(f"  {len(settings.keywords)} keyword(s):")
    for keyword in settings.keywords:
        query = (
            f"matched locally: {keyword.topic().key}" if keyword.local else keyword.search_query()
        )
        click.echo(f"    {keyword.name}: {query}")
    if settings.arxiv.harvest:  # fetched into the history, never mailed
        click.echo(f"  {len(settings.arxiv.harvest)} harvest entr(y/ies), kept and not mailed:")
        for keyword in settings.fetched_keywords:
            if is_harvest(keyword.key):
                click.echo(f"    {keyword.name}: {keyword.search_query()}")
    if settings.channels:
        from .channels import describe

        click.echo(f"  {len(settings.channels)} channel(s), posted to after the mail:")
        for line in describe(settings, {}):
            click.echo("    " + line.rsplit("; ", 2)[0])  # without the last post and status
    fatal = False
    for finding in findings(settings):  # warnings print; errors also fail the check
        fatal = fatal or finding.fatal
        click.echo(f"  {'error' if finding.fatal else 'warning'}: {finding.text}")
    bad = check_subscribers(settings.subscribers, settings.keywords)
    sys.exit(EXIT_CONFIG if bad or fatal else EXIT_OK)


def check_subscribers(path: Path, keywords: Sequence[Keyword] | None) -> bool:
    """Print what `check` finds in the subscribers file; return whether it has problems.

    keywords None: the settings could not say which there are, so names go unchecked.
    """
    from .addresses import needs_smtputf8

    good, bad, utf8 = 0, [], []
    try:
        for entry in read_subscribers(path, keywords or ()):
            if isinstance(entry, BadRow):
                if keywords is None and entry.message.startswith("unknown keyword"):
                    good += 1  # as far as it can be checked
                else:
                    bad.append(str(entry))
            else:
                good += 1
                if needs_smtputf8(entry.email):
                    utf8.append(f"line {entry.line} {entry.email}")
    except SubscribersError as exc:
        click.echo(f"subscribers: {exc}")
        return True
    click.echo(f"subscribers: {path}: {good} valid, {len(bad)} bad row(s)")
    if keywords is None:
        click.echo("  keyword names not checked: the settings name no keywords that can be read")
    if utf8:  # a warning: they are sent to, if the relay offers SMTPUTF8
        click.echo(
            f"  {len(utf8)} address(es) need a relay that offers SMTPUTF8 "
            f"(non-ASCII before the @): {', '.join(utf8)}"
        )
    for problem in bad:
        click.echo(f"  {problem}")
    return bool(bad)


@main.command()
@click.option(
    "--html",
    "site",
    metavar="DIR",
    type=click.Path(path_type=Path),
    help="Also write the reading room into DIR as a static site (relative links, no search).",
)
@click.pass_context
@handled
def archive(ctx: click.Context, site: Path | None) -> None:
    """Regenerate the markdown archive (and with --html, the static site) from the database."""
    from .export import export_site
    from .pipeline import write_archive
    from .store import Store

    settings = settings_of(ctx)
    with Store(settings.database) as store:
        write_archive(settings, store, datetime.now(UTC))
        if site is None:
            click.echo(f"wrote {settings.archive}")
            return
        done = export_site(settings, store, site)
    click.echo(
        f"wrote {settings.archive}; {done.pages} pages and {done.feeds} feeds in {site}{os.sep} "
        f"({done.changed} changed, {done.removed} removed)"
    )


def _commands() -> None:
    """Add the commands kept in modules of their own, their errors handled here too."""
    from .cmd_backup import backup, restore
    from .cmd_operator import admin_link, channels, stats
    from .cmd_preview import preview
    from .cmd_subscribers import subscribers

    for command in (subscribers, preview, backup, restore, channels, stats, admin_link):
        assert command.callback is not None  # each is a function decorated by click.command
        command.callback = handled(command.callback)
        main.add_command(command)


_commands()
