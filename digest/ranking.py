"""Order a section's papers for one reader: the topic's text score plus what their votes taught.

Learning is Rocchio's over tf-idf vectors: a reader's profile is the decayed sum of the vectors
of the papers they liked, minus those they disliked; a paper's preference is its cosine with the
profile. Nothing is downloaded and nothing leaves the machine: the vectors come from the
history's own full-text index (store/relevance).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

Vector = Mapping[str, float]  # term -> weight, of unit length

KEEP_TERMS = 30  # a paper's strongest terms: enough to tell subjects apart, small to hold
PROFILE_TERMS = 100  # a reader's strongest terms (more cost time and tell little more)
HALF_LIFE_DAYS = 90.0  # a vote's weight halves in this time
DISLIKE = 1.0  # a dislike weighs as much as a like (Rocchio's gamma over beta)
PREFERENCE = 1.0  # how much a full preference (cosine 1) weighs against the best text score
LIFT = 0.05  # a preference above this "lifted" the paper: its reason names a liked paper
CLOSE = 0.05  # the closest liked paper must be at least this similar to be named


# Porter stems of English function words: a young history's idf cannot tell they say nothing.
_STOPWORDS = (
    "a about abov after again against all also am an and ani ar as at be becaus been befor "
    "between both but by can could did do doe dure each few for from further had ha have here "
    "how i if in into is it it itself just more most much no nor not of off on onc onli or other "
    "our out over own same she should so some such than that the their them then there these "
    "thei thi those through to too under until up us use veri via wa we were what when where "
    "which while who whom why will with within without would yet you your"
)
STOPWORDS = frozenset(_STOPWORDS.split())


def tfidf(
    counts: Mapping[str, float], frequencies: Mapping[str, int], total: int
) -> dict[str, float]:
    """Return a paper's unit tf-idf vector over its strongest terms (`frequencies`: in how many
    of the history's `total` papers each term occurs; unknown terms count as in one)."""
    weights = {
        term: (1 + math.log(n)) * math.log((total + 1) / (frequencies.get(term, 0) + 1))
        for term, n in counts.items()
        if n > 0 and len(term) > 2 and term not in STOPWORDS and not term.isdigit()
    }
    strongest = sorted(weights.items(), key=lambda kv: (-kv[1], kv[0]))[:KEEP_TERMS]
    return _unit(dict(strongest))


def cosine(a: Vector, b: Vector) -> float:
    """Return the cosine of two unit vectors."""
    if len(a) > len(b):
        a, b = b, a
    return sum(weight * b.get(term, 0.0) for term, weight in a.items())


@dataclass(frozen=True)
class Profile:
    """What a reader's votes taught: term weights, and the liked papers that can be named."""

    weights: dict[str, float]
    liked: tuple[tuple[str, Vector], ...]  # (title, vector) of each liked paper

    def preference(self, vector: Vector) -> float:
        """Return how much the reader's votes favour a paper (-1 to 1)."""
        return cosine(self.weights, vector)

    def because(self, vector: Vector) -> str | None:
        """Return the title of the liked paper closest to this one, if close enough."""
        best, title = CLOSE, None
        for liked_title, liked in self.liked:
            if (similarity := cosine(liked, vector)) >= best:
                best, title = similarity, liked_title
        return title


def learn(
    votes: Iterable[tuple[str, int, datetime]],
    vectors: Mapping[str, Vector],
    titles: Mapping[str, str],
    now: datetime,
) -> Profile | None:
    """Return a reader's profile from their votes, (paper id, +1 or -1, when) each; None if
    no voted paper is known."""
    weights: dict[str, float] = {}
    liked = []
    for paper_id, vote, at in votes:
        vector = vectors.get(paper_id)
        if not vector:
            continue
        age = max((now - at).total_seconds() / 86400, 0.0)
        factor = 0.5 ** (age / HALF_LIFE_DAYS) * (1.0 if vote > 0 else -DISLIKE)
        for term, weight in vector.items():
            weights[term] = weights.get(term, 0.0) + factor * weight
        if vote > 0:
            liked.append((titles.get(paper_id, paper_id), vector))
    if not weights:
        return None
    strongest = sorted(weights.items(), key=lambda kv: (-abs(kv[1]), kv[0]))[:PROFILE_TERMS]
    return Profile(_unit(dict(strongest)), tuple(liked))


@dataclass(frozen=True, slots=True)
class Candidate:
    """A paper of a section before ordering: its text score for the section's topic."""

    paper_id: str
    updated: datetime
    text: float  # the topic's BM25 score (higher is better; 0: the words are not found)


@dataclass(frozen=True, slots=True)
class Ranked:
    """A paper's place: its score, and the liked paper it is there because of, if any."""

    paper_id: str
    score: float
    because: str | None = None


def order(
    candidates: Sequence[Candidate],
    profile: Profile | None = None,
    vectors: Mapping[str, Vector] | None = None,
) -> list[Ranked]:
    """Order a section's papers best first: text score (scaled to the section's best) plus the
    reader's preference; ties by date, newest first."""
    best = max((c.text for c in candidates), default=0.0) or 1.0
    ranked = []
    for c in candidates:
        score, because = c.text / best, None
        vector = (vectors or {}).get(c.paper_id)
        if profile is not None and vector:
            lift = profile.preference(vector)
            score += PREFERENCE * lift
            if lift > LIFT:
                because = profile.because(vector)
        ranked.append((score, c.updated, c.paper_id, because))
    ranked.sort(key=lambda r: (-round(r[0], 9), -r[1].timestamp(), r[2]))
    return [Ranked(paper_id, score, because) for score, _, paper_id, because in ranked]


def _unit(weights: dict[str, float]) -> dict[str, float]:
    norm = math.sqrt(sum(w * w for w in weights.values()))
    return {t: w / norm for t, w in weights.items()} if norm else {}
