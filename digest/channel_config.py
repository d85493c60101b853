"""The [[channels]] of settings.toml: each team chat's name, Apprise URL, topics and bounds."""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .settings_schema import CHANNEL_SCHEMA, Problems, check_table

VARIABLE = re.compile(r"\$\{([^}]*)\}")
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")
HIDDEN = "…"


@dataclass(frozen=True)
class Channel:
    """A team chat the day's news is posted to, through its Apprise URL."""

    name: str
    url: str = field(repr=False)  # the environment's values put in: shown only as `redacted`
    topics: tuple[str, ...] = ()  # keyword keys, in settings order; empty: every keyword
    max_papers: int = 10  # titles in a post; the rest as a link to the day's page
    timeout: float = 10.0  # seconds to connect, and again to the answer, of one post
    max_attempts: int = 3  # tries of a post within a cycle; after them, the next cycle's
    retry_seconds: float = 2.0  # the first wait before trying again, doubled each time
    unset: tuple[str, ...] = ()  # environment variables the URL names that are not set
    secrets: tuple[str, ...] = field(default=(), repr=False)  # the values the URL took from env

    @property
    def scheme(self) -> str:
        """Return the URL's scheme ('slack', 'mmost', 'json'), lower case."""
        match = SCHEME.match(self.url)
        return match[1].lower() if match else ""

    @property
    def redacted(self) -> str:
        """Return the URL as logs, /healthz and `digest check` may show it."""
        return redact(self.url)

    def hide(self, text: str) -> str:
        """Return text (an error, a log line) with this channel's URL and secrets hidden."""
        for secret in sorted({self.url, *self.secrets}, key=len, reverse=True):
            if len(secret) >= 4:
                text = text.replace(secret, self.redacted if secret == self.url else HIDDEN)
        return text


def redact(url: str) -> str:
    """Return an Apprise URL's scheme and host, and nothing that may be a token.

    The host is kept only when it reads as a host name (a dot, localhost, an IPv6 address):
    in slack://T0/B0/XX or discord://ID/TOKEN the first part is a token, not a host.
    """
    match = SCHEME.match(url)
    if not match:
        return HIDDEN
    netloc = re.split(r"[/?#]", url[match.end() :], maxsplit=1)[0].rpartition("@")[2]
    hostname = netloc.rsplit(":", 1)[0] if not netloc.startswith("[") else netloc
    if "." in hostname or hostname.lower() == "localhost" or hostname.startswith("["):
        return f"{match[1]}://{netloc}/{HIDDEN}"
    return f"{match[1]}://{HIDDEN}"


def expand(url: str, env: Mapping[str, str]) -> tuple[str, tuple[str, ...], tuple[str, ...]]:
    """Put the environment's values in for each ${NAME}; return the URL, the names unset, and
    the values put in. Raise ValueError for a ${...} that names no variable."""
    unset: list[str] = []
    values: list[str] = []

    def value(match: re.Match[str]) -> str:
        name = match[1]
        if not NAME.fullmatch(name):
            raise ValueError(
                f"${{{name}}} names no environment variable; write ${{NAME}} with letters, "
                "digits and _ (such as ${DIGEST_SLACK_TOKEN})"
            )
        found = env.get(name) or ""
        if found:
            values.append(found)
        elif name not in unset:
            unset.append(name)
        return found

    expanded = VARIABLE.sub(value, url)
    if "${" in VARIABLE.sub("", url):
        raise ValueError("a ${ without its closing }; write ${NAME}")
    return expanded, tuple(unset), tuple(values)


def parse_channels(
    problems: Problems, tables: Any, keywords: Mapping[str, str], env: Mapping[str, str]
) -> tuple[Channel, ...]:
    """Check the [[channels]] tables; keywords maps each keyword's key to its name."""
    if tables is None:
        return ()
    if not isinstance(tables, list):
        problems.add("channels", None, "write channels as [[channels]] tables")
        return ()
    found: list[Channel] = []
    seen: dict[str, int] = {}
    for index, table in enumerate(tables):
        values = check_table(problems, "channels", table, CHANNEL_SCHEMA, index)
        name, url = values.get("name"), values.get("url")
        if name and name.casefold() in seen:
            problems.add(
                "channels",
                "name",
                f"{name!r} repeats channel #{seen[name.casefold()] + 1} (names are compared "
                "ignoring case); give each channel its own name",
                index,
            )
            continue
        if name:
            seen[name.casefold()] = index
        topics = _topics(problems, values.get("topics") or (), keywords, index)
        if not (name and url) or topics is None:
            continue
        try:
            expanded, unset, secrets = expand(url, env)
        except ValueError as exc:
            problems.add("channels", "url", str(exc), index)
            continue
        if not unset and not SCHEME.match(expanded):
            problems.add(
                "channels",
                "url",
                "not an Apprise URL (no scheme://); write one such as "
                '"slack://${DIGEST_SLACK_TOKEN}" or "mmosts://chat.example.org/${DIGEST_MM_HOOK}"',
                index,
            )
            continue
        found.append(
            Channel(
                name=name,
                url=expanded,
                topics=topics,
                max_papers=values["max_papers"],
                timeout=values["timeout"],
                max_attempts=values["max_attempts"],
                retry_seconds=values["retry_seconds"],
                unset=unset,
                secrets=secrets,
            )
        )
    return tuple(found)


def _topics(
    problems: Problems, names: tuple[str, ...], keywords: Mapping[str, str], index: int
) -> tuple[str, ...] | None:
    """Return the keys of a channel's topics in settings order, or None if one is unknown."""
    wanted = {n.casefold() for n in names}
    unknown = [n for n in names if n.casefold() not in keywords]
    for name in unknown:
        close = difflib.get_close_matches(name, list(keywords.values()), n=1)
        hint = f"did you mean {close[0]!r}?" if close else "name a [[keywords]] entry"
        problems.add(
            "channels",
            "topics",
            f"{name!r} is not a keyword; {hint} (an empty list means every keyword)",
            index,
        )
    if unknown:
        return None
    return tuple(key for key in keywords if key in wanted)
