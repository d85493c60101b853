"""What commands share on the terminal: their settings, refusals, lines that fit 80 columns."""

from __future__ import annotations

import logging
import textwrap
import unicodedata
from collections.abc import Sequence

import click

from .config import Settings, find_settings, load_settings

log = logging.getLogger(__name__)

EXIT_OK, EXIT_FAILED, EXIT_CONFIG = 0, 1, 2
COLUMNS = 80  # what every line a command prints for reading fits in
ELLIPSIS = "…"


class Refused(Exception):
    """A command cannot do what it was asked: the message says why, the code how it exits."""

    def __init__(self, message: str, code: int = EXIT_FAILED):
        super().__init__(message)
        self.code = code


def settings_of(ctx: click.Context) -> Settings:
    """Load the settings chosen by --config, DIGEST_CONFIG or ./settings.toml."""
    settings = load_settings(find_settings(ctx.obj["config"]))
    for notice in settings.notices:
        log.warning("settings: %s", notice)
    return settings


def _char_width(char: str) -> int:
    if unicodedata.combining(char) or unicodedata.category(char) in ("Mn", "Me", "Cf"):
        return 0
    return 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1


def printable(text: str) -> str:
    """Return text with control characters shown as escapes (\\x0a), so a line stays a line."""
    return "".join(
        ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text
    )


def width(text: str) -> int:
    """Return how many columns a terminal gives text (a wide CJK character takes two)."""
    return sum(_char_width(ch) for ch in text)


def cut(text: str, columns: int) -> str:
    """Return text fitted into so many columns: as it is, or cut and ending with '…'."""
    text = printable(text)
    if width(text) <= columns:
        return text
    kept, used = [], 0
    for char in text:
        if used + _char_width(char) > columns - 1:
            break
        kept.append(char)
        used += _char_width(char)
    return "".join(kept) + ELLIPSIS if columns > 0 else ""


def pad(text: str, columns: int) -> str:
    """Return text cut to so many columns, then padded with spaces to them exactly."""
    text = cut(text, columns)
    return text + " " * (columns - width(text))


def fit_widths(natural: Sequence[int], shrink: Sequence[tuple[int, int]]) -> list[int]:
    """Return column widths whose row (one space between columns) fits COLUMNS: the natural
    widths, less what the columns of `shrink` (index, narrowest width), in order, give up."""
    widths = list(natural)
    excess = sum(widths) + len(widths) - 1 - COLUMNS
    for index, narrowest in shrink:
        if excess <= 0:
            break
        given = min(excess, max(widths[index] - narrowest, 0))
        widths[index] -= given
        excess -= given
    return widths


def row(cells: Sequence[str], widths: Sequence[int]) -> str:
    """Return one line of aligned columns, its end cut to COLUMNS and without trailing spaces."""
    line = " ".join(pad(cell, columns) for cell, columns in zip(cells, widths, strict=True))
    return cut(line.rstrip(), COLUMNS)


def wrapped(text: str, indent: str = "  ") -> list[str]:
    """Return a paragraph as lines of at most COLUMNS, the lines after the first indented."""
    lines = textwrap.wrap(printable(text), COLUMNS, subsequent_indent=indent)
    return [cut(line, COLUMNS) for line in lines]
