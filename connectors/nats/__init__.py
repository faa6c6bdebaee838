"""The `nats` connector: publish to NATS JetStream with server-side dedupe, through nats-py.

A Connection of type `nats` names its `servers`; its `publish` operations name a subject that a
JetStream stream captures. The call's idempotency key is the `Nats-Msg-Id` header. Needs the `nats`
extra (`pip install 'syncline[nats]'`); the models load without it.
"""

from __future__ import annotations

from connectors.nats.connector import NatsConnector, create
from connectors.nats.models import NatsConfig, NatsOperation
from runtime.connector_api import ConnectorType

CONNECTOR = ConnectorType(
    name="nats",
    description="Publishes messages to NATS JetStream through nats-py (extra `nats`). A call returns once the "
    "stream acknowledged the message (output: stream, seq, duplicate). The call's idempotency key is the "
    "`Nats-Msg-Id` header, so JetStream stores a re-sent message once within the stream's duplicate window "
    "(2 minutes by default). A subject that no stream captures fails the call. The connection opens on first use "
    "and again after the server or the network went away, with backoff (`reconnect`). A `queue` trigger consumes "
    "a subject through a durable pull consumer (the trigger's `group` is its durable name) on the stream that "
    "captures it; a message's id is its `Nats-Msg-Id` header, or `<stream>:<stream sequence>` without one. Poison "
    "is terminated (`+TERM`, with Syncline's reason on servers from 2.10.4): JetStream publishes "
    "`$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED.<stream>.<consumer>` naming its stream sequence.",
    config_model=NatsConfig,
    operation_model=NatsOperation,
    create=create,
    provides=frozenset({"messages"}),
)

__all__ = ["CONNECTOR", "NatsConfig", "NatsConnector", "NatsOperation", "create"]
