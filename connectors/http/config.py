"""The `http` connector's models: a Connection's `config:` and one entry under its `operations:`.

These pydantic models are the single source of truth for validation, the JSON Schema and the
reference docs, so every field carries a description and examples. Durations accept `500ms`, `30s`,
`5m`, `2h`, `7d` or a number of seconds. Fields the engine may fill from one template expression
(`base_url`, an operation's `query`, `headers` and `form`) also accept a template string at load time;
the connector checks the rendered value again before it uses it.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal
from typing import Annotated, Any, Literal

import httpx
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from connectors.http.etag import DEFAULT_SOURCES, check_source
from connectors.http.pagination import check_path
from connectors.http.vendor_errors import ErrorBody
from runtime.connector_api import OperationSpec

# ---------------------------------------------------------------------------------------------------
# Value types shared by the models


_DURATION = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?)\s*(ms|s|m|h|d)\s*")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(value: object) -> float:
    """Seconds from `500ms`, `30s`, `5m`, `2h`, `7d` or a plain number of seconds."""
    if isinstance(value, bool):
        raise ValueError("a duration is a number with a unit (500ms, 30s, 5m, 2h, 7d), not a boolean")
    if isinstance(value, int | float | Decimal):
        seconds = float(value)
    elif isinstance(value, str):
        match = _DURATION.fullmatch(value)
        if match is None:
            raise ValueError(f"invalid duration {value!r}: use a number with a unit: 500ms, 30s, 5m, 2h, 7d")
        seconds = float(match[1]) * _UNIT_SECONDS[match[2]]
    else:
        raise ValueError("a duration is a string like 30s or a number of seconds")
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError("a duration must be a finite, non-negative amount of time")
    return seconds


Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": r"^\s*[0-9]+(\.[0-9]+)?\s*(ms|s|m|h|d)\s*$"},
                {"type": "number", "minimum": 0},
            ],
            "description": "A duration: 500ms, 30s, 5m, 2h, 7d, or a number of seconds.",
        }
    ),
]


def is_template(text: str) -> bool:
    return "{{" in text or "{%" in text


def _require_template(text: str) -> str:
    if not is_template(text):
        raise ValueError("a string here must be a template expression such as '{{ params.query }}'")
    return text


TemplateStr = Annotated[str, AfterValidator(_require_template)]


def scalar_text(value: object) -> str:
    """The wire text of a scalar: exact decimals, lower-case booleans."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError("NaN and Infinity cannot be sent")
        return format(value, "f")
    if isinstance(value, int | str):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("NaN and Infinity cannot be sent")
        return repr(value)
    raise ValueError(f"expected a string, number or boolean, got {type(value).__name__}")


def _scalar_or_keep(value: object) -> object:
    return value if value is None or isinstance(value, list) else scalar_text(value)


_SCALAR_SCHEMA = {"type": ["string", "number", "integer", "boolean"]}

Scalar = Annotated[str, BeforeValidator(scalar_text), WithJsonSchema(_SCALAR_SCHEMA)]
"""A header or parameter value: numbers and booleans are accepted and sent as text."""

ParamValue = Annotated[
    Scalar | list[Scalar] | None,
    BeforeValidator(_scalar_or_keep),
    WithJsonSchema({"anyOf": [_SCALAR_SCHEMA, {"type": "array", "items": _SCALAR_SCHEMA}, {"type": "null"}]}),
]
"""A query or form parameter: a scalar, a list (repeated parameter) or null (left out)."""


def check_base_url(text: str) -> httpx.URL:
    """Parse a rendered base URL; raise ValueError when it is not an absolute http(s) URL."""
    try:
        url = httpx.URL(text)
    except (httpx.InvalidURL, TypeError) as exc:
        raise ValueError(f"invalid URL: {exc}") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise ValueError("must be an absolute http:// or https:// URL")
    if url.userinfo:
        raise ValueError("must not hold a user name or password; use `auth`")
    if url.query or url.fragment:
        raise ValueError("must not hold a query or fragment; use `query`")
    return url


def _base_url(text: str) -> str:
    if not is_template(text):
        check_base_url(text)
    return text


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ---------------------------------------------------------------------------------------------------
# Auth


class BasicAuth(_Model):
    """HTTP Basic authentication."""

    type: Literal["basic"] = Field(description="Authentication scheme.", examples=["basic"])
    username: str = Field(description="User name.", examples=["integration", "{{ secret('ERP_USER') }}"])
    password: SecretStr = Field(description="Password (a secret).", examples=["{{ secret('ERP_PASSWORD') }}"])


