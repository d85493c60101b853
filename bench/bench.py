"""Benchmark the send and fetch phases against baselines, in one run (make bench).

Starts aiosmtpd in its own process on 127.0.0.1, answering every command after a small delay
(like a real relay, not like loopback), then measures against that same server:
  1. digest's own send phase (a planned outbox of N subscribers over a few keyword sets);
  2. a raw aiosmtplib pool of the same size sending pre-built messages of the same size;
  3. the standard library's smtplib, one connection per message, one after the other;
and the fetch phase's wall time against the arXiv floor, delay_seconds x (requests - 1), for a
few ordinary keywords and for one busy keyword with 1,000 new papers (paged).
The digest part runs in a child process so that its peak RSS is its own.
Then the reading room against a history of 100,000 papers (bench/reading_room.py): pages, feeds
and search per second beside /healthz, the FTS index's size, and a cycle's diff and archive
steps against the same with 1,000 papers; --reading-only runs that section alone.
And planning with mixed schedules (bench/plan_mix.py): plan() for 100,000 subscribers as today
(all daily, all from subscribers.csv) against the same rows with people's own topics, weekly
digests, pauses and abstracts, plus 10,000 web sign-ups: the time ratio and the peak RSS;
--planning-only runs that section alone.
And the public site under abuse (bench/abuse.py): 16 clients hammering uncached worst-case
searches on the 100,000 papers while unsubscribe POSTs and /healthz are timed (p50, p99 against
500 ms and 200 ms), with the search throughput achieved; --abuse-only runs that section alone.
And readers' own topics (bench/own_topics.py): 10,000 readers x 5 topics matched against a
2,000-paper day, against 10 s and 150 MB; then planning with own topics against without them
(bench/plan_own.py) and with ranking against without (bench/plan_rank.py: a third of 10,000
readers voting, a 2,000-paper day); --topics-only runs that section alone.
The send phase is measured twice: the shared bodies above, then the same subscribers each with
an own topic (matching two of 2,000 harvested papers), so that every body is personal, planned
as a recipe and rendered when sent (issue 19's target: within 2x of the shared send phase);
--no-personal skips that.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import multiprocessing
import smtplib
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the fake arXiv API lives with the tests
sys.path.insert(0, str(ROOT / "bench"))
from peak import peak_mb  # noqa: E402  (after the path it is found on)

KEYWORDS = ["Diffusion Model for Recommendation", "Graph Neural Network", "Large Language Model"]
KEYSETS = ["", KEYWORDS[1], f"{KEYWORDS[0]};{KEYWORDS[2]}", f"{KEYWORDS[1]};{KEYWORDS[2]}"]


# --- the SMTP server, in its own process -------------------------------------------------------


def serve_smtp(port: int, delay: float, ready) -> None:
    """Run aiosmtpd, replying to MAIL, RCPT and DATA after `delay` seconds; count messages."""
    from aiosmtpd.controller import Controller

    class SlowRelay:
        async def handle_MAIL(self, server, session, envelope, address, options):
            await asyncio.sleep(delay)
            envelope.mail_from = address
            return "250 OK"

        async def handle_RCPT(self, server, session, envelope, address, options):
            await asyncio.sleep(delay)
            envelope.rcpt_tos.append(address)
            return "250 OK"

        async def handle_DATA(self, server, session, envelope):
            await asyncio.sleep(delay)
            return "250 OK"

    controller = Controller(SlowRelay(), hostname="127.0.0.1", port=port)
    controller.start()
    ready.set()
    try:
        while True:
            time.sleep(3600)
    finally:
        controller.stop()


def free_port() -> int:
    """Return a port free on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- 1. digest's send phase, in a child process ----------------------------------------------


