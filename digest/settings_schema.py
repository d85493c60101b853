"""The keys settings.toml accepts, how each value is checked, and where a key sits."""

from __future__ import annotations

import difflib
import ipaddress
import re
from collections.abc import Callable, Mapping
from datetime import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .numbers import whole_number

OFFICIAL_API = "export.arxiv.org"
REQUIRED = object()
Check = Callable[[Any], Any]


# --- value checks: each returns the converted value or raises ValueError -------------------


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {_show(value)}")
    return value


def _text(value: Any) -> str:
    value = _str(value).strip()
    if not value:
        raise ValueError("must not be empty")
    return value


def _int(minimum: int, maximum: int | None = None) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"expected a whole number, got {_show(value)}")
        if value < minimum or (maximum is not None and value > maximum):
            upper = f" and {maximum}" if maximum is not None else ""
            raise ValueError(f"must be at least {minimum}{upper}, got {value}")
        return value

    return check


def _float(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"expected a number, got {_show(value)}")
    if value < 0:
        raise ValueError(f"must not be negative, got {value}")
    return float(value)


def _positive(value: Any) -> float:
    value = _float(value)
    if value == 0:
        raise ValueError("must be more than 0")
    return value


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {_show(value)}")
    return value


def _choice(*choices: str) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if value not in choices:
            listed = ", ".join(f'"{c}"' for c in choices)
            raise ValueError(f"expected one of {listed}, got {_show(value)}")
        return value

    return check


def _str_list(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ValueError(f'expected a list of strings such as ["a", "b"], got {_show(value)}')
    return tuple(v.strip() for v in value)


def _networks(value: Any) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f'expected a list such as ["127.0.0.1", "10.0.0.0/8"], got {_show(value)}')
    networks = []
    for item in value:
        try:
            network = ipaddress.ip_network(item.strip(), strict=False)
        except ValueError:
            raise ValueError(
                f"{item!r} is no IP address or network; write one such as 127.0.0.1 or 10.0.0.0/8"
            ) from None
        mapped = getattr(network.network_address, "ipv4_mapped", None)
        if mapped is not None and network.prefixlen >= 96:  # ::ffff:a.b.c.d: as IPv4
            network = ipaddress.ip_network(f"{mapped}/{network.prefixlen - 96}")
        networks.append(network)
    return tuple(networks)


def _token(value: Any) -> str:
    value = _str(value)
    if len(value) < 16 or any(c.isspace() or not c.isprintable() for c in value):
        raise ValueError(
            "expected at least 16 characters without spaces, e.g. the output of: "
            "python3 -c 'import secrets; print(secrets.token_urlsafe(24))'"
        )
    return value


def _url(value: Any) -> str:
    value = _text(value)
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"expected an http(s) URL such as https://example.org, got {value!r}")
    return value.rstrip("/")


def _zone(value: Any) -> ZoneInfo:
    value = _text(value)
    try:
        return ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {value!r}; use an IANA name like 'Europe/Paris'"
        ) from None


def _clock(value: Any) -> time:
    value = _text(value)
    match = re.fullmatch(r"([0-9]{1,2}):([0-9]{2})", value)
    if not match or int(match[1]) > 23 or int(match[2]) > 59:
        raise ValueError(f"expected a time of day as HH:MM (24-hour), got {value!r}")
    return time(int(match[1]), int(match[2]))


def _listen(value: Any) -> tuple[str, int]:
    value = _text(value)
    host, sep, port = value.rpartition(":")
    number = whole_number(port, digits=5)
    if not sep or not host or number is None or not 0 < number < 65536:
        raise ValueError(f"expected HOST:PORT such as 127.0.0.1:8080, got {value!r}")
    return host.strip("[]"), number


def _keyword_name(value: Any) -> str:
    value = _text(value)
    if any(c in value for c in '\r\n|"'):
        raise ValueError(f"{value!r} must not contain a newline, '|' or '\"'")
    return value


# an archive ("cs", "astro-ph") or a category ("cs.IR", "cond-mat.mes-hall", "q-bio.NC")
_CATEGORY = re.compile(r"[a-z]+(-[a-z]+)?(\.[A-Za-z]+(-[a-z]+)?)?")


def _harvest(value: Any) -> tuple[str, ...]:
    entries = _str_list(value)
    for entry in entries:
        if not _CATEGORY.fullmatch(entry):
            raise ValueError(
                f"{entry!r} is not an arXiv category; write categories such as "
                '"cs.IR" or whole archives such as "cs"'
            )
    if len(set(entries)) != len(entries):
        twice = next(e for e in entries if entries.count(e) > 1)
        raise ValueError(f"{twice!r} is listed twice")
    return entries


