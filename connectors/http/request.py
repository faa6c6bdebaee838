"""Building an outgoing request: URL joining, parameters, header checks and body encoding.

Everything here is pure. Problems raise `RequestError` (the client turns it into a fatal
`ConnectorError(reason="config")`); messages name the header or field but never quote its value, which
may be a secret or an injection attempt.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import re
import unicodedata
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode

import httpx
import orjson
import simplejson

from connectors.http.config import scalar_text

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

# Framing and hop-by-hop headers are the transport's business; setting them invites request smuggling.
RESERVED_HEADERS = frozenset(
    {"host", "content-length", "transfer-encoding", "connection", "upgrade", "te", "trailer", "keep-alive",
     "proxy-connection"}
)  # fmt: skip

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


class RequestError(ValueError):
    """The request cannot be built from the configuration and rendered operation."""


def check_header(name: str, value: str, where: str) -> None:
    if not _TOKEN.fullmatch(name):
        raise RequestError(f"{where}: header name {name[:64]!r} is not a valid HTTP token")
    if _CONTROL.search(value):
        raise RequestError(
            f"{where}: the value of header {name!r} contains a control character (CR, LF or similar); refused"
        )


class HeaderBag:
    """Case-insensitive headers where a later `set` replaces an earlier one."""

    def __init__(self) -> None:
        self._items: dict[str, tuple[str, str]] = {}

    def set(self, name: str, value: str) -> None:
        self._items[name.lower()] = (name, value)

    def setdefault(self, name: str, value: str) -> None:
        self._items.setdefault(name.lower(), (name, value))

    def get(self, name: str) -> str | None:
        item = self._items.get(name.lower())
        return item[1] if item else None

    def pop(self, name: str) -> None:
        self._items.pop(name.lower(), None)

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._items.values())

    def copy(self) -> HeaderBag:
        bag = HeaderBag()
        bag._items = dict(self._items)
        return bag

    def update(self, headers: Mapping[str, str], where: str) -> None:
        for name, value in headers.items():
            check_header(name, value, where)
            if name.lower() in RESERVED_HEADERS:
                raise RequestError(f"{where}: header {name!r} is set by the connector and cannot be configured")
            self.set(name, value)

    def wire(self) -> list[tuple[str, str]]:
        """Checked headers as the transport sends them: values as their UTF-8 bytes read as Latin-1."""
        sent: list[tuple[str, str]] = []
        for name, value in self:
            check_header(name, value, "request")
            sent.append((name, value if value.isascii() else value.encode("utf-8").decode("latin-1")))
        return sent


@dataclass
class Outgoing:
    """One HTTP request about to be sent; auth may still add to it."""

    method: str
    url: httpx.URL
    headers: HeaderBag
    content: bytes = b""
    meta: dict[str, Any] = field(default_factory=dict)


def _params(values: Mapping[str, Any]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for key, value in values.items():
        if value is None:
            continue
        for item in value if isinstance(value, list) else [value]:
            if item is not None:
                out.append((key, scalar_text(item)))
    return out


def query_params(*layers: Mapping[str, Any] | Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """Merge parameter layers; a later layer replaces every value of a name an earlier one set.

    The result is in declaration order (a replaced name keeps its first place), the same in every
    process: signed and order-sensitive APIs compare the query string as sent."""
    merged: dict[str, list[tuple[str, str]]] = {}
    for layer in layers:
        pairs = _params(layer) if isinstance(layer, Mapping) else list(layer)
        names = dict.fromkeys(k for k, _ in pairs)  # ordered; a set's order changes with PYTHONHASHSEED
        for name in names:
            merged[name] = []
        for key, value in pairs:
            merged[key].append((key, value))
    return [pair for pairs in merged.values() for pair in pairs]


def join_url(base: httpx.URL, path: str) -> tuple[httpx.URL, list[tuple[str, str]]]:
    """Append an operation path to the base URL; return the URL and any `?query` written in the path.

    The result always has the base URL's scheme, host and port: the path cannot name another host,
    and `.`/`..` segments (also percent-encoded) are refused so a rendered value cannot climb out of
    the base path. Results are cached: building an `httpx.URL` parses the whole URL again (the host
    too), which costs more than the rest of preparing a call.
    """
    url, query = _joined(base, path)
    return url, list(query)


_MAX_DECODES = 4


def _is_dot_segment(segment: str) -> bool:
    """True when a path segment is, or decodes to something holding, a `.` or `..` segment.

    A server may decode a parameter value once or more and may read a backslash as `/` (`..%2F`,
    `%2e%2e`, `..%5c`, `%252e%252e` double-encoded), cut `;params` from a segment (`..;x`) or fold
    fullwidth dots (U+FF0E); every reading is checked, so no spelling of `..` reaches the server.
    """
    text = segment
    for _ in range(_MAX_DECODES + 1):
        folded = unicodedata.normalize("NFKC", text)
        for part in re.split(r"[/\\]", folded):
            if part.split(";", 1)[0] in (".", ".."):
                return True
        decoded = unquote(text)
        if decoded == text:
            return False
        text = decoded
    return "%" in text  # still encoded after several rounds: refuse rather than guess


@functools.lru_cache(maxsize=4096)
def _joined(base: httpx.URL, path: str) -> tuple[httpx.URL, tuple[tuple[str, str], ...]]:
    if _CONTROL.search(path) or "\t" in path:
        raise RequestError("path contains a control character (CR, LF or similar); refused")
    if "#" in path:
        raise RequestError("path must not contain a fragment (#)")
    path, _, query = path.partition("?")
    if path and not path.startswith("/"):
        path = "/" + path
    if any(_is_dot_segment(segment) for segment in path.split("/")):
        raise RequestError("path must not contain '.' or '..' segments (also encoded, e.g. %2e%2e%2f or ..\\)")
    try:
        url = base.copy_with(path=base.path.rstrip("/") + path if path else base.path)
    except httpx.InvalidURL as exc:
        raise RequestError(f"invalid path: {exc}") from None
    return url, tuple(parse_qsl(query, keep_blank_values=True))


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not a JSON value")


def _check_finite(value: Any, depth: int = 0) -> None:
    if depth > 1000:
        raise RequestError("body is nested too deeply")
    if isinstance(value, float) and not math.isfinite(value):
        raise RequestError("body holds NaN or Infinity, which JSON cannot carry")
    if isinstance(value, Decimal) and not value.is_finite():
        raise RequestError("body holds NaN or Infinity, which JSON cannot carry")
    if isinstance(value, dict):
        for item in value.values():
            _check_finite(item, depth + 1)
    elif isinstance(value, list | tuple):
        for item in value:
            _check_finite(item, depth + 1)


def _fast_default(value: Any) -> Any:
    if type(value) is Decimal and value.is_finite():
        return orjson.Fragment(str(value))
    if isinstance(value, Decimal):
        raise RequestError("body holds NaN or Infinity, which JSON cannot carry")
    return _json_default(value)


_FAST_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


def encode_json(body: Any) -> bytes:
    """JSON bytes with decimals written exactly (`Decimal("0.30")` → `0.30`).

    orjson writes it (about ten times faster than simplejson); where its output holds a `null` (it
    writes NaN and infinite floats as `null`) or it cannot write the value, simplejson writes it
    after a check for non-finite numbers, and explains what is wrong."""
    try:
        fast = orjson.dumps(body, default=_fast_default, option=_FAST_OPTIONS)
    except RequestError:
        raise
    except (orjson.JSONEncodeError, TypeError):
        fast = None
    if fast is not None and b"null" not in fast:
        return fast
    _check_finite(body)
    try:
        text = simplejson.dumps(
            body,
            use_decimal=True,
            ensure_ascii=False,
            allow_nan=False,
            default=_json_default,
            separators=(",", ":"),
        )
    except (TypeError, ValueError) as exc:
        raise RequestError(f"body cannot be written as JSON: {exc}") from None
    return text.encode("utf-8")


def encode_form(form: Mapping[str, Any]) -> bytes:
    return urlencode(_params(form)).encode("ascii")
