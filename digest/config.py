"""Load settings.toml into frozen dataclasses, reporting every problem at once."""

from __future__ import annotations

import difflib
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import time
from ipaddress import IPv4Network, IPv6Network
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit
from zoneinfo import ZoneInfo

from .channel_config import Channel, parse_channels
from .dkim_key import settings_problems as dkim_problems
from .keywords import Keyword, harvest_keyword, is_harvest, read_keywords
from .settings_schema import OFFICIAL_API, SCHEMA, Problems, check_table


class ConfigError(Exception):
    """The settings file is missing, unreadable or invalid."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


HARVEST_PAGE_SIZE = 2000  # arXiv's most per request: a harvest entry reads whole categories


@dataclass(frozen=True)
class FetchBounds:
    """How one query is paged: papers per request, the most per cycle, how far back again."""

    page_size: int
    max_papers: int
    overlap_days: float
    bound_key: str = "max_papers"  # the [arxiv] key of max_papers, named when it cuts a fetch


@dataclass(frozen=True)
class ArxivSettings:
    """How to reach the arXiv API politely."""

    api_url: str
    delay_seconds: float
    timeout: float  # the deadline of a whole answer: connect, wait and body
    page_size: int
    max_papers: int  # per keyword per cycle: a runaway query stops here, and says so
    overlap_days: float  # fetch this far before the last fetch's newest update (arXiv's lag)
    contact: str | None
    max_retries: int
    harvest: tuple[str, ...] = ()  # whole categories fetched into the history, never mailed
    harvest_overlap_days: float = 1.0  # a harvest entry's overlap_days: it re-reads less
    harvest_max_papers: int = 10_000  # a harvest entry's max_papers: a busy day is not cut

    def bounds(self, key: str) -> FetchBounds:
        """Return how a keyword's query is paged, by its key (a harvest entry's: its own)."""
        if is_harvest(key):
            return FetchBounds(
                HARVEST_PAGE_SIZE,
                self.harvest_max_papers,
                self.harvest_overlap_days,
                "harvest_max_papers",
            )
        return FetchBounds(self.page_size, self.max_papers, self.overlap_days)


MIN_ADMIN_PASSWORD = 12  # characters of DIGEST_ADMIN_PASSWORD: /admin is rate-limited, not more
ROOM_KEYS = ("search_deadline", "room_concurrency", "room_queue", "room_rate")  # RoomLimits'


@dataclass(frozen=True)
class RoomLimits:
    """What one reading-room request may cost, and how many may run ([web] room_* keys)."""

    search_deadline: float = 0.25  # seconds of SQLite work a search may take, then "too broad"
    concurrency: int = 4  # pages built at once, each on its own connection
    queue: int = 16  # requests waiting for one of those; beyond: 503 with Retry-After
    rate: int = 60  # uncached pages and searches a minute per client network (0: no limit)


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
    dkim_domain: str | None = None  # sign with DKIM: all three dkim_* set, or none
    dkim_selector: str | None = None
    dkim_key_file: Path | None = None
    username: str | None = None
    password: str | None = None
    return_path: str | None = None  # the envelope sender; "{token}" in it names the reader


@dataclass(frozen=True)
class BouncesSettings:
    """The mailbox the relay's bounces and feedback-loop reports arrive in."""

    maildir: Path | None = None
    imap_host: str | None = None
    imap_port: int = 993
    imap_tls: bool = True  # imaps://; imap:// sends the password in the clear
    imap_user: str = ""
    imap_folder: str = "INBOX"
    password: str | None = None  # DIGEST_BOUNCES_PASSWORD
    ca_file: Path | None = None


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
    archive_url: str | None
    archive_rows: int
    abstracts: str  # in the email: "snippet" (about two sentences), "full" or "none"
    first_run_days: int
    sender: str
    arxiv: ArxivSettings
    keywords: tuple[Keyword, ...]
    smtp: SmtpSettings | None
    web_host: str
    web_port: int
    secret: str | None
    notices: tuple[str, ...] = ()  # deprecated settings still honoured, with what to write
    top_picks: int = 5  # the reader's best papers of the day first (0: none)
    max_per_topic: int = 25  # papers a section of the email shows, the best first
    web_health_details: bool = False  # /healthz details for everyone, not only local requests
    web_pages: bool = True  # the public reading room: pages, feeds, search
    web_signup: bool = False  # /subscribe and /confirm: sign-up with double opt-in
    web_trusted_proxies: tuple[IPv4Network | IPv6Network, ...] = ()  # their X-Forwarded-For
    web_signup_hourly_cap: int = 100  # emails the sign-up form sends per rolling hour, at most
    bounces: BouncesSettings | None = None  # [bounces]: read late bounces and complaints
    web_room: RoomLimits = RoomLimits()  # the reading room's cost bounds
    web_personal_topics: bool = True  # readers may write their own topics (matched locally)
    web_max_personal_topics: int = 20  # own topics one reader may have
    channels: tuple[Channel, ...] = ()  # [[channels]]: team chats the news is posted to
    archive_intro: str | None = None  # the archive's introduction (None: the original's)
    web_metrics_token: str | None = None  # /metrics with this Bearer token from another host
    admin_password: str | None = None  # DIGEST_ADMIN_PASSWORD: /admin by HTTP Basic (admin)

    @property
    def fetched_keywords(self) -> tuple[Keyword, ...]:
        """Return every query a cycle fetches: the keywords (not the local ones), then the
        harvest entries."""
        fetched = tuple(k for k in self.keywords if not k.local)
        return fetched + tuple(harvest_keyword(e) for e in self.arxiv.harvest)


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
    problems = Problems(path, text)
    known = [*SCHEMA, "keywords", "channels"]
    for section in data:
        if section not in known:
            close = difflib.get_close_matches(section, known, n=1)
            hint = f"did you mean [{close[0]}]?" if close else f"known sections: {', '.join(known)}"
            problems.add(section, None, f"unknown section; {hint}")
    values = {
        name: check_table(problems, name, data.get(name, {}), schema)
        for name, schema in SCHEMA.items()
        if name != "smtp"
    }
    smtp = check_table(problems, "smtp", data["smtp"], SCHEMA["smtp"]) if "smtp" in data else None
    keywords = read_keywords(problems, data.get("keywords"))
    topics = {k.key: k.name for k in keywords}
    channels = parse_channels(problems, data.get("channels"), topics, env)
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
    bounces = values["bounces"]
    if "bounces" in data and bool(bounces["maildir"]) == bool(bounces["imap"]):
        problems.add(
            "bounces",
            None,
            'set either maildir = "PATH" or imap = "imaps://user@host/INBOX" (one of them)',
        )
    if smtp and smtp["tls"] and smtp["starttls"]:
        problems.add("smtp", "tls", "set either tls (implicit TLS, port 465) or starttls, not both")
    for key, problem in dkim_problems(data.get("smtp"), smtp or {}, path.resolve().parent):
        problems.add("smtp", key, problem)
    secret = env.get("DIGEST_SECRET") or ""
    if secret and len(secret.encode()) < 32:
        problems.items.append(
            f"DIGEST_SECRET (environment) is {len(secret.encode())} bytes; use at least 32 "
            "random bytes, e.g. the output of: python3 -c 'import secrets; "
            "print(secrets.token_hex(32))'"
        )
    admin = env.get("DIGEST_ADMIN_PASSWORD") or ""
    if admin and len(admin) < MIN_ADMIN_PASSWORD:
        problems.items.append(
            f"DIGEST_ADMIN_PASSWORD (environment) is {len(admin)} characters; use at least "
            f"{MIN_ADMIN_PASSWORD}, e.g. the output of: python3 -c 'import secrets; "
            "print(secrets.token_urlsafe(18))'"
        )
    if problems.items:
        raise ConfigError(problems.items)
    notices = Problems(path, text)
    _renamed(notices, values, "archive_rows" in data.get("digest", {}))
    return _build(path, values, smtp, keywords, env, tuple(notices.items), channels)


