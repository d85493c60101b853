"""DKIM: every message the relay receives verifies with dkimpy, tampering breaks it, bad keys
are settings errors, and `digest check` prints the DNS record that verifies them."""

from __future__ import annotations

import base64
import email
import email.policy
import functools
import re
from pathlib import Path

import dkim
import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from helpers.builders import changed
from helpers.cycles import DAY1
from helpers.mailserver import MailServer, RecordingHandler
from helpers.site import start

import digest.dkim
from digest.cli import main
from digest.config import ConfigError
from digest.dkim import SIGNED, Signer
from digest.mail import Email, email_letter
from digest.pipeline import run_once
from digest.transport import MaildirTransport

SUBSCRIBERS = """email,name,keywords
ada@example.org,Ada Lovelace,
alan@example.org,Alan Turing,Graph Neural Network
grace@example.org,Grace Hopper,Diffusion Model for Recommendation;Large Language Model
user@bücher.de,Bücher,
"""
DKIM_KEYS = """dkim_domain = "example.org"
dkim_selector = "digest2025"
dkim_key_file = "keys/dkim.pem"
"""


def write_key(path: Path, key, fmt=serialization.PrivateFormat.PKCS8) -> Path:
    """Write a private key as PEM (PKCS#8, as `openssl genpkey` writes it)."""
    path.parent.mkdir(exist_ok=True)
    pem = key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption())
    path.write_bytes(pem)
    path.chmod(0o600)
    return path


@functools.cache
def rsa_key() -> rsa.RSAPrivateKey:
    """Return one 2048-bit RSA key per test process (making one takes a tenth of a second)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def new_key(kind: str):
    if kind == "rsa":
        return rsa_key()
    return ed25519.Ed25519PrivateKey.generate()


def check_output(settings_path: Path) -> str:
    result = CliRunner().invoke(main, ["--config", str(settings_path), "check"])
    assert result.exit_code == 0, result.output
    return result.output


def published(settings_path: Path) -> dict[bytes, bytes]:
    """Return the DNS TXT records `digest check` says to publish, as a resolver joins them."""
    records = {}
    for name, strings in re.findall(
        r"^\s+(\S+) IN TXT ((?:\"[^\"]*\" ?)+)$", check_output(settings_path), re.M
    ):
        parts = re.findall(r'"([^"]*)"', strings)
        assert all(len(part) <= 255 for part in parts)  # a DNS character-string's limit
        records[name.encode()] = "".join(parts).encode()
    assert records, "digest check printed no TXT record"
    return records


def resolver(records: dict[bytes, bytes]):
    """Return a dkimpy dnsfunc answering from the records (and nothing else)."""

    def dnsfunc(name: bytes, timeout: float = 5) -> bytes | None:
        return records.get(name)

    return dnsfunc


def signed_headers(raw: bytes) -> list[str]:
    """Return the h= of a raw message's DKIM-Signature, read without decoding."""
    message = email.message_from_bytes(raw, policy=email.policy.compat32)
    signature = re.sub(r"\s+", "", str(message["DKIM-Signature"]))
    return re.search(r"(?:^|;)h=([^;]+)", signature)[1].split(":")


def header_names(raw: bytes) -> set[str]:
    head = raw.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0].decode()
    return {m.lower() for m in re.findall(r"^([!-9;-~]+):", head, re.M)}


@pytest.fixture
def dkim_settings(make_settings, fake_arxiv, tmp_path):
    """Settings signing with a fresh key of the asked kind; every fixture paper is news."""

    def make(kind: str = "rsa", subscribers: str = SUBSCRIBERS):
        write_key(tmp_path / "keys" / "dkim.pem", new_key(kind))
        settings = make_settings(subscribers=subscribers, extra=DKIM_KEYS)
        return changed(settings, first_run_days=10_000)

    return make


