"""`outgoing()`: what one `publish` call sends — body bytes, content type, headers, message id, timeout.

The message id is the call's idempotency key (stable across retries and a resumed run), so a
consumer that dedupes by id sees a re-sent message once; a call without a key gets a fresh id.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass

from connectors.messaging.encoding import encode_body, message_headers
from connectors.messaging.models import PublishFields
from runtime.connector_api import CallRequest, ConnectorError


@dataclass(frozen=True)
class Outgoing:
    body: bytes
    content_type: str
    headers: dict[str, str]
    message_id: str
    timeout: float


def outgoing(
    request: CallRequest, op: PublishFields, default_timeout: float, error: Callable[[str], ConnectorError]
) -> Outgoing:
    """The message a `publish` call sends; `error(text)` makes the (fatal) error for a bad operation."""
    if isinstance(op.headers, str):
        raise error("headers must be an object of names to values")
    body_value = op.body if "body" in op.model_fields_set else request.params
    try:
        body, content_type = encode_body(body_value, op.content_type)
    except ValueError as exc:
        raise error(str(exc)) from None
    timeout = request.timeout if request.timeout is not None else op.timeout
    return Outgoing(
        body=body,
        content_type=content_type,
        headers=message_headers(request.headers, op.headers),
        message_id=request.idempotency_key or uuid.uuid4().hex,
        timeout=timeout if timeout is not None else default_timeout,
    )