def _renamed(notices: Problems, values: dict[str, dict[str, Any]], has_rows: bool) -> None:
    """Honour [arxiv] max_results (before 0.2: papers per keyword and archive rows)."""
    rows = values["arxiv"].pop("max_results")
    if rows is None:
        return
    if has_rows:
        notices.add(
            "arxiv",
            "max_results",
            "no longer used (every new paper is fetched, up to max_papers) and "
            "[digest] archive_rows is set; delete this line",
        )
        return
    values["digest"]["archive_rows"] = rows
    notices.add(
        "arxiv",
        "max_results",
        f"deprecated: every new paper is fetched now (up to [arxiv] max_papers); it still "
        f"sets the archive's rows per keyword, so write archive_rows = {rows} under "
        "[digest] instead",
    )


def _build(
    path: Path,
    values: dict[str, dict[str, Any]],
    smtp: dict[str, Any] | None,
    keywords: tuple[Keyword, ...],
    env: Mapping[str, str],
    notices: tuple[str, ...] = (),
    channels: tuple[Channel, ...] = (),
) -> Settings:
    root = path.resolve().parent
    digest, arxiv, web = values["digest"], values["arxiv"], values["web"]
    smtp_settings = None
    if smtp is not None:
        port = smtp.pop("port") or (465 if smtp["tls"] else 587 if smtp["starttls"] else 25)
        smtp["ca_file"] = root / smtp["ca_file"] if smtp["ca_file"] else None
        smtp["dkim_key_file"] = root / smtp["dkim_key_file"] if smtp["dkim_key_file"] else None
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
        archive_url=digest["archive_url"],
        archive_rows=digest["archive_rows"],
        abstracts=digest["abstracts"],
        top_picks=digest["top_picks"],
        max_per_topic=digest["max_per_topic"],
        first_run_days=digest["first_run_days"],
        sender=sender,
        arxiv=ArxivSettings(**arxiv),
        keywords=keywords,
        smtp=smtp_settings,
        web_host=web["listen"][0],
        web_port=web["listen"][1],
        web_health_details=web["health_details"],
        web_pages=web["pages"],
        web_signup=web["signup"],
        web_trusted_proxies=web["trusted_proxies"],
        web_signup_hourly_cap=web["signup_hourly_cap"],
        secret=env.get("DIGEST_SECRET") or None,
        notices=notices,
        bounces=_bounces(root, values["bounces"], env),
        web_room=RoomLimits(*(web[f] for f in ROOM_KEYS)),
        web_personal_topics=web["personal_topics"],
        web_max_personal_topics=web["max_personal_topics"],
        channels=channels,
        archive_intro=digest["archive_intro"],
        web_metrics_token=web["metrics_token"],
        admin_password=env.get("DIGEST_ADMIN_PASSWORD") or None,
    )


def _bounces(root: Path, values: dict[str, Any], env: Mapping[str, str]) -> BouncesSettings | None:
    """Return where bounces arrive, or None without a [bounces] section."""
    ca_file = root / values["ca_file"] if values["ca_file"] else None
    if values["maildir"]:
        return BouncesSettings(maildir=root / values["maildir"], ca_file=ca_file)
    if not values["imap"]:
        return None
    url = urlsplit(values["imap"])
    tls = url.scheme == "imaps"
    return BouncesSettings(
        imap_host=url.hostname,
        imap_port=url.port or (993 if tls else 143),
        imap_tls=tls,
        imap_user=unquote(url.username or ""),
        imap_folder=unquote(url.path.strip("/")) or "INBOX",
        password=env.get("DIGEST_BOUNCES_PASSWORD") or None,
        ca_file=ca_file,
    )


def find_settings(option: str | None, env: Mapping[str, str] | None = None) -> Path:
    """Pick the settings file: --config, else DIGEST_CONFIG, else ./settings.toml."""
    env = os.environ if env is None else env
    return Path(option or env.get("DIGEST_CONFIG") or "settings.toml")
