"""Every public page meets the standards: Nu Html Checker and axe-core, live and exported.

Each page type is opened in headless chromium (the live site, reached through forms and mailed
links as a person does, and the static export); the document the browser received goes to the
Nu Html Checker (one java run for all) and axe-core runs in the page at 375 and 1280 px wide,
light and dark. The two tools come from npm at pinned versions, cached in tests/.cache/.

axe-core runs every rule once a page (the first width and scheme), and at the other three only
the rules whose outcome a width or a colour scheme can change (MEDIA_RULES): the pages' media
queries change colours and sizes, never what is shown (a test below keeps it so), so the rest
would only repeat the first run.

Kept lean (it is the longest test of `make test`): topic and search pages hold 10 papers here
instead of 50 (a page of 10 items has the markup of a page of 50, so 12 papers make two topic
pages), axe-core is handed to chromium once for every page it opens, and the Nu checker's java
(client compiler only: half the CPU for the same messages) checks the pages while the browser
goes through the static export.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import shutil
import sqlite3
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import unquote

import pytest
from aiohttp import web
from click.testing import CliRunner
from helpers.browser import FLAGS, chromium_paths
from helpers.builders import SECRET, settings_text
from helpers.fake_arxiv import busy_papers
from helpers.mailserver import free_port
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from digest.cli import main
from digest.config import Settings, load_settings
from digest.pipeline import run_once
from digest.store import Store
from digest.web import ENDPOINT, make_app, start_site

CACHE = Path(__file__).parent / ".cache"
ARTIFACTS = Path(__file__).parent / "artifacts"

VNU_VERSION = "26.9.27"  # npm's vnu-jar: the Nu Html Checker, run with java
AXE_VERSION = "4.14.1"  # npm's axe-core
WIDTHS = (375, 1280)
SCHEMES = ("light", "dark")
# Rules that read colours or sizes: contrast, links told apart by colour, target sizes, regions
# that scroll at one width, zoom.
MEDIA_RULES = [
    "color-contrast",
    "link-in-text-block",
    "target-size",
    "scrollable-region-focusable",
    "meta-viewport",
    "meta-viewport-large",
]
BLOCKING = {"serious", "critical"}  # axe impacts that fail the test
POLL = 0.05  # seconds between a wait's checks (selenium's 0.5 s would idle every page change)
DAY1 = datetime(2025, 11, 16, 6, 0, tzinfo=UTC)
GNN = "graph-neural-network"
EXPORTED = (  # one file of each kind of exported page
    "index.html",
    f"topics/{GNN}/index.html",
    f"topics/{GNN}/page-2.html",
    "days/2025-11-16/index.html",
    f"days/2025-11-16/{GNN}/index.html",
)


@dataclass
class Tools:
    """The Nu checker's jar and axe-core's script."""

    vnu: Path
    axe: str


@pytest.fixture(scope="session")
def tools() -> Tools:
    """Return vnu.jar and axe.min.js, installed once with npm (cached, never committed)."""
    java, npm = shutil.which("java"), shutil.which("npm")
    if not (java and npm):
        pytest.fail("install Java and npm (Debian's default-jre-headless and npm; .ci/run does)")
    target = CACHE / f"standards-vnu-{VNU_VERSION}-axe-{AXE_VERSION}"
    jar = Path("node_modules/vnu-jar/build/dist/vnu.jar")
    script = Path("node_modules/axe-core/axe.min.js")
    if not ((target / jar).is_file() and (target / script).is_file()):
        CACHE.mkdir(exist_ok=True)
        work = Path(tempfile.mkdtemp(dir=CACHE))
        try:
            subprocess.run(
                [npm, "install", "--prefix", str(work), "--no-save", "--no-package-lock",
                 "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error",
                 f"vnu-jar@{VNU_VERSION}", f"axe-core@{AXE_VERSION}"],
                check=True, timeout=600, stdout=subprocess.DEVNULL,
            )  # fmt: skip
            try:
                work.rename(target)
            except OSError:  # another test worker was first
                assert (target / jar).is_file()
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return Tools(target / jar, (target / script).read_text(encoding="utf-8"))


@pytest.fixture
def chrome(tmp_path):
    """Headless chromium that logs its network events (to read each page as received)."""
    binary, driver_path = chromium_paths()
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in (
        *(f for f in FLAGS if not f.startswith("--window-size")),  # each test sets its width
        "--allow-file-access-from-files",
        f"--user-data-dir={tmp_path / 'chromium'}",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    driver.set_script_timeout(120)
    try:
        yield driver
    finally:
        driver.quit()


class Clock:
    """A clock the test moves by hand (the form's "sent too fast" check reads it)."""

    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@contextlib.contextmanager
def running(app: web.Application, port: int) -> Iterator[str]:
    """Run the app as `digest serve` does, on its own event loop in a thread; yield its URL."""
    loop = asyncio.new_event_loop()
    runner = loop.run_until_complete(start_site(app, "127.0.0.1", port))
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.run_until_complete(runner.cleanup())
        loop.close()


@dataclass
class Visit:
    """One page opened: its name, its HTTP status, where its received document was saved."""

    name: str
    status: int
    source: Path


@dataclass
class Inspector:
    """Open pages in the browser, keep what each received, and run axe-core in each."""

    driver: webdriver.Chrome
    tools: Tools
    folder: Path
    visits: list[Visit] = field(default_factory=list)
    axe: dict[str, list[dict]] = field(default_factory=dict)  # "page width scheme": violations

    def __post_init__(self) -> None:
        # Every page the browser opens gets axe-core as it starts: 1/10 of the time of handing
        # the 550 KB script over again on each page.
        self.driver.execute_cdp_cmd(
            "Page.addScriptToEvaluateOnNewDocument", {"source": self.tools.axe}
        )

    def open(self, name: str, url: str, status: int = 200) -> None:
        """Open a URL and check the page."""
        self.driver.get_log("performance")  # forget the earlier pages' events
        self.driver.get(url)
        self._check(name, status)

    def submit(self, name: str, button: str, status: int = 200) -> None:
        """Press a button (a CSS selector) that sends a form, and check the page it leads to."""
        self.driver.get_log("performance")
        self.driver.execute_script("window.digestOldPage = true")  # gone with the next page
        self.driver.find_element(By.CSS_SELECTOR, button).click()
        # Not staleness_of(an element): chromium may answer that check with an "unhandled
        # inspector error" while the next page replaces the old one.
        WebDriverWait(self.driver, 30, POLL, ignored_exceptions=(WebDriverException,)).until(
            lambda d: d.execute_script(
                "return window.digestOldPage === undefined && document.readyState === 'complete'"
            )
        )
        self._check(name, status)

    def _check(self, name: str, status: int) -> None:
        WebDriverWait(self.driver, 30, POLL, ignored_exceptions=(WebDriverException,)).until(
            lambda d: d.execute_script("return document.readyState") == "complete"
        )
        if self.driver.current_url.startswith("file:"):
            source = Path(self.driver.current_url.removeprefix("file://"))
        else:
            received, body = self._document()
            assert received == status, (name, received, self.driver.current_url)
            source = self.folder / f"{len(self.visits):02d}-{name}.html"
            source.write_text(body, encoding="utf-8")
        self.visits.append(Visit(name, status, source))
        every_rule = True
        for width in WIDTHS:
            self.driver.execute_cdp_cmd(
                "Emulation.setDeviceMetricsOverride",
                {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": width < 500},
            )
            for scheme in SCHEMES:
                self.driver.execute_cdp_cmd(
                    "Emulation.setEmulatedMedia",
                    {"features": [{"name": "prefers-color-scheme", "value": scheme}]},
                )
                found = self._axe(None if every_rule else MEDIA_RULES, width, scheme)
                assert isinstance(found, list), (name, width, scheme, found)
                self.axe[f"{name} {width} {scheme}"] = found
                every_rule = False

    def _document(self) -> tuple[int, str]:
        """Return the status and the body of the main document the browser last received."""
        responses = []
        for entry in self.driver.get_log("performance"):
            message = json.loads(entry["message"])["message"]
            received = message["method"] == "Network.responseReceived"
            if received and message["params"]["type"] == "Document":
                responses.append(message["params"])
        assert responses, self.driver.current_url
        last = responses[-1]
        body = self.driver.execute_cdp_cmd(
            "Network.getResponseBody", {"requestId": last["requestId"]}
        )
        assert not body["base64Encoded"]
        return last["response"]["status"], body["body"]

    def _axe(
        self, rules: list[str] | None, width: int, scheme: str, injected: bool = False
    ) -> list[dict] | str:
        """Run axe-core's rules (None: all) in the page; return its violations, briefly.

        Or "not emulated" when the page is not `width` wide in the colour `scheme`: one call
        checks the emulation and runs axe-core.
        """
        found = self.driver.execute_async_script(
            "const [rules, width, scheme, done] = arguments;"
            "if (!(matchMedia(`(prefers-color-scheme: ${scheme})`).matches"
            "      && innerWidth === width)) return done('not emulated');"
            "if (typeof axe === 'undefined') return done('no axe');"
            "const only = rules ? {runOnly: {type: 'rule', values: rules}} : {};"
            "axe.run(document, {resultTypes: ['violations'], ...only}).then("
            "  r => done(r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,"
            "    nodes: v.nodes.map(n => n.target.join(' ') + ': ' + n.failureSummary)}))),"
            "  e => done([{id: 'axe-error', impact: 'critical', help: String(e), nodes: []}]));",
            rules,
            width,
            scheme,
        )
        if found == "no axe" and not injected:  # a page that started without it
            self.driver.execute_script(self.tools.axe)
            return self._axe(rules, width, scheme, injected=True)
        return found


@contextlib.contextmanager
def nu_checking(jar: Path, files: list[Path]) -> Iterator[Callable[[], list[dict]]]:
    """Start the Nu Html Checker (one java run) over the files; yield what returns its messages."""
    process = subprocess.Popen(
        ["java", "-Xss4m", "-XX:TieredStopAtLevel=1", "-jar", str(jar)]
        + ["--format", "json", "--stdout", "--exit-zero-always"]
        + [str(f) for f in files],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )

    def messages() -> list[dict]:
        out, errors = process.communicate(timeout=600)
        assert process.returncode == 0, errors
        return json.loads(out)["messages"]

    try:
        yield messages
    finally:
        if process.poll() is None:  # the test failed before it read them
            process.kill()
            process.communicate()


def history(fake_arxiv, mail_server, folder: Path, port: int) -> Settings:
    """Record a first cycle (every fixture paper, 5 more GNN ones: two topic pages) and mail it."""
    fake_arxiv.papers += busy_papers(5, "Graph Neural Network", newest=DAY1 - timedelta(hours=2))
    config = folder / "settings.toml"
    text = settings_text(api_url=fake_arxiv.url, smtp_port=mail_server.port)
    text = text.replace("first_run_days = 2", "first_run_days = 10000")
    text = text.replace("https://papers.example.org", f"http://127.0.0.1:{port}")
    config.write_text(text + f'\n[web]\nlisten = "127.0.0.1:{port}"\nsignup = true\n')
    (folder / "subscribers.csv").write_text("email,name,keywords\nada@example.org,Ada,\n")
    settings = load_settings(config, env={"DIGEST_SECRET": SECRET})
    assert run_once(settings, clock=lambda: DAY1).ok
    return settings


def poll(check: Callable[[], object], what: str, timeout: float = 20) -> object:
    """Return check()'s first true answer, polling until the deadline."""
    deadline = time.monotonic() + timeout
    while not (found := check()):
        assert time.monotonic() < deadline, what
        time.sleep(0.05)
    return found


@pytest.mark.slow(seconds=15)  # a browser, java and 176 axe-core runs: the longest test
def test_every_public_page_passes_the_nu_checker_and_axe_core(
    tools, chrome, fake_arxiv, mail_server, tmp_path, monkeypatch
):
    started = time.monotonic()
    monkeypatch.setenv("DIGEST_SECRET", SECRET)
    monkeypatch.setattr("digest.room.PAGE_SIZE", 10)  # two topic pages from 12 papers
    port = free_port()
    settings = history(fake_arxiv, mail_server, tmp_path, port)
    digest = mail_server.received[-1].message
    manage = re.search(
        r'<a href="([^"]+)">Manage your subscription</a>',
        digest.get_body(("html",)).get_content(),
    )[1].replace("&amp;", "&")
    vote = re.search(
        r'<a href="([^"]+)">👍 More like this</a>', digest.get_body(("html",)).get_content()
    )[1].replace("&amp;", "&")
    unsubscribe = digest["List-Unsubscribe"].strip("<>")
    (tmp_path / "received").mkdir()
    pages = Inspector(chrome, tools, tmp_path / "received")
    with Store(settings.database) as store, store.transaction():  # what own topics are tried on
        yesterday = datetime.now(UTC) - timedelta(days=1)
        store.record_arrivals([p.id for p in fake_arxiv.papers], 1, yesterday)
    app = make_app(settings)
    endpoint = app[ENDPOINT]
    clock = Clock(datetime.now(UTC))
    endpoint.clock = clock
    endpoint.write_wait = 0.3  # the busy page sooner

    with running(app, port) as url:
        # The reading room.
        pages.open("home", url + "/")
        pages.open("topic", url + f"/topics/{GNN}")
        pages.open("topic page 2", url + f"/topics/{GNN}?page=2")
        pages.open("day", url + "/days/2025-11-16")
        pages.open("day of one topic", url + f"/days/2025-11-16/{GNN}")
        pages.open("search form", url + "/search")
        pages.open("search with results", url + "/search?q=diffusion")
        pages.open("search with none", url + "/search?q=zzyzx")
        pages.open("search with nothing to search", url + "/search?q=%22%22")
        pages.open("room not found", url + "/topics/no-such-topic", 404)
        pages.open("not found", url + "/no/such/page", 404)
        pages.open("method not allowed", url + "/manage/delete", 405)
        pages.open("bad link", url + "/unsubscribe?token=altered", 400)
        pages.open("bad confirmation link", url + "/confirm?token=altered", 400)

        # The operator's dashboard, by the link `digest admin-link` prints, at the hour after
        # the cycle (its plots then have a day and a cycle to draw); and its sign-in page.
        link = CliRunner().invoke(main, ["--config", str(settings.path), "admin-link"])
        assert link.exit_code == 0, link.output
        now, clock.now = clock.now, DAY1 + timedelta(hours=1)
        pages.open("admin", link.stdout.strip())
        clock.now = now
        pages.open("admin sign-in", url + "/admin", 401)

        # Sign-up: a form with a problem, the form sent, the mailed link, confirmed.
        pages.open("subscribe", url + "/subscribe")
        chrome.find_element(By.NAME, "email").send_keys("bea@example.org")
        pages.submit("subscribe with a problem", "form button[type=submit]", 400)
        chrome.find_element(By.CSS_SELECTOR, f'input[value="{GNN.replace("-", " ")}"]').click()
        clock.now += timedelta(seconds=10)  # a person takes a while to fill it in
        pages.submit("sign-up sent", "form button[type=submit]")
        mailed = poll(
            lambda: [r.message for r in mail_server.received if "bea@example.org" in r.rcpt_tos],
            "no confirmation mail",
        )
        text = mailed[0].get_body(("plain",)).get_content()
        pages.open("confirm", re.search(rf"{url}/confirm\?token=\S+", text)[0])
        pages.submit("confirmed", "form button[type=submit]")

        # A signed link: unsubscribe and back, the person's page, busy, their data, deleted.
        pages.open("unsubscribe", unsubscribe)
        pages.submit("unsubscribed", "form button[type=submit]")
        pages.submit("resubscribed", "form button[type=submit]")
        # 👍 / 👎: a mailed vote link's page, the vote; the manage page lists it, with Undo.
        pages.open("vote", vote)
        pages.submit("voted", "#vote")
        with Store(settings.database) as store:  # a page of the reader's own topics
            store.save_own_topics("ada@example.org", "Ada", "csv", ["graph", "au:"], DAY1)
        pages.open("own topics", manage.replace("/manage?", "/mine?") + "&day=2025-11-16")
        pages.open(  # where a cut section's "N more" leads: the reader's list of one topic
            "list of a topic", manage.replace("/manage?", "/mine?") + f"&day=2025-11-16&topic={GNN}"
        )
        pages.open("manage", manage)
        pages.submit("vote undone on manage", "button.undo")
        pages.submit("manage saved", "#save")
        # Own topics: a line that does not read, named; then fixed, with what each found.
        chrome.find_element(By.ID, "own_topics").send_keys('graph neural\nau:\n"open')
        pages.submit("manage with an own topic to fix", "#save", 400)
        box = chrome.find_element(By.ID, "own_topics")
        box.clear()
        box.send_keys("graph neural\nau:Lovelace\ncat:cs.IR")
        pages.submit("manage with own topics", "#save")
        for box in chrome.find_elements(By.CSS_SELECTOR, 'input[name="topic"]:checked'):
            box.click()
        pages.submit("manage with a problem", "#save", 400)
        lock = sqlite3.connect(settings.database, isolation_level=None)
        try:
            lock.execute("BEGIN IMMEDIATE")  # a cycle holds the database
            pages.submit("busy", "#save", 503)
        finally:
            lock.close()
        # Sign out all links: the page says so, and a new link comes by mail.
        pages.open("manage again", manage)
        before = len(mail_server.received)
        pages.submit("signed out", "#signout")
        fresh = poll(lambda: mail_server.received[before:], "no new link mailed")[0].message
        text = fresh.get_body(("plain",)).get_content()
        pages.open("signed-out link", manage, 400)
        manage = re.search(rf"{re.escape(url)}/manage\?token=\S+", text)[0]
        pages.open("your data", manage.replace("/manage?", "/manage/data?"))
        pages.submit("deleted", "#delete")

    # The static export.
    site = tmp_path / "site"
    result = CliRunner().invoke(
        main, ["--config", str(settings.path), "archive", "--html", str(site)]
    )
    assert result.exit_code == 0, result.output
    documents = [visit.source for visit in pages.visits] + [site / name for name in EXPORTED]
    with nu_checking(tools.vnu, documents) as nu_messages:  # java runs while axe-core does
        for name in EXPORTED:
            pages.open(f"export {name}", (site / name).as_uri())
        messages = nu_messages()
    assert [visit.source for visit in pages.visits] == documents
    names = {str(visit.source): visit.name for visit in pages.visits}
    report = {
        "tools": {"vnu": VNU_VERSION, "axe-core": AXE_VERSION},
        "nu": [
            {"page": names.get(unquote(m.get("url", "")[5:]), m.get("url")), **m} for m in messages
        ],
        "axe": {key: found for key, found in pages.axe.items() if found},
        "seconds": round(time.monotonic() - started, 1),
    }
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "standards.json").write_text(json.dumps(report, indent=1), encoding="utf-8")
    errors = [
        f"{m['page']}:{m.get('lastLine')}: {m['message']}"
        for m in report["nu"]
        if m["type"] in ("error", "non-document-error")
    ]
    serious = [
        f"{key}: {v['id']} ({v['impact']}): {v['help']}: {v['nodes'][:3]}"
        for key, found in pages.axe.items()
        for v in found
        if v["impact"] in BLOCKING
    ]
    assert len(pages.visits) == 40 + len(EXPORTED)  # every page above was checked
    assert len(pages.axe) == len(pages.visits) * len(WIDTHS) * len(SCHEMES)
    assert not errors, "\n".join(errors)
    assert not serious, "\n".join(serious)


def test_the_pages_media_queries_change_colours_and_sizes_never_what_is_shown():
    """What lets axe-core run its other rules at one width and scheme only (MEDIA_RULES)."""
    templates = Path(__file__).parent.parent / "templates" / "web"
    hiding = re.compile(r"display\s*:|visibility\s*:|content\s*:|order\s*:")
    for template in templates.glob("*.html"):
        text = template.read_text(encoding="utf-8")
        for media in re.finditer(r"@media[^{]*\{((?:[^{}]*\{[^{}]*\})*)[^{}]*\}", text):
            assert not hiding.search(media[1]), (template.name, media[0][:200])
