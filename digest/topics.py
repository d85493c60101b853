"""A reader's own topics: one query per line in a small syntax, parsed and checked.

The syntax: words (all required), "exact phrases", -word to exclude, au:Surname or
au:"Given Surname" for an author, cat:cs.IR (or a whole archive, cat:cs) for a category,
and OR between alternatives. Matching is matching.py's; this module only reads the text.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

MAX_LINE = 200  # characters of one topic line
MAX_TERMS = 12  # words, phrases and filters in one line, all alternatives together
FIELDS = ("au", "cat")
_CATEGORY = re.compile(r"^[a-z][a-z-]*(\.[a-z][a-z-]*)?$")
_FIELD = re.compile(r"^([A-Za-z]+):")
_WORD = re.compile(r"\w+")


class TopicError(ValueError):
    """A topic line that cannot be read: what is wrong with it, and how to write it."""

    def __init__(self, message: str, line: int | None = None, text: str = ""):
        super().__init__(message)
        self.message, self.line, self.text = message, line, text

    def __str__(self) -> str:
        where = f"line {self.line}" if self.line is not None else "topic"
        return f"{where} ({self.text!r}): {self.message}" if self.text else self.message


@dataclass(frozen=True, order=True, slots=True)
class Term:
    """One condition: words in the title or abstract, an author, or a category."""

    field: str  # "text", "au" or "cat"
    words: tuple[str, ...]  # folded words (a phrase when several); a category is one
    negated: bool = False

    def __str__(self) -> str:
        value = " ".join(self.words)
        value = f'"{value}"' if len(self.words) > 1 else value
        return ("-" if self.negated else "") + (
            value if self.field == "text" else f"{self.field}:{value}"
        )


@dataclass(frozen=True, slots=True)
class Clause:
    """Terms that must all hold (the negated ones must not)."""

    terms: tuple[Term, ...]  # sorted: equal clauses compare equal

    @property
    def wanted(self) -> tuple[Term, ...]:
        """Return the terms a paper must have."""
        return tuple(t for t in self.terms if not t.negated)

    @property
    def unwanted(self) -> tuple[Term, ...]:
        """Return the terms a paper must not have."""
        return tuple(t for t in self.terms if t.negated)


@dataclass(frozen=True, slots=True)
class Topic:
    """A topic line as the reader wrote it, and what it asks for: any of its clauses."""

    line: str
    clauses: tuple[Clause, ...]
    # The query's canonical form: equal for lines that ask for the same papers (made once).
    key: str = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        canonical = sorted(" ".join(str(t) for t in c.terms) for c in set(self.clauses))
        object.__setattr__(self, "key", " OR ".join(canonical))


def fold(text: str) -> str:
    """Fold text for matching: compatibility forms, no accents, case-insensitive."""
    if text.isascii():  # most text: nothing to decompose
        return text.casefold()
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def words(text: str) -> tuple[str, ...]:
    """Return the folded words of a text, as the full-text index splits them."""
    return tuple(_WORD.findall(fold(text).replace("_", " ")))


def text_words(topic: Topic) -> tuple[str, ...]:
    """Return the words a topic looks for in titles and abstracts (what ranks its papers)."""
    found: dict[str, None] = {}
    for clause in topic.clauses:
        for term in clause.wanted:
            if term.field == "text":
                found.update(dict.fromkeys(term.words))
    return tuple(found)


def parse(line: str) -> Topic:
    """Read one topic line; raise TopicError saying what is wrong and how to write it."""
    text = " ".join(line.split())
    if not text:
        raise TopicError("the line is empty")
    if len(text) > MAX_LINE:
        raise TopicError(f"a topic has at most {MAX_LINE} characters; split it into two lines")
    clauses: list[list[Term]] = [[]]
    tokens = _tokens(text)
    for position, (token, quoted) in enumerate(tokens):
        if token == "OR" and not quoted:
            if not clauses[-1] or position == len(tokens) - 1:
                raise TopicError('OR needs something to search on both sides, as in "a OR b"')
            clauses.append([])
            continue
        clauses[-1].append(_term(token, quoted))
    if sum(len(c) for c in clauses) > MAX_TERMS:
        raise TopicError(f"a topic has at most {MAX_TERMS} terms; split it into two lines")
    for clause in clauses:
        if all(t.negated for t in clause):
            raise TopicError(
                "a topic needs something to look for, not only exclusions (-word): "
                "add a word, a phrase, au: or cat:"
            )
    return Topic(text, tuple(Clause(tuple(sorted(set(c)))) for c in clauses))


def parse_lines(text: str, limit: int) -> tuple[list[Topic], list[TopicError]]:
    """Read a text box of topics, one per line (blank lines skipped, repeats dropped): the
    topics, and every line's error (numbered as the reader sees them)."""
    topics: list[Topic] = []
    errors: list[TopicError] = []
    seen: set[str] = set()
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            topic = parse(line)
        except TopicError as exc:
            errors.append(TopicError(exc.message, number, " ".join(line.split())))
            continue
        if topic.line not in seen:
            seen.add(topic.line)
            topics.append(topic)
    if len(topics) > limit:
        errors.append(
            TopicError(f"you can have at most {limit} topics; remove {len(topics) - limit}")
        )
    return topics, errors


