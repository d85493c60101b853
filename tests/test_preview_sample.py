"""`digest preview`: a sample of the design from stored papers, offline and at once, for any
address; a typo'd, paused or unsubscribed address named as such before any fetch."""

from __future__ import annotations

import shutil
import time
from datetime import date, timedelta

import pytest
from click.testing import CliRunner
from helpers.builders import KEYWORDS, SECRET
from helpers.cycles import DAY1, recording, wide_first_run

from digest.cli import main
from digest.config import load_settings
from digest.pipeline import run_once
from digest.store import Store

FUTURE = date.today() + timedelta(days=20)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory, fixture_papers):
    """A cycle's papers stored; the fake arXiv stopped since, so any fetch would fail."""
    folder = tmp_path_factory.mktemp("sample")
    with recording(folder, fixture_papers) as (settings, _, mail):
        assert run_once(wide_first_run(settings), clock=lambda: DAY1).ok
        assert mail.received  # the cycle did mail the fixture papers
    return folder


@pytest.fixture
def settings(recorded, tmp_path):
    """A copy of the recorded folder, for a test to change as it likes."""
    shutil.copytree(recorded, tmp_path / "list")
    return load_settings(tmp_path / "list" / "settings.toml")


def preview(settings, *args: str):
    """Run `digest preview`; return the result and how long it took."""
    start = time.monotonic()
    result = CliRunner().invoke(
        main, ["--config", str(settings.path), "preview", *args], env={"DIGEST_SECRET": SECRET}
    )
    return result, time.monotonic() - start


def cycles(settings) -> int:
    with Store(settings.database) as store:
        return store.db["cycles"].count


def test_a_sample_for_a_made_up_address_shows_every_topic_offline_at_once(settings, tmp_path):
    out = tmp_path / "sample.eml"
    result, took = preview(settings, "--sample", "--subscriber", "new@nowhere.example", "-o", out)
    assert result.exit_code == 0, result.output
    assert took < 2.0  # nothing fetched: the fake arXiv is gone, and no request was tried
    assert "new@nowhere.example is not on the list" in result.stderr
    assert "the sample shows every topic" in result.stderr
    message = out.read_bytes()
    assert b"To: new@nowhere.example" in message
    text = out.read_text(encoding="utf-8", errors="replace")
    for keyword in KEYWORDS:
        assert keyword in text
    assert cycles(settings) == 1  # the sample recorded nothing


def test_a_sample_follows_a_readers_topics(settings):
    result, _ = preview(settings, "--sample", "--subscriber", "alan@example.org")
    assert result.exit_code == 0, result.output
    assert "== Graph Neural Network (" in result.stdout
    assert "== Large Language Model (" not in result.stdout  # Alan follows only GNN
    assert "Hello Alan Turing," in result.stdout
    result, _ = preview(settings, "--sample")  # nobody in particular
    assert result.exit_code == 0 and "== Large Language Model (" in result.stdout


def test_a_typo_is_named_at_once_with_the_address_meant(settings):
    result, took = preview(settings, "--subscriber", "alan@exmaple.org")
    assert result.exit_code == 1
    assert "alan@exmaple.org is not on the list; did you mean alan@example.org?" in result.output
    assert "--sample` shows the design" in result.output
    assert took < 2.0  # named before any fetch, though arXiv cannot be reached


def test_paused_and_unsubscribed_readers_are_named_as_such(settings):
    with Store(settings.database) as store:
        store.save_choices("grace@example.org", "", "csv", {"paused_until": FUTURE}, DAY1)
        store.suppress("ada@example.org", "unsubscribed", DAY1)
    result, _ = preview(settings, "--subscriber", "grace@example.org")
    assert result.exit_code == 1
    assert f"grace@example.org is paused until {FUTURE}: nothing is sent to them" in result.output
    result, _ = preview(settings, "--subscriber", "ada@example.org")
    assert result.exit_code == 1
    assert "ada@example.org is unsubscribed (since 2025-11-16 07:00)" in result.output
    result, _ = preview(settings, "--sample", "--subscriber", "grace@example.org")
    assert result.exit_code == 0, result.output
    assert f"note: grace@example.org is paused until {FUTURE}" in result.stderr
    assert "== Diffusion Model for Recommendation (" in result.stdout  # her topics


def test_a_sample_needs_stored_papers(make_settings):
    settings = make_settings()
    result, _ = preview(settings, "--sample")
    assert result.exit_code == 1
    assert "holds no paper of these topics yet: run a cycle first" in result.output
