"""CSRF token session for APIs that demand one on writes (SAP OData / Gateway).

Before the first write the connector sends a GET (or HEAD) to the configured path with
`x-csrf-token: fetch`; the answer carries the token in that header and session cookies in
`Set-Cookie`. Writes send the token back with the cookies (the token is bound to the session). A
403 whose `x-csrf-token` header says `required`, or whose body says "CSRF token validation failed",
means the token or session expired: the token is dropped, fetched again once and the write resent.
The token and the cookie values are secrets to the `Redactor`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from http.cookies import CookieError, SimpleCookie

import httpx

from connectors.http.config import CsrfToken
from connectors.http.redact import Redactor
from connectors.http.request import SAFE_METHODS, Outgoing
from connectors.http.response import Reply, status_error
from runtime.connector_api import ConnectorError

FETCH = "fetch"
REJECTED_TEXT = b"csrf token validation failed"


class CsrfSession:
    """The current token and session cookies of one connection."""

    def __init__(self, config: CsrfToken, redact: Redactor, retry_after_max: float) -> None:
        self.config = config
        self.token: str | None = None
        self._cookies: dict[str, str] = {}
        self._redact = redact
        self._retry_after_max = retry_after_max
        self._lock = asyncio.Lock()

    def decorate(self, request: Outgoing) -> None:
        """Add the session cookies and, on a write, the token."""
        if self._cookies:
            request.headers.set("Cookie", "; ".join(f"{name}={value}" for name, value in self._cookies.items()))
        if request.method not in SAFE_METHODS and self.token is not None:
            request.headers.set(self.config.header, self.token)

    def remember(self, headers: httpx.Headers) -> None:
        """Keep the cookies a response sets (an empty value or `Max-Age=0` deletes one)."""
        for line in headers.get_list("set-cookie"):
            jar: SimpleCookie = SimpleCookie()
            try:
                jar.load(line)
            except CookieError:
                continue
            for name, morsel in jar.items():
                if not morsel.value or morsel["max-age"] in ("0", "-1"):
                    self._cookies.pop(name, None)
                    continue
                self._cookies[name] = morsel.value
                self._redact.add(morsel.value)

    def rejected(self, reply: Reply) -> bool:
        """A 403 that asks for a (new) CSRF token."""
        if reply.status != 403:
            return False
        said = (reply.headers.get(self.config.header) or "").strip().lower()
        return said == "required" or REJECTED_TEXT in reply.content.lower()

    def invalidate(self, used: str | None) -> None:
        if used is not None and used == self.token:
            self.token = None

    async def ensure(self, fetch: Callable[[], Awaitable[Reply]]) -> str:
        """The current token, fetched first when there is none (one fetch at a time)."""
        async with self._lock:
            if self.token is not None:
                return self.token
            reply = await fetch()
            what = f"CSRF token request {reply.method} {self.config.path}"
            if not 200 <= reply.status < 300:
                raise status_error(reply, self._redact, retry_after_max=self._retry_after_max, what=what)
            token = (reply.headers.get(self.config.header) or "").strip()
            if not token or token.lower() in (FETCH, "required"):
                raise ConnectorError(
                    self._redact(f"{what} answered without a token in {self.config.header}"),
                    reason="response",
                    error_class="fatal",
                )
            self._redact.add(token)
            self.token = token
            return token
