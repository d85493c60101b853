"""GET /metrics as Prometheus reads it, with the values of real cycles; who may read it; the
alert rules of deploy/ against the metrics it serves."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import aiohttp
import pytest
import yaml
from aiohttp.test_utils import TestServer
from helpers.cycles import DAY1
from helpers.operations import GONE, METRICS_TOKEN, history
from prometheus_client.parser import text_string_to_metric_families

from digest.config import ConfigError
from digest.store import SCHEMA, Store
from digest.store.schema import add_functions
from digest.web import make_app

RULES = Path(__file__).parent.parent / "deploy" / "prometheus" / "digest-alerts.yml"
REMOTE = {"X-Forwarded-For": "198.51.100.7"}  # the client of a proxy: another host


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """Two days of real cycles (see helpers.operations)."""
    with history(tmp_path_factory.mktemp("metrics"), days=2) as found:
        yield found


@pytest.fixture
async def served(recorded):
    """Serve the recorded list's endpoint; yield its URL and a client."""
    server = TestServer(make_app(recorded.settings), host="127.0.0.1")
    await server.start_server()
    async with aiohttp.ClientSession() as client:
        yield str(server.make_url("")).rstrip("/"), client
    await server.close()


async def scrape(served, **headers: str) -> tuple[int, str]:
    url, client = served
    async with client.get(url + "/metrics", headers=headers) as answer:
        return answer.status, await answer.text()


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Return every sample prometheus_client's own parser reads, by name and labels."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(found, name: str, **labels: str) -> float:
    return found[(name, tuple(sorted(labels.items())))]


async def test_prometheus_reads_every_metric_with_the_values_of_the_cycles(recorded, served):
    status, text = await scrape(served)
    assert status == 200
    found = samples(text)
    # Two cycles, both partial (a keyword failed, a digest still waits), the last at DAY2.
    assert value(found, "digest_cycles_total", outcome="partial") == 2
    assert value(found, "digest_cycles_total", outcome="ok") == 0
    assert value(found, "digest_last_success_timestamp_seconds") == recorded.cycles[-1].timestamp()
    assert value(found, "digest_cycle_duration_seconds_count") == 2
    assert value(found, "digest_fetch_duration_seconds_count") == 2
    # arXiv: what the fake received, keyword by keyword; the 503 was retried, the 404 failed.
    for name, requests in recorded.requests.items():
        assert value(found, "digest_arxiv_requests_total", keyword=name) == requests
    assert recorded.requests["Diffusion Model for Recommendation"] == 3
    assert value(found, "digest_arxiv_retries_total", keyword="Diffusion Model for Recommendation")
    assert value(found, "digest_arxiv_failures_total", keyword="Large Language Model") == 1
    assert value(found, "digest_arxiv_failures_total", keyword="Graph Neural Network") == 0
    # New papers per topic: as the history marked them news.
    with Store(recorded.settings.database) as store:
        news = dict(
            store.db.execute("SELECT keyword, count(*) FROM seen WHERE news = 1 GROUP BY keyword")
        )
    for keyword in recorded.settings.keywords:
        assert value(found, "digest_papers_new_total", topic=keyword.name) == news[keyword.key]
    # Mail: what the SMTP server accepted; Bea refused twice; Cid put off twice a cycle.
    assert value(found, "digest_mails_sent_total") == recorded.sent == 7
    assert value(found, "digest_mails_failed_total") == 2
    assert value(found, "digest_mails_deferred_total") == 6
    assert value(found, "digest_mails_bounced_total") == 1  # Ada's first digest, read later
    assert value(found, "digest_outbox_messages") == 2  # Cid's two digests wait
    assert value(found, "digest_outbox_oldest_message_timestamp_seconds") == DAY1.timestamp()
    assert value(found, "digest_channel_posts_total", channel="Lab", outcome="posted") == 2
    assert recorded.posts == 2
    assert value(found, "digest_channel_posts_waiting", channel="Lab") == 0
    listed = {dict(labels)["status"]: v for (name, labels), v in found.items()
              if name == "digest_subscribers"}  # fmt: skip
    assert listed == {
        "active": 5, "paused": 0, "pending": 1, "unsubscribed": 1, "bounced": 0,
        "complaint": 0, "deleted": 0, "invalid": 1,
    }  # fmt: skip
    assert GONE  # the one unsubscribed


