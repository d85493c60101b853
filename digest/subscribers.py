"""Read subscribers.csv into Subscriber objects, naming the line of every problem."""

from __future__ import annotations

import csv
import difflib
import re
from collections import deque
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import TextIO

from .addresses import checked_key
from .config import Keyword

COLUMNS = ("email", "name", "keywords")
# What `digest subscribers --export` adds after them: for the operator to read, ignored here.
EXPORT_COLUMNS = ("source", "schedule", "paused_until", "abstracts", "status")
# A cell a spreadsheet would read as a formula (OWASP's CSV injection list), or one that would
# look neutralized already: the export writes it after a "'", which reading it back takes off.
_FORMULA = re.compile(r"'*[=+\-@\t\r]")
_CONTROL = {chr(c) for c in range(32)} | {"\x7f"}
_LABELS = {
    "email": "the email address contains",
    "name": "the name contains",
    "keywords": "the keywords contain",
}
_MAX_LINE = 10_000  # characters; far more than a row needs, far less than csv's field limit
_SPAN = 10  # lines a quoted field with line breaks may run on before it counts as a stray quote
_BLOCK = 1 << 16
_BREAK = re.compile(r"\r\n?|\n")  # csv's line ends: \r\n, \n, and a lone \r (old Mac files)


class SubscribersError(Exception):
    """The subscribers file cannot be used at all (missing, empty, bad header)."""


def neutralize(cell: str) -> str:
    """Return a cell a spreadsheet shows as text: "'" before one that would start a formula."""
    return "'" + cell if _FORMULA.match(cell) else cell


def restored(cell: str) -> str:
    """Undo neutralize()."""
    return cell[1:] if cell.startswith("'") and _FORMULA.match(cell) else cell


@dataclass(frozen=True, slots=True)
class Subscriber:
    """A person on the list (address as written) and the keyword keys they follow, in order."""

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


def read_subscribers(path: Path, keywords: Sequence[Keyword]) -> Iterator[Subscriber | BadRow]:
    """Yield each row as a Subscriber or a BadRow; raise SubscribersError if unusable."""
    by_key = {k.key: k.key for k in keywords}
    order = [k.key for k in keywords]
    with ExitStack() as stack:
        lines = _Lines(_split(path, stack.enter_context(_open(path))))
        position = _header(path, lines)
        seen: dict[str, tuple[int, str]] = {}
        reach = _Reach(path, stack)
        while lines.more():
            text, line = lines.take(), lines.number
            if text is None:
                yield BadRow(
                    path,
                    line,
                    f"the line is longer than {_MAX_LINE:,} characters, too long for a "
                    "subscriber; check it for a missing line break",
                )
                continue
            row, still_open = _parse(text)
            if not still_open:
                if any(cell.strip() for cell in row):
                    entry = _row(path, line, row, position, by_key, order, seen)
                    if entry is not None:
                        yield entry
                continue
            following = lines.peek(_SPAN)
            closes = next((i for i, t in enumerate(following) if _closes(t)), None)
            if closes is not None:
                span = following[: closes + 1]
                merged = _one_record(text, span, position)
                if merged is not None:
                    lines.skip(len(span))
                    yield _spanning(path, line, merged, position)
                    continue
                swallowed = closes + 1
            elif len(following) < _SPAN:
                swallowed = len(following)  # the quote runs to the end of the file
            else:
                swallowed = reach.end(line) - line
            yield BadRow(path, line, _unclosed(swallowed))


def check_header(path: Path) -> None:
    """Raise SubscribersError if the file cannot be used at all (missing, empty, bad header)."""
    with ExitStack() as stack:
        _header(path, _Lines(_split(path, stack.enter_context(_open(path)))))


