"""Request authentication: basic, bearer, API key, OAuth2 client credentials and HMAC body signing.

Each `Authenticator` adds its credential to an `Outgoing` request just before it is sent, and
registers its secrets (and values derived from them, like a Basic credential) with the connection's
`Redactor`. The OAuth2 authenticator caches its token until `expires_in` minus a margin, fetches at
most one token at a time, and drops a token the API rejected with 401 so the caller can retry once.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal, InvalidOperation
from urllib.parse import quote_plus

import httpx

from connectors.http.config import (
    ApiKeyAuth,
    BasicAuth,
    BearerAuth,
    HmacAuth,
    OAuth2ClientCredentials,
    check_base_url,
)
from connectors.http.redact import Redactor, basic_credential
from connectors.http.request import HeaderBag, Outgoing, encode_form
from connectors.http.response import Reply, describe, parse_json, status_error
from runtime.connector_api import ConnectorError

Fetch = Callable[[Outgoing, float], Awaitable[Reply]]


class Authenticator:
    """No authentication. Subclasses add a credential in `apply`."""

    refreshable = False

    async def apply(self, request: Outgoing) -> str | None:
        """Add the credential; return the credential used when it can later be refused (OAuth token)."""
        return None

    def invalidate(self, credential: str | None) -> None:
        """Forget a credential the server refused."""


class Basic(Authenticator):
    def __init__(self, config: BasicAuth, redact: Redactor) -> None:
        password = config.password.get_secret_value()
        self._header = "Basic " + basic_credential(config.username, password)
        redact.add(password, derived=[self._header[6:]])

    async def apply(self, request: Outgoing) -> str | None:
        request.headers.set("Authorization", self._header)
        return None


class Bearer(Authenticator):
    def __init__(self, config: BearerAuth, redact: Redactor) -> None:
        self._token = config.token.get_secret_value()
        redact.add(self._token)

    async def apply(self, request: Outgoing) -> str | None:
        request.headers.set("Authorization", f"Bearer {self._token}")
        return None


class ApiKey(Authenticator):
    def __init__(self, config: ApiKeyAuth, redact: Redactor) -> None:
        self._name = config.name
        self._value = config.value.get_secret_value()
        self._in = config.in_
        redact.add(self._value)

    async def apply(self, request: Outgoing) -> str | None:
        if self._in == "header":
            request.headers.set(self._name, self._value)
        else:
            request.url = request.url.copy_set_param(self._name, self._value)
        return None


class Hmac(Authenticator):
    def __init__(self, config: HmacAuth, redact: Redactor, wall_clock: Callable[[], float] = time.time) -> None:
        self._secret = config.secret.get_secret_value().encode("utf-8")
        self._header = config.header
        self._digest = hashlib.sha256 if config.algorithm == "sha256" else hashlib.sha512
        self._timestamp_header = config.timestamp_header
        self._wall_clock = wall_clock
        redact.add(config.secret.get_secret_value())

    def sign(self, content: bytes, timestamp: str | None = None) -> str:
        message = content if timestamp is None else timestamp.encode("ascii") + b"." + content
        return hmac.new(self._secret, message, self._digest).hexdigest()

    async def apply(self, request: Outgoing) -> str | None:
        timestamp = None
        if self._timestamp_header:
            timestamp = str(int(self._wall_clock()))
            request.headers.set(self._timestamp_header, timestamp)
        request.headers.set(self._header, self.sign(request.content, timestamp))
        return None


class OAuth2(Authenticator):
    refreshable = True

    def __init__(
        self,
        config: OAuth2ClientCredentials,
        *,
        base_url: httpx.URL,
        redact: Redactor,
        clock: Callable[[], float],
        fetch: Fetch,
        timeout: float,
        retry_after_max: float,
    ) -> None:
        self._config = config
        self._redact = redact
        self._clock = clock
        self._fetch = fetch
        self._timeout = timeout
        self._retry_after_max = retry_after_max
        self.token_url = base_url.join(config.token_url)
        check_base_url(str(self.token_url.copy_with(query=None)))
        self._secret = config.client_secret.get_secret_value()
        self._client_basic = basic_credential(quote_plus(config.client_id), quote_plus(self._secret))
        redact.add(self._secret, derived=[self._client_basic])
        self._token: str | None = None
        self._expires_at: float | None = None
        self._lock = asyncio.Lock()

    async def apply(self, request: Outgoing) -> str | None:
        token = await self.token()
        request.headers.set("Authorization", f"Bearer {token}")
        return token

    def invalidate(self, credential: str | None) -> None:
        if credential is not None and credential == self._token:
            self._token = None

    async def token(self) -> str:
        async with self._lock:
            if self._token is not None and (self._expires_at is None or self._clock() < self._expires_at):
                return self._token
            self._token = None
            token, lifetime = await self._request_token()
            self._token = token
            self._expires_at = (
                None if lifetime is None else self._clock() + max(0.0, lifetime - self._config.expiry_margin)
            )
            return token

    async def _request_token(self) -> tuple[str, float | None]:
        config = self._config
        form: dict[str, str | None] = {"grant_type": "client_credentials", "scope": config.scope}
        form["audience"] = config.audience
        headers = HeaderBag()
        headers.set("Accept", "application/json")
        headers.set("Content-Type", "application/x-www-form-urlencoded")
        if config.client_auth == "basic":
            headers.set("Authorization", f"Basic {self._client_basic}")
        else:
            form["client_id"] = config.client_id
            form["client_secret"] = self._secret
        request = Outgoing("POST", self.token_url, headers, encode_form(form))
        what = f"OAuth2 token request {describe('POST', self.token_url)}"
        reply = await self._fetch(request, self._timeout)
        if not 200 <= reply.status < 300:
            raise status_error(reply, self._redact, retry_after_max=self._retry_after_max, what=what)
        try:
            document = parse_json(reply.content)
        except ValueError:
            document = None
        token = document.get("access_token") if isinstance(document, dict) else None
        if not isinstance(token, str) or not token:
            raise ConnectorError(
                self._redact(f"{what} returned no access_token"), reason="response", error_class="fatal"
            )
        self._redact.add(token)
        assert isinstance(document, dict)
        return token, _lifetime(document.get("expires_in"))


def _lifetime(value: object) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        seconds = float(Decimal(str(value)))
    except (InvalidOperation, ValueError):
        return None
    return seconds if seconds >= 0 else None


def build_auth(
    config: BasicAuth | BearerAuth | ApiKeyAuth | OAuth2ClientCredentials | HmacAuth | None,
    *,
    base_url: httpx.URL,
    redact: Redactor,
    clock: Callable[[], float],
    fetch: Fetch,
    timeout: float,
    retry_after_max: float,
) -> Authenticator:
    if config is None:
        return Authenticator()
    if isinstance(config, BasicAuth):
        return Basic(config, redact)
    if isinstance(config, BearerAuth):
        return Bearer(config, redact)
    if isinstance(config, ApiKeyAuth):
        return ApiKey(config, redact)
    if isinstance(config, HmacAuth):
        return Hmac(config, redact)
    return OAuth2(
        config,
        base_url=base_url,
        redact=redact,
        clock=clock,
        fetch=fetch,
        timeout=timeout,
        retry_after_max=retry_after_max,
    )