def check(lines: Iterable[str]) -> list[TopicError]:
    """Return the errors of stored topic lines (numbered from 1), e.g. after an upgrade."""
    found = []
    for number, line in enumerate(lines, start=1):
        try:
            parse(line)
        except TopicError as exc:
            found.append(TopicError(exc.message, number, line))
    return found


def from_keyword(name: str, categories: Sequence[str], exclude: Sequence[str]) -> Topic:
    """Return the local query of an operator's keyword: its name as a phrase in the title or
    abstract, in any of its categories, with none of its excluded words."""
    phrase = Term("text", words(name))
    if not phrase.words:
        raise TopicError(f"the keyword {name!r} has no words to match locally")
    unwanted = [Term("text", words(w), True) for w in exclude if words(w)]
    cats: list[tuple[Term, ...]] = [(Term("cat", (c.casefold(),)),) for c in categories]
    clauses = [Clause(tuple(sorted({phrase, *unwanted, *cat}))) for cat in cats or [()]]
    return Topic(name, tuple(clauses))


def _tokens(text: str) -> list[tuple[str, bool]]:
    """Split a line into its tokens (a quoted phrase is one, kept with any prefix)."""
    found: list[tuple[str, bool]] = []
    at = 0
    while at < len(text):
        if text[at] == " ":
            at += 1
            continue
        end = at
        quoted = False
        while end < len(text) and text[end] != " ":
            if text[end] == '"':
                close = text.find('"', end + 1)
                if close < 0:
                    raise TopicError('a quote is not closed: end the phrase with "')
                end, quoted = close + 1, True
            else:
                end += 1
        found.append((text[at:end], quoted))
        at = end
    return found


def _term(token: str, quoted: bool) -> Term:
    """Read one token: [-][field:]word or [-][field:]"phrase"."""
    negated = token.startswith("-")
    body = token[1:] if negated else token
    if not body:
        raise TopicError("- needs a word after it, as in -survey")
    field = "text"
    if match := _FIELD.match(body):
        field, body = match[1].casefold(), body[match.end() :]
        if field not in FIELDS:
            raise TopicError(
                f"unknown field {match[1]}: (use au: for an author or cat: for a category)"
            )
        if not body or body == '""':
            example = "au:Surname" if field == "au" else "cat:cs.IR"
            raise TopicError(f"{field}: needs something after it, as in {example}")
    value = body.replace('"', " ")
    if field == "cat":
        category = value.strip().casefold()
        if not _CATEGORY.match(category):
            raise TopicError(f"{value.strip()!r} is not an arXiv category (such as cs.IR or math)")
        return Term("cat", (category,), negated)
    found = words(value)
    if not found:
        raise TopicError(f"{body!r} has no letters or digits to search for")
    return Term(field, found, negated)
