"""settings.toml: defaults, paths, and one clear message per problem."""

from __future__ import annotations

from datetime import time
from pathlib import Path

import pytest

from digest.config import ConfigError, find_settings, load_settings

ROOT = Path(__file__).parent.parent


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "settings.toml"
    path.write_text(text, encoding="utf-8")
    return path


def problems(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_settings(write(tmp_path, text))
    return info.value.problems


def test_shipped_settings_load_with_documented_defaults():
    settings = load_settings(ROOT / "settings.toml", env={})
    assert settings.name == "Daily Papers"
    assert settings.database == ROOT / "digest.db"
    assert settings.smtp is None and settings.outbox == ROOT / "outbox"
    assert settings.arxiv.api_url == "https://export.arxiv.org/api/query"
    assert settings.arxiv.delay_seconds == 3.0 and settings.arxiv.max_results == 100
    assert settings.send_at == time(7, 0) and settings.timezone.key == "UTC"
    assert next(k.name for k in settings.keywords) == "Diffusion Model for Recommendation"


def test_minimal_settings_and_smtp_credentials_from_environment(tmp_path):
    path = write(
        tmp_path,
        '[[keywords]]\nname = "Topic"\ncategories = ["cs.IR"]\n'
        'exclude = ["survey"]\n[smtp]\nhost = "mx"\nsender = "a@b.org"\nstarttls = true\n',
    )
    env = {"DIGEST_SMTP_USERNAME": "user", "DIGEST_SMTP_PASSWORD": "pw", "DIGEST_SECRET": "s"}
    settings = load_settings(path, env=env)
    assert settings.smtp.port == 587 and settings.smtp.username == "user"
    assert settings.smtp.password == "pw" and settings.secret == "s"
    assert settings.keywords[0].search_query() == (
        '((ti:"Topic" OR abs:"Topic") AND (cat:cs.IR)) ANDNOT (ti:"survey" OR abs:"survey")'
    )
    assert settings.database == tmp_path / "digest.db"


def test_syntax_error_names_line_and_column(tmp_path):
    (message,) = problems(tmp_path, '[digest]\nname = "x"\nsend_at = \n')
    assert "settings.toml" in message and "line 3" in message and "column" in message


def test_every_problem_is_listed_with_its_line_and_a_fix(tmp_path):
    found = problems(
        tmp_path,
        """[digest]
sendat = "07:00"
timezone = "Mars/Olympus"
send_at = "25:00"
base_url = "not a url"
first_run_days = "two"

[arxiv]
delay_seconds = 1

[[keywords]]
name = "Topic | one"

[[keywords]]
name = "GNN"

[[keywords]]
name = "gnn"

[smtpp]
host = "x"
""",
    )
    text = "\n".join(found)
    assert "settings.toml:2: [digest] sendat: unknown key; did you mean 'send_at'?" in text
    assert "settings.toml:3: [digest] timezone: unknown time zone 'Mars/Olympus'" in text
    assert "settings.toml:4: [digest] send_at: expected a time of day as HH:MM" in text
    assert "settings.toml:5: [digest] base_url: expected an http(s) URL" in text
    assert "settings.toml:6: [digest] first_run_days: expected a whole number" in text
    assert "settings.toml:9: [arxiv] delay_seconds: must be at least 3 against the official" in text
    assert "settings.toml:12: [[keywords]] #1 name: 'Topic | one' must not contain" in text
    assert "settings.toml:18: [[keywords]] #3 name: 'gnn' repeats keyword #2" in text
    assert "settings.toml:20: [smtpp]: unknown section; did you mean [smtp]?" in text
    assert len(found) == 9


def test_missing_required_keys_and_keywords(tmp_path):
    found = problems(tmp_path, "[smtp]\nport = 25\n")
    assert any("[smtp] host: missing; this key is required" in p for p in found)
    assert any("[smtp] sender: missing" in p for p in found)
    assert any("no keywords" in p for p in found)


def test_missing_and_unreadable_files(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        load_settings(tmp_path / "nope.toml")
    path = tmp_path / "settings.toml"
    path.write_bytes(b'name = "\xff"\n')
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(path)


def test_find_settings_order(tmp_path):
    assert find_settings("a.toml", {"DIGEST_CONFIG": "b.toml"}) == Path("a.toml")
    assert find_settings(None, {"DIGEST_CONFIG": "b.toml"}) == Path("b.toml")
    assert find_settings(None, {}) == Path("settings.toml")