def _dns_name(value: Any) -> str:
    value = _text(value).rstrip(".")
    label = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?"
    if len(value) > 253 or not re.fullmatch(rf"{label}(?:\.{label})*", value):
        raise ValueError(
            f"expected a DNS name such as example.org (letters, digits, '-', '_' and dots; "
            f"an international domain in its xn-- form), got {value!r}"
        )
    return value


def _return_path(value: Any) -> str:
    value = _text(value)
    local, _, domain = value.rpartition("@")
    plain = local.replace("{token}", "t", 1)  # a second {token} leaves braces: refused
    if not re.fullmatch(r"[A-Za-z0-9!#$%&'*+/=?^_`|~.-]+", plain) or not re.fullmatch(
        r"[A-Za-z0-9.-]+", domain
    ):
        raise ValueError(
            'expected an address such as "bounces+{token}@lists.example.org" ({token} at '
            f"most once, before the @), got {value!r}"
        )
    return value


def _imap_url(value: Any) -> str:
    value = _text(value)
    parts = urlsplit(value)
    if parts.scheme not in ("imap", "imaps") or not parts.hostname or not parts.username:
        raise ValueError(f'expected a URL such as "imaps://user@host:993/INBOX", got {value!r}')
    if parts.password is not None:
        raise ValueError(
            "put the password in the environment variable DIGEST_BOUNCES_PASSWORD, not in the URL"
        )
    try:
        parts.port  # noqa: B018 (a bad port raises)
    except ValueError:
        raise ValueError(f"bad port in {value!r}") from None
    return value


def _show(value: Any) -> str:
    return f"{type(value).__name__} {value!r}"


SCHEMA: dict[str, dict[str, tuple[Callable[[Any], Any], Any]]] = {
    "digest": {
        "name": (_keyword_name, "Daily Papers"),
        "database": (_text, "digest.db"),
        "archive": (_text, "archive/README.md"),
        "subscribers": (_text, "subscribers.csv"),
        "outbox": (_text, "outbox"),
        "templates": (_text, None),
        "timezone": (_zone, "UTC"),
        "send_at": (_clock, "07:00"),
        "base_url": (_url, "http://127.0.0.1:8080"),
        "first_run_days": (_int(0), 2),
        "sender": (_text, None),
        "archive_url": (_url, None),
        "archive_rows": (_int(1, 10_000), 100),
        "archive_intro": (_text, None),  # markdown; None: the original archive's introduction
        "abstracts": (_choice("snippet", "full", "none"), "snippet"),
        "top_picks": (_int(0, 20), 5),  # a reader's best papers first, when a mail has > 10
        "max_per_topic": (_int(1, 1_000), 25),  # papers a section shows; the rest on the web
    },
    "arxiv": {
        "api_url": (_url, f"https://{OFFICIAL_API}/api/query"),
        "max_results": (_int(1, 10_000), None),  # before 0.2: the archive's rows; see config
        "delay_seconds": (_float, 3.0),
        "timeout": (_positive, 60.0),
        "page_size": (_int(1, 2000), 500),
        "max_papers": (_int(1, 30_000), 2000),
        "overlap_days": (_float, 3.0),
        "contact": (_text, None),
        "max_retries": (_int(0, 10), 3),
        "harvest": (_harvest, []),
        "harvest_overlap_days": (_float, 1.0),  # a harvest entry's own overlap_days
        "harvest_max_papers": (_int(1, 30_000), 10_000),  # its own max_papers (arXiv: 30,000)
    },
    "smtp": {
        "host": (_text, REQUIRED),
        "port": (_int(1, 65535), None),
        "sender": (_text, REQUIRED),
        "starttls": (_bool, False),
        "tls": (_bool, False),
        "timeout": (_float, 30.0),
        "connections": (_int(1, 100), 8),
        "messages_per_connection": (_int(1), 100),
        "rate_limit": (_float, 0.0),
        "hourly_limit": (_int(0), 0),
        "max_attempts": (_int(1, 100), 5),
        "retry_seconds": (_float, 2.0),
        "ca_file": (_text, None),
        "dkim_domain": (_dns_name, None),  # DKIM: all three or none; see digest/dkim.py
        "dkim_selector": (_dns_name, None),
        "dkim_key_file": (_text, None),
        "return_path": (_return_path, None),  # the envelope sender; {token}: VERP
    },
    "web": {
        "listen": (_listen, "127.0.0.1:8080"),
        "health_details": (_bool, False),
        "pages": (_bool, True),
        "signup": (_bool, False),
        "trusted_proxies": (_networks, []),  # whose X-Forwarded-For names the client
        "signup_hourly_cap": (_int(1), 100),  # confirmation emails from the form per hour
        "search_deadline": (_positive, 0.25),  # the reading room's cost bounds: RoomLimits
        "room_concurrency": (_int(1, 64), 4),
        "room_queue": (_int(0, 10_000), 16),
        "room_rate": (_int(0), 60),
        "personal_topics": (_bool, True),  # readers' own topics on their manage page
        "max_personal_topics": (_int(1, 100), 20),
        "metrics_token": (_token, None),  # a Bearer token for /metrics from another host
    },
    "bounces": {  # where the relay's bounces and feedback-loop reports arrive
        "maildir": (_text, None),
        "imap": (_imap_url, None),
        "ca_file": (_text, None),
    },
}
# [[channels]]: team chats the day's news is posted to through Apprise (issue 20); the url's
# ${NAME}s and the topics are checked against the environment and the keywords by channel_config.
CHANNEL_SCHEMA: dict[str, tuple[Callable[[Any], Any], Any]] = {
    "name": (_keyword_name, REQUIRED),
    "url": (_text, REQUIRED),
    "topics": (_str_list, []),  # keyword names; empty: every keyword
    "max_papers": (_int(1, 100), 10),  # titles in a post; the rest as a link to the day's page
    "timeout": (_positive, 10.0),  # seconds one post may take (connect, and again the answer)
    "max_attempts": (_int(1, 20), 3),  # tries of a post within a cycle; then the next cycle
    "retry_seconds": (_float, 2.0),  # the first wait before trying again, doubled each time
}
KEYWORD_SCHEMA: dict[str, tuple[Callable[[Any], Any], Any]] = {
    "name": (_keyword_name, REQUIRED),
    "query": (_text, None),
    "categories": (_str_list, []),
    "exclude": (_str_list, []),
    "local": (_bool, False),  # matched in each cycle's new papers, not asked of arXiv
}


