"""Request authentication: basic, bearer, API key, OAuth2 (client credentials, JWT bearer), OAuth 1.0a
and HMAC body signing.

Each `Authenticator` adds its credential to an `Outgoing` request just before it is sent, and
registers its secrets (and values derived from them, like a Basic credential) with the connection's
`Redactor`. The OAuth2 authenticators cache their token until `expires_in` minus a margin, fetch at
most one token at a time, and drop a token the API rejected with 401 so the caller can retry once.
The JWT bearer assertion is signed with PyJWT and OAuth 1.0a requests with oauthlib's client: both
are well-reviewed implementations of the exact encoding rules the servers check (see the README's
dependency notes), so no signature code is hand-written here.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal, InvalidOperation
from typing import Any, cast
from urllib.parse import quote_plus

import httpx
import jwt
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from oauthlib import oauth1

from connectors.http.config import (
    ApiKeyAuth,
    BasicAuth,
    BearerAuth,
    HmacAuth,
    OAuth1Auth,
    OAuth2ClientCredentials,
    OAuth2JwtBearer,
    check_base_url,
)
from connectors.http.redact import Redactor, basic_credential
from connectors.http.request import HeaderBag, Outgoing, encode_form
from connectors.http.response import Reply, describe, parse_json, status_error
from runtime.connector_api import ConnectorError

Fetch = Callable[[Outgoing, float], Awaitable[Reply]]
AuthConfig = BasicAuth | BearerAuth | ApiKeyAuth | OAuth2ClientCredentials | OAuth2JwtBearer | OAuth1Auth | HmacAuth


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
    """An OAuth2 access token from a token endpoint, cached and refreshed; subclasses say how to ask."""

    refreshable = True

    def __init__(
        self,
        config: OAuth2ClientCredentials | OAuth2JwtBearer,
        *,
        base_url: httpx.URL,
        redact: Redactor,
        clock: Callable[[], float],
        fetch: Fetch,
        timeout: float,
        retry_after_max: float,
    ) -> None:
        self._redact = redact
        self._clock = clock
        self._fetch = fetch
        self._timeout = timeout
        self._retry_after_max = retry_after_max
        self._expiry_margin = config.expiry_margin
        self.token_url = base_url.join(config.token_url)
        check_base_url(str(self.token_url.copy_with(query=None)))
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
            self._expires_at = None if lifetime is None else self._clock() + max(0.0, lifetime - self._expiry_margin)
            return token

    def _grant(self, headers: HeaderBag) -> dict[str, str | None]:
        """The token request's form (and any header it needs); each grant type defines its own."""
        raise TypeError(f"{type(self).__name__} does not define its token grant")

    async def _request_token(self) -> tuple[str, float | None]:
        headers = HeaderBag()
        headers.set("Accept", "application/json")
        headers.set("Content-Type", "application/x-www-form-urlencoded")
        form = self._grant(headers)
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


class ClientCredentials(OAuth2):
    """The client credentials grant (RFC 6749 4.4)."""

    def __init__(self, config: OAuth2ClientCredentials, *, redact: Redactor, **options: Any) -> None:
        super().__init__(config, redact=redact, **options)
        self._config = config
        self._secret = config.client_secret.get_secret_value()
        self._client_basic = basic_credential(quote_plus(config.client_id), quote_plus(self._secret))
        redact.add(self._secret, derived=[self._client_basic])

    def _grant(self, headers: HeaderBag) -> dict[str, str | None]:
        config = self._config
        form: dict[str, str | None] = {"grant_type": "client_credentials", "scope": config.scope}
        form["audience"] = config.audience
        if config.client_auth == "basic":
            headers.set("Authorization", f"Basic {self._client_basic}")
        else:
            form["client_id"] = config.client_id
            form["client_secret"] = self._secret
        return form


JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"


