"""The reading room in headless chromium: a phone and a desktop, no sideways scrolling."""

from __future__ import annotations

import os

import pytest
from helpers.browser import serving
from helpers.builders import ARTIFACTS, SECRET, settings_text
from helpers.cycles import DAY1
from helpers.mailserver import free_port

from digest.config import load_settings
from digest.pipeline import run_once

pytestmark = pytest.mark.slow  # a real browser: seconds to start, load and draw

PAGES = {
    "index": "/",
    "topic": "/topics/graph-neural-network",
    "day": "/days/2025-11-16",
    "search": "/search?q=diffusion",
}


@pytest.fixture
def site(fake_arxiv, mail_server, tmp_path):
    """Record a first cycle of every fixture paper, then run `digest serve`; yield its URL."""
    port = free_port()
    config = tmp_path / "settings.toml"
    text = settings_text(api_url=fake_arxiv.url, smtp_port=mail_server.port)
    text = text.replace("first_run_days = 2", "first_run_days = 10000")
    config.write_text(text + f'\n[web]\nlisten = "127.0.0.1:{port}"\n')
    (tmp_path / "subscribers.csv").write_text("email,name,keywords\nada@example.org,Ada,\n")
    run_once(load_settings(config, env={"DIGEST_SECRET": SECRET}), clock=lambda: DAY1)
    env = {**os.environ, "DIGEST_CONFIG": str(config), "DIGEST_SECRET": SECRET}
    with serving(env, port) as url:
        yield url


def test_the_pages_fit_a_phone_and_a_desktop(browser, site):
    ARTIFACTS.mkdir(exist_ok=True)
    for width in (375, 1280):
        browser.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": width < 500},
        )
        for name, path in PAGES.items():
            browser.get(site + path)
            measures = browser.execute_script(
                "const links = [...document.querySelectorAll('main a')].filter(a => "
                "a.offsetParent).map(a => a.getBoundingClientRect().height);"
                "return {scroll: document.documentElement.scrollWidth, "
                "column: document.querySelector('main').getBoundingClientRect().width, "
                "lowest: Math.min(...links), h1: document.querySelectorAll('h1').length};"
            )
            browser.save_screenshot(str(ARTIFACTS / f"reading-{name}-{width}.png"))
            assert measures["scroll"] <= width, (name, width, measures)  # no sideways scroll
            assert measures["lowest"] >= 24, (name, width, measures)  # tap targets
            assert measures["h1"] == 1, (name, measures)
            if width == 1280:
                assert measures["column"] <= 760, (name, measures)  # a readable line length
