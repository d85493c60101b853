"""Vote tokens and the shared body's vote slots, without a server: bound to person, paper, vote."""

from __future__ import annotations

import html
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest
from helpers.builders import SECRET

from digest.links import Links
from digest.mail import Composer
from digest.render import vote_slot
from digest.store import Edition
from digest.tokens import TokenError, read_link, read_vote, token_id, verify_vote, vote_signer

KEY = SECRET.encode()
ADA, ALAN = "ada@example.org", "alan@example.org"


def test_a_vote_token_verifies_for_its_person_paper_vote_and_version_only():
    token = vote_signer(KEY, ADA, 3)("hep-th/9901001", "up")
    assert token.startswith(f"{token_id(KEY, ADA)}.v3.")
    link = read_vote(token, "hep-th/9901001", "up")
    assert verify_vote(KEY, link, "Ada@Example.org") == "Ada@Example.org"  # any spelling
    for paper, vote, email, secret in (
        ("hep-th/9901002", "up", ADA, KEY),
        ("hep-th/9901001", "down", ADA, KEY),
        ("hep-th/9901001", "up", ALAN, KEY),
        ("hep-th/9901001", "up", ADA, b"another secret of at least thirty-two bytes"),
    ):
        with pytest.raises(TokenError):
            verify_vote(secret, read_vote(token, paper, vote), email)
    with pytest.raises(TokenError):  # the version is signed too
        verify_vote(KEY, read_vote(token.replace(".v3.", ".v4."), "hep-th/9901001", "up"), ADA)


def test_a_vote_token_is_no_other_token_and_none_is_a_vote_token():
    token = vote_signer(KEY, ADA, 0)("2511.00001", "up")
    with pytest.raises(TokenError):
        read_link(token)  # neither an unsubscribe nor a manage token
    links = Links("https://papers.example.org", KEY)
    for other in (links.unsubscribe(ADA), links.manage(ADA, 0)):
        with pytest.raises(TokenError):
            read_vote(other.split("token=")[1], "2511.00001", "up")
    for paper, vote in (("2511.00001", "sideways"), ("", "up"), ("a_b", "up"), (None, "up")):
        with pytest.raises(TokenError):
            read_vote(token, paper, vote)
        with pytest.raises(ValueError):
            vote_signer(KEY, ADA, 0)(paper or "", vote)


def test_one_shared_body_gets_each_recipient_s_own_tokens():
    marker = "DIGESTVOTE0123456789abcdef"
    links = Links("https://papers.example.org", KEY)
    votes = [(p, v) for p in ("2511.00001", "hep-th/9901001") for v in ("up", "down")]
    urls = [links.feedback(p, v, vote_slot(marker, p, v)) for p, v in votes]
    edition = Edition(
        id=1,
        subject="Daily Papers",
        text="{g}\n" + "\n".join(urls) + "\n",
        html="<p>{g}</p>" + "".join(f'<a href="{html.escape(u)}">x</a>' for u in urls),
        placeholders={"greeting": "{g}", "vote_token": marker},
    )
    composer = Composer(edition, "Daily Papers <papers@example.org>", "Daily Papers")

    def compose(email: str, **signer) -> EmailMessage:
        raw = composer.compose(
            email=email, name="", message_id="<1@example.org>", unsubscribe_url="u",
            date=datetime(2025, 11, 17, tzinfo=UTC), **signer,
        )  # fmt: skip
        return message_from_bytes(raw, policy=policy.default)

    for email in (ADA, ALAN):
        message = compose(email, vote_token=links.vote_tokens(email, 0))
        text = message.get_body(("plain",)).get_content()
        page = html.unescape(message.get_body(("html",)).get_content())
        for paper, vote in votes:
            mine = links.vote(email, 0, paper, vote)
            assert f"\n{mine}\n" in text and f'"{mine}"' in page
        assert marker not in text + page
    with pytest.raises(ValueError, match="vote_token"):  # a body with vote links needs them
        compose(ADA)
