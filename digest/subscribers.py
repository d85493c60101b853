"""Read subscribers.csv into Subscriber objects, naming the line of every problem."""

from __future__ import annotations

import csv
import difflib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from email_validator import EmailNotValidError, validate_email

from .config import Keyword

COLUMNS = ("email", "name", "keywords")
_CONTROL = {chr(c) for c in range(32)} | {"\x7f"}


class SubscribersError(Exception):
    """The subscribers file cannot be used at all (missing, empty, bad header)."""


@dataclass(frozen=True, slots=True)
class Subscriber:
    """A person on the list and the keyword keys they follow, in settings order."""

    email: str
    name: str
    keywords: tuple[str, ...]
    line: int


@dataclass(frozen=True, slots=True)
class BadRow:
    """A row of the file that was skipped, with the reason."""

    path: Path
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path.name}:{self.line}: {self.message}"


def normalize_email(address: str) -> str:
    """Return the address validated and normalized (domain lower-cased); raise ValueError."""
    try:
        return validate_email(address, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise ValueError(str(exc)) from None


def read_subscribers(path: Path, keywords: Sequence[Keyword]) -> Iterator[Subscriber | BadRow]:
    """Yield each row as a Subscriber or a BadRow; raise SubscribersError if unusable."""
    by_key = {k.key: k.key for k in keywords}
    order = [k.key for k in keywords]
    try:
        handle = open(path, encoding="utf-8-sig", errors="surrogateescape", newline="")  # noqa: SIM115
    except OSError as exc:
        raise SubscribersError(
            f"{path}: cannot open it ({exc.strerror}); create it with the "
            f"header line {','.join(COLUMNS)}"
        ) from None
    with handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None or not any(h.strip() for h in header):
            raise SubscribersError(
                f"{path.name}:1: the file is empty; its first line must be "
                f"the header {','.join(COLUMNS)}"
            )
        columns = [h.strip().lower() for h in header]
        if sorted(columns) != sorted(COLUMNS):
            raise SubscribersError(
                f"{path.name}:1: the header is {','.join(header)!r}; it must "
                f"be {','.join(COLUMNS)} (in any order)"
            )
        position = {name: columns.index(name) for name in COLUMNS}
        seen: dict[str, int] = {}
        end = reader.line_num
        for row in reader:
            line, end = end + 1, reader.line_num  # a quoted field may span lines: name the first
            if not any(cell.strip() for cell in row):
                continue
            yield _row(path, line, row, position, by_key, order, seen)


def _row(
    path: Path,
    line: int,
    row: list[str],
    position: dict[str, int],
    by_key: dict[str, str],
    order: list[str],
    seen: dict[str, int],
) -> Subscriber | BadRow:
    """Turn one CSV row into a Subscriber, or the reason it is skipped."""
    if any("\udc80" <= c <= "\udcff" for cell in row for c in cell):
        return BadRow(path, line, "not valid UTF-8; save the file with UTF-8 encoding")
    if len(row) != len(COLUMNS):
        return BadRow(
            path,
            line,
            f"has {len(row)} fields, expected {len(COLUMNS)} "
            f"({','.join(COLUMNS)}); quote fields that contain commas",
        )
    raw_email = row[position["email"]].strip()
    name = row[position["name"]].strip()
    try:
        email = normalize_email(raw_email)
    except ValueError as exc:
        return BadRow(path, line, f"bad email address {raw_email!r}: {exc}")
    if any(c in _CONTROL for c in name):
        return BadRow(path, line, "the name contains a line break or control character")
    folded = email.casefold()
    if folded in seen:
        return BadRow(path, line, f"{email} is already listed on line {seen[folded]}")
    wanted = [w.strip() for w in row[position["keywords"]].split(";") if w.strip()]
    unknown = [w for w in wanted if w.casefold() not in by_key]
    if unknown:
        hints = []
        for word in unknown:
            close = difflib.get_close_matches(word.casefold(), list(by_key), n=1)
            hints.append(f"{word!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        return BadRow(
            path,
            line,
            f"unknown keyword {', '.join(hints)}; keywords are the "
            "[[keywords]] names of settings.toml, separated by ';'",
        )
    seen[folded] = line
    chosen = {w.casefold() for w in wanted}
    keys = tuple(k for k in order if not chosen or k in chosen)
    return Subscriber(email=email, name=name, keywords=keys, line=line)
