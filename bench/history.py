"""A synthetic but realistic history for the reading-room benchmark, written through the Store.

Papers read like arXiv abstracts: about 1,000 characters of sentences whose words follow Zipf's
law over a vocabulary of 60,000 words (the fixture abstracts' own words first, by frequency,
then made-up technical terms), titles of 6-14 words, 2-6 authors from a pool of about 40,000
names. Each paper belongs to one keyword (its phrase in the abstract, and in half the titles);
one in ten is also found by a second keyword. Every cycle is one day, mailing its news.
"""

from __future__ import annotations

import json
import math
import random
import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

KEYWORDS = [
    "Graph Neural Network",
    "Large Language Model",
    "Diffusion Model",
    "Reinforcement Learning",
    "Recommender System",
]
FIRST_CYCLE = datetime(2026, 1, 5, 6, 0, tzinfo=UTC)  # fixed dates: the same pages every run
VOCABULARY = 60_000
FIRST_NAMES = [
    "Ada", "Alan", "Grace", "Bo", "Chen", "Emil", "Hana", "Wei", "Yuki", "Priya", "Omar", "Lena",
    "Mateo", "Sofia", "Ivan", "Aisha", "Kenji", "Maria", "Tomas", "Fatima", "Lucas", "Mei",
    "Noah", "Sara", "Arjun", "Elena", "Jonas", "Nadia", "Pablo", "Zhi", "Ravi", "Ingrid",
    "Kofi", "Leila", "Marco", "Nina", "Oskar", "Rosa", "Tariq", "Xin",
]  # fmt: skip
SYLLABLES = [
    "graph", "former", "net", "rec", "diff", "token", "embed", "mix", "sparse", "flow", "gen",
    "attn", "quant", "prompt", "lora", "hyper", "meta", "contra", "auto", "vae", "gan", "bert",
    "llama", "rank", "retr", "fuse", "dual", "multi", "trans", "conv", "moe", "dist", "kern",
    "spec", "node", "edge", "path", "walk", "score", "step", "ode", "sde", "clip", "vit",
]  # fmt: skip
_WORD_RE = re.compile(r"[A-Za-z][A-Za-z-]+")


class Writer:
    """Make papers of realistic text, deterministically (one seed, the same words each run)."""

    def __init__(self, seed: int = 11):
        self.rng = random.Random(seed)
        fixture = json.loads((ROOT / "tests" / "data" / "papers.json").read_text())
        counts = Counter(
            w.lower() for p in fixture for w in _WORD_RE.findall(f"{p['title']} {p['abstract']}")
        )
        words = [w for w, _ in counts.most_common()]
        surnames = sorted({a.split()[-1] for p in fixture for a in p["authors"]})
        made = set(words)
        while len(words) < VOCABULARY:
            word = "".join(self.rng.choices(SYLLABLES, k=self.rng.randint(2, 3)))
            if self.rng.random() < 0.1:
                word += str(self.rng.randint(2, 9))
            if word not in made:
                made.add(word)
                words.append(word)
        self.words = words
        self.log_size = math.log(len(words))
        extra = ["".join(self.rng.choices(SYLLABLES, k=2)).title() for _ in range(1000)]
        self.surnames = sorted(set(surnames + extra))
        self.counters: Counter = Counter()

    def _words(self, count: int) -> list[str]:
        # Zipf's law (1/rank) as a continuous log-uniform draw over the ranks.
        last, rng, log_size = len(self.words) - 1, self.rng.random, self.log_size
        return [self.words[min(last, int(math.exp(rng() * log_size)) - 1)] for _ in range(count)]

    def abstract(self, phrase: str) -> str:
        """Return about 1,000 characters of sentences, the keyword's phrase among them."""
        sentences, length = [], 0
        while length < 950:
            words = self._words(self.rng.randint(12, 26))
            if not sentences:
                words[self.rng.randint(0, len(words) - 1)] = phrase.lower()
            sentence = " ".join(words).capitalize() + "."
            sentences.append(sentence)
            length += len(sentence) + 1
        return " ".join(sentences)

    def title(self, phrase: str) -> str:
        """Return a title of 6-14 words, with the keyword's phrase in half of them."""
        words = self._words(self.rng.randint(6, 14))
        if self.rng.random() < 0.5:
            words.insert(self.rng.randint(0, len(words)), phrase)
        return " ".join(w if w[0].isupper() else w.title() for w in words)

    def authors(self) -> tuple[str, ...]:
        """Return 2-6 author names."""
        count = self.rng.randint(2, 6)
        return tuple(
            f"{self.rng.choice(FIRST_NAMES)} {self.rng.choice(self.surnames)}" for _ in range(count)
        )

    def paper(self, phrase: str, updated: datetime):
        """Return one paper of a keyword, with an arXiv-like id of its month."""
        from digest.models import Paper

        month = updated.strftime("%y%m")
        self.counters[month] += 1
        return Paper(
            id=f"{month}.{self.counters[month]:05d}",
            version=1,
            title=self.title(phrase),
            authors=self.authors(),
            abstract=self.abstract(phrase),
            comment=self.rng.choice([None, "12 pages, 4 figures", "Accepted at ICLR 2026"]),
            published=updated,
            updated=updated,
            primary_category=self.rng.choice(["cs.LG", "cs.IR", "cs.CL", "cs.AI"]),
            categories=("cs.LG", "cs.AI"),
        )


