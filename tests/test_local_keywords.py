"""[[keywords]] local = true: the settings it takes, what `digest check` says, its link helpers."""

from __future__ import annotations

from datetime import date

import pytest
from click.testing import CliRunner
from helpers.builders import SECRET

from digest.cli import main
from digest.config import ConfigError, load_settings
from digest.links import Links

LOCAL = '\n[[keywords]]\nname = "Sparse Coding"\nlocal = true\ncategories = ["cs.LG"]\n'


def check(settings) -> str:
    result = CliRunner().invoke(
        main, ["--config", str(settings.path), "check"], env={"DIGEST_SECRET": SECRET}
    )
    return result.output


def test_a_local_keyword_is_left_out_of_the_fetch_and_matched_by_its_name(make_settings):
    settings = make_settings(extra=LOCAL)
    local = settings.keywords[-1]
    assert local.local and local.key == "sparse coding"
    assert local.key not in {k.key for k in settings.fetched_keywords}
    assert len(settings.fetched_keywords) == len(settings.keywords) - 1
    assert local.topic().key == 'cat:cs.lg "sparse coding"'


def test_a_local_keyword_with_a_query_is_a_settings_error_naming_the_fix(make_settings):
    with pytest.raises(ConfigError) as caught:
        make_settings(extra=LOCAL.replace("local = true", "local = true\nquery = 'cat:cs.LG'"))
    (problem,) = caught.value.problems
    assert (
        "[[keywords]] #4 local: 'Sparse Coding': a local keyword is matched by its name" in problem
    )
    assert "remove query (or local = true, to fetch it)" in problem
    assert problem.startswith("settings.toml:")


def test_a_local_keyword_without_words_is_a_settings_error(make_settings):
    with pytest.raises(ConfigError, match="has no words to match locally; rename it"):
        make_settings(extra='\n[[keywords]]\nname = "++"\nlocal = true\n')


def test_check_warns_about_a_local_keyword_without_harvest(make_settings):
    settings = make_settings(extra=LOCAL)
    out = check(settings)
    assert 'Sparse Coding: matched locally: cat:cs.lg "sparse coding"' in out
    assert "warning: settings.toml:" in out and "[[keywords]] #4 local" in out
    assert "[arxiv] harvest is empty" in out
    text = settings.path.read_text(encoding="utf-8")
    settings.path.write_text(text.replace("[arxiv]\n", '[arxiv]\nharvest = ["cs.LG"]\n'))
    out = check(load_settings(settings.path))
    assert "harvest is empty" not in out
    assert "harvest:cs.LG: cat:cs.LG" in out  # the harvest list is the entries alone
    assert "Sparse Coding: cat:" not in out


def test_the_own_topics_page_link_is_signed_and_names_its_days():
    links = Links("https://papers.example.org", b"s" * 32)
    url = links.mine("ada@example.org", 2, date(2025, 11, 17), since=date(2025, 11, 10))
    assert url.startswith("https://papers.example.org/mine?token=")
    assert url.endswith("&day=2025-11-17&since=2025-11-10")
    token = url.split("token=")[1].split("&")[0]
    assert links.manage("ada@example.org", 2).endswith(f"?token={token}")  # the manage link's
    assert links.mine("ada@example.org", 3) != links.mine("ada@example.org", 2)
    assert Links.mine_query(date(2025, 11, 17)) == "&day=2025-11-17"
