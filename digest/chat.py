"""Team chats through Apprise: a channel's client, what it renders, and one post to it.

Apprise keeps the clients of 100+ services (Slack, Mattermost, Matrix, Discord, Teams, any
JSON webhook) so that digest writes none. Its own log lines may carry a URL's token: they are
captured around every call, kept from the log, and returned with the channel's secrets hidden;
urllib3's (under Apprise's HTTP client) name the request's path, so they are kept from it too.
"""

from __future__ import annotations

import functools
import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import apprise
from apprise.manager_plugins import NotificationManager
from apprise.utils.parse import parse_list

from .channel_config import Channel

log = logging.getLogger(__name__)

QUIET = ("apprise", "urllib3.connectionpool")  # loggers that may write a token
PLUGINS = NotificationManager()
MARKDOWN = apprise.NotifyFormat.MARKDOWN
# Services that show Markdown though Apprise hands them plain text: the text goes as written.
RENDERS_MARKDOWN = frozenset({"mmost", "mmosts"})
# Any webhook: nobody knows what renders the text at the other end, so it is plain.
GENERIC = frozenset({"json", "jsons", "form", "forms", "xml", "xmls"})


class ChatError(Exception):
    """A channel cannot be used, or its service did not take a post."""


@dataclass(frozen=True)
class Service:
    """A channel's client: whether its service renders Markdown, and its longest post."""

    client: Any  # an Apprise plugin, made for this channel's URL
    markdown: bool
    limit: int  # characters in a post's body (Apprise's body_maxlen for the service)
    declared: bool  # Apprise itself sends this service Markdown (converting where it must)


@functools.cache
def _loaded() -> NotificationManager:
    """Load Apprise's clients once, at the first channel (some import modules Python deprecates:
    their warnings are not the operator's to read)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        PLUGINS.load_modules()
    return PLUGINS


def known_scheme(scheme: str) -> bool:
    """Tell whether Apprise has a client for a URL scheme ('slack', 'mmost', 'json')."""
    return scheme.lower() in _loaded()


@contextmanager
def _captured(channel: Channel) -> Iterator[list[str]]:
    """Keep Apprise's log lines out of the log; yield them (secrets hidden) once the block ends."""
    for name in QUIET:  # a debug line may show the whole URL
        logging.getLogger(name).propagate = False
    lines: list[str] = []
    with apprise.LogCapture(level=logging.WARNING, fmt="%(message)s") as output:
        try:
            yield lines
        finally:
            text = output.getvalue()
            lines.extend(channel.hide(line) for line in text.splitlines() if line.strip())


def service(channel: Channel) -> Service:
    """Return the client of a channel's URL; raise ChatError saying why there is none."""
    if channel.unset:
        names = ", ".join(channel.unset)
        raise ChatError(f"{names} (environment) not set: its url cannot be completed")
    native = channel.scheme in ("http", "https")  # a service's own webhook URL, as it gives it
    if not native and not known_scheme(channel.scheme):
        raise ChatError(
            f"Apprise knows no service {channel.scheme}://; see its list of services for the "
            "URL of yours (slack://, mmost://, matrix://, discord://, msteams://, json://, …)"
        )
    with _captured(channel) as lines:
        _loaded()
        client = apprise.Apprise.instantiate(channel.url)
    if not client:
        why = "; ".join(lines) or (
            "no service Apprise knows gives such a URL; write the service's Apprise URL"
            if native
            else "it does not read as that service's URL"
        )
        raise ChatError(f"Apprise cannot use {channel.redacted}: {why}")
    client.socket_connect_timeout = channel.timeout
    client.socket_read_timeout = channel.timeout
    client.request_rate_per_sec = 0  # no sleep of Apprise's between tries: they are spaced here
    formats = [apprise.NotifyFormat(f) for f in parse_list(client.notify_format, sort=False)]
    declared = MARKDOWN in formats and channel.scheme not in GENERIC
    markdown = declared or channel.scheme in RENDERS_MARKDOWN
    return Service(client, markdown, int(client.body_maxlen), declared)


def send(channel: Channel, chat: Service, body: str) -> None:
    """Post body to the channel (blocking: at most its timeout to connect, and to the answer);
    raise ChatError with the service's reason if it did not take it."""
    # A service Apprise sends Markdown to gets it declared as such; any other gets the text
    # as it is (no conversion: a Mattermost post keeps its Markdown, a text one its lines).
    body_format = MARKDOWN if chat.declared else None
    with _captured(channel) as lines:
        try:
            done = chat.client.notify(body=body, title="", body_format=body_format)
        except Exception as exc:  # a client's own bug must not end the cycle
            raise ChatError(channel.hide(f"{type(exc).__name__}: {exc}")) from None
    if not done:
        raise ChatError("; ".join(lines) or "the service did not take the post")