async def test_requests_are_counted_by_route_and_status_and_searches_timed(served):
    url, client = served
    for path in ("/", "/search?q=graph", "/topics/graph-neural-network", "/no/such/page"):
        async with client.get(url + path) as answer:
            await answer.read()
    _, text = await scrape(served)
    found = samples(text)
    assert value(found, "digest_web_requests_total", route="/", status="200") == 1
    assert value(found, "digest_web_requests_total", route="/search", status="200") == 1
    assert value(found, "digest_web_requests_total", route="/topics/{slug}", status="200") == 1
    assert value(found, "digest_web_requests_total", route="unmatched", status="404") == 1
    assert value(found, "digest_search_duration_seconds_count") == 1
    assert value(found, "digest_search_duration_seconds_sum") > 0
    _, again = await scrape(served)  # the first scrape is counted too
    assert value(samples(again), "digest_web_requests_total", route="/metrics", status="200") == 1


async def test_another_host_needs_the_token(served):
    assert (await scrape(served, **REMOTE))[0] == 403
    assert (await scrape(served, **REMOTE, Authorization="Bearer wrong-token-0123456789"))[0] == 403
    assert (await scrape(served, **REMOTE, Authorization=f"Basic {METRICS_TOKEN}"))[0] == 403
    status, text = await scrape(served, **REMOTE, Authorization=f"Bearer {METRICS_TOKEN}")
    assert status == 200 and "digest_cycles_total" in text
    status, _ = await scrape(served, **{"X-Real-IP": "198.51.100.7"})  # any proxy header
    assert status == 403


async def test_wrong_tokens_are_refused_for_a_minute_past_ten(served):
    wrong = {**REMOTE, "Authorization": "Bearer wrong-token-0123456789"}
    statuses = [(await scrape(served, **wrong))[0] for _ in range(11)]
    assert statuses == [403] * 10 + [429]
    right = {**REMOTE, "Authorization": f"Bearer {METRICS_TOKEN}"}
    assert (await scrape(served, **right))[0] == 429  # that network waits, whatever it sends
    other = {"X-Forwarded-For": "203.0.113.9", "Authorization": f"Bearer {METRICS_TOKEN}"}
    assert (await scrape(served, **other))[0] == 200  # another network does not


async def test_a_flood_of_wrong_tokens_never_locks_out_this_machine(served):
    for n in range(60):  # sixty networks, one wrong token each
        wrong = {"X-Forwarded-For": f"198.51.{n}.7", "Authorization": "Bearer wrong-token-0123"}
        assert (await scrape(served, **wrong))[0] == 403
    right = {"X-Forwarded-For": "203.0.113.9", "Authorization": f"Bearer {METRICS_TOKEN}"}
    assert (await scrape(served, **right))[0] == 429  # from afar, everyone waits a minute
    assert (await scrape(served))[0] == 200  # the Prometheus of this machine does not


async def test_openmetrics_is_served_to_a_prometheus_that_asks_for_it(served):
    accept = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"
    url, client = served
    async with client.get(url + "/metrics", headers={"Accept": accept}) as answer:
        text = await answer.text()
        assert answer.headers["Content-Type"].startswith("application/openmetrics-text")
    assert text.endswith("# EOF\n") and "digest_mails_sent_total 7" in text


# --- deploy/'s alert rules (promtool is not on the test machines: read them as Prometheus) ---

FUNCTIONS = {
    "time", "increase", "rate", "delta", "deriv", "sum", "clamp_min", "max", "min", "absent",
    "changes", "by", "on", "without", "ignoring", "group_left", "and", "or", "unless", "bool",
    "offset", "humanizeDuration", "humanizePercentage", "humanize", "value", "labels",
}  # fmt: skip
DURATION = re.compile(r"^[0-9]+(ms|s|m|h|d|w|y)$")


def rules() -> list[dict]:
    data = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    return [rule for group in data["groups"] for rule in group["rules"]]


def test_the_alert_rules_are_well_formed_and_named_as_asked():
    found = rules()
    names = {rule["alert"] for rule in found}
    assert {"DigestNoSuccessfulCycle", "DigestBouncesHigh", "DigestOutboxNotDraining"} <= names
    for rule in found:
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule
        assert DURATION.match(rule.get("for", "0s")), rule
        assert rule["labels"]["severity"] in ("warning", "critical"), rule
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], rule
        expr = rule["expr"]
        depth = 0
        for char in expr:  # brackets balance, never close before they open
            depth += {"(": 1, ")": -1}.get(char, 0)
            assert depth >= 0, rule["alert"]
        assert depth == 0, rule["alert"]
        for window in re.findall(r"\[([^\]]+)\]", expr):
            assert DURATION.match(window), (rule["alert"], window)


