"""Sending over real SMTP servers: plain, STARTTLS, implicit TLS, with a login."""

from __future__ import annotations

import email
import email.policy
import itertools
import ssl
from email.header import decode_header, make_header
from email.utils import parseaddr
from pathlib import Path

import pytest
import trustme
from aiosmtpd.smtp import AuthResult
from helpers.builders import changed
from helpers.cycles import DAY1
from helpers.mailserver import MailServer, RecordingHandler
from hypothesis import given, settings
from hypothesis import strategies as st

from digest.mail import Composer, Letter
from digest.pipeline import run_once
from digest.store import Edition
from digest.transport import Failure, SendError, SmtpConnection


@pytest.fixture(scope="module")
def tls(tmp_path_factory) -> tuple[ssl.SSLContext, Path]:
    """Return a server TLS context for 127.0.0.1 and the CA file that trusts it."""
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    ca_file = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    return context, ca_file


class Logins:
    """An aiosmtpd authenticator that accepts one user and remembers every attempt."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, bytes]] = []

    def __call__(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        self.seen.append((auth_data.login.decode(), auth_data.password))
        ok = auth_data.login == b"digest" and auth_data.password == b"pa55"
        return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 535


def smtp_extra(ca_file: Path, mode: str) -> str:
    return f'ca_file = "{ca_file}"\n{mode} = true\n'


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")
@pytest.mark.parametrize("mode", ["starttls", "tls"])
def test_delivery_over_tls_with_login_from_environment(
    make_settings, fake_arxiv, tls, monkeypatch, mode
):
    context, ca_file = tls
    logins = Logins()
    options = dict(authenticator=logins, auth_required=True)
    if mode == "starttls":
        options |= dict(tls_context=context, require_starttls=True)
    else:
        # aiosmtpd only counts STARTTLS as TLS for AUTH; the socket here is TLS from the start.
        options |= dict(ssl_context=context, auth_require_tls=False)
    with MailServer(RecordingHandler(), **options) as server:
        monkeypatch.setenv("DIGEST_SMTP_USERNAME", "digest")
        monkeypatch.setenv("DIGEST_SMTP_PASSWORD", "pa55")
        settings = make_settings()
        settings = changed(
            settings, smtp_port=server.port, smtp_ca_file=ca_file, **{f"smtp_{mode}": True}
        )
        report = run_once(settings, clock=lambda: DAY1)
        assert report.delivery.sent == 2, report.summary()
        assert sorted(server.by_recipient()) == ["ada@example.org", "grace@example.org"]
        assert logins.seen and set(logins.seen) == {("digest", b"pa55")}


def test_wrong_password_is_reported_not_crashed(make_settings, fake_arxiv, tls, monkeypatch):
    context, ca_file = tls
    with MailServer(
        RecordingHandler(),
        authenticator=Logins(),
        auth_required=True,
        tls_context=context,
        require_starttls=True,
    ) as server:
        monkeypatch.setenv("DIGEST_SMTP_USERNAME", "digest")
        monkeypatch.setenv("DIGEST_SMTP_PASSWORD", "wrong")
        settings = make_settings()
        settings = changed(
            settings, smtp_port=server.port, smtp_ca_file=ca_file, smtp_starttls=True
        )
        report = run_once(settings, clock=lambda: DAY1)
        assert report.delivery.sent == 0 and not report.ok and report.delivery.pending == 2
        assert "SMTPAuthenticationError: 535" in report.delivery.aborted
        assert server.received == []


# aiosmtpd reports the handshake we break off from its own thread; that report is expected.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_untrusted_certificate_is_refused(make_settings, fake_arxiv, tls):
    context, _ = tls
    with MailServer(RecordingHandler(), tls_context=context, require_starttls=True) as server:
        settings = make_settings()
        settings = changed(settings, smtp_port=server.port, smtp_starttls=True)
        report = run_once(settings, clock=lambda: DAY1)
        assert report.delivery.sent == 0 and report.delivery.pending == 2
        assert "certificate is not trusted" in report.delivery.aborted
        assert server.received == []


EDITION = Edition(
    id=1,
    subject="Daily Papers: 1 new paper — ünïcode",
    text="{g}\n. dot line\n",
    html="<p>{g} é</p>",
    placeholders={"greeting": "{g}", "unsubscribe_url": "{u}", "email": "{e}"},
)


def compose(name: str = "Ada Lovelace", email: str = "ada@example.org") -> bytes:
    composer = Composer(EDITION, "Daily Papers <papers@example.org>", "Daily Papers")
    return composer.compose(
        email=email,
        name=name,
        message_id="<1@example.org>",
        unsubscribe_url="https://x/unsubscribe?token=t",
        date=DAY1,
    )


def test_composed_message_parses_with_every_header_and_part():
    message = email.message_from_bytes(compose("Zoë <O'Brien>"), policy=email.policy.default)
    assert message["To"].addresses[0].display_name == "Zoë <O'Brien>"
    assert message["Subject"] == "Daily Papers: 1 new paper — ünïcode"
    assert message["List-Unsubscribe"] == "<https://x/unsubscribe?token=t>"
    assert message.get_body(("plain",)).get_content() == "Hello Zoë <O'Brien>,\n. dot line\n"
    assert message.get_body(("html",)).get_content() == "<p>Hello Zoë &lt;O&#x27;Brien&gt;, é</p>"
    assert message.defects == [] and all(not p.defects for p in message.walk())


def test_headers_refuse_injection():
    with pytest.raises(ValueError, match="line break"):
        compose(name="Ada\r\nBcc: eve@example.org")


async def test_closed_port_is_a_transient_error(make_settings):
    settings = make_settings()
    connection = SmtpConnection(changed(settings, smtp_port=1, smtp_timeout=2.0).smtp)
    with pytest.raises(SendError) as info:
        await connection.send(Letter("a@example.org", compose()), "papers@example.org")
    assert info.value.failure is Failure.TRANSIENT


# Names as subscribers.csv gives them: stripped, without control characters.
names = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=40).map(
    str.strip
)


@settings(max_examples=200, deadline=None)
@given(name=names)
@pytest.mark.slow
def test_any_subscriber_name_stays_inside_the_to_header(name):
    raw = compose(name=name)
    head = raw.split(b"\n\n", 1)[0].decode("ascii")  # every header is plain ASCII
    fields = [line.split(":", 1)[0] for line in head.split("\n") if not line[:1].isspace()]
    assert fields == [
        "From",
        "Subject",
        "List-Id",
        "List-Unsubscribe-Post",
        "Auto-Submitted",
        "Precedence",
        "MIME-Version",
        "To",
        "Date",
        "Message-ID",
        "List-Unsubscribe",
        "Content-Type",
    ]
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert message["To"].addresses[0].addr_spec == "ada@example.org"
    assert message["To"].addresses[0].addr_spec == "ada@example.org"
    # Decoded as RFC 2047 says (the email package's address parser collapses the spaces of
    # a display name, even inside an encoded word).
    display, _ = parseaddr(" ".join(line.strip() for line in to_lines(head)))
    assert str(make_header(decode_header(display))) == name


def to_lines(head: str) -> list[str]:
    """Return the To header's lines, unfolded from the message head, without its name."""
    lines = head.split("\n")
    start = next(i for i, line in enumerate(lines) if line.startswith("To: "))
    return [lines[start][4:], *itertools.takewhile(lambda x: x[:1] == " ", lines[start + 1 :])]
