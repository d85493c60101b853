"""Load settings.toml into frozen dataclasses, reporting every problem at once."""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

OFFICIAL_API = "export.arxiv.org"
_REQUIRED = object()


class ConfigError(Exception):
    """The settings file is missing, unreadable or invalid."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


@dataclass(frozen=True)
class Keyword:
    """A topic to follow: its name and the arXiv query that finds it."""

    name: str
    query: str | None = None
    categories: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        """Return the case-insensitive identity used in the database and the CSV."""
        return self.name.casefold()

    def search_query(self) -> str:
        """Return the arXiv search query for this keyword."""
        if self.query:
            return self.query
        query = f'ti:"{self.name}" OR abs:"{self.name}"'
        if self.categories:
            cats = " OR ".join(f"cat:{c}" for c in self.categories)
            query = f"({query}) AND ({cats})"
        if self.exclude:
            words = " OR ".join(f'ti:"{w}" OR abs:"{w}"' for w in self.exclude)
            query = f"({query}) ANDNOT ({words})"
        return query


@dataclass(frozen=True)
class ArxivSettings:
    """How to reach the arXiv API politely."""

    api_url: str
    max_results: int
    delay_seconds: float
    timeout: float
    page_size: int
    contact: str | None
    max_retries: int


@dataclass(frozen=True)
class SmtpSettings:
    """Where and how to send mail over SMTP."""

    host: str
    port: int
    sender: str
    starttls: bool
    tls: bool
    timeout: float
    connections: int
    messages_per_connection: int
    rate_limit: float
    hourly_limit: int
    max_attempts: int
    retry_seconds: float
    ca_file: Path | None = None
    username: str | None = None
    password: str | None = None


@dataclass(frozen=True)
class Settings:
    """Everything the daemon needs, with paths resolved against the settings file."""

    path: Path
    name: str
    database: Path
    archive: Path
    subscribers: Path
    outbox: Path
    templates: Path | None
    timezone: ZoneInfo
    send_at: time
    base_url: str
    first_run_days: int
    sender: str
    arxiv: ArxivSettings
    keywords: tuple[Keyword, ...]
    smtp: SmtpSettings | None
    web_host: str
    web_port: int
    secret: str | None


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


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {_show(value)}")
    return value


def _str_list(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ValueError(f'expected a list of strings such as ["a", "b"], got {_show(value)}')
    return tuple(v.strip() for v in value)


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
    match = re.fullmatch(r"(\d{1,2}):(\d{2})", value)
    if not match or int(match[1]) > 23 or int(match[2]) > 59:
        raise ValueError(f"expected a time of day as HH:MM (24-hour), got {value!r}")
    return time(int(match[1]), int(match[2]))


def _listen(value: Any) -> tuple[str, int]:
    value = _text(value)
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"expected HOST:PORT such as 127.0.0.1:8080, got {value!r}")
    return host.strip("[]"), int(port)


def _keyword_name(value: Any) -> str:
    value = _text(value)
    if any(c in value for c in '\r\n|"'):
        raise ValueError(f"{value!r} must not contain a newline, '|' or '\"'")
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
    },
    "arxiv": {
        "api_url": (_url, f"https://{OFFICIAL_API}/api/query"),
        "max_results": (_int(1, 2000), 100),
        "delay_seconds": (_float, 3.0),
        "timeout": (_float, 30.0),
        "page_size": (_int(1, 2000), 100),
        "contact": (_text, None),
        "max_retries": (_int(0, 10), 3),
    },
    "smtp": {
        "host": (_text, _REQUIRED),
        "port": (_int(1, 65535), None),
        "sender": (_text, _REQUIRED),
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
    },
    "web": {"listen": (_listen, "127.0.0.1:8080")},
}
KEYWORD_SCHEMA: dict[str, tuple[Callable[[Any], Any], Any]] = {
    "name": (_keyword_name, _REQUIRED),
    "query": (_text, None),
    "categories": (_str_list, []),
    "exclude": (_str_list, []),
}


class _Problems:
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


def _section(
    problems: _Problems,
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
            if default is _REQUIRED:
                problems.add(name, key, "missing; this key is required", index)
            values[key] = None if default in (None, _REQUIRED) else check(default)
            continue
        try:
            values[key] = check(table[key])
        except ValueError as exc:
            problems.add(name, key, str(exc), index)
            values[key] = None
    return values


def load_settings(path: Path | str, env: Mapping[str, str] | None = None) -> Settings:
    """Read and validate a settings file; raise ConfigError listing every problem."""
    path = Path(path)
    env = os.environ if env is None else env
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            [
                f"{path}: no such file; copy settings.toml from the project or "
                "pass --config PATH (or set DIGEST_CONFIG)"
            ]
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"{path}: cannot read it: {exc}"]) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{path}: invalid TOML: {exc}"]) from None
    problems = _Problems(path, text)
    known = [*SCHEMA, "keywords"]
    for section in data:
        if section not in known:
            close = difflib.get_close_matches(section, known, n=1)
            hint = f"did you mean [{close[0]}]?" if close else f"known sections: {', '.join(known)}"
            problems.add(section, None, f"unknown section; {hint}")
    values = {
        name: _section(problems, name, data.get(name, {}), schema)
        for name, schema in SCHEMA.items()
        if name != "smtp"
    }
    smtp = _section(problems, "smtp", data["smtp"], SCHEMA["smtp"]) if "smtp" in data else None
    keywords = _keywords(problems, data.get("keywords"))
    arxiv = values["arxiv"]
    if (
        arxiv["api_url"]
        and urlsplit(arxiv["api_url"]).hostname == OFFICIAL_API
        and arxiv["delay_seconds"] is not None
        and arxiv["delay_seconds"] < 3
    ):
        problems.add(
            "arxiv",
            "delay_seconds",
            "must be at least 3 against the official arXiv API (its terms of use)",
        )
    if smtp and smtp["tls"] and smtp["starttls"]:
        problems.add("smtp", "tls", "set either tls (implicit TLS, port 465) or starttls, not both")
    if problems.items:
        raise ConfigError(problems.items)
    return _build(path, values, smtp, keywords, env)


def _keywords(problems: _Problems, tables: Any) -> tuple[Keyword, ...]:
    if tables is None:
        problems.add("keywords", None, 'no keywords; add at least one [[keywords]] with name = "…"')
        return ()
    if not isinstance(tables, list):
        problems.add("keywords", None, "write keywords as [[keywords]] tables")
        return ()
    keywords, seen = [], {}
    for index, table in enumerate(tables):
        values = _section(problems, "keywords", table, KEYWORD_SCHEMA, index)
        if not values.get("name"):
            continue
        key = values["name"].casefold()
        if key in seen:
            problems.add(
                "keywords",
                "name",
                f"{values['name']!r} repeats keyword "
                f"#{seen[key] + 1} (names are compared ignoring case)",
                index,
            )
            continue
        seen[key] = index
        keywords.append(Keyword(**values))
    return tuple(keywords)


def _build(
    path: Path,
    values: dict[str, dict[str, Any]],
    smtp: dict[str, Any] | None,
    keywords: tuple[Keyword, ...],
    env: Mapping[str, str],
) -> Settings:
    root = path.resolve().parent
    digest, arxiv, web = values["digest"], values["arxiv"], values["web"]
    smtp_settings = None
    if smtp is not None:
        port = smtp.pop("port") or (465 if smtp["tls"] else 587 if smtp["starttls"] else 25)
        smtp["ca_file"] = root / smtp["ca_file"] if smtp["ca_file"] else None
        smtp_settings = SmtpSettings(
            port=port,
            **smtp,
            username=env.get("DIGEST_SMTP_USERNAME") or None,
            password=env.get("DIGEST_SMTP_PASSWORD") or None,
        )
    sender = (
        (smtp_settings.sender if smtp_settings else None)
        or digest["sender"]
        or f"{digest['name']} <digest@localhost>"
    )
    return Settings(
        path=path.resolve(),
        name=digest["name"],
        database=root / digest["database"],
        archive=root / digest["archive"],
        subscribers=root / digest["subscribers"],
        outbox=root / digest["outbox"],
        templates=root / digest["templates"] if digest["templates"] else None,
        timezone=digest["timezone"],
        send_at=digest["send_at"],
        base_url=digest["base_url"],
        first_run_days=digest["first_run_days"],
        sender=sender,
        arxiv=ArxivSettings(**arxiv),
        keywords=keywords,
        smtp=smtp_settings,
        web_host=web["listen"][0],
        web_port=web["listen"][1],
        secret=env.get("DIGEST_SECRET") or None,
    )


def find_settings(option: str | None, env: Mapping[str, str] | None = None) -> Path:
    """Pick the settings file: --config, else DIGEST_CONFIG, else ./settings.toml."""
    env = os.environ if env is None else env
    return Path(option or env.get("DIGEST_CONFIG") or "settings.toml")
