"""Shared pieces of the message-broker connectors (`amqp`, `nats`, `redis_streams`, `mqtt`).

Not a connector itself: the models every broker connection and `publish` operation share
(durations, TLS files, reconnect backoff, body/headers/content type), the body encoding, the lazy
broker link that reconnects with backoff, and the publish-result shape. The broker client libraries
are imported only inside each connector's `client` module, when a connection first connects, so a
project that uses no broker never needs them installed.
"""

from __future__ import annotations

from connectors.messaging.delivery import Delivery, content_id
from connectors.messaging.encoding import encode_body, header_text, message_headers
from connectors.messaging.errors import Errors, describe
from connectors.messaging.link import Backoff, Link
from connectors.messaging.models import (
    Duration,
    PublishFields,
    ReconnectOptions,
    TlsOptions,
    parse_duration,
    resolve_operation,
)
from connectors.messaging.publish import Outgoing, outgoing

__all__ = [
    "Backoff",
    "Delivery",
    "Duration",
    "Errors",
    "Link",
    "Outgoing",
    "PublishFields",
    "ReconnectOptions",
    "TlsOptions",
    "content_id",
    "describe",
    "encode_body",
    "header_text",
    "message_headers",
    "outgoing",
    "parse_duration",
    "resolve_operation",
]
