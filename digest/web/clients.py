"""Who a request comes from: its client's address, and that address's network."""

from __future__ import annotations

import ipaddress

from aiohttp import web


def client_address(request: web.BaseRequest) -> str:
    """Return the client's address: the peer, or behind a local proxy X-Forwarded-For's last."""
    remote = request.remote or ""
    forwarded = request.headers.get("X-Forwarded-For", "")
    try:
        address = ipaddress.ip_address(remote)
        loopback = (getattr(address, "ipv4_mapped", None) or address).is_loopback
    except ValueError:
        loopback = False
    last = forwarded.rsplit(",", 1)[-1].strip()
    return last[:64] if loopback and last else remote


def network(address: str) -> str:
    """Return the client network of an address: its /24 (IPv4) or /64 (IPv6), else itself."""
    try:
        parsed = ipaddress.ip_address(address.strip())
    except ValueError:
        return address[:64]  # not an address (a test's transport): counted as it is
    if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped is not None:
        parsed = parsed.ipv4_mapped
    prefix = 24 if parsed.version == 4 else 64
    return str(ipaddress.ip_network(f"{parsed}/{prefix}", strict=False))


def client_network(request: web.BaseRequest) -> str:
    """Return the network (IPv4 /24, IPv6 /64) a request's client is in: one household, one
    office or one attacker's host, however many addresses it uses."""
    return network(client_address(request))