class JwtBearer(OAuth2):
    """The JWT bearer grant (RFC 7523 2.1): a fresh assertion signed with the private key for each token."""

    def __init__(
        self,
        config: OAuth2JwtBearer,
        *,
        redact: Redactor,
        wall_clock: Callable[[], float] = time.time,
        **options: Any,
    ) -> None:
        super().__init__(config, redact=redact, **options)
        self._config = config
        pem = config.private_key.get_secret_value()
        redact.add(pem, derived=[line for line in pem.splitlines() if len(line) >= 16 and "-----" not in line])
        try:
            self._key = load_pem_private_key(pem.encode("utf-8"), password=None)
        except (ValueError, TypeError):  # the message never quotes the key
            raise ValueError("auth.private_key is not an unencrypted PEM private key") from None
        self._wall_clock = wall_clock

    def assertion(self) -> str:
        config = self._config
        now = int(self._wall_clock())
        claims: dict[str, str | int] = {"iss": config.issuer, "sub": config.subject, "aud": config.audience}
        claims.update(iat=now, exp=now + int(config.lifetime))
        headers = {"kid": config.key_id} if config.key_id else None
        try:
            token = jwt.encode(claims, self._key, algorithm=config.algorithm, headers=headers)  # type: ignore[arg-type]
        except (ValueError, TypeError, jwt.PyJWTError) as exc:
            raise ConnectorError(
                self._redact(f"JWT bearer assertion could not be signed ({type(exc).__name__})"),
                reason="config",
                error_class="fatal",
            ) from None
        self._redact.add(token)
        return token

    def _grant(self, headers: HeaderBag) -> dict[str, str | None]:
        return {"grant_type": JWT_BEARER_GRANT, "assertion": self.assertion(), "scope": self._config.scope}


FORM_TYPE = "application/x-www-form-urlencoded"


class OAuth1(Authenticator):
    """OAuth 1.0a (RFC 5849) `Authorization: OAuth …` header, signed per request by oauthlib.

    The signature base string holds the method, the URL, its query parameters and — only when the
    body is form-encoded — the body's parameters; a JSON body is not signed (RFC 5849 3.4.1.3.1)."""

    def __init__(self, config: OAuth1Auth, redact: Redactor, wall_clock: Callable[[], float] = time.time) -> None:
        self._config = config
        self._consumer_secret = config.consumer_secret.get_secret_value()
        self._token_secret = config.token_secret.get_secret_value()
        redact.add(self._consumer_secret)
        redact.add(self._token_secret)
        self._redact = redact
        self._wall_clock = wall_clock

    def authorization(self, method: str, url: str, content_type: str | None, content: bytes) -> str:
        """The Authorization header value for one request."""
        config = self._config
        client = oauth1.Client(
            config.consumer_key,
            client_secret=self._consumer_secret,
            resource_owner_key=config.token,
            resource_owner_secret=self._token_secret,
            signature_method=config.signature_method,
            realm=config.realm,
            nonce=secrets.token_hex(16),
            timestamp=str(int(self._wall_clock())),
        )
        form = content_type is not None and content_type.split(";")[0].strip().lower() == FORM_TYPE and content
        body = content.decode("utf-8") if form else None
        headers = {"Content-Type": FORM_TYPE} if form else {}
        try:
            _uri, signed, _body = client.sign(url, cast(Any, method), body=body, headers=headers)
        except ValueError as exc:
            raise ConnectorError(
                self._redact(f"OAuth 1.0a signing failed for {describe(method, httpx.URL(url))}: {exc}"),
                reason="config",
                error_class="fatal",
            ) from None
        return str(signed["Authorization"])

    async def apply(self, request: Outgoing) -> str | None:
        header = self.authorization(
            request.method, str(request.url), request.headers.get("Content-Type"), request.content
        )
        request.headers.set("Authorization", header)
        return None


def _lifetime(value: object) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        seconds = float(Decimal(str(value)))
    except (InvalidOperation, ValueError):
        return None
    return seconds if seconds >= 0 else None


def build_auth(
    config: AuthConfig | None,
    *,
    base_url: httpx.URL,
    redact: Redactor,
    clock: Callable[[], float],
    fetch: Fetch,
    timeout: float,
    retry_after_max: float,
    wall_clock: Callable[[], float] = time.time,
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
        return Hmac(config, redact, wall_clock)
    if isinstance(config, OAuth1Auth):
        return OAuth1(config, redact, wall_clock)
    options: dict[str, Any] = {
        "base_url": base_url,
        "clock": clock,
        "fetch": fetch,
        "timeout": timeout,
        "retry_after_max": retry_after_max,
    }
    if isinstance(config, OAuth2JwtBearer):
        return JwtBearer(config, redact=redact, wall_clock=wall_clock, **options)
    return ClientCredentials(config, redact=redact, **options)