async def test_the_alert_rules_read_metrics_that_are_served(served):
    _, text = await scrape(served)
    served_names = {name for name, _ in samples(text)}
    labels = {(k, v) for _, pairs in samples(text) for k, v in pairs}
    for rule in rules():
        expr = re.sub(r'"[^"]*"', '""', rule["expr"])  # label values: checked below
        expr = re.sub(r"\[[^\]]+\]", "", expr)  # range windows
        words = set(re.findall(r"[A-Za-z_:][A-Za-z0-9_:]*", expr)) - FUNCTIONS
        metrics = {w for w in words if w.startswith("digest_")}
        assert metrics, rule["alert"]
        assert metrics <= served_names, (rule["alert"], metrics - served_names)
        matchers = re.findall(r'(\w+)\s*(?:=~|!~|!=|=)\s*"([^"]*)"', rule["expr"])
        for name, pattern in matchers:
            values = {v for k, v in labels if k == name}
            assert values, (rule["alert"], name)
            for option in pattern.split("|"):
                assert option in values, (rule["alert"], name, option)
        leftover = words - metrics - {name for name, _ in matchers}
        assert not leftover, (rule["alert"], leftover)  # every word is PromQL or a metric


def test_the_migration_counts_the_news_of_the_cycles_before_it(tmp_path):
    """A database of the schema before: its cycles' news come from the history, their cost is
    unknown (the requests counters start at 0), and /metrics reads it at once."""
    path = tmp_path / "digest.db"
    before = next(i for i, script in enumerate(SCHEMA) if "CREATE TABLE fetches" in script)
    conn = sqlite3.connect(path)
    add_functions(conn)
    for script in SCHEMA[:before]:
        conn.executescript(script)
    conn.execute(f"PRAGMA user_version = {before}")
    stamp = DAY1.isoformat()
    conn.execute("INSERT INTO cycles (id, started_at, status) VALUES (1, ?, 'ok')", [stamp])
    for n, (key, news) in enumerate([("graph neural network", 1)] * 3 + [("harvest:cs.lg", 0)]):
        conn.execute(
            "INSERT INTO papers (id, version, title, authors, abstract, published, updated, "
            "primary_category, categories) VALUES (?, 1, 'T', '[]', '', ?, ?, 'cs.LG', '[]')",
            [f"2511.0000{n}", stamp, stamp],
        )
        conn.execute(
            "INSERT INTO seen (keyword, paper_id, cycle_id, first_seen, news) "
            "VALUES (?, ?, 1, ?, ?)",
            [key, f"2511.0000{n}", stamp, news],
        )
    conn.commit()
    conn.close()
    with Store(path) as store:
        fetches = store.counts().fetches
    assert fetches["graph neural network"].new == 3
    assert fetches["graph neural network"].requests == 0
    assert fetches["harvest:cs.lg"].new == 0


def test_a_short_metrics_token_is_refused_naming_its_key(make_settings):
    with pytest.raises(ConfigError) as caught:
        make_settings(extra='\n[web]\nmetrics_token = "short"\n')
    (problem,) = caught.value.problems
    assert "[web] metrics_token" in problem and "at least 16 characters" in problem


def test_the_mail_sums_a_connection_keeps_follow_each_later_change(tmp_path):
    """Settled cycles' sums are kept by a connection (a year of a big list is millions of
    rows): whatever changes after, its answer is a fresh connection's."""
    path = tmp_path / "digest.db"
    kept = Store(path)

    def plan(cycle: int, count: int) -> list[int]:
        kept.db.execute(
            "INSERT INTO cycles (id, started_at, status, planned_at) VALUES (?, ?, 'ok', ?)",
            [cycle, DAY1.isoformat(), DAY1.isoformat()],
        )
        kept.db.execute(
            "INSERT INTO editions (id, cycle_id, keywords, papers, subject, text, html, "
            "placeholders) VALUES (?, ?, '[]', 1, 's', 't', 'h', '{}')",
            [cycle, cycle],
        )
        kept.plan_messages(
            ({"cycle_id": cycle, "edition_id": cycle, "email": f"{n}@example.org", "name": "",
              "message_id": f"<{cycle}.{n}@example.org>"} for n in range(count)),
            DAY1,
        )  # fmt: skip
        return [m.id for m in kept.pending() if m.cycle_id == cycle]

    def same() -> None:
        with Store(path) as fresh:
            assert kept.mail_counts() == fresh.mail_counts()

    first = plan(1, 3)
    kept.mark_sent(first[0], "0@example.org", DAY1)
    kept.mark_failed(first[1], "451 busy", permanent=False)
    same()  # cycle 1 waits: nothing settled
    kept.mark_failed(first[1], "550 no", permanent=True)
    kept.mark_skipped(first[2], "unsubscribed")
    second = plan(2, 2)
    same()  # cycle 1 settles
    for message in second:
        kept.mark_sent(message, "x@example.org", DAY1)
    plan(3, 1)
    same()  # cycle 2 settles too
    assert kept.mail_counts().sent == 3 and kept.mail_counts().deferred == 1
    kept.close()
