"""Headers as they leave: the raw bytes aiosmtpd received, read by a parser that does not decode."""

from __future__ import annotations

import email
import email.policy
import re
from email.header import decode_header, make_header
from email.message import Message
from email.utils import parseaddr

import pytest
from helpers.builders import SECRET, changed
from helpers.cycles import DAY1, GNN
from helpers.site import start
from hypothesis import example, given, settings
from hypothesis import strategies as st

from digest.headers import LIMIT, mailbox, structured, unfold, unstructured
from digest.pipeline import run_once
from digest.tokens import unsubscribe_token

BASE = "https://papers.example.org"
LONG_BASE = "https://papers.computer-science.example-university.example.org/arxiv/daily-digest"
SENDER_NAME = "Zoë's Papiers — Café"
NAME = "Łukasz Żółć-Ünïcode, von und zu Lichtenstein"
SUBSCRIBERS = f"""email,name,keywords
ada@example.org,Ada Lovelace,
zoe@example.org,"{NAME}",{GNN}
"""
ENCODED_WORD = re.compile(r"=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=")
TOKEN = re.compile(r'(?:"(?:[^"\\]|\\.)*"|[^\s"])+')  # a quoted string is one, spaces and all


def head_lines(raw: bytes) -> list[str]:
    """Return the raw header lines of a message as received, not unfolded, in ASCII."""
    head = re.split(rb"\r?\n\r?\n", raw, maxsplit=1)[0]
    return head.decode("ascii").splitlines()  # raises if any header byte is not ASCII


def assert_lines_fit(lines: list[str]) -> None:
    """Assert every line is at most 78 characters (76 with an encoded-word), unless it holds
    a single token, and no line is only white space."""
    for line in lines:
        assert line.strip(), f"a line of only white space in {lines}"
        limit = 76 if ENCODED_WORD.search(line) else LIMIT
        if len(line) > limit:
            body = line if line[0] in " \t" else line.split(":", 1)[1]
            tokens = TOKEN.findall(body)
            assert len(tokens) == 1, f"{len(line)} characters, not one token: {line!r}"


def plain(raw: bytes) -> Message:
    """Parse without decoding: the stdlib's compat32 policy keeps header values as written."""
    return email.message_from_bytes(raw, policy=email.policy.compat32)


def decoded(raw: bytes):
    return email.message_from_bytes(raw, policy=email.policy.default)


def display_name(message: Message, field: str) -> str:
    """Return a display name decoded as RFC 2047 says, from the raw (undecoded) header."""
    return str(make_header(decode_header(parseaddr(unfold(message[field]))[0])))


def assert_html_starts_with_charset(raw: bytes) -> None:
    """Assert the HTML part, as sent, has <meta charset="utf-8"> first in its <head>."""
    (part,) = [p for p in plain(raw).walk() if p.get_content_type() == "text/html"]
    page = part.get_payload(decode=True)
    head = re.search(rb"<head(?:\s[^>]*)?>\s*<(\w+)([^>]*)>", page, re.IGNORECASE)
    assert head, page[:300]
    assert (head[1].lower(), head[2].strip()) == (b"meta", b'charset="utf-8"'), page[:300]
    assert page.index(b'charset="utf-8"') < 1024


@pytest.mark.parametrize("base_url", [BASE, LONG_BASE])
def test_a_digest_s_raw_headers_keep_urls_unencoded_and_lines_short(
    make_settings, fake_arxiv, mail_server, base_url
):
    settings = make_settings(subscribers=SUBSCRIBERS)
    sender = f"{SENDER_NAME} <papers@example.org>"
    settings = changed(settings, base_url=base_url, sender=sender, first_run_days=10_000)
    report = run_once(settings, clock=lambda: DAY1)
    assert report.delivery.sent == 2
    received = {r.rcpt_tos[0]: r.data for r in mail_server.received}
    assert sorted(received) == ["ada@example.org", "zoe@example.org"]
    for address, raw in received.items():
        lines = head_lines(raw)
        assert_lines_fit(lines)
        message = plain(raw)
        url = f"{base_url}/unsubscribe?token={unsubscribe_token(SECRET.encode(), address)}"
        assert message["List-Unsubscribe"] == f"<{url}>"  # exactly, nothing encoded or folded
        assert f"List-Unsubscribe: <{url}>" in lines  # one line, however long the URL
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert message["List-Id"] == "Daily Papers <daily-papers.example.org>"
        assert re.fullmatch(r"<[^<>@\s]+@example\.org>", message["Message-ID"])
        assert message.get_content_type() == "multipart/alternative"
        assert message.get_param("boundary").startswith("=_digest_")
        for field in ("List-Unsubscribe", "List-Unsubscribe-Post", "List-Id", "Message-ID"):
            assert "=?" not in message[field]
        assert "=?" not in unfold(message["Content-Type"]) and "=?" not in message["Date"]
        # A decoding parser gets the text back: the subject's "·", the display names.
        mail = decoded(raw)
        assert re.fullmatch(r"\d+ new · .+", mail["Subject"]) and mail.defects == []
        assert mail["From"].addresses[0].display_name == SENDER_NAME
        assert display_name(message, "From") == SENDER_NAME
        name = NAME if address == "zoe@example.org" else "Ada Lovelace"
        assert display_name(message, "To") == name
        assert mail["To"].addresses[0].addr_spec == address
        assert_html_starts_with_charset(raw)
    zoe = head_lines(received["zoe@example.org"])
    assert any(line.startswith("To: =?utf-8?") for line in zoe)  # encoded: it is text