class BearerAuth(_Model):
    """A static bearer token in the Authorization header."""

    type: Literal["bearer"] = Field(description="Authentication scheme.", examples=["bearer"])
    token: SecretStr = Field(description="The token (a secret).", examples=["{{ secret('CRM_TOKEN') }}"])


class ApiKeyAuth(_Model):
    """An API key sent as a header or a query parameter."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    type: Literal["api_key"] = Field(description="Authentication scheme.", examples=["api_key"])
    name: str = Field(description="Header or query parameter name.", examples=["X-API-Key", "api_key"])
    value: SecretStr = Field(description="The key (a secret).", examples=["{{ secret('SHOP_API_KEY') }}"])
    in_: Literal["header", "query"] = Field(
        "header", alias="in", description="Where the key goes.", examples=["header", "query"]
    )


class OAuth2ClientCredentials(_Model):
    """OAuth2 client credentials grant; the token is cached until shortly before it expires."""

    type: Literal["oauth2_client_credentials"] = Field(
        description="Authentication scheme.", examples=["oauth2_client_credentials"]
    )
    token_url: str = Field(
        description="Token endpoint: an absolute URL, or a path resolved against base_url.",
        examples=["/oauth/token", "https://login.example.com/oauth2/token"],
    )
    client_id: str = Field(description="Client id.", examples=["{{ secret('ERP_ID') }}"])
    client_secret: SecretStr = Field(description="Client secret (a secret).", examples=["{{ secret('ERP_SECRET') }}"])
    scope: str | None = Field(None, description="Space-separated scopes to request.", examples=["orders:write"])
    audience: str | None = Field(None, description="Audience to request (Auth0 and others).", examples=["erp-api"])
    client_auth: Literal["basic", "body"] = Field(
        "basic",
        description="How the client authenticates to the token endpoint: HTTP Basic (RFC 6749 default) "
        "or client_id/client_secret in the form body.",
        examples=["basic", "body"],
    )
    expiry_margin: Duration = Field(
        30.0, description="Fetch a new token this long before the cached one expires.", examples=["30s"]
    )

    @field_validator("token_url")
    @classmethod
    def _token_url(cls, value: str) -> str:
        if value.startswith(("http://", "https://")) and not is_template(value):
            check_base_url(value)
        elif not value.startswith(("/", "{{", "http://", "https://")):
            raise ValueError("must be an absolute http(s) URL or a path starting with /")
        return value


class HmacAuth(_Model):
    """Sign each request body with HMAC and send the hex signature in a header."""

    type: Literal["hmac"] = Field(description="Authentication scheme.", examples=["hmac"])
    secret: SecretStr = Field(description="Shared signing secret (a secret).", examples=["{{ secret('WMS_HMAC') }}"])
    header: str = Field("X-Signature", description="Header that carries the hex signature.", examples=["X-Signature"])
    algorithm: Literal["sha256", "sha512"] = Field("sha256", description="Hash function.", examples=["sha256"])
    timestamp_header: str | None = Field(
        None,
        description="When set, the current Unix time goes in this header and the signature covers "
        "`<timestamp>.<raw body>`; otherwise it covers the raw body alone.",
        examples=["X-Timestamp"],
    )


def _check_token_url(value: str) -> str:
    if value.startswith(("http://", "https://")) and not is_template(value):
        check_base_url(value)
    elif not value.startswith(("/", "{{", "http://", "https://")):
        raise ValueError("must be an absolute http(s) URL or a path starting with /")
    return value


class OAuth2JwtBearer(_Model):
    """OAuth 2.0 JWT bearer grant (RFC 7523; Salesforce): a signed assertion is exchanged for a cached token."""

    type: Literal["oauth2_jwt_bearer"] = Field(description="Authentication scheme.", examples=["oauth2_jwt_bearer"])
    token_url: Annotated[str, AfterValidator(_check_token_url)] = Field(
        description="Token endpoint: an absolute URL, or a path resolved against base_url.",
        examples=["https://login.salesforce.com/services/oauth2/token"],
    )
    issuer: str = Field(
        description="`iss` claim (the assertion also has `sub`, `aud`, `iat` and `exp`): the client id "
        "(Salesforce: the connected app's consumer key).",
        examples=["{{ secret('SF_CONSUMER_KEY') }}"],
    )
    subject: str = Field(
        description="`sub` claim: the user the token acts for (Salesforce: the user name).",
        examples=["integration@example.com"],
    )
    audience: str = Field(
        description="`aud` claim: the authorization server (Salesforce: https://login.salesforce.com, or "
        "https://test.salesforce.com for sandboxes).",
        examples=["https://login.salesforce.com"],
    )
    private_key: SecretStr = Field(
        description="PEM private key the assertion is signed with (a secret).",
        examples=["{{ secret('SF_PRIVATE_KEY') }}"],
    )
    algorithm: Literal["RS256", "RS384", "RS512"] = Field(
        "RS256", description="JWS algorithm of the assertion.", examples=["RS256"]
    )
    key_id: str | None = Field(None, description="`kid` header of the assertion, if the server wants one.")
    scope: str | None = Field(None, description="Space-separated scopes to request.", examples=["api"])
    lifetime: Duration = Field(
        180.0,
        description="How long the assertion is valid (`exp` = now + lifetime; Salesforce allows 3 minutes).",
        examples=["3m"],
    )
    expiry_margin: Duration = Field(
        30.0, description="Fetch a new token this long before the cached one expires.", examples=["30s"]
    )


class OAuth1Auth(_Model):
    """OAuth 1.0a request signing (RFC 5849), e.g. NetSuite token-based authentication (TBA)."""

    type: Literal["oauth1"] = Field(description="Authentication scheme.", examples=["oauth1"])
    consumer_key: str = Field(description="Consumer key of the integration record.", examples=["{{ secret('NS_CK') }}"])
    consumer_secret: SecretStr = Field(description="Consumer secret (a secret).", examples=["{{ secret('NS_CS') }}"])
    token: str = Field(description="Token id (`oauth_token`).", examples=["{{ secret('NS_TOKEN_ID') }}"])
    token_secret: SecretStr = Field(
        description="Token secret (a secret).", examples=["{{ secret('NS_TOKEN_SECRET') }}"]
    )
    realm: str | None = Field(
        None,
        description="`realm` of the Authorization header (NetSuite: the account id, e.g. `1234567_SB1`).",
        examples=["1234567_SB1"],
    )
    signature_method: Literal["HMAC-SHA256", "HMAC-SHA1"] = Field(
        "HMAC-SHA256",
        description="Signature method (NetSuite requires HMAC-SHA256). Each request gets a fresh nonce and "
        "timestamp; the signature covers the method, URL, query parameters and, only for a form-encoded "
        "body, the body's parameters (a JSON body is not signed, RFC 5849 3.4.1.3.1).",
        examples=["HMAC-SHA256"],
    )


Auth = Annotated[
    BasicAuth | BearerAuth | ApiKeyAuth | OAuth2ClientCredentials | OAuth2JwtBearer | OAuth1Auth | HmacAuth,
    Field(discriminator="type"),
]


class CsrfToken(_Model):
    """A CSRF token session for writes (SAP OData / Gateway)."""

    path: str = Field(
        "/",
        description="Path (under base_url) the token is fetched from, usually the OData service root.",
        examples=["/", "/sap/opu/odata/sap/API_SALES_ORDER_SRV/"],
    )
    method: Literal["GET", "HEAD"] = Field("GET", description="Method of the token request.", examples=["GET"])
    header: str = Field(
        "x-csrf-token",
        description="Header that carries the token: `fetch` on the token request (its answer sets the token and "
        "session cookies), the token on writes (with the cookies). A 403 whose header says `Required` or whose "
        'body says "CSRF token validation failed" makes the connector fetch a new token and resend once.',
        examples=["x-csrf-token"],
    )


# ---------------------------------------------------------------------------------------------------
# Connection config


class RateLimit(_Model):
    """A token bucket shared by every call of the connection."""

    per_second: float = Field(gt=0, description="Sustained requests per second.", examples=[20])
    burst: int = Field(1, ge=1, description="Requests allowed at once after an idle period.", examples=[40])


class ServerBucket(_Model):
    """A leaky bucket the server reports in a response header as `used/capacity` (Shopify)."""

    header: str = Field(
        "X-Shopify-Shop-Api-Call-Limit",
        description="Response header with `used/capacity`, e.g. `32/40`.",
        examples=["X-Shopify-Shop-Api-Call-Limit"],
    )
    leak_per_second: float = Field(
        2.0, gt=0, description="How fast the bucket empties (Shopify standard plans: 2 calls a second).", examples=[2]
    )
    keep_free: int = Field(
        1, ge=0, description="Wait before a call that would leave fewer free slots than this.", examples=[1]
    )


class CircuitBreaker(_Model):
    """Fail fast while the system is down: open after N consecutive retriable failures."""

    failures: int = Field(ge=1, description="Consecutive retriable failures that open the breaker.", examples=[5])
    reset_after: Duration = Field(
        description="How long the breaker stays open before one probe call is let through.", examples=["30s"]
    )


class HttpConfig(_Model):
    """`config:` of a Connection of type `http`."""

    base_url: Annotated[str, AfterValidator(_base_url)] = Field(
        description="Absolute http(s) URL every operation path is appended to. Its host is the connection's "
        "declared host: the egress guard lets it resolve to any address (a private network, loopback). "
        "A template here is filled from the project's settings (`env()`, `secret()`) when the connection "
        "is built, never from run data, so it is still the author's declaration.",
        examples=["https://erp.example.com/api/v2", "{{ env('ERP_URL') }}"],
    )
    headers: dict[str, Scalar] = Field(
        default_factory=dict,
        description="Headers sent with every request.",
        examples=[{"Accept-Language": "en"}],
    )
    query: dict[str, ParamValue] = Field(
        default_factory=dict,
        description="Query parameters sent with every request.",
        examples=[{"company": "100"}],
    )
    timeout: Duration = Field(
        30.0,
        description="Time limit for each HTTP exchange (connect, send, receive).",
        examples=["10s", "500ms"],
    )
    auth: Auth | None = Field(
        None,
        description="How requests authenticate: basic, bearer, api_key, oauth2_client_credentials, "
        "oauth2_jwt_bearer, oauth1 or hmac.",
        examples=[{"type": "bearer", "token": "{{ secret('CRM_TOKEN') }}"}],
    )
    csrf: CsrfToken | None = Field(
        None,
        description="Fetch a CSRF token (and keep the session cookies) for writes, as SAP OData requires.",
        examples=[{"path": "/sap/opu/odata/sap/API_SALES_ORDER_SRV/"}],
    )
    rate_limit: RateLimit | None = Field(
        None,
        description="Client-side rate limit for this connection.",
        examples=[{"per_second": 20, "burst": 40}],
    )
    server_bucket: ServerBucket | None = Field(
        None,
        description="Pace calls by the leaky bucket the server reports after each call (Shopify's "
        "`X-Shopify-Shop-Api-Call-Limit`); a 429 answer is still retried after its Retry-After.",
        examples=[{"header": "X-Shopify-Shop-Api-Call-Limit", "leak_per_second": 2}],
    )
    circuit_breaker: CircuitBreaker | None = Field(
        None,
        description="Circuit breaker for this connection.",
        examples=[{"failures": 5, "reset_after": "30s"}],
    )
    retry_after_max: Duration = Field(
        300.0, description="Upper bound on a server's Retry-After advice.", examples=["5m"]
    )
    max_response_bytes: int = Field(
        10 * 1024 * 1024,
        gt=0,
        description="Largest response body accepted (after decompression), checked while streaming.",
        examples=[10485760],
    )
    verify_tls: bool = Field(True, description="Verify the server's TLS certificate.", examples=[True])
    form_style: Literal["flat", "brackets", "brackets_index_last"] = Field(
        "flat",
        description="How form bodies write nested keys and lists: `flat` (lists repeat the name; nested mappings "
        "refused), `brackets` (Stripe, Rack, PHP: `metadata[order_id]=A-1`, `items[0][price]=p`), "
        "`brackets_index_last` (Chargebee: `subscription_items[item_price_id][0]=p`).",
        examples=["brackets"],
    )
    idempotency_header: str | None = Field(
        "Idempotency-Key",
        description="Header that carries the run's idempotency key on non-GET calls; null sends none.",
        examples=["Idempotency-Key", None],
    )
    allow_private: bool = Field(
        False,
        description="Let hosts other than the declared ones (base_url's and token_url's host) — redirect "
        "and pagination link targets — resolve to loopback, private and link-local addresses (off: only "
        "public addresses, unless the egress policy lists the host). Declared hosts never need it.",
        examples=[False],
    )
    follow_redirects: bool = Field(
        True, description="Follow redirects, checking every hop against the egress rules.", examples=[True]
    )
    max_redirects: int = Field(5, ge=0, le=20, description="Most redirects followed for one request.", examples=[5])
    errors: ErrorBody | None = Field(
        None,
        description="Where the system's answers carry its error code and message (carried into dead letters), "
        "and when a 2xx answer is an error (Zuora's `success: false`). An operation's `errors` replaces it.",
        examples=[{"flag": "$.success", "code": "$.reasons[0].code", "message": "$.reasons[0].message"}],
    )


# ---------------------------------------------------------------------------------------------------
# Operations


class _Pagination(_Model):
    max_pages: int = Field(100, ge=1, le=100_000, description="Stop after this many pages.", examples=[100])
    items: str = Field(
        "$",
        description="Where a page's items are: `$` (the whole body), a JSONPath (`$.data`) or a dotted key "
        "(`data.items`).",
        examples=["$.data", "results"],
    )

    @field_validator("items")
    @classmethod
    def _items_path(cls, value: str) -> str:
        return check_path(value)


class NextLinkPagination(_Pagination):
    """Follow a link to the next page until there is none: Shopify (`header:Link`), Salesforce
    (`nextRecordsUrl`), Dynamics 365 (`$['@odata.nextLink']`), SAP OData v2 (`d.__next`), Zuora (`nextPage`).
    A relative link resolves against the page's URL."""

    type: Literal["next_link"] = Field(description="Pagination style.", examples=["next_link"])
    next: str = Field(
        "header:Link",
        description="Where the next page's URL is: `header:Link` (rel=next), `header:<Name>` (the whole "
        "value), or a body path (`$.links.next`, `next`).",
        examples=["header:Link", "$.links.next"],
    )

    @field_validator("next")
    @classmethod
    def _next_path(cls, value: str) -> str:
        if value.lower().startswith("header:"):
            if not value[7:].strip():
                raise ValueError("name the header: header:Link")
            return value
        return check_path(value)


