"""A private Dovecot IMAP server on 127.0.0.1 (Debian's dovecot-imapd), for the bounce tests.

It runs in the foreground from its own config file in a temporary folder: its own base_dir,
state_dir and log, any user name logging in with one password, each user's mail a Maildir
under the folder. Nothing of the system's Dovecot is read or changed. It is started as root
(Dovecot drops to `nobody` for the mail), so the mail folders belong to `nobody`.
"""

from __future__ import annotations

import contextlib
import imaplib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from helpers.mailserver import free_port

PASSWORD = "a-test-password"

CONFIG = """\
base_dir = {root}/run
state_dir = {root}/state
instance_name = digest-test-{port}
log_path = {root}/dovecot.log
listen = 127.0.0.1
protocols = imap
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
passdb {{
  driver = static
  args = password={password}
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={root}/home/%u
}}
mail_location = maildir:~/Maildir
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {tls_port}
    ssl = yes
  }}
}}
service anvil {{
  chroot =
  unix_listener anvil-auth-penalty {{
    mode = 0  # no penalty: a wrong password would delay every later login by 2 s and more
  }}
}}
{ssl}
"""


def dovecot_binary() -> str:
    """Return Debian's dovecot; fail clearly when it (or root) is missing."""
    binary = shutil.which("dovecot") or "/usr/sbin/dovecot"
    if not os.path.exists(binary):
        raise RuntimeError("install Debian's dovecot-imapd (.ci/run does)")
    if os.geteuid() != 0:
        raise RuntimeError("the IMAP tests start Dovecot as root (as CI runs them)")
    return binary


class Dovecot:
    """Dovecot in the foreground: plain IMAP on `port`, IMAP over TLS on `tls_port`."""

    def __init__(self, cert_file: Path | None = None, key_file: Path | None = None):
        self.binary = dovecot_binary()
        self.root = Path(tempfile.mkdtemp(prefix="digest-dovecot-"))
        self.root.chmod(0o755)  # the mail processes run as nobody
        nobody = pwd.getpwnam("nobody")
        home = self.root / "home"
        home.mkdir()
        os.chown(home, nobody.pw_uid, nobody.pw_gid)
        self.port, self.tls_port = free_port(), free_port()
        ssl = f"ssl = yes\nssl_cert = <{cert_file}\nssl_key = <{key_file}" if cert_file else ""
        self.config = self.root / "dovecot.conf"
        values = {
            "root": self.root, "port": self.port, "tls_port": self.tls_port if cert_file else 0,
            "password": PASSWORD, "uid": nobody.pw_uid, "gid": nobody.pw_gid,
            "ssl": ssl or "ssl = no",
        }  # fmt: skip
        self.config.write_text(CONFIG.format(**values))
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> Dovecot:
        with (self.root / "stderr.log").open("wb") as errors:
            self.process = subprocess.Popen(
                [self.binary, "-F", "-c", str(self.config)],
                stdout=subprocess.DEVNULL,
                stderr=errors,
            )
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    log = self.log()
                    self.__exit__()
                    raise RuntimeError(f"dovecot did not start:\n{log}") from None
                time.sleep(0.05)

    def __exit__(self, *exc: object) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.root, ignore_errors=True)

    def log(self) -> str:
        """Return what Dovecot logged."""
        text = ""
        for name in ("stderr.log", "dovecot.log"):
            with contextlib.suppress(OSError):
                text += (self.root / name).read_text(errors="replace")
        return text

    def client(self, user: str) -> imaplib.IMAP4:
        """Return a logged-in plain IMAP client for a user."""
        client = imaplib.IMAP4("127.0.0.1", self.port, timeout=10)
        client.login(user, PASSWORD)
        return client

    def append(self, user: str, message: bytes, folder: str = "INBOX") -> None:
        """Deliver a message into a user's folder, as the relay's delivery would."""
        client = self.client(user)
        try:
            status, data = client.append(folder, None, None, message)
            assert status == "OK", data
        finally:
            client.logout()

    def folder(self, user: str, folder: str) -> list[bytes]:
        """Return the messages of a user's folder ([] if there is no such folder)."""
        client = self.client(user)
        try:
            status, _ = client.select(folder, readonly=True)
            if status != "OK":
                return []
            _, data = client.uid("SEARCH", "ALL")
            found = []
            for uid in data[0].split():
                _, parts = client.uid("FETCH", uid, "(BODY.PEEK[])")
                found.append(next(p[1] for p in parts if isinstance(p, tuple)))
            return found
        finally:
            client.logout()
