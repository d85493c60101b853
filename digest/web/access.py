"""Who may see the operator's pages: /metrics (from this machine, or with its Bearer token) and
/admin (the admin password, or a short-lived signed link, over HTTPS or from this machine).

Every secret is compared in constant time, and failed attempts are counted per client network
and in all: past the limit a client is answered 429 without its credentials being looked at.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
import math
from enum import Enum

from aiohttp import web

from ..tokens import TokenError, TokenExpired, verify_admin_token
from .admission import Rate
from .base import Endpoint, is_local
from .clients import client_network, parse_address

log = logging.getLogger(__name__)

USER = "admin"  # HTTP Basic's user name for /admin; the password is DIGEST_ADMIN_PASSWORD
CHALLENGE = 'Basic realm="digest admin", charset="UTF-8"'
FAILURES_PER_NETWORK = 10  # failed attempts a minute from one client network, then 429
FAILURES_IN_ALL = 60  # failed attempts a minute from everyone together, then 429


class Verdict(Enum):
    """What a request's credentials came to."""

    NONE = "none"  # it brought none
    GOOD = "good"
    WRONG = "wrong"  # a wrong password, token or link (counted)
    EXPIRED = "expired"  # a genuine link whose time is up (not counted)


def same(given: str, expected: str) -> bool:
    """Tell whether two secrets are equal, in time that does not depend on where they differ."""
    return hmac.compare_digest(given.encode(), expected.encode())


class OperatorAccess:
    """Decide who may see /metrics and /admin, and count the failed attempts."""

    def __init__(self, endpoint: Endpoint):
        self.endpoint = endpoint
        self.settings = endpoint.settings
        self.per_network = Rate(FAILURES_PER_NETWORK)
        self.in_all = Rate(FAILURES_IN_ALL)

    def secure(self, request: web.BaseRequest) -> bool:
        """Tell whether a request may carry the admin's credentials: from this machine through
        no proxy, over TLS, or from a trusted proxy that says (X-Forwarded-Proto) its client
        used HTTPS. Any other proxy's word is not taken."""
        if is_local(request) or request.secure:
            return True
        peer = parse_address(request.remote or "")
        proxies = self.settings.web_trusted_proxies
        if peer is None or not any(peer.version == p.version and peer in p for p in proxies):
            return False
        schemes = [
            scheme.strip().lower()
            for header in request.headers.getall("X-Forwarded-Proto", [])
            for scheme in header.split(",")
        ]
        return bool(schemes) and all(scheme == "https" for scheme in schemes)

    def blocked(self, request: web.BaseRequest) -> float:
        """Return 0, or the seconds a client must wait after too many failed attempts (its
        network's, or everyone's: but a flood from afar never locks out this machine)."""
        network = client_network(request, self.settings.web_trusted_proxies)
        wait = self.per_network.waiting(network)
        return wait if is_local(request) else max(wait, self.in_all.waiting("all"))

    def failed(self, request: web.BaseRequest, what: str) -> None:
        """Count a failed attempt of the request's client network (and of everyone)."""
        network = client_network(request, self.settings.web_trusted_proxies)
        self.per_network.admit(network)
        self.in_all.admit("all")
        log.warning("web: %s refused: %s (from %s)", request.path, what, network)

    def metrics(self, request: web.BaseRequest) -> Verdict:
        """Judge a request for /metrics: local and through no proxy, or the Bearer token."""
        if is_local(request):
            return Verdict.GOOD
        header = request.headers.get("Authorization", "")
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer":
            return Verdict.NONE
        token = self.settings.web_metrics_token
        # Compared even without a token set, so that the answer takes as long either way.
        good = same(given.strip(), token or "\x00 no token is set") and token is not None
        return Verdict.GOOD if good else Verdict.WRONG

    def admin(self, request: web.BaseRequest) -> Verdict:
        """Judge a request for /admin: a signed link (?token=), else HTTP Basic as admin."""
        if "token" in request.query:
            try:
                verify_admin_token(
                    self.endpoint.secret, request.query["token"], self.endpoint.clock()
                )
            except TokenExpired:
                return Verdict.EXPIRED
            except TokenError:
                return Verdict.WRONG
            return Verdict.GOOD
        user, password = basic_credentials(request)
        if user is None or password is None:
            return Verdict.NONE
        expected = self.settings.admin_password
        # Both compared whatever the first gives: no early answer tells which was wrong.
        good_user = same(user, USER)
        good_password = same(password, expected or "\x00 no password is set")
        return Verdict.GOOD if good_user & good_password and expected else Verdict.WRONG

    def refuse(self, status: int, heading: str, text: str, wait: float = 0) -> web.Response:
        """Return a friendly refusal of an operator's page, with what to do."""
        response = self.endpoint.page("admin_refused", status=status, heading=heading, text=text)
        if status == 401 and self.settings.admin_password:
            response.headers["WWW-Authenticate"] = CHALLENGE
        if wait:
            response.headers["Retry-After"] = str(max(1, math.ceil(wait)))
        return response


def basic_credentials(request: web.BaseRequest) -> tuple[str | None, str | None]:
    """Return the user and password of an HTTP Basic Authorization header, or (None, None)."""
    scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None, None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None, None
    user, colon, password = decoded.partition(":")
    return (user, password) if colon else (None, None)