class Problems:
    """Collect problems with the line each key sits on."""

    def __init__(self, path: Path, text: str):
        self.path = path
        self.lines = text.splitlines()
        self.items: list[str] = []

    def add(self, section: str, key: str | None, message: str, index: int | None = None) -> None:
        line = self._line(section, key, index)
        where = f"{self.path.name}:{line}" if line else self.path.name
        label = f"[{section}]" if index is None else f"[[{section}]] #{index + 1}"
        self.items.append(f"{where}: {label}{' ' + key if key else ''}: {message}")

    def _line(self, section: str, key: str | None, index: int | None) -> int | None:
        current, count, header_line = None, -1, None
        for number, raw in enumerate(self.lines, 1):
            line = raw.strip()
            if line.startswith("["):
                current = line.strip("[] ").split("]")[0].strip()
                if current == section:
                    count += line.startswith("[[")
                    if index is None or count == index:
                        header_line = header_line or number
                continue
            if current != section or (index is not None and count != index):
                continue
            if key and re.match(rf"{re.escape(key)}\s*=", line):
                return number
        return header_line


def check_table(
    problems: Problems,
    name: str,
    table: Any,
    schema: Mapping[str, tuple[Callable[[Any], Any], Any]],
    index: int | None = None,
) -> dict[str, Any]:
    """Check one table against its schema, returning converted values with defaults."""
    if not isinstance(table, dict):
        problems.add(name, None, f"expected a table, got {_show(table)}", index)
        return {}
    values: dict[str, Any] = {}
    for key in table:
        if key not in schema:
            close = difflib.get_close_matches(key, list(schema), n=1)
            hint = (
                f"; did you mean {close[0]!r}?" if close else f"; known keys: {', '.join(schema)}"
            )
            problems.add(name, key, f"unknown key{hint}", index)
    for key, (check, default) in schema.items():
        if key not in table:
            if default is REQUIRED:
                problems.add(name, key, "missing; this key is required", index)
            values[key] = None if default in (None, REQUIRED) else check(default)
            continue
        try:
            values[key] = check(table[key])
        except ValueError as exc:
            problems.add(name, key, str(exc), index)
            values[key] = None
    return values
