"""`digest --version` is the package's version, which the build takes from git."""

from __future__ import annotations

import subprocess
import tomllib
from importlib.metadata import version
from pathlib import Path

from click.testing import CliRunner
from hatch_vcs.version_source import VCSVersionSource

from digest.cli import main

ROOT = Path(__file__).resolve().parent.parent


def build_version(root: Path) -> str:
    """Return the version the build gives the sources in `root` ([tool.hatch.version])."""
    options = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["hatch"]["version"]
    return VCSVersionSource(str(root), options).get_version_data()["version"]


def git(*args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=ROOT, capture_output=True, text=True, check=False
    ).stdout.strip()


def test_the_version_is_the_installed_packages():
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0
    assert result.output == f"digest, version {version('digest')}\n"


def test_the_build_takes_the_version_from_git():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert "version" not in project and project["dynamic"] == ["version"]
    found = build_version(ROOT)
    tag = git("describe", "--tags", "--exact-match", "HEAD")
    if tag and not git("status", "--porcelain"):
        assert found == tag.removeprefix("v")  # a release: its tag
    else:
        assert f"+g{git('rev-parse', '--short=7', 'HEAD')}" in found  # each commit its own


def test_sources_without_git_history_still_build(tmp_path):
    (tmp_path / "pyproject.toml").write_text((ROOT / "pyproject.toml").read_text())
    assert build_version(tmp_path) == "0.0"
