"""The database's schema: one script per version, each migrating from the one before."""

from __future__ import annotations

import sqlite3

from ..addresses import address_key, legacy_address_key

SCHEMA = [
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE papers (
        id TEXT PRIMARY KEY, version INTEGER NOT NULL, title TEXT NOT NULL,
        authors TEXT NOT NULL, abstract TEXT NOT NULL, comment TEXT,
        published TEXT NOT NULL, updated TEXT NOT NULL, primary_category TEXT NOT NULL,
        categories TEXT NOT NULL, doi TEXT, journal_ref TEXT);
    CREATE TABLE keywords (
        key TEXT PRIMARY KEY, first_seen TEXT NOT NULL, last_success TEXT NOT NULL,
        last_count INTEGER NOT NULL);
    CREATE TABLE seen (
        keyword TEXT NOT NULL, paper_id TEXT NOT NULL REFERENCES papers(id),
        cycle_id INTEGER NOT NULL, first_seen TEXT NOT NULL, PRIMARY KEY (keyword, paper_id));
    CREATE INDEX seen_paper ON seen (paper_id);
    CREATE TABLE cycles (
        id INTEGER PRIMARY KEY, started_at TEXT NOT NULL, finished_at TEXT,
        status TEXT NOT NULL, summary TEXT);
    CREATE TABLE editions (
        id INTEGER PRIMARY KEY, cycle_id INTEGER NOT NULL REFERENCES cycles(id),
        keywords TEXT NOT NULL, papers INTEGER NOT NULL, subject TEXT NOT NULL,
        text TEXT NOT NULL, html TEXT NOT NULL, placeholders TEXT NOT NULL);
    CREATE TABLE outbox (
        id INTEGER PRIMARY KEY, cycle_id INTEGER NOT NULL REFERENCES cycles(id),
        edition_id INTEGER NOT NULL REFERENCES editions(id), email TEXT NOT NULL,
        name TEXT NOT NULL, message_id TEXT NOT NULL, status TEXT NOT NULL DEFAULT 'pending',
        attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT, planned_at TEXT NOT NULL,
        sent_at TEXT);
    CREATE INDEX outbox_status ON outbox (status, id);
    CREATE TABLE recipients (id TEXT PRIMARY KEY, email TEXT NOT NULL);
    CREATE TABLE suppressions (
        email TEXT PRIMARY KEY, reason TEXT NOT NULL, created_at TEXT NOT NULL);
    """,
    """
    CREATE TABLE bounces (
        email TEXT PRIMARY KEY, failures INTEGER NOT NULL, last_error TEXT NOT NULL,
        updated_at TEXT NOT NULL);
    CREATE INDEX outbox_sent_at ON outbox (sent_at) WHERE sent_at IS NOT NULL;
    """,
    """
    ALTER TABLE keywords ADD COLUMN query TEXT;
    """,
    """
    ALTER TABLE keywords ADD COLUMN watermark TEXT;
    UPDATE keywords SET watermark = (
        SELECT max(papers.updated) FROM seen JOIN papers ON papers.id = seen.paper_id
        WHERE seen.keyword = keywords.key);
    """,
    """
    ALTER TABLE cycles ADD COLUMN planned_at TEXT;
    UPDATE cycles SET planned_at = started_at;
    """,
    # The reading room: which papers were news (mailed) in a cycle, each keyword's papers
    # newest first without reading its whole history, and full-text search.
    """
    ALTER TABLE seen ADD COLUMN news INTEGER NOT NULL DEFAULT 1;
    ALTER TABLE seen ADD COLUMN updated TEXT;
    UPDATE seen SET updated = (SELECT updated FROM papers WHERE papers.id = seen.paper_id);
    CREATE INDEX seen_keyword_updated ON seen (keyword, updated DESC, paper_id);
    CREATE INDEX seen_cycle ON seen (cycle_id, keyword);
    CREATE INDEX seen_keyword_cycle ON seen (keyword, cycle_id);
    CREATE VIRTUAL TABLE papers_fts USING fts5(
        title, abstract, authors, content='papers', content_rowid='rowid',
        tokenize='porter unicode61');
    CREATE TRIGGER papers_fts_insert AFTER INSERT ON papers BEGIN
        INSERT INTO papers_fts (rowid, title, abstract, authors)
        VALUES (new.rowid, new.title, new.abstract, new.authors);
    END;
    CREATE TRIGGER papers_fts_delete AFTER DELETE ON papers BEGIN
        INSERT INTO papers_fts (papers_fts, rowid, title, abstract, authors)
        VALUES ('delete', old.rowid, old.title, old.abstract, old.authors);
    END;
    CREATE TRIGGER papers_fts_update AFTER UPDATE ON papers BEGIN
        INSERT INTO papers_fts (papers_fts, rowid, title, abstract, authors)
        VALUES ('delete', old.rowid, old.title, old.abstract, old.authors);
        INSERT INTO papers_fts (rowid, title, abstract, authors)
        VALUES (new.rowid, new.title, new.abstract, new.authors);
    END;
    INSERT INTO papers_fts (papers_fts) VALUES ('rebuild');
    """,
    # People's own choices (they win over their subscribers.csv row) and web sign-ups.
    """
    CREATE TABLE people (
        key TEXT PRIMARY KEY, email TEXT NOT NULL, name TEXT NOT NULL, source TEXT NOT NULL,
        topics TEXT, frequency TEXT, weekday INTEGER, paused_until TEXT, abstracts TEXT,
        last_cycle INTEGER, last_sent_on TEXT, confirmed_at TEXT, updated_at TEXT NOT NULL);
    CREATE TABLE signups (
        nonce TEXT PRIMARY KEY, key TEXT NOT NULL, email TEXT NOT NULL, name TEXT NOT NULL,
        topics TEXT NOT NULL, created_at TEXT NOT NULL, confirmed_at TEXT);
    CREATE INDEX signups_key ON signups (key, created_at);
    """,
    # What each mailed person's manage link shows without reading subscribers.csv.
    """
    ALTER TABLE recipients ADD COLUMN name TEXT;
    ALTER TABLE recipients ADD COLUMN topics TEXT;
    ALTER TABLE recipients ADD COLUMN source TEXT;
    """,
    # Bounces and complaints read from the bounce mailbox: one row per report and address, so
    # no report counts twice; `digest` is the Message-ID of the mail it reports on.
    """
    CREATE TABLE reports (
        message_id TEXT NOT NULL, email TEXT NOT NULL, kind TEXT NOT NULL,
        status TEXT NOT NULL, digest TEXT NOT NULL, counts INTEGER NOT NULL,
        received_at TEXT NOT NULL, PRIMARY KEY (message_id, email));
    CREATE INDEX reports_email ON reports (email, received_at);
    """,
    # The web's emails (a sign-up's confirmation or note), each with its turn (`at`, Unix
    # seconds) under [smtp] rate_limit and hourly_limit, shared with the digests' sends.
    """
    CREATE TABLE notice_sends (
        id INTEGER PRIMARY KEY, nonce TEXT NOT NULL UNIQUE, kind TEXT NOT NULL,
        at REAL NOT NULL, sent_at TEXT);
    CREATE INDEX notice_sends_at ON notice_sends (at);
    """,
    # The sign-up form's limits: each form token is used once (kept until it expires), and
    # each email the form sent, by a keyed hash of the mailbox (not the address), for 30 days.
    """
    CREATE TABLE form_tokens (id TEXT PRIMARY KEY, expires_at TEXT NOT NULL);
    CREATE INDEX form_tokens_expires ON form_tokens (expires_at);
    CREATE TABLE form_mails (mailbox TEXT NOT NULL, at TEXT NOT NULL);
    CREATE INDEX form_mails_mailbox ON form_mails (mailbox, at);
    CREATE INDEX form_mails_at ON form_mails (at);
    """,
    # Keys that tell look-alikes apart (a long s is not an s; before, case folding merged them):
    # address_key() and legacy_address_key() are the SQL functions Database registers. Rows that
    # keep an address get its new key (one another row has already is left alone: nothing
    # merges). Suppressions, bounces and reports keep only the old key: each address known here
    # that had it gets a copy under its own new key, so no one who unsubscribed is mailed again.
    """
    CREATE TEMP TABLE rekeyed AS
        SELECT email, legacy_address_key(email) AS old, address_key(email) AS new FROM (
            SELECT email FROM people UNION SELECT email FROM signups
            UNION SELECT email FROM recipients UNION SELECT email FROM outbox)
        WHERE address_key(email) <> legacy_address_key(email);
    UPDATE people SET key = address_key(email)
        WHERE email IN (SELECT email FROM rekeyed) AND NOT EXISTS (
            SELECT 1 FROM people AS other WHERE other.key = address_key(people.email));
    UPDATE signups SET key = address_key(email) WHERE email IN (SELECT email FROM rekeyed);
    INSERT OR IGNORE INTO suppressions (email, reason, created_at)
        SELECT rekeyed.new, reason, created_at FROM suppressions JOIN rekeyed
        ON suppressions.email = rekeyed.old;
    INSERT OR IGNORE INTO bounces (email, failures, last_error, updated_at)
        SELECT rekeyed.new, failures, last_error, updated_at FROM bounces JOIN rekeyed
        ON bounces.email = rekeyed.old;
    INSERT OR IGNORE INTO reports (message_id, email, kind, status, digest, counts, received_at)
        SELECT message_id, rekeyed.new, kind, status, digest, counts, received_at
        FROM reports JOIN rekeyed ON reports.email = rekeyed.old;
    DROP TABLE temp.rekeyed;
    """,
    # The version each person's manage links carry (none: 0): signing out raises it, and the
    # links of an older version no longer open their page. Unsubscribe links have none.
    """
    CREATE TABLE link_versions (
        key TEXT PRIMARY KEY, version INTEGER NOT NULL, revoked_at TEXT NOT NULL);
    """,
    # Issue 18: each person's own topic lines (a JSON list), and the cycle in which each paper
    # was first news of any topic or harvest (what own topics are matched against); papers
    # already announced count as arrived when they were first seen.
    """
    ALTER TABLE people ADD COLUMN own_topics TEXT;
    CREATE TABLE arrivals (
        paper_id TEXT PRIMARY KEY, cycle_id INTEGER NOT NULL, arrived_at TEXT NOT NULL);
    CREATE INDEX arrivals_cycle ON arrivals (cycle_id);
    CREATE INDEX arrivals_at ON arrivals (arrived_at);
    INSERT INTO arrivals (paper_id, cycle_id, arrived_at)
        SELECT paper_id, min(cycle_id), min(first_seen) FROM seen GROUP BY paper_id;
    """,
    # Issue 18 (harvest): the papers only harvest entries saw (keys 'harvest:...'), by their
    # papers.rowid, kept out of the reading room's search until a keyword sees them too. Kept
    # by triggers, whoever writes `seen`; the search skips them with one lookup per match.
    """
    CREATE TABLE harvest_only (rowid INTEGER PRIMARY KEY);
    CREATE TRIGGER harvest_only_seen AFTER INSERT ON seen
    WHEN new.keyword LIKE 'harvest:%' BEGIN
        INSERT OR IGNORE INTO harvest_only (rowid)
            SELECT rowid FROM papers WHERE id = new.paper_id AND NOT EXISTS (
                SELECT 1 FROM seen WHERE paper_id = new.paper_id
                AND keyword NOT LIKE 'harvest:%');
    END;
    CREATE TRIGGER harvest_only_public AFTER INSERT ON seen
    WHEN new.keyword NOT LIKE 'harvest:%' BEGIN
        DELETE FROM harvest_only WHERE rowid = (SELECT rowid FROM papers WHERE id = new.paper_id);
    END;
    CREATE TRIGGER harvest_only_unseen AFTER DELETE ON seen
    WHEN old.keyword NOT LIKE 'harvest:%' BEGIN
        INSERT OR IGNORE INTO harvest_only (rowid)
            SELECT rowid FROM papers WHERE id = old.paper_id
            AND EXISTS (SELECT 1 FROM seen WHERE paper_id = old.paper_id)
            AND NOT EXISTS (SELECT 1 FROM seen WHERE paper_id = old.paper_id
                AND keyword NOT LIKE 'harvest:%');
    END;
    CREATE TRIGGER harvest_only_gone AFTER DELETE ON papers BEGIN
        DELETE FROM harvest_only WHERE rowid = old.rowid;
    END;
    INSERT INTO harvest_only (rowid)
        SELECT rowid FROM papers WHERE id IN (
            SELECT paper_id FROM seen WHERE keyword LIKE 'harvest:%'
            EXCEPT SELECT paper_id FROM seen WHERE keyword NOT LIKE 'harvest:%');
    """,
    # Issue 19: each person's 👍 / 👎 on papers, by the key of their address: one vote per
    # person and paper (a new one replaces it, undo deletes it); ranking reads them in bulk.
    """
    CREATE TABLE votes (
        key TEXT NOT NULL, paper_id TEXT NOT NULL REFERENCES papers(id),
        vote INTEGER NOT NULL CHECK (vote IN (-1, 1)), voted_at TEXT NOT NULL,
        PRIMARY KEY (key, paper_id)) WITHOUT ROWID;
    """,
    # Issue 20: posts to the [[channels]] (team chats), an outbox of their own: planned with
    # the cycle's plan, one per channel with news, each sent in order and marked once posted.
    """
    CREATE TABLE posts (
        id INTEGER PRIMARY KEY, cycle_id INTEGER NOT NULL REFERENCES cycles(id),
        channel TEXT NOT NULL, day TEXT NOT NULL, content TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'pending', attempts INTEGER NOT NULL DEFAULT 0,
        last_error TEXT, planned_at TEXT NOT NULL, posted_at TEXT);
    CREATE INDEX posts_channel ON posts (channel, status, id);
    """,
    # Issue 21: what the operator's view reads (/metrics, /admin, digest stats). Each keyword's
    # fetch in a cycle: requests sent (retries among them), whether it failed, papers fetched,
    # papers new to readers (a harvest entry's: 0); each cycle's fetch time; the list by
    # status, counted by each cycle (a day's last count stands for the day). Cycles before
    # this version get their news from the history; what their fetches cost is unknown (NULL).
    """
    CREATE TABLE fetches (
        cycle_id INTEGER NOT NULL REFERENCES cycles(id), keyword TEXT NOT NULL,
        requests INTEGER, retries INTEGER, failed INTEGER NOT NULL DEFAULT 0, papers INTEGER,
        new INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (cycle_id, keyword));
    INSERT INTO fetches (cycle_id, keyword, new)
        SELECT seen.cycle_id, seen.keyword, sum(seen.news) FROM seen
        JOIN cycles ON cycles.id = seen.cycle_id GROUP BY seen.cycle_id, seen.keyword;
    ALTER TABLE cycles ADD COLUMN fetch_seconds REAL;
    CREATE TABLE census (
        day TEXT NOT NULL, status TEXT NOT NULL, count INTEGER NOT NULL,
        PRIMARY KEY (day, status));
    CREATE INDEX outbox_cycle ON outbox (cycle_id, status, attempts);
    """,
    # Issues 18/19: personal editions as recipes. A digest that is one reader's own (their own
    # topics, their ranking) keeps what renders it (JSON, recipes.Recipe) and is rendered when
    # sent: its subject, text and HTML stay empty. Its recipe is dropped once no message of it
    # waits in the outbox.
    """
    ALTER TABLE editions ADD COLUMN recipe TEXT;
    CREATE INDEX editions_recipe ON editions (id) WHERE recipe IS NOT NULL;
    """,
]
VERSION = len(SCHEMA)


def add_functions(conn: sqlite3.Connection) -> None:
    """Give a connection the SQL functions the migrations call (address_key and the old one)."""
    for function in (address_key, legacy_address_key):
        conn.create_function(function.__name__, 1, function, deterministic=True)
