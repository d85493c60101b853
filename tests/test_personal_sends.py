"""Personal editions through whole cycles: planned as orders, made and rendered when sent,
mailed once, crash-safe, dropped once sent; shared editions still rendered when planned."""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import pytest
from helpers.builders import SECRET, make_paper, settings_text
from helpers.cycles import DAY1, GNN, LLM, papers_in
from helpers.mailserver import FaultyHandler, MailServer

from digest import editions as editions_module
from digest.config import load_settings
from digest.editions import EditionBuilder
from digest.orders import Order
from digest.pipeline import render_preview, run_once
from digest.store import Store

DAY2, DAY3 = DAY1 + timedelta(days=1), DAY1 + timedelta(days=2)
READERS = f"""email,name,keywords
alan@example.org,Alan Turing,{GNN}
bea@example.org,Bea,{GNN}
grace@example.org,Grace Hopper,{LLM}
"""
OWN = {"alan@example.org": ["sparse attention"], "bea@example.org": ["sparse attention"]}
FIRST = make_paper("2511.10001", f"{GNN} basics", DAY1 - timedelta(hours=10))
A = make_paper("2511.20001", "Sparse attention for long documents", DAY2 - timedelta(hours=9))
B = make_paper("2511.20002", f"{GNN} layers", DAY2 - timedelta(hours=10))
L = make_paper("2511.20003", f"{LLM} pretraining", DAY2 - timedelta(hours=11))
F = make_paper("2511.30001", "Sparse attention revisited", DAY3 - timedelta(hours=9))


def harvesting(text: str) -> str:
    """Return settings text that harvests cs.LG."""
    return text.replace("[arxiv]\n", '[arxiv]\nharvest = ["cs.LG"]\n', 1)


@pytest.fixture
def day_one(make_settings, fake_arxiv, mail_server):
    """Run day one (no own topics yet), then save Alan's and Bea's: the same line."""
    settings = make_settings(subscribers=READERS, keywords=(GNN, LLM))
    settings.path.write_text(harvesting(settings.path.read_text()))
    settings = load_settings(settings.path)
    fake_arxiv.papers[:] = [FIRST]
    assert run_once(settings, clock=lambda: DAY1).ok
    with Store(settings.database) as store:
        for email, lines in OWN.items():
            store.save_own_topics(email, "", "csv", lines, DAY1)
    fake_arxiv.papers += [A, B, L]
    mail_server.handler.received.clear()
    return settings


class Seen:
    """The editions the send phase read from the store, as stored (before rendering)."""

    def __init__(self, monkeypatch):
        self.editions: dict[int, object] = {}
        self.reads: collections.Counter[int] = collections.Counter()
        real = Store.edition

        def edition(store, edition_id):
            found = real(store, edition_id)
            self.editions[edition_id] = found
            self.reads[edition_id] += 1
            return found

        monkeypatch.setattr(Store, "edition", edition)


def outbox(settings, cycle_id: int) -> dict[str, int]:
    with Store(settings.database) as store:
        return dict(
            store.db.execute("SELECT email, edition_id FROM outbox WHERE cycle_id = ?", [cycle_id])
        )