def _header(path: Path, lines: _Lines) -> dict[str, int]:
    """Read the header line; return each column's position, or raise SubscribersError.

    The export's header (COLUMNS, then EXPORT_COLUMNS) is one too: its cells are read back.
    """
    header = lines.take() if lines.more() else ""
    if header is None:
        raise SubscribersError(
            f"{path.name}:1: the first line is longer than {_MAX_LINE:,} characters; it "
            f"must be the header {','.join(COLUMNS)}"
        )
    fields = _parse(header)[0]
    if not any(h.strip() for h in fields):
        raise SubscribersError(
            f"{path.name}:1: the file is empty; its first line must be "
            f"the header {','.join(COLUMNS)}"
        )
    columns = [h.strip().lower() for h in fields]
    if sorted(columns) != sorted(COLUMNS) and columns != [*COLUMNS, *EXPORT_COLUMNS]:
        raise SubscribersError(
            f"{path.name}:1: the header is {','.join(fields)!r}; it must "
            f"be {','.join(COLUMNS)} (in any order), or what `digest subscribers --export` wrote"
        )
    return {name: columns.index(name) for name in columns}


def _open(path: Path) -> TextIO:
    """Open the file as csv wants it; raise SubscribersError if it cannot be opened."""
    try:
        return open(path, encoding="utf-8-sig", errors="surrogateescape", newline="")
    except OSError as exc:
        raise SubscribersError(
            f"{path}: cannot open it ({exc.strerror}); create it with the "
            f"header line {','.join(COLUMNS)}"
        ) from None


def _split(path: Path, handle: TextIO) -> Iterator[str | None]:
    """Yield each line with its end as csv splits them, or None for one over _MAX_LINE."""
    buffer, too_long = "", False
    while True:
        try:
            block = handle.read(_BLOCK)
        except OSError as exc:
            raise SubscribersError(f"{path}: cannot read it ({exc.strerror})") from None
        buffer += block
        start = 0
        for found in _BREAK.finditer(buffer):
            if block and found.end() == len(buffer) and found.group() == "\r":
                break  # the \n of a \r\n may be in the next block
            too_long |= found.start() - start > _MAX_LINE
            yield None if too_long else buffer[start : found.end()]
            too_long, start = False, found.end()
        buffer = buffer[start:]
        too_long |= len(buffer.rstrip("\r")) > _MAX_LINE
        if not block:
            if buffer or too_long:
                yield None if too_long else buffer
            return
        if too_long:
            buffer = "\r" if buffer.endswith("\r") else ""  # keep what may start a \r\n


class _Lines:
    """The lines of a file with their numbers, and a short look-ahead."""

    def __init__(self, source: Iterator[str | None]) -> None:
        self.source = source
        self.ahead: deque[str | None] = deque()
        self.number = 0  # the number of the line take() returned last

    def more(self) -> bool:
        """Return whether a line is left to take."""
        return bool(self.peek(1))

    def take(self) -> str | None:
        """Return the next line (None if it is too long); call more() first."""
        self.peek(1)
        self.number += 1
        return self.ahead.popleft()

    def peek(self, count: int) -> list[str | None]:
        """Return up to `count` lines after the current one, without taking them."""
        self.ahead.extend(islice(self.source, max(0, count - len(self.ahead))))
        return list(islice(self.ahead, count))

    def skip(self, count: int) -> None:
        """Take `count` peeked lines."""
        for _ in range(count):
            self.take()


class _Reach:
    """A second pass over the file: where would csv end a field whose quote opened on a line?"""

    def __init__(self, path: Path, stack: ExitStack) -> None:
        self.path, self.stack = path, stack
        self.lines: Iterator[str | None] | None = None
        self.number = 0  # lines read so far
        self.last_end = 0

    def end(self, line: int) -> int:
        """Return the line where a quoted field open at the end of `line` ends (or the last)."""
        # From any line before the last end the scan is in the same state, so has the same end.
        if line < self.last_end:
            return self.last_end
        if self.lines is None:
            self.lines = _split(self.path, self.stack.enter_context(_open(self.path)))
        for text in self.lines:
            self.number += 1
            if self.number > line and _closes(text):
                break
        self.last_end = self.number
        return self.number


