"""`HttpConnector`: one live connection to one HTTP system.

A call goes: resolve the operation (static model + rendered spec) → build the request (URL, query,
headers, JSON/form body; header injection refused) → circuit breaker → per page: rate limit →
authenticate → send through the egress-guarded transport → follow redirects by hand, checking each
hop → one OAuth token refresh on 401 → check the status → parse the output. With `csrf:` configured a
write first fetches the CSRF token (`csrf.py`), and a 403 asking for a new one refetches it once.

The connector uses httpx's request/response models and transport API but not `httpx.AsyncClient`:
redirects, auth and cookies are handled here anyway, and the client logs every full URL at INFO,
which would put an API key sent as a query parameter into the logs.

Every failure leaves as a `ConnectorError` whose message and body went through the connection's
`Redactor`. Exceptions are raised `from None`: chained httpx exceptions carry the request, headers
and all, and tracebacks would print their text unredacted.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Mapping
from typing import Any

import httpx
from pydantic import BaseModel, SecretStr, ValidationError

from connectors.http.aiohttp_transport import Fetched, GuardedAiohttpTransport
from connectors.http.auth import build_auth
from connectors.http.breaker import BreakerOpen, CircuitBreaker, Ticket
from connectors.http.config import (
    CursorPagination,
    HttpConfig,
    HttpOperation,
    NextLinkPagination,
    OAuth2ClientCredentials,
    OAuth2JwtBearer,
    OffsetPagination,
    PagePagination,
    check_base_url,
    scalar_text,
)
from connectors.http.csrf import FETCH, CsrfSession
from connectors.http.egress import EgressPolicy, EgressRefused, declared_hosts
from connectors.http.etag import FETCH as ETAG_FETCH
from connectors.http.etag import HEADER as IF_MATCH
from connectors.http.etag import conflict, etag_of, missing_etag
from connectors.http.form import FormError, encode_form_body
from connectors.http.pagination import more_pages, next_link, select_items, select_one
from connectors.http.ratelimit import ServerBucketGauge, TokenBucket
from connectors.http.redact import Redactor
from connectors.http.request import (
    SAFE_METHODS,
    HeaderBag,
    Outgoing,
    RequestError,
    check_header,
    encode_json,
    join_url,
    query_params,
)
from connectors.http.response import (
    ERROR_BODY_BYTES,
    REDIRECT_STATUSES,
    Reply,
    decode_output,
    describe,
    display_url,
    status_error,
)
from connectors.http.vendor_errors import ErrorBody, body_error, enrich
from runtime.connector_api import CallRequest, CallResult, ConnectorContext, ConnectorError, OperationSpec

log = logging.getLogger(__name__)

DEFAULT_HEADERS = {
    "Accept": "application/json, text/plain;q=0.9, */*;q=0.8",
    "Accept-Encoding": "gzip, deflate",
    "User-Agent": "syncline-http/0.1",
}
CROSS_ORIGIN_DROPPED = ("Authorization", "Proxy-Authorization", "Cookie")


def _summary(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or 'operation'}: {err['msg']}"
        for err in exc.errors(include_input=False, include_url=False)
    )


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    return url.scheme, url.host, url.port


def _config_secrets(model: BaseModel | None) -> list[str]:
    if model is None:
        return []
    values = (getattr(model, name) for name in type(model).model_fields)
    return [value.get_secret_value() for value in values if isinstance(value, SecretStr)]


def _certificate_problem(exc: BaseException) -> bool:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, ssl.SSLCertVerificationError):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return "CERTIFICATE_VERIFY_FAILED" in str(exc)


class HttpConnector:
    """A `runtime.connector_api.Connector` for one `http` Connection."""

    def __init__(self, config: HttpConfig, operations: Mapping[str, HttpOperation], context: ConnectorContext) -> None:
        self._config = config
        self._operations = dict(operations)
        self._context = context
        self._clock = context.clock or time.monotonic
        self._redact = Redactor(context.redact, _config_secrets(config.auth))
        try:
            self._base = check_base_url(config.base_url)
            self._headers = HeaderBag()
            for name, value in DEFAULT_HEADERS.items():
                self._headers.set(name, value)
            self._headers.update(config.headers, "config.headers")
            if config.idempotency_header:
                check_header(config.idempotency_header, "", "config.idempotency_header")
            self._auth = build_auth(
                config.auth,
                base_url=self._base,
                redact=self._redact,
                clock=self._clock,
                fetch=self._fetch_plain,
                timeout=config.timeout,
                retry_after_max=config.retry_after_max,
            )
            self._csrf: CsrfSession | None = None
            if config.csrf is not None:
                check_header(config.csrf.header, FETCH, "config.csrf.header")
                self._csrf_url, self._csrf_query = join_url(self._base, config.csrf.path)
                self._csrf = CsrfSession(config.csrf, self._redact, config.retry_after_max)
        except ValueError as exc:  # RequestError is a ValueError too
            raise self._config_error(f"connection {context.connection!r}: {exc}") from None
        declared = [self._base]
        if isinstance(config.auth, OAuth2ClientCredentials | OAuth2JwtBearer):
            declared.append(self._base.join(config.auth.token_url))
        policy = EgressPolicy(context.allow_hosts, config.allow_private, declared_hosts(*declared))
        self._transport = GuardedAiohttpTransport(policy, verify_tls=config.verify_tls)
        limit = config.rate_limit
        self._limiter = TokenBucket(limit.per_second, limit.burst, self._clock) if limit else None
        bucket = config.server_bucket
        self._gauge = ServerBucketGauge(bucket.leak_per_second, bucket.keep_free, self._clock) if bucket else None
        breaker = config.circuit_breaker
        self._breaker = CircuitBreaker(breaker.failures, breaker.reset_after, self._clock) if breaker else None
        self._closed = False

    @property
    def breaker(self) -> CircuitBreaker | None:
        return self._breaker

    # ------------------------------------------------------------------------------------------ call

    async def call(self, request: CallRequest) -> CallResult:
        if self._closed:
            raise self._config_error(f"connection {self._context.connection!r} is closed")
        operation = self._operation(request)
        timeout = request.timeout or operation.timeout or self._config.timeout
        try:
            first = self._prepare(operation, request)
        except RequestError as exc:
            raise self._config_error(f"operation {request.operation!r}: {exc}") from None
        if request.dry_run:
            meta = {"dry_run": True, "method": first.method, "url": self._redact(display_url(first.url))}
            return CallResult(output=None, status=None, meta=meta)
        ticket = self._admit()
        try:
            result = await self._run(operation, first, timeout)
        except ConnectorError as exc:
            self._record(ticket, exc)
            raise
        except BaseException:
            if ticket is not None and self._breaker is not None:
                self._breaker.release(ticket)
            raise
        if ticket is not None and self._breaker is not None:
            self._breaker.success(ticket)
        return result

    async def aclose(self) -> None:
        self._closed = True
        await self._transport.aclose()

    # -------------------------------------------------------------------------------- preparation

    def _config_error(self, message: str) -> ConnectorError:
        return ConnectorError(self._redact(message), reason="config", error_class="fatal")

    def _operation(self, request: CallRequest) -> HttpOperation:
        base = self._operations.get(request.operation)
        if base is not None and not request.spec:
            operation = base
        elif base is None and not request.spec:
            raise self._config_error(f"unknown operation {request.operation!r}")
        else:
            data: dict[str, Any] = base.model_dump(by_alias=True, exclude_unset=True) if base else {}
            data.update(request.spec)
            try:
                operation = HttpOperation.model_validate(data)
            except ValidationError as exc:
                raise self._config_error(f"operation {request.operation!r}: {_summary(exc)}") from None
        for name in ("query", "headers", "form"):
            if isinstance(getattr(operation, name), str):
                raise self._config_error(f"operation {request.operation!r}: {name} was not rendered to a mapping")
        return operation

    def _prepare(self, operation: HttpOperation, request: CallRequest) -> Outgoing:
        url, path_query = join_url(self._base, operation.path)
        assert not isinstance(operation.query, str) and not isinstance(operation.headers, str)
        params = query_params(self._config.query, path_query, operation.query)
        if params:
            url = url.copy_with(params=params)
        headers = self._headers.copy()
        headers.update(operation.headers, "operation headers")
        try:
            call_headers = {str(k): scalar_text(v) for k, v in request.headers.items()}
        except ValueError as exc:
            raise RequestError(f"call headers: {exc}") from None
        headers.update(call_headers, "call headers")
        content = b""
        if operation.body is not None:
            content = encode_json(operation.body)
            headers.setdefault("Content-Type", "application/json")
        elif operation.form is not None:
            assert not isinstance(operation.form, str)
            try:
                content = encode_form_body(operation.form, operation.form_style or self._config.form_style)
            except FormError as exc:
                raise RequestError(str(exc)) from None
            headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
        if operation.if_match and operation.if_match != ETAG_FETCH:  # empty (an ETag the flow lacks): none sent
            check_header(IF_MATCH, operation.if_match, "if_match")
            headers.set(IF_MATCH, operation.if_match)
        key_header = self._config.idempotency_header
        if request.idempotency_key and key_header and operation.method not in SAFE_METHODS:
            check_header(key_header, request.idempotency_key, "idempotency key")
            headers.set(key_header, request.idempotency_key)
        return Outgoing(operation.method, url, headers, content)

    # ------------------------------------------------------------------------------------- breaker

    def _admit(self) -> Ticket | None:
        if self._breaker is None:
            return None
        try:
            return self._breaker.admit()
        except BreakerOpen as exc:
            when = "a probe call is running" if exc.retry_after is None else f"retry in {exc.retry_after:g}s"
            raise ConnectorError(
                self._redact(f"connection {self._context.connection!r}: circuit open ({when})"),
                reason="circuit_open",
                error_class="retriable",
                retry_after=exc.retry_after,
            ) from None

    def _record(self, ticket: Ticket | None, error: ConnectorError) -> None:
        if ticket is None or self._breaker is None:
            return
        if error.retriable and error.reason != "rate_limited":
            self._breaker.failure(ticket)
        elif error.reason in ("status", "response"):
            self._breaker.success(ticket)  # the system answered
        else:
            self._breaker.release(ticket)  # refused locally: says nothing about the system

    # ------------------------------------------------------------------------------------ execution

    async def _run(self, operation: HttpOperation, first: Outgoing, timeout: float) -> CallResult:
        expect = tuple(operation.expect) if operation.expect is not None else None
        pagination = operation.pagination
        rules = operation.errors or self._config.errors
        if pagination is None:
            if operation.if_match == ETAG_FETCH:
                first = await self._with_fetched_etag(operation, first, timeout, rules)
            reply = await self._exchange(first, timeout, expect)
            self._check(reply, expect, rules, first.headers.get(IF_MATCH))
            return CallResult(self._output(reply), reply.status, self._meta(reply, 1))

        url = first.url
        if isinstance(pagination, PagePagination):
            page = pagination.start
            url = url.copy_set_param(pagination.page_param, str(page))
            if pagination.size_param and pagination.size:
                url = url.copy_set_param(pagination.size_param, str(pagination.size))
        elif isinstance(pagination, OffsetPagination):
            offset = pagination.start
            url = url.copy_set_param(pagination.offset_param, str(offset))
            if pagination.limit_param and pagination.limit:
                url = url.copy_set_param(pagination.limit_param, str(pagination.limit))
        items: list[Any] = []
        seen: set[str] = set()
        cursor: str | None = None
        pages = 0
        truncated = False
        while True:
            seen.add(str(url))
            reply = await self._exchange(Outgoing(first.method, url, first.headers, first.content), timeout, expect)
            self._check(reply, expect, rules)
            pages += 1
            document = self._output(reply)
            what = describe(reply.method, reply.url)
            try:
                page_items = select_items(document, pagination.items)
            except ValueError as exc:
                raise self._response_error(f"{what}: {exc}") from None
            items.extend(page_items)

            next_url: httpx.URL | None = None
            if isinstance(pagination, NextLinkPagination):
                link = next_link(pagination.next, reply.headers, document)
                if link is not None:
                    try:
                        next_url = reply.url.join(link).copy_with(fragment=None)
                    except httpx.InvalidURL:
                        raise self._response_error(f"{what}: invalid next link") from None
                    if next_url.scheme not in ("http", "https"):
                        raise self._response_error(f"{what}: next link is not an http(s) URL")
            elif isinstance(pagination, OffsetPagination):
                if more_pages(document, pagination.more, page_items, pagination.limit):
                    offset += len(page_items)
                    next_url = url.copy_set_param(pagination.offset_param, str(offset))
            elif isinstance(pagination, CursorPagination):
                value = select_one(document, pagination.next_cursor)
                if pagination.more is not None and select_one(document, pagination.more) is not True:
                    value = None
                if value is not None and value != "" and value is not False:
                    try:
                        text = scalar_text(value)
                    except ValueError:
                        raise self._response_error(f"{what}: next cursor is not a scalar") from None
                    if text != cursor:
                        cursor = text
                        next_url = first.url.copy_set_param(pagination.cursor_param, text)
            elif page_items:
                page += 1
                next_url = url.copy_set_param(pagination.page_param, str(page))

            if next_url is None or str(next_url) in seen:
                break
            if pages >= pagination.max_pages:
                truncated = True
                log.warning(
                    "%s",
                    self._redact(f"{what}: stopped after max_pages={pagination.max_pages}; more pages remain"),
                )
                break
            url = next_url
        meta = self._meta(reply, pages)
        meta["truncated"] = truncated
        return CallResult(items, reply.status, meta)

    def _check(
        self,
        reply: Reply,
        expect: tuple[int, ...] | None,
        rules: ErrorBody | None = None,
        if_match: str | None = None,
    ) -> None:
        ok = reply.status in expect if expect is not None else 200 <= reply.status < 300
        error: ConnectorError | None = None
        if not ok:
            error = status_error(reply, self._redact, retry_after_max=self._config.retry_after_max)
            if rules is not None:
                error = enrich(error, reply, rules, self._redact)
            if reply.status == 412 and if_match is not None:
                error = conflict(error, if_match, self._redact)
        elif rules is not None:
            error = body_error(reply, rules, self._redact)
        if error is not None:
            log.debug("%s", error)
            raise error

    async def _with_fetched_etag(
        self, operation: HttpOperation, write: Outgoing, timeout: float, rules: ErrorBody | None
    ) -> Outgoing:
        """The write with `If-Match` set to the ETag a read of the record carries."""
        url = write.url
        if operation.etag_path is not None:
            url, path_query = join_url(self._base, operation.etag_path)
            params = query_params(self._config.query, path_query)
            if params:
                url = url.copy_with(params=params)
        headers = write.headers.copy()
        for name in ("Content-Type", IF_MATCH, self._config.idempotency_header or "Idempotency-Key"):
            headers.pop(name)
        reply = await self._exchange(Outgoing("GET", url, headers, b""), timeout, None)
        self._check(reply, None, rules)
        etag = etag_of(reply, operation.etag_from)
        if etag is None:
            raise missing_etag(describe("GET", url), self._redact)
        try:
            check_header(IF_MATCH, etag, "ETag read for If-Match")
        except RequestError:
            raise self._response_error(f"{describe('GET', url)}: the ETag holds a control character") from None
        headers = write.headers.copy()
        headers.set(IF_MATCH, etag)
        return Outgoing(write.method, write.url, headers, write.content)

    def _output(self, reply: Reply) -> Any:
        try:
            return decode_output(reply)
        except ValueError as exc:
            raise self._response_error(f"{describe(reply.method, reply.url)}: invalid JSON response: {exc}") from None

    def _response_error(self, message: str) -> ConnectorError:
        return ConnectorError(self._redact(message), reason="response", error_class="fatal")

    def _meta(self, reply: Reply, pages: int) -> dict[str, Any]:
        return {
            "url": self._redact(display_url(reply.url)),
            "pages": pages,
            "headers": {name: self._redact(value) for name, value in reply.headers.items()},
        }

    # -------------------------------------------------------------------------------- one exchange

    async def _exchange(self, request: Outgoing, timeout: float, expect: tuple[int, ...] | None) -> Reply:
        """Send with redirects; on a 401 to a request carrying a cached OAuth token, refresh it once; on a
        write that needs a CSRF token, fetch it first and once more after a 403 asking for a new one."""
        csrf = self._csrf if request.method not in SAFE_METHODS else None
        used = await self._csrf_token(csrf, timeout)
        reply = await self._follow(request, timeout, expect)
        if reply.status == 401 and self._auth.refreshable and reply.credential is not None:
            log.debug("%s", self._redact(f"{describe(reply.method, reply.url)}: 401, refreshing the token once"))
            self._auth.invalidate(reply.credential)
            reply = await self._follow(request, timeout, expect)
        if csrf is not None and csrf.rejected(reply):
            log.debug("%s", self._redact(f"{describe(reply.method, reply.url)}: 403, fetching a new CSRF token"))
            csrf.invalidate(used)
            await self._csrf_token(csrf, timeout)
            reply = await self._follow(request, timeout, expect)
        return reply

    async def _csrf_token(self, csrf: CsrfSession | None, timeout: float) -> str | None:
        if csrf is None:
            return None
        headers = self._headers.copy()
        headers.set(csrf.config.header, FETCH)
        url = self._csrf_url.copy_with(params=self._csrf_query) if self._csrf_query else self._csrf_url
        fetch = Outgoing(csrf.config.method, url, headers, b"")
        return await csrf.ensure(lambda: self._exchange(fetch, timeout, None))

    async def _follow(self, request: Outgoing, timeout: float, expect: tuple[int, ...] | None) -> Reply:
        current = request
        for _hop in range(self._config.max_redirects + 1):
            authenticate = _origin(current.url) == _origin(self._base)
            reply = await self._send(current, timeout, expect, authenticate=authenticate)
            if not self._config.follow_redirects or reply.status not in REDIRECT_STATUSES:
                return reply
            if expect is not None and reply.status in expect:
                return reply
            location = reply.headers.get("location")
            if not location:
                return reply
            current = self._redirected(current, reply, location)
        raise self._response_error(
            f"{describe(request.method, request.url)}: more than {self._config.max_redirects} redirects"
        )

    def _redirected(self, current: Outgoing, reply: Reply, location: str) -> Outgoing:
        what = describe(current.method, current.url)
        try:
            target = current.url.join(location.strip()).copy_with(fragment=None)
        except httpx.InvalidURL:
            raise self._response_error(f"{what}: invalid redirect location") from None
        if target.scheme not in ("http", "https"):
            raise ConnectorError(
                self._redact(f"{what}: redirect to a {target.scheme or 'relative'} URL refused"),
                reason="egress",
                error_class="fatal",
            )
        method, content, headers = current.method, current.content, current.headers.copy()
        if (reply.status == 303 and method != "HEAD") or (reply.status in (301, 302) and method == "POST"):
            method, content = "GET", b""
            headers.pop("Content-Type")
            if self._config.idempotency_header:
                headers.pop(self._config.idempotency_header)
        if _origin(target) != _origin(current.url):
            for name in CROSS_ORIGIN_DROPPED:
                headers.pop(name)
            for name, value in list(headers):
                if self._redact(value) != value:
                    headers.pop(name)
        log.debug("%s", self._redact(f"{what}: HTTP {reply.status} redirect to {display_url(target)}"))
        return Outgoing(method, target, headers, content)

    async def _fetch_plain(self, request: Outgoing, timeout: float) -> Reply:
        """Send without auth, redirects or rate limit (the OAuth token endpoint)."""
        return await self._send(request, timeout, None, authenticate=False, throttle=False)

    async def _throttle(self, timeout: float, what: str) -> None:
        if self._gauge is not None:
            wait = self._gauge.delay()
            if wait > timeout:
                raise ConnectorError(
                    self._redact(f"{what}: the server's call bucket stays full for {wait:g}s"),
                    reason="rate_limited",
                    error_class="retriable",
                    retry_after=wait,
                )
            if wait > 0:
                log.debug("%s", self._redact(f"{what}: server call bucket nearly full, waiting {wait:.3f}s"))
                await asyncio.sleep(wait)
            self._gauge.reserve()
        if self._limiter is None or self._limiter.try_acquire():
            return
        try:
            async with asyncio.timeout(timeout):
                await self._limiter.acquire()
        except TimeoutError:
            raise ConnectorError(
                self._redact(f"{what}: client rate limit still exhausted after {timeout:g}s"),
                reason="rate_limited",
                error_class="retriable",
            ) from None

    async def _send(
        self,
        request: Outgoing,
        timeout: float,
        expect: tuple[int, ...] | None,
        *,
        authenticate: bool,
        throttle: bool = True,
    ) -> Reply:
        what = describe(request.method, request.url)
        if throttle:
            await self._throttle(timeout, what)
        signed = Outgoing(request.method, request.url, request.headers.copy(), request.content)
        credential = await self._auth.apply(signed) if authenticate else None
        if authenticate and self._csrf is not None:
            self._csrf.decorate(signed)
        try:
            wire_headers = signed.headers.wire()
        except RequestError as exc:
            raise self._config_error(f"{what}: {exc}") from None
        try:
            async with asyncio.timeout(timeout):
                response = await self._transport.fetch(signed.method, signed.url, wire_headers, signed.content, timeout)
                try:
                    full = 200 <= response.status < 300 or (expect is not None and response.status in expect)
                    content, truncated = await self._read(response, full, what)
                finally:
                    response.release()
        except ConnectorError:
            raise
        except EgressRefused as exc:
            raise ConnectorError(
                self._redact(f"{what}: egress refused: {exc}"), reason="egress", error_class="fatal"
            ) from None
        except (TimeoutError, httpx.TimeoutException):
            raise ConnectorError(
                self._redact(f"{what}: timed out after {timeout:g}s"),
                reason="timeout",
                error_class="retriable",
            ) from None
        except httpx.ConnectError as exc:
            if _certificate_problem(exc):
                raise ConnectorError(
                    self._redact(f"{what}: TLS certificate verification failed"),
                    reason="connect",
                    error_class="fatal",
                ) from None
            raise self._connect_error(what, exc) from None
        except httpx.DecodingError as exc:
            raise self._response_error(f"{what}: response body could not be decoded: {exc}") from None
        except (httpx.LocalProtocolError, httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
            raise self._config_error(f"{what}: {type(exc).__name__}: {exc}") from None
        except (httpx.HTTPError, OSError) as exc:  # resets, server hang-ups, malformed responses
            raise self._connect_error(what, exc) from None
        if authenticate and self._csrf is not None:
            self._csrf.remember(response.headers)
        if self._gauge is not None and self._config.server_bucket is not None:
            self._gauge.observe(response.headers.get(self._config.server_bucket.header))
        log.debug("%s", self._redact(f"{what}: HTTP {response.status}, {len(content)} bytes"))
        return Reply(
            request.method,
            request.url,
            response.status,
            response.headers,
            content,
            truncated,
            credential,
        )

    def _connect_error(self, what: str, exc: BaseException) -> ConnectorError:
        detail = str(exc) or type(exc).__name__
        return ConnectorError(
            self._redact(f"{what}: connection failed: {detail}"), reason="connect", error_class="retriable"
        )

    async def _read(self, response: Fetched, full: bool, what: str) -> tuple[bytes, bool]:
        """The body, decompressed. `full`: all of it or a fatal error past max_response_bytes;
        otherwise (error and redirect statuses) the first ERROR_BODY_BYTES, flagged as truncated."""
        limit = self._config.max_response_bytes if full else ERROR_BODY_BYTES
        too_large = f"{what}: response body larger than max_response_bytes ({limit} bytes)"
        declared = response.headers.get("content-length", "")
        if full and declared.isdigit() and int(declared) > limit:
            raise self._response_error(too_large)
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.chunks():
            if size + len(chunk) > limit:
                if full:
                    raise self._response_error(too_large)
                chunks.append(chunk[: limit - size])
                return b"".join(chunks), True
            size += len(chunk)
            chunks.append(chunk)
        return b"".join(chunks), False


def coerce_operations(operations: Mapping[str, OperationSpec]) -> dict[str, HttpOperation]:
    return {
        name: op if isinstance(op, HttpOperation) else HttpOperation.model_validate(op.model_dump(exclude_unset=True))
        for name, op in operations.items()
    }