async def test_a_confirmation_s_raw_headers_fit_and_decode(make_settings, mail_server):
    settings = changed(
        make_settings(), web_signup=True, sender=f"{SENDER_NAME} <papers@example.org>"
    )
    site, server = await start(settings)
    try:
        status, _ = await site.sign_up("zoe@example.org", [GNN], name=NAME)
        assert status == 200
        await site.signup.idle()
    finally:
        await site.client.close()
        await server.close()
    (received,) = mail_server.received
    lines = head_lines(received.data)
    assert_lines_fit(lines)
    message = plain(received.data)
    assert re.fullmatch(r"<[^<>@\s]+@example\.org>", message["Message-ID"])
    assert message.get_content_type() == "multipart/alternative"
    assert "=?" not in message["Message-ID"] and "=?" not in unfold(message["Content-Type"])
    mail = decoded(received.data)
    assert mail["Subject"] == "Confirm your subscription to Daily Papers" and mail.defects == []
    assert display_name(message, "From") == SENDER_NAME
    assert display_name(message, "To") == ""  # the typed name waits for confirmation
    assert mail["To"].addresses[0].addr_spec == "zoe@example.org"
    assert f"{BASE}/confirm?token=" in mail.get_body(("plain",)).get_content()
    assert_html_starts_with_charset(received.data)


# --- the folding functions, for any value ----------------------------------------------------

names = st.sampled_from(["Subject", "To", "List-Unsubscribe", "Content-Type", "X-A-Long-Name"])
vchar = st.characters(min_codepoint=0x21, max_codepoint=0x7E)
token = st.text(vchar, min_size=1, max_size=90).filter(lambda t: not set(t) & set('<>"'))
url = st.builds(
    lambda s: f"<https://example.org/{s}>",
    st.text(vchar, max_size=120).filter(lambda t: not set(t) & set('<>"')),
)
param = st.builds(
    lambda k, v: f'{k}="{v}"',
    st.from_regex(r"[a-z]{1,12}", fullmatch=True),
    st.text(
        st.characters(min_codepoint=0x20, max_codepoint=0x7E, exclude_characters='"\\<>'),
        max_size=100,
    ),
)
separator = st.sampled_from([" ", ", ", "; ", "  ", "\t"])
structured_values = st.lists(st.tuples(st.one_of(token, url, param), separator), max_size=8).map(
    lambda parts: "".join(a + b for a, b in parts).strip(" \t")
)


def assert_folded(name: str, lines: str) -> None:
    assert lines.endswith("\n") and lines.startswith(f"{name}:")
    body = lines[:-1].split("\n")
    assert all(line[0] in " \t" for line in body[1:])
    assert_lines_fit(body)


@settings(max_examples=300, deadline=None)
@given(name=names, value=structured_values)
@example(name="Content-Type", value='text/plain; name="' + "a b " * 25 + '"; x=y')
@example(name="List-Id", value="Daily Papers of a " + "very " * 12 + "long list <a.example.org>")
@pytest.mark.slow
def test_structured_folds_only_at_spaces_and_unfolds_to_the_value(name, value):
    lines = structured(name, value)
    assert unfold(lines) == f"{name}: {value}\n"  # nothing encoded, nothing added or lost
    assert_folded(name, lines)
    for line in lines.split("\n")[:-1]:  # no break inside a quoted string or <...>
        assert line.count('"') % 2 == 0 and line.count("<") == line.count(">"), lines


# Text as a subject or a display name may hold: any character but line breaks and surrogates.
text = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs",), exclude_characters="\r\n"),
    max_size=200,
).map(lambda t: t.strip(" \t"))


@settings(max_examples=300, deadline=None)
@given(value=text)
def test_unstructured_encodes_only_what_it_must_and_decodes_to_the_value(value):
    lines = unstructured("Subject", value)
    assert lines.isascii()
    assert_folded("Subject", lines)
    body = unfold(lines)[len("Subject: ") : -1]
    assert str(make_header(decode_header(body))) == value
    parsed = email.message_from_string(lines + "\n", policy=email.policy.default)
    assert parsed["Subject"] == value
    if all(" " <= c <= "~" or c == "\t" for c in value) and "=?" not in value:
        assert unfold(lines) == f"Subject: {value}\n"  # plain text stays as written


@settings(max_examples=300, deadline=None)
@given(display=text, address=st.sampled_from(["a@example.org", "a-long.local.part@example.org"]))
def test_mailbox_keeps_the_address_and_decodes_to_the_name(display, address):
    lines = mailbox("Reply-To", display, address)
    assert lines.isascii()
    assert_folded("Reply-To", lines)
    unfolded = unfold(lines)
    assert unfolded.endswith(f"<{address}>\n") if display else unfolded == f"Reply-To: {address}\n"
    shown, addr = parseaddr(unfolded[len("Reply-To: ") :])
    assert addr == address
    assert str(make_header(decode_header(shown))) == display


def test_a_token_longer_than_a_line_stays_whole_after_the_name():
    link = "<https://example.org/" + "x" * 100 + ">"
    assert structured("List-Unsubscribe", link) == f"List-Unsubscribe: {link}\n"
    both = structured("List-Unsubscribe", f"<mailto:u@example.org>, {link}")
    assert both == f"List-Unsubscribe: <mailto:u@example.org>,\n {link}\n"
    assert structured(
        "Content-Type", 'multipart/alternative; boundary="=_digest_' + "0" * 24 + '"'
    ) == ('Content-Type: multipart/alternative;\n boundary="=_digest_' + "0" * 24 + '"\n')
