"""The README and docs/: every command and settings key documented, every relative link alive."""

from __future__ import annotations

import os
import re
import unicodedata
from functools import cache
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import click
import pytest
from markdown_it import MarkdownIt
from markdown_it.token import Token

from digest.cli import main
from digest.settings_schema import CHANNEL_SCHEMA, KEYWORD_SCHEMA, SCHEMA

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"
CONFIGURATION = DOCS / "configuration.md"
MAX_README_LINES = 200
TEST_COMMAND = "make test"  # CI (.ci/run) runs the README's test command

MD = MarkdownIt("commonmark").enable("table")


def documents() -> list[Path]:
    """Return README.md and every markdown file under docs/."""
    return [README, *sorted(DOCS.rglob("*.md"))]


@cache
def tokens(path: Path) -> list[Token]:
    """Return the markdown-it block tokens of a document."""
    return MD.parse(path.read_text(encoding="utf-8"))


def inline_text(token: Token) -> str:
    """Return the text GitHub shows for an inline token (code spans without their backticks)."""
    kinds = ("text", "code_inline", "html_inline")
    return "".join(child.content for child in token.children or () if child.type in kinds)


def slug(text: str) -> str:
    """Return GitHub's anchor for a heading: lower case, punctuation dropped, spaces as '-'."""
    text = unicodedata.normalize("NFC", text.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


@cache
def anchors(path: Path) -> frozenset[str]:
    """Return the anchors of a document's headings, repeats numbered as GitHub does."""
    seen: dict[str, int] = {}
    found = set()
    stream = tokens(path)
    for index, token in enumerate(stream):
        if token.type != "heading_open":
            continue
        base = slug(inline_text(stream[index + 1]))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return frozenset(found)


class Targets(HTMLParser):
    """Collect every href and src of rendered HTML (markdown links and raw <img>/<a> alike)."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found += [value for name, value in attrs if name in ("href", "src") and value]


def targets(path: Path) -> list[str]:
    """Return every link and image target of a document, as rendered."""
    parser = Targets()
    parser.feed(MD.render(path.read_text(encoding="utf-8")))
    return parser.found


def relative_links() -> list[tuple[Path, str]]:
    """Return (document, target) for every link that is not to another site or a mail address."""
    links = []
    for path in documents():
        for target in targets(path):
            parts = urlsplit(target)
            if not parts.scheme and not parts.netloc:
                links.append((path, target))
    return links


def problem(path: Path, target: str) -> str | None:
    """Return why a relative link of a document does not resolve, or None when it does."""
    parts = urlsplit(target)
    where = path.relative_to(ROOT)
    file = (path.parent / unquote(parts.path)).resolve() if parts.path else path
    if not file.exists():
        return f"{where}: {target!r}: no file {os.path.relpath(file, ROOT)}"
    if not file.is_relative_to(ROOT):
        return f"{where}: {target!r} leaves the repository"
    fragment = unquote(parts.fragment)
    if fragment and file.suffix == ".md" and fragment not in anchors(file):
        return f"{where}: {target!r}: no heading #{fragment} in {file.name}"
    return None


def code_spans(path: Path) -> set[str]:
    """Return the text of every code span and code block of a document."""
    found = set()
    for token in tokens(path):
        if token.type in ("fence", "code_block"):
            found.add(token.content)
        for child in token.children or ():
            if child.type == "code_inline":
                found.add(child.content)
    return found


def all_code() -> str:
    """Return every code span and block of README.md and docs/, one per line."""
    return "\n".join(span for path in documents() for span in code_spans(path))


def keys_by_section(path: Path) -> dict[str, set[str]]:
    """Return, per settings section named in a `## [section]` heading, its code spans."""
    sections: dict[str, set[str]] = {}
    current: set[str] | None = None
    stream = tokens(path)
    for index, token in enumerate(stream):
        if token.type == "heading_open" and token.tag == "h2":
            title = inline_text(stream[index + 1])
            match = re.fullmatch(r"\[\[?(\w+)\]\]?", title.strip())
            current = sections.setdefault(match[1], set()) if match else None
        elif current is not None and token.type == "inline":
            current.update(c.content for c in token.children or () if c.type == "code_inline")
    return sections


def commands() -> list[tuple[str, click.Command]]:
    """Return every command of the `digest` group, subgroups walked, as ("digest x", command)."""
    found = []

    def walk(group: click.Group, prefix: str) -> None:
        for name, command in sorted(group.commands.items()):
            found.append((f"{prefix} {name}", command))
            if isinstance(command, click.Group):
                walk(command, f"{prefix} {name}")

    walk(main, "digest")
    return found


# --- the tests -----------------------------------------------------------------------------------


def test_docs_exist_and_the_readme_links_to_each() -> None:
    expected = {
        "configuration",
        "deployment",
        "operations",
        "design",
        "performance",
        "development",
    }
    present = {p.stem for p in DOCS.glob("*.md")}
    assert expected <= present, f"missing in docs/: {sorted(expected - present)}"
    linked = {
        (README.parent / urlsplit(t).path).resolve()
        for _, t in relative_links()
        if _ == README and urlsplit(t).path
    }
    unlinked = [p.name for p in DOCS.glob("*.md") if p.resolve() not in linked]
    assert unlinked == [], f"README.md links to no {unlinked}: add them to its Documentation"


def test_readme_is_short() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= MAX_README_LINES, (
        f"README.md has {len(lines)} lines, at most {MAX_README_LINES}: move detail into docs/"
    )


def test_readme_states_the_test_command() -> None:
    commands_shown = "\n".join(code_spans(README))
    assert re.search(rf"^{re.escape(TEST_COMMAND)}\b", commands_shown, re.MULTILINE), (
        f"README.md must show `{TEST_COMMAND}`, the command CI runs"
    )


def test_every_relative_link_resolves() -> None:
    links = relative_links()
    assert len(links) >= 20  # the documents do link to each other: the parser found them
    problems = [p for path, target in links if (p := problem(path, target))]
    assert problems == []


def test_a_broken_link_is_found() -> None:
    """The link check can fail: a missing file and a missing anchor are both reported."""
    page = ROOT / "docs" / "design.md"
    assert problem(page, "configuration.md#digest") is None
    assert problem(page, "configuration.md#no-such-heading") is not None
    assert problem(page, "no-such-file.md") is not None
    assert problem(README, "docs/email-375-light.png") is None


def test_github_slugs() -> None:
    assert slug("SPF, DKIM and DMARC") == "spf-dkim-and-dmarc"
    assert slug("[digest]") == "digest"
    assert slug("Every new paper, however busy the day") == "every-new-paper-however-busy-the-day"
    assert slug("The list: digest subscribers") == "the-list-digest-subscribers"


@pytest.mark.parametrize(("name", "command"), commands(), ids=lambda v: str(v))
def test_every_command_and_option_is_documented(name: str, command: click.Command) -> None:
    code = all_code()
    assert re.search(rf"(^|\s){re.escape(name)}(\s|$)", code, re.MULTILINE), (
        f"`{name}` appears in no code span of README.md or docs/"
    )
    for param in command.params:
        if isinstance(param, click.Option) and not param.hidden:
            longest = max(param.opts, key=len)
            assert longest in code, f"`{name} {longest}` is documented nowhere"


def test_the_global_options_are_documented() -> None:
    code = all_code()
    for param in main.params:
        if isinstance(param, click.Option):
            assert any(opt in code for opt in param.opts), f"{param.opts} documented nowhere"


def test_every_settings_key_is_in_its_section() -> None:
    sections = keys_by_section(CONFIGURATION)
    schemas = {**SCHEMA, "keywords": KEYWORD_SCHEMA, "channels": CHANNEL_SCHEMA}
    absent = sorted(set(schemas) - set(sections))
    assert absent == [], f"docs/configuration.md lacks a `## [section]` heading for {absent}"
    missing = [
        f"[{section}] {key}"
        for section, schema in schemas.items()
        for key in schema
        if key not in sections[section]
    ]
    assert missing == [], "write each as `key` under its section in docs/configuration.md"


def test_design_names_every_module_and_lists_the_layers_of_the_contract():
    """docs/design.md says what each module owns, and its layers are pyproject's contracts."""
    import tomllib

    design = (DOCS / "design.md").read_text(encoding="utf-8")
    package = ROOT / "digest"
    for path in sorted(package.rglob("*.py")):
        module = path.relative_to(package).with_suffix("").as_posix()
        if module.endswith("__init__") and module != "web/__init__":
            continue
        assert f"`{module}`" in design, f"docs/design.md does not name `{module}`"
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    for contract in pyproject["tool"]["importlinter"]["contracts"]:
        for number, layer in enumerate(contract["layers"], 1):
            names = ", ".join(f"`{name.strip()}`" for name in layer.split("|"))
            assert f"\n{number}. {names}\n" in design, (contract["name"], layer)
