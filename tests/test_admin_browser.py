"""/admin in headless chromium, opened by the link `digest admin-link` prints, from `digest
serve` as a real process: a phone and a desktop, no sideways scrolling, pictures for docs/."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner
from helpers.browser import serving
from helpers.builders import ARTIFACTS, SECRET
from helpers.cycles import BASE
from helpers.mailserver import free_port
from helpers.operations import ADMIN_PASSWORD, history

from digest.cli import main

pytestmark = pytest.mark.slow(seconds=4)  # a browser, a real process, ten days of cycles
DAYS = 10


@pytest.fixture
def dashboard(tmp_path):
    """Ten days of cycles up to this morning, served by `digest serve`; yield its admin link."""
    port = free_port()
    today = datetime.now(UTC).replace(hour=6, minute=0, second=0, microsecond=0)
    start = today - timedelta(days=DAYS)
    with history(tmp_path, DAYS, 3, start, f'listen = "127.0.0.1:{port}"\n', more=6) as found:
        settings = found.settings
        result = CliRunner().invoke(main, ["--config", str(settings.path), "admin-link"])
        assert result.exit_code == 0, result.output
        env = {
            **os.environ,
            "DIGEST_CONFIG": str(settings.path),
            "DIGEST_SECRET": SECRET,
            "DIGEST_ADMIN_PASSWORD": ADMIN_PASSWORD,
        }
        with serving(env, port, tmp_path / "serve.log") as url:
            yield result.stdout.strip().replace(BASE, url)


def test_the_dashboard_fits_a_phone_and_a_desktop(browser, dashboard):
    ARTIFACTS.mkdir(exist_ok=True)
    for width in (1280, 375):
        browser.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": width < 500},
        )
        browser.get(dashboard)
        measures = browser.execute_script(
            "const charts = [...document.querySelectorAll('svg.chart')];"
            "return {scroll: document.documentElement.scrollWidth, h1: document.title,"
            " height: document.documentElement.scrollHeight, charts: charts.length,"
            " drawn: charts.filter(c => c.getBoundingClientRect().width > 200).length,"
            " narrowest: Math.min(...charts.map(c => c.getBoundingClientRect().width))};"
        )
        assert "the operator's view" in measures["h1"], measures
        assert measures["scroll"] <= width, (width, measures)  # no sideways scroll
        assert measures["charts"] == 6 and measures["drawn"] == 6, measures  # 3 topics + 3
        assert measures["narrowest"] <= width, measures
        browser.execute_cdp_cmd(  # the whole page in the picture
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": min(measures["height"], 2600), "deviceScaleFactor": 1,
             "mobile": width < 500},
        )  # fmt: skip
        browser.save_screenshot(str(ARTIFACTS / f"admin-{width}.png"))
        assert (ARTIFACTS / f"admin-{width}.png").stat().st_size > 20_000
