"""Log lines that stay true: one handler for all loggers, values escaped and capped, no floods.

A client chooses much of what is logged (a path, a query, a header, an address it typed). The
formatter here escapes every logged value, every message and every exception's text, whichever
logger wrote it (ours, aiohttp's, asyncio's, the root), so that no value can start a line of its
own or hide as control characters, and caps each value's length; the filter holds back repeats.
"""

from __future__ import annotations

import atexit
import logging
import numbers
import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from typing import IO, Any

VALUE_LIMIT = 200  # characters of one logged value (an argument), then "…"
LINE_LIMIT = 2000  # characters of a whole message, or of one exception's text
# Loggers whose values a client chooses: capped as above, and their repeats summarised by the
# message's form (a flood varies its values). The others (a cycle's) write texts of their own,
# such as the summary: capped only at OWN_LIMIT, and only identical lines count as repeats.
PUBLIC = ("digest.web", "aiohttp", "asyncio", "py.warnings")
OWN_LIMIT = 20_000
ELLIPSIS = "…"
CAUSE = "The above exception was the direct cause of the following exception:"
CONTEXT = "During handling of the above exception, another exception occurred:"


def shown(text: object, limit: int | None = VALUE_LIMIT) -> str:
    """Return str(text) fit for one log line: non-printables as \\xNN (or \\uNNNN), at most
    `limit` characters (None: no limit) and then an ellipsis."""
    text = str(text)
    if text.isprintable() and (limit is None or len(text) <= limit):
        return text  # the common case, unchanged
    out: list[str] = []
    size = 0
    for char in text:
        if char.isprintable():
            piece = char
        elif ord(char) < 0x100:
            piece = f"\\x{ord(char):02x}"
        elif ord(char) < 0x10000:
            piece = f"\\u{ord(char):04x}"
        else:
            piece = f"\\U{ord(char):08x}"
        if limit is not None and size + len(piece) > limit:
            out.append(ELLIPSIS)
            break
        out.append(piece)
        size += len(piece)
    return "".join(out)


def public(record: logging.LogRecord) -> bool:
    """Tell whether a record comes from a logger whose values a client may choose."""
    return record.name == "root" or record.name.startswith(PUBLIC)


class _Shown:
    """A logged argument as %s, %r or %a show it, escaped and capped."""

    __slots__ = ("limit", "value")

    def __init__(self, value: object, limit: int):
        self.value, self.limit = value, limit

    def __str__(self) -> str:
        return shown(self.value, self.limit)

    def __repr__(self) -> str:
        return shown(repr(self.value), self.limit)


def _argument(value: object, limit: int) -> object:
    """Keep a number as it is (for %d, %.1f); wrap anything else to be shown escaped."""
    return value if isinstance(value, numbers.Number) else _Shown(value, limit)


def message(record: logging.LogRecord) -> str:
    """Return the record's message with each argument escaped and capped, the whole escaped."""
    value_limit, line_limit = (VALUE_LIMIT, LINE_LIMIT) if public(record) else (OWN_LIMIT,) * 2
    text = str(record.msg)
    args = record.args
    if args:
        shown_args: Any
        if isinstance(args, Mapping):
            shown_args = {key: _argument(value, value_limit) for key, value in args.items()}
        else:
            shown_args = tuple(_argument(value, value_limit) for value in args)
        try:
            text = text % shown_args
        except (TypeError, ValueError, KeyError):  # e.g. %d given a non-number: as logging would
            text = record.getMessage()
    return shown(text, line_limit)


def _lines(text: str) -> str:
    """Escape each line of text written by code (a stack), keeping its line breaks."""
    return "\n".join(shown(line, None) for line in text.split("\n"))


def _exception(error: traceback.TracebackException) -> Iterator[str]:
    """Yield the lines of one exception's traceback; its own text escaped and capped."""
    if error.stack:
        yield "Traceback (most recent call last):"
        for frame in error.stack.format():
            yield from _lines(frame.rstrip("\n")).split("\n")
    for part in error.format_exception_only():  # "Type: text" may hold what a client sent
        yield shown(part.rstrip("\n"), LINE_LIMIT)
    for number, inner in enumerate(error.exceptions or (), 1):  # an ExceptionGroup's
        yield f"+---------------- {number} ----------------"
        yield from (f"| {line}" for line in _chain(inner))


def _chain(error: traceback.TracebackException) -> Iterator[str]:
    """Yield an exception's lines after those of its causes and contexts, as Python prints."""
    chain: list[tuple[traceback.TracebackException, str]] = [(error, "")]
    seen = {id(error)}
    while True:
        newer = chain[-1][0]
        if newer.__cause__ is not None:
            older, link = newer.__cause__, CAUSE
        elif newer.__context__ is not None and not newer.__suppress_context__:
            older, link = newer.__context__, CONTEXT
        else:
            break
        if id(older) in seen:
            break
        seen.add(id(older))
        chain.append((older, link))
    for older, link in reversed(chain):
        yield from _exception(older)
        if link:
            yield from ("", link, "")


