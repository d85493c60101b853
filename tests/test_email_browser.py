"""The email as people see it: a delivered digest in headless chromium, phone and desktop, light
and dark."""

from __future__ import annotations

import pytest
from helpers.builders import ARTIFACTS, changed
from helpers.cycles import DAY1

from digest.pipeline import run_once

pytestmark = pytest.mark.slow  # a real browser: seconds to start, load and draw


# Each text element's colour against the card behind it, as WCAG computes contrast.
CONTRAST = """
function lum(rgb) {
  const c = rgb.match(/[\\d.]+/g).slice(0, 3).map(Number).map(v => v / 255)
    .map(v => v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4));
  return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2];
}
const card = getComputedStyle(document.querySelector('.card')).backgroundColor;
const worst = [];
const shown = '.card h1, .card h2, .card h3 a, .card p, .card a, .card li, .card b';
for (const el of document.querySelectorAll(shown)) {
  if (!el.offsetParent || !el.textContent.trim()) continue;
  const a = lum(getComputedStyle(el).color), b = lum(card);
  const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
  worst.push([ratio, el.tagName + '.' + el.className + ': ' + el.textContent.trim().slice(0, 30)]);
}
worst.sort((x, y) => x[0] - y[0]);
const body = getComputedStyle(document.body).backgroundColor;
return {card: card, body: body, bodyLum: lum(body), worst: worst.slice(0, 3)};
"""
# The smallest text shown, and every link's height.
SIZES = """
const texts = [];
for (const el of document.querySelectorAll('body *')) {
  if (!el.offsetParent) continue;
  const own = [...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim());
  if (own) texts.push([parseFloat(getComputedStyle(el).fontSize), el.tagName + '.' + el.className]);
}
texts.sort((a, b) => a[0] - b[0]);
const links = [...document.querySelectorAll('a')].filter(a => a.offsetParent)
  .map(a => [a.getBoundingClientRect().height, a.textContent.trim().slice(0, 30)])
  .sort((a, b) => a[0] - b[0]);
return {
  scroll: document.documentElement.scrollWidth,
  smallest: texts[0], lowest: links[0], links: links.length,
  column: document.querySelector('.card').getBoundingClientRect().width,
};
"""


@pytest.fixture
def email_file(make_settings, fake_arxiv, mail_server, tmp_path):
    """Deliver a first digest of every fixture paper to Ada; return its HTML part as a file."""
    settings = changed(make_settings(), first_run_days=10_000)
    run_once(settings, clock=lambda: DAY1)
    (message,) = mail_server.by_recipient()["ada@example.org"]
    path = tmp_path / "email.html"
    path.write_text(message.get_body(("html",)).get_content(), encoding="utf-8")
    return path


def show(browser, path, width: int, scheme: str) -> None:
    """Open the email at a width (a phone below 500 px) and a colour scheme."""
    browser.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": width < 500},
    )
    browser.execute_cdp_cmd(
        "Emulation.setEmulatedMedia",
        {"features": [{"name": "prefers-color-scheme", "value": scheme}]},
    )
    browser.get(path.as_uri())


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_email_reads_well_on_a_phone_and_a_desktop(browser, email_file, scheme):
    ARTIFACTS.mkdir(exist_ok=True)
    for width in (375, 1024):
        show(browser, email_file, width, scheme)
        sizes = browser.execute_script(SIZES)
        colours = browser.execute_script(CONTRAST)
        browser.save_screenshot(str(ARTIFACTS / f"email-{width}-{scheme}.png"))
        if width == 375:
            assert sizes["scroll"] <= 375, sizes  # no sideways scrolling on a phone
            assert sizes["column"] >= 343  # gutters of 16 px, not 36
        else:
            assert sizes["column"] <= 640, sizes  # lines of a readable length
        assert sizes["smallest"][0] >= 14, sizes
        assert sizes["links"] > 60 and sizes["lowest"][0] >= 24, sizes  # tap targets
        worst = colours["worst"][0]
        assert worst[0] >= 4.5, colours  # WCAG AA for every text against its card
        dark_background = colours["bodyLum"] < 0.05
        assert dark_background is (scheme == "dark"), colours