def test_own_topic_digests_are_planned_as_orders_and_rendered_when_sent(
    day_one, mail_server, fake_arxiv, monkeypatch
):
    seen = Seen(monkeypatch)
    report = run_once(day_one, clock=lambda: DAY2)
    assert report.ok and report.delivery.sent == 3
    ids = outbox(day_one, 2)
    alan, grace = seen.editions[ids["alan@example.org"]], seen.editions[ids["grace@example.org"]]
    assert alan.recipe is not None and (alan.text, alan.html) == ("", "")  # planned, not rendered
    assert grace.recipe is None and grace.html  # shared: rendered when planned, as before
    assert ids["bea@example.org"] == ids["alan@example.org"]  # the same topics: one edition
    assert seen.reads[ids["alan@example.org"]] == 1  # rendered once for both
    mail = mail_server.by_recipient()
    for email in OWN:
        (message,) = mail[email]
        assert papers_in(message) == [B.id, A.id]  # their keyword's, then their own topic's
        text = message.get_body(("plain",)).get_content()
        assert "== sparse attention (1) ==" in text and email in text
        assert "DIGEST" not in text + message.get_body(("html",)).get_content()  # no placeholder
    with Store(day_one.database) as store:  # all sent: the recipe is dropped, the row kept
        rows = store.db.execute("SELECT recipe, text FROM editions WHERE cycle_id = 2").fetchall()
    assert sorted(rows, key=str) == sorted([(None, ""), (None, grace.text)], key=str)
    # A preview makes the next personal digest from its order and records nothing.
    fake_arxiv.papers.append(F)
    preview = render_preview(day_one, "bea@example.org", clock=lambda: DAY3)
    assert preview is not None and papers_in(preview) == [F.id]
    with Store(day_one.database) as store:
        assert store.db.execute("SELECT count(*) FROM editions").fetchone() == (3,)


def test_a_plan_killed_after_its_orders_were_written_is_planned_again_alike(
    day_one, mail_server, monkeypatch
):
    seen = Seen(monkeypatch)
    with monkeypatch.context() as patch:
        patch.setattr(Store, "mark_planned", lambda *a: (_ for _ in ()).throw(KeyboardInterrupt))
        with pytest.raises(KeyboardInterrupt):
            run_once(day_one, clock=lambda: DAY2)
    with Store(day_one.database) as store:
        (crashed,) = store.db.execute(
            "SELECT recipe FROM editions WHERE cycle_id = 2 AND recipe IS NOT NULL"
        ).fetchone()  # written in the plan's batches, invisible to the send phase
        assert store.count_pending() == 0
    assert mail_server.received == []
    report = run_once(day_one, clock=lambda: DAY2 + timedelta(minutes=5))
    assert report.ok and report.delivery.sent == 3
    assert sorted(mail_server.by_recipient()) == sorted([*OWN, "grace@example.org"])
    assert collections.Counter(
        r for m in mail_server.received for r in m.rcpt_tos
    ) == dict.fromkeys([*OWN, "grace@example.org"], 1)
    with Store(day_one.database) as store:
        assert store.db.execute("SELECT count(*) FROM editions WHERE cycle_id = 2").fetchone() == (
            0,
        )  # the crashed plan's editions went with it
    ids = outbox(day_one, 3)
    assert Order.loads(seen.editions[ids["alan@example.org"]].recipe) == Order.loads(crashed)


