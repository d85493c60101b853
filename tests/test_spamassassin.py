"""SpamAssassin (Debian's, local rules only) scores a real digest and a confirmation at most 0."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from helpers.builders import changed
from helpers.cycles import DAY1, GNN
from helpers.site import start

from digest.pipeline import run_once

pytestmark = pytest.mark.slow  # SpamAssassin takes seconds to start and score

STATUS_RE = re.compile(
    r"^X-Spam-Status: (Yes|No), score=(-?[\d.]+) .*?tests=((?:\w+,\s*)*\w+)", re.M
)


def spamassassin() -> str:
    """Return the spamassassin program; fail in CI without it (.ci/run installs it), else skip."""
    found = shutil.which("spamassassin")
    if found:
        return found
    if os.environ.get("CI"):
        pytest.fail("spamassassin is missing: install Debian's spamassassin (.ci/run does)")
    pytest.skip("spamassassin is not installed here (Debian: apt-get install spamassassin)")


def scores(program: str, messages: list[bytes], home: Path) -> list[tuple[float, list[str], str]]:
    """Run `spamassassin -L -t` (no network) once on messages as received (an mbox: one start
    of its rules instead of one a message); return each one's score, the rules that fired and
    the report."""
    home.mkdir(exist_ok=True)
    mbox = b"".join(
        b"From message-%d@digest.test Sat Jan  1 00:00:00 2000\n" % n
        + re.sub(rb"^(>*From )", rb">\1", raw.replace(b"\r\n", b"\n"), flags=re.M).rstrip(b"\n")
        + b"\n\n"
        for n, raw in enumerate(messages)
    )
    result = subprocess.run(
        [program, "-L", "-t", "--mbox"],
        input=mbox,
        capture_output=True,
        timeout=120,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "LANG": "C"},
        check=True,
    )
    out = result.stdout.decode("utf-8", "replace")
    found = {}
    for n, message in re.findall(
        r"^From message-(\d+)@digest.test (.*?)(?=^From |\Z)", out, re.M | re.S
    ):
        head = message.split("\n\n", 1)[0].replace("\n\t", " ").replace("\n ", " ")  # unfolded
        status = STATUS_RE.search(head)
        assert status, message[:3000]
        rules = [r.strip() for r in status[3].split(",") if r.strip() not in ("", "none")]
        report = message[message.find("Content analysis details") :]
        found[int(n)] = (float(status[2]), rules, report)
    assert sorted(found) == list(range(len(messages))), out[:3000]  # in any order
    return [found[n] for n in range(len(messages))]


async def test_a_digest_and_a_confirmation_score_at_most_zero(
    make_settings, fake_arxiv, mail_server, tmp_path
):
    program = spamassassin()
    settings = changed(make_settings(), first_run_days=10_000, web_signup=True)
    await asyncio.to_thread(run_once, settings, clock=lambda: DAY1)
    (digest,) = [r.data for r in mail_server.received if r.rcpt_tos == ["ada@example.org"]]
    mail_server.handler.received.clear()
    site, server = await start(settings)
    try:
        status, _ = await site.sign_up("zoe@example.org", [GNN], name="Zoë Noether")
        assert status == 200
        await site.signup.idle()
    finally:
        await site.client.close()
        await server.close()
    (confirmation,) = [r.data for r in mail_server.received]
    assert b"Confirm your subscription" in confirmation
    scored = scores(program, [digest, confirmation], tmp_path / "home")
    for kind, (points, rules, report) in zip(("digest", "confirmation"), scored, strict=True):
        assert points <= 0, f"the {kind} scored {points} ({', '.join(rules)}):\n{report}"
        if kind == "digest":
            # SpamAssassin reads List-Id, List-Unsubscribe and Precedence as a real list's.
            assert "MAILING_LIST_MULTI" in rules, report
