"""`digest subscribers --export`: no cell a spreadsheet runs, and `digest check` reads it back."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from pathlib import Path

from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from digest.cli import main
from digest.readers import readers
from digest.store import Store
from digest.subscribers import Subscriber, neutralize, read_subscribers, restored

NOW = datetime(2025, 11, 16, 6, 0, tzinfo=UTC)
TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
HYPERLINK = '=HYPERLINK("https://evil.example/phish","Click to verify")'
HOSTILE = """email,name,keywords
ada@example.org,Ada Lovelace,
"=cmd@example.org","=HYPERLINK(""https://evil.example/phish"",""Click to verify"")",
-dash@example.org,-2+3,Graph Neural Network
plus@example.org,+1+1,
at@example.org,@SUM(1),Large Language Model
quote@example.org,'=already quoted,
twice@example.org,''-two quotes,
plain@example.org,Plain 'Name',
"""


def test_a_cell_that_would_start_a_formula_is_neutralized():
    for trigger in TRIGGERS:
        assert neutralize(trigger + "x") == "'" + trigger + "x"
    assert neutralize("'=x") == "''=x"  # so that reading it back gives '=x again
    for harmless in ("Ada", "x=1", "'quoted'", "", " =x", "é"):
        assert neutralize(harmless) == harmless


@given(st.text(st.sampled_from(["=", "+", "-", "@", "\t", "\r", "'", "a", " ", ","])) | st.text())
def test_neutralizing_is_undone_exactly(cell):
    written = neutralize(cell)
    assert not written.startswith(TRIGGERS)
    assert restored(written) == cell


def export(settings, path: Path) -> str:
    result = CliRunner().invoke(
        main, ["--config", str(settings.path), "subscribers", "--export", str(path)]
    )
    assert result.exit_code == 0, result.output
    return path.read_text(encoding="utf-8")


def test_the_export_holds_no_formula_and_reads_back_unchanged(make_settings, tmp_path):
    settings = make_settings(HOSTILE)
    with Store(settings.database) as store:
        store.add_signup("n" * 22, "web@example.org", "@web name", ["graph neural network"], NOW)
        store.confirm_signup("n" * 22, NOW)
        store.suppress("plus@example.org", "unsubscribed", NOW)
        store.suppress("gone@example.org", "unsubscribed", NOW)  # on no list any more
        listed = {(r.email, r.name, r.topics) for r in readers(settings, store)}
    assert ("=cmd@example.org", HYPERLINK, tuple(k.key for k in settings.keywords)) in listed

    text = export(settings, tmp_path / "everyone.csv")
    lines = text.splitlines()
    assert lines[0] == "email,name,keywords,source,schedule,paused_until,abstracts,status"
    rows = list(csv.reader(io.StringIO(text)))[1:]
    assert len(rows) == len(listed) + 1  # and gone@, only suppressed
    for line in lines[1:]:
        assert line.startswith('"') and line.endswith('"')  # every cell quoted
    for row in rows:
        for cell in row:
            assert not cell.startswith(TRIGGERS), cell  # no cell a spreadsheet would run
    hyperlink_row = next(r for r in rows if r[0] == "'=cmd@example.org")
    assert hyperlink_row[1] == "'" + HYPERLINK

    # The export is a subscribers file: `digest check` takes it, with every person as listed.
    exported = Path(settings.subscribers)
    exported.write_text(text, encoding="utf-8")
    result = CliRunner().invoke(main, ["--config", str(settings.path), "check"])
    assert f"{exported}: {len(listed)} valid, 0 bad row(s)" in result.output, result.output
    assert result.exit_code == 0, result.output
    back = list(read_subscribers(exported, settings.keywords))
    assert all(isinstance(entry, Subscriber) for entry in back)
    assert {(s.email, s.name, s.keywords) for s in back} == listed