def _parse(text: str) -> tuple[list[str], bool]:
    """Return the fields of one line of csv and whether a quoted field is open at its end."""
    if '"' not in text:
        return text.rstrip("\r\n").split(","), False  # what csv does, only faster
    reader = csv.reader([text, ""])
    try:
        row = next(reader)
    except csv.Error:  # not reachable with lines under the field limit, kept as a safety net
        return [text], False
    return row, reader.line_num > 1


def _closes(text: str | None) -> bool:
    """Return whether a quoted field open at the start of this line ends the record on it."""
    return text is None or not _parse('"' + text)[1]


def _one_record(first: str, span: list[str | None], position: dict[str, int]) -> list[str] | None:
    """Return the row a quoted field with line breaks makes, or None if it is a stray quote."""
    # One record has the three columns, and none of the lines it takes is a row of its own
    # (a stray quote that a later quote closes would swallow such rows).
    texts = [t for t in span if t is not None]
    if len(texts) < len(span):
        return None
    row, _ = _parse(first + "".join(texts))
    if len(row) != len(position):
        return None
    for text in texts:
        fields, still_open = _parse(text)
        if not still_open and len(fields) == len(position):
            try:
                checked_key(fields[position["email"]].strip())
            except ValueError:
                continue
            return None
    return row


def _spanning(path: Path, line: int, row: list[str], position: dict[str, int]) -> BadRow:
    """Return the bad row of a record whose quoted field holds a line break."""
    if any("\udc80" <= c <= "\udcff" for cell in row for c in cell):
        return BadRow(path, line, "not valid UTF-8; save the file with UTF-8 encoding")
    broken = [c for c in COLUMNS if any(e in row[position[c]] for e in "\r\n")] or ["name"]
    return BadRow(path, line, f"{_LABELS[broken[0]]} a line break or control character")


def _unclosed(swallowed: int) -> str:
    """Return the message for a quote that the line does not close."""
    rows = {0: "", 1: " (it would swallow the next row)"}.get(
        swallowed, f" (it would swallow the next {swallowed} rows)"
    )
    return f"a quote opens here and is never closed on this line{rows}; remove it or close it"


def _row(
    path: Path,
    line: int,
    row: list[str],
    position: dict[str, int],
    by_key: dict[str, str],
    order: list[str],
    seen: dict[str, tuple[int, str]],
) -> Subscriber | BadRow | None:
    """Turn one CSV row into a Subscriber, or the reason it is skipped (None: a row an export
    wrote for an address that is on no list, only on the suppression list)."""
    if any("\udc80" <= c <= "\udcff" for cell in row for c in cell):
        return BadRow(path, line, "not valid UTF-8; save the file with UTF-8 encoding")
    if len(row) != len(position):
        return BadRow(
            path,
            line,
            f"has {len(row)} fields, expected {len(position)} "
            f"({','.join(position)}); quote fields that contain commas",
        )
    if "source" in position:  # written by the export: its cells as they were
        row = [restored(cell) for cell in row]
        if not row[position["source"]].strip():
            return None
    email = row[position["email"]].strip()
    name = row[position["name"]].strip()
    try:
        key = checked_key(email)
    except ValueError as exc:
        return BadRow(path, line, f"bad email address {email!r}: {exc}")
    if any(c in _CONTROL for c in name):
        return BadRow(path, line, "the name contains a line break or control character")
    if key in seen:
        first_line, first = seen[key]
        spelled = f" as {first}" if first.casefold() != email.casefold() else ""
        return BadRow(path, line, f"{email} is already listed on line {first_line}{spelled}")
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
    seen[key] = (line, email)
    chosen = {w.casefold() for w in wanted}
    keys = tuple(k for k in order if not chosen or k in chosen)
    return Subscriber(email=email, name=name, keywords=keys, line=line)
