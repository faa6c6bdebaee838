"""Egress guard (SSRF): which hosts and addresses the connector may connect to, and the pinned transport.

Rules, applied to every new connection — the first request, each redirect hop, each pagination
link and the OAuth token endpoint alike:

- When the runtime passes an egress allow-list (`ConnectorContext.allow_hosts`, glob patterns such as
  `*.example-erp.com`, `127.0.0.1` or `127.0.0.1:8080`, from a Policy), the host must match a pattern,
  as written in the URL (`host` or `host:port`); a listed host may resolve to any address. Unlisted
  hosts are refused without even being resolved — declared hosts too: the Policy is governance's rule
  over every connection author.
- Declared hosts — the host of the Connection's own `base_url` (and of an absolute OAuth `token_url`),
  as its config says after the project's settings (`env()`, `secret()`) were filled in when the
  connection was built — are the author's choice: they may resolve to any address (an on-premises
  ERP on a private network, a simulator on loopback). Run data can never choose a host: operation
  paths are joined below `base_url` and cannot name one. The host is compared as written (any port).
- Every other host — a redirect or pagination link to another host — is resolved with the event
  loop's `getaddrinfo` and refused when ANY resolved address is loopback, private, link-local,
  unspecified, multicast, reserved or shared (CGNAT), including IPv4 addresses embedded in IPv6
  (`::ffff:a.b.c.d`, 6to4, NAT64). `allow_private: true` in the config lifts this address rule;
  a Policy's `allow_hosts` lifts it for the hosts it lists. A declared host that is spelled
  differently (`localhost` for `127.0.0.1`) is another host.

Because the resolver is the one the OS uses, spellings like `127.1`, `0x7f000001`, `2130706433` or
`0177.1` are judged by the address they really reach, never by the text.

Pinning: the transport (`connectors.http.aiohttp_transport`) resolves each host once through
`resolve_host`, checks every address with `EgressPolicy`, and connects to one of exactly those
checked addresses. Nothing resolves the name again for that connection, so DNS rebinding between
check and connect cannot move it. The URL keeps the host name, so the Host header, TLS SNI and
certificate verification all use the name. Keep-alive connections are pooled per (scheme, host,
port) and were checked when opened. No proxy is ever used (a proxy would connect on our behalf to
an unchecked address).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import re
import socket
import ssl
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property

import httpx
import yarl

log = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_SHARED = ipaddress.IPv4Network("100.64.0.0/10")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_V4_COMPATIBLE = ipaddress.IPv6Network("::/96")


class EgressRefused(Exception):
    """A connection was refused by the egress rules before any connection was made."""


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64 or (ip in _V4_COMPATIBLE and int(ip) > 1):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def internal_reason(ip: IPAddress) -> str | None:
    """Why an address is not a public destination ('loopback', 'private', ...), or None if it is public."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(ip)
        if embedded is not None:  # the packets go to the IPv4 address: judge that one
            reason = internal_reason(embedded)
            return None if reason is None else f"{reason} (IPv4 {embedded} inside IPv6)"
    checks: list[tuple[bool, str]] = [
        (ip.is_unspecified, "unspecified"),
        (ip.is_loopback, "loopback"),
        (ip.is_link_local, "link-local"),
        (ip.is_multicast, "multicast"),
        (ip.is_private, "private"),
        (isinstance(ip, ipaddress.IPv4Address) and ip in _SHARED, "shared (CGNAT)"),
        (ip.is_reserved, "reserved"),
        (not ip.is_global, "not global"),
    ]
    for hit, reason in checks:
        if hit:
            return reason
    return None


def _glob(pattern: str) -> re.Pattern[str]:
    parts = (".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in pattern.strip().lower())
    return re.compile("".join(parts))


def normalise_host(host: str) -> str:
    return host.strip().strip("[]").rstrip(".").lower()


def host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@dataclass(frozen=True)
class EgressPolicy:
    """The egress rules of one connection (see the module docstring)."""

    allow_hosts: tuple[str, ...] | None = None
    allow_private: bool = False
    declared: frozenset[str] = frozenset()  # normalised hosts of the connection's own declaration

    def is_declared(self, host: str) -> bool:
        return normalise_host(host) in self.declared

    @cached_property
    def _patterns(self) -> tuple[re.Pattern[str], ...]:
        return tuple(_glob(p) for p in self.allow_hosts or ())

    def listed(self, host: str, port: int) -> bool:
        name = normalise_host(host)
        candidates = (name, host_port(name, port))
        return any(p.fullmatch(c) for p in self._patterns for c in candidates)

    def check_host(self, host: str, port: int) -> bool:
        """Refuse a host the allow-list does not name; return True when the list names it."""
        if self.allow_hosts is None:
            return False
        if self.listed(host, port):
            return True
        raise EgressRefused(f"host {host_port(normalise_host(host), port)} is not in the egress allow-list")

    def check_addresses(self, host: str, port: int, addresses: Iterable[str]) -> None:
        """Refuse when any resolved address is internal (unless allowed, or the host is declared)."""
        if self.allow_private or self.is_declared(host):
            return
        for text in addresses:
            ip = ipaddress.ip_address(text.split("%", 1)[0])
            reason = internal_reason(ip)
            if reason is not None:
                raise EgressRefused(
                    f"host {host_port(normalise_host(host), port)} resolves to {ip}, a {reason} address, and "
                    "is not the connection's declared host; list it in the egress policy or set "
                    "allow_private to reach it"
                )


def declared_hosts(*urls: httpx.URL) -> frozenset[str]:
    """The normalised hosts of `urls` as both the connector (httpx) and the transport (yarl, IDNA) spell them."""
    hosts: set[str] = set()
    for url in urls:
        hosts.add(normalise_host(url.host))
        with contextlib.suppress(ValueError, TypeError):
            hosts.add(normalise_host(yarl.URL(str(url)).raw_host or ""))
    hosts.discard("")
    return frozenset(hosts)


async def resolve_host(host: str, port: int, timeout: float | None = None) -> list[str]:
    """The addresses the OS resolver gives for `host` (once; the caller checks and pins them).
    Raises `OSError` (with a readable message) when the name does not resolve."""
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(timeout):
            infos = await loop.getaddrinfo(normalise_host(host), port, type=socket.SOCK_STREAM)
    except TimeoutError:
        raise OSError(f"resolving {host} timed out") from None
    except (OSError, UnicodeError) as exc:
        detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise OSError(f"cannot resolve {host}: {detail}") from None
    addresses: list[str] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        address = str(sockaddr[0])
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise OSError(f"cannot resolve {host}: no addresses")
    log.debug("egress: %s resolves to %s", host_port(host, port), ", ".join(addresses))
    return addresses


def ssl_context(verify: bool) -> ssl.SSLContext:
    return httpx.create_ssl_context(verify=verify, trust_env=False)