def write_history(database: Path, papers: int, cycles: int, writer: Writer | None = None) -> None:
    """Write `papers` papers over `cycles` daily cycles with the Store's own API.

    Each cycle records its papers, then each keyword's (all of them news, as in a daily run
    whose fetch reaches back just far enough), marks itself planned and finishes.
    """
    from digest.config import Keyword
    from digest.store import Store

    writer = writer or Writer()
    keys = [k.casefold() for k in KEYWORDS]
    queries = {k.casefold(): Keyword(k).search_query() for k in KEYWORDS}
    per_cycle = [papers // cycles + (c < papers % cycles) for c in range(cycles)]
    with Store(database) as store:
        for number, count in enumerate(per_cycle):
            now = FIRST_CYCLE + timedelta(days=number)
            cycle_id = store.begin_cycle(now)
            found: dict[str, list] = {key: [] for key in keys}
            batch = []
            for i in range(count):
                k = writer.rng.randrange(len(keys))
                updated = now - timedelta(hours=2, seconds=30 * i)
                paper = writer.paper(KEYWORDS[k], updated)
                batch.append(paper)
                found[keys[k]].append(paper)
                if writer.rng.random() < 0.1:  # also found by a second keyword
                    other = (k + writer.rng.randrange(1, len(keys))) % len(keys)
                    found[keys[other]].append(paper)
            store.record_papers(batch)
            with store.transaction():
                for key, fetched in found.items():
                    ids = [p.id for p in fetched]
                    store.record_keyword(key, fetched, cycle_id, now, queries[key], news=ids)
                store.mark_planned(cycle_id, now)
            store.finish_cycle(cycle_id, "ok", {}, now)


def phrases() -> list[str]:
    """Return search queries people type: topics, methods, "phrases", author names."""
    return [
        "graph neural network", "large language model", "diffusion", "reinforcement learning",
        "recommender system", "contrastive learning", "transformer", "attention",
        '"knowledge graph"', "retrieval augmented generation", "prompt tuning", "benchmark",
        "few-shot", "federated learning", "explainability", "sequential recommendation",
        "cold start", "denoising", "reward model", "policy gradient", "Lovelace", "Haddad",
        "Rossi", "Grace Hopper", "Chen", "graphformer", "llamarec", "sparse attention",
        "user preferences", "collaborative filtering", "noise schedule", "fine-tuning",
        "hallucination", "alignment", "multimodal", "zero-shot", "node classification",
        "link prediction", "offline reinforcement learning", "evaluation metrics",
    ]  # fmt: skip


def unique_queries(count: int, seed: int = 5) -> list[str]:
    """Return `count` distinct queries: a topic's word and a word of the 5,000 most common."""
    writer, rng = Writer(), random.Random(seed)
    topics = [w for q in phrases() for w in q.strip('"').lower().split()]
    common = [w for w in writer.words[100:5000] if len(w) > 3]
    found: dict[str, None] = {}  # in the order drawn
    while len(found) < count:
        found[f"{rng.choice(topics)} {rng.choice(common)}"] = None
    return list(found)