class Escaping(logging.Formatter):
    """Format records with every value, message and exception text escaped and capped."""

    def format(self, record: logging.LogRecord) -> str:
        """Return the record as its lines in the log, whichever logger wrote it."""
        record.message = message(record)
        if self.usesTime():
            record.asctime = self.formatTime(record, self.datefmt)
        text = self.formatMessage(record)
        if record.exc_info and record.exc_info[0] is not None:
            text += "\n" + self.formatException(record.exc_info)  # never a copy cached by others
        elif record.exc_text:
            text += "\n" + shown(record.exc_text, LINE_LIMIT)  # made elsewhere: one line
        if record.stack_info:
            text += "\n" + _lines(self.formatStack(record.stack_info))
        return text

    def formatException(self, ei: Any) -> str:
        """Return a traceback whose exceptions' own texts are escaped and capped."""
        error = traceback.TracebackException(ei[0], ei[1], ei[2])
        return "\n".join(_chain(error))


class Repeats(logging.Filter):
    """Let the first of a run of alike warnings or errors through, then at most one a minute."""

    def __init__(
        self,
        every: float = 60.0,
        level: int = logging.WARNING,
        clock: Callable[[], float] = time.monotonic,
    ):
        super().__init__()
        self.every, self.level, self.clock = every, level, clock
        self.runs: dict[tuple[Any, ...], list[Any]] = {}  # key -> [logged at, held back, text]

    def filter(self, record: logging.LogRecord) -> bool:
        """Hold back a repeat within a minute; let the next one through, counting the others."""
        if record.levelno < self.level:  # e.g. each unsubscribe's own line
            return True
        if record.__dict__.get("_digest_repeats") is self:  # let through already, at its logger
            return True
        kind = record.exc_info[0] if record.exc_info else None
        form = str(record.msg).partition("\n")[0] if public(record) else _text(record)
        key = (record.name, record.levelno, form, kind)
        now = self.clock()
        run = self.runs.get(key)
        if run is not None and now - run[0] < self.every:
            run[1] += 1
            return False
        if run is not None and run[1]:
            _summarise(record, int(run[1]), now - run[0])
        if len(self.runs) > 1000:  # forget runs that ended
            self.runs = {k: r for k, r in self.runs.items() if now - r[0] < self.every}
        self.runs[key] = [now, 0, _text(record)]
        record.__dict__["_digest_repeats"] = self
        return True

    def flush(self) -> None:
        """Log how many lines each run held back since its last one (when the program ends)."""
        now = self.clock()
        runs, self.runs = self.runs, {}
        for (name, level, _, _), (logged, held, text) in runs.items():
            if held:
                logging.getLogger(name).log(
                    level, "%s (… %d more like it in the last %.0f s)", text, held, now - logged
                )


def _text(record: logging.LogRecord) -> str:
    """Return a record's message, or its format if its arguments do not fit it."""
    try:
        return record.getMessage()
    except Exception:  # logging itself reports it when the record is written
        return str(record.msg)


def _summarise(record: logging.LogRecord, held: int, since: float) -> None:
    """Turn a record into its run's summary: its message, how many were held back, no traceback."""
    note = " (… %d more like it in the last %.0f s)"
    if isinstance(record.args, Mapping):
        record.msg = str(record.msg) + note.replace("%d", "%(repeats_held)d").replace(
            "%.0f", "%(repeats_since).0f"
        )
        record.args = {**record.args, "repeats_held": held, "repeats_since": since}
    elif record.args:
        record.msg, record.args = str(record.msg) + note, (*record.args, held, since)
    else:  # a message without arguments is not %-formatted: keep its "%" as it is
        record.msg, record.args = str(record.msg).replace("%", "%%") + note, (held, since)
    record.exc_info, record.exc_text = None, None


REPEATS = Repeats()


def install(level: int, fmt: str, stream: IO[str]) -> logging.Handler:
    """Send every logger's records to stream through one root handler that escapes, caps and
    summarises them; replace the root's other handlers. Return the handler."""
    REPEATS.flush()  # a run held back under the settings before (tests set up many times)
    handler = logging.StreamHandler(stream)
    handler.setFormatter(Escaping(fmt))
    handler.addFilter(REPEATS)
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(level)
    logging.captureWarnings(True)  # a warning's text (a client's header?) goes through it too
    atexit.unregister(REPEATS.flush)  # once, however often logging is set up
    atexit.register(REPEATS.flush)  # runs before logging's own shutdown: registered later
    return handler
