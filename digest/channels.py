"""The channel phase: each channel's waiting posts, in order, each once, never holding the mail.

It runs after the mail went. A post is tried `max_attempts` times with a doubling wait, each try
bounded by the channel's timeout (a thread that overruns it is left behind, and the channel
waits for the next cycle rather than risk a second post). A post that is not taken stays
waiting, and so do the channel's later ones, so that the days arrive in order once the service
is back: later in this cycle, or in the next one.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime

from .channel_config import Channel
from .channel_news import render_post
from .chat import ChatError, Service, send, service
from .config import Settings
from .models import ChannelResult
from .store import ChannelState, Post, Store

log = logging.getLogger(__name__)

MAX_BACKOFF = 60.0
GRACE = 1.0  # seconds (at most the timeout) past connect and read before a try is given up


class Overrun(ChatError):
    """A post's try took longer than its deadline; its thread may still be sending."""


def deadline(channel: Channel) -> float:
    """Return the longest a try may take: the timeout to connect, again to answer, a grace."""
    return 2 * channel.timeout + min(GRACE, channel.timeout)


def post_once(channel: Channel, chat: Service, body: str) -> None:
    """Post body within the channel's deadline; raise ChatError (Overrun: out of time)."""
    failure: list[BaseException] = []

    def attempt() -> None:
        try:
            send(channel, chat, body)
        except BaseException as exc:  # handed to the caller's thread
            failure.append(exc)

    thread = threading.Thread(target=attempt, name=f"post-{channel.name}", daemon=True)
    thread.start()
    thread.join(deadline(channel))
    if thread.is_alive():
        raise Overrun(f"no answer within {deadline(channel):g} s")
    if failure:
        raise failure[0]


class ChannelPhase:
    """Send every channel's waiting posts, oldest first, each once."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        stop: threading.Event | None = None,
        wait: Callable[[float], object] | None = None,
    ):
        self.settings, self.store, self.clock = settings, store, clock
        self.stop = stop or threading.Event()
        self.wait = wait or self.stop.wait  # the wait between tries: cut short by a stop

    def run(self) -> list[ChannelResult]:
        """Post what waits for each channel; return what became of each."""
        keys = [c.name.casefold() for c in self.settings.channels]
        if dropped := self.store.drop_posts(keys, self.clock()):
            log.warning("channels: %d waiting post(s) of channels no longer set dropped", dropped)
        return [self.channel(c) for c in self.settings.channels]

    def channel(self, channel: Channel, chat: Service | None = None) -> ChannelResult:
        """Post a channel's waiting posts in order, stopping at the first one not taken (through
        chat, else the client of its URL)."""
        result = ChannelResult(channel.name)
        posts = self.store.pending_posts(channel.name.casefold())
        if not posts:
            return result
        try:
            chat = chat or service(channel)
        except ChatError as exc:
            self.store.mark_post_failed(posts[0].id, str(exc))
            result.error, result.waiting = str(exc), len(posts)
            log.error("channel %s: %s; %d post(s) wait", channel.name, exc, len(posts))
            return result
        for post in posts:
            if self.stop.is_set() or not self.deliver(channel, chat, post, result):
                break
        result.waiting = len(posts) - result.posted
        if result.waiting:
            log.warning(
                "channel %s (%s): behind, %d post(s) wait for the next cycle",
                channel.name,
                channel.redacted,
                result.waiting,
            )
        return result

    def deliver(self, channel: Channel, chat: Service, post: Post, result: ChannelResult) -> bool:
        """Try a post up to max_attempts times; return whether the service took it."""
        body = render_post(post.content, chat.markdown, chat.limit)
        for attempt in range(1, channel.max_attempts + 1):
            try:
                post_once(channel, chat, body)
            except ChatError as exc:
                self.store.mark_post_failed(post.id, str(exc))
                result.error = str(exc)
                log.warning(
                    "channel %s: the post of %s was not taken (try %d of %d): %s",
                    channel.name, post.day, attempt, channel.max_attempts, exc,
                )  # fmt: skip
                if isinstance(exc, Overrun) or attempt == channel.max_attempts:
                    return False
                self.wait(min(MAX_BACKOFF, channel.retry_seconds * 2 ** (attempt - 1)))
                if self.stop.is_set():
                    return False
                continue
            self.store.mark_posted(post.id, self.clock())
            result.posted += 1
            result.error = None
            log.info("channel %s: posted the news of %s", channel.name, post.day)
            return True
        return False


def find_channel(settings: Settings, name: str) -> Channel:
    """Return the channel of this name (ignoring case); raise ChatError naming those there are."""
    for channel in settings.channels:
        if channel.name.casefold() == name.casefold():
            return channel
    known = ", ".join(c.name for c in settings.channels) or "none: add [[channels]] to settings"
    raise ChatError(f"no channel named {name!r} in {settings.path.name}; channels: {known}")


def send_test(settings: Settings, channel: Channel) -> None:
    """Send a channel a test message now; raise ChatError if it is not taken."""
    chat = service(channel)
    topics = ", ".join(n for n, k in _names(settings).items() if k in channel.topics)
    body = (
        f"A test from {settings.name}: the day's new arXiv papers on "
        f"{topics or 'every topic'} will be posted here."
    )
    post_once(channel, chat, body)


def describe(settings: Settings, states: dict[str, ChannelState]) -> list[str]:
    """Return a line per channel for `digest channels`: URL (hidden), topics, last post, status."""
    names = {k: n for n, k in _names(settings).items()}
    lines = []
    for channel in settings.channels:
        state = states.get(channel.name.casefold(), ChannelState())
        topics = "; ".join(names[k] for k in channel.topics) or "every topic"
        last = (
            f"last post {state.last_day} (at {state.last_posted_at})"
            if state.last_posted_at
            else "never posted"
        )
        status = "ok"
        if state.waiting:
            status = f"BEHIND: {state.waiting} post(s) wait since {state.waiting_since}"
            if state.last_error:
                status += f" ({channel.hide(state.last_error)})"
        elif channel.unset:
            status = f"{', '.join(channel.unset)} (environment) not set"
        lines.append(f"{channel.name}: {channel.redacted}; {topics}; {last}; {status}")
    return lines


def _names(settings: Settings) -> dict[str, str]:
    return {k.name: k.key for k in settings.keywords}
