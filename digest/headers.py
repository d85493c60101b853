"""Write header fields as RFC 5322 and RFC 2047 say: encoded-words in text only, folds at spaces.

A structured field (addresses, message ids, URLs in angle brackets, MIME parameters) is never
encoded: it folds only at a space outside quotes and angle brackets, so before `<`, after a
comma or after the `;` of a parameter. An unstructured one (Subject) and a display name carry
their non-ASCII words as encoded-words. Lines stay within 78 characters (76 with an encoded-word,
RFC 2047 §2) unless a single token is longer; such a token stays whole. Lines end in LF, as
Maildir stores them; aiosmtplib sends CRLF.
"""

from __future__ import annotations

import binascii
import re

LIMIT = 78  # RFC 5322 §2.1.1
EW_LIMIT = 76  # a line holding an encoded-word, RFC 2047 §2
EW_MAX = 66  # one encoded-word, so that "Subject: " and it fit on one line
UNSTRUCTURED = frozenset({"subject", "comments", "content-description"})

_WSP = " \t"
_Q_SAFE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!*+-/")
_ATOM_RE = re.compile(r"[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+(?: [A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+)*")
_EW_RE = re.compile(r"=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=")
_TOKEN_RE = re.compile(r"[ \t]+|[^ \t]+")


def header(name: str, value: str) -> str:
    """Return one header line: unstructured() for Subject and other text, else structured()."""
    if name.lower() in UNSTRUCTURED:
        return unstructured(name, value)
    return structured(name, value)


def structured(name: str, value: str) -> str:
    """Return a structured header, never encoded, folded only at its spaces outside quotes and <>.

    A non-ASCII address stays UTF-8 (RFC 6532); phrases must be made with phrase() first.
    """
    _refuse_breaks(name, value)
    return _fold(name, " " + value, _fold_points(" " + value))


def unstructured(name: str, value: str) -> str:
    """Return a text header: words that are not plain ASCII as encoded-words, folded at spaces."""
    _refuse_breaks(name, value)
    parts: list[str] = []
    run: list[str] = []  # words to encode, with the spaces between them
    for token in _TOKEN_RE.findall(value):
        if token[0] in _WSP:
            (run if run else parts).append(token)
        elif _needs_encoding(token):
            run.append(token)
        else:
            _flush(run, parts)
            parts.append(token)
    _flush(run, parts)
    text = " " + "".join(parts)
    return _fold(name, text, _fold_points(text, quotes=False))


def phrase(display: str, room: int = LIMIT) -> str:
    """Return a display name as a phrase: plain words, a quoted string up to room, or encoded."""
    if _ATOM_RE.fullmatch(display) and "=?" not in display:
        return display
    if all(" " <= c <= "~" for c in display) and "=?" not in display:
        quoted = '"' + display.replace("\\", "\\\\").replace('"', '\\"') + '"'
        if len(quoted) <= room:
            return quoted
    return " ".join(encoded_words(display))


def mailbox(name: str, display: str, address: str) -> str:
    """Return an address header: the display name as a phrase, the address never encoded."""
    _refuse_breaks(name, display + address)
    if not display:
        return structured(name, address)
    room = LIMIT - len(f"{name}:  <{address}>")  # a quoted name only if the line then fits
    return structured(name, f"{phrase(display, room)} <{address}>")


def encoded_words(text: str) -> list[str]:
    """Return text as UTF-8 encoded-words of whole characters, each at most EW_MAX long.

    Each word is Q-encoded with the characters RFC 2047 §5 allows in a phrase, or in base64
    when that is shorter.
    """
    words, chunk, q_len, b_len = [], "", 0, 0
    for char in text:
        data = char.encode()
        q_more = sum(1 if byte in _Q_SAFE or byte == 32 else 3 for byte in data)
        size = min(q_len + q_more, _b64_len(b_len + len(data)))
        if chunk and size + 12 > EW_MAX:
            words.append(_encode(chunk, q_len, b_len))
            chunk, q_len, b_len = "", 0, 0
        chunk, q_len, b_len = chunk + char, q_len + q_more, b_len + len(data)
    if chunk:
        words.append(_encode(chunk, q_len, b_len))
    return words


def unfold(lines: str) -> str:
    """Return header lines unfolded (RFC 5322 §2.2.3): each line break before a space removed."""
    return re.sub(r"\r?\n(?=[ \t])", "", lines)


def _encode(chunk: str, q_len: int, b_len: int) -> str:
    data = chunk.encode()
    if q_len <= _b64_len(b_len):
        text = "".join(chr(b) if b in _Q_SAFE else "_" if b == 32 else f"={b:02X}" for b in data)
        return f"=?utf-8?q?{text}?="
    return f"=?utf-8?b?{binascii.b2a_base64(data, newline=False).decode()}?="


def _b64_len(size: int) -> int:
    return 4 * ((size + 2) // 3)


def _needs_encoding(word: str) -> bool:
    return "=?" in word or not all("!" <= c <= "~" for c in word)


def _flush(run: list[str], parts: list[str]) -> None:
    """Move a run of words to encode into parts, as encoded-words with its spaces outside."""
    trailing: list[str] = []
    while run and run[-1][0] in _WSP:
        trailing.insert(0, run.pop())
    if run:
        parts.append(" ".join(encoded_words("".join(run))))
    parts.extend(trailing)
    run.clear()


def _fold_points(text: str, quotes: bool = True) -> list[int]:
    """Return where a line may break: before the last space of each run of spaces, outside
    quoted strings and angle brackets when quotes is true."""
    points, quoted, angle, escaped = [], False, False, False
    for i, char in enumerate(text):
        if escaped:
            escaped = False
        elif quotes and quoted and char == "\\":
            escaped = True
        elif quotes and char == '"':
            quoted = not quoted
        elif quotes and not quoted and char in "<>":
            angle = char == "<"
        elif char in _WSP and not (quoted or angle) and text[i + 1 : i + 2].strip(_WSP):
            points.append(i)
    return points


def _fold(name: str, text: str, points: list[int]) -> str:
    """Break text (the field body) at some of points so each line fits, greedily."""
    pieces = [text[a:b] for a, b in zip([0, *points], [*points, len(text)], strict=True)]
    lines = [f"{name}:{pieces[0]}"]
    for piece in pieces[1:]:
        joined = lines[-1] + piece
        if _width(joined) <= _limit(joined):
            lines[-1] = joined
        elif lines[-1] == f"{name}:" and _width(piece) > _limit(piece):
            lines[-1] = joined  # a token too long for any line stays after the name
        else:
            lines.append(piece)
    return "\n".join(lines) + "\n"


def _width(line: str) -> int:
    return len(line) if line.isascii() else len(line.encode())


def _limit(line: str) -> int:
    return EW_LIMIT if _EW_RE.search(line) else LIMIT


def _refuse_breaks(name: str, value: str) -> None:
    if "\r" in value or "\n" in value:
        raise ValueError(f"{name} header value contains a line break")