@pytest.mark.parametrize(("kind", "smtputf8"), [("rsa", True), ("rsa", False), ("ed25519", True)])
@pytest.mark.slow
def test_every_digest_the_relay_receives_verifies(dkim_settings, tmp_path, kind, smtputf8):
    settings = dkim_settings(kind)
    dns = resolver(published(tmp_path / "settings.toml"))
    with MailServer(RecordingHandler(), enable_SMTPUTF8=smtputf8) as server:
        report = run_once(changed(settings, smtp_port=server.port), clock=lambda: DAY1)
        received = server.received
    assert report.ok and report.delivery.sent == len(received) == 4
    # As written over SMTPUTF8, else the ASCII form (IDNA domain): both are signed.
    idn = "user@bücher.de" if smtputf8 else "user@xn--bcher-kva.de"
    assert sorted(r.rcpt_tos[0] for r in received)[-1] == idn
    for item in received:
        raw = item.data
        assert b"\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b"")  # CRLF, as sent
        assert raw.startswith(b"DKIM-Signature: v=1; a=" + Signer.of(settings.smtp).key.algorithm)
        assert dkim.verify(raw, dnsfunc=dns), item.rcpt_tos
        h = signed_headers(raw)
        assert "list-unsubscribe" in h and "list-unsubscribe-post" in h
        assert h == [n.lower() for n in SIGNED if n.lower() in header_names(raw)]
        assert len(h) == len(set(h)) == 10 and set(h) == {  # a digest has every one of them
            "from",
            "to",
            "subject",
            "date",
            "message-id",
            "mime-version",
            "content-type",
            "list-id",
            "list-unsubscribe",
            "list-unsubscribe-post",
        }
        tags = re.sub(r"\s+", "", str(item.message["DKIM-Signature"]))
        assert "c=relaxed/relaxed;d=example.org;" in tags and "s=digest2025;" in tags


def test_tampering_breaks_the_signature(dkim_settings, mail_server, tmp_path):
    settings = dkim_settings("rsa", SUBSCRIBERS.splitlines()[0] + "\nada@example.org,Ada,\n")
    dns = resolver(published(tmp_path / "settings.toml"))
    assert run_once(settings, clock=lambda: DAY1).delivery.sent == 1
    (item,) = mail_server.received
    raw = item.data
    assert dkim.verify(raw, dnsfunc=dns)
    post = b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"
    assert raw.count(post) == 1
    unsubscribe = re.search(rb"\r\nList-Unsubscribe:.*?\r\n(?! )", raw, re.S)[0]
    assert b"papers" in unsubscribe  # the link's host, however the header is written
    head, body = raw.split(b"\r\n\r\n", 1)
    tampered = {
        "List-Unsubscribe-Post altered": raw.replace(post, post.replace(b"One", b"Two")),
        "List-Unsubscribe-Post removed": raw.replace(post, b""),
        "List-Unsubscribe altered": raw.replace(
            unsubscribe, unsubscribe.replace(b"papers", b"attack")
        ),
        "body altered": head + b"\r\n\r\n" + body.replace(b"Hello", b"Howdy", 1),
        "header folded differently": raw.replace(b"\r\nSubject: ", b"\r\nSubject:\r\n  "),
    }
    assert b"Hello" in body
    results = {what: dkim.verify(message, dnsfunc=dns) for what, message in tampered.items()}
    # Relaxed canonicalization forgives refolding (relays do it); nothing else is forgiven.
    assert results == {
        "List-Unsubscribe-Post altered": False,
        "List-Unsubscribe-Post removed": False,
        "List-Unsubscribe altered": False,
        "body altered": False,
        "header folded differently": True,
    }


async def test_confirmation_and_note_mails_are_signed(dkim_settings, mail_server, tmp_path):
    settings = dkim_settings("ed25519")
    dns = resolver(published(tmp_path / "settings.toml"))
    site, server = await start(changed(settings, web_signup=True))
    try:
        await site.sign_up("nora@example.org", name="Nora Noether", client="198.51.100.1")
        await site.sign_up("ada@example.org", client="198.51.100.2")  # subscribed: a note
        await site.signup.idle()
    finally:
        await site.client.close()
        await server.close()
    got = {r.rcpt_tos[0]: r.data for r in mail_server.received}
    assert sorted(got) == ["ada@example.org", "nora@example.org"]
    assert b"Subject: Confirm your subscription" in got["nora@example.org"]
    for raw in got.values():
        assert dkim.verify(raw, dnsfunc=dns)
        assert signed_headers(raw) == [n.lower() for n in SIGNED if n.lower() in header_names(raw)]
        assert {"from", "to", "subject", "date", "message-id"} <= set(signed_headers(raw))


