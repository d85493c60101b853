"""Whole numbers read from text a client or a file wrote: ASCII digits only, of bounded length."""

from __future__ import annotations

ASCII_DIGITS = frozenset("0123456789")


def whole_number(text: object, digits: int = 9) -> int | None:
    """Return the number written as 1 to `digits` ASCII digits, else None.

    `str.isdigit` accepts "²" (which `int` refuses); `int` accepts Arabic-Indic and fullwidth
    digits, " 7", "+7" and "7_0". None of them is a number a form or URL of ours holds.
    """
    if not isinstance(text, str) or not 0 < len(text) <= digits:
        return None
    if not ASCII_DIGITS.issuperset(text):
        return None
    return int(text)
