"""Optimistic concurrency with ETags: `If-Match` on updates (Dynamics 365 Web API, SAP OData).

An operation's `if_match` is an ETag taken from an earlier read (`"{{ steps.read.output['@odata.etag'] }}"`),
`*` (the record must exist), or `fetch`: the connector first reads the record (`etag_path`, by default
the operation's own path) and sends the ETag that read carried. Where a read's ETag is is said by
`etag_from`: a header (`header:ETag`) or a body path (`$['@odata.etag']`, `$.d.__metadata.etag`),
tried in order. A 412 answer means the record changed since that ETag was read: a fatal conflict
(retrying the same write cannot succeed; read again and reapply the change).
"""

from __future__ import annotations

from typing import Any

from connectors.http.pagination import check_path, select_one
from connectors.http.redact import Redactor
from connectors.http.response import Reply, parse_json
from runtime.connector_api import ConnectorError

FETCH = "fetch"
HEADER = "If-Match"
DEFAULT_SOURCES = ("header:ETag", "$['@odata.etag']", "$.d.__metadata.etag")
CONFLICT_CODE = "etag_conflict"


def check_source(source: str) -> str:
    """Validate one `etag_from` entry: `header:<Name>` or a body path."""
    if source.lower().startswith("header:"):
        if not source[7:].strip():
            raise ValueError("name the header: header:ETag")
        return source
    return check_path(source)


def etag_of(reply: Reply, sources: list[str] | tuple[str, ...]) -> str | None:
    """The ETag a read's answer carries (first source that has one), or None."""
    document: Any = None
    parsed = False
    for source in sources:
        if source.lower().startswith("header:"):
            value = reply.headers.get(source[7:].strip())
        else:
            if not parsed:
                parsed = True
                try:
                    document = parse_json(reply.content) if reply.content else None
                except ValueError:
                    document = None
            value = select_one(document, source) if document is not None else None
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def missing_etag(what: str, redact: Redactor) -> ConnectorError:
    return ConnectorError(
        redact(f"{what}: the read for If-Match answered without an ETag (looked in etag_from)"),
        reason="response",
        error_class="fatal",
    )


def conflict(error: ConnectorError, etag: str | None, redact: Redactor) -> ConnectorError:
    """A 412 to a conditional write: the record changed since its ETag was read."""
    sent = f" (If-Match {etag})" if etag else ""
    return ConnectorError(
        redact(
            f"{error}: conflict — the record changed since its ETag was read{sent}; "
            "read it again and reapply the change"
        ),
        reason="status",
        error_class="fatal",
        status=error.status,
        body=error.body,
        code=error.code or CONFLICT_CODE,
    )