def synthetic_papers(count: int, day: datetime):
    """Return `count` papers per keyword, updated within the last day."""
    from digest.models import Paper

    abstract = (
        "We propose a method that improves the state of the art on several benchmarks "
        "while using fewer parameters and less training data than previous work. "
    ) * 8
    found = {}
    for k, keyword in enumerate(KEYWORDS):
        found[keyword.casefold()] = [
            Paper(
                id=f"2611.{k}{i:04d}",
                version=1,
                title=f"{keyword}: study number {i}",
                authors=("Ada Lovelace", "Alan Turing", "Grace Hopper"),
                abstract=abstract.strip(),
                comment="12 pages, 4 figures",
                published=day - timedelta(hours=i + 1),
                updated=day - timedelta(hours=i + 1),
                primary_category="cs.IR",
                categories=("cs.IR", "cs.LG"),
            )
            for i in range(count)
        ]
    return found


def digest_child(folder: Path) -> None:
    """Plan a cycle for the subscribers in `folder` and time the send phase; print JSON."""
    from digest.config import load_settings
    from digest.delivery import Delivery
    from digest.fetch import Fetched, FetchWindow
    from digest.models import KeywordResult
    from digest.planning import plan
    from digest.store import Store

    secret = "a bench secret of at least thirty-two bytes"  # digest refuses shorter ones
    settings = load_settings(folder / "settings.toml", env={"DIGEST_SECRET": secret})
    now = datetime.now(UTC)
    fetched = [KeywordResult(k.name) for k in settings.fetched_keywords]
    personal = bool(settings.arxiv.harvest)  # every subscriber with an own topic of theirs
    with Store(settings.database) as store:
        secret = store.secret(settings.secret)
        cycle_id = store.begin_cycle(now)
        for keyword in settings.keywords:  # known keywords: today's papers are news, no first run
            store.record_keyword(keyword.key, [], cycle_id, now, None)
        window = FetchWindow(now - timedelta(days=3))
        found = {k: Fetched(window, p) for k, p in synthetic_papers(8, now).items()}
        if personal:
            found["harvest:cs.lg"] = Fetched(window, harvested_papers(now))
            give_own_topics(store, folder, now)
        started = time.perf_counter()
        planning = plan(settings, store, found, fetched, cycle_id, now, secret)
        planned = time.perf_counter() - started
        plan_rss = peak_mb()
        # One message per keyword set, in outbox order: the baselines send the same mix.
        composer = Delivery(settings, store, secret)
        pending = store.pending()
        samples = [composer.message(next(pending)) for _ in KEYSETS]
        sign_ms = dkim_ms(settings, samples)
        items = list(itertools.islice(store.pending(), 1000))  # composing alone, no relay
        started = time.perf_counter()
        for item in items:
            composer.message(item)
        compose_ms = (time.perf_counter() - started) / max(1, len(items)) * 1000
        composer.bodies.close()  # the send phase below is one Delivery of its own, as in a cycle
        del composer
        started = time.perf_counter()
        delivery = asyncio.run(Delivery(settings, store, secret).run())
        sent_in = time.perf_counter() - started
    print(
        json.dumps(
            {
                "planned": planning.planned,
                "plan_seconds": planned,
                "sent": delivery.sent,
                "send_seconds": sent_in,
                "message_bytes": statistics.mean(len(m) for m in samples),
                "peak_rss_mb": peak_mb(),
                "plan_rss_mb": plan_rss,  # the peak when planned: what sending added, after
                "sign_ms": sign_ms,
                "compose_ms": compose_ms,
            }
        )
    )
    for number, sample in enumerate(samples):
        (folder / f"sample{number}.eml").write_bytes(sample)


HARVESTED = 2_000  # the personal run's harvested papers, each matched by a few readers


def harvested_papers(day: datetime):
    """Return the personal run's harvested papers: paper j's title and abstract name wj."""
    from digest.models import Paper

    return [
        Paper(
            id=f"2611.9{j:04d}",
            version=1,
            title=f"Harvested study w{j} of sparse models",
            authors=("Ada Lovelace", "Alan Turing"),
            abstract=f"We study w{j} and propose a method that improves the state of the art. " * 6,
            comment=None,
            published=day - timedelta(minutes=j + 1),
            updated=day - timedelta(minutes=j + 1),
            primary_category="cs.LG",
            categories=("cs.LG",),
        )
        for j in range(HARVESTED)
    ]