async def test_a_message_in_a_maildir_verifies_with_its_lf_line_ends(dkim_settings, tmp_path):
    settings = dkim_settings("rsa")
    dns = resolver(published(tmp_path / "settings.toml"))
    note = Email("zoe@bücher.de", "Zoë", "A note", "Hello Zoë,\n\n  spaced  text \n", "<p>Hi</p>")
    mail = email_letter(note, settings, DAY1)
    assert mail.ascii_message is not None  # the IDNA form is signed as well
    box = MaildirTransport(tmp_path / "box")
    await box.send(mail, "papers@example.org")
    await box.send(type(mail)(mail.ascii_recipient, mail.ascii_message), "papers@example.org")
    stored = [path.read_bytes() for path in (tmp_path / "box" / "new").iterdir()]
    assert len(stored) == 2
    for raw in stored:
        assert b"\r" not in raw and raw.startswith(b"DKIM-Signature:")
        assert dkim.verify(raw, dnsfunc=dns)
        assert dkim.verify(raw.replace(b"\n", b"\r\n"), dnsfunc=dns)  # and once sent as CRLF


def bad_settings(make_settings, extra: str) -> str:
    with pytest.raises(ConfigError) as caught:
        make_settings(extra=extra)
    return "\n".join(caught.value.problems)


def test_dkim_keys_go_together(make_settings):
    problems = bad_settings(make_settings, DKIM_KEYS.replace('dkim_selector = "digest2025"\n', ""))
    assert re.search(
        r"settings\.toml:\d+: \[smtp\] dkim_selector: missing; dkim_domain, dkim_selector and "
        r"dkim_key_file go together: set all three to sign with DKIM, or none",
        problems,
    ), problems
    assert "dkim_domain:" not in problems and "dkim_key_file:" not in problems


def test_a_1024_bit_rsa_key_is_refused(make_settings, tmp_path):
    write_key(tmp_path / "keys" / "dkim.pem", rsa.generate_private_key(65537, 1024))
    problems = bad_settings(make_settings, DKIM_KEYS)
    line = next(n for n, t in enumerate(settings_lines(tmp_path), 1) if "dkim_key_file" in t)
    assert f"[smtp] dkim_key_file: {tmp_path / 'keys' / 'dkim.pem'} is a 1024-bit" in problems
    assert re.search(
        rf"settings\.toml:{line}: \[smtp\] dkim_key_file: \S+/keys/dkim\.pem is a 1024-bit RSA "
        r"key; DKIM needs 2048 to 4096 bits \(RFC 8301\): make a new one with: openssl genpkey "
        r"-algorithm RSA -pkeyopt rsa_keygen_bits:2048",
        problems,
    ), problems


def settings_lines(tmp_path: Path) -> list[str]:
    return (tmp_path / "settings.toml").read_text().splitlines()


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (
            None,
            r"cannot read \S+/keys/dkim\.pem \(No such file or directory\); make the key file "
            r"readable by the user digest runs as, or fix the path \(relative to the settings "
            r"file\)",
        ),
        ("dir", r"cannot read \S+/keys/dkim\.pem \(Is a directory\)"),
        (b"not a key\n", r"\S+/keys/dkim\.pem is not a PEM private key; make one with: openssl"),
        (
            "ec",
            r"\S+/keys/dkim\.pem holds a key of type EC; DKIM signs with RSA \(2048 bits or "
            r"more\) or ed25519",
        ),
        ("password", r"\S+/keys/dkim\.pem is protected by a password; store it without one"),
    ],
)
def test_an_unusable_key_file_names_the_key_and_the_fix(make_settings, tmp_path, content, expected):
    path = tmp_path / "keys" / "dkim.pem"
    path.parent.mkdir()
    if content == "dir":
        path.mkdir()
    elif content == "ec":
        write_key(path, ec.generate_private_key(ec.SECP256R1()))
    elif content == "password":
        key = new_key("rsa")
        encryption = serialization.BestAvailableEncryption(b"secret")
        path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
            )
        )
    elif content is not None:
        path.write_bytes(content)
    problems = bad_settings(make_settings, DKIM_KEYS)
    assert re.search(r"settings\.toml:\d+: \[smtp\] dkim_key_file: " + expected, problems), problems


def test_a_bad_domain_or_selector_is_a_settings_error(make_settings, tmp_path):
    write_key(tmp_path / "keys" / "dkim.pem", new_key("ed25519"))
    problems = bad_settings(
        make_settings,
        DKIM_KEYS.replace('"example.org"', '"example .org"').replace('"digest2025"', '"a/b"'),
    )
    assert "[smtp] dkim_domain: expected a DNS name such as example.org" in problems
    assert "[smtp] dkim_selector: expected a DNS name" in problems
    assert problems.count("\n") == 1  # those two, and no "missing" beside them


