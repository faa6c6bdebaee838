"""The HTTP connector's transport: aiohttp's client behind the egress guard.

Measured against httpx's default httpcore transport with the same egress guard, on the same
loopback sink (bench/p1_transports.py, 32 concurrent POSTs): 4.8x the calls per second through
the connector, 7x for raw httpx. The connector keeps httpx's URL and header types; building an
`httpx.Request` and reading through an `httpx.Response` for every call cost about 80 µs more, so
`fetch` takes the parts and returns a `Fetched` (status, headers, body chunks) instead — bodies with
a `Content-Encoding` are still decoded by httpx's decoders. The egress guard (`connectors.http.egress`) is applied by
`GuardedResolver`: every host is resolved once, the allow-list and every resolved address are
checked, and aiohttp connects only to the checked addresses (no second lookup, so DNS rebinding
cannot slip in between). IP-literal hosts, which aiohttp never passes to a resolver, and spellings
yarl refuses (`127.1`) are checked before the request. aiohttp's exceptions are translated into
httpx's, so the connector's error classification does not depend on the transport.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import socket
from collections.abc import AsyncIterator

import aiohttp
import httpx
from aiohttp.abc import AbstractResolver, ResolveResult

from connectors.http.egress import EgressPolicy, normalise_host, resolve_host, ssl_context

CHUNK = 64 * 1024
_FRAMING = frozenset({"content-length", "transfer-encoding"})  # aiohttp frames the body itself


class GuardedResolver(AbstractResolver):
    """Resolves with the loop's getaddrinfo and applies the egress rules to the name and every address."""

    def __init__(self, policy: EgressPolicy) -> None:
        self._policy = policy

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        listed = self._policy.check_host(host, port)
        addresses = await resolve_host(host, port)
        if not listed:
            self._policy.check_addresses(host, port, addresses)
        return [
            ResolveResult(
                hostname=host,
                host=address,
                port=port,
                family=socket.AF_INET6 if ":" in address else socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
            for address in addresses
        ]

    async def close(self) -> None:
        return None


def _odd_host(host: str) -> bool:
    """A host yarl would refuse but the OS resolver reads as an address (`127.1`, `0x7f000001`, `2130706433`)."""
    if _is_ip(host):
        return False
    return all(part.isdigit() or part.lower().startswith("0x") for part in host.split(".")) and bool(host)


@functools.lru_cache(maxsize=4096)
def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(normalise_host(host))
    except ValueError:
        return False
    return True


class _Stream(httpx.AsyncByteStream):
    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.content.iter_chunked(CHUNK):
                yield chunk
        except Exception as exc:
            raise _translate(exc) from None

    async def aclose(self) -> None:
        self._response.release()


class Fetched:
    """A response whose headers have arrived: `chunks()` yields the (decoded) body, `release()` ends it."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response
        self.status = response.status
        self.headers = httpx.Headers([(k.decode("latin-1"), v.decode("latin-1")) for k, v in response.raw_headers])

    async def chunks(self) -> AsyncIterator[bytes]:
        if self.headers.get("content-encoding", "identity").strip().lower() not in ("", "identity"):
            decoded = httpx.Response(self.status, headers=self.headers, stream=_Stream(self._response))
            async for chunk in decoded.aiter_bytes():
                yield chunk
            return
        try:
            async for chunk in self._response.content.iter_chunked(CHUNK):
                yield chunk
        except Exception as exc:
            raise _translate(exc) from None

    def release(self) -> None:
        self._response.release()


def _translate(exc: BaseException) -> BaseException:
    """aiohttp → httpx exceptions (the egress guard's own refusal passes through unchanged)."""
    text = str(exc) or type(exc).__name__
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return httpx.ConnectTimeout(text)
    if isinstance(exc, aiohttp.SocketTimeoutError | aiohttp.ServerTimeoutError):
        return httpx.ReadTimeout(text)
    if isinstance(exc, asyncio.TimeoutError):
        return httpx.TimeoutException(text)
    if isinstance(exc, aiohttp.ClientConnectorCertificateError | aiohttp.ClientSSLError):
        return httpx.ConnectError(f"[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: {text}")
    if isinstance(exc, aiohttp.ClientConnectorError):
        return httpx.ConnectError(text)
    if isinstance(exc, aiohttp.InvalidURL):
        return httpx.InvalidURL(text)
    if isinstance(exc, aiohttp.ClientPayloadError):
        return httpx.RemoteProtocolError(text)
    if isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientOSError):
        return httpx.ReadError(text)
    if isinstance(exc, aiohttp.ClientResponseError):
        return httpx.RemoteProtocolError(text)
    if isinstance(exc, aiohttp.ClientError):
        return httpx.NetworkError(text)
    return exc


class GuardedAiohttpTransport:
    """aiohttp's client with the egress guard: one session (connection pool) per connection."""

    def __init__(
        self,
        policy: EgressPolicy,
        *,
        verify_tls: bool = True,
        max_connections: int = 100,
        max_keepalive_connections: int = 20,
        keepalive_expiry: float = 5.0,
    ) -> None:
        self._policy = policy
        self._ssl = ssl_context(verify_tls)
        self._limit = max_connections
        self._keepalive = keepalive_expiry
        self._session: aiohttp.ClientSession | None = None
        self._resolver = GuardedResolver(policy)

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                resolver=self._resolver,
                ssl=self._ssl,
                limit=self._limit,
                keepalive_timeout=self._keepalive,
                use_dns_cache=False,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                trust_env=False,
                auto_decompress=False,
                skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding"),
            )
        return self._session

    async def fetch(
        self, method: str, url: httpx.URL, headers: list[tuple[str, str]], content: bytes, timeout: float
    ) -> Fetched:
        """Send one request (no redirects followed); aiohttp's errors come out as httpx's."""
        host = url.host
        port = url.port or (443 if url.scheme == "https" else 80)
        if _is_ip(host) and not self._policy.check_host(host, port):  # aiohttp never resolves IP literals
            self._policy.check_addresses(host, port, [normalise_host(host)])
        target = str(url)
        if _odd_host(host):
            # yarl refuses spellings such as `127.1` or `0x7f000001` that the OS resolver accepts: resolve and
            # check them here, and connect to the checked address with the original Host header
            listed = self._policy.check_host(host, port)
            try:
                addresses = await resolve_host(host, port)
            except OSError as exc:
                raise httpx.ConnectError(str(exc)) from None
            if not listed:
                self._policy.check_addresses(host, port, addresses)
            pinned = addresses[0]
            target = str(url.copy_with(host=pinned))
            headers = [(k, v) for k, v in headers if k.lower() != "host"] + [("Host", url.netloc.decode("ascii"))]
        try:
            response = await self._client().request(
                method,
                target,
                headers=[(k, v) for k, v in headers if k.lower() not in _FRAMING],
                data=content or None,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(sock_connect=timeout, sock_read=timeout),
                compress=None,
            )
        except Exception as exc:
            raise _translate(exc) from None
        return Fetched(response)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