def give_own_topics(store, folder: Path, now: datetime) -> None:
    """Give subscriber i the own topic 'wa OR wb', a pair of papers no one else has."""
    with open(folder / "subscribers.csv") as csv:
        count = sum(1 for _ in csv) - 1
    with store.transaction():
        for i in range(count):
            a = i % HARVESTED
            b = (a + 1 + i // HARVESTED) % HARVESTED
            email = f"user{i:06d}@example.org"
            store.save_own_topics(email, f"User {i}", "csv", [f"w{a} OR w{b}"], now)


def dkim_ms(settings, samples: list[bytes], rounds: int = 25) -> float | None:
    """Return the mean milliseconds dkimpy takes to sign one of the samples (--dkim)."""
    from digest.dkim import Signer

    signer = Signer.of(settings.smtp)
    if signer is None:
        return None
    started = time.perf_counter()
    for _ in range(rounds):
        for sample in samples:
            signer.sign(sample)
    return (time.perf_counter() - started) / (rounds * len(samples)) * 1000


def write_dkim_key(folder: Path, kind: str) -> str:
    """Write a fresh private key; return the [smtp] lines that sign with it."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

    if kind == "rsa":
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    else:
        key = ed25519.Ed25519PrivateKey.generate()
    (folder / "dkim.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return 'dkim_domain = "example.org"\ndkim_selector = "bench"\ndkim_key_file = "dkim.pem"\n'


# --- 2. the raw aiosmtplib pool and 3. naive smtplib --------------------------------------------


async def raw_pool(port: int, messages: list[bytes], count: int, pool: int) -> float:
    """Send `count` pre-built messages over `pool` reused connections; return seconds."""
    import aiosmtplib

    queue: asyncio.Queue[int | None] = asyncio.Queue()
    for i in range(count):
        queue.put_nowait(i)
    for _ in range(pool):
        queue.put_nowait(None)

    async def worker() -> None:
        client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=30)
        await client.connect()
        while (i := await queue.get()) is not None:
            message = messages[i % len(messages)]
            await client.sendmail("papers@example.org", [f"user{i:06d}@example.org"], message)
        await client.quit()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(pool)))
    return time.perf_counter() - started


def naive(port: int, messages: list[bytes], count: int) -> float:
    """Send `count` messages with smtplib, a new connection for each; return seconds."""
    started = time.perf_counter()
    for i in range(count):
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
            message = messages[i % len(messages)]
            client.sendmail("papers@example.org", [f"user{i:06d}@example.org"], message)
    return time.perf_counter() - started


# --- the fetch phase ---------------------------------------------------------------------------


def arxiv_settings(url: str, delay: float):
    """Return the [arxiv] settings of the fetch measures, with the shipped defaults."""
    from digest.config import ArxivSettings

    return ArxivSettings(
        api_url=url,
        delay_seconds=delay,
        timeout=60,
        page_size=500,
        max_papers=2000,
        overlap_days=3,
        contact=None,
        max_retries=1,
    )


def timed_fetch(papers, names: list[str], delay: float, since: datetime) -> tuple[float, int]:
    """Fetch keywords back to `since` from a fake arXiv serving papers; (seconds, requests)."""
    from helpers.fake_arxiv import FakeArxiv

    from digest.config import Keyword
    from digest.fetch import FetchWindow
    from digest.pipeline import fetch_all

    with FakeArxiv(papers) as fake:
        keywords = tuple(Keyword(n) for n in names)
        settings = SimpleNamespace(
            arxiv=arxiv_settings(fake.url, delay), keywords=keywords, fetched_keywords=keywords
        )
        windows = {k.key: FetchWindow(since) for k in keywords}
        started = time.perf_counter()
        fetch_all(settings, windows)
        return time.perf_counter() - started, len(fake.requests)


def fetch_phase(keywords: int, delay: float) -> tuple[float, int]:
    """Fetch `keywords` keywords of the fixture papers; return (seconds, requests)."""
    from helpers.fake_arxiv import load_papers

    names = [
        "Diffusion",
        "Graph Neural Network",
        "Large Language Model",
        "Recommend",
        "Transformer",
        "Retrieval",
        "Benchmark",
        "Learning",
    ][:keywords]
    papers = load_papers(ROOT / "tests" / "data" / "papers.json")
    return timed_fetch(papers, names, delay, datetime(2000, 1, 1, tzinfo=UTC))


def busy_keyword(count: int, delay: float) -> tuple[float, int]:
    """Fetch one keyword with `count` papers new since its last fetch; (seconds, requests)."""
    from helpers.fake_arxiv import busy_papers

    now = datetime.now(UTC)
    new = busy_papers(count, "Busy Topic", newest=now, spacing=timedelta(seconds=30))
    old = busy_papers(200, "Busy Topic", newest=now - timedelta(days=30), prefix="2510")
    return timed_fetch(new + old, ["Busy Topic"], delay, now - timedelta(days=3))


# --- the email's size ------------------------------------------------------------------------

BEFORE_BYTES_PER_PAPER = 1718  # the previous design, full abstracts (measured at 4d290be)


def email_sizes() -> dict[str, float]:
    """Return the HTML bytes each paper adds to a digest, for each abstracts setting."""
    from dataclasses import replace
    from datetime import date

    from helpers.fake_arxiv import load_papers

    from digest.links import Links
    from digest.models import Paper
    from digest.render import Renderer, make_environment

    fixture = [
        Paper(
            id=p.id,
            version=p.version,
            title=p.title,
            authors=tuple(p.authors),
            abstract=p.abstract,
            comment=p.comment,
            published=p.published,
            updated=p.updated,
            primary_category=p.primary_category,
            categories=tuple(p.categories),
        )
        for p in load_papers(ROOT / "tests" / "data" / "papers.json")
    ]
    sizes = {}
    for mode in ("snippet", "full", "none"):
        renderer = Renderer(make_environment(), "Daily Papers", None, "papers@example.org", mode)
        html = {}
        for count in (1, 101):
            papers = [replace(fixture[i % len(fixture)], id=f"2611.{i:05d}") for i in range(count)]
            topics = [("Topic A", [(p, ()) for p in papers[: count // 2 or 1]])]
            topics.append(("Topic B", [(p, ()) for p in papers[count // 2 or 1 :]]))
            body = renderer.edition(
                topics,
                date(2026, 11, 27),
                max_bytes=10**9,
                feedback=Links("https://papers.example.org").feedback,  # 👍 / 👎 as mailed
            )
            html[count] = len(body.html.encode())
        sizes[mode] = (html[101] - html[1]) / 100
        sizes[f"{mode}_100"] = html[101] * 100 / 101
    return sizes


# --- orchestration -----------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=10_000)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--delay-ms", type=float, default=10.0, help="per SMTP reply")
    parser.add_argument("--naive", type=int, default=200, help="messages for smtplib")
    parser.add_argument("--keywords", type=int, default=5)
    parser.add_argument("--fetch-delay", type=float, default=3.0, help="delay_seconds")
    parser.add_argument("--busy", type=int, default=1000, help="new papers of the busy keyword")
    parser.add_argument("--repeat", type=int, default=3, help="runs of the send measures")
    parser.add_argument(
        "--dkim", choices=["rsa", "ed25519"], help="sign with DKIM, a fresh key of this kind"
    )
    parser.add_argument(
        "--digest-only",
        action="store_true",
        help="skip the two baselines and the fetch phase (for the memory check)",
    )
    reading = parser.add_argument_group("the reading room")
    reading.add_argument("--reading-only", action="store_true", help="run this section alone")
    reading.add_argument("--no-reading", action="store_true", help="skip this section")
    reading.add_argument("--reading-papers", type=int, default=100_000, help="in the history")
    reading.add_argument("--reading-small", type=int, default=1000, help="the cycle steps' other")
    reading.add_argument("--reading-seconds", type=float, default=5.0, help="each measure")
    reading.add_argument("--reading-rounds", type=int, default=3, help="rounds of the measures")
    reading.add_argument("--reading-connections", type=int, default=16, help="client's")
    reading.add_argument("--reading-steps", type=int, default=21, help="cycle step repetitions")
    reading.add_argument(
        "--reading-db",
        type=Path,
        help="keep the written histories in this folder and reuse them (they take minutes)",
    )
    planning = parser.add_argument_group("planning with mixed schedules")
    planning.add_argument("--planning-only", action="store_true", help="run this section alone")
    planning.add_argument("--no-planning", action="store_true", help="skip this section")
    planning.add_argument("--planning-subscribers", type=int, default=100_000, help="CSV rows")
    planning.add_argument("--planning-web", type=int, default=10_000, help="web sign-ups")
    planning.add_argument("--planning-repeat", type=int, default=3, help="runs of each")
    planning.add_argument("--planning-cycles", type=int, default=7, help="earlier daily cycles")
    abuse = parser.add_argument_group("the public site under abuse")
    abuse.add_argument("--abuse-only", action="store_true", help="run this section alone")
    abuse.add_argument("--no-abuse", action="store_true", help="skip this section")
    abuse.add_argument("--abuse-clients", type=int, default=16, help="searching at once")
    abuse.add_argument("--abuse-seconds", type=float, default=30.0, help="of measuring")
    topics = parser.add_argument_group("own topics")
    topics.add_argument("--topics-only", action="store_true", help="run this section alone")
    topics.add_argument("--no-topics", action="store_true", help="skip this section")
    topics.add_argument("--topics-readers", type=int, default=10_000, help="with own topics")
    topics.add_argument("--topics-papers", type=int, default=2_000, help="the day's papers")
    parser.add_argument(
        "--no-personal", action="store_true", help="skip the send phase of personal bodies"
    )
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return digest_child(args.child)
    if args.reading_only:
        return reading_room_section(args)
    if args.planning_only:
        return planning_section(args)
    if args.abuse_only:
        return abuse_section(args)
    if args.topics_only:
        return topics_section(args)

    port = free_port()
    ready = multiprocessing.Event()
    server = multiprocessing.Process(
        target=serve_smtp, args=(port, args.delay_ms / 1000, ready), daemon=True
    )
    server.start()
    ready.wait(30)
    runs: dict[str, list[float]] = {
        "digest": [], "raw": [], "naive": [], "rss": [], "personal": [], "personal_rss": [],
        "personal_plan": [], "personal_send_rss": [],
    }  # fmt: skip
    try:
        for run in range(1, args.repeat + 1):
            print(
                f"run {run}/{args.repeat}: digest's send phase ({args.subscribers} subscribers, "
                f"{args.connections} connections, {args.delay_ms:g} ms a reply) ...",
                flush=True,
            )
            with tempfile.TemporaryDirectory() as tmp:
                folder = Path(tmp)
                write_setup(folder, port, args)
                child = subprocess.run(
                    [sys.executable, __file__, "--child", str(folder)],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                result = json.loads(child.stdout.strip().splitlines()[-1])
                # Pre-built, in SMTP's canonical CRLF form (smtplib sends bytes as they are).
                messages = [
                    (folder / f"sample{n}.eml").read_bytes().replace(b"\n", b"\r\n")
                    for n in range(len(KEYSETS))
                ]
            runs["digest"].append(result["sent"] / result["send_seconds"])
            runs["rss"].append(result["peak_rss_mb"])
            if not args.no_personal:
                print(f"run {run}/{args.repeat}: the same, every body personal ...", flush=True)
                with tempfile.TemporaryDirectory() as tmp:
                    write_setup(Path(tmp), port, args, personal=True)
                    child = subprocess.run(
                        [sys.executable, __file__, "--child", tmp],
                        capture_output=True,
                        text=True,
                        check=True,
                    )
                found = json.loads(child.stdout.strip().splitlines()[-1])
                runs["personal"].append(found["sent"] / found["send_seconds"])
                runs["personal_rss"].append(found["peak_rss_mb"])
                runs["personal_plan"].append(found["plan_seconds"])
                runs["personal_send_rss"].append(found["peak_rss_mb"] - found["plan_rss_mb"])
            if args.digest_only:
                runs["raw"].append(float("nan"))
                runs["naive"].append(float("nan"))
                continue
            print(f"run {run}/{args.repeat}: raw aiosmtplib pool, naive smtplib ...", flush=True)
            raw = asyncio.run(raw_pool(port, messages, args.subscribers, args.connections))
            runs["raw"].append(args.subscribers / raw)
            runs["naive"].append(args.naive / naive(port, messages, args.naive))
    finally:
        server.terminate()
        server.join()
    fetches = {"fetch": (float("nan"), 2), "busy": (float("nan"), 2)}
    if not args.digest_only:
        print(
            f"fetch phase: {args.keywords} keywords, delay {args.fetch_delay:g} s ...", flush=True
        )
        fetches["fetch"] = fetch_phase(args.keywords, args.fetch_delay)
        print(f"busy keyword: {args.busy} new papers, delay {args.fetch_delay:g} s ...", flush=True)
        fetches["busy"] = busy_keyword(args.busy, args.fetch_delay)
    report(args, result, runs, fetches, email_sizes())
    if not (args.digest_only or args.no_planning):
        planning_section(args)
    if not (args.digest_only or args.no_reading):
        reading_room_section(args)
    if not (args.digest_only or args.no_abuse):
        abuse_section(args)
    if not (args.digest_only or args.no_topics):
        topics_section(args)


def topics_section(args: argparse.Namespace) -> None:
    """Time matching readers' own topics against a day of papers, and print the figures."""
    sys.path.insert(0, str(ROOT / "bench"))
    import own_topics

    own_topics.matching_section(args.topics_readers, 5, args.topics_papers, 0.30, 3)
    import plan_own  # planning 10,000 readers with own topics against without
    import plan_rank  # planning with ranking (a third of the readers voting) against without

    plan_own.main(["--repeat", "2"])
    plan_rank.section(repeat=2)


def planning_section(args: argparse.Namespace) -> None:
    """Time plan() for mixed schedules against all daily, and print the figures."""
    import plan_mix

    options = plan_mix.Options(
        subscribers=args.planning_subscribers,
        web=args.planning_web,
        repeat=args.planning_repeat,
        cycles=args.planning_cycles,
    )
    with tempfile.TemporaryDirectory() as tmp:
        found = plan_mix.run(Path(tmp), options, say=progress)
    plan_mix.report(found, options)


def reading_room_section(args: argparse.Namespace) -> None:
    """Measure the reading room against a long history and print its figures."""
    import reading_room

    options = reading_room.Options(
        papers=args.reading_papers,
        small=args.reading_small,
        seconds=args.reading_seconds,
        rounds=args.reading_rounds,
        concurrency=args.reading_connections,
        steps=args.reading_steps,
        keep=args.reading_db,
    )
    with tempfile.TemporaryDirectory() as tmp:
        found = reading_room.run(Path(tmp), options, free_port(), say=progress)
    reading_room.report(found, options)


def abuse_section(args: argparse.Namespace) -> None:
    """Hammer the search while timing unsubscribe and /healthz, and print the figures."""
    import abuse

    options = abuse.Abuse(
        papers=args.reading_papers,
        clients=args.abuse_clients,
        seconds=args.abuse_seconds,
        keep=args.reading_db,
    )
    with tempfile.TemporaryDirectory() as tmp:
        found = abuse.run(Path(tmp), options, free_port(), say=progress)
    abuse.report(found, options)


def progress(line: str) -> None:
    """Print a progress line at once."""
    print(line, flush=True)


def write_setup(folder: Path, port: int, args: argparse.Namespace, personal: bool = False) -> None:
    """Write settings.toml and a subscribers.csv of N rows spread over a few keyword sets
    (`personal`: harvesting cs.LG, for the subscribers' own topics)."""
    keywords = "".join(f'[[keywords]]\nname = "{k}"\n' for k in KEYWORDS)
    (folder / "settings.toml").write_text(
        '[digest]\nbase_url = "https://papers.example.org"\n'
        + ('[arxiv]\nharvest = ["cs.LG"]\n' if personal else "")
        + f"{keywords}"
        f'[smtp]\nhost = "127.0.0.1"\nport = {port}\nsender = "Papers <papers@example.org>"\n'
        f"connections = {args.connections}\ntimeout = 30\n"
        + (write_dkim_key(folder, args.dkim) if args.dkim else "")
    )
    with open(folder / "subscribers.csv", "w") as csv:
        csv.write("email,name,keywords\n")
        for i in range(args.subscribers):
            csv.write(f"user{i:06d}@example.org,User {i},{KEYSETS[i % len(KEYSETS)]}\n")


def report(args, result, runs, fetches, email):
    """Print the medians, the ratios and the targets."""
    med = {name: statistics.median(values) for name, values in runs.items() if values}
    floors = {name: args.fetch_delay * (requests - 1) for name, (_, requests) in fetches.items()}
    spread = {k: f"{min(v):.0f}-{max(v):.0f}" for k, v in runs.items() if v and "rss" not in k}
    print()
    print(
        f"mean message size {result['message_bytes'] / 1024:.1f} KB; planning "
        f"{result['planned']} messages took {result['plan_seconds']:.1f} s; medians of "
        f"{args.repeat} run(s) (range in brackets)"
    )
    print(f"  digest send phase     {med['digest']:8.1f} msg/s  [{spread['digest']}]")
    print(f"  composing a message   {result['compose_ms']:8.2f} ms (its vote tokens signed too)")
    if runs["personal"]:
        print(
            f"  every body personal   {med['personal']:8.1f} msg/s  [{spread['personal']}] "
            f"(each made and rendered when sent; planning took "
            f"{statistics.median(runs['personal_plan']):.1f} s, peak RSS "
            f"{max(runs['personal_rss']):.0f} MB, of which sending added "
            f"{max(runs['personal_send_rss']):.0f} MB)"
        )
    if result.get("sign_ms") is not None:
        print(f"  DKIM ({args.dkim}) signing  {result['sign_ms']:8.2f} ms a message (dkimpy)")
    print(f"  raw aiosmtplib pool   {med['raw']:8.1f} msg/s  [{spread['raw']}]")
    print(
        f"  naive smtplib         {med['naive']:8.1f} msg/s  [{spread['naive']}] "
        f"({args.naive} messages)"
    )
    for name, label in (("fetch", "fetch phase"), ("busy", f"busy keyword ({args.busy} new)")):
        seconds, requests = fetches[name]
        print(
            f"  {label:<22}{seconds:8.2f} s for {requests} requests; floor "
            f"{args.fetch_delay:g} s x {requests - 1} = {floors[name]:.2f} s"
        )
    print(
        f"  email HTML per paper  {email['snippet']:6.0f} B with snippets (the default), "
        f"{email['full']:.0f} B with full abstracts, {email['none']:.0f} B without; the previous "
        f"design: {BEFORE_BYTES_PER_PAPER} B with full abstracts"
    )
    checks = [
        ("digest / raw pool", med["digest"] / med["raw"], ">= 0.8", lambda v: v >= 0.8),
        ("digest / naive", med["digest"] / med["naive"], ">= 5", lambda v: v >= 5),
        ("peak RSS of digest, MB", max(runs["rss"]), "<= 150 (100,000 subs)", lambda v: v <= 150),
        (
            "fetch wall / floor",
            fetches["fetch"][0] / floors["fetch"],
            "<= 1.05",
            lambda v: v <= 1.05,
        ),
        ("100 papers, snippets, KB", email["snippet_100"] / 1000, "<= 100", lambda v: v <= 100),
        (
            "busy keyword / floor",
            fetches["busy"][0] / floors["busy"],
            "<= 1.05",
            lambda v: v <= 1.05,
        ),
    ]
    if runs["personal"]:
        checks.append(
            (
                "personal / shared time",
                med["digest"] / med["personal"],
                "<= 2 (issue 19)",
                lambda v: v <= 2,
            )
        )
        checks.append(
            ("peak RSS, personal, MB", max(runs["personal_rss"]), "<= 150", lambda v: v <= 150)
        )
    for name, value, target, ok in checks:
        if value != value:  # NaN: not measured in this run (--digest-only)
            continue
        print(f"  {name:<24}{value:8.2f}   target {target:<22} {'ok' if ok(value) else 'MISSED'}")


if __name__ == "__main__":
    main()