class CursorPagination(_Pagination):
    """Send the cursor from each page as a query parameter until the cursor is empty (or `more` is false).

    Chargebee: `cursor_param: offset`, `next_cursor: next_offset`. Stripe: `cursor_param: starting_after`,
    `next_cursor: "$.data[-1].id"` (the last item's id), `more: has_more`."""

    type: Literal["cursor"] = Field(description="Pagination style.", examples=["cursor"])
    cursor_param: str = Field(description="Query parameter that carries the cursor.", examples=["cursor"])
    next_cursor: str = Field(
        description="Body path of the next cursor (`$.data[-1].id`: the last item's id).",
        examples=["$.meta.next_cursor", "next_offset", "$.data[-1].id"],
    )
    more: str | None = Field(
        None,
        description="Body path of a flag saying more pages follow (`has_more`); when set, paging stops as soon "
        "as it is not true.",
        examples=["has_more", "$.hasMore"],
    )

    @field_validator("next_cursor")
    @classmethod
    def _cursor_path(cls, value: str) -> str:
        return check_path(value)

    @field_validator("more")
    @classmethod
    def _more_path(cls, value: str | None) -> str | None:
        return None if value is None else check_path(value)


class OffsetPagination(_Pagination):
    """Send an item offset (and a page size) as query parameters; the next offset is this one plus the
    page's item count (NetSuite SuiteQL: `offset`/`limit` with `hasMore`)."""

    type: Literal["offset"] = Field(description="Pagination style.", examples=["offset"])
    offset_param: str = Field("offset", description="Query parameter that carries the offset.", examples=["offset"])
    start: int = Field(0, ge=0, description="Offset of the first page.", examples=[0])
    limit_param: str | None = Field(None, description="Query parameter for the page size.", examples=["limit"])
    limit: int | None = Field(None, ge=1, description="Page size to ask for.", examples=[1000])
    more: str | None = Field(
        None,
        description="Body path of a flag saying more pages follow (`hasMore`); unset: stop at an empty page "
        "or one shorter than `limit`.",
        examples=["hasMore"],
    )

    @field_validator("more")
    @classmethod
    def _more_path(cls, value: str | None) -> str | None:
        return None if value is None else check_path(value)

    @model_validator(mode="after")
    def _limit(self) -> OffsetPagination:
        if (self.limit_param is None) != (self.limit is None):
            raise ValueError("limit_param and limit go together")
        return self


