"""The README's quick start without arXiv, run as written: it ends with mail in outbox/. And a
first cycle that keeps older papers for the archive only says so in its log."""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from helpers.builders import DATA
from helpers.cycles import DAY1
from helpers.fake_arxiv import dated_today, load_papers
from helpers.mailserver import free_port

from digest.pipeline import run_once

ROOT = Path(__file__).resolve().parent.parent


def readme_recipe() -> str:
    """Return the shell block of the README's "Without arXiv" section."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("### Without arXiv", 1)[1]
    match = re.search(r"```sh\n(.*?)```", section, re.S)
    assert match, "README.md: the quick start without arXiv has no sh block"
    return match[1]


@pytest.mark.slow
def test_the_offline_quick_start_ends_with_mail_in_the_outbox(tmp_path):
    recipe = readme_recipe()
    assert recipe.startswith("make install") and "make run" in recipe
    # What a clone has, and its .venv (this interpreter, digest importable), on another port.
    for name in ("settings.toml", "subscribers.csv"):
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copytree(ROOT / "tests" / "helpers", tmp_path / "tests" / "helpers")
    (tmp_path / "tests" / "data").mkdir()
    shutil.copy(DATA / "papers.json", tmp_path / "tests" / "data" / "papers.json")
    port = str(free_port())
    script = (
        recipe.replace("make install", ": make install", 1)
        .replace(".venv/bin/python", sys.executable)
        .replace("make run", f"{sys.executable} -m digest once")
        .replace("8089", port)
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("DIGEST_CONFIG", None)
    result = subprocess.run(
        ["bash", "-e", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    mails = sorted((tmp_path / "outbox" / "new").iterdir())
    assert len(mails) == 3, result.stderr  # ada, alan and grace each have news
    assert re.search(r"summary: .*3 emails sent", result.stderr), result.stderr
    assert "recorded for the archive only" not in result.stderr  # every paper is today's
    assert any(b"Continuous-time Discrete-space" in m.read_bytes() for m in mails)


def test_the_fake_dates_the_fixture_papers_to_the_last_day():
    papers = load_papers(DATA / "papers.json")
    now = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    moved = dated_today(papers, now)
    assert sorted(p.id for p in moved) == sorted(p.id for p in papers)
    assert all(now - p.updated <= (now - now.replace(hour=0)) * 2 for p in moved)
    newest = max(papers, key=lambda p: p.updated)
    assert next(p for p in moved if p.id == newest.id).updated == now.replace(hour=11)


def test_a_first_cycle_says_which_papers_it_keeps_for_the_archive_only(
    make_settings, fake_arxiv, caplog
):
    caplog.set_level(logging.INFO)  # the level `digest once` logs at without -v
    settings = make_settings(smtp=False)  # first_run_days = 2: most fixture papers are older
    report = run_once(settings, clock=lambda: DAY1)
    assert report.ok
    lines = [r.getMessage() for r in caplog.records if "for the archive only" in r.getMessage()]
    assert any(
        re.fullmatch(
            r"diff: Graph Neural Network: first fetch: \d+ papers updated before 2025-11-14 "
            r"\(first_run_days = 2\) recorded for the archive only, not mailed",
            line,
        )
        for line in lines
    ), lines
    second = run_once(settings, clock=lambda: DAY1.replace(day=17))
    assert second.ok
    assert len([r for r in caplog.records if "for the archive only" in r.getMessage()]) == len(
        lines
    )  # only a first fetch says so
