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
    assert settings.arxiv.delay_seconds == 3.0 and settings.archive_rows == 100
    assert (settings.arxiv.page_size, settings.arxiv.max_papers) == (500, 2000)
    assert (settings.arxiv.overlap_days, settings.arxiv.timeout) == (3, 60)
    assert settings.notices == ()
    assert settings.send_at == time(7, 0) and settings.timezone.key == "UTC"
    assert next(k.name for k in settings.keywords) == "Diffusion Model for Recommendation"


def test_the_old_max_results_still_sets_the_archive_rows_and_says_what_to_write(tmp_path):
    base = '[[keywords]]\nname = "x"\n[arxiv]\nmax_results = 40\n'
    settings = load_settings(write(tmp_path, base))
    assert settings.archive_rows == 40
    assert settings.notices == (
        "settings.toml:4: [arxiv] max_results: deprecated: every new paper is fetched now (up "
        "to [arxiv] max_papers); it still sets the archive's rows per keyword, so write "
        "archive_rows = 40 under [digest] instead",
    )
    settings = load_settings(write(tmp_path, base + "[digest]\narchive_rows = 7\n"))
    assert settings.archive_rows == 7
    assert "no longer used" in settings.notices[0] and "delete this line" in settings.notices[0]


def test_minimal_settings_and_smtp_credentials_from_environment(tmp_path):
    path = write(
        tmp_path,
        '[[keywords]]\nname = "Topic"\ncategories = ["cs.IR"]\n'
        'exclude = ["survey"]\n[smtp]\nhost = "mx"\nsender = "a@b.org"\nstarttls = true\n',
    )
    secret = "x" * 32
    env = {"DIGEST_SMTP_USERNAME": "user", "DIGEST_SMTP_PASSWORD": "pw", "DIGEST_SECRET": secret}
    settings = load_settings(path, env=env)
    assert settings.smtp.port == 587 and settings.smtp.username == "user"
    assert settings.smtp.password == "pw" and settings.secret == secret
    with pytest.raises(ConfigError) as info:
        load_settings(path, env={"DIGEST_SECRET": "a"})
    assert info.value.problems == [
        "DIGEST_SECRET (environment) is 1 bytes; use at least 32 random bytes, e.g. the output "
        "of: python3 -c 'import secrets; print(secrets.token_hex(32))'"
    ]
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


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[digest]\nname = 3\n", "[digest] name: expected a string, got int 3"),
        ("[digest]\nfirst_run_days = -1\n", "[digest] first_run_days: must be at least 0"),
        ("[digest]\nfirst_run_days = true\n", "[digest] first_run_days: expected a whole number"),
        ('[arxiv]\ndelay_seconds = "3"\n', "[arxiv] delay_seconds: expected a number"),
        ('[arxiv]\napi_url = "ftp://x"\n', "[arxiv] api_url: expected an http(s) URL"),
        ("[arxiv]\npage_size = 5000\n", "[arxiv] page_size: must be at least 1 and 2000"),
        ("[arxiv]\ntimeout = 0\n", "[arxiv] timeout: must be more than 0"),
        (
            '[smtp]\nhost = "h"\nsender = "s@x.org"\nstarttls = "yes"\n',
            "[smtp] starttls: expected true or false, got str 'yes'",
        ),
        (
            '[smtp]\nhost = "h"\nsender = "s@x.org"\ntls = true\nstarttls = true\n',
            "[smtp] tls: set either tls (implicit TLS, port 465) or starttls, not both",
        ),
        ('[web]\nlisten = "8080"\n', "[web] listen: expected HOST:PORT"),
        ('[web]\nlisten = "127.0.0.1:99999"\n', "[web] listen: expected HOST:PORT"),
        ("digest = 1\n", "[digest]: expected a table, got int 1"),
        (
            '[[keywords]]\nname = "A"\ncategories = "cs.IR"\n',
            "[[keywords]] #1 categories: expected a list of strings",
        ),
        ('[[keywords]]\nname = "Line\\nbreak"\n', "must not contain a newline"),
        ('[[keywords]]\nnmae = "A"\n', "[[keywords]] #1 nmae: unknown key; did you mean 'name'?"),
        ('[[keywords]]\nquery = "ti:x"\n', "[[keywords]] #1 name: missing; this key is required"),
        ('keywords = "A"\n', "write keywords as [[keywords]] tables"),
    ],
)
def test_wrong_values_each_get_one_clear_message(tmp_path, text, expected):
    text = text if "keywords" in text else text + '[[keywords]]\nname = "Topic"\n'
    found = problems(tmp_path, text)
    assert any(expected in p for p in found), found


def test_a_folder_instead_of_a_file_is_unreadable(tmp_path):
    (tmp_path / "settings.toml").mkdir()
    with pytest.raises(ConfigError, match="cannot read it"):
        load_settings(tmp_path / "settings.toml")


def test_commands_exit_2_on_bad_settings(tmp_path):
    from click.testing import CliRunner

    from digest.cli import main

    path = write(tmp_path, '[digest]\ntimezone = "Nowhere/Land"\n[[keywords]]\nname = "A"\n')
    for command in ("once", "run", "serve", "archive", "preview", "subscribers"):
        result = CliRunner().invoke(main, ["--config", str(path), command])
        assert result.exit_code == 2, command
        assert (
            "settings.toml:2: [digest] timezone: unknown time zone 'Nowhere/Land'" in result.output
        )