class PagePagination(_Pagination):
    """Count pages up from `start` until a page comes back empty."""

    type: Literal["page"] = Field(description="Pagination style.", examples=["page"])
    page_param: str = Field("page", description="Query parameter that carries the page number.", examples=["page"])
    start: int = Field(1, ge=0, description="Number of the first page.", examples=[1, 0])
    size_param: str | None = Field(None, description="Query parameter for the page size.", examples=["per_page"])
    size: int | None = Field(None, ge=1, description="Page size to ask for.", examples=[100])

    @model_validator(mode="after")
    def _size(self) -> PagePagination:
        if (self.size_param is None) != (self.size is None):
            raise ValueError("size_param and size go together")
        return self


Pagination = Annotated[
    NextLinkPagination | CursorPagination | OffsetPagination | PagePagination, Field(discriminator="type")
]

Method = Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]


def _upper(value: object) -> object:
    return value.upper() if isinstance(value, str) else value


class HttpOperation(OperationSpec):
    """One entry under `operations:` of an `http` Connection."""

    method: Annotated[Method, BeforeValidator(_upper)] = Field(
        "GET", description="HTTP method.", examples=["GET", "POST"]
    )
    path: str = Field(
        "",
        description="Path appended to base_url (may be templated).",
        examples=["/sales-orders/{{ params.id }}"],
    )
    query: dict[str, ParamValue] | TemplateStr = Field(
        default_factory=dict,
        description="Query parameters; null values are left out, lists repeat the parameter.",
        examples=[{"tax_id": "{{ params.tax_id }}"}],
    )
    headers: dict[str, Scalar] | TemplateStr = Field(
        default_factory=dict, description="Extra headers for this operation.", examples=[{"X-Company": "100"}]
    )
    body: Any = Field(
        None,
        description="JSON body (any JSON value); decimals are sent exactly. Not together with form.",
        examples=["{{ params.body }}", {"customer": "{{ params.customer_id }}"}],
    )
    form: dict[str, Any] | TemplateStr | None = Field(
        None,
        description="Form body (application/x-www-form-urlencoded). Not together with body. Values are "
        "scalars, lists (repeated, or indexed with a bracket style) or, with a bracket `form_style`, nested "
        "mappings (`metadata: {order_id: A-1}` → `metadata[order_id]=A-1`).",
        examples=[{"grant": "read"}, {"amount": 1999, "metadata": {"order_id": "A-1"}}],
    )
    form_style: Literal["flat", "brackets", "brackets_index_last"] | None = Field(
        None,
        description="How the form's nested keys and lists are written (default: the connection's): `flat` "
        "(lists repeat the name), `brackets` (Stripe: `items[0][price]=…`), `brackets_index_last` "
        "(Chargebee: `items[price][0]=…`).",
        examples=["brackets"],
    )
    expect: list[Annotated[int, Field(ge=100, le=599)]] | None = Field(
        None, description="Status codes that count as success (default: any 2xx).", examples=[[200, 404]]
    )
    pagination: Pagination | None = Field(
        None,
        description="Fetch every page and return all items as one list.",
        examples=[{"type": "cursor", "cursor_param": "cursor", "next_cursor": "$.next", "items": "$.data"}],
    )
    timeout: Duration | None = Field(None, description="Overrides the connection's timeout.", examples=["60s"])
    if_match: str | None = Field(
        None,
        description="Send `If-Match` (optimistic concurrency; Dynamics 365, SAP OData): an ETag read earlier "
        "(a template), `*`, or `fetch` to read the record first (`etag_path`) and send the ETag it carries. "
        "A 412 answer is a fatal conflict error (code `etag_conflict` unless the system names one).",
        examples=["fetch", "{{ params.etag }}", "*"],
    )
    etag_path: str | None = Field(
        None,
        description="With `if_match: fetch`: the path read for the ETag (default: this operation's path).",
        examples=["/A_SalesOrder('{{ params.id }}')"],
    )
    etag_from: list[Annotated[str, AfterValidator(check_source)]] = Field(
        default_factory=lambda: list(DEFAULT_SOURCES),
        description="Where the read's ETag is, tried in order: `header:ETag` or a body path.",
        examples=[["header:ETag", "$['@odata.etag']", "$.d.__metadata.etag"]],
    )
    errors: ErrorBody | None = Field(
        None,
        description="Replaces the connection's `errors` for this operation.",
        examples=[{"flag": "$.Success", "code": "$.Errors[0].Code", "message": "$.Errors[0].Message"}],
    )

    @model_validator(mode="after")
    def _body_or_form(self) -> HttpOperation:
        if self.body is not None and self.form is not None:
            raise ValueError("set body or form, not both")
        return self
