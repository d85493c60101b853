"""Which network a request comes from, for per-client limits: /24 for IPv4, /64 for IPv6.

`X-Forwarded-For` is read only when the direct peer is one of `[web] trusted_proxies`: then
the client is the nearest hop, from the right, that is not itself a trusted proxy.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

from aiohttp import web

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
UNKNOWN = "unknown"  # a peer that is no IP address (a Unix socket): all such share one limit


def parse_address(text: str) -> Address | None:
    """Return an address as a proxy writes it (IPv4-mapped IPv6 as IPv4), or None."""
    text = text.strip()
    if text.startswith("[") and "]" in text:  # "[2001:db8::1]:443"
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # "192.0.2.1:443"
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def network_of(address: Address) -> str:
    """Return the network a limit counts an address in: its /24 (IPv4) or /64 (IPv6)."""
    prefix = 24 if address.version == 4 else 64
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


def _trusted(address: Address, proxies: Iterable[Network]) -> bool:
    return any(address.version == p.version and address in p for p in proxies)


def client_address(
    remote: str | None, forwarded: Sequence[str], proxies: Sequence[Network]
) -> Address | None:
    """Return the client's address: the peer, or behind trusted proxies the nearest
    X-Forwarded-For hop that is not one of them (None: the peer is no IP address)."""
    client = parse_address(remote or "")
    if client is None or not _trusted(client, proxies):
        return client
    hops = [hop for header in forwarded for hop in header.split(",")]
    for hop in reversed(hops):
        address = parse_address(hop)
        if address is None:
            return client  # garbled: the nearest hop known good stands for the client
        client = address
        if not _trusted(address, proxies):
            break
    return client


def client_network(request: web.BaseRequest, proxies: Sequence[Network]) -> str:
    """Return the network (/24 or /64) of the client a request comes from, as text."""
    forwarded = request.headers.getall("X-Forwarded-For", [])
    address = client_address(request.remote, forwarded, proxies)
    return network_of(address) if address is not None else UNKNOWN


def network(address: str) -> str:
    """Return the network a limit counts an address written as text in, else the text itself."""
    parsed = parse_address(address)
    return network_of(parsed) if parsed is not None else address[:64]