@pytest.mark.slow
def test_kill_9_mid_send_of_personal_editions_then_restart_mails_each_once_alike(
    fake_arxiv, tmp_path
):
    handler = FaultyHandler(delay=0.01)  # ~30 ms a message, like a real relay
    total, pool = 150, 8
    now = datetime.now(UTC).replace(microsecond=0)
    fake_arxiv.papers[:] = [
        make_paper(f"2511.4{i:04d}", f"Results on zq{i}x graphs", now - timedelta(minutes=30 + i))
        for i in range(total)
    ]
    with MailServer(handler) as server:
        config = tmp_path / "settings.toml"
        text = settings_text(api_url=fake_arxiv.url, smtp_port=server.port, keywords=(GNN,))
        config.write_text(
            harvesting(text)
            .replace("first_run_days = 2", "first_run_days = 10000")
            .replace("connections = 2", f"connections = {pool}")
        )
        rows = [f"u{i:03d}@example.org,User {i},{GNN}" for i in range(total)]
        (tmp_path / "subscribers.csv").write_text("email,name,keywords\n" + "\n".join(rows))
        with Store(tmp_path / "digest.db") as store:  # each their own topic: one paper each
            for i in range(total):
                store.save_own_topics(f"u{i:03d}@example.org", "", "csv", [f"zq{i}x"], now)
        env = {**os.environ, "DIGEST_CONFIG": str(config), "DIGEST_SECRET": SECRET}
        command = [sys.executable, "-m", "digest", "once"]
        victim = subprocess.Popen(command, env=env, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while len(handler.received) < total // 3:
            assert victim.poll() is None, "the cycle ended before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.005)
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        assert len(handler.received) < total
        with Store(tmp_path / "digest.db") as store:  # what waits keeps its recipe
            waiting = store.db.execute(
                "SELECT count(*) FROM outbox JOIN editions ON editions.id = outbox.edition_id "
                "WHERE status = 'pending' AND recipe IS NOT NULL"
            ).fetchone()[0]
        assert waiting > 0
        again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
        assert again.returncode == 0, again.stderr
        received = list(handler.received)
    texts: dict[str, set[str]] = collections.defaultdict(set)
    for item in received:
        message = item.message
        (to,) = item.rcpt_tos
        i = int(to[1:4])
        body = message.get_body(("plain",)).get_content()
        assert f"== zq{i}x (1) ==" in body and f"2511.4{i:04d}" in body  # their own paper
        texts[to].add(body)
    assert len(texts) == total  # every planned message was delivered
    assert len(received) - total <= pool  # only messages in flight at the kill came twice
    assert all(len(bodies) == 1 for bodies in texts.values())  # a second one: the same text
    with Store(tmp_path / "digest.db") as store:
        assert dict(store.db.execute("SELECT status, count(*) FROM outbox GROUP BY status")) == {
            "sent": total
        }
        assert store.db.execute(
            "SELECT count(*), count(recipe), sum(length(html)) FROM editions"
        ).fetchone() == (total, 0, 0)  # every body personal, every recipe dropped once sent


def test_an_order_made_when_sent_is_the_recipe_planning_would_have_made(
    make_settings, fake_arxiv, mail_server, monkeypatch
):
    readers = f"email,name,keywords\nalan@example.org,Alan,{GNN}\nada@example.org,Ada,{GNN};{LLM}\n"
    settings = make_settings(subscribers=readers, keywords=(GNN, LLM))
    settings.path.write_text(harvesting(settings.path.read_text()))
    settings = load_settings(settings.path)
    fake_arxiv.papers[:] = []
    assert run_once(settings, clock=lambda: DAY1).ok
    with Store(settings.database) as store:
        store.save_own_topics("alan@example.org", "", "csv", OWN["alan@example.org"], DAY1)
        store.save_own_topics("ada@example.org", "", "csv", ["au:Turing", "pretraining"], DAY1)
        store.record_papers([L])
        store.record_vote("ada@example.org", L.id, 1, DAY1)  # her votes order her digest
    fake_arxiv.papers += [A, B, L]
    would: dict = {}  # what the planning builder makes of each personal order, as it plans
    real = editions_module.Editions._edition

    def keep(self, order):
        would[order] = self.builder.recipe(order) if order.personal else None
        return real(self, order)

    monkeypatch.setattr(editions_module.Editions, "_edition", keep)
    seen = Seen(monkeypatch)
    assert run_once(settings, clock=lambda: DAY2).ok
    ids = outbox(settings, 2)
    orders = {email: Order.loads(seen.editions[ids[email]].recipe) for email in ids}
    assert orders["ada@example.org"].voter and orders["alan@example.org"].own
    assert set(would) >= set(orders.values())
    with Store(settings.database) as store:
        again = EditionBuilder.for_cycle(settings, store, 2)
        made = {order: again.recipe(order) for order in orders.values()}
        again.close()
    assert made == {order: would[order] for order in orders.values()}
    assert made[orders["ada@example.org"]].reasons  # her vote lifted a paper, and says so
    tagged = (L.id, ("au:Turing", "pretraining"))  # also in both her own topics
    assert ("Large Language Model", (tagged,)) in made[orders["ada@example.org"]].sections
