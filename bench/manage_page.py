"""Time a reader's manage page with 20 own topics over 30,000 papers of the last 30 days.

The history is bench/history.py's realistic text (Zipf over 60,000 words, 2-6 authors from
some 40,000 names), 1,000 papers arriving each day for 30 days. The page is served by the app
itself (its read threads, as `digest serve` runs them) and fetched over HTTP: the first view,
then the median and worst of the next ones; each view counts every line afresh (one Matcher a
view). Run: python bench/manage_page.py [--papers N] [--views N]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

TOPICS = [
    "graph neural network", '"large language model"', "diffusion -survey", "reinforcement learning",
    "recommender system", "contrastive learning", "transformer", "attention OR denoising",
    '"knowledge graph"', "retrieval augmented generation", "prompt tuning", "benchmark",
    "federated learning", "sequential recommendation", "au:Lovelace", 'au:"Grace Hopper"',
    "au:Rossi cat:cs.IR", "cat:cs.IR", "cat:cs attention", "cold start OR reward model",
]  # fmt: skip
EMAIL = "ada@example.org"


def build(folder: Path, papers: int) -> tuple[Path, object]:
    """Write the history (papers arriving over 30 days) and settings; return both."""
    from helpers.builders import SECRET, settings_text
    from history import FIRST_CYCLE, KEYWORDS, Writer

    from digest.config import load_settings
    from digest.store import Store

    writer, days = Writer(), 30
    with Store(folder / "digest.db") as store:
        for day in range(days):
            now = FIRST_CYCLE + timedelta(days=day)
            batch = [
                writer.paper(writer.rng.choice(KEYWORDS), now - timedelta(hours=2, seconds=30 * i))
                for i in range(papers // days)
            ]
            store.record_papers(batch)
            with store.transaction():
                store.record_arrivals([p.id for p in batch], day + 1, now)
    config = folder / "settings.toml"
    text = settings_text(api_url="http://127.0.0.1:9/api/query")
    config.write_text(text.replace("first_run_days = 2", f'database = "{folder / "digest.db"}"'))
    (folder / "subscribers.csv").write_text(
        f"email,name,keywords\n{EMAIL},Ada,Graph Neural Network\n"
    )
    settings = load_settings(config, env={"DIGEST_SECRET": SECRET})
    return config, settings


async def views(settings, count: int) -> tuple[list[float], list[int]]:
    """Serve the app and time `count` views of the reader's page."""
    import aiohttp
    from aiohttp.test_utils import TestServer
    from helpers.builders import SECRET
    from history import FIRST_CYCLE

    from digest.store import Store
    from digest.tokens import manage_token, token_id
    from digest.web import ENDPOINT, make_app

    secret = SECRET.encode()
    with Store(settings.database) as store:
        store.remember_recipients([(token_id(secret, EMAIL), EMAIL)])
        store.save_own_topics(EMAIL, "Ada", "csv", TOPICS, FIRST_CYCLE)
    app = make_app(settings)
    app[ENDPOINT].clock = lambda: FIRST_CYCLE + timedelta(days=29, hours=12)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    url = str(server.make_url(f"/manage?token={manage_token(secret, EMAIL, 0)}"))
    times: list[float] = []
    late: list[int] = []  # lines left out of a view for want of time
    try:
        async with aiohttp.ClientSession() as client:
            for _ in range(count):
                started = time.perf_counter()
                async with client.get(url) as answer:
                    page = await answer.text()
                times.append(time.perf_counter() - started)
                assert answer.status == 200, page
                late.append(page.count("not counted this time"))
    finally:
        await server.close()
    return times, late


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--papers", type=int, default=30_000, help="arrived in the 30 days")
    parser.add_argument("--views", type=int, default=11)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        _, settings = build(Path(folder), args.papers)
        print(f"history: {args.papers:,} papers in 30 days, written in "
              f"{time.perf_counter() - started:.0f} s")  # fmt: skip
        times, late = asyncio.run(views(settings, args.views))
    later = times[1:] or times
    print(
        f"manage page with {len(TOPICS)} own topics: first view {times[0] * 1000:.0f} ms, "
        f"then median {statistics.median(later) * 1000:.0f} ms, worst {max(later) * 1000:.0f} ms"
        f"; lines left uncounted for want of time: {max(late)} at most"
    )


if __name__ == "__main__":
    main()
