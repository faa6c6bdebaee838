"""Reading a response: the `Reply` record, the call's output value, and status errors.

Output: JSON (numbers that are not integers become `Decimal`), text when the body is not JSON, None
for HEAD, 204/205/304 and empty bodies. Unexpected statuses become `ConnectorError(reason="status")`:
retriable for 5xx, 408, 425 and 429 (with the capped `Retry-After`), fatal otherwise, carrying the
parsed, redacted body.
"""

from __future__ import annotations

import functools
import http
import json
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx

from connectors.http.redact import Redactor
from connectors.http.retry_after import parse_retry_after
from runtime.connector_api import ConnectorError, ErrorClass, check_json_text

ERROR_BODY_BYTES = 64 * 1024
ERROR_TEXT_CHARS = 4096
RETRIABLE_STATUSES = frozenset({408, 425, 429})
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})


@dataclass
class Reply:
    """A received response with its body read (possibly truncated for error and redirect statuses)."""

    method: str
    url: httpx.URL
    status: int
    headers: httpx.Headers
    content: bytes
    truncated: bool = False
    credential: str | None = None  # the OAuth access token that authenticated the request, if any


@functools.lru_cache(maxsize=4096)
def display_url(url: httpx.URL) -> str:
    """The URL without user info, query or fragment (query strings may hold keys); cached, as
    `httpx.URL`'s properties are computed on each access."""
    port = f":{url.port}" if url.port is not None else ""
    host = f"[{url.host}]" if ":" in url.host else url.host
    return f"{url.scheme}://{host}{port}{url.path}"


def describe(method: str, url: httpx.URL) -> str:
    return f"{method} {display_url(url)}"


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def parse_json(content: bytes) -> Any:
    try:
        return check_json_text(content, json.loads(content, parse_float=Decimal, parse_constant=_reject_constant))
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def _media_type(headers: httpx.Headers) -> tuple[str, str]:
    content_type = headers.get("content-type", "")
    media, _, params = content_type.partition(";")
    charset = "utf-8"
    for param in params.split(";"):
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset" and value.strip():
            charset = value.strip().strip('"')
    return media.strip().lower(), charset


def _is_json(media: str) -> bool:
    return media == "application/json" or media.endswith("+json") or media == "text/json"


def _text(content: bytes, charset: str) -> str:
    try:
        return content.decode(charset, errors="replace")
    except LookupError:
        return content.decode("utf-8", errors="replace")


def decode_output(reply: Reply) -> Any:
    """The call's output for a successful reply; raises ValueError when declared JSON does not parse."""
    if reply.method == "HEAD" or reply.status in (204, 205, 304) or not reply.content:
        return None
    media, charset = _media_type(reply.headers)
    if _is_json(media):
        return parse_json(reply.content)
    if not media:
        try:
            return parse_json(reply.content)
        except ValueError:
            pass
    return _text(reply.content, charset)


def error_body(reply: Reply, redact: Redactor) -> Any:
    """The reply's body for an error report: parsed when possible, bounded, redacted."""
    if not reply.content:
        return None
    media, charset = _media_type(reply.headers)
    if (_is_json(media) or not media) and not reply.truncated:
        try:
            return redact.value(parse_json(reply.content))
        except ValueError:
            pass
    text = redact(_text(reply.content, charset))  # before cutting, so no secret is cut in half
    return text[:ERROR_TEXT_CHARS] + "…" if len(text) > ERROR_TEXT_CHARS else text


def status_class(status: int) -> ErrorClass:
    return "retriable" if status >= 500 or status in RETRIABLE_STATUSES else "fatal"


def status_error(reply: Reply, redact: Redactor, *, retry_after_max: float, what: str | None = None) -> ConnectorError:
    error_class = status_class(reply.status)
    retry_after = None
    if error_class == "retriable":
        retry_after = parse_retry_after(reply.headers.get("retry-after"), now=time.time(), cap=retry_after_max)
    try:
        phrase = http.HTTPStatus(reply.status).phrase
    except ValueError:
        phrase = ""
    what = what or describe(reply.method, reply.url)
    message = f"{what} returned HTTP {reply.status} {phrase}".rstrip()
    if retry_after is not None:
        message += f" (retry after {retry_after:g}s)"
    return ConnectorError(
        redact(message),
        reason="status",
        error_class=error_class,
        status=reply.status,
        retry_after=retry_after,
        body=error_body(reply, redact),
    )