@pytest.mark.parametrize("kind", ["rsa", "ed25519"])
def test_check_prints_the_txt_record_to_publish(make_settings, tmp_path, kind):
    key = new_key(kind)
    if kind == "rsa":  # PKCS#1 ("BEGIN RSA PRIVATE KEY"), as older tools write it
        write_key(
            tmp_path / "keys" / "dkim.pem", key, serialization.PrivateFormat.TraditionalOpenSSL
        )
    else:
        write_key(tmp_path / "keys" / "dkim.pem", key)
    make_settings(extra=DKIM_KEYS)
    output = check_output(tmp_path / "settings.toml")
    bits = {"rsa": 2048, "ed25519": 256}[kind]
    assert (
        f"  DKIM: signs as d=example.org s=digest2025 with a {bits}-bit {kind} key; publish "
        'this DNS TXT record:\n    digest2025._domainkey.example.org. IN TXT "v=DKIM1; '
        f"k={kind}; p="
    ) in output
    ((name, value),) = published(tmp_path / "settings.toml").items()
    assert name == b"digest2025._domainkey.example.org."
    public = base64.b64decode(value.split(b"p=")[1])
    if kind == "rsa":
        expected = key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        assert output.count('" "') == 1  # 410 characters: two strings
    else:
        expected = key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
    assert public == expected
    assert "warning" not in output


def test_check_warns_of_a_foreign_domain_and_a_key_everyone_can_read(make_settings, tmp_path):
    write_key(tmp_path / "keys" / "dkim.pem", new_key("ed25519")).chmod(0o644)
    make_settings(extra=DKIM_KEYS.replace('"example.org"', '"mail.example.net"'))
    output = check_output(tmp_path / "settings.toml")
    assert (
        "warning: dkim_domain mail.example.net is neither the From domain example.org nor a "
        "parent or subdomain of it"
    ) in output
    assert "dkim.pem is readable by everyone; chmod o-r dkim.pem" in output


def test_check_says_when_dkim_is_off(make_settings, tmp_path):
    make_settings()
    assert "  DKIM: off (the relay signs" in check_output(tmp_path / "settings.toml")


def test_the_key_is_read_once_a_cycle(dkim_settings, mail_server, monkeypatch):
    settings = dkim_settings("rsa")
    reads = []
    real = digest.dkim.load_key
    monkeypatch.setattr(digest.dkim, "load_key", lambda path: reads.append(path) or real(path))
    report = run_once(settings, clock=lambda: DAY1)
    assert report.delivery.sent == 4 and reads == [settings.smtp.dkim_key_file]


def test_one_off_emails_reuse_the_key_until_its_file_changes(dkim_settings, tmp_path, monkeypatch):
    settings = dkim_settings("rsa")
    old = resolver(published(tmp_path / "settings.toml"))
    reads = []
    real = digest.dkim.load_key
    monkeypatch.setattr(digest.dkim, "load_key", lambda path: reads.append(path) or real(path))
    note = Email("nora@example.org", "Nora", "A note", "Hello Nora,\n", "<p>Hello</p>")
    first, second = (email_letter(note, settings, DAY1).message for _ in range(2))
    assert len(reads) == 1 and dkim.verify(first, dnsfunc=old) and dkim.verify(second, dnsfunc=old)
    write_key(tmp_path / "keys" / "dkim.pem", new_key("ed25519"))  # the operator rotates it
    new = resolver(published(tmp_path / "settings.toml"))
    third = email_letter(note, settings, DAY1).message
    assert b"a=ed25519-sha256" in third and dkim.verify(third, dnsfunc=new)
    assert not dkim.verify(third, dnsfunc=old)


def test_a_key_gone_by_the_send_phase_sends_nothing_unsigned(dkim_settings, mail_server, tmp_path):
    settings = dkim_settings("rsa")
    (tmp_path / "keys" / "dkim.pem").unlink()  # after the settings were checked
    report = run_once(settings, clock=lambda: DAY1)
    assert not report.ok and report.delivery.sent == 0 and mail_server.received == []
    assert "cannot read" in report.delivery.aborted and "dkim.pem" in report.delivery.aborted
    assert report.delivery.pending == 4  # queued for the next cycle
